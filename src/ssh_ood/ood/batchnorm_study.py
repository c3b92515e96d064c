"""BatchNorm statistics at paper scale: a population re-evaluated with precise BN, paired per network.

The paper evaluates its networks with BatchNorm's running averages (an exponential moving average over the
last ~10 training batches, with the data order fixed). :mod:`ssh_ood.nets.precise_batchnorm` replaces them by exact
averages over the training set without touching any weight. This study asks whether the population's
out-of-distribution picture is an artefact of those averages: for every network of a population it writes a
recalibrated copy (``<copies>/model_XXX``, not shipped), evaluates it on the population's generalization
grid, and tabulates per network the OOD accuracy, MAE and the fraction of the strong-disorder region
(W >= 2) called topological, as trained and with precise BN (``precise_bn.csv`` in the population folder,
columns :data:`COLUMNS`), plus a summary with the paired changes (Wilcoxon signed-rank test) and the number
of networks near OOD accuracy 0.5 before and after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from tqdm.auto import tqdm

from ..base.io_utils import atomic_write_bytes, load_documented_table, save_json
from ..base.paths import RUNS_DIR
from ..base.run_folders import hold_folder
from ..nets.data_loaders import load_training_data
from ..nets.precise_batchnorm import write_recalibrated_copy
from .generalization import GeneralizationGrid, thread_limits
from .model_evaluation import evaluate_model_dirs, load_metrics, load_result
from .population_datasets import population_datasets

STUDY_FILE = "precise_bn.csv"
SUMMARY_FILE = "precise_bn_summary.json"
STRONG_W = 2.0
NEAR_HALF = 0.55
COLUMNS = {
    "model_index": "index of the network in the population",
    **{f"{name}_{mode}": f"{meaning}, {'as trained (running averages)' if mode == 'running' else 'precise BN'}"
       for mode in ("running", "precise")
       for name, meaning in (("ood_accuracy", "OOD accuracy"), ("mae", "MAE of the phase diagram"),
                             ("clean_accuracy", "accuracy on the grid's clean row"),
                             ("strong_disorder_topological", f"fraction of the W >= {STRONG_W:g} region called topological"))},
}


def strong_disorder_topological(model_dir: str | Path, W_min: float = STRONG_W) -> float:
    """Mean predicted topological fraction over the grid rows with W >= ``W_min`` (from ``phase_diagram.npz``)."""
    result = load_result(model_dir)
    rows = result.grid.W_values >= W_min
    if not rows.any():
        raise ValueError(f"{model_dir}: the grid has no row with W >= {W_min}")
    return float(result.predicted[rows].mean())


def _row(model_dir: Path, summary: dict, mode: str) -> dict:
    return {f"ood_accuracy_{mode}": summary["ood"]["accuracy"], f"mae_{mode}": summary["mae"],
            f"clean_accuracy_{mode}": summary["clean"]["accuracy"],
            f"strong_disorder_topological_{mode}": strong_disorder_topological(model_dir)}


def precise_bn_study(population_dir: str | Path, copies_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Recalibrate, evaluate and compare every evaluated network of a population; returns ``precise_bn.csv``.

    ``copies_dir`` (default ``00_demonstrations_data/runs/precise_bn/<population folder name>``) holds the
    recalibrated model folders; finished copies and evaluations are reused, so an interrupted study resumes.
    """
    from .population_tables import load_population

    with hold_folder(population_dir):  # first: a busy, unwritable or shipped folder fails before any work
        population = load_population(population_dir)
        manifest = population.manifest
        copies_dir = Path(copies_dir) if copies_dir is not None else RUNS_DIR / "precise_bn" / Path(population_dir).resolve().name
        grid = GeneralizationGrid.from_dict(manifest["grid"])
        training = load_training_data(population_datasets(population_dir, manifest)[0], manifest["preset"]).training
        sources = [population.model_dir(i) for i in population.indices]
        with thread_limits(inference_threads=1):  # small batches: one thread beats two on a loaded machine
            copies = [write_recalibrated_copy(d, copies_dir / d.name, training)
                      for d in tqdm(sources, desc="precise BN", unit="model", disable=not progress)]
        recalibrated = evaluate_model_dirs(copies, grid, cut=population.cut, progress=progress)
        rows = []
        for index, source, copy, summary in zip(population.indices, sources, copies, recalibrated, strict=True):
            rows.append({"model_index": index, **_row(source, load_metrics(source), "running"),
                         **_row(copy, summary, "precise")})
        table = pd.DataFrame(rows, columns=list(COLUMNS))
        path = atomic_write_bytes(Path(population_dir) / STUDY_FILE, table.to_csv(index=False).encode())
        save_json(Path(population_dir) / SUMMARY_FILE, summarize_study(table))
    return path


def summarize_study(table: pd.DataFrame) -> dict:
    """Paired changes (precise - running) of OOD accuracy and MAE, and the networks near accuracy 0.5."""
    summary: dict = {"n_models": len(table), "near_half": f"OOD accuracy < {NEAR_HALF}"}
    for name in ("ood_accuracy", "mae", "clean_accuracy", "strong_disorder_topological"):
        running, precise = table[f"{name}_running"].to_numpy(), table[f"{name}_precise"].to_numpy()
        change = precise - running
        test = scipy_stats.wilcoxon(precise, running) if np.any(change != 0) else None
        summary[name] = {
            "running_median": float(np.median(running)), "precise_median": float(np.median(precise)),
            "change_median": float(np.median(change)), "change_q10": float(np.quantile(change, 0.1)),
            "change_q90": float(np.quantile(change, 0.9)), "n_up": int(np.sum(change > 0)), "n_down": int(np.sum(change < 0)),
            "wilcoxon_p": float(test.pvalue) if test is not None else 1.0,
            "spearman_running_vs_precise": float(scipy_stats.spearmanr(running, precise).statistic)
            if running.std() > 0 and precise.std() > 0 else float("nan"),
        }
    summary["near_half_running"] = int(np.sum(table["ood_accuracy_running"] < NEAR_HALF))
    summary["near_half_precise"] = int(np.sum(table["ood_accuracy_precise"] < NEAR_HALF))
    summary["near_half_in_both"] = int(np.sum((table["ood_accuracy_running"] < NEAR_HALF)
                                              & (table["ood_accuracy_precise"] < NEAR_HALF)))
    return summary


def load_study(population_dir: str | Path) -> pd.DataFrame:
    """``precise_bn.csv`` of a population (``FileNotFoundError`` with the command that makes it)."""
    return load_documented_table(Path(population_dir) / STUDY_FILE, COLUMNS,
                                 f"python -m ssh_ood precise-bn --population {population_dir}")
