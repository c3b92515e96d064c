"""Saving a matplotlib figure as PDF + PNG, atomically: the one way every step writes a figure."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib.pyplot as plt

from .io_utils import atomic_write_bytes

#: environment variable naming a folder that replaces every ``out_dir`` of :func:`save_figure` (the dashboard's
#: kernels set it to a temporary folder, so that serving a notebook writes nothing into the repository)
FIGURES_ENV = "SSH_OOD_FIGURES_DIR"


def save_figure(fig: plt.Figure, name: str, out_dir: str | Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<name>.pdf`` and ``.png`` (atomically; ``out_dir`` replaced by the folder
    that :data:`FIGURES_ENV` names when it is set); returns both paths."""
    out_dir = Path(os.environ.get(FIGURES_ENV) or out_dir)
    paths = []
    for ext in ("pdf", "png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(atomic_write_bytes(out_dir / f"{name}.{ext}", buffer.getvalue()))
    return paths
