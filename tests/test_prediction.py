"""predict_phase (ssh_ood.nets.prediction) against the dataset path, for each kind of input, and the grid evaluation
of a network that reads another representation; the new recipes' data and tiers. Clean data only (W <= 0.05)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssh_ood.base.io_utils import load_json
from ssh_ood.base.paths import DEMO_DIR
from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.recipe_protocol import check_protocol
from ssh_ood.nets.data_loaders import TensorSplit, encode_input, represented, to_tensors
from ssh_ood.nets.ensemble_training import evaluate_models
from ssh_ood.nets.model_folders import load_config, load_model
from ssh_ood.nets.prediction import config_representation, predict_phase
from ssh_ood.nets.recipes import RECIPES, load_recipe_data
from ssh_ood.nets.training_run import train_models
from ssh_ood.ood.generalization import GeneralizationGrid
from ssh_ood.ood.model_evaluation import evaluate_model_dirs, load_result
from ssh_ood.physics.data_generation import generate_dataset, winding_number
from ssh_ood.physics.datasets import write_datasets
from ssh_ood.physics.no_peeking import TIERS
from ssh_ood.physics.representations import REPRESENTATIONS

SMOKE = get_preset("smoke")
#: one network per kind of input: the paper's densities, thermometer-encoded densities, and each new representation
KINDS = {"paper": ("paper", None), "thermometer": ("paper", 3), "sublattice_position": ("sublattice_position", None),
         "projector": ("projector", None), "projector_ab_window": ("projector_ab_window", None)}


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "smoke"
    write_datasets(SMOKE, 0, folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def networks(smoke_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {kind: train_models(SMOKE, smoke_data, root / kind, [0], device="cpu", recipe=recipe, n_workers=1,
                               thermometer_levels=levels, progress=False)[0]
            for kind, (recipe, levels) in KINDS.items()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_predict_phase_equals_the_dataset_path(networks, kind):
    folder = networks[kind]
    config = load_config(folder)
    dataset = generate_dataset("test", 30, 0.05, seed=3)  # a fresh small dataset of the project's generator
    x, y = to_tensors(represented(dataset, config_representation(config)), "test")
    model = load_model(folder)
    with torch.no_grad():
        expected = torch.softmax(model(encode_input(x, config["thermometer_levels"])).double(), dim=1)[:, 1].numpy()
    p = predict_phase(folder, dataset["v_n"], dataset["w_n"])
    assert p.shape == (30,)
    np.testing.assert_allclose(p, expected, atol=1e-6)
    # and the training code's own evaluation (BatchNorm folded into the convolutions) predicts the same labels
    evaluation = evaluate_models([model], TensorSplit(x, y, ("test",)), config["thermometer_levels"], "fused")
    decided = np.abs(p - 0.5) > 1e-4
    np.testing.assert_array_equal(evaluation.predictions[0][decided], (p > 0.5).astype(int)[decided])


def test_predict_phase_refuses_malformed_chains(networks):
    with pytest.raises(ValueError, match="shape"):
        predict_phase(networks["paper"], np.ones((3, 25)), np.ones((3, 24)))
    with pytest.raises(ValueError, match="cells"):
        predict_phase(networks["paper"], np.ones((3, 10)), np.ones((3, 10)))


def test_grid_evaluation_feeds_each_network_its_representation(networks):
    grid = GeneralizationGrid(n_W=2, W_max=0.05, n_realizations=2, n_v=15, v_max=2.0, seed=1)  # clean data only
    folders = [networks[kind] for kind in KINDS]
    evaluate_model_dirs(folders, grid, progress=False)
    for folder in folders:
        counts = np.zeros((grid.n_W, grid.n_v))
        for row in range(grid.n_W):
            v_n, w_n = grid.row_hoppings(row)
            counts[row] = (predict_phase(folder, v_n, w_n) > 0.5).reshape(grid.n_realizations, grid.n_v).sum(axis=0)
        np.testing.assert_allclose(load_result(folder).predicted * grid.n_realizations, counts)


def test_new_recipes_data_tiers_and_the_frozen_seed2_protocol(smoke_data):
    for name, recipe in RECIPES.items():
        assert recipe.tier in TIERS and recipe.representation in REPRESENTATIONS, name
    assert RECIPES["defects"].tier == "sparse_disorder" and RECIPES["window"].tier == "clean"
    data = load_recipe_data(smoke_data, SMOKE, "projector_ab_window", 0)
    assert data.training.x.shape[1:] == (1, 25, 25) and data.test.x.shape[1:] == (1, 25, 25)
    assert data.training.sources[-1] == "transition_window"
    n_window = max(2, round(0.25 * SMOKE.n_train))
    window_labels = data.training.y[-n_window:].numpy()
    v = np.linspace(0.8, 1.2, n_window)
    np.testing.assert_array_equal(window_labels, winding_number(np.repeat(v[:, None], 25, 1), np.ones((n_window, 25))))
    # the seed-2 protocol's fingerprint covers its recipes' records, which the new recipes leave unchanged
    check_protocol(load_json(DEMO_DIR / "recipes_protocol.json"))


def test_readers_that_build_density_images_refuse_other_representations(networks):
    from ssh_ood.interpret.diagnostics import model_diagnostics
    from ssh_ood.nets.prediction import require_density_input

    require_density_input(networks["paper"], "a reader")  # the paper's input, and thermometer codes of it, pass
    require_density_input(networks["thermometer"], "a reader")
    with pytest.raises(ValueError, match="reads the 'projector' representation"):
        model_diagnostics(networks["projector"], None)
