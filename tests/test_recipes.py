"""Training recipes (ssh_ood.nets.recipes): each trains on smoke on both engines, records itself, keeps the
paper's record unchanged; the constructions are labelled by physics; the no-peeking guard refuses W > 0.05."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.diagnostics import clean_split
from ssh_ood.nets.data_loaders import load_training_data
from ssh_ood.nets.model_folders import load_model
from ssh_ood.nets.recipes import (
    RECIPE_NAMES,
    BulkInsensitivity,
    get_recipe,
    load_recipe_data,
    symmetrize_kernels,
)
from ssh_ood.nets.training_recipe import RunSettings
from ssh_ood.nets.training_run import train_models
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.physics.constructions import EDGE_ROWS, bond_defect_hoppings, localized_column_edits
from ssh_ood.physics.data_generation import observables, winding_number
from ssh_ood.physics.datasets import write_datasets
from ssh_ood.physics.no_peeking import require_clean

SMOKE = get_preset("smoke")


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "smoke"
    write_datasets(SMOKE, 0, folder, progress=False)
    return folder


@pytest.mark.parametrize("engine", ["fused", "stacked"])
@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_each_recipe_trains_on_smoke(smoke_data, tmp_path, name, engine):
    folders = train_models(SMOKE, smoke_data, tmp_path / "run", [0], device="cpu", engine=engine, recipe=name,
                           n_workers=1, progress=False)
    config = json.loads((folders[0] / "config.json").read_text())
    history = json.loads((folders[0] / "history.json").read_text())
    assert history["epochs_run"] == SMOKE.max_epochs and np.isfinite(history["train_loss"]).all()
    if name == "paper":
        assert "variant" not in config["recipe"]
    else:
        assert config["recipe"]["variant"]["name"] == name
    model = load_model(folders[0])  # the paper's architecture and state_dict: loads like any other network
    x = torch.from_numpy(load_training_data(smoke_data, SMOKE).test.x.numpy()[:8])
    assert torch.isfinite(model(x)).all()


def test_paper_record_is_unchanged_and_variants_differ(smoke_data):
    def settings(recipe):
        return RunSettings(SMOKE, str(smoke_data), "out", 0, "cpu", "fused", 2, True, None, True, "sha", recipe)

    paper = settings("paper").recipe()
    assert set(paper) == {"optimizer", "loss", "lr", "momentum", "weight_decay", "batch_size", "max_epochs",
                          "early_stopping", "patience", "tolerance", "warmup_fraction", "warmup_epochs"}
    identities = {json.dumps(settings(name).run_identity(), sort_keys=True) for name in RECIPE_NAMES}
    assert len(identities) == len(RECIPE_NAMES)  # a run folder of one recipe refuses another
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="real-valued input only"):
        train_models(SMOKE, smoke_data, "unused", [0], recipe="mirror", thermometer_levels=3, progress=False)


def test_mirror_network_is_exactly_invariant(smoke_data, tmp_path):
    folder = train_models(SMOKE, smoke_data, tmp_path / "run", [0], device="cpu", recipe="mirror", n_workers=1,
                          progress=False)[0]
    model = load_model(folder).eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((6, 1, 50, 50), dtype=np.float32))  # asymmetric inputs
    with torch.no_grad():
        logits = model(x)
        for dims in ((2,), (3,), (2, 3)):
            assert torch.allclose(model(x.flip(dims)), logits, atol=1e-5)
    # the paper's network is not: the check can fail
    paper = train_models(SMOKE, smoke_data, tmp_path / "paper", [0], device="cpu", n_workers=1, progress=False)[0]
    paper_model = load_model(paper).eval()
    with torch.no_grad():
        assert not torch.allclose(paper_model(x.flip(2)), paper_model(x), atol=1e-5)
    # the projection is idempotent and symmetric
    symmetrize_kernels([paper_model])
    w = paper_model.cnn_layers_1[0].weight.detach().clone()
    symmetrize_kernels([paper_model])
    assert torch.allclose(w, paper_model.cnn_layers_1[0].weight, atol=1e-7)
    assert torch.allclose(w, w.flip(2), atol=1e-7) and torch.allclose(w, w.flip(3), atol=1e-7)


def test_defect_chains_are_labelled_by_exact_winding(smoke_data):
    rng = np.random.default_rng(4)
    v = np.linspace(0.0, 2.0, 400)
    v_n, w_n = bond_defect_hoppings(v, rng, max_defects=3)
    clean_v = np.isclose(v_n, v[:, None])
    clean_w = np.isclose(w_n, 1.0)
    n_defects = (~clean_v).sum(1) + (~clean_w).sum(1)
    # k ~ U{1, 2, 3} defects per chain: every count occurs, none outside; at v = 0 a rescaled v bond stays 0 and
    # cannot be seen, so the count is read on v > 0
    counts = np.bincount(n_defects[v > 0], minlength=5)
    assert counts[0] == 0 and counts[4] == 0 and counts[1:4].min() > 100
    assert np.all(w_n[:, -1] == 1.0)  # the closing bond is never a defect
    # an independent label: the slow numerical winding integral on a few chains
    from ssh_ood.physics.winding_number import winding_integral

    labels = winding_number(v_n, w_n)
    for s in rng.choice(len(v), 6, replace=False):
        assert round(winding_integral(v_n[s], w_n[s], n_k=256)) == labels[s]
    # a weak bond cutting a trivial chain binds mid-gap density at the cut, away from the ends
    v_cut = np.full((1, 25), 1.5)
    v_cut[0, 12] = 1e-3
    X = observables(v_cut, np.ones((1, 25)))[0]
    assert winding_number(v_cut, np.ones((1, 25)))[0] == 0
    assert X[23:27, 24:26].sum() > 0.8 and X[:3, 24:26].sum() < 0.05
    data = load_recipe_data(smoke_data, SMOKE, "defects", 0)
    plain = load_training_data(smoke_data, SMOKE)
    assert len(data.training) == len(plain.training) + SMOKE.n_train // 2
    assert data.training.sources[-1] == "bond_defects" and len(data.validation) == len(plain.validation)


def test_penalty_edits_avoid_the_edge_state_region():
    X = np.zeros((500, 50, 50), dtype=np.float32)
    edited = localized_column_edits(X, np.random.default_rng(1))
    changed = edited != X
    assert changed.any(axis=(1, 2)).all()
    gap = edited[:, :, 20:30]
    for rows in (slice(0, 3), slice(47, 50)):  # the end sites of the mid-gap columns stay untouched (decay < 0.8)
        assert gap[:, rows].max() < 0.8**5
    assert np.allclose(edited.sum(axis=1)[changed.any(axis=1)], 1.0)  # each edited column is a density
    assert EDGE_ROWS == 8
    x = torch.zeros(4, 1, 50, 50)
    assert BulkInsensitivity().batch_input(x, 0, 0, 0).shape == (8, 1, 50, 50)


def test_no_peeking_guard_refuses_out_of_distribution_data(smoke_data, tmp_path):
    require_clean([0.0, 0.01, 0.05], "test")
    for W in (0.06, 0.15, 2.0, float("nan"), -0.01):
        with pytest.raises(ValueError, match="out of distribution"):
            require_clean(W, "recipe selection data")
    peeking = SMOKE.with_overrides(perturbative_W=(0.01, 0.5))  # training and early stopping on W = 0.5
    with pytest.raises(ValueError, match=r"training data of preset 'smoke' may read clean and perturbative data only"):
        train_models(peeking, smoke_data, tmp_path / "run", [0], progress=False, recipe="defects")
    with pytest.raises(ValueError, match="diagnostics may read clean"):
        clean_split(smoke_data, 0.15)


def test_population_refuses_another_recipe(tmp_path):
    from ssh_ood.ood.population import run_population

    out = tmp_path / "population"
    run_population(PopulationSettings(get_preset("smoke"), 2, out, model_indices=[0], data_dir=tmp_path / "data", recipe="mirror", train_only=True,
                   progress=False))
    with pytest.raises(ValueError, match="recipe 'mirror', not 'defects'"):
        run_population(PopulationSettings(get_preset("smoke"), 2, out, model_indices=[0], data_dir=tmp_path / "data", recipe="defects",
                       train_only=True, progress=False))
    (out / "manifest.json").unlink()  # without the manifest, the model's own record still refuses
    with pytest.raises(ValueError, match="holds a model of another run"):
        run_population(PopulationSettings(get_preset("smoke"), 2, out, model_indices=[0], data_dir=tmp_path / "data", recipe="defects",
                       train_only=True, progress=False))
