"""Dropout masks drawn as random bits: the distribution of ``nn.Dropout(0.5)``, an order of magnitude cheaper.

``nn.Dropout(p=0.5)`` keeps each unit independently with probability 1/2 and multiplies the kept units by
1 / (1 - p) = 2. Its mask generation (``aten::bernoulli_``) costs ~70 ns per element on this CPU and was 40 %
of a training step. Here the keep decisions are the bits of 64-bit random words: one generator call
yields 64 independent fair Bernoulli draws, so a mask costs ~1 ns per element.

Bit layout (fixed, shared by every device and engine): element ``i`` of the flattened (C-order) mask is
bit ``i % 8`` of byte ``i // 8`` of the little-endian byte view of the words, i.e. bit ``i % 64`` of word
``i // 64``. Each model draws from its own ``torch.Generator`` so its masks do not depend on which other
models are trained beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import numpy as np
import torch

KEEP_PROBABILITY = 0.5
KEEP_SCALE = 1.0 / KEEP_PROBABILITY  # 2: kept units are scaled so that E[dropout(x)] = x
_INT64_MIN = -(2**63)
_BITS = torch.arange(8, dtype=torch.uint8)


def draw_words(generator: torch.Generator, n_bits: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``ceil(n_bits / 64)`` uniformly random int64 words (all 64 bits random) from ``generator``.

    The words are drawn on the generator's device and moved to ``device``.
    """
    if n_bits < 0:
        raise ValueError(f"n_bits must be >= 0, got {n_bits}")
    words = torch.empty((n_bits + 63) // 64, dtype=torch.int64, device=generator.device)
    words.random_(_INT64_MIN, None, generator=generator)
    return words.to(device)


def unpack_bits(words: torch.Tensor, n_bits: int) -> torch.Tensor:
    """The first ``n_bits`` bits of ``words`` as a uint8 tensor of 0/1 on the same device (layout above)."""
    if words.dtype != torch.int64 or words.ndim != 1:
        raise ValueError("words must be a 1-D int64 tensor")
    if n_bits > 64 * words.numel():
        raise ValueError(f"{words.numel()} words hold fewer than n_bits = {n_bits} bits")
    as_bytes = words.view(torch.uint8)
    if as_bytes.device.type == "cpu":
        return torch.from_numpy(np.unpackbits(as_bytes.numpy(), count=n_bits, bitorder="little"))
    bits = (as_bytes.unsqueeze(-1) >> _BITS.to(as_bytes.device)) & 1
    return bits.view(-1)[:n_bits]


def draw_keep_masks(
    generator: torch.Generator,
    shapes: Sequence[Sequence[int]],
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Keep masks (uint8, 1 = keep with probability 1/2) of the given shapes, from one draw of ``generator``.

    The masks of one training step (e.g. the three dropout layers of ``CNN_SSH``, shapes (B, C, H, W))
    are consecutive segments of one bit stream, so one call advances the generator by
    ``ceil(sum(sizes) / 64)`` words whatever the device or engine.
    """
    sizes = [prod(shape) for shape in shapes]
    bits = unpack_bits(draw_words(generator, sum(sizes), device), sum(sizes))
    return [segment.view(*shape) for segment, shape in zip(bits.split(sizes), shapes, strict=True)]


def apply_keep_mask(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Inverted dropout with a given mask: ``x * keep * 2`` (differentiable in ``x``)."""
    return x * (keep.to(x.dtype) * KEEP_SCALE)
