"""Training engine: data loaders, fast dropout, fused kernels, engines, early stopping, resume, outputs, CLI."""

import copy
import csv
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssh_ood.base.presets import get_preset
from ssh_ood.commands.cli import main as cli_main
from ssh_ood.nets import recipes, training_run
from ssh_ood.nets.architecture import CNN_SSH, CNN_SSH_ThermEncod
from ssh_ood.nets.data_loaders import (
    batch_slices,
    fixed_order,
    generate_training_data,
    load_training_data,
    training_batch,
)
from ssh_ood.nets.ensemble_training import (
    ModelState,
    SGDRecipe,
    dropout_generator,
    evaluate_models,
    initial_model,
    sgd_update,
    stacked_logits,
    train_step,
)
from ssh_ood.nets.fast_dropout import KEEP_SCALE, apply_keep_mask, draw_keep_masks, draw_words, unpack_bits
from ssh_ood.nets.fused_blocks import conv2d, dropout_shapes, fused_train_forward
from ssh_ood.nets.metrics import METRIC_NAMES
from ssh_ood.nets.model_folders import is_complete, load_history, load_model
from ssh_ood.nets.training_recipe import model_seed, should_stop, warmup_epochs
from ssh_ood.nets.training_run import train_models
from ssh_ood.physics.datasets import write_datasets

SMOKE = get_preset("smoke")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread, as the trainer's workers use (and robust on a shared 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "smoke"
    write_datasets(SMOKE, 0, folder, progress=False)
    return folder


def _train(data_dir, out_dir, indices, **kwargs):
    kwargs.setdefault("n_workers", 1)
    kwargs.setdefault("progress", False)
    return train_models(SMOKE if "preset" not in kwargs else kwargs.pop("preset"), data_dir, out_dir, indices, **kwargs)


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _state(folder, name="weights.pt"):
    return torch.load(folder / name, weights_only=True)


# ----------------------------------------------------------------------------------------------
# data loaders
# ----------------------------------------------------------------------------------------------
def test_training_data_appends_perturbative_sets_to_training_and_validation_only(smoke_data):
    data = load_training_data(smoke_data, SMOKE)
    assert len(data.training) == SMOKE.n_train + 2 * SMOKE.n_perturbative
    assert len(data.validation) == SMOKE.n_validation + 2 * SMOKE.n_perturbative
    assert len(data.test) == SMOKE.n_test
    assert data.training.sources == ("training_W0.npz", "training_W0.01.npz", "training_W0.05.npz")
    assert data.test.sources == ("test_W0.npz",)
    assert data.training.x.shape[1:] == (1, 50, 50) and data.training.x.dtype == torch.float32
    assert data.training.y.dtype == torch.int64
    # the observables are |psi|^2 of orthonormal eigenvectors: every column sums to 1
    assert torch.allclose(data.training.x.sum(dim=2), torch.ones(len(data.training), 1, 50), atol=1e-4)


def test_generated_data_equals_written_data(smoke_data):
    loaded, generated = load_training_data(smoke_data, SMOKE), generate_training_data(SMOKE, 0)
    for name in ("training", "validation", "test"):
        assert torch.equal(getattr(loaded, name).x, getattr(generated, name).x)
        assert torch.equal(getattr(loaded, name).y, getattr(generated, name).y)


def test_fixed_order_and_batches():
    order = fixed_order(130, 5)
    assert np.array_equal(np.sort(order), np.arange(130))
    assert np.array_equal(order, fixed_order(130, 5)) and not np.array_equal(order, fixed_order(130, 6))
    slices = batch_slices(130, 64)
    assert [s.stop - s.start for s in slices] == [64, 64, 2]


def test_training_batch_follows_the_fixed_order(smoke_data):
    split = load_training_data(smoke_data, SMOKE).training
    order = fixed_order(len(split), 0)
    clean, y = training_batch(split, order, 1, 64)
    assert torch.equal(clean, split.x[torch.as_tensor(order[64:128])]) and torch.equal(y, split.y[order[64:128]])
    encoded = training_batch(split, order, 0, 64, thermometer_levels=3)[0]
    assert encoded.shape == (64, 3, 50, 50) and set(encoded.unique().tolist()) <= {0.0, 1.0}


def test_loader_errors(smoke_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood data"):
        load_training_data(tmp_path / "nowhere", SMOKE)
    with pytest.raises(ValueError, match="expect"):
        load_training_data(smoke_data, "quick")  # smoke files are too small for the quick preset
    broken = tmp_path / "broken"
    write_datasets(SMOKE, 0, broken, progress=False)
    data = dict(np.load(broken / "training_W0.npz"))
    data["X"] = data["X"][:, :, :10]  # (N, 50, 10): not square
    np.savez(broken / "training_W0.npz", **data)
    with pytest.raises(ValueError, match="shape"):
        load_training_data(broken, SMOKE)


# ----------------------------------------------------------------------------------------------
# fast dropout
# ----------------------------------------------------------------------------------------------
def test_dropout_bits_are_fair_independent_and_scaled():
    generator = torch.Generator().manual_seed(11)
    n = 1 << 20
    bits = unpack_bits(draw_words(generator, n), n).double()
    sigma = math.sqrt(0.25 / n)
    assert abs(bits.mean().item() - 0.5) < 5 * sigma
    # every bit position of the 64-bit words is fair
    per_position = bits.view(-1, 64).mean(dim=0)
    assert (per_position - 0.5).abs().max().item() < 5 * math.sqrt(0.25 / (n // 64))
    # neighbours and elements one word apart are uncorrelated; pairs are uniform over {00, 01, 10, 11}
    for lag in (1, 8, 64):
        corr = torch.corrcoef(torch.stack([bits[:-lag], bits[lag:]]))[0, 1].item()
        assert abs(corr) < 5 / math.sqrt(n)
    pairs = (2 * bits[0::2] + bits[1::2]).long()
    counts = torch.bincount(pairs, minlength=4).double()
    expected = n / 2 / 4
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 16.3  # chi^2 with 3 degrees of freedom, p = 0.001
    x = torch.rand(1000)
    keep = unpack_bits(draw_words(generator, 1000), 1000)
    dropped = apply_keep_mask(x, keep)
    assert KEEP_SCALE == 2.0
    assert torch.equal(dropped[keep == 1], 2 * x[keep == 1]) and torch.all(dropped[keep == 0] == 0)


def test_dropout_mean_preserves_the_input():
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(50)
    masks = draw_keep_masks(generator, [(4000, 50)])[0]
    mean = apply_keep_mask(x.expand(4000, 50), masks).mean(dim=0)
    assert torch.allclose(mean, x, atol=5 * 0.5 * 2 / math.sqrt(4000))


def test_bit_layout_and_stream_consumption():
    generator = torch.Generator().manual_seed(4)
    words = draw_words(generator, 200)
    assert words.shape == (4,)
    reference = [(int(words[i // 64]) >> (i % 64)) & 1 for i in range(200)]
    assert unpack_bits(words, 200).tolist() == reference
    # draw_keep_masks takes ceil(total / 64) words from the stream: the same bits, split in order
    a, b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    masks = draw_keep_masks(a, [(2, 3, 5), (7,)])
    flat = unpack_bits(draw_words(b, 37), 37)
    assert torch.equal(torch.cat([m.reshape(-1) for m in masks]), flat)
    assert torch.equal(a.get_state(), b.get_state())


# ----------------------------------------------------------------------------------------------
# fused kernels and engines
# ----------------------------------------------------------------------------------------------
def _reference_with_masks(model: CNN_SSH, keep):
    """A deep copy of ``model`` whose nn.Dropout layers apply the given masks (x * keep * 2)."""
    reference = copy.deepcopy(model).train()
    dropouts = [m for m in reference.modules() if isinstance(m, nn.Dropout)]
    for layer, mask in zip(dropouts, keep, strict=True):
        layer.register_forward_hook(lambda module, inputs, output, mask=mask: inputs[0] * mask * 2)
    return reference


@pytest.mark.parametrize("levels", [None, 2])
def test_fused_forward_backward_equals_pytorch_modules(levels):
    """Logits and every gradient equal up to float32 rounding, on inputs drawn from a fixed seed.

    The seed matters: rounding can put a pre-activation on the other side of a LeakyReLU kink in one of the two
    paths, which moves the gradient of the weights that feed it by far more than rounding (seen once in 60 draws
    from the global generator: the first convolution's gradient off by 0.76 % of its scale, logits equal to 6e-8).
    """
    generator = torch.Generator().manual_seed(11)
    model = initial_model(3, levels).train()
    with torch.no_grad():  # non-trivial BatchNorm affine parameters
        for bn in (model.cnn_layers_1[1], model.cnn_layers_1[5], model.cnn_layers_2[1]):
            bn.weight.uniform_(0.5, 1.5, generator=generator)
            bn.bias.uniform_(-0.2, 0.2, generator=generator)
    channels = levels or 1
    x = torch.rand(20, channels, 50, 50, generator=generator)
    y = torch.randint(0, 2, (20,), generator=generator)
    keep = draw_keep_masks(torch.Generator().manual_seed(0), dropout_shapes(model, x.shape))
    reference = _reference_with_masks(model, keep)
    logits = fused_train_forward(model, x, keep)
    expected = reference(x)
    assert torch.allclose(logits, expected, atol=1e-5)
    F.cross_entropy(logits, y).backward()
    F.cross_entropy(expected, y).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        scale = q.grad.abs().max()
        assert (p.grad - q.grad).abs().max() <= 1e-4 * scale + 1e-7, name
    for (name, b), c in zip(model.named_buffers(), reference.buffers(), strict=True):
        assert torch.allclose(b.double(), c.double(), atol=1e-6), name


def test_split_conv_backward_equals_autograd():
    for conv, shape in ((nn.Conv2d(5, 7, 3, 1, 1, bias=False), (4, 5, 26, 26)), (nn.Conv2d(2, 3, 4, 2, 2, bias=False), (4, 2, 50, 50))):
        x = torch.randn(shape, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_()
        out = conv2d(x, conv)
        grad = torch.randn_like(out)
        out.backward(grad)
        gw = conv.weight.grad.clone()
        conv.weight.grad = None
        F.conv2d(x_ref, conv.weight, stride=conv.stride, padding=conv.padding).backward(grad)
        assert torch.allclose(x.grad, x_ref.grad, atol=1e-4)
        assert torch.allclose(gw, conv.weight.grad, rtol=1e-4, atol=1e-3)


def test_sgd_update_is_torch_optim_sgd_bitwise():
    recipe = SGDRecipe(lr=0.05, momentum=0.9, weight_decay=0.1)
    ours = ModelState(initial_model(1), dropout_generator(1))
    theirs = copy.deepcopy(ours.model)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    x, y = torch.rand(8, 1, 50, 50), torch.tensor([0, 1] * 4)
    for _ in range(3):
        for model in (ours.model, theirs):
            model.eval()
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
        sgd_update([ours], recipe)
        optimizer.step()
        assert _same_state(ours.model.state_dict(), theirs.state_dict())


def _states(seeds, levels=None):
    return [ModelState(initial_model(s, levels), dropout_generator(s)) for s in seeds]


@pytest.mark.parametrize("shared", [True, False])
def test_stacked_engine_matches_fused_engine(shared):
    recipe = SGDRecipe(lr=0.05, momentum=0.9, weight_decay=0.1)
    fused, stacked = _states([0, 1, 2]), _states([0, 1, 2])
    torch.manual_seed(0)
    inputs = [torch.rand(16, 1, 50, 50)] * 3 if shared else [torch.rand(16, 1, 50, 50) for _ in range(3)]
    targets = [torch.randint(0, 2, (16,))] * 3 if shared else [torch.randint(0, 2, (16,)) for _ in range(3)]
    for _ in range(2):
        a = train_step(fused, inputs, targets, recipe, "fused")
        b = train_step(stacked, inputs, targets, recipe, "stacked")
        assert np.allclose(a.loss_sum, b.loss_sum, rtol=1e-4)
    for f, s in zip(fused, stacked, strict=True):
        for key, value in f.model.state_dict().items():
            assert torch.allclose(value.double(), s.model.state_dict()[key].double(), atol=2e-5), key
        assert torch.equal(f.generator.get_state(), s.generator.get_state())


def test_evaluation_engines_agree_with_module_eval(smoke_data):
    data = load_training_data(smoke_data, SMOKE)
    models = [s.model for s in _states([4, 5])]
    x = torch.rand(64, 1, 50, 50)
    for model in models:  # move the running statistics away from (0, 1)
        model.train()(x)
    fused = evaluate_models(models, data.validation, None, "fused")
    stacked = evaluate_models(models, data.validation, None, "stacked")
    for k, model in enumerate(models):
        logits = model.eval()(data.validation.x)
        loss = F.cross_entropy(logits, data.validation.y).item()
        assert np.isclose(fused.loss[k], loss, rtol=1e-5) and np.isclose(stacked.loss[k], loss, rtol=1e-5)
        assert np.array_equal(fused.predictions[k], logits.argmax(1).numpy())
        assert np.isclose(fused.accuracy[k], (logits.argmax(1) == data.validation.y).float().mean().item())
    logits = stacked_logits(models, [data.validation.x] * 2, None)
    assert logits.shape == (len(data.validation), 2, 2)


def test_a_few_steps_learn_a_toy_problem():
    """Class 1 = bright edge sites of the mid-gap columns (like edge states), class 0 = no edge weight."""
    generator = torch.Generator().manual_seed(0)
    n = 64
    x = torch.rand(n, 1, 50, 50, generator=generator) * 0.05
    y = torch.arange(n) % 2
    x[y == 1, 0, :3, 22:28] += 0.5
    x[y == 1, 0, -3:, 22:28] += 0.5
    states = _states([0])
    recipe = SGDRecipe(lr=0.05, momentum=0.9, weight_decay=0.0)
    losses = [train_step(states, [x], [y], recipe, "fused").loss_sum[0] / n for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# ----------------------------------------------------------------------------------------------
# early stopping
# ----------------------------------------------------------------------------------------------
def _first_stop(losses, patience, tolerance, warmup):
    for epoch in range(1, len(losses) + 1):
        if should_stop(losses[:epoch], patience, tolerance, warmup):
            return epoch
    return None


def test_warmup_is_ten_percent_of_max_epochs():
    assert warmup_epochs(1000, 0.1) == 100
    assert warmup_epochs(150, 0.1) == 15
    assert warmup_epochs(2, 0.1) == 1


def test_early_stopping_rule_on_hand_made_sequences():
    # a plateau within tolerance of the minimum stops once warm-up is over and patience epochs are in it
    plateau = [1.0, 0.5, 0.4, 0.402, 0.401, 0.403, 0.404, 0.402]
    assert _first_stop(plateau, patience=3, tolerance=0.005, warmup=5) == 5
    assert _first_stop(plateau, patience=3, tolerance=0.005, warmup=7) == 7
    assert _first_stop(plateau, patience=5, tolerance=0.005, warmup=1) == 7  # needs 5 plateau losses: epochs 3-7
    # a steady decrease, even by tiny steps, never stops
    assert _first_stop([1.0 - 1e-4 * e for e in range(50)], patience=3, tolerance=0.005, warmup=5) is None
    # a new minimum continues although the window is a plateau
    assert not should_stop([0.5, 0.5001, 0.5002, 0.4999], patience=3, tolerance=0.005, warmup=1)
    # a rising loss never stops it
    assert _first_stop([1.0, 0.5] + [0.5 + 0.01 * e for e in range(1, 30)], patience=3, tolerance=0.005, warmup=1) is None
    # one excursion above tolerance in the window delays the stop until it leaves the window
    noisy = [1.0, 0.4, 0.401, 0.42, 0.402, 0.401, 0.403]
    assert _first_stop(noisy, patience=3, tolerance=0.005, warmup=1) == 7
    # non-finite losses never count as a plateau and do not break the minimum
    nan = float("nan")
    assert _first_stop([1.0, 0.5, nan, nan, 0.5], patience=2, tolerance=0.005, warmup=1) is None
    assert _first_stop([1.0, nan, 0.5, nan, 0.5, 0.5], patience=2, tolerance=0.005, warmup=1) == 6
    assert _first_stop([1.0, 0.5, nan, 0.5, 0.5], patience=2, tolerance=0.005, warmup=1) == 5
    with pytest.raises(ValueError, match="patience >= 1"):
        should_stop([1.0], patience=0, tolerance=0.005, warmup=1)


# ----------------------------------------------------------------------------------------------
# the trainer
# ----------------------------------------------------------------------------------------------
def test_model_seed():
    assert [model_seed(0, i) for i in range(3)] == [0, 1, 2]
    assert model_seed(2, 7) == 2_000_007
    for bad, message in (((-1, 0), "base_seed"), ((0, -1), "index must be an integer"), ((0, 1.5), "index must be an integer"),
                         ((0, 10**6), "index must be an integer")):
        with pytest.raises(ValueError, match=message):
            model_seed(*bad)


def test_outputs_of_a_run(smoke_data, tmp_path):
    folders = _train(smoke_data, tmp_path / "run", [0, 1])
    assert [f.name for f in folders] == ["model_000", "model_001"]
    for folder in folders:
        assert is_complete(folder)
        assert not (folder / "checkpoint.pt").exists()
        config = json.loads((folder / "config.json").read_text())
        for key in ("preset", "recipe", "model_seed", "base_seed", "index", "thermometer_levels", "n_cells",
                    "data_dir", "torch_version", "device"):
            assert key in config
        assert config["recipe"]["lr"] == SMOKE.lr and config["recipe"]["max_epochs"] == SMOKE.max_epochs
        history = load_history(folder)
        assert history["epochs_run"] == SMOKE.max_epochs == len(history["val_loss"]) == len(history["train_accuracy"])
        assert history["best_epoch"] == 1 + int(np.argmin(history["val_loss"]))
        report = json.loads((folder / "test_report.json").read_text())
        assert set(METRIC_NAMES) <= set(report) and report["n_samples"] == SMOKE.n_test
        assert not (folder / "training_curve.png").exists()  # the trainer draws nothing (the train command does)
        model = load_model(folder)
        assert not model.training and _same_state(model.state_dict(), _state(folder))
        # the test report is the last model on the clean test set
        data = load_training_data(smoke_data, SMOKE)
        with torch.no_grad():
            accuracy = (model(data.test.x).argmax(1) == data.test.y).float().mean().item()
        assert math.isclose(report["accuracy"], accuracy)
    rows = list(csv.DictReader(open(tmp_path / "run" / "summary.csv")))
    assert [int(r["index"]) for r in rows] == [0, 1] and [int(r["seed"]) for r in rows] == [0, 1]
    assert float(rows[1]["test_accuracy"]) == json.loads((folders[1] / "test_report.json").read_text())["accuracy"]
    # a second call skips the finished models
    before = (folders[0] / "weights.pt").stat().st_mtime_ns
    _train(smoke_data, tmp_path / "run", [0, 1])
    assert (folders[0] / "weights.pt").stat().st_mtime_ns == before


def test_same_seed_same_weights_and_ensemble_equals_single(smoke_data, tmp_path):
    ensemble = _train(smoke_data, tmp_path / "ensemble", [0, 1, 2])
    alone = _train(smoke_data, tmp_path / "alone", [1])
    assert _same_state(_state(ensemble[1]), _state(alone[0]))
    assert _same_state(_state(ensemble[1], "best_weights.pt"), _state(alone[0], "best_weights.pt"))
    assert load_history(ensemble[1]) == load_history(alone[0])
    assert not _same_state(_state(ensemble[0]), _state(ensemble[1]))


def test_worker_processes_give_the_same_weights(smoke_data, tmp_path):
    in_process = _train(smoke_data, tmp_path / "one", [0, 1], n_workers=1)
    workers = _train(smoke_data, tmp_path / "two", [0, 1], n_workers=2)
    for a, b in zip(in_process, workers, strict=True):
        assert _same_state(_state(a), _state(b))


def test_stacked_engine_follows_the_same_trajectory(smoke_data, tmp_path):
    fused = _train(smoke_data, tmp_path / "fused", [0, 1], engine="fused")
    stacked = _train(smoke_data, tmp_path / "stacked", [0, 1], engine="stacked")
    for a, b in zip(fused, stacked, strict=True):
        assert np.allclose(load_history(a)["train_loss"], load_history(b)["train_loss"], rtol=1e-4)
        sa, sb = _state(a), _state(b)
        for key in sa:
            assert torch.allclose(sa[key].double(), sb[key].double(), atol=1e-4), key


def test_early_stopped_model_stops_changing_while_others_go_on(smoke_data, tmp_path, monkeypatch):
    preset = SMOKE.with_overrides(max_epochs=4)
    original_end_epoch = training_run._end_epoch

    def end_epoch(slot, settings, *values):  # the rule (tested above) says "stop" for model 1 after epoch 2
        original_end_epoch(slot, settings, *values)
        if slot.index == 1 and slot.epoch == 2:
            slot.stopped_early = slot.done = True

    monkeypatch.setattr(training_run, "_end_epoch", end_epoch)
    folders = _train(smoke_data, tmp_path / "es", [0, 1, 2], preset=preset)
    monkeypatch.setattr(training_run, "_end_epoch", original_end_epoch)
    histories = [load_history(f) for f in folders]
    assert [h["epochs_run"] for h in histories] == [4, 2, 4]
    assert [h["stopped_early"] for h in histories] == [False, True, False]
    for folder, history in zip(folders, histories, strict=True):
        index = int(folder.name[-3:])
        # every model's final state (weights, BN statistics) is the state after its own last epoch: the same
        # model trained alone for that many epochs; the others went on unaffected by the stopped one
        alone = _train(smoke_data, tmp_path / f"alone{index}", [index], preset=preset, max_epochs=history["epochs_run"])
        assert _same_state(_state(folder), _state(alone[0]))
        assert load_history(alone[0])["val_loss"] == history["val_loss"]


def test_trainer_applies_the_rule_after_every_epoch(smoke_data, tmp_path):
    preset = SMOKE.with_overrides(max_epochs=6, patience=1, tolerance=1.0)  # any non-improving epoch stops
    warmup = warmup_epochs(6, preset.warmup_fraction)
    for folder in _train(smoke_data, tmp_path / "rule", [0, 1, 2, 3], preset=preset):
        history = load_history(folder)
        losses, epochs = history["val_loss"], history["epochs_run"]
        stops = [should_stop(losses[:e], preset.patience, preset.tolerance, warmup) for e in range(1, epochs + 1)]
        assert not any(stops[:-1])  # it ran while the rule said go on ...
        assert history["stopped_early"] == stops[-1]  # ... and stopped exactly when it said stop
        assert history["stopped_early"] or epochs == 6


class _Kill(Exception):
    pass


def test_resume_after_kill_gives_the_uninterrupted_weights(smoke_data, tmp_path, monkeypatch):
    preset = SMOKE.with_overrides(max_epochs=3)
    reference = _train(smoke_data, tmp_path / "reference", [0, 1], preset=preset)

    # kill 1: after model 0 checkpointed epoch 2 but before model 1 did (models at different epochs)
    original_update = training_run._ProgressBar.update

    def update(self, event):
        original_update(self, event)
        if event["event"] == "epoch" and event["index"] == 0 and event["epoch"] == 2:
            raise _Kill

    monkeypatch.setattr(training_run._ProgressBar, "update", update)
    with pytest.raises(_Kill):
        _train(smoke_data, tmp_path / "killed", [0, 1], preset=preset)
    monkeypatch.setattr(training_run._ProgressBar, "update", original_update)
    checkpoints = [torch.load(tmp_path / "killed" / f"model_00{i}" / "checkpoint.pt", weights_only=True) for i in (0, 1)]
    assert [c["epoch"] for c in checkpoints] == [2, 1]
    resumed = _train(smoke_data, tmp_path / "killed", [0, 1], preset=preset)
    for a, b in zip(reference, resumed, strict=True):
        assert _same_state(_state(a), _state(b))
        assert _same_state(_state(a, "best_weights.pt"), _state(b, "best_weights.pt"))
        assert load_history(a) == load_history(b)

    # kill 2: in the middle of an epoch (during the 4th training step)
    calls = {"n": 0}
    original_step = recipes.train_step  # the paper recipe's step (ssh_ood.nets.recipes.Recipe.step)

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise _Kill
        return original_step(*args, **kwargs)

    monkeypatch.setattr(recipes, "train_step", step)
    with pytest.raises(_Kill):
        _train(smoke_data, tmp_path / "mid", [0, 1], preset=preset)
    monkeypatch.setattr(recipes, "train_step", original_step)
    resumed = _train(smoke_data, tmp_path / "mid", [0, 1], preset=preset)
    for a, b in zip(reference, resumed, strict=True):
        assert _same_state(_state(a), _state(b))


def test_resume_refuses_a_different_run(smoke_data, tmp_path):
    _train(smoke_data, tmp_path / "run", [0])
    with pytest.raises(ValueError, match="different run"):
        _train(smoke_data, tmp_path / "run", [0], preset=SMOKE.with_overrides(lr=0.5))
    with pytest.raises(ValueError, match="different run"):
        _train(smoke_data, tmp_path / "run", [0], base_seed=1)


def test_thermometer_training(smoke_data, tmp_path):
    folder = _train(smoke_data, tmp_path / "thermo", [0], thermometer_levels=2, max_epochs=1)[0]
    model = load_model(folder, which="best")
    assert isinstance(model, CNN_SSH_ThermEncod) or model.in_channels == 2
    assert json.loads((folder / "config.json").read_text())["thermometer_levels"] == 2


def test_bad_inputs(smoke_data, tmp_path):
    with pytest.raises(ValueError, match="preset"):
        _train(smoke_data, tmp_path / "x", [0], preset="huge")
    with pytest.raises(ValueError, match="at least one"):
        _train(smoke_data, tmp_path / "x", [])
    with pytest.raises(ValueError, match="distinct"):
        _train(smoke_data, tmp_path / "x", [1, 1])
    with pytest.raises(ValueError, match="base_seed"):
        _train(smoke_data, tmp_path / "x", [0], base_seed=-1)
    with pytest.raises(ValueError, match="max_epochs"):
        _train(smoke_data, tmp_path / "x", [0], max_epochs=0)
    with pytest.raises(ValueError, match="thermometer_levels"):
        _train(smoke_data, tmp_path / "x", [0], thermometer_levels=1)
    with pytest.raises(FileNotFoundError, match="datasets folder not found"):
        _train(tmp_path / "no_data", tmp_path / "x", [0])
    with pytest.raises(ValueError, match="engine"):
        _train(smoke_data, tmp_path / "x", [0], engine="magic")


def test_load_model_errors(smoke_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(tmp_path / "missing")
    folder = tmp_path / "model_000"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="weights.pt: no such file"):
        load_model(folder)
    (folder / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="weights.pt"):
        load_model(folder)
    torch.save({"something": torch.zeros(2)}, folder / "weights.pt")
    with pytest.raises(ValueError, match="CNN_SSH"):
        load_model(folder)
    with pytest.raises(ValueError, match="which"):
        load_model(folder, which="first")
    with pytest.raises(FileNotFoundError, match="history.json"):
        load_history(folder)


def test_cli_train(smoke_data, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["train", "--preset", "smoke", "--n-models", "2", "--seed", "1", "--out", str(out),
                     "--data", str(smoke_data), "--epochs", "1", "--workers", "1", "--quiet"])
    assert code == 0
    assert "summary.csv" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [int(r["seed"]) for r in rows] == [1_000_000, 1_000_001] and all(r["epochs_run"] == "1" for r in rows)
    assert all((out / name / "training_curve.png").stat().st_size > 1000 for name in ("model_000", "model_001"))
    assert cli_main(["train", "--preset", "smoke", "--n-models", "0", "--out", str(out), "--data", str(smoke_data), "--quiet"]) == 2
    assert cli_main(["train", "--preset", "smoke", "--out", str(out), "--data", str(tmp_path / "none"), "--quiet"]) == 2


def test_workers_exit_when_the_parent_is_killed(smoke_data, tmp_path):
    """SIGKILL of the training process must not leave its worker processes training on as orphans."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from ssh_ood.base.paths import REPO_ROOT

    script = ("from ssh_ood.nets.training_run import train_models; "
              f"train_models('smoke', {str(smoke_data)!r}, {str(tmp_path / 'run')!r}, [0, 1], max_epochs=100000, "
              "early_stopping=False, n_workers=2, progress=False)")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "run").glob("model_*/checkpoint.pt")):  # workers are training
            assert parent.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        workers = [p for p in psutil.Process(parent.pid).children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"orphaned workers still running: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
