"""Precise BatchNorm statistics (src/ssh_ood/nets/precise_batchnorm.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ssh_ood.nets.data_loaders import TensorSplit
from ssh_ood.nets.ensemble_training import initial_model
from ssh_ood.nets.precise_batchnorm import CALIBRATION_FILE, recalibrate_batchnorm, write_recalibrated_copy


def _split(n: int, seed: int = 0) -> TensorSplit:
    generator = torch.Generator().manual_seed(seed)
    return TensorSplit(0.5 * torch.rand(n, 1, 50, 50, generator=generator), torch.randint(0, 2, (n,), generator=generator),
                       ("synthetic",))


def _model_with_stale_statistics(levels=None):
    model = initial_model(5, levels)
    torch.manual_seed(7)  # the affine and stale statistics below must not depend on earlier tests
    with torch.no_grad():
        for norm in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
            norm.running_mean.uniform_(-3, 3)  # statistics that have nothing to do with the data
            norm.running_var.uniform_(5, 10)
    return model.eval()


def test_eval_mode_after_recalibration_equals_train_mode_on_the_same_batch():
    """With one batch covering the set, eval mode must normalize exactly as train mode did on it."""
    split = _split(96)
    model = _model_with_stale_statistics()
    calibrated = recalibrate_batchnorm(model, split, batch_size=len(split))
    assert not calibrated.training
    reference = copy.deepcopy(model).train()
    for dropout in (m for m in reference.modules() if isinstance(m, nn.Dropout)):
        dropout.eval()
    with torch.no_grad():
        expected = reference(split.x)
        stale = model(split.x)
        got = calibrated(split.x)
    # train mode divides by the biased variance, the running average stores the unbiased one: n >= 96*12*12
    torch.testing.assert_close(got, expected, rtol=2e-3, atol=2e-3)
    assert (stale - expected).abs().max() > 0.1  # the stale statistics really were wrong


def test_recalibration_averages_batches_and_leaves_the_model_alone():
    split = _split(64, seed=1)
    model = _model_with_stale_statistics(levels=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calibrated = recalibrate_batchnorm(model, split, thermometer_levels=3, batch_size=16)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    norms = [m for m in calibrated.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(norm.momentum == 0.1 and norm.num_batches_tracked.item() == 4 for norm in norms)
    # the first BatchNorm sees conv1's output: its running mean is the mean over the 4 batch means
    from ssh_ood.nets.data_loaders import encode_input

    conv = calibrated.cnn_layers_1[0]
    with torch.no_grad():
        batch_means = [conv(encode_input(split.x[i:i + 16], 3)).mean(dim=(0, 2, 3)) for i in range(0, 64, 16)]
    torch.testing.assert_close(norms[0].running_mean, torch.stack(batch_means).mean(0), rtol=1e-4, atol=1e-6)


def test_bad_inputs_are_rejected():
    model = _model_with_stale_statistics()
    with pytest.raises(ValueError, match="batch_size"):
        recalibrate_batchnorm(model, _split(8), batch_size=0)
    with pytest.raises(ValueError, match="no samples"):
        recalibrate_batchnorm(model, _split(0))


def test_recalibrated_copy_of_a_trained_model(tmp_path):
    from ssh_ood.nets.data_loaders import load_training_data
    from ssh_ood.nets.model_folders import is_complete, load_model
    from ssh_ood.nets.training_run import train_models
    from ssh_ood.physics.datasets import write_datasets

    data = tmp_path / "data"
    write_datasets("smoke", 0, data, progress=False)
    source = train_models("smoke", data, tmp_path / "run", [0], progress=False, thermometer_levels=3)[0]
    training = load_training_data(data, "smoke").training
    copy_dir = write_recalibrated_copy(source, tmp_path / "copy", training)
    assert is_complete(copy_dir) and (copy_dir / CALIBRATION_FILE).is_file()
    original, calibrated = load_model(source), load_model(copy_dir)
    assert torch.equal(original.cnn_layers_1[0].weight, calibrated.cnn_layers_1[0].weight)
    assert not torch.equal(original.cnn_layers_1[1].running_mean, calibrated.cnn_layers_1[1].running_mean)
    stamp = (copy_dir / "weights.pt").stat().st_mtime_ns
    write_recalibrated_copy(source, tmp_path / "copy", training)  # same source: kept as is
    assert (copy_dir / "weights.pt").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="not a finished model"):
        write_recalibrated_copy(tmp_path / "missing", tmp_path / "copy2", training)
