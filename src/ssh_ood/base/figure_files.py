"""Saving a matplotlib figure as PDF + PNG, atomically: the one way every step writes a figure."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from .io_utils import atomic_write_bytes


def save_figure(fig: plt.Figure, name: str, out_dir: str | Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<name>.pdf`` and ``.png`` (atomically); returns both paths."""
    out_dir = Path(out_dir)
    paths = []
    for ext in ("pdf", "png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(atomic_write_bytes(out_dir / f"{name}.{ext}", buffer.getvalue()))
    return paths
