"""Thermometer encoding of the observables: one real value in [0, 1] -> L binary channels.

Channel c (c = 0 .. L-1) is 1 where x > c / L ("fixed" convention, default): every channel can be 1 and
the number of lit channels, ceil(L x) for x in (0, 1], is the level of x. The paper's code used the
thresholds c / (L - 1) ("paper" convention), for which the last channel (threshold 1) is never lit
because X <= 1; it is offered for comparison.

Physics sets which channels can ever light up: the SSH Hamiltonian is chiral (it only couples the A and
B sublattices), so every eigenstate carries exactly half its weight on each sublattice and no site
density exceeds 1/2, with or without disorder. Channels with threshold >= 1/2 are therefore always
dark: with L = 2 only channel 0 (x > 0) is left and the encoding erases every feature the classifier
needs, so :data:`MIN_INFORMATIVE_LEVELS` = 3 is the smallest useful L. The bulk densities of a clean
chain (~1/25) sit below the first threshold 1/L for L < 25, so a thermometer with L < 25 keeps the edge
states and drops the smooth bulk profile.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch

from ..base.validation import require_int

ArrayLike = TypeVar("ArrayLike", np.ndarray, torch.Tensor)
Convention = Literal["fixed", "paper"]


MAX_SITE_DENSITY = 0.5  # chiral symmetry: half of every eigenstate's weight on each sublattice
MIN_INFORMATIVE_LEVELS = 3  # the smallest L with a threshold c / L in (0, MAX_SITE_DENSITY)


def thresholds(levels: int, convention: Convention = "fixed") -> np.ndarray:
    """The L thresholds: c / L (``"fixed"``) or c / (L - 1) (``"paper"``), c = 0 .. L-1."""
    levels = require_int("levels", levels, minimum=2)
    if convention == "fixed":
        return np.arange(levels) / levels
    if convention == "paper":
        return np.arange(levels) / (levels - 1)
    raise ValueError(f"convention must be 'fixed' or 'paper', got {convention!r}")


def thermometer_encode(x: ArrayLike, levels: int, convention: Convention = "fixed") -> ArrayLike:
    """Encode ``x`` of shape (N, 1, H, W) with values in [0, 1] into (N, L, H, W) binary channels.

    ``out[:, c] = 1[x > threshold_c]`` (see :func:`thresholds`); float32 output, numpy in -> numpy out,
    torch in -> torch out (same device). Raises ``ValueError`` for other shapes, NaN or values outside
    [0, 1].
    """
    levels_t = thresholds(levels, convention)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"thermometer_encode expects shape (N, 1, H, W), got {tuple(x.shape)}")
    if isinstance(x, torch.Tensor):
        if x.numel() and (torch.isnan(x).any() or x.min() < 0 or x.max() > 1):
            raise ValueError("thermometer_encode: values must lie in [0, 1]")
        t = torch.as_tensor(levels_t, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x > t).to(torch.float32)
    x = np.asarray(x)
    if x.size and (np.isnan(x).any() or x.min() < 0 or x.max() > 1):
        raise ValueError("thermometer_encode: values must lie in [0, 1]")
    return (x > levels_t.reshape(1, -1, 1, 1)).astype(np.float32)


def thermometer_decode(encoded: ArrayLike) -> ArrayLike:
    """Level index of each pixel: the number of lit channels, (N, L, H, W) -> (N, 1, H, W) int64."""
    if encoded.ndim != 4:
        raise ValueError(f"thermometer_decode expects shape (N, L, H, W), got {tuple(encoded.shape)}")
    if isinstance(encoded, torch.Tensor):
        return (encoded > 0.5).sum(dim=1, keepdim=True)
    return (np.asarray(encoded) > 0.5).sum(axis=1, keepdims=True).astype(np.int64)
