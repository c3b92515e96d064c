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
from ssh_ood.interpret.recipe_results import (
    ceiling_gap_by_band,
    diagnostics_within_populations,
    rules_by_band,
    study_status,
)
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


def _rules_report(**changes) -> dict:
    """A rules report as ``physics-rules`` writes it, two bands, on a made-up grid."""
    report = {
        "grid": {"n_W": 4, "W_max": 5.0, "n_realizations": 1, "n_v": 3, "v_max": 2.0, "seed": 2, "n_cells": 25},
        "bands": [[0.0, 0.5], [3.0, 5.0]],
        "ceiling": {"overall": 0.99, "0-0.5": 1.0, "3-5": 0.97},
        "rules": {"sublattice_position": {"threshold": 0.5, "overall": 0.9, "0-0.5": 0.98, "3-5": 0.85,
                                          "recall_trivial_0-0.5": 1.0},
                  "edge_density": {"threshold": 0.2, "overall": 0.8, "0-0.5": 0.95, "3-5": 0.7}},
    }
    report.update(changes)
    return report


def _population(overall: list[float], low: list[float], high: list[float]) -> dict:
    """A population's :func:`validation_results` as far as :func:`rules_by_band` reads it."""
    index = list(range(len(overall)))
    return {"stats": pd.DataFrame({"model_index": index, "ood_accuracy": overall}),
            "recalls": pd.DataFrame({"model_index": index, "accuracy_W0-0.5": low, "accuracy_W3-5": high})}


def test_rules_by_band_sets_each_population_beside_the_rules_and_the_ceiling():
    report = _rules_report()
    rule = report["rules"]["sublattice_position"]
    results = {"like the rule": _population([0.1, rule["overall"], 1.0], [rule["0-0.5"]] * 3, [0.0, rule["3-5"], 1.0]),
               "better": _population([0.95, 0.97], [0.99, 0.99], [0.9, 0.92])}
    table = rules_by_band(results, report)
    bands = ["W in [0, 0.5]", "W in [3, 5]"]
    assert list(table.columns) == ["kind", "overall", *bands]
    assert table["kind"].tolist() == ["population"] * 2 + ["rule"] * 2 + ["ceiling"] + ["margin"] * 2
    margins = table[table["kind"] == "margin"]
    # a population whose median network equals the rule in every band has margin 0 there
    assert margins.loc["like the rule − sublattice_position", ["overall", *bands]].tolist() == pytest.approx([0, 0, 0])
    better = margins.loc["better − sublattice_position"]
    for column in ("overall", *bands):
        assert better[column] == pytest.approx(table.loc["better", column] - table.loc["sublattice_position", column])
        assert better[column] > 0
    assert table.loc["better", "W in [3, 5]"] == pytest.approx(0.91)  # the median over the networks
    assert table.loc["edge_density", bands].tolist() == [0.95, 0.7]
    assert table.loc["ceiling", ["overall", *bands]].tolist() == [0.99, 1.0, 0.97]
    # a ceiling given without "overall" leaves it unknown; margins over another rule
    other = rules_by_band(results, report, {"0-0.5": 0.999, "3-5": 0.9}, reference="edge_density")
    assert np.isnan(other.loc["ceiling", "overall"]) and other.loc["ceiling", "W in [3, 5]"] == 0.9
    assert other.loc["better − edge_density", "W in [3, 5]"] == pytest.approx(0.91 - 0.7)


def test_rules_by_band_refuses_what_does_not_match_naming_it():
    population = {"A": _population([0.9], [0.98], [0.85])}
    rules = _rules_report()["rules"]
    lacking = {**rules, "edge_density": {k: v for k, v in rules["edge_density"].items() if k != "3-5"}}
    refused = {
        r"rule 'edge_density' has no accuracy for band '3-5'": (population, _rules_report(rules=lacking)),
        r"population 'B' has no accuracy for band '3-5'": (
            {"B": {**population["A"], "recalls": population["A"]["recalls"].drop(columns="accuracy_W3-5")}},
            _rules_report()),
        r"band '1.5-3' of rule 'edge_density' is missing from the ceiling": (
            population, _rules_report(bands=[[0, 0.5], [1.5, 3], [3, 5]],
                                      rules={**rules, "edge_density": {**rules["edge_density"], "1.5-3": 0.8}})),
        r"rule 'sublattice_position' has no accuracy for band '1.5-3'": (
            population, _rules_report(ceiling={"overall": 0.99, "0-0.5": 1.0, "1.5-3": 0.99, "3-5": 0.97})),
        r"no rule 'sublattice_position'": (population, _rules_report(rules={"edge_density": rules["edge_density"]})),
        r"population 'A' was evaluated on another grid": (
            {"A": {**population["A"], "grid": {**_rules_report()["grid"], "seed": 3}}}, _rules_report()),
        r"label 'edge_density' is also the name of a rule": ({"edge_density": population["A"]}, _rules_report()),
    }
    for message, (results, report) in refused.items():
        with pytest.raises(ValueError, match=message):
            rules_by_band(results, report)
    # the same grid is accepted
    same = {"A": {**population["A"], "grid": dict(_rules_report()["grid"])}}
    assert rules_by_band(same, _rules_report()).loc["A", "kind"] == "population"


def test_study_status_counts_trained_networks_and_reads_no_result(tmp_path):
    from ssh_ood.ood.population_tables import STATS_FILE

    protocol = {"populations": {"main": {"n_models": 50}, "other": {"n_models": 20}, "absent": {"n_models": 20}}}
    for index in range(3):
        (tmp_path / "main" / f"model_{index:03d}").mkdir(parents=True)
        if index < 2:  # the third is still training: no weights yet
            (tmp_path / "main" / f"model_{index:03d}" / "weights.pt").write_bytes(b"w")
    (tmp_path / "other" / "model_000").mkdir(parents=True)
    (tmp_path / "other" / "model_000" / "weights.pt").write_bytes(b"w")
    pd.DataFrame({"model_index": [0], "ood_accuracy": [0.5]}).to_csv(tmp_path / "other" / STATS_FILE, index=False)
    status = study_status(protocol, tmp_path)
    assert status.index.tolist() == ["main", "other", "absent"]
    assert status["planned"].tolist() == [50, 20, 20] and status["trained"].tolist() == [2, 1, 0]
    assert status["evaluated"].tolist() == [False, True, False] and status["n_evaluated"].tolist() == [0, 1, 0]
    assert "ood_accuracy" not in status.columns


def test_notebook_09_runs_on_smoke_with_a_validation_population(tmp_path):
    from ssh_ood.ood.generalization import GeneralizationGrid
    from ssh_ood.ood.physics_baselines import baselines_report
    from ssh_ood.ood.population import run_population
    from ssh_ood.ood.population_tables import load_population
    from ssh_ood.physics.physics_rules import RULE_NAMES, fit_rule

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
    # the physics rules on the smoke population's grid; a second study (master seed 3) over the same folder, one
    # population evaluated (its committee: every network) and one not yet trained
    grid = GeneralizationGrid.from_preset("smoke", 2)
    rules = baselines_report([fit_rule(name, n_cells=grid.n_cells) for name in RULE_NAMES], grid, DISORDER_BANDS)
    save_json(tmp_path / "rules.json", rules)
    second = _protocol(master_seed=3, populations={"defects": {"n_models": 50}, "mirror": {"n_models": 20}},
                       committee={"members": "all", "vote": "majority"}, goals={"min_ood_accuracy": ">= 0.80"},
                       baselines={"physics_rules": str(tmp_path / "rules.json")})
    save_json(tmp_path / "second.json", second)
    figures = tmp_path / "fig"
    executed = run_notebook(REPO_ROOT / "09_making_networks_generalize.ipynb", tmp_path / "09.ipynb", {
        "FIGURES_DIR": str(figures), "PROTOCOL": str(tmp_path / "protocol.json"),
        "DEVELOPMENT": str(tmp_path / "development.csv"), "VALIDATION_ROOT": str(root), "PAPER_POPULATIONS": {},
        "PHYSICS_RULES": str(tmp_path / "rules.json"), "SECOND_PROTOCOL": str(tmp_path / "second.json"),
        "SECOND_ROOT": str(root)})
    for name in ("Fig_ceiling", "Fig_recipes_development", "Fig_recipes_ood", "Fig_recipes_median_diagrams",
                 "Fig_recipes_recall_by_band", "Fig_recipes_physics_rules", "Fig_recipes_cams",
                 "Fig_recipes_seed3_physics_rules"):
        for ext in ("pdf", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, name
    committee = load_json(root / "defects" / "committee.json")  # the second study's vote: every network
    assert committee["members"] == sorted(load_population(root / "defects").stats["model_index"].tolist())
    shown = str([cell.get("outputs") for cell in executed.cells])
    assert ">= 0.90" in shown and "gap" in shown and "spearman_ood" in shown  # goals, ceiling gap, diagnostics
    assert "sublattice_position" in shown and "margin" in shown  # the bar, band by band
    assert "Pending: mirror: 0 of 20 networks trained" in shown and "Pending: defects" not in shown
    assert ">= 0.80" in shown  # the second study's goal, scored
    within = next(cell for cell in executed.cells if cell.source.startswith("density_results"))
    assert "probe_mid_bulk_shift" in str(within.outputs) and "spearman_ood" in str(within.outputs)  # density input


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
