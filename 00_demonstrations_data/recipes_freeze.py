"""Freeze 00_demonstrations_data/recipes_protocol.json from the clean-data development (the recipe study).

The decision rule was fixed before the development numbers were read (this script was written while the
development runs trained). Run: .venv/bin/python 00_demonstrations_data/recipes_freeze.py (rewrites the protocol with a new timestamp).
"""
import time

import numpy as np
import pandas as pd

from ssh_ood.base.io_utils import save_json
from ssh_ood.interpret.recipe_protocol import check_protocol, recipes_fingerprint
from ssh_ood.interpret.recipe_results import development_summary

DEMO = str(__import__("pathlib").Path(__file__).resolve().parent)
CHOICE_RUN = "quick 30 epochs"  # the only run with every recipe
dev = pd.read_csv(f"{DEMO}/recipes_development.csv")
summary = development_summary(dev)
print(summary.round(4).to_string())
run = summary[summary["run"] == CHOICE_RUN].set_index("recipe")
paper_probe = float(run.loc["paper", "median_probe_mid_bulk_shift"])
paper_acc = float(run.loc["paper", "median_test_accuracy"])
candidates = run.drop(index="paper")
eligible = candidates[candidates["median_test_accuracy"] >= paper_acc - 0.01]
pool = eligible if len(eligible) else candidates
main = str(pool["median_probe_mid_bulk_shift"].idxmin())
others = [r for r in candidates.index if r != main]

# forecast: the issue-12 relation on the paper recipe's two shipped populations (their OOD results are published),
# with the development probe rescaled to the paper preset by the paper recipe's own ratio
shipped = []
for folder in ("100_CNNs", "100_CNNs_seed1"):
    stats = pd.read_csv(f"{DEMO}/{folder}/stats.csv")
    diag = pd.read_csv(f"{DEMO}/{folder}/diagnostics.csv")
    shipped.append(stats.merge(diag[["model_index", "probe_mid_bulk_shift"]], on="model_index"))
shipped = pd.concat(shipped)
scale = float(shipped["probe_mid_bulk_shift"].median()) / paper_probe
def forecast(probe):
    nearest = shipped.iloc[np.argsort(np.abs(shipped["probe_mid_bulk_shift"].to_numpy() - probe * scale))[:20]]
    return round(float(nearest["ood_accuracy"].median()), 3)
forecasts = {r: forecast(float(run.loc[r, "median_probe_mid_bulk_shift"])) for r in run.index}
print("scale", scale, "forecasts", forecasts, "main", main, "others", others)

def median_prediction(recipe):
    better = float(run.loc[recipe, "median_probe_mid_bulk_shift"]) < paper_probe
    return {"op": ">=", "value": 0.63} if better else {"op": "<=", "value": 0.66}

predictions = {main: {"median_ood_accuracy": median_prediction(main),
                      "median_test_accuracy": {"op": ">=", "value": 0.95},
                      "spearman_probe_ood": {"op": "<=", "value": -0.3},
                      "committee_ood_accuracy": {"op": ">=", "value": 0.8}}}
for r in others:
    predictions[r] = {"median_ood_accuracy": median_prediction(r), "median_test_accuracy": {"op": ">=", "value": 0.95}}
populations = {main: {"n_models": 50, "out": f"00_demonstrations_data/recipes_seed2/{main}"}}
populations.update({r: {"n_models": 20, "out": f"00_demonstrations_data/recipes_seed2/{r}"} for r in others})
rows = "; ".join(f"{r}: probe median {run.loc[r, 'median_probe_mid_bulk_shift']:.3f}, clean test accuracy median "
                 f"{run.loc[r, 'median_test_accuracy']:.3f} ({int(run.loc[r, 'n_models'])} networks)" for r in run.index)
rationale = (
    f"**Decision rule** (fixed before the development numbers were read): the main recipe is the non-paper recipe with "
    f"the lowest median `probe_mid_bulk_shift` in the development run that has every recipe ({CHOICE_RUN!r}) among those "
    f"whose median clean test accuracy is at least the paper recipe's minus 0.01; the other two are validated with 20 "
    f"networks each; if no recipe meets the accuracy condition, among all three. Development ({CHOICE_RUN}): {rows}. "
    + ("No recipe met the accuracy condition (paper median minus 0.01 = " + f"{paper_acc - 0.01:.3f}), so the choice "
       "fell back to all three. " if not len(eligible) else "")
    + f"**Main recipe: `{main}`.** "
    f"**Forecast** of each recipe's median OOD accuracy: the median OOD accuracy of the 20 shipped paper-recipe networks "
    f"(seeds 0 and 1, published results) whose probe lies nearest the recipe's development median rescaled to the paper "
    f"preset by the paper recipe's own ratio ({scale:.2f}): " + ", ".join(f"{r} {v:.3f}" for r, v in forecasts.items()) +
    ". This assumes a new recipe's networks follow the paper recipe's probe-OOD relation, which nothing has tested. "
    "**Predictions** (scored by `protocol_outcomes`): a recipe whose development probe median is below the paper's "
    "reaches a median OOD accuracy >= 0.63 (above both shipped paper populations, 0.614 and 0.628), otherwise <= 0.66; "
    "every recipe keeps a median clean test accuracy >= 0.95; within the main recipe the probe still ranks networks "
    "(Spearman with OOD accuracy <= -0.3); the committee of the 10 lowest-probe networks of the main recipe reaches "
    ">= 0.80. **Caveats:** 2 networks per recipe at 30 epochs is weak evidence; `bulk_insensitive` trains on edits that "
    "include the probe's, so its probe is partly trained on. The issue's goals (median >= 0.90, >= 80 % with MAE <= 0.2, "
    "none below 0.75, committee >= 0.95, clean >= 0.974) are recorded as goals, not predicted.")
protocol = {
    "frozen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "issue": 20,
    "preset": "paper",
    "master_seed": 2,
    "main_recipe": main,
    "populations": populations,
    "comparison_populations": ["00_demonstrations_data/100_CNNs", "00_demonstrations_data/100_CNNs_seed1"],
    "committee": {"diagnostic": "probe_mid_bulk_shift", "direction": "low", "k": 10,
                  "vote": "majority of the k networks, ties trivial (ssh_ood.ood.committee)"},
    "predictions": predictions,
    "forecast_median_ood_accuracy": forecasts,
    "goals": {"median_ood_accuracy": ">= 0.90", "fraction_mae_le_0.2": ">= 0.80", "min_ood_accuracy": ">= 0.75",
              "committee_ood_accuracy": ">= 0.95", "median_test_accuracy": ">= 0.974"},
    "development": {"table": "00_demonstrations_data/recipes_development.csv", "choice_run": CHOICE_RUN},
    "evaluation_order": "train every network of every named population (--train-only), then evaluate; report every "
                        "interim look as it came",
    "recipes_fingerprint": recipes_fingerprint(list(populations)),
    "rationale": rationale,
}
check_protocol(protocol)
save_json(f"{DEMO}/recipes_protocol.json", protocol)
print(rationale)
