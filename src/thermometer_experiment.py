"""The experiment the paper did not run: does thermometer encoding change out-of-distribution generalization?

Two ensembles with the same seeds, recipe and data: ``CNN_SSH`` on the real-valued observables and
``CNN_SSH_ThermEncod(L)`` on their thermometer encoding. Both are evaluated on the same generalization
grid (:mod:`src.generalization`); the table holds one row per model and encoding.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .generalization import GeneralizationGrid, evaluate_model_dirs
from .presets import Preset, get_preset
from .training_utils import model_dir_name, train_models

COMPARED_COLUMNS = ("clean_accuracy", "ood_accuracy", "ood_macro_f1", "rmse", "ssim")


def compare_encodings(
    preset: Preset | str,
    seed: int,
    n_models: int,
    levels: int,
    data_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
) -> pd.DataFrame:
    """Train (or resume) both ensembles under ``out_dir`` and evaluate them on the preset's grid.

    Parameters
    ----------
    preset : recipe, data sizes and grid. seed : run seed (model seeds, data order, grid disorder).
    n_models : models per encoding (model i has the same seed in both).
    levels : thermometer channels L.
    data_dir : the preset's datasets folder. out_dir : holds ``real_valued/`` and ``thermometer_L<L>/``.

    Returns
    -------
    DataFrame with columns ``encoding``, ``model`` and :data:`COMPARED_COLUMNS`.
    """
    preset = get_preset(preset)
    if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 1:
        raise ValueError(f"n_models must be a positive integer, got {n_models!r}")
    out_dir = Path(out_dir)
    runs = {"real-valued": (out_dir / "real_valued", None), f"thermometer L={levels}": (out_dir / f"thermometer_L{levels}", levels)}
    grid = GeneralizationGrid.from_preset(preset, seed)
    rows = []
    for encoding, (run_dir, thermometer_levels) in runs.items():
        train_models(preset, data_dir, run_dir, range(n_models), base_seed=seed,
                     thermometer_levels=thermometer_levels, progress=progress)
        summaries = evaluate_model_dirs([run_dir / model_dir_name(i) for i in range(n_models)], grid, progress=progress)
        for index, summary in enumerate(summaries):
            rows.append({
                "encoding": encoding,
                "model": index,
                "clean_accuracy": summary["clean"]["accuracy"],
                "ood_accuracy": summary["ood"]["accuracy"],
                "ood_macro_f1": summary["ood"]["macro_f1"],
                "rmse": summary["rmse"],
                "ssim": summary["ssim"],
            })
    return pd.DataFrame(rows)


def figure_encoding_comparison(table: pd.DataFrame, rmse_threshold: float = 0.2) -> plt.Figure:
    """OOD accuracy and RMSE of both encodings side by side (one dot per model, box of the spread)."""
    encodings = list(dict.fromkeys(table["encoding"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for ax, column, label in zip(axes, ("ood_accuracy", "rmse"), ("OOD accuracy (mean over sets)", "RMSE to target"),
                                 strict=True):
        values = [table.loc[table["encoding"] == e, column].to_numpy() for e in encodings]
        ax.boxplot(values, tick_labels=encodings, widths=0.5)
        for position, v in enumerate(values, start=1):
            ax.plot(position + rng.uniform(-0.12, 0.12, v.size), v, "o", alpha=0.7)
        ax.set_ylabel(label)
        if column == "rmse":
            ax.axhline(rmse_threshold, color="k", ls="--", lw=1, label=f"well generalizing: RMSE <= {rmse_threshold}")
            ax.legend(fontsize=8)
    fig.suptitle("Same seeds and recipe, two input encodings")
    return fig
