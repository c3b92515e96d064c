"""Activations by hooks, PCA fit on clean data only, seeded UMAP, saving (ssh_ood.interpret.clustering_utils)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.clustering_utils import (
    LAYER_NAMES,
    ActivationSet,
    Projection,
    analyze_model_clustering,
    cluster_drift,
    collect_activations,
    load_projection,
    project_pca,
    project_umap,
    save_projection,
    transition_window_mask,
)
from ssh_ood.nets.architecture import CNN_SSH
from ssh_ood.physics.datasets import write_datasets

EXPECTED_WIDTH = {"input": 2500, "conv1": 5 * 26 * 26, "block1": 7 * 26 * 26, "block2": 9 * 26 * 26, "gap": 9}


def all_hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def model() -> CNN_SSH:
    torch.manual_seed(0)
    model = CNN_SSH()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_datasets("smoke", 0, folder, progress=False)
    return folder


def test_activations_match_an_independent_forward(model):
    x = torch.rand(7, 1, 50, 50, generator=torch.Generator().manual_seed(1))
    model.train()
    activations, logits = collect_activations(model, x, batch_size=3)
    assert model.training and all_hooks(model) == 0
    assert {k: v.shape for k, v in activations.items()} == {k: (7, w) for k, w in EXPECTED_WIDTH.items()}
    model.eval()
    with torch.no_grad():
        conv1 = F.conv2d(x, model.cnn_layers_1[0].weight, stride=2, padding=2)
        features = model.features(x)
        expected = {
            "input": x.flatten(1),
            "conv1": conv1.flatten(1),
            "block1": model.cnn_layers_1(x).flatten(1),
            "block2": features.flatten(1),
            "gap": features.mean(dim=(2, 3)),
        }
        expected_logits = model(x)
    model.train()
    for name in LAYER_NAMES:
        np.testing.assert_allclose(activations[name], expected[name].numpy(), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-5)


def test_hooks_do_not_accumulate(model):
    x = torch.rand(4, 1, 50, 50, generator=torch.Generator().manual_seed(2))
    first, _ = collect_activations(model, x)
    for _ in range(3):
        again, _ = collect_activations(model, x, layers=("conv1", "gap"))
    second, _ = collect_activations(model, x)
    assert all_hooks(model) == 0
    for name in LAYER_NAMES:
        assert second[name].shape == first[name].shape
        np.testing.assert_array_equal(second[name], first[name])
    with pytest.raises(ValueError, match="layers"):
        collect_activations(model, x, layers=("fc",))
    # torch's convolution refuses the empty width inside the forward pass, after the hooks are registered
    with pytest.raises(RuntimeError, match="input shape"):
        collect_activations(model, torch.rand(2, 1, 50, 0))
    assert all_hooks(model) == 0


def test_transition_window_mask():
    v = np.linspace(0.002, 2.002, 500)
    keep = transition_window_mask(v)
    assert keep.sum() == 400
    assert v[~keep].min() > 0.79 and v[~keep].max() < 1.21
    shuffled = np.random.default_rng(0).permutation(500)
    np.testing.assert_array_equal(transition_window_mask(v[shuffled]), keep[shuffled])
    with pytest.raises(ValueError, match="fraction"):
        transition_window_mask(v, 1.5)


def synthetic_sets(rng: np.random.Generator, disordered_scale: float) -> dict[float, ActivationSet]:
    sets = {}
    for W, scale in ((0.0, 1.0), (0.01, 1.0), (0.5, disordered_scale), (2.0, disordered_scale)):
        n = 30
        base = rng.normal(size=(n, 12)) * np.linspace(3, 0.1, 12)
        sets[W] = ActivationSet(
            W=W,
            activations={"gap": (scale * base).astype(np.float32)},
            labels=rng.integers(0, 2, n),
            predicted=rng.integers(0, 2, n),
            v=np.linspace(0, 2, n),
        )
    return sets


def test_pca_is_fit_on_the_reference_sets_only():
    sets = synthetic_sets(np.random.default_rng(0), disordered_scale=5.0)
    projection = project_pca(sets, "gap", reference_W=(0.0, 0.01))
    # independent PCA of the reference matrix by numpy SVD
    reference = np.concatenate([sets[0.0].activations["gap"], sets[0.01].activations["gap"]]).astype(np.float64)
    centred = reference - reference.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign((projection.components * vt[:2]).sum(axis=1))
    np.testing.assert_allclose(projection.components, signs[:, None] * vt[:2], atol=1e-5)
    np.testing.assert_allclose(projection.explained_variance_ratio, singular[:2] ** 2 / (singular**2).sum(), rtol=1e-5)
    expected = (sets[2.0].activations["gap"] - reference.mean(axis=0)) @ projection.components.T
    np.testing.assert_allclose(projection.points[2.0][["dim1", "dim2"]].to_numpy(), expected, atol=1e-4)
    # the disordered sets never enter the fit: replacing them changes nothing of the reference frame
    other = synthetic_sets(np.random.default_rng(0), disordered_scale=50.0)
    other[2.0].activations["gap"] = np.random.default_rng(9).normal(size=(30, 12)).astype(np.float32) * 100
    changed = project_pca(other, "gap", reference_W=(0.0, 0.01))
    np.testing.assert_array_equal(changed.components, projection.components)
    np.testing.assert_array_equal(changed.mean, projection.mean)
    np.testing.assert_array_equal(changed.points[0.0].to_numpy(), projection.points[0.0].to_numpy())
    assert not np.allclose(changed.points[2.0]["dim1"], projection.points[2.0]["dim1"])
    with pytest.raises(ValueError, match="missing"):
        project_pca(sets, "gap", reference_W=(0.0, 0.05))


def test_umap_is_deterministic_with_a_seed(tmp_path):
    sets = synthetic_sets(np.random.default_rng(1), disordered_scale=2.0)
    first = project_umap(sets, "gap", n_neighbors=5, seed=3)
    second = project_umap(sets, "gap", n_neighbors=5, seed=3)
    other_seed = project_umap(sets, "gap", n_neighbors=5, seed=4)
    for W in sets:
        np.testing.assert_array_equal(first.points[W].to_numpy(), second.points[W].to_numpy())
        assert len(first.points[W]) == 30
    assert not np.allclose(first.points[0.0]["dim1"], other_seed.points[0.0]["dim1"])
    assert first.pre_pca_variance is None  # 12 features: no reduction before UMAP
    reduced = [project_umap(sets, "gap", n_neighbors=5, seed=3, pre_pca=4) for _ in range(2)]
    assert 0.5 < reduced[0].pre_pca_variance < 1.0
    np.testing.assert_array_equal(reduced[0].points[2.0].to_numpy(), reduced[1].points[2.0].to_numpy())
    save_projection(first, tmp_path)
    loaded = load_projection(tmp_path, "umap", "gap")
    for W in sets:
        np.testing.assert_allclose(loaded.points[W].to_numpy(), first.points[W].to_numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="n_neighbors"):
        project_umap(sets, "gap", n_neighbors=1)


def test_analysis_of_one_model_writes_every_layer_and_W(model, data_dir, tmp_path):
    preset = get_preset("smoke")
    reference_W = (0.0, *preset.perturbative_W)
    result = analyze_model_clustering(
        model, data_dir, tmp_path, reference_W, preset.ood_W, umap_n_neighbors=None, exclude_transition=True
    )
    assert set(result["pca"]) == set(LAYER_NAMES) and not result["umap"]
    for layer in LAYER_NAMES:
        loaded = load_projection(tmp_path, "pca", layer)
        assert loaded.fit_W == reference_W
        assert set(loaded.points) == {*reference_W, *preset.ood_W}
        assert all(len(frame) == preset.n_test - round(0.2 * preset.n_test) for frame in loaded.points.values())
        np.testing.assert_allclose(loaded.explained_variance_ratio, result["pca"][layer].explained_variance_ratio)
        assert (tmp_path / "pca" / f"{layer}_W0.15.csv").is_file()
    assert (tmp_path / "pca" / "explained_variance.csv").is_file()
    assert all_hooks(model) == 0


def test_saved_analysis_is_reused_only_for_the_same_model_and_settings(model, data_dir, tmp_path, monkeypatch):
    import ssh_ood.interpret.clustering_utils as cu

    args = (data_dir, tmp_path, (0.0,), (0.5,))
    first = analyze_model_clustering(model, *args, umap_n_neighbors=None)
    calls = []
    original = cu.activation_sets
    monkeypatch.setattr(cu, "activation_sets", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = analyze_model_clustering(model, *args, umap_n_neighbors=None)
    assert not calls, "same model, data and settings: the saved results are loaded"
    np.testing.assert_allclose(again["pca"]["gap"].points[0.5].to_numpy(), first["pca"]["gap"].points[0.5].to_numpy())
    analyze_model_clustering(model, *args, umap_n_neighbors=None, exclude_transition=True)
    assert len(calls) == 1, "other settings: recomputed"
    other = CNN_SSH()
    analyze_model_clustering(other, *args, umap_n_neighbors=None, exclude_transition=True)
    assert len(calls) == 2, "other weights: recomputed"
    (tmp_path / "pca" / "gap_W0.5.csv").unlink()
    analyze_model_clustering(other, *args, umap_n_neighbors=None, exclude_transition=True)
    assert len(calls) == 3, "a missing result file: recomputed"
    with pytest.raises(ValueError, match="disjoint"):
        analyze_model_clustering(model, data_dir, tmp_path, (0.0,), (0.0, 0.5), umap_n_neighbors=None)
    with pytest.raises(FileNotFoundError, match="test_W0.3"):
        analyze_model_clustering(model, data_dir, tmp_path, (0.0,), (0.3,), umap_n_neighbors=None)


def test_cluster_drift_in_units_of_the_clean_separation():
    def frame(coords, labels, predicted):
        coords = np.asarray(coords, dtype=float)
        return pd.DataFrame({"v": np.zeros(len(labels)), "label": labels, "predicted": predicted,
                             "dim1": coords[:, 0], "dim2": coords[:, 1]})

    reference = frame([[0, 1], [0, -1], [2, 1], [2, -1]], [0, 0, 1, 1], [0, 0, 1, 1])
    disordered = frame([[0.5, 0], [0.5, 0], [0, 0], [0.2, 0]], [0, 0, 1, 1], [0, 1, 0, 0])
    projection = Projection("pca", "gap", (0.0,), {0.0: reference, 0.5: disordered})
    table = cluster_drift(projection, (0.0,)).set_index(["W", "class"])
    assert table.loc[(0.0, 0), "drift"] == pytest.approx(0.5)  # clean points at distance 1, separation 2
    assert table.loc[(0.5, 0), "drift"] == pytest.approx(0.25)
    assert table.loc[(0.5, 1), "drift"] == pytest.approx((2.0 + 1.8) / 2 / 2)
    assert table.loc[(0.5, 0), "nearest_centroid_accuracy"] == 1.0
    assert table.loc[(0.5, 1), "nearest_centroid_accuracy"] == 0.0
    assert table.loc[(0.5, 0), "network_accuracy"] == 0.5
    assert table.loc[(0.5, 1), "n"] == 2


def test_notebook_04_runs_on_smoke(tmp_path):
    """Notebook 04 headless on the smoke preset, starting without highlighted networks (it makes them)."""
    from ssh_ood.base.notebook_runner import run_notebook
    from ssh_ood.base.paths import REPO_ROOT

    parameters = {
        "PRESET": "smoke", "SEED": 0, "POPULATION_DIR": str(tmp_path / "missing"), "FALLBACK_DIR": str(tmp_path / "population"),
        "DATA_DIR": str(tmp_path / "data"), "MODELS_DIR": str(tmp_path / "models"),
        "ANALYSIS_DIR": str(tmp_path / "analysis"), "FIGURES_DIR": str(tmp_path / "figures"),
    }
    run_notebook(REPO_ROOT / "04_clustering.ipynb", tmp_path / "04_executed.ipynb", parameters)
    for name in ("Fig_4", "Fig_12", "Fig_13"):
        assert (tmp_path / "figures" / f"{name}.pdf").stat().st_size > 0
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 0
    assert (tmp_path / "analysis" / "well_misleading" / "pca" / "gap_W0.15.csv").is_file()
