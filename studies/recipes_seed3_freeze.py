"""Freeze the protocol of the second recipe study (master seed 3): recipes_seed3_protocol.json, from the draft.

Reads ``recipes_seed3_protocol_draft.json`` (``recipes_seed3_draft.py``) and applies the review rule, which uses
clean development numbers only (``recipes_seed3_development.csv``, W <= 0.05): a recipe whose median development
clean test accuracy is below 0.9 did not learn clean data, so it is not carried forward to the validation; it is
recorded under ``not_carried_forward`` with its numbers, and its predictions and forecast go with it. Everything
else of the draft (main recipe, sizes, predictions, goals, committee) is kept as drafted. ``frozen`` is the time of
this run; the file is committed before any network of the study is trained. The seed-3 value of the bar (the
sublattice-position rule) is a physics rule fitted on clean chains, no network involved: it is computed by
``python -m ssh_ood physics-rules --seed 3`` and is not part of the freeze.
Run: .venv/bin/python studies/recipes_seed3_freeze.py
"""
import time

import pandas as pd

from ssh_ood.base.io_utils import load_json, save_json
from ssh_ood.base.paths import DEMO_DIR, REPO_ROOT
from ssh_ood.interpret.recipe_protocol import check_protocol, recipes_fingerprint

LEARNS_CLEAN_DATA = 0.9

draft = load_json(DEMO_DIR / "recipes_seed3_protocol_draft.json")
dev = pd.read_csv(REPO_ROOT / draft["development"]["table"])
dev = dev[dev["run"] == draft["development"]["choice_run"]]
summary = dev.groupby("recipe").median(numeric_only=True)

dropped = {name: {"reason": f"median development clean test accuracy {summary.loc[name, 'test_accuracy']:.3f} "
                            f"< {LEARNS_CLEAN_DATA} (clean boundary {summary.loc[name, 'clean_boundary']:.3f}): "
                            "it does not learn clean data",
                  "n_development_networks": int((dev["recipe"] == name).sum())}
           for name in draft["populations"]
           if name != draft["main_recipe"] and summary.loc[name, "test_accuracy"] < LEARNS_CLEAN_DATA}
kept = [name for name in draft["populations"] if name not in dropped]

protocol = dict(draft)
protocol.pop("review_flags", None)
protocol.update({
    "frozen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "status": "frozen before any network of the study was trained; nothing of it has been evaluated out of distribution",
    "populations": {name: draft["populations"][name] for name in kept},
    "tiers": {name: draft["tiers"][name] for name in kept},
    "predictions": {name: p for name, p in draft["predictions"].items() if name in kept},
    "forecast_median_ood_accuracy": {name: f for name, f in draft["forecast_median_ood_accuracy"].items() if name in kept},
    "not_carried_forward": dropped,
    "recipes_fingerprint": recipes_fingerprint(kept),
    "review": (f"Review rule (clean development only): a carried-forward recipe whose median development clean test "
               f"accuracy is below {LEARNS_CLEAN_DATA} is not trained for the validation. Dropped: "
               + ("; ".join(f"`{name}` ({entry['reason']})" for name, entry in dropped.items()) or "none")
               + ". The position-and-sublattice family therefore has no validation population: it failed clean "
               "development."),
})
check_protocol(protocol)
save_json(DEMO_DIR / "recipes_seed3_protocol.json", protocol)
print(protocol["review"])
