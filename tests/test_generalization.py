"""Out-of-distribution evaluation (ssh_ood.ood.generalization): oracle = target, metrics, image metrics, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from ssh_ood.base.file_records import record_existing
from ssh_ood.base.io_utils import save_npz
from ssh_ood.nets.architecture import CNN_SSH, CNN_SSH_ThermEncod
from ssh_ood.nets.metrics import METRIC_NAMES
from ssh_ood.ood import generalization as gen
from ssh_ood.ood import model_evaluation as evaluation
from ssh_ood.ood.generalization import (
    CNNEnsemble,
    GeneralizationGrid,
    GridBatch,
    evaluate_grid,
    evaluate_models_on_grid,
)
from ssh_ood.ood.generalization_metrics import (
    GeneralizationCut,
    diagram_mae,
    diagram_rmse,
    diagram_ssim,
    recut,
)
from ssh_ood.ood.model_evaluation import (
    evaluate_model_dirs,
    is_evaluated,
    load_metrics,
    load_result,
    save_result,
)
from ssh_ood.physics.data_generation import target_diagram
from ssh_ood.physics.thermometer_encoding import thermometer_encode

GRID = GeneralizationGrid(n_W=6, W_max=5.0, n_realizations=3, n_v=24, v_max=2.0, seed=3)


def oracle(batch: GridBatch) -> np.ndarray:
    """Closed-form label of each chain (numpy, independent of the numba kernel): 1 iff sum ln|w| > sum ln|v|."""
    with np.errstate(divide="ignore"):
        return (np.log(np.abs(batch.w_n)).sum(axis=1) > np.log(np.abs(batch.v_n)).sum(axis=1)).astype(np.int64)[None]


def random_models(n: int, seed: int = 0, levels: int | None = None) -> list[CNN_SSH]:
    """Untrained models with non-trivial BatchNorm running statistics and biased logits."""
    torch.manual_seed(seed)
    models = []
    for _ in range(n):
        model = CNN_SSH() if levels is None else CNN_SSH_ThermEncod(levels)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.2, 0.2)
                    module.running_var.uniform_(0.01, 0.1)
                    module.weight.uniform_(0.5, 2.0)
            model.linear_layers[0].weight.mul_(20.0)
        models.append(model.eval())
    return models


def save_models(tmp_path, models) -> list:
    dirs = []
    for k, model in enumerate(models):
        directory = tmp_path / f"model_{k:03d}"
        directory.mkdir()
        torch.save(model.state_dict(), directory / "weights.pt")
        record_existing(directory, {"kind": "model", "index": k})  # readers verify a model folder's files
        dirs.append(directory)
    return dirs


# ----------------------------------------------------------------------------------------------
# the oracle must reproduce the target
# ----------------------------------------------------------------------------------------------
def test_oracle_reproduces_target_exactly():
    result = evaluate_grid(oracle, 1, GRID, chunk_size=7, progress=False).result(0)
    # the target is the same as the one drawn independently by data_generation.target_diagram
    np.testing.assert_array_equal(result.target, target_diagram(GRID.W_values, GRID.v_values, 3, seed=3))
    np.testing.assert_array_equal(result.predicted, result.target)
    summary = result.summary()
    assert summary["rmse"] == 0.0 and summary["mae"] == 0.0
    assert summary["ssim"] == pytest.approx(1.0)
    assert summary["well_generalizing"] is True
    assert (result.set_metrics["accuracy"] == 1.0).all()
    assert summary["ood"]["accuracy"] == 1.0 and summary["clean"]["accuracy"] == 1.0


def test_clean_row_is_the_clean_phase_diagram():
    """W = 0: every realization is the clean chain, topological iff v < 1 (n_v even: v = 1 is not on the grid)."""
    result = evaluate_grid(oracle, 1, GRID, progress=False).result(0)
    np.testing.assert_array_equal(result.target[0], (GRID.v_values < 1).astype(float))
    clean = result.clean_metrics()
    assert all(value == 1.0 for value in clean.values())  # both classes present in every clean set


def test_same_seed_same_grid_and_chunking_does_not_matter():
    one = evaluate_grid(oracle, 1, GRID, chunk_size=5, progress=False).result(0)
    two = evaluate_grid(oracle, 1, GRID, chunk_size=10_000, progress=False).result(0)
    np.testing.assert_array_equal(one.target, two.target)
    other_seed = evaluate_grid(oracle, 1, GeneralizationGrid(6, 5.0, 3, 24, 2.0, seed=4), progress=False).result(0)
    assert not np.array_equal(one.target[1:], other_seed.target[1:])


# ----------------------------------------------------------------------------------------------
# metrics against scikit-learn
# ----------------------------------------------------------------------------------------------
def test_set_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    seen: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def noisy(batch: GridBatch) -> np.ndarray:
        """Two models: the truth flipped with probability 0.3, and random guesses."""
        flipped = np.where(rng.random(batch.labels.size) < 0.3, 1 - batch.labels, batch.labels)
        guesses = rng.integers(0, 2, batch.labels.size)
        seen[batch.W] = (batch.labels.copy(), np.stack([flipped, guesses]))
        return np.stack([flipped, guesses])

    acc = evaluate_grid(noisy, 2, GRID, chunk_size=GRID.samples_per_row, progress=False)
    n_v = GRID.n_v
    for row, W in enumerate(GRID.W_values):
        labels, predictions = seen[float(W)]
        for model in range(2):
            for r in range(GRID.n_realizations):
                part = slice(r * n_v, (r + 1) * n_v)
                y, p = labels[part], predictions[model, part]
                precision, recall, f1, _ = precision_recall_fscore_support(y, p, labels=[0, 1], zero_division=0)
                expected = {
                    "accuracy": accuracy_score(y, p),
                    "precision_trivial": precision[0], "recall_trivial": recall[0], "f1_trivial": f1[0],
                    "precision_topological": precision[1], "recall_topological": recall[1], "f1_topological": f1[1],
                    "macro_precision": precision.mean(), "macro_recall": recall.mean(), "macro_f1": f1.mean(),
                }
                for name in METRIC_NAMES:
                    assert acc.set_metrics[name][model, row, r] == pytest.approx(expected[name], abs=1e-12), name
            np.testing.assert_array_equal(
                acc.predicted_counts[model, row], predictions[model].reshape(GRID.n_realizations, n_v).sum(axis=0)
            )
    result = acc.result(1)
    assert result.ood_metrics()["accuracy"] == pytest.approx(acc.set_metrics["accuracy"][1].mean())
    assert result.clean_metrics()["macro_f1"] == pytest.approx(acc.set_metrics["macro_f1"][1, 0].mean())


# ----------------------------------------------------------------------------------------------
# image metrics on known images
# ----------------------------------------------------------------------------------------------
def test_rmse_and_ssim_on_known_images():
    rng = np.random.default_rng(1)
    image = rng.random((20, 30))
    assert diagram_rmse(image, image) == 0.0
    assert diagram_ssim(image, image) == pytest.approx(1.0)
    assert diagram_rmse(np.clip(image, 0, 0.7), np.clip(image, 0, 0.7) + 0.3) == pytest.approx(0.3)
    assert diagram_rmse(np.ones((5, 5)), np.zeros((5, 5))) == 1.0
    # constant images a, b: SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * data_range)^2
    a, b, c1 = 0.8, 0.3, 1e-4
    assert diagram_ssim(np.full((10, 10), a), np.full((10, 10), b)) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    # anti-correlated structure has negative SSIM; a small image uses a smaller window
    assert diagram_ssim(image, 1 - image) < 0
    assert np.isfinite(diagram_ssim(image[:4, :10], image[:4, :10] * 0.5))
    assert np.isnan(diagram_ssim(image[:2], image[:2]))


def test_ssim_uses_the_largest_odd_window_up_to_seven_and_diagrams_are_read_as_fractions():
    """SSIM against scikit-image with the window stated in the docstring: 7 x 7 on large diagrams, the largest odd
    size that fits a smaller one (6 -> 5). Boolean or unsigned-integer 0/1 diagrams are fractions like float ones
    (no wrap-around of an unsigned difference)."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(5)
    for shape, window in (((12, 15), 7), ((6, 9), 5), ((8, 7), 7)):
        predicted, target = rng.random(shape), (rng.random(shape) > 0.5).astype(float)
        expected = structural_similarity(predicted, target, data_range=1.0, win_size=window)
        assert diagram_ssim(predicted, target) == pytest.approx(expected, abs=1e-12), shape
    predicted, target = rng.random((9, 9)) > 0.5, rng.random((9, 9)) > 0.5
    for cast in (bool, np.uint8):
        assert diagram_mae(predicted.astype(cast), target.astype(cast)) == diagram_mae(predicted * 1.0, target * 1.0)
        assert diagram_rmse(predicted.astype(cast), target.astype(cast)) == diagram_rmse(predicted * 1.0, target * 1.0)


def test_diagrams_and_thresholds_are_checked_before_use():
    """Empty diagrams, or a non-finite value in either one, are refused by name; a threshold is stored as a float
    (a record holds plain numbers), may be 0 (only a perfect diagram passes) and is refused by name otherwise."""
    for predicted, target in ((np.zeros((0, 3)), np.zeros((0, 3))), (np.array([[np.nan, 0.0]]), np.zeros((1, 2))),
                              (np.zeros((1, 2)), np.array([[0.0, np.inf]]))):
        for metric in (diagram_mae, diagram_rmse, diagram_ssim):
            with pytest.raises(ValueError, match="^diagrams must be non-empty and finite$"):
                metric(predicted, target)
    for threshold in (1, np.float32(0.25), "0.3"):
        assert type(GeneralizationCut("rmse", threshold).threshold) is float
    assert GeneralizationCut("mae", 0).passes({"mae": 0.0}) and not GeneralizationCut("mae", 0).passes({"mae": 1e-9})
    with pytest.raises(ValueError, match=r"^threshold \(well-generalizing cut\) must be a number, got 'high'$"):
        GeneralizationCut("mae", "high")
    with pytest.raises(ValueError, match=r"must be finite and >= 0, got -0.1$"):
        GeneralizationCut("mae", -0.1)


def test_image_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        diagram_rmse(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="equal shape"):
        diagram_ssim(np.zeros((8, 8)), np.zeros((8, 9)))


# ----------------------------------------------------------------------------------------------
# CNN ensembles
# ----------------------------------------------------------------------------------------------
def test_ensemble_predictions_equal_each_module_alone():
    grid = GeneralizationGrid(n_W=2, W_max=1.0, n_realizations=2, n_v=30, v_max=2.0, seed=0)
    models = random_models(3) + random_models(1, seed=5, levels=3)
    v_n, w_n = grid.row_hoppings(1)
    from ssh_ood.physics.data_generation import observables, winding_number

    X = observables(v_n, w_n).astype(np.float32)
    batch = GridBatch(X=X, labels=winding_number(v_n, w_n), v_n=v_n, w_n=w_n, W=1.0)
    predicted = CNNEnsemble(models, device="cpu")(batch)
    x = torch.from_numpy(X).unsqueeze(1)
    with torch.no_grad():
        for k, model in enumerate(models):
            inputs = x if model.in_channels == 1 else thermometer_encode(x, model.in_channels)
            logits = model(inputs)
            decided = (logits[:, 1] - logits[:, 0]).abs() > 1e-4  # ignore float ties
            assert decided.float().mean() > 0.9
            np.testing.assert_array_equal(predicted[k][decided.numpy()], logits.argmax(1).numpy()[decided.numpy()])
    alone = CNNEnsemble(models[1:2], device="cpu")(batch)
    np.testing.assert_array_equal(alone[0], predicted[1])  # a model's output does not depend on the others
    assert len({tuple(p) for p in predicted}) > 1  # the models really differ


def test_evaluate_models_on_grid_returns_consistent_results():
    models = random_models(2)
    results = evaluate_models_on_grid(models, GRID, progress=False)
    reference = evaluate_grid(oracle, 1, GRID, progress=False).result(0)
    for result in results:
        np.testing.assert_array_equal(result.target, reference.target)
        assert result.predicted.shape == (GRID.n_W, GRID.n_v)
        assert np.allclose(result.predicted * 3, np.round(result.predicted * 3))  # multiples of 1/R
        expected_rmse = np.sqrt(np.mean((result.predicted - result.target) ** 2))
        assert result.summary()["rmse"] == pytest.approx(expected_rmse)


def test_mae_and_rmse_of_known_diagrams():
    target = np.zeros((2, 4))
    predicted = target.copy()
    predicted[0, 0] = 1.0  # one cell wrong by 1 of 8: MAE 1/8, RMSE sqrt(1/8)
    assert diagram_mae(predicted, target) == pytest.approx(1 / 8)
    assert diagram_rmse(predicted, target) == pytest.approx(np.sqrt(1 / 8))
    spread = np.full((2, 4), 0.125)  # the same total error spread evenly: MAE unchanged, RMSE = MAE
    assert diagram_mae(spread, target) == pytest.approx(1 / 8) and diagram_rmse(spread, target) == pytest.approx(1 / 8)


def test_mae_is_bounded_by_the_error_fraction_and_by_the_rmse():
    """Per cell |P - T| <= the fraction of its R chains misclassified (errors of opposite sign cancel), so
    MAE <= 1 - OOD accuracy; and RMSE >= MAE (Jensen). Equality in the first when errors in a cell share a
    sign, which is why the paper's "RMSE" column, linear in 1 - accuracy, behaves like an MAE."""
    for k, result in enumerate(evaluate_models_on_grid(random_models(3, seed=5), GRID, progress=False)):
        summary = result.summary()
        assert summary["mae"] <= 1 - summary["ood"]["accuracy"] + 1e-12, k
        assert summary["rmse"] >= summary["mae"] - 1e-12, k


def test_generalization_cut_validates_and_reads_old_files():
    assert GeneralizationCut().to_dict() == {"metric": "mae", "threshold": 0.2}
    assert GeneralizationCut("rmse", 0.2).label == "RMSE ≤ 0.2"
    assert GeneralizationCut().passes({"mae": 0.2}) and not GeneralizationCut().passes({"mae": 0.21})
    with pytest.raises(ValueError, match="cut metric"):
        GeneralizationCut("lpips", 0.2)
    with pytest.raises(ValueError, match="finite"):
        GeneralizationCut("mae", float("nan"))
    assert GeneralizationCut.stored_in({"rmse_threshold": 0.3}) == GeneralizationCut("rmse", 0.3)
    assert GeneralizationCut.stored_in({}) == GeneralizationCut()
    with pytest.raises(ValueError, match="manifest.json: generalization_cut"):
        GeneralizationCut.stored_in({"generalization_cut": [0.2]}, "manifest.json")


def test_a_stored_cut_reads_back_as_itself_and_a_malformed_one_is_refused_by_name():
    """from_dict inverts to_dict for both metrics; a record with a missing or extra key, an unknown metric or a
    bad threshold is refused with the place it came from (default "cut")."""
    for cut in (GeneralizationCut(), GeneralizationCut("rmse", 0.35)):
        assert GeneralizationCut.from_dict(cut.to_dict()) == cut
        assert GeneralizationCut.stored_in({"generalization_cut": cut.to_dict(), "rmse_threshold": 0.9}) == cut
    for bad in ({"metric": "mae"}, {"threshold": 0.2}, {"metric": "mae", "threshold": 0.2, "extra": 1}):
        with pytest.raises(ValueError, match=r"^cut: a generalization cut is \{'metric'"):
            GeneralizationCut.from_dict(bad)
    with pytest.raises(ValueError, match=r"^stats.json: cut metric must be one of"):
        GeneralizationCut.from_dict({"metric": "lpips", "threshold": 0.2}, "stats.json")
    with pytest.raises(ValueError, match=r"^cut: threshold \(well-generalizing cut\) must be finite"):
        GeneralizationCut.from_dict({"metric": "rmse", "threshold": -1.0})
    with pytest.raises(ValueError, match=r"^record: generalization_cut: a generalization cut is"):
        GeneralizationCut.stored_in({"generalization_cut": [0.2]})
    # recut replaces the cut and the verdict, and nothing else
    summary = {"mae": 0.3, "rmse": 0.1, "generalization_cut": {"metric": "mae", "threshold": 0.2}, "well_generalizing": False}
    assert recut(summary, GeneralizationCut("rmse", 0.2)) == {
        "mae": 0.3, "rmse": 0.1, "generalization_cut": {"metric": "rmse", "threshold": 0.2}, "well_generalizing": True}


def test_metrics_written_before_the_mae_get_it_from_their_diagrams(tmp_path):
    directory = save_models(tmp_path, random_models(1, seed=2))[0]
    summary = evaluate_model_dirs([directory], GRID, progress=False)[0]
    old = {key: value for key, value in summary.items() if key not in ("mae", "generalization_cut")}
    old["rmse_threshold"] = 0.2
    (directory / evaluation.METRICS_FILE).write_text(json.dumps(old))
    evaluated = {"grid": GRID.to_dict(), "weights": "last"}  # an old file recorded as it is (record-files)
    record_existing(directory, {"kind": "model", "index": 0},
                    {evaluation.METRICS_FILE: evaluated, evaluation.PHASE_DIAGRAM_FILE: evaluated})
    loaded = load_metrics(directory)
    result = load_result(directory)
    assert loaded["mae"] == pytest.approx(float(np.mean(np.abs(result.predicted - result.target))))
    assert loaded["generalization_cut"] == {"metric": "rmse", "threshold": 0.2} and "rmse_threshold" not in loaded
    # the next evaluation call upgrades the file to the requested cut without re-running the model
    upgraded = evaluate_model_dirs([directory], GRID, progress=False)[0]
    assert json.loads((directory / evaluation.METRICS_FILE).read_text()) == upgraded
    assert upgraded["generalization_cut"] == {"metric": "mae", "threshold": 0.2}


# ----------------------------------------------------------------------------------------------
# model folders: files, skipping, resume
# ----------------------------------------------------------------------------------------------
def test_model_dirs_write_reload_and_skip(tmp_path):
    dirs = save_models(tmp_path, random_models(2))
    summaries = evaluate_model_dirs(dirs, GRID, progress=False, cut=GeneralizationCut("rmse", 0.5))
    for directory, summary in zip(dirs, summaries, strict=True):
        assert is_evaluated(directory, GRID)
        result = load_result(directory)
        assert diagram_rmse(result.predicted, result.target) == pytest.approx(summary["rmse"], abs=1e-6)
        assert summary["well_generalizing"] == (summary["rmse"] <= 0.5)
        assert not (directory / evaluation.PARTIAL_FILE).exists()
    stamp = (dirs[0] / evaluation.PHASE_DIAGRAM_FILE).stat().st_mtime_ns
    again = evaluate_model_dirs(dirs, GRID, progress=False, cut=GeneralizationCut("rmse", 0.5))
    assert again == summaries and (dirs[0] / evaluation.PHASE_DIAGRAM_FILE).stat().st_mtime_ns == stamp
    # a new cut is applied without re-running the models
    strict = evaluate_model_dirs(dirs, GRID, progress=False, cut=GeneralizationCut("rmse", 0.0))
    assert [s["rmse"] for s in strict] == [s["rmse"] for s in summaries]
    assert not any(s["well_generalizing"] for s in strict if s["rmse"] > 0)
    by_mae = evaluate_model_dirs(dirs, GRID, progress=False, cut=GeneralizationCut("mae", 0.3))
    assert [s["well_generalizing"] for s in by_mae] == [s["mae"] <= 0.3 for s in summaries]
    assert load_metrics(dirs[0])["generalization_cut"] == {"metric": "mae", "threshold": 0.3}
    assert (dirs[0] / evaluation.PHASE_DIAGRAM_FILE).stat().st_mtime_ns == stamp
    # new weights make the evaluation stale; another grid too
    torch.save(random_models(1, seed=9)[0].state_dict(), dirs[0] / "weights.pt")
    assert not is_evaluated(dirs[0], GRID) and is_evaluated(dirs[1], GRID)
    assert not is_evaluated(dirs[1], GeneralizationGrid(6, 5.0, 3, 24, 2.0, seed=4))


def test_interrupted_evaluation_resumes_from_checkpointed_rows(tmp_path, monkeypatch):
    dirs = save_models(tmp_path, random_models(2))
    reference = evaluate_models_on_grid(random_models(2), GRID, progress=False)
    original_add_row = gen.GridAccumulator.add_row

    def add_row_then_die(self, row, labels, predictions):
        if row == 3:
            raise KeyboardInterrupt
        original_add_row(self, row, labels, predictions)

    monkeypatch.setattr(gen.GridAccumulator, "add_row", add_row_then_die)
    with pytest.raises(KeyboardInterrupt):
        evaluate_model_dirs(dirs, GRID, progress=False, checkpoint_interval_s=0.0)
    monkeypatch.setattr(gen.GridAccumulator, "add_row", original_add_row)
    assert all((d / evaluation.PARTIAL_FILE).exists() for d in dirs)
    rows_generated = []
    original_rows = GeneralizationGrid.row_hoppings
    monkeypatch.setattr(GeneralizationGrid, "row_hoppings",
                        lambda self, row: rows_generated.append(row) or original_rows(self, row))
    evaluate_model_dirs(dirs, GRID, progress=False)
    assert rows_generated == [3, 4, 5]  # rows 0-2 came from the checkpoints
    for directory, expected in zip(dirs, reference, strict=True):
        result = load_result(directory)
        np.testing.assert_array_equal(result.predicted_counts, expected.predicted_counts)
        np.testing.assert_allclose(result.set_metrics["macro_f1"], expected.set_metrics["macro_f1"], atol=1e-7)
        assert not (directory / evaluation.PARTIAL_FILE).exists()


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------
def test_missing_folder_and_corrupt_weights_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_404"):
        evaluate_model_dirs([tmp_path / "model_404"], GRID, progress=False)
    empty = tmp_path / "model_000"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="weights.pt"):
        evaluate_model_dirs([empty], GRID, progress=False)
    (empty / "weights.pt").write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="weights.pt"):
        evaluate_model_dirs([empty], GRID, progress=False)
    with pytest.raises(ValueError, match="which"):
        evaluate_model_dirs([empty], GRID, which="first", progress=False)


def test_mismatched_shapes_give_clear_errors(tmp_path):
    result = evaluate_grid(oracle, 1, GRID, progress=False).result(0)
    save_result(result, tmp_path)
    path = tmp_path / evaluation.PHASE_DIAGRAM_FILE
    arrays = dict(np.load(path))
    arrays["predicted"] = arrays["predicted"][:, :-1]
    save_npz(path, arrays)
    with pytest.raises(ValueError, match="phase_diagram.npz.*predicted_counts"):
        load_result(tmp_path)
    del arrays["set_accuracy"]
    save_npz(path, arrays)
    with pytest.raises(ValueError, match="set_accuracy"):
        load_result(tmp_path)
    with pytest.raises(ValueError, match="predictor returned shape"):
        evaluate_grid(lambda batch: np.zeros((2, batch.labels.size), dtype=int), 1, GRID, progress=False)
    with pytest.raises(ValueError, match="labels 0 and 1"):
        evaluate_grid(lambda batch: np.full((1, batch.labels.size), 2), 1, GRID, progress=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"n_W": 0}, "grid sizes"), ({"seed": -1}, "seed"), ({"W_max": float("nan")}, "W_max"), ({"n_v": 2.5}, "n_v")],
)
def test_invalid_grid_parameters(changes, message):
    fields = {"n_W": 4, "W_max": 5.0, "n_realizations": 2, "n_v": 10, "v_max": 2.0, "seed": 0}
    with pytest.raises(ValueError, match=message):
        GeneralizationGrid(**{**fields, **changes})


def test_invalid_settings():
    with pytest.raises(ValueError, match="threshold"):
        evaluate_grid(oracle, 1, GRID, progress=False).result(0).summary(GeneralizationCut("mae", -0.1))
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_grid(oracle, 1, GRID, chunk_size=0, progress=False)
    with pytest.raises(ValueError, match="inference_threads"):
        with gen.thread_limits(inference_threads=0):
            pass
    with pytest.raises(ValueError, match="at least one model"):
        CNNEnsemble([])


def test_grid_from_preset_is_the_papers():
    grid = GeneralizationGrid.from_preset("paper", seed=0)
    assert grid.n_samples == 200_000
    np.testing.assert_allclose(grid.W_values, np.linspace(0, 5, 100))
    np.testing.assert_allclose(grid.v_values, np.linspace(0, 2, 200))
    assert GeneralizationGrid.from_dict(grid.to_dict()) == grid
