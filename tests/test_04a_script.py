"""The shell script 04a_figure_models_analysis.py: exit codes, messages and outputs on two tiny models."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ssh_ood.base.io_utils import load_json, save_npz
from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.nets.training_run import train_models
from ssh_ood.physics.data_generation import target_diagram
from ssh_ood.physics.datasets import write_datasets

SCRIPT = REPO_ROOT / "04a_figure_models_analysis.py"
OPTIONS = ("--CAM", "--perturb", "--exclude_transition", "--batch-size", "--models-dir", "--out", "--seed",
           "--preset", "--data", "--figures")


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """Two smoke-trained models under the names of two highlighted categories, with phase diagrams."""
    root = tmp_path_factory.mktemp("models")
    write_datasets("smoke", 0, root / "data", progress=False)
    train_models("smoke", root / "data", root / "run", [0, 1], max_epochs=1, progress=False)
    models = root / "models"
    W, v = np.linspace(0, 5, 4), np.linspace(0, 2, 10)
    target = target_diagram(W, v, 2, seed=0)
    for index, name in enumerate(("well_misleading", "poorly_good")):
        shutil.copytree(root / "run" / f"model_{index:03d}", models / name)
        predicted = np.clip(target + 0.25 * (index + 1) * np.random.default_rng(index).uniform(-1, 1, target.shape), 0, 1)
        save_npz(models / name / "phase_diagram.npz", {"predicted": predicted, "target": target, "W": W, "v": v})
    return models


def test_help_explains_every_option():
    result = run_script("--help")
    assert result.returncode == 0
    for option in OPTIONS:
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--CAM", "2"), "invalid choice"),
        (("--perturb", "yes"), "invalid int value"),
        (("--batch-size", "0"), "--batch-size must be a positive integer"),
        (("--seed", "-1"), "--seed must be >= 0"),
        (("--umap-pca", "-3"), "--umap-pca must be >= 0"),
    ],
)
def test_bad_arguments_exit_2(args, message, tmp_path):
    result = run_script(*args, "--models-dir", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr


def test_missing_models_exit_2(tmp_path):
    result = run_script("--models-dir", str(tmp_path / "absent"), "--data", str(tmp_path / "data"))
    assert result.returncode == 2 and "models folder not found" in result.stderr
    result = run_script("--models-dir", str(tmp_path), "--data", str(tmp_path / "data"))
    assert result.returncode == 2 and "no model folder" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is generated before the models are found"


def test_cam_analysis_writes_results_and_fig_2(models_dir, tmp_path):
    data = tmp_path / "data"  # missing: the script generates the smoke datasets
    result = run_script(
        "--CAM", "1", "--preset", "smoke", "--models-dir", str(models_dir), "--data", str(data),
        "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "figures"), "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert (data / "test_W0.npz").is_file()
    for name in ("well_misleading", "poorly_good"):
        summary = load_json(tmp_path / "out" / name / "cam" / "cam_summary.json")
        per_sample = pd.read_csv(tmp_path / "out" / name / "cam" / "cam_scores.csv")
        assert len(per_sample) == summary["n_clean_topological"] > 0
        assert summary["cam_score"] == pytest.approx(per_sample["cam_score"].mean())
        assert 0 <= summary["cam_score"] <= 1
        assert f"{name:20s} CAM score {summary['cam_score']:.3f}" in result.stdout
    for figure in ("Fig_2", "Fig_CAM_averaged"):
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{figure}.{ext}").stat().st_size > 0
    assert "without its phase-diagram row" not in result.stdout


def test_clustering_analysis_writes_projections_and_figs(models_dir, tmp_path):
    preset = get_preset("smoke")
    data = tmp_path / "data"
    write_datasets(preset, 0, data, progress=False)
    result = run_script(
        "--CAM", "0", "--perturb", "0", "--exclude_transition", "1", "--preset", "smoke",
        "--models-dir", str(models_dir), "--data", str(data), "--out", str(tmp_path / "out"),
        "--figures", str(tmp_path / "figures"), "--batch-size", "16", "--quiet",
    )
    assert result.returncode == 0, result.stderr
    kept = preset.n_test - round(0.2 * preset.n_test)
    for name in ("well_misleading", "poorly_good"):
        for method in ("pca", "umap"):
            for layer in ("input", "conv1", "block1", "block2", "gap"):
                for W in (0, *preset.ood_W):
                    frame = pd.read_csv(tmp_path / "out" / name / method / f"{layer}_W{W:g}.csv")
                    assert len(frame) == kept
        fit = load_json(tmp_path / "out" / name / "pca" / "gap_fit.json")
        assert fit["fit_W"] == [0.0]  # --perturb 0: the clean set alone
        assert not (tmp_path / "out" / name / "pca" / "gap_W0.01.csv").exists()
    for figure in ("Fig_4", "Fig_12", "Fig_13"):
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{figure}.{ext}").stat().st_size > 0
