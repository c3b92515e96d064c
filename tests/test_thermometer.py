"""Thermometer encoding: exact channel patterns, round trip, the encoded network's size and shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ssh_ood.nets.architecture import CNN_SSH_ThermEncod, count_parameters
from ssh_ood.physics.thermometer_encoding import thermometer_decode, thermometer_encode, thresholds


def _pixels(values):
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def test_exact_channel_patterns_fixed_convention():
    levels = 4  # thresholds 0, 1/4, 1/2, 3/4
    values = [0.0, 1e-9, 0.25, 0.2500001, 0.5, 0.75, 0.9, 1.0]
    expected = [
        [0, 0, 0, 0],  # 0 lights nothing
        [1, 0, 0, 0],  # anything above 0 lights channel 0
        [1, 0, 0, 0],  # exactly on a threshold: not above it
        [1, 1, 0, 0],
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [1, 1, 1, 1],
        [1, 1, 1, 1],  # 1 lights every channel: all L carry information
    ]
    encoded = thermometer_encode(_pixels(values), levels)
    np.testing.assert_array_equal(encoded[:, :, 0, 0], expected)
    assert encoded.dtype == np.float32


def test_paper_convention_never_lights_last_channel():
    levels = 4  # thresholds 0, 1/3, 2/3, 1
    values = np.linspace(0, 1, 101)
    encoded = thermometer_encode(_pixels(values), levels, convention="paper")
    assert encoded[:, -1].max() == 0  # X <= 1 is never > 1: the paper's off-by-one
    np.testing.assert_array_equal(encoded[-1, :, 0, 0], [1, 1, 1, 0])
    np.testing.assert_allclose(thresholds(4, "paper"), [0, 1 / 3, 2 / 3, 1])


@pytest.mark.parametrize("levels", [2, 5, 15])
def test_round_trip_gives_ceil_of_level(levels):
    x = np.random.default_rng(levels).random(2000)
    x = x[np.abs(x * levels - np.round(x * levels)) > 1e-6]  # stay off the thresholds
    decoded = thermometer_decode(thermometer_encode(_pixels(x), levels))
    np.testing.assert_array_equal(decoded[:, 0, 0, 0], np.ceil(levels * x).astype(np.int64))
    # channels are monotone: a lit channel implies every lower one is lit
    encoded = thermometer_encode(_pixels(x), levels)
    assert (np.diff(encoded[:, :, 0, 0], axis=1) <= 0).all()


def test_torch_and_numpy_agree():
    x = np.random.default_rng(0).random((3, 1, 50, 50)).astype(np.float32)
    np_out = thermometer_encode(x, 6)
    torch_out = thermometer_encode(torch.from_numpy(x), 6)
    assert isinstance(torch_out, torch.Tensor) and torch_out.shape == (3, 6, 50, 50)
    np.testing.assert_array_equal(torch_out.numpy(), np_out)
    np.testing.assert_array_equal(thermometer_decode(torch_out).numpy(), thermometer_decode(np_out))


@pytest.mark.parametrize("bad", [np.full((1, 1, 2, 2), 1.5), np.full((1, 1, 2, 2), -0.1), np.full((1, 1, 2, 2), np.nan)])
def test_out_of_range_input_is_rejected(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thermometer_encode(bad, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thermometer_encode(torch.from_numpy(bad), 4)


def test_bad_shapes_and_levels_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        thermometer_encode(np.zeros((2, 3, 4, 4)), 4)
    with pytest.raises(ValueError, match="levels"):
        thermometer_encode(np.zeros((2, 1, 4, 4)), 1)
    with pytest.raises(ValueError, match="convention"):
        thermometer_encode(np.zeros((2, 1, 4, 4)), 4, convention="other")


@pytest.mark.parametrize("levels", [1, 2, 3, 15])
def test_encoded_network_size_and_shapes(levels):
    model = CNN_SSH_ThermEncod(levels)
    assert count_parameters(model) == 962 * levels**2 + 60 * levels + 2
    x = torch.rand(2, 1, 50, 50)
    encoded = thermometer_encode(x, levels) if levels > 1 else x
    model.eval()
    assert model.features(encoded).shape == (2, 9 * levels, 26, 26)
    assert model(encoded).shape == (2, 2)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(2, levels + 1, 50, 50))


def test_explorer_sliders_change_what_is_shown():
    from ssh_ood.figures.thermometer_figures import ThermometerExplorer, figure_thermometer
    from ssh_ood.physics.data_generation import generate_dataset

    X = generate_dataset("test", 5, 0.0, seed=0)["X"][1]
    explorer = ThermometerExplorer(X, levels=15)
    edge = explorer.encoded.copy()
    assert edge.shape == (50, 15)
    np.testing.assert_array_equal(edge, thermometer_encode(X[:, 24].reshape(1, 1, 50, 1), 15)[0, :, :, 0].T)
    explorer.eigenstate.value = 0
    assert not np.array_equal(explorer.encoded, edge)
    explorer.levels.value = 4
    assert explorer.encoded.shape == (50, 4)
    fig = figure_thermometer(X, 15, highlight=1)
    assert len(fig.axes) == 4  # three panels and the colour bar of (c)
    with pytest.raises(ValueError, match="highlight"):
        figure_thermometer(X, 15, highlight=15)


def test_notebook_07_runs_and_compares_both_encodings(tmp_path):
    from ssh_ood.base.notebook_runner import run_notebook
    from ssh_ood.base.paths import REPO_ROOT
    from ssh_ood.nets.model_folders import load_config

    params = {"PRESET": "smoke", "DATA_DIR": str(tmp_path / "data"), "RUN_DIR": str(tmp_path / "run"),
              "FIGURES_DIR": str(tmp_path / "fig"), "COMPARE_LEVELS": 3, "N_MODELS": 1}
    run_notebook(REPO_ROOT / "07_thermometer_encoding.ipynb", tmp_path / "07.ipynb", params)
    for name in ("Fig_thermometer", "Fig_thermometer_generalization", "Fig_thermometer_generalization_precise_bn"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 1000
    assert load_config(tmp_path / "run" / "thermometer_L3" / "model_000")["thermometer_levels"] == 3
    assert load_config(tmp_path / "run" / "real_valued" / "model_000")["thermometer_levels"] in (None, 0)
    for run in ("real_valued", "thermometer_L3"):
        assert (tmp_path / "run" / run / "model_000" / "generalization_metrics.json").is_file()


def _comparison_table(first_rmse, second_rmse):
    import pandas as pd

    rows = []
    for encoding, rmse in (("real-valued", first_rmse), ("thermometer L=2", second_rmse)):
        for model, value in enumerate(rmse):
            rows.append({"encoding": encoding, "model": model, "clean_accuracy": 0.9, "ood_accuracy": 1 - value,
                         "ood_macro_f1": 1 - value, "rmse": value, "ssim": 0.5})
    return pd.DataFrame(rows)


def test_comparison_summary_pairs_models_and_detects_a_shift():
    from ssh_ood.ood.thermometer_experiment import summarize_comparison

    rng = np.random.default_rng(3)
    base = rng.uniform(0.1, 0.7, 12)
    shifted = base - 0.05 - rng.uniform(0, 0.01, 12)  # every model better by ~0.05: a paired shift
    summary = summarize_comparison(_comparison_table(base, shifted), rmse_threshold=0.2)
    real = summary["encodings"]["real-valued"]
    assert real["n_models"] == 12
    assert real["rmse"]["median"] == pytest.approx(np.median(base))
    assert real["well_generalizing_fraction"] == pytest.approx(np.mean(base <= 0.2))
    paired = summary["paired"]["rmse"]
    assert paired["median_difference"] == pytest.approx(np.median(shifted - base))
    assert paired["wilcoxon_p"] < 0.001  # 12 of 12 differences negative: exact p = 2 / 2**12
    # the same values shuffled between models: the spread is unchanged but the pairing is broken
    scrambled = summarize_comparison(_comparison_table(base, base[::-1]), rmse_threshold=0.2)
    assert scrambled["paired"]["rmse"]["wilcoxon_p"] > 0.05
    assert summarize_comparison(_comparison_table(base, base))["paired"]["rmse"]["wilcoxon_p"] is None


def test_comparison_summary_rejects_malformed_tables():
    from ssh_ood.ood.thermometer_experiment import summarize_comparison

    table = _comparison_table([0.1, 0.2], [0.1, 0.3])
    with pytest.raises(ValueError, match="lacks columns"):
        summarize_comparison(table.drop(columns="rmse"))
    with pytest.raises(ValueError, match="two encodings"):
        summarize_comparison(table[table["encoding"] == "real-valued"])


def test_thermometer_compare_cli_writes_table_summary_and_figure(tmp_path):
    import json

    import pandas as pd

    from ssh_ood.commands.cli import main

    out = tmp_path / "cmp"
    rc = main(["thermometer-compare", "--preset", "smoke", "--models", "1", "--levels", "3",
               "--data-dir", str(tmp_path / "data"), "--out", str(out), "--quiet"])
    assert rc == 0
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["encoding"].unique()) == ["real-valued", "thermometer L=3"]
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["levels"] == 3
    assert summary["encodings"]["thermometer L=3"]["rmse"]["median"] == pytest.approx(
        table.loc[table["encoding"] == "thermometer L=3", "rmse"].median())
    for ext in ("pdf", "png"):
        assert (out / f"Fig_thermometer_generalization.{ext}").stat().st_size > 1000


@pytest.mark.parametrize("W", [0.0, 1.0, 4.0])
def test_chiral_symmetry_caps_every_site_density_at_one_half(W):
    """Each eigenstate has weight 1/2 on each sublattice (A = even sites), so no pixel exceeds 1/2.

    This is why thermometer channels with threshold >= 1/2 never light up and L >= 3 is required.
    """
    from ssh_ood.physics.data_generation import observables, sample_hoppings
    from ssh_ood.physics.thermometer_encoding import MAX_SITE_DENSITY, MIN_INFORMATIVE_LEVELS, thresholds

    rng = np.random.default_rng(11)
    X = observables(*sample_hoppings(rng.uniform(0, 2, 300), W, rng))
    np.testing.assert_allclose(X[:, 0::2, :].sum(axis=1), 0.5, atol=1e-9)
    assert X.max() <= MAX_SITE_DENSITY + 1e-9
    def informative(levels):  # channels whose threshold lies strictly between 0 and the density cap
        t = thresholds(levels)
        return np.count_nonzero((t > 0) & (t < MAX_SITE_DENSITY))

    assert informative(MIN_INFORMATIVE_LEVELS - 1) == 0 and informative(MIN_INFORMATIVE_LEVELS) == 1


def test_comparison_rejects_uninformative_levels(tmp_path):
    from ssh_ood.ood.thermometer_experiment import compare_encodings

    with pytest.raises(ValueError, match="chiral symmetry"):
        compare_encodings("smoke", 0, 1, 2, tmp_path / "data", tmp_path / "run")


def test_comparison_reuses_real_valued_models_of_a_finished_run(tmp_path):
    from ssh_ood.nets.model_folders import model_dir_name
    from ssh_ood.nets.training_run import train_models
    from ssh_ood.ood.generalization import GeneralizationGrid
    from ssh_ood.ood.model_evaluation import evaluate_model_dirs
    from ssh_ood.ood.thermometer_experiment import compare_encodings
    from ssh_ood.physics.datasets import write_datasets

    data = tmp_path / "data"
    write_datasets("smoke", 0, data, progress=False)
    population = tmp_path / "population"
    with pytest.raises(ValueError, match="lacks the finished models"):
        compare_encodings("smoke", 0, 1, 3, data, tmp_path / "run", progress=False, real_valued_dir=population)
    train_models("smoke", data, population, [0], base_seed=0, progress=False)
    expected = evaluate_model_dirs([population / model_dir_name(0)], GeneralizationGrid.from_preset("smoke", 0),
                                   progress=False)[0]
    table = compare_encodings("smoke", 0, 1, 3, data, tmp_path / "run", progress=False, real_valued_dir=population)
    assert not (tmp_path / "run" / "real_valued").exists()
    real = table[table["encoding"] == "real-valued"].iloc[0]
    assert real["rmse"] == pytest.approx(expected["rmse"]) and real["ood_accuracy"] == pytest.approx(
        expected["ood"]["accuracy"])


def test_thermometer_compare_precise_batchnorm_reuses_the_trained_models(tmp_path):
    import pandas as pd

    from ssh_ood.commands.cli import main

    out, data = tmp_path / "cmp", tmp_path / "data"
    common = ["thermometer-compare", "--preset", "smoke", "--models", "1", "--levels", "3", "--data-dir", str(data),
              "--out", str(out), "--quiet"]
    assert main(common) == 0
    trained = {p: p.stat().st_mtime_ns for p in out.glob("*/model_*/weights.pt")}
    assert main([*common, "--batchnorm", "precise"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/model_*/weights.pt")} == trained  # not retrained
    table = pd.read_csv(out / "comparison_precise_bn.csv")
    assert len(table) == 2
    for run in ("real_valued", "thermometer_L3"):
        assert (out / "precise_bn" / run / "model_000" / "generalization_metrics.json").is_file()
    assert (out / "Fig_thermometer_generalization_precise_bn.png").stat().st_size > 1000


def test_real_valued_models_are_only_read_even_from_a_shipped_population(tmp_path, monkeypatch):
    """--real-valued-from reads its folder: no lock, no summary, no rewritten evaluation (here the stored one
    carries another well-generalizing cut, which an evaluation in place rewrites), so shipped data is usable."""
    import hashlib

    from ssh_ood.base import run_folders
    from ssh_ood.commands.cli import main
    from ssh_ood.nets.model_folders import model_dir_name
    from ssh_ood.nets.training_run import train_models
    from ssh_ood.ood.generalization import GeneralizationGrid
    from ssh_ood.ood.generalization_metrics import GeneralizationCut
    from ssh_ood.ood.model_evaluation import evaluate_model_dirs

    data, population = tmp_path / "data", tmp_path / "population"
    train_models("smoke", _smoke_data(data), population, [0], base_seed=0, progress=False)
    stored = evaluate_model_dirs([population / model_dir_name(0)], GeneralizationGrid.from_preset("smoke", 0),
                                 cut=GeneralizationCut("rmse", 0.05), progress=False)[0]
    (population / "summary.csv").unlink()  # a training run would write it again

    def snapshot():
        return {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted(population.rglob("*")) if p.is_file()}

    before = snapshot()
    shipped = run_folders.is_shipped
    monkeypatch.setattr(run_folders, "is_shipped", lambda folder: shipped(folder) or population in Path(folder).parents
                        or Path(folder) == population)
    out = tmp_path / "cmp"
    assert main(["thermometer-compare", "--preset", "smoke", "--models", "1", "--levels", "3", "--data-dir", str(data),
                 "--out", str(out), "--real-valued-from", str(population), "--quiet"]) == 0
    assert snapshot() == before
    assert not (out / "real_valued").exists()
    import pandas as pd

    real = pd.read_csv(out / "comparison.csv").query("encoding == 'real-valued'").iloc[0]
    assert real["rmse"] == pytest.approx(stored["rmse"]) and real["ood_accuracy"] == pytest.approx(
        stored["ood"]["accuracy"])
    (population / model_dir_name(0) / "generalization_metrics.json").unlink()  # no evaluation to read
    with pytest.raises(ValueError, match="not evaluated on grid .* only read here"):
        from ssh_ood.ood.thermometer_experiment import compare_encodings

        compare_encodings("smoke", 0, 1, 3, data, out, progress=False, real_valued_dir=population)


def _smoke_data(folder):
    from ssh_ood.physics.datasets import write_datasets

    write_datasets("smoke", 0, folder, progress=False)
    return folder


def test_shipped_comparison_is_read_checked_and_its_absence_stops_reproduce_before_any_work(tmp_path, monkeypatch):
    import pandas as pd

    from ssh_ood.commands.cli import main
    from ssh_ood.commands.reproduce import StepFailed, run_pipeline
    from ssh_ood.ood import shipped_thermometer_comparison as shipped

    monkeypatch.setattr(shipped, "SHIPPED_COMPARISONS_DIR", tmp_path / "shipped")
    with pytest.raises(StepFailed, match=r"cannot start: .*paper_L3/comparison.json: not found; make it with "
                                         r"`python -m ssh_ood thermometer-compare --preset paper --seed 1 --models 16 "
                                         r"--levels 3 .*--retrain"):
        run_pipeline("paper", out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # stopped before the first step

    monkeypatch.setattr(shipped, "SHIPPED_SEEDS", {"smoke": 0})
    folder = tmp_path / "shipped" / "smoke_L3"
    with pytest.raises(FileNotFoundError, match="--preset smoke --seed 0 --models 1 --levels 3 .*record-files"):
        shipped.read_shipped_comparison("smoke", 3)
    assert main(["thermometer-compare", "--preset", "smoke", "--models", "1", "--levels", "3",
                 "--data-dir", str(tmp_path / "data"), "--out", str(folder), "--quiet"]) == 0
    table, summary = shipped.read_shipped_comparison("smoke", 3)
    pd.testing.assert_frame_equal(table, pd.read_csv(folder / "comparison.csv"))
    assert summary["seed"] == 0 and summary["n_models"] == 1
    with pytest.raises(FileNotFoundError, match="comparison_precise_bn.json: not found.*--batchnorm precise"):
        shipped.read_shipped_comparison("smoke", 3, batchnorm="precise")
    monkeypatch.setattr(shipped, "SHIPPED_SEEDS", {"smoke": 1})
    with pytest.raises(ValueError, match="'seed': 0.*expected .*'seed': 1"):
        shipped.read_shipped_comparison("smoke", 3)
    monkeypatch.setattr(shipped, "SHIPPED_SEEDS", {"smoke": 0})
    csv = folder / "comparison.csv"
    csv.write_text(csv.read_text().replace("real-valued,0,", "real-valued,1,"))  # an altered table
    with pytest.raises(ValueError, match="comparison.csv"):
        shipped.read_shipped_comparison("smoke", 3)


def test_notebook_07_with_the_paper_preset_reads_the_shipped_comparison_and_trains_nothing(tmp_path):
    """The shipped folder is replaced by a stand-in with made-up numbers (set in a cell added to a copy of the
    notebook); the tables shown must be those numbers, the figures drawn, and no network trained."""
    import nbformat

    from ssh_ood.base.file_records import open_folder
    from ssh_ood.base.io_utils import atomic_write_bytes, save_json
    from ssh_ood.base.notebook_runner import run_notebook
    from ssh_ood.base.paths import REPO_ROOT
    from ssh_ood.ood.thermometer_experiment import comparison_command, summarize_comparison

    stand_in = tmp_path / "shipped" / "paper_L3"
    open_folder(stand_in, {"kind": "results"})
    table = _comparison_table([0.5, 0.15], [0.6, 0.7]).replace("thermometer L=2", "thermometer L=3")
    for suffix, batchnorm in (("", "running"), ("_precise_bn", "precise")):
        atomic_write_bytes(stand_in / f"comparison{suffix}.csv", table.to_csv(index=False).encode())
        save_json(stand_in / f"comparison{suffix}.json",
                  {"command": comparison_command("paper", 1, 2, 3, batchnorm), "preset": "paper", "seed": 1,
                   "levels": 3, "n_models": 2, "batchnorm": batchnorm, **summarize_comparison(table)})
    notebook = nbformat.read(REPO_ROOT / "07_thermometer_encoding.ipynb", as_version=4)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(
        f"import ssh_ood.ood.shipped_thermometer_comparison as shipped\nshipped.SHIPPED_COMPARISONS_DIR = "
        f"shipped.Path({str(stand_in.parent)!r})"))
    nbformat.write(notebook, tmp_path / "07.ipynb")
    params = {"PRESET": "paper", "DATA_DIR": str(tmp_path / "data"), "RUN_DIR": str(tmp_path / "run"),
              "FIGURES_DIR": str(tmp_path / "fig")}
    executed = run_notebook(tmp_path / "07.ipynb", tmp_path / "07_executed.ipynb", params)
    assert not (tmp_path / "run").exists()
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "shipped comparison, seed 1, 2 models per encoding: python -m ssh_ood thermometer-compare --preset paper" in printed
    shown = [o["data"]["text/plain"] for c in executed.cells if c.cell_type == "code" for o in c.outputs
             if o.get("output_type") == "display_data" and "rmse" in o.get("data", {}).get("text/plain", "")]
    assert len(shown) == 2 and all("0.15" in text and "0.7" in text for text in shown)  # the stand-in's RMSEs
    for name in ("Fig_thermometer_generalization", "Fig_thermometer_generalization_precise_bn"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 1000
