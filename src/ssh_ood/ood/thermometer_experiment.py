"""The experiment the paper did not run: does thermometer encoding change out-of-distribution generalization?

Two ensembles with the same seeds, recipe and data: ``CNN_SSH`` on the real-valued observables and
``CNN_SSH_ThermEncod(L)`` on their thermometer encoding. Both are evaluated on the same generalization
grid (:mod:`ssh_ood.ood.generalization`); the table holds one row per model and encoding.

Training both ensembles with the paper's recipe takes hours on a CPU, so the comparison made with it ships
(:mod:`ssh_ood.ood.shipped_thermometer_comparison` reads it back); ``python -m ssh_ood thermometer-compare``
(:mod:`ssh_ood.commands.thermometer_cli`) runs one and writes its table, summary and figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..base.paths import RUNS_DIR
from ..base.presets import Preset, get_preset
from ..base.validation import require_int
from ..nets.data_loaders import load_training_data
from ..nets.model_folders import is_complete, model_dir_name
from ..nets.precise_batchnorm import write_recalibrated_copy
from ..nets.training_recipe import SEED_STRIDE
from ..nets.training_run import train_models
from ..physics.thermometer_encoding import MAX_SITE_DENSITY, MIN_INFORMATIVE_LEVELS
from .generalization import GeneralizationGrid
from .model_evaluation import evaluate_model_dirs

COMPARED_COLUMNS = ("clean_accuracy", "ood_accuracy", "ood_macro_f1", "rmse", "ssim")
TABLE_COLUMNS = ("encoding", "model", *COMPARED_COLUMNS)
BATCHNORM_MODES = ("running", "precise")


def compare_encodings(
    preset: Preset | str,
    seed: int,
    n_models: int,
    levels: int,
    data_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    real_valued_dir: str | Path | None = None,
    batchnorm: str = "running",
) -> pd.DataFrame:
    """Train (or resume) both ensembles under ``out_dir`` and evaluate them on the preset's grid.

    Parameters
    ----------
    preset : recipe, data sizes and grid. seed : run seed (model seeds, data order, grid disorder).
    n_models : models per encoding (model i has the same seed in both).
    levels : thermometer channels L.
    data_dir : the preset's datasets folder. out_dir : holds ``real_valued/`` and ``thermometer_L<L>/``.
    real_valued_dir : take the real-valued models from this finished run instead (e.g. a population
        trained with the same preset and seed: its model ``i`` is bitwise the one this function would
        train on CPU). Models ``0 .. n_models-1`` must be complete and evaluated on the preset's grid there;
        their configuration is checked. The folder is only read (a shipped population is fine).
    batchnorm : ``"running"`` evaluates the networks as trained (BatchNorm's training-time moving
        averages); ``"precise"`` evaluates copies under ``out_dir/precise_bn/`` whose BatchNorm statistics
        are exact averages over the training set (:mod:`ssh_ood.nets.precise_batchnorm`), for both encodings.

    Returns
    -------
    DataFrame with columns ``encoding``, ``model`` and :data:`COMPARED_COLUMNS`.
    """
    preset = get_preset(preset)
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
    n_models = require_int("n_models", n_models, minimum=1, maximum=SEED_STRIDE)
    levels = require_int(
        "levels", levels, minimum=MIN_INFORMATIVE_LEVELS,
        reason=f"no site density exceeds {MAX_SITE_DENSITY} (chiral symmetry), so with L = 2 only the channel x > 0 "
        "can light up and the encoded network has nothing to learn from")
    out_dir = Path(out_dir)
    real_dir = out_dir / "real_valued"
    if real_valued_dir is not None:
        real_dir = Path(real_valued_dir)
        missing = [i for i in range(n_models) if not is_complete(real_dir / model_dir_name(i))]
        if missing:
            raise ValueError(f"real_valued_dir {real_dir} lacks the finished models {missing}: train them there "
                             "(python -m ssh_ood population --models ...) or let the comparison train its own")
    borrowed = {real_dir} if real_valued_dir is not None else set()  # only read
    runs = {"real-valued": (real_dir, None), f"thermometer L={levels}": (out_dir / f"thermometer_L{levels}", levels)}
    grid = GeneralizationGrid.from_preset(preset, seed)
    rows = []
    training = load_training_data(data_dir, preset).training if batchnorm == "precise" else None
    for encoding, (run_dir, thermometer_levels) in runs.items():
        train_models(preset, data_dir, run_dir, range(n_models), base_seed=seed,
                     thermometer_levels=thermometer_levels, progress=progress, read_only=run_dir in borrowed)
        model_dirs = [run_dir / model_dir_name(i) for i in range(n_models)]
        read_only = run_dir in borrowed
        if batchnorm == "precise":  # the copies are this comparison's own
            copies = out_dir / "precise_bn" / ("real_valued" if thermometer_levels is None else run_dir.name)
            model_dirs = [write_recalibrated_copy(d, copies / d.name, training) for d in model_dirs]
            read_only = False
        summaries = evaluate_model_dirs(model_dirs, grid, progress=progress, read_only=read_only)
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


def comparison_command(preset: str, seed: int, n_models: int, levels: int, batchnorm: str = "running",
                       threshold: float = 0.2) -> str:
    """The ``thermometer-compare`` command line of a comparison written to its default folder
    (:func:`default_comparison_dir`)."""
    return (f"python -m ssh_ood thermometer-compare --preset {preset} --seed {seed} --models {n_models} "
            f"--levels {levels} --batchnorm {batchnorm} --threshold {threshold}")


def default_comparison_dir(preset: str, seed: int) -> Path:
    """``00_demonstrations_data/runs/thermometer_<preset>_seed<seed>``: the default ``--out``."""
    return RUNS_DIR / f"thermometer_{preset}_seed{seed}"


def summarize_comparison(table: pd.DataFrame, rmse_threshold: float = 0.2) -> dict:
    """Per-encoding spread of each compared metric and a paired test between the two encodings.

    Model ``i`` has the same seed (initial weights, batch order, dropout stream) in both ensembles, so
    the comparison is paired: the Wilcoxon signed-rank test on the per-model differences
    (second encoding minus first) asks whether the encoding shifts a metric, with the seed-to-seed
    spread taken out.

    Parameters
    ----------
    table : output of :func:`compare_encodings` (columns ``encoding``, ``model`` and
        :data:`COMPARED_COLUMNS`), exactly two encodings.
    rmse_threshold : well generalizing iff RMSE <= this.

    Returns
    -------
    ``{"encodings": {name: {"n_models", "well_generalizing_fraction", <metric>: {"min", "median",
    "max", "mean"}}}, "paired": {<metric>: {"n", "median_difference", "wilcoxon_p"}}}``. The p value
    is ``None`` when every difference is zero (the test is undefined).
    """
    missing = {"encoding", "model", *COMPARED_COLUMNS} - set(table.columns)
    if missing:
        raise ValueError(f"comparison table lacks columns {sorted(missing)}")
    encodings = list(dict.fromkeys(table["encoding"]))
    if len(encodings) != 2:
        raise ValueError(f"expected exactly two encodings, got {encodings}")
    summary: dict = {"rmse_threshold": rmse_threshold, "encodings": {}, "paired": {}}
    for encoding in encodings:
        rows = table[table["encoding"] == encoding]
        entry: dict = {"n_models": int(len(rows)),
                       "well_generalizing_fraction": float(np.mean(rows["rmse"] <= rmse_threshold))}
        for column in COMPARED_COLUMNS:
            values = rows[column].to_numpy(dtype=float)
            entry[column] = {"min": float(values.min()), "median": float(np.median(values)),
                             "max": float(values.max()), "mean": float(values.mean())}
        summary["encodings"][encoding] = entry
    first, second = (table[table["encoding"] == e].set_index("model") for e in encodings)
    common = first.index.intersection(second.index)
    for column in COMPARED_COLUMNS:
        difference = second.loc[common, column].to_numpy(dtype=float) - first.loc[common, column].to_numpy(dtype=float)
        p_value = None
        if difference.size and np.any(difference != 0):
            p_value = float(stats.wilcoxon(difference).pvalue)
        summary["paired"][column] = {"n": int(difference.size),
                                     "median_difference": float(np.median(difference)) if difference.size else None,
                                     "wilcoxon_p": p_value}
    return summary
