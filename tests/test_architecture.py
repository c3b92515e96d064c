"""CNN_SSH (docs/physics_and_methods.md §3): parameter count, the paper's module names, logits and probabilities."""

import pytest
import torch
from torch import nn

from ssh_ood.nets.architecture import CNN_SSH, CNN_SSH_ThermEncod, build_model, count_parameters

PAPER_KEYS = [
    "cnn_layers_1.0.weight",
    "cnn_layers_1.1.weight",
    "cnn_layers_1.1.bias",
    "cnn_layers_1.1.running_mean",
    "cnn_layers_1.1.running_var",
    "cnn_layers_1.1.num_batches_tracked",
    "cnn_layers_1.4.weight",
    "cnn_layers_1.5.weight",
    "cnn_layers_1.5.bias",
    "cnn_layers_1.5.running_mean",
    "cnn_layers_1.5.running_var",
    "cnn_layers_1.5.num_batches_tracked",
    "cnn_layers_2.0.weight",
    "cnn_layers_2.1.weight",
    "cnn_layers_2.1.bias",
    "cnn_layers_2.1.running_mean",
    "cnn_layers_2.1.running_var",
    "cnn_layers_2.1.num_batches_tracked",
    "linear_layers.0.weight",
    "linear_layers.0.bias",
]


def test_parameter_count_by_hand():
    # conv 1x5x4x4 + BN 2x5 + conv 5x7x3x3 + BN 2x7 + conv 7x9x3x3 + BN 2x9 + linear 9x2 + 2
    by_hand = 80 + 10 + 315 + 14 + 567 + 18 + 18 + 2
    assert by_hand == 1024
    assert count_parameters(CNN_SSH()) == by_hand


def test_state_dict_keys_and_shapes_match_the_paper():
    state = CNN_SSH().state_dict()
    assert list(state) == PAPER_KEYS
    assert state["cnn_layers_1.0.weight"].shape == (5, 1, 4, 4)
    assert state["cnn_layers_1.4.weight"].shape == (7, 5, 3, 3)
    assert state["cnn_layers_2.0.weight"].shape == (9, 7, 3, 3)
    assert state["linear_layers.0.weight"].shape == (2, 9)


def test_layers_follow_spec():
    model = CNN_SSH()
    conv1, conv2, conv3 = model.cnn_layers_1[0], model.cnn_layers_1[4], model.cnn_layers_2[0]
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((4, 4), (2, 2), (2, 2))
    assert (conv2.kernel_size, conv2.stride, conv2.padding) == ((3, 3), (1, 1), (1, 1))
    assert all(conv.bias is None for conv in (conv1, conv2, conv3))
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.5, 0.5, 0.5]
    assert all(m.negative_slope == 0.01 for m in model.modules() if isinstance(m, nn.LeakyReLU))
    assert model.features(torch.rand(3, 1, 50, 50)).shape == (3, 9, 26, 26)


def test_logits_and_probabilities():
    torch.manual_seed(0)
    model = CNN_SSH().eval()
    x = torch.rand(6, 1, 50, 50)
    logits = model(x)
    assert logits.shape == (6, 2)
    proba = model.predict_proba(x)
    assert torch.allclose(proba.sum(dim=1), torch.ones(6))
    assert torch.allclose(proba, torch.softmax(logits, dim=1))
    # the paper's BCE on softmax vs one-hot equals cross-entropy on the logits
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    bce = nn.functional.binary_cross_entropy(proba, nn.functional.one_hot(y, 2).float())
    assert torch.allclose(bce, nn.functional.cross_entropy(logits, y), atol=1e-6)


def test_mean_of_gap_features_and_linear_gives_logits():
    model = CNN_SSH().eval()
    x = torch.rand(2, 1, 50, 50)
    pooled = model.features(x).mean(dim=(2, 3))
    assert torch.allclose(model.linear_layers(pooled), model(x), atol=1e-6)


@pytest.mark.parametrize("levels", [2, 3, 15])
def test_thermometer_variant_parameter_count(levels):
    model = CNN_SSH_ThermEncod(levels)
    assert count_parameters(model) == 962 * levels**2 + 60 * levels + 2
    assert list(model.state_dict()) == PAPER_KEYS
    assert model(torch.rand(2, levels, 50, 50)).shape == (2, 2)


def test_build_model_and_bad_inputs():
    assert type(build_model(None)) is CNN_SSH
    assert isinstance(build_model(4), CNN_SSH_ThermEncod)
    with pytest.raises(ValueError, match="shape"):
        CNN_SSH()(torch.rand(2, 50, 50))
    with pytest.raises(ValueError, match="channel_multiplier"):
        CNN_SSH(channel_multiplier=0)
