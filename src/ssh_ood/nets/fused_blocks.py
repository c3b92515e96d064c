"""Fused CPU training-mode kernels for ``CNN_SSH``: one conv block = Conv2d -> BatchNorm2d -> LeakyReLU -> Dropout.

Used by the CPU ensemble engine (:mod:`ssh_ood.nets.ensemble_training`). Mathematically identical to the modules of
:mod:`ssh_ood.nets.architecture` in training mode, with a given dropout keep mask; faster because

* **BatchNorm + LeakyReLU + Dropout** run as one numba kernel: forward = batch statistics + one pass,
  backward = two passes, with the 0/1 keep mask as uint8 (PyTorch's modules take ~10 memory passes and
  float masks). With y = 2 k f(z), z = gamma (c - mu) / sqrt(var + eps) + beta, f the LeakyReLU
  (slope 0.01) and k the keep bit, the backward pass is the textbook batch-norm gradient
  dc = gamma / sigma (dz - mean(dz) - x_hat mean(dz x_hat)) with dz = 2 k f'(z) dy.
  The last block also fuses the global average pool (its (B, C, H, W) output is never stored).
* **Convolution backward** computes the weight gradient and the input gradient with two separate
  oneDNN calls (the input gradient of a stride-1 convolution as a forward convolution with the
  flipped, transposed kernel); oneDNN's combined backward is ~3x slower for these 5-9 channel layers.

Running statistics follow ``nn.BatchNorm2d`` (momentum 0.1, unbiased batch variance). All kernels are
single-threaded: the ensemble engine parallelizes over models with worker processes.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .architecture import CNN_SSH, NEGATIVE_SLOPE
from .fast_dropout import KEEP_SCALE

_FASTMATH = {"reassoc", "nsz", "contract"}  # reassociation lets LLVM vectorize the reductions
_SCALE_POS = np.float32(KEEP_SCALE)
_SCALE_NEG = np.float32(KEEP_SCALE * NEGATIVE_SLOPE)


# ----------------------------------------------------------------------------------------------
# numba kernels on (B, C, L) float32 views, L = H * W; keep masks (B, C, L) uint8
# ----------------------------------------------------------------------------------------------
@nb.njit(cache=True, fastmath=_FASTMATH, boundscheck=False)
def _batch_stats(c):  # pragma: no cover - compiled
    """Per-channel mean and biased variance (two-pass, float64 across planes)."""
    B, C, L = c.shape
    n = B * L
    mean = np.empty(C)
    var = np.empty(C)
    for ch in range(C):
        total = 0.0
        for b in range(B):
            row = c[b, ch]
            acc = np.float32(0.0)
            for t in range(L):
                acc += row[t]
            total += acc
        mu = total / n
        mu32 = np.float32(mu)
        total = 0.0
        for b in range(B):
            row = c[b, ch]
            acc = np.float32(0.0)
            for t in range(L):
                d = row[t] - mu32
                acc += d * d
            total += acc
        mean[ch] = mu
        var[ch] = total / n
    return mean, var


@nb.njit(cache=True, fastmath=_FASTMATH, boundscheck=False)
def _forward_apply(c, keep, scale, shift, y):  # pragma: no cover - compiled
    """y = 2 k LeakyReLU(scale c + shift)."""
    B, C, L = c.shape
    for b in range(B):
        for ch in range(C):
            a = scale[ch]
            s = shift[ch]
            row = c[b, ch]
            k = keep[b, ch]
            out = y[b, ch]
            for t in range(L):
                z = row[t] * a + s
                f = _SCALE_POS if z > 0 else _SCALE_NEG
                out[t] = z * f * np.float32(k[t])


@nb.njit(cache=True, fastmath=_FASTMATH, boundscheck=False)
def _forward_apply_pool(c, keep, scale, shift, pooled):  # pragma: no cover - compiled
    """pooled[b, ch] = mean over L of 2 k LeakyReLU(scale c + shift)."""
    B, C, L = c.shape
    for b in range(B):
        for ch in range(C):
            a = scale[ch]
            s = shift[ch]
            row = c[b, ch]
            k = keep[b, ch]
            acc = np.float32(0.0)
            for t in range(L):
                z = row[t] * a + s
                f = _SCALE_POS if z > 0 else _SCALE_NEG
                acc += z * f * np.float32(k[t])
            pooled[b, ch] = acc / np.float32(L)


@nb.njit(cache=True, fastmath=_FASTMATH, boundscheck=False)
def _backward(gy, pooled, c, keep, scale, shift, mean, invstd, gamma, gc):  # pragma: no cover - compiled
    """Gradients of the fused block. ``gy`` is (B, C, L), or (B, C, 1) holding dL/dpooled / L if pooled.

    Writes dL/dc into ``gc``; returns (dL/dgamma, dL/dbeta) as float64 (C,).
    """
    B, C, L = c.shape
    n = B * L
    sum_gz = np.zeros(C)
    sum_gz_xhat = np.zeros(C)
    for b in range(B):
        for ch in range(C):
            a = scale[ch]
            s = shift[ch]
            mu = np.float32(mean[ch])
            row = c[b, ch]
            k = keep[b, ch]
            g = gy[b, ch]
            out = gc[b, ch]
            acc_gz = np.float32(0.0)
            acc_gzc = np.float32(0.0)
            for t in range(L):
                z = row[t] * a + s
                f = _SCALE_POS if z > 0 else _SCALE_NEG
                gz = (g[0] if pooled else g[t]) * f * np.float32(k[t])
                out[t] = gz
                acc_gz += gz
                acc_gzc += gz * (row[t] - mu)
            sum_gz[ch] += acc_gz
            sum_gz_xhat[ch] += acc_gzc * invstd[ch]
    for b in range(B):
        for ch in range(C):
            mu = np.float32(mean[ch])
            inv = np.float32(invstd[ch])
            coef = np.float32(gamma[ch] * invstd[ch])
            mean_gz = np.float32(sum_gz[ch] / n)
            mean_gz_xhat = np.float32(sum_gz_xhat[ch] / n)
            row = c[b, ch]
            out = gc[b, ch]
            for t in range(L):
                xhat = (row[t] - mu) * inv
                out[t] = coef * (out[t] - mean_gz - xhat * mean_gz_xhat)
    return sum_gz_xhat, sum_gz


def _planes(t: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) contiguous CPU tensor -> (B, C, H*W) numpy view (no copy)."""
    return t.detach().reshape(t.shape[0], t.shape[1], -1).numpy()


class _BatchNormLeakyDropout(torch.autograd.Function):
    """Training-mode BatchNorm2d -> LeakyReLU(0.01) -> Dropout(keep mask) [-> global average pool]."""

    @staticmethod
    def forward(ctx, c, weight, bias, keep, running_mean, running_var, momentum, eps, pool):
        c = c.contiguous()
        B, C, H, W = c.shape
        c_np = _planes(c)
        keep_np = _planes(keep)
        mean, var = _batch_stats(c_np)
        invstd = 1.0 / np.sqrt(var + eps)
        gamma = weight.detach().numpy().astype(np.float64)
        scale = (gamma * invstd).astype(np.float32)
        shift = (bias.detach().numpy() - mean * gamma * invstd).astype(np.float32)
        n = B * H * W
        with torch.no_grad():
            running_mean.mul_(1.0 - momentum).add_(torch.from_numpy(mean).to(running_mean.dtype), alpha=momentum)
            unbiased = torch.from_numpy(var * (n / max(n - 1, 1))).to(running_var.dtype)
            running_var.mul_(1.0 - momentum).add_(unbiased, alpha=momentum)
        if pool:
            out = torch.empty(B, C, dtype=c.dtype)
            _forward_apply_pool(c_np, keep_np, scale, shift, out.numpy())
        else:
            out = torch.empty_like(c)
            _forward_apply(c_np, keep_np, scale, shift, _planes(out))
        ctx.save_for_backward(c, weight, keep)
        ctx.constants = (scale, shift, mean, invstd, pool)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        c, weight, keep = ctx.saved_tensors
        scale, shift, mean, invstd, pool = ctx.constants
        B, C, H, W = c.shape
        if pool:
            gy = (grad_out / (H * W)).contiguous().reshape(B, C, 1).numpy()
        else:
            gy = _planes(grad_out.contiguous())
        grad_c = torch.empty_like(c)
        grad_gamma, grad_beta = _backward(
            gy, pool, _planes(c), _planes(keep), scale, shift, mean, invstd, weight.detach().numpy(), _planes(grad_c)
        )
        grad_gamma = torch.from_numpy(grad_gamma).to(weight.dtype)
        grad_beta = torch.from_numpy(grad_beta).to(weight.dtype)
        return grad_c, grad_gamma, grad_beta, None, None, None, None, None, None


def batchnorm_leaky_dropout(
    c: torch.Tensor, bn: nn.BatchNorm2d, keep: torch.Tensor, pool: bool = False
) -> torch.Tensor:
    """Training-mode ``Dropout(LeakyReLU(bn(c)))`` with keep mask ``keep`` (uint8, shape of ``c``).

    Updates ``bn``'s running statistics and ``num_batches_tracked`` like ``nn.BatchNorm2d.train()``.
    Returns (B, C, H, W), or the global average pool (B, C) if ``pool``. CPU float32 only.
    """
    if c.device.type != "cpu" or c.dtype != torch.float32:
        raise ValueError(f"fused kernels need float32 CPU tensors, got {c.dtype} on {c.device}")
    if keep.shape != c.shape or keep.dtype != torch.uint8:
        raise ValueError(f"keep mask must be uint8 of shape {tuple(c.shape)}, got {keep.dtype} {tuple(keep.shape)}")
    bn.num_batches_tracked.add_(1)
    return _BatchNormLeakyDropout.apply(
        c, bn.weight, bn.bias, keep.contiguous(), bn.running_mean, bn.running_var, bn.momentum, bn.eps, pool
    )


class _Conv2dSplitBackward(torch.autograd.Function):
    """``F.conv2d`` without bias whose backward calls oneDNN once per needed gradient."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, stride=stride, padding=padding)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        grad_out = grad_out.contiguous()
        grad_x = grad_w = None
        args = ([stride, stride], [padding, padding], [1, 1], False, [0, 0], 1)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(grad_out, x, weight, None, *args, [False, True, False])[1]
        if ctx.needs_input_grad[0]:
            kernel = weight.shape[-1]
            if stride == 1 and weight.shape[-2] == kernel and padding <= kernel - 1:
                flipped = weight.flip(2, 3).transpose(0, 1)
                grad_x = F.conv2d(grad_out, flipped, padding=kernel - 1 - padding)
            else:
                grad_x = torch.ops.aten.convolution_backward(grad_out, x, weight, None, *args, [True, False, False])[0]
        return grad_x, grad_w, None, None


def conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for a bias-free, square-stride ``nn.Conv2d``, with the split backward."""
    return _Conv2dSplitBackward.apply(x, conv.weight, conv.stride[0], conv.padding[0])


def dropout_shapes(model: CNN_SSH, batch_shape: torch.Size | tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Shapes (B, C, H', W') of the three dropout layers of ``model`` for an input of shape ``batch_shape``."""
    B, _, H, W = batch_shape
    conv1 = model.cnn_layers_1[0]
    k, s, p = conv1.kernel_size[0], conv1.stride[0], conv1.padding[0]
    H1, W1 = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    channels = (conv1.out_channels, model.cnn_layers_1[4].out_channels, model.cnn_layers_2[0].out_channels)
    return [(B, c, H1, W1) for c in channels]


def fused_train_forward(model: CNN_SSH, x: torch.Tensor, keep_masks: list[torch.Tensor]) -> torch.Tensor:
    """Training-mode logits (B, 2) of ``model`` on ``x`` with the three given dropout keep masks.

    Equals ``model.train()(x)`` with each ``nn.Dropout`` replaced by ``x * keep * 2`` (to float rounding),
    including the running-statistics updates; differentiable in the parameters.
    """
    l1, l2 = model.cnn_layers_1, model.cnn_layers_2
    h = batchnorm_leaky_dropout(conv2d(x, l1[0]), l1[1], keep_masks[0])
    h = batchnorm_leaky_dropout(conv2d(h, l1[4]), l1[5], keep_masks[1])
    pooled = batchnorm_leaky_dropout(conv2d(h, l2[0]), l2[1], keep_masks[2], pool=True)
    return model.linear_layers(pooled)
