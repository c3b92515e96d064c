"""Compute-device choice: CUDA, then Apple MPS, then CPU, unless one is forced."""

from __future__ import annotations

import torch


def select_device(name: str | None = None) -> torch.device:
    """Return ``torch.device(name)`` if given (checked to exist), else the best available one.

    Raises ``ValueError`` for an unknown name or a device this machine does not have.
    """
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device: unknown device {name!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: CUDA was requested but is not available on this machine")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device: MPS was requested but is not available on this machine")
    return device
