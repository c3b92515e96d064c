"""The recipes protocol checker, clean-data selection, the committee vote, and notebook 09 on smoke."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ssh_ood.base.io_utils import load_json, save_json
from ssh_ood.base.notebook_runner import run_notebook
from ssh_ood.base.paths import DEMO_DIR, REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.generalization_prediction import DISORDER_BANDS, recall_by_band
from ssh_ood.interpret.recipe_protocol import (
    PROTOCOL_FILE,
    check_protocol,
    committee_members,
    goals_table,
    population_outcomes,
    protocol_outcomes,
    recipes_fingerprint,
)
from ssh_ood.interpret.recipe_results import ceiling_gap_by_band, diagnostics_within_populations
from ssh_ood.ood.committee import majority_vote
from ssh_ood.ood.model_evaluation import load_result
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.physics.ceiling import band_rows


def _protocol(**changes) -> dict:
    protocol = {
        "frozen": "2026-12-03T09:00:00+0000", "preset": "paper", "master_seed": 2, "main_recipe": "defects",
        "populations": {"defects": {"n_models": 50}, "mirror": {"n_models": 20}},
        "committee": {"diagnostic": "probe_mid_bulk_shift", "direction": "low", "k": 1},
        "predictions": {"defects": {"median_ood_accuracy": {"op": ">=", "value": 0.7}}},
        "recipes_fingerprint": recipes_fingerprint(["defects", "mirror"]),
        "comparison_populations": ["00_demonstrations_data/100_CNNs"], "rationale": "test",
    }
    protocol.update(changes)
    return protocol


def test_check_protocol_accepts_the_rules_and_refuses_each_break():
    check_protocol(_protocol())
    breaks = {
        "preset 'paper' and master seed 2": _protocol(master_seed=1),
        "n_models must be an integer >= 50": _protocol(populations={"defects": {"n_models": 49}, "mirror": {"n_models": 20}}),
        "'mirror': n_models must be an integer >= 20": _protocol(populations={"defects": {"n_models": 50},
                                                                            "mirror": {"n_models": 10}}),
        "unknown recipe 'magic'": _protocol(populations={"defects": {"n_models": 50}, "magic": {"n_models": 20}}),
        "clean-data diagnostic": _protocol(committee={"diagnostic": "ood_accuracy", "direction": "low", "k": 10}),
        "settings changed": _protocol(recipes_fingerprint="0" * 64),
        "need an outcome": _protocol(predictions={"defects": {"ood_anything": {"op": ">=", "value": 1}}}),
        "missing field 'predictions'": {k: v for k, v in _protocol().items() if k != "predictions"},
    }
    for message, protocol in breaks.items():
        with pytest.raises(ValueError, match=message):
            check_protocol(protocol)


def test_committed_protocol_keeps_the_rules():
    from ssh_ood.base.io_utils import load_json

    path = DEMO_DIR / PROTOCOL_FILE
    assert path.is_file(), f"{path}: the frozen recipes protocol is missing"
    protocol = load_json(path)
    check_protocol(protocol)
    assert protocol["populations"][protocol["main_recipe"]]["n_models"] >= 50
    tampered = copy.deepcopy(protocol)
    tampered["populations"][protocol["main_recipe"]]["n_models"] = 5
    with pytest.raises(ValueError, match=r"n_models must be an integer >= \d+, got 5"):
        check_protocol(tampered)


def test_selection_uses_clean_diagnostics_only():
    diagnostics = pd.DataFrame({"model_index": [0, 1, 2, 3], "probe_mid_bulk_shift": [0.3, 0.1, 0.2, 0.05]})
    assert committee_members(diagnostics, "probe_mid_bulk_shift", "low", 2) == [3, 1]
    assert committee_members(diagnostics, "probe_mid_bulk_shift", "high", 1) == [0]
    for column in ("ood_accuracy", "mae", "model_index"):
        with pytest.raises(ValueError, match="clean-data diagnostics only"):
            committee_members(diagnostics.assign(ood_accuracy=1.0, mae=0.0), column, "low", 2)


def test_majority_vote_and_outcomes():
    votes = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0]])
    assert majority_vote(votes).tolist() == [1, 0, 0, 0]  # 2-2 ties are trivial
    assert majority_vote(votes[:3]).tolist() == [1, 1, 0, 1]
    stats = pd.DataFrame({"model_index": [0, 1, 2], "ood_accuracy": [0.9, 0.6, 0.8], "mae": [0.1, 0.4, 0.2],
                          "test_accuracy": [0.97, 0.99, 0.98]})
    diagnostics = pd.DataFrame({"model_index": [0, 1, 2], "probe_mid_bulk_shift": [0.01, 0.5, 0.1]})
    outcomes = population_outcomes(stats, diagnostics)
    assert outcomes["median_ood_accuracy"] == 0.8 and outcomes["fraction_mae_le_0.2"] == pytest.approx(2 / 3)
    assert outcomes["min_ood_accuracy"] == 0.6 and outcomes["spearman_probe_ood"] == pytest.approx(-1.0)
    table = protocol_outcomes(_protocol(), {"defects": outcomes})
    assert table["held"].tolist() == [True]
    assert protocol_outcomes(_protocol(), {})["held"].tolist() == [None]


def test_goals_are_scored_in_their_direction_and_malformed_ones_refused():
    protocol = {"goals": {"median_ood_accuracy": ">= 0.90", "min_ood_accuracy": ">= 0.75", "spread": "<= 0.1"}}
    table = goals_table(protocol, {"median_ood_accuracy": 0.83, "min_ood_accuracy": 0.75, "spread": 0.05})
    assert table["met"].tolist() == [False, True, True]
    assert goals_table(protocol, {})["met"].tolist() == [None, None, None]
    with pytest.raises(ValueError, match="spread"):
        goals_table({"goals": {"spread": "about 0.1"}}, {})
    with pytest.raises(ValueError, match="number"):
        goals_table({"goals": {"spread": ">= high"}}, {})


def test_band_accuracies_average_back_to_the_network_accuracy():
    """The bands partition the grid's W rows, so their accuracies weighted by row count give the overall one."""
    model = DEMO_DIR / "100_CNNs" / "model_000"
    bands = recall_by_band(model)
    result = load_result(model)  # for its grid
    rows = dict(band_rows(result.grid.W_values, DISORDER_BANDS))
    weighted = sum(bands[f"accuracy_W{band}"] * r.sum() for band, r in rows.items()) / len(result.grid.W_values)
    pooled = load_json(model / "generalization_metrics.json")["ood"]["accuracy"]  # over all 200,000 chains
    assert weighted == pytest.approx(pooled, abs=1e-6)  # set accuracies are stored as float32


def test_gap_to_the_ceiling_and_within_population_ranks():
    stats = pd.DataFrame({"model_index": [0, 1, 2, 3], "ood_accuracy": [0.9, 0.6, 0.8, 0.7]})
    diagnostics = pd.DataFrame({"model_index": [3, 2, 1, 0], "probe_mid_bulk_shift": [0.3, 0.2, 0.4, 0.1],
                                "cam_score": [0.5, 0.5, 0.1, 0.9]})
    recalls = pd.DataFrame({"model_index": [0, 1, 2, 3], "accuracy_W0-0.5": [1.0, 0.9, 0.8, 0.7]})
    results = {"A": {"stats": stats, "diagnostics": diagnostics, "recalls": recalls}}
    gap = ceiling_gap_by_band(results, {"0-0.5": 0.99, "3-5": 0.97})
    assert gap.loc["W in [0, 0.5]", "A"] == pytest.approx(0.85)
    assert gap.loc["W in [0, 0.5]", "A gap"] == pytest.approx(0.14)
    assert np.isnan(gap.loc["W in [3, 5]", "A"])  # a band the grid lacks
    table = diagnostics_within_populations(results, ("probe_mid_bulk_shift",)).iloc[0]
    assert table["spearman_ood"] == pytest.approx(-1.0) and table["median"] == pytest.approx(0.25)
    assert table["n_models"] == 4


def test_notebook_09_runs_on_smoke_with_a_validation_population(tmp_path):
    from ssh_ood.ood.population import run_population

    root = tmp_path / "validation"
    run_population(PopulationSettings(get_preset("smoke"), 2, root / "defects", data_dir=tmp_path / "data", recipe="defects", progress=False))
    protocol = _protocol(populations={"defects": {"n_models": 50}}, goals={"median_ood_accuracy": ">= 0.90"})
    protocol["recipes_fingerprint"] = recipes_fingerprint(["defects"])
    save_json(tmp_path / "protocol.json", protocol)
    development = pd.DataFrame({"run": "test", "recipe": ["paper", "paper", "defects", "defects"], "model_index": [0, 1, 0, 1],
                                **{c: [0.97, 0.98, 0.99, 0.96] for c in (
                                    "test_accuracy", "accuracy_W0", "accuracy_W0.05", "probe_mid_bulk_shift",
                                    "probe_mid_bulk_flip", "probe_end_bulk_flip", "probe_end_zero_shift",
                                    "probe_remove_zero_modes_shift", "cam_zero_mode_correlation", "epochs_run")}})
    development.to_csv(tmp_path / "development.csv", index=False)
    figures = tmp_path / "fig"
    executed = run_notebook(REPO_ROOT / "09_making_networks_generalize.ipynb", tmp_path / "09.ipynb", {
        "FIGURES_DIR": str(figures), "PROTOCOL": str(tmp_path / "protocol.json"),
        "DEVELOPMENT": str(tmp_path / "development.csv"), "VALIDATION_ROOT": str(root), "PAPER_POPULATIONS": {}})
    for name in ("Fig_ceiling", "Fig_recipes_development", "Fig_recipes_ood", "Fig_recipes_median_diagrams",
                 "Fig_recipes_recall_by_band", "Fig_recipes_cams"):
        for ext in ("pdf", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, name
    assert (root / "defects" / "committee.json").is_file()
    shown = str([cell.get("outputs") for cell in executed.cells])
    assert ">= 0.90" in shown and "gap" in shown and "spearman_ood" in shown  # goals, ceiling gap, diagnostics


def test_freeze_recipes_command_reproduces_the_shipped_protocol(tmp_path, capsys):
    """The command decides what the shipped protocol recorded when it was frozen, from the same development table
    and comparison populations; it writes elsewhere and never over the shipped file without --allow-shipped."""
    from ssh_ood.commands.cli import main

    shipped_path = DEMO_DIR / PROTOCOL_FILE
    before = shipped_path.read_bytes()
    shipped = load_json(shipped_path)
    check_protocol(shipped)  # its recipes fingerprint still verifies
    out = tmp_path / "protocol.json"
    assert main(["freeze-recipes", "--out", str(out)]) == 0
    assert f"main recipe {shipped['main_recipe']}" in capsys.readouterr().out
    frozen = load_json(out)
    check_protocol(frozen)
    for key in set(shipped) - {"frozen", "issue", "committee"}:
        assert frozen[key] == shipped[key], key
    assert {k: v for k, v in frozen["committee"].items() if k != "vote"} == \
        {k: v for k, v in shipped["committee"].items() if k != "vote"}
    # refused: the shipped file, a table without the development columns
    assert main(["freeze-recipes", "--out", str(shipped_path)]) == 2
    assert "--allow-shipped" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("run,recipe\nquick 30 epochs,paper\n")
    assert main(["freeze-recipes", "--out", str(out), "--development", str(tmp_path / "bad.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: development table: missing columns")
    assert shipped_path.read_bytes() == before
