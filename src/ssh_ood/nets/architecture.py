"""The paper's CNN (``CNN_SSH``) and its thermometer-encoding variant (``CNN_SSH_ThermEncod``).

Module names and indices follow the paper's code (``cnn_layers_1.0.weight``, ..., ``linear_layers.0.bias``)
so that weights published with the paper load unchanged with ``load_state_dict``. ``forward`` returns
logits; the paper's trailing Softmax has no parameters and is applied by :meth:`predict_proba`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..base.validation import require_int

NEGATIVE_SLOPE = 0.01
DROPOUT = 0.5


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(NEGATIVE_SLOPE),
        nn.Dropout(DROPOUT),
    ]


class CNN_SSH(nn.Module):  # noqa: N801 - the paper's name, kept so its weights load
    """Convolutional classifier of SSH observables, docs/physics_and_methods.md §3 (1,024 trainable parameters for 1 channel).

    Input (B, in_channels, 50, 50) -> conv 4x4/2 (5) -> conv 3x3 (7) -> conv 3x3 (9), each followed by
    BatchNorm, LeakyReLU(0.01) and Dropout(0.5) -> global average pool (9) -> Linear(9 -> 2) logits.

    Parameters
    ----------
    channel_multiplier : multiplies every channel count (1 for the paper's network; L for the
        thermometer-encoding variant with L input channels).
    """

    def __init__(self, channel_multiplier: int = 1) -> None:
        super().__init__()
        c = require_int("channel_multiplier", channel_multiplier, minimum=1)
        self.in_channels = c
        self.cnn_layers_1 = nn.Sequential(*_conv_block(c, 5 * c, 4, 2, 2), *_conv_block(5 * c, 7 * c, 3, 1, 1))
        self.cnn_layers_2 = nn.Sequential(*_conv_block(7 * c, 9 * c, 3, 1, 1))
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.linear_layers = nn.Sequential(nn.Linear(9 * c, 2))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps A of the last convolutional block, (B, 9c, 26, 26) for 50x50 input."""
        return self.cnn_layers_2(self.cnn_layers_1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2): index 0 = trivial, 1 = topological."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        pooled = self.avg_pool(self.features(x)).flatten(1)
        return self.linear_layers(pooled)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax of the logits), (B, 2)."""
        return torch.softmax(self.forward(x), dim=1)


class CNN_SSH_ThermEncod(CNN_SSH):  # noqa: N801 - the paper's name
    """``CNN_SSH`` for thermometer-encoded input with ``levels`` channels: every channel count x L.

    Trainable parameters: 962 L^2 + 60 L + 2 (1,024 for L = 1).
    """

    def __init__(self, levels: int) -> None:
        super().__init__(channel_multiplier=levels)
        self.levels = levels


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(thermometer_levels: int | None = None) -> CNN_SSH:
    """``CNN_SSH()`` for real-valued input, ``CNN_SSH_ThermEncod(L)`` for L thermometer levels."""
    if thermometer_levels is None or thermometer_levels == 0:
        return CNN_SSH()
    return CNN_SSH_ThermEncod(int(thermometer_levels))
