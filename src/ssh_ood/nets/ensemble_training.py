"""The ensemble engines: one SGD step, and one evaluation, for many ``CNN_SSH`` models at once.

Every model keeps its own ``CNN_SSH`` module (its parameters and BatchNorm buffers), its own SGD
momentum buffers and its own dropout ``torch.Generator``; an engine only decides how the arithmetic of
the models that are still training is laid out. Stopped models are simply not passed in, so their
weights, statistics, momentum and generator never change.

``"fused"`` (CPU): the models are stepped one after the other with the fused kernels of
    :mod:`ssh_ood.nets.fused_blocks` (BatchNorm + LeakyReLU + bit-mask dropout in one numba pass, split conv
    backward). A model's arithmetic is exactly the same whichever other models share the step, so a
    model trained inside an ensemble ends with bitwise the weights it gets when trained alone. Parallelism
    comes from worker processes, one thread each (see :mod:`ssh_ood.nets.training_run`). Measured on 2 cores, this
    beats the stacked layout below on CPU: oneDNN runs grouped convolutions 2-9x slower per model than
    ungrouped ones (K = 8-32, forward and backward).
``"stacked"`` (any device, meant for CUDA): the K models become one network with K times the channels:
    the first convolution is one C_in -> 5K convolution on the shared batch (grouped when every model
    has its own batch), the others grouped convolutions (groups = K), BatchNorm over 5K/7K/9K channels,
    the K linear layers one ``einsum``; the loss is the sum of the per-model mean losses, so each model
    receives exactly its own gradient. Equal to ``"fused"`` to float rounding.

The update is ``torch.optim.sgd.sgd``, the function behind ``torch.optim.SGD`` (momentum, weight decay,
no dampening), applied to the active models' parameters only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.sgd import sgd

from .architecture import CNN_SSH, NEGATIVE_SLOPE, build_model
from .data_loaders import TensorSplit, evaluation_batches
from .fast_dropout import apply_keep_mask, draw_keep_masks
from .fused_blocks import dropout_shapes, fused_train_forward

ENGINES = ("fused", "stacked")
_DROPOUT_STREAM = 0x64726F70  # "drop": the dropout generator's seed differs from the init seed


def default_engine(device: torch.device) -> str:
    """``"fused"`` on CPU, ``"stacked"`` on accelerators."""
    return "fused" if torch.device(device).type == "cpu" else "stacked"


def initial_model(seed: int, thermometer_levels: int | None = None) -> CNN_SSH:
    """PyTorch's default initialization of ``build_model(thermometer_levels)`` after ``torch.manual_seed(seed)``.

    The global RNG state of the caller is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build_model(thermometer_levels)


def dropout_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The model's dropout generator on ``device`` (CUDA generators on CUDA, CPU generators elsewhere).

    Seeded from (seed, "drop") through ``numpy.random.SeedSequence``, so the dropout bits are not the
    same Mersenne-Twister stream that initialized the weights.
    """
    device = torch.device(device)
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu")
    generator.manual_seed(int(np.random.SeedSequence([int(seed), _DROPOUT_STREAM]).generate_state(1, np.uint64)[0]))
    return generator


@dataclass
class ModelState:
    """Everything that changes while one model trains: module, momentum buffers, dropout generator."""

    model: CNN_SSH
    generator: torch.Generator
    momentum_buffers: list[torch.Tensor | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.momentum_buffers:
            self.momentum_buffers = [None] * len(list(self.model.parameters()))


@dataclass(frozen=True)
class SGDRecipe:
    """SGD hyper-parameters of ``torch.optim.SGD`` (no dampening, no Nesterov)."""

    lr: float
    momentum: float
    weight_decay: float


@dataclass(frozen=True)
class StepResult:
    """Per-model sums over one batch, (K,) float64 tensors on the models' device (no host sync).

    ``loss_sum``: cross-entropy summed over the batch; ``n_correct``: correct predictions.
    """

    loss_sum: torch.Tensor
    n_correct: torch.Tensor


def sgd_update(states: Sequence[ModelState], recipe: SGDRecipe) -> None:
    """One ``torch.optim.SGD`` step for every model in ``states`` from the gradients in ``.grad``."""
    params = [p for state in states for p in state.model.parameters()]
    buffers = [b for state in states for b in state.momentum_buffers]
    with torch.no_grad():
        sgd(
            params,
            [p.grad for p in params],
            buffers,
            foreach=params[0].device.type != "cpu",
            weight_decay=recipe.weight_decay,
            momentum=recipe.momentum,
            lr=recipe.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
    start = 0
    for state in states:
        count = len(state.momentum_buffers)
        state.momentum_buffers = buffers[start : start + count]
        start += count


def train_step(
    states: Sequence[ModelState],
    inputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    recipe: SGDRecipe,
    engine: str,
) -> StepResult:
    """Forward, backward and SGD update of every model in ``states`` on its batch.

    Parameters
    ----------
    states : the models to step (all of the same architecture, on one device).
    inputs, targets : one batch per model, (B, C_in, M, M) float32 and (B,) int64; models sharing the
        data order pass the same tensor objects.
    recipe : SGD hyper-parameters.
    engine : ``"fused"`` (CPU) or ``"stacked"``.
    """
    if not (len(states) == len(inputs) == len(targets)) or not states:
        raise ValueError("train_step needs one input and one target batch per model, and at least one model")
    for state in states:
        for p in state.model.parameters():
            p.grad = None
    if engine == "fused":
        result = _fused_forward_backward(states, inputs, targets)
    elif engine == "stacked":
        result = _stacked_forward_backward(states, inputs, targets)
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    sgd_update(states, recipe)
    return result


def _fused_forward_backward(states, inputs, targets) -> StepResult:
    losses, correct = [], []
    for state, x, y in zip(states, inputs, targets, strict=True):
        keep = draw_keep_masks(state.generator, dropout_shapes(state.model, x.shape))
        logits = fused_train_forward(state.model, x, keep)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        losses.append(loss.detach() * y.shape[0])
        correct.append((logits.detach().argmax(1) == y).sum())
    return StepResult(torch.stack(losses).double(), torch.stack(correct).double())


def _stacked_forward_backward(states, inputs, targets) -> StepResult:
    models = [state.model for state in states]
    device = inputs[0].device
    keep = [
        draw_keep_masks(state.generator, dropout_shapes(state.model, x.shape), device)
        for state, x in zip(states, inputs, strict=True)
    ]
    logits = stacked_logits(models, inputs, keep)  # (B, K, 2)
    y = _stack_targets(targets)  # (B, K)
    per_sample = F.cross_entropy(logits.reshape(-1, 2), y.reshape(-1), reduction="none").view(y.shape)
    per_model = per_sample.mean(dim=0)
    per_model.sum().backward()
    with torch.no_grad():
        correct = (logits.argmax(dim=2) == y).sum(dim=0)
    return StepResult(per_model.detach().double() * y.shape[0], correct.double())


def _stack_targets(targets: Sequence[torch.Tensor]) -> torch.Tensor:
    if all(t is targets[0] for t in targets):
        return targets[0].unsqueeze(1).expand(-1, len(targets))
    return torch.stack(list(targets), dim=1)


def _stacked_batchnorm(h: torch.Tensor, bns: list, training: bool) -> torch.Tensor:
    weight = torch.cat([bn.weight for bn in bns])
    bias = torch.cat([bn.bias for bn in bns])
    running_mean = torch.cat([bn.running_mean for bn in bns])
    running_var = torch.cat([bn.running_var for bn in bns])
    out = F.batch_norm(h, running_mean, running_var, weight, bias, training, bns[0].momentum, bns[0].eps)
    if training:
        channels = bns[0].num_features
        with torch.no_grad():
            torch._foreach_copy_([bn.running_mean for bn in bns], list(running_mean.split(channels)))
            torch._foreach_copy_([bn.running_var for bn in bns], list(running_var.split(channels)))
            torch._foreach_add_([bn.num_batches_tracked for bn in bns], 1)
    return out


def _stacked_block(h, convs, bns, keep, groups, training) -> torch.Tensor:
    weight = torch.cat([conv.weight for conv in convs])
    conv = convs[0]
    h = F.conv2d(h, weight, stride=conv.stride, padding=conv.padding, groups=groups)
    h = F.leaky_relu(_stacked_batchnorm(h, bns, training), NEGATIVE_SLOPE)
    if keep is not None:
        h = apply_keep_mask(h, torch.cat(keep, dim=1))
    return h


def stacked_logits(
    models: Sequence[CNN_SSH],
    inputs: Sequence[torch.Tensor],
    keep_masks: Sequence[Sequence[torch.Tensor]] | None,
) -> torch.Tensor:
    """Logits (B, K, 2) of K models run as one network with K times the channels.

    ``inputs``: one batch per model (the same object when shared); ``keep_masks[k]``: model k's three
    dropout masks, or ``None`` for evaluation (BatchNorm with running statistics, no dropout).
    Training mode updates every model's running statistics like ``nn.BatchNorm2d``.
    """
    K = len(models)
    training = keep_masks is not None
    shared = all(x is inputs[0] for x in inputs)
    if shared:
        h, groups1 = inputs[0], 1
    else:
        h, groups1 = torch.stack(list(inputs), dim=1).flatten(1, 2), K
    layers = (
        (lambda m: m.cnn_layers_1[0], lambda m: m.cnn_layers_1[1], groups1),
        (lambda m: m.cnn_layers_1[4], lambda m: m.cnn_layers_1[5], K),
        (lambda m: m.cnn_layers_2[0], lambda m: m.cnn_layers_2[1], K),
    )
    for number, (conv_of, bn_of, groups) in enumerate(layers):
        keep = [masks[number] for masks in keep_masks] if training else None
        h = _stacked_block(h, [conv_of(m) for m in models], [bn_of(m) for m in models], keep, groups, training)
    pooled = h.mean(dim=(2, 3)).view(h.shape[0], K, -1)
    weight = torch.stack([m.linear_layers[0].weight for m in models])  # (K, 2, F)
    bias = torch.stack([m.linear_layers[0].bias for m in models])  # (K, 2)
    return torch.einsum("bkf,kof->bko", pooled, weight) + bias


@dataclass(frozen=True)
class Evaluation:
    """Per-model results on one split: mean cross-entropy, accuracy, predicted labels (K, N)."""

    loss: np.ndarray
    accuracy: np.ndarray
    predictions: np.ndarray


@torch.no_grad()
def evaluate_models(
    models: Sequence[CNN_SSH],
    split: TensorSplit,
    thermometer_levels: int | None,
    engine: str,
    batch_size: int | None = None,
) -> Evaluation:
    """Evaluation-mode loss, accuracy and predictions of every model on ``split`` (no dropout).

    ``"fused"`` folds each BatchNorm into the preceding convolution (w' = w gamma / sigma,
    b' = beta - mu gamma / sigma): equal to ``model.eval()(x)`` to float rounding, ~30 % faster.
    ``batch_size``: samples per forward pass (default 250 for ``"fused"``, ~16k / K for ``"stacked"``).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    K = len(models)
    if batch_size is None:
        batch_size = 250 if engine == "fused" else max(16, 16384 // K)
    folded = [_folded_blocks(m) for m in models] if engine == "fused" else None
    losses = torch.zeros(K, dtype=torch.float64)
    predictions = []
    for x, y in evaluation_batches(split, batch_size, thermometer_levels):
        if engine == "stacked":
            logits = stacked_logits(models, [x] * K, None)  # (B, K, 2)
        else:
            logits = torch.stack([_folded_logits(m, blocks, x) for m, blocks in zip(models, folded, strict=True)], 1)
        per_sample = F.cross_entropy(logits.reshape(-1, 2), y.repeat_interleave(K), reduction="none")
        losses += per_sample.view(-1, K).double().sum(dim=0).cpu()
        predictions.append(logits.argmax(dim=2).T.cpu())
    predicted = torch.cat(predictions, dim=1).numpy()
    labels = split.y.cpu().numpy()
    return Evaluation(losses.numpy() / len(split), (predicted == labels).mean(axis=1), predicted)


def _folded_blocks(model: CNN_SSH) -> list[tuple]:
    """(weight, bias, stride, padding) of each conv block with its eval-mode BatchNorm folded in."""
    l1, l2 = model.cnn_layers_1, model.cnn_layers_2
    blocks = []
    for conv, bn in ((l1[0], l1[1]), (l1[4], l1[5]), (l2[0], l2[1])):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        blocks.append((conv.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale, conv.stride, conv.padding))
    return blocks


def _folded_logits(model: CNN_SSH, blocks: list[tuple], x: torch.Tensor) -> torch.Tensor:
    h = x
    for weight, bias, stride, padding in blocks:
        h = F.leaky_relu_(F.conv2d(h, weight, bias, stride, padding), NEGATIVE_SLOPE)
    return model.linear_layers(h.mean(dim=(2, 3)))
