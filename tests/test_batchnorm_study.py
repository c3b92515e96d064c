"""The precise-BN study of a population (ssh_ood.ood.batchnorm_study) on a smoke population."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ssh_ood.base.io_utils import load_json, load_npz
from ssh_ood.base.presets import get_preset
from ssh_ood.ood.batchnorm_study import COLUMNS, load_study, precise_bn_study, summarize_study
from ssh_ood.ood.population import run_population
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.ood.population_tables import load_population


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("precise_bn")
    population = root / "population"
    run_population(PopulationSettings(get_preset("smoke"), 0, population, data_dir=root / "data", progress=False))
    # the manifest records the datasets folder the study recalibrates on
    path = precise_bn_study(population, root / "copies", progress=False)
    return root, path


def test_study_table_pairs_the_population_with_its_recalibrated_copies(study):
    root, path = study
    table = load_study(root / "population")
    assert path == root / "population" / "precise_bn.csv" and list(table.columns) == list(COLUMNS)
    stats = load_population(root / "population").stats.set_index("model_index")
    for row in table.itertuples():
        assert row.ood_accuracy_running == pytest.approx(stats.loc[row.model_index, "ood_accuracy"])
        assert row.mae_running == pytest.approx(stats.loc[row.model_index, "mae"])
        copy = root / "copies" / f"model_{row.model_index:03d}"
        diagram = load_npz(copy / "phase_diagram.npz")
        strong = diagram["W"] >= 2.0
        assert row.strong_disorder_topological_precise == pytest.approx(float(diagram["predicted"][strong].mean()))
        original = torch.load(root / "population" / copy.name / "weights.pt", weights_only=True)
        recalibrated = torch.load(copy / "weights.pt", weights_only=True)
        for key, value in original.items():
            same = torch.equal(value, recalibrated[key])
            assert same if not key.endswith(("running_mean", "running_var", "num_batches_tracked")) else True, key
        assert any(not torch.equal(original[k], recalibrated[k]) for k in original if k.endswith("running_mean"))


def test_study_summary_and_resume(study):
    root, _ = study
    table = load_study(root / "population")
    summary = load_json(root / "population" / "precise_bn_summary.json")
    # JSON text comparison: NaN (a constant column of the smoke networks) equals itself there
    assert json.dumps(summary, sort_keys=True) == json.dumps(summarize_study(table), sort_keys=True)
    change = table["ood_accuracy_precise"] - table["ood_accuracy_running"]
    assert summary["ood_accuracy"]["n_up"] == int((change > 0).sum())
    assert summary["near_half_running"] == int((table["ood_accuracy_running"] < 0.55).sum())
    stamp = (root / "copies" / "model_000" / "weights.pt").stat().st_mtime_ns
    precise_bn_study(root / "population", root / "copies", progress=False)
    assert (root / "copies" / "model_000" / "weights.pt").stat().st_mtime_ns == stamp  # copies reused
    pd.testing.assert_frame_equal(load_study(root / "population"), table)


def test_summary_of_a_known_table():
    table = pd.DataFrame({
        "model_index": range(4),
        "ood_accuracy_running": [0.5, 0.52, 0.8, 0.9], "ood_accuracy_precise": [0.7, 0.51, 0.85, 0.9],
        "mae_running": [0.5, 0.48, 0.2, 0.1], "mae_precise": [0.3, 0.49, 0.15, 0.1],
        "clean_accuracy_running": [1.0] * 4, "clean_accuracy_precise": [1.0] * 4,
        "strong_disorder_topological_running": [1, 1, 0.5, 0.4], "strong_disorder_topological_precise": [0.5, 1, 0.5, 0.4],
    })
    summary = summarize_study(table)
    assert summary["near_half_running"] == 2 and summary["near_half_precise"] == 1 and summary["near_half_in_both"] == 1
    assert summary["ood_accuracy"]["n_up"] == 2 and summary["ood_accuracy"]["n_down"] == 1
    assert summary["ood_accuracy"]["change_median"] == pytest.approx(np.median([0.2, -0.01, 0.05, 0.0]))
    assert summary["clean_accuracy"]["wilcoxon_p"] == 1.0


def test_missing_study_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood precise-bn"):
        load_study(tmp_path)
