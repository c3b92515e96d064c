"""The CNN population (ssh_ood.ood.population), its browser (ssh_ood.figures.population_browser) and notebook 06."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from ssh_ood.base.notebook_runner import run_notebook
from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.commands.cli import main
from ssh_ood.figures import population_browser
from ssh_ood.figures.population_browser import (
    PopulationBrowser,
    message_figure,
    register_view,
    select_models,
    smooth,
)
from ssh_ood.figures.population_summary import correlation_table, summary_figure, summary_text
from ssh_ood.nets.model_folders import load_history
from ssh_ood.ood import population_tables as tables
from ssh_ood.ood.generalization_metrics import GeneralizationCut, diagram_rmse
from ssh_ood.ood.model_evaluation import load_metrics
from ssh_ood.ood.population import load_or_create_population, run_population
from ssh_ood.ood.population_settings import PopulationSettings, parse_model_indices
from ssh_ood.ood.population_tables import COLUMNS, load_population
from ssh_ood.physics.datasets import write_datasets

PRESET = "smoke"
FAST = {"train_workers": 1, "progress": False}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasets")
    write_datasets(PRESET, 0, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_dir):
    """Models 0-3 in one call."""
    folder = tmp_path_factory.mktemp("population_0-3")
    run_population(PopulationSettings(get_preset(PRESET), 0, folder, model_indices=[0, 1, 2, 3], data_dir=data_dir, **FAST))
    return folder


def weights_bytes(folder, index):
    return (folder / f"model_{index:03d}" / "weights.pt").read_bytes()


def test_chunks_equal_one_run_and_finished_models_are_never_redone(tmp_path, data_dir, full_run):
    chunked = tmp_path / "chunked"
    run_population(PopulationSettings(get_preset(PRESET), 0, chunked, model_indices=parse_model_indices("0-1", 4), data_dir=data_dir, **FAST))
    run_population(PopulationSettings(get_preset(PRESET), 0, chunked, model_indices=parse_model_indices("2-3", 4), data_dir=data_dir, **FAST))
    one_run = pd.read_csv(full_run / tables.STATS_FILE)
    pd.testing.assert_frame_equal(pd.read_csv(chunked / tables.STATS_FILE), one_run)
    for index in range(4):
        assert weights_bytes(chunked, index) == weights_bytes(full_run, index)
    assert len(set(one_run["model_seed"])) == 4 and one_run["model_index"].tolist() == [0, 1, 2, 3]
    # a second pass over 0-3 touches no model file
    files = sorted(p for p in chunked.glob("model_*/*"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    run_population(PopulationSettings(get_preset(PRESET), 0, chunked, model_indices=[0, 1, 2, 3], data_dir=data_dir, **FAST))
    assert {p: p.stat().st_mtime_ns for p in sorted(chunked.glob("model_*/*"))} == stamps
    manifest = json.loads((chunked / tables.MANIFEST_FILE).read_text())
    assert [run["models_done_now"] for run in manifest["runs"]] == [[0, 1], [2, 3], []]
    assert manifest["seeds"]["models"] == {"0": 0, "1": 1, "2": 2, "3": 3}
    assert manifest["total_wall_time_s"] == pytest.approx(sum(run["wall_time_s"] for run in manifest["runs"]))


def test_interrupted_population_finishes_only_what_is_missing(tmp_path, data_dir, full_run):
    """A model trained but not evaluated (e.g. killed during evaluation) is evaluated, not retrained."""
    folder = tmp_path / "population"
    run_population(PopulationSettings(get_preset(PRESET), 0, folder, model_indices=[0, 1], data_dir=data_dir, **FAST))
    for name in ("phase_diagram.npz", "generalization_metrics.json"):
        (folder / "model_001" / name).unlink()
    weights_stamp = (folder / "model_001" / "weights.pt").stat().st_mtime_ns
    run_population(PopulationSettings(get_preset(PRESET), 0, folder, model_indices=[0, 1], data_dir=data_dir, **FAST))
    assert (folder / "model_001" / "weights.pt").stat().st_mtime_ns == weights_stamp
    expected = pd.read_csv(full_run / tables.STATS_FILE).iloc[:2]
    pd.testing.assert_frame_equal(pd.read_csv(folder / tables.STATS_FILE), expected)


def test_stats_table_round_trips_and_matches_the_model_files(full_run):
    stats = pd.read_csv(full_run / tables.STATS_FILE)
    assert list(stats.columns) == list(COLUMNS)
    header, *rows = (full_run / tables.STATS_FILE).read_text().splitlines()
    assert len(rows) == 4 and all(len(row.split(",")) == len(header.split(",")) for row in rows)
    assert json.loads((full_run / tables.STATS_COLUMNS_FILE).read_text()) == COLUMNS
    assert stats["well_generalizing"].dtype == bool and stats["stopped_early"].dtype == bool
    for _, row in stats.iterrows():
        model_dir = full_run / f"model_{int(row['model_index']):03d}"
        metrics = load_metrics(model_dir)
        history = load_history(model_dir)
        assert row["rmse"] == metrics["rmse"] and row["mae"] == metrics["mae"]  # floats survive the CSV exactly
        assert row["ood_macro_f1"] == metrics["ood"]["macro_f1"]
        assert row["clean_accuracy"] == metrics["clean"]["accuracy"]
        assert row["final_val_loss"] == history["val_loss"][-1]
        assert row["well_generalizing"] == (row["mae"] <= 0.2)  # the default cut
    round_trip = full_run / "again.csv"
    stats.to_csv(round_trip, index=False)
    pd.testing.assert_frame_equal(pd.read_csv(round_trip), stats)


def test_population_folder_is_compact(full_run):
    for model_dir in full_run.glob("model_*"):
        names = {p.name for p in model_dir.iterdir()}
        assert "checkpoint.pt" not in names and "training_curve.png" not in names
        assert {"weights.pt", "history.json", "phase_diagram.npz", "generalization_metrics.json"} <= names
        assert sum(p.stat().st_size for p in model_dir.iterdir()) < 60_000


def test_load_population_accessors(full_run):
    population = load_population(full_run)
    assert population.indices == [0, 1, 2, 3]
    result = population.result(2)
    row = population.stats.set_index("model_index").loc[2]
    assert diagram_rmse(result.predicted, result.target) == pytest.approx(row["rmse"], abs=1e-6)
    assert len(population.history(2)["val_loss"]) == row["epochs_run"]
    assert population.columns == COLUMNS
    assert population.manifest["preset"] == PRESET
    with pytest.raises(ValueError, match="model index 7"):
        population.model_dir(7)


def test_missing_population_is_created_or_explained(tmp_path, data_dir, full_run):
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood population"):
        load_or_create_population(tmp_path / "absent", PRESET, create=False)
    created = load_or_create_population(tmp_path / "absent", PRESET, 0, fallback_dir=tmp_path / "fallback",
                                        data_dir=data_dir, **FAST)
    assert created.folder == tmp_path / "fallback" and created.indices == [0, 1]  # the smoke preset's 2 models
    pd.testing.assert_frame_equal(created.stats, pd.read_csv(full_run / tables.STATS_FILE).iloc[:2])
    assert load_or_create_population(full_run, PRESET, create=False).folder == full_run


def test_dask_scheduler_runs_chunks_like_one_process(tmp_path, data_dir, full_run):
    from distributed import LocalCluster

    folder = tmp_path / "dask"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        run_population(PopulationSettings(get_preset(PRESET), 0, folder, model_indices=[0, 1], data_dir=data_dir, scheduler=cluster.scheduler_address,
                       chunk_size=1, progress=False))
    expected = pd.read_csv(full_run / tables.STATS_FILE).iloc[:2]
    pd.testing.assert_frame_equal(pd.read_csv(folder / tables.STATS_FILE), expected)
    manifest = json.loads((folder / tables.MANIFEST_FILE).read_text())
    assert manifest["runs"][-1]["scheduler"].startswith("tcp://127.0.0.1")


def test_bad_inputs_give_clear_errors(tmp_path, data_dir, full_run):
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood population"):
        load_population(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / tables.STATS_FILE).write_text("model_index,rmse\n0,0.1\n")
    with pytest.raises(ValueError, match="header"):
        load_population(broken)
    with pytest.raises(ValueError, match="another run|preset 'smoke', seed 0"):
        run_population(PopulationSettings(get_preset(PRESET), 1, full_run, model_indices=[0], data_dir=data_dir, **FAST))
    with pytest.raises(ValueError, match="seed"):
        run_population(PopulationSettings(get_preset(PRESET), 1, tmp_path / "other", model_indices=[0], data_dir=data_dir, **FAST))
    with pytest.raises(ValueError, match="preset: a Preset"):  # resolved once, by the caller
        PopulationSettings(PRESET, 0, tmp_path / "x")
    with pytest.raises(ValueError, match="workers"):
        run_population(PopulationSettings(get_preset(PRESET), 0, tmp_path / "x", model_indices=[0], data_dir=data_dir, workers=0))
    for text in ("3-1", "a", "-2", "1-"):
        with pytest.raises(ValueError, match="--models"):
            parse_model_indices(text, 100)
    assert parse_model_indices("0-2,7, 5-5", 100) == [0, 1, 2, 5, 7]


def test_cli(tmp_path, data_dir, full_run, capsys):
    folder = tmp_path / "cli"
    code = main(["population", "--preset", PRESET, "--seed", "0", "--out", str(folder), "--models", "0",
                 "--data-dir", str(data_dir), "--quiet"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(folder / tables.STATS_FILE), pd.read_csv(full_run / tables.STATS_FILE).iloc[:1])
    # the training-curve figures only on request (drawn from history.json; nothing is retrained)
    assert not (folder / "model_000" / "training_curve.png").exists()
    weights = (folder / "model_000" / "weights.pt").read_bytes()
    assert main(["population", "--preset", PRESET, "--seed", "0", "--out", str(folder), "--models", "0",
                 "--data-dir", str(data_dir), "--training-figures", "--quiet"]) == 0
    assert (folder / "model_000" / "training_curve.png").stat().st_size > 1000
    assert (folder / "model_000" / "weights.pt").read_bytes() == weights
    assert main(["population", "--preset", PRESET, "--out", str(folder), "--models", "5-2", "--quiet"]) == 2
    assert "--models" in capsys.readouterr().err
    # `evaluate` on a run folder: the best-epoch weights replace the evaluation of the last ones only on
    # request, and the population's stats and manifest follow; printed per model
    assert main(["evaluate", "--run", str(folder), "--which", "best", "--quiet"]) == 2
    assert "--replace-evaluations" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(folder), "--which", "best", "--replace-evaluations", "--quiet"]) == 0
    assert "model_000" in capsys.readouterr().out
    assert load_metrics(folder / "model_000")["weights"] == "best"
    assert json.loads((folder / tables.MANIFEST_FILE).read_text())["evaluated_weights"] == "best_weights.pt"
    assert pd.read_csv(folder / tables.STATS_FILE)["rmse"].tolist() == [load_metrics(folder / "model_000")["rmse"]]
    assert main(["evaluate", "--run", str(tmp_path / "missing"), "--quiet"]) == 2


# ----------------------------------------------------------------------------------------------
# browser
# ----------------------------------------------------------------------------------------------
def test_helpers_of_the_browser(full_run):
    synthetic = pd.DataFrame({"model_index": [0, 1, 2, 3], "rmse": [0.1, 0.3, 0.2, 0.5]})
    assert select_models(synthetic, "rmse", 0.2, above=False) == [0, 2]
    assert select_models(synthetic, "rmse", 0.3, above=True) == [1, 3]
    with pytest.raises(ValueError, match="metric"):
        select_models(synthetic, "lpips", 0.2, above=False)
    stats = load_population(full_run).stats
    np.testing.assert_allclose(smooth([1.0, 3.0, 5.0, 7.0], 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(smooth([1.0, 2.0], 1), [1.0, 2.0])
    table = correlation_table(stats, ("rmse", "ood_accuracy", "ssim"))
    np.testing.assert_allclose(np.diag(table), 1.0)
    assert table.loc["rmse", "ood_accuracy"] == pytest.approx(np.corrcoef(stats["rmse"], stats["ood_accuracy"])[0, 1])
    both = stats.assign(mae=[0.1, 0.15, 0.3, 0.5], rmse=[0.15, 0.25, 0.4, 0.6])
    text = summary_text(both, GeneralizationCut("mae", 0.2))
    assert "4 models; 2 (50%) well generalizing (MAE ≤ 0.2); 1 (25%) with RMSE ≤ 0.2." in text
    assert "1 (25%) well generalizing (RMSE ≤ 0.2); 2 (50%) with MAE ≤ 0.2." in summary_text(both, GeneralizationCut("rmse", 0.2))
    fig = summary_figure(both, GeneralizationCut())
    assert len(fig.axes) == 4 and "2 (50%)" in fig.get_suptitle()


def test_browser_widgets_drive_what_is_shown(full_run, monkeypatch):
    loaded = load_population(full_run)
    stats = loaded.stats.assign(mae=[0.15, 0.4, 0.25, 0.6])  # distinct values (smoke models are near-constant)
    population = dataclasses.replace(loaded, stats=stats)
    browser = PopulationBrowser(population)
    # threshold above every MAE (the default metric): all models listed
    browser.threshold.value = browser.threshold.max
    assert [value for _, value in browser.model.options] == stats["model_index"].tolist()
    assert f"<b>{len(stats)}</b>" in browser.info.value
    # the lowest MAE only
    lowest = stats.sort_values("mae").iloc[0]
    browser.threshold.value = float(lowest["mae"])
    assert [value for _, value in browser.model.options] == [int(lowest["model_index"])]
    title = browser.figures["view"].axes[0].get_title()
    assert title.startswith(f"model {int(lowest['model_index'])}: predicted")
    # direction "above" at the minimum keeps everyone
    browser.direction.value = "above"
    assert len(browser.model.options) == len(stats)
    # another model, the history view and its smoothing
    browser.model.value = 3
    shown = browser.view_image.value
    browser.view.value = "training history"
    assert browser.figures["view"].get_suptitle() == "model 3: training history"
    assert browser.view_image.value != shown
    raw = browser.figures["view"].axes[0].lines[0].get_ydata()
    browser.smoothing.value = 2
    smoothed = browser.figures["view"].axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(smoothed, smooth(raw, 2))
    # scatter axes follow the dropdowns
    browser.x_axis.value = "ssim"
    browser.y_axis.value = "test_accuracy"
    layout = browser.scatter.layout
    assert (layout.xaxis.title.text, layout.yaxis.title.text) == ("SSIM", "test accuracy")
    assert list(browser.scatter.data[0].x) == stats["ssim"].tolist()
    # the CAM and PCA views of the interpretability modules, and a view registered later
    before = browser.view_image.value
    browser.view.value = "CAM"
    assert browser.view_image.value != before and len(browser.figures["view"].axes) > 1
    browser.view.value = "PCA"
    assert len(browser.figures["view"].axes) > 1
    monkeypatch.setattr(population_browser, "VIEWS", dict(population_browser.VIEWS))  # registry restored afterwards
    register_view("my view", lambda population, index, state: message_figure(f"custom {index}"))
    later = PopulationBrowser(population)
    later.view.value = "my view"
    assert later.figures["view"].axes[0].texts[0].get_text() == f"custom {later.model.value}"
    # metric change resets the slider to that metric's range
    browser.metric.value = "ood_accuracy"
    assert browser.threshold.min <= stats["ood_accuracy"].min() and browser.threshold.max >= stats["ood_accuracy"].max()
    # a filter that keeps nobody: every model has MAE > 0.2, the default cut
    nobody = PopulationBrowser(dataclasses.replace(loaded, stats=stats.assign(mae=[0.3, 0.4, 0.5, 0.6])))
    assert nobody.model.value is None and "<b>0</b>" in nobody.info.value
    assert "no model" in nobody.figures["view"].axes[0].texts[0].get_text()


def test_notebook_06_runs_headless(tmp_path, full_run):
    figures = tmp_path / "figures"
    notebook = run_notebook(
        REPO_ROOT / "06_100_cnns_analysis.ipynb",
        tmp_path / "06_executed.ipynb",
        {"POPULATION_DIR": str(full_run), "FIGURES_DIR": str(figures), "CREATE_IF_MISSING": False},
    )
    assert (figures / "Fig_population_summary.png").is_file() and (figures / "Fig_population_summary.pdf").is_file()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "4 models" in text


def test_committed_notebook_has_no_outputs():
    notebook = json.loads((REPO_ROOT / "06_100_cnns_analysis.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(not cell["outputs"] for cell in code)
    assert "parameters" in code[0]["metadata"]["tags"]
