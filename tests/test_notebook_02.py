"""Notebook 02 runs headless on the smoke preset and writes its figures and model folder."""

import nbformat
import pandas as pd
import torch

from ssh_ood.base.notebook_runner import run_notebook
from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.figures.training_figures import disorder_reports, layer_table
from ssh_ood.nets.architecture import CNN_SSH
from ssh_ood.nets.model_folders import is_complete, load_model
from ssh_ood.nets.training_run import train_models

FIGURES = ("Fig_architecture", "Fig_training_inputs", "Fig_training_curves", "Fig_test_probability_vs_v", "Fig_accuracy_vs_W")


def test_notebook_02_runs_on_smoke(tmp_path):
    parameters = {
        "PRESET": "smoke",
        "DATA_DIR": str(tmp_path / "data"),
        "RUN_DIR": str(tmp_path / "run"),
        "FIGURES_DIR": str(tmp_path / "figures"),
    }
    executed = run_notebook(REPO_ROOT / "02_architecture_training.ipynb", tmp_path / "02.ipynb", parameters)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    for name in FIGURES:
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 1000
    assert is_complete(tmp_path / "run" / "model_000")
    committed = nbformat.read(REPO_ROOT / "02_architecture_training.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code")  # committed without outputs


def test_layer_table_matches_the_architecture():
    rows = pd.DataFrame(layer_table(CNN_SSH()))
    assert rows["parameters"].sum() == 1024
    assert rows.loc[rows["name"] == "cnn_layers_1.0", "output shape"].item() == (5, 26, 26)
    assert rows.loc[rows["name"] == "cnn_layers_2.3", "output shape"].item() == (9, 26, 26)
    assert rows["name"].iloc[-1] == "linear_layers.0" and rows["output shape"].iloc[-1] == (2,)


def test_disorder_reports_score_the_model_on_each_test_set(tmp_path):
    from ssh_ood.physics.datasets import load_split, write_datasets

    write_datasets("smoke", 0, tmp_path / "data", progress=False)
    folder = train_models("smoke", tmp_path / "data", tmp_path / "run", [0], progress=False, n_workers=1, max_epochs=1)[0]
    model = load_model(folder)
    reports = disorder_reports(model, tmp_path / "data", [0.0, 0.5])
    assert [r["W"] for r in reports] == [0.0, 0.5]
    data = load_split(tmp_path / "data", "test", 0.5)
    with torch.no_grad():
        predicted = model(torch.from_numpy(data["X"]).unsqueeze(1)).argmax(1).numpy()
    assert abs(reports[1]["accuracy"] - (predicted == data["labels"]).mean()) < 1e-12
