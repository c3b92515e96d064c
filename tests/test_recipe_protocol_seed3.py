"""The protocol code serves the second study (master seed 3, a vote of every network, band outcomes) and still
refuses what breaks the rules; the frozen protocol keeps them."""

from __future__ import annotations

import pandas as pd
import pytest

from ssh_ood.base.io_utils import load_json
from ssh_ood.base.paths import DEMO_DIR
from ssh_ood.interpret.recipe_protocol import (
    check_protocol,
    population_outcomes,
    protocol_outcomes,
    recipes_fingerprint,
)


def _protocol(**changes) -> dict:
    protocol = {
        "frozen": None, "preset": "paper", "master_seed": 3, "main_recipe": "projector_ab_window",
        "populations": {"projector_ab_window": {"n_models": 50}, "window": {"n_models": 20}},
        "committee": {"members": "all", "vote": "majority"},
        "predictions": {"projector_ab_window": {"median_accuracy_W0-0.5": {"op": ">=", "value": 0.99}}},
        "recipes_fingerprint": recipes_fingerprint(["projector_ab_window", "window"]),
        "comparison_populations": [], "rationale": "test",
    }
    protocol.update(changes)
    return protocol


def test_second_study_is_accepted_and_breaks_refused():
    check_protocol(_protocol())
    for message, protocol in {
        "master seed 2 or 3": _protocol(master_seed=0),
        "every network": _protocol(committee={"members": "best", "vote": "majority"}),
        "settings changed": _protocol(recipes_fingerprint=recipes_fingerprint(["window"])),
    }.items():
        with pytest.raises(ValueError, match=message):
            check_protocol(protocol)


def test_band_outcome_is_scored():
    stats = pd.DataFrame({"model_index": [0, 1, 2], "ood_accuracy": [0.8, 0.9, 0.85], "mae": [0.1, 0.3, 0.2],
                          "test_accuracy": [0.97, 0.98, 0.99]})
    recalls = pd.DataFrame({"model_index": [0, 1, 2], "accuracy_W0-0.5": [0.98, 0.995, 0.991],
                            "recall_trivial_W0-0.5": [1.0, 1.0, 1.0]})
    outcomes = population_outcomes(stats, recalls=recalls)
    assert outcomes["median_accuracy_W0-0.5"] == pytest.approx(0.991) and "median_recall_trivial_W0-0.5" not in outcomes
    table = protocol_outcomes(_protocol(), {"projector_ab_window": outcomes})
    assert table["held"].tolist() == [True]


def test_frozen_protocol_keeps_the_rules():
    frozen = load_json(DEMO_DIR / "recipes_seed3_protocol.json")
    check_protocol(frozen)
    assert frozen["frozen"] and frozen["master_seed"] == 3
    populations = frozen["populations"]
    assert populations[frozen["main_recipe"]]["n_models"] >= 50
    assert all(population["n_models"] >= 20 for population in populations.values())
    # a recipe dropped at review has no population, prediction or forecast left behind
    for name in frozen["not_carried_forward"]:
        assert name not in populations and name not in frozen["predictions"]
        assert name not in frozen["forecast_median_ood_accuracy"]
    assert set(frozen["predictions"]) <= set(populations)
