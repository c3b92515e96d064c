"""The clean-data probe against the field's label-free estimators of out-of-distribution accuracy.

For one population, every method gives each network a number; the table (``baselines.csv``) says how well
that number ranks the networks by their true OOD accuracy (the grid evaluation of ``stats.csv``, used only to
score) and, where the number is an estimate of the accuracy itself, how far it is from it:

Unlabeled OOD chains (:mod:`ssh_ood.ood.unlabeled_softmax`, :mod:`ssh_ood.ood.ood_estimators`)
    The softmax of every network on chains drawn over the grid's (W, v) range from a seed of their own.
    ``AC`` average max-softmax; ``DoC`` clean accuracy - (AC_clean - AC_target); ``ATC-MC`` and ``ATC-NE``
    average thresholded confidence with max-softmax and negative-entropy scores, threshold fit on the clean
    set. The labelled source set of DoC and ATC is the clean *test* set (W = 0): it spans the target's v range
    [0, 2] including the transition window, and no network saw it while training. The clean validation set
    would not do: it leaves out the window, as training does, so every network is right on all of it (source
    accuracy 1, an ATC threshold of -inf and an estimate of 1 for every network); ``agreement`` mean agreement with the other networks of the population;
    ``nuclear norm`` Deng et al.'s normalized ||P||_* (a score, not an accuracy); ``COT`` 1 - the
    confidence-optimal-transport error of Lu et al., the source class proportion read off the clean test set's
    labels; ``ProjNorm`` (only when asked for, it fine-tunes two copies of every network,
    :mod:`ssh_ood.ood.projection_norm`) the parameter distance between a copy fine-tuned on the network's
    pseudo-labels of the chains and one fine-tuned on the labelled clean test set, both from the network's own
    initialization (a score, direction -1: a larger norm predicts a larger OOD error).
Clean data (``stats.csv``, ``diagnostics.csv``)
    ``clean test accuracy``; the perturbative accuracies ``accuracy_W0.01``, ``accuracy_W0.05``; the probe
    ``probe_mid_bulk_shift``, whose estimate is a decreasing isotonic map from probe to OOD accuracy fit on one
    population and frozen as JSON (:func:`fit_probe_map`), so that its error on another population is out of
    sample.
Clean-data measures (:func:`ssh_ood.interpret.clean_measures.clean_data_measures` on the clean test set)
    norm-, margin- and flatness-based measures of Jiang et al. (2020), effective invariance (Deng et al. 2022),
    the local-ensemble score (Madras et al. 2019): Spearman as measured, their lift ranked in the sign of the
    in-sample Spearman (``direction_source`` says so); a measure with a non-finite value for some network gets
    no row.

Columns per method: Spearman rho with OOD accuracy with a bootstrap 95 % interval
(:func:`ssh_ood.interpret.generalization_prediction.correlation_with_ci`); ``mae``: mean |estimate - OOD
accuracy| for the methods that estimate an accuracy (``mae_scope`` says in-sample or out-of-sample for the
probe's fitted map); the top-10 selection lift against random 10-subsets with its permutation p-value
(:func:`ssh_ood.interpret.generalization_prediction.selection_lift`), ranking in the method's ``direction``: +1
(higher is better) for every accuracy estimate and accuracy, -1 for ProjNorm (its paper's sign) and the probe
(its sign in the frozen protocol).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from ..base.file_records import verified_bytes
from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..base.presets import get_preset
from ..base.run_folders import hold_folder
from ..nets.model_folders import model_dir_name
from ..ood.ood_estimators import (
    atc_estimate,
    atc_threshold,
    average_confidence,
    cot_error,
    difference_of_confidences,
    max_softmax,
    negative_entropy,
    nuclear_norm_score,
    population_agreement,
)
from ..ood.projection_norm import ProjNormSettings, population_projection_norms
from ..ood.unlabeled_softmax import UNLABELED_SEED, population_softmax, unlabeled_chains
from .clean_measures import clean_data_measures
from .diagnostics import DIAGNOSTICS_FILE, clean_split, load_diagnostics
from .generalization_prediction import correlation_with_ci, selection_lift, spearman_rho

BASELINES_FILE = "baselines.csv"
ESTIMATES_FILE = "baseline_estimates.csv"
PROBE_MAP_FILE = "probe_ood_map.json"
PROBE = "probe_mid_bulk_shift"
LIFT_K = 10

#: estimate column of baseline_estimates.csv -> (method name in the table, is an accuracy estimate, direction:
#: +1 when a higher value predicts a better OOD accuracy, as its paper defines it)
UNLABELED_METHODS = {
    "ac": ("AC (Hendrycks & Gimpel 2017)", True, 1),
    "doc": ("DoC (Guillory et al. 2021)", True, 1),
    "atc_mc": ("ATC-MC (Garg et al. 2022)", True, 1),
    "atc_ne": ("ATC-NE (Garg et al. 2022)", True, 1),
    "agreement": ("agreement (Jiang et al. 2022, Baek et al. 2022)", True, 1),
    "nuclear_norm": ("nuclear norm (Deng et al. 2023)", False, 1),
    "cot": ("COT (Lu et al. 2023)", True, 1),
    "projnorm": ("ProjNorm (Yu et al. 2022)", False, -1),
}
#: clean-data column -> (method name, is an accuracy, direction: +1 higher predicts better OOD accuracy)
CLEAN_METHODS = {
    "test_accuracy": ("clean test accuracy", True, 1),
    "accuracy_W0.01": ("perturbative accuracy W = 0.01", True, 1),
    "accuracy_W0.05": ("perturbative accuracy W = 0.05", True, 1),
    PROBE: ("probe_mid_bulk_shift (frozen protocol)", False, -1),
}

#: clean_data_measures key -> method name in the table
CLEAN_MEASURES = {
    "frobenius_log_product": "log product of Frobenius norms (Jiang et al. 2020)",
    "path_norm": "path norm (Jiang et al. 2020)",
    "margin_q10": "10 % margin (Jiang et al. 2020)",
    "normalized_margin": "normalized margin (Jiang et al. 2020)",
    "mag_flatness_sigma": "magnitude-aware flatness sigma (Jiang et al. 2020)",
    "mag_sharpness": "magnitude-aware sharpness (Jiang et al. 2020)",
    "effective_invariance": "effective invariance (Deng et al. 2022)",
    "local_ensemble_score": "local-ensemble score (Madras et al. 2019)",
}


# ----------------------------------------------------------------------------------------------
# estimates per network
# ----------------------------------------------------------------------------------------------
def network_estimates(target: np.ndarray, source: np.ndarray, source_labels: np.ndarray) -> pd.DataFrame:
    """Every label-free estimate of every network.

    Parameters
    ----------
    target : (M, N, C) softmax of M networks on the unlabeled target chains.
    source : (M, N_s, C) softmax on the labelled clean (source) set.
    source_labels : (N_s,) its labels (the only labels used: DoC's and ATC's source accuracy and threshold, and
        COT's source class proportion q = mean(source_labels == 1)).

    Returns
    -------
    DataFrame (M rows): ``source_accuracy`` and the columns of :data:`UNLABELED_METHODS` but ``projnorm``, which
    fine-tunes networks (:func:`ssh_ood.ood.projection_norm.population_projection_norms`); ``cot`` is
    1 - :func:`ssh_ood.ood.ood_estimators.cot_error` (P_target, q); ``agreement`` NaN for a single network: it has
    no population to agree with.
    """
    source_fraction_1 = float(np.mean(np.asarray(source_labels) == 1))
    rows = []
    for P_target, P_source in zip(target, source, strict=True):
        correct = P_source.argmax(axis=1) == source_labels
        accuracy = float(correct.mean())
        rows.append({
            "source_accuracy": accuracy,
            "ac": average_confidence(P_target),
            "doc": difference_of_confidences(accuracy, P_source, P_target),
            "atc_mc": atc_estimate(max_softmax(P_target), atc_threshold(max_softmax(P_source), correct)),
            "atc_ne": atc_estimate(negative_entropy(P_target), atc_threshold(negative_entropy(P_source), correct)),
            "nuclear_norm": nuclear_norm_score(P_target),
            "cot": 1.0 - cot_error(P_target, source_fraction_1),
        })
    table = pd.DataFrame(rows)
    table["agreement"] = population_agreement(target.argmax(axis=2)) if len(target) >= 2 else np.nan  # needs others
    return table


# ----------------------------------------------------------------------------------------------
# the probe's frozen map to an accuracy
# ----------------------------------------------------------------------------------------------
def fit_probe_map(probe: np.ndarray, ood_accuracy: np.ndarray, population: str) -> dict:
    """Decreasing isotonic regression of OOD accuracy on the probe, as JSON-ready breakpoints.

    Returns ``{"x": [...], "y": [...], "population", "n", "diagnostic", "method"}``; :func:`apply_probe_map`
    interpolates linearly between the breakpoints and clips beyond them, as scikit-learn's
    ``IsotonicRegression(increasing=False, out_of_bounds="clip")`` predicts.
    """
    model = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(probe, ood_accuracy)
    return {
        "diagnostic": PROBE,
        "method": "IsotonicRegression(increasing=False, out_of_bounds='clip'): linear between breakpoints, clipped",
        "population": population,
        "n": int(len(probe)),
        "x": [float(v) for v in model.X_thresholds_],
        "y": [float(v) for v in model.y_thresholds_],
    }


def apply_probe_map(probe_map: dict, probe: np.ndarray) -> np.ndarray:
    """The frozen map's OOD accuracy estimate for each probe value (linear between breakpoints, clipped)."""
    return np.interp(np.asarray(probe, dtype=np.float64), probe_map["x"], probe_map["y"])


# ----------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------
def method_row(name: str, family: str, score: np.ndarray, ood_accuracy: np.ndarray, direction: int,
               estimate: np.ndarray | None = None, mae_scope: str = "", n_bootstrap: int = 2000,
               n_permutations: int = 10_000, seed: int = 0) -> dict:
    """One row of the table: Spearman with CI, MAE of ``estimate`` if given, top-10 lift ranking by ``direction``."""
    corr = correlation_with_ci(score, ood_accuracy, n_bootstrap, seed)
    row = {"method": name, "family": family, "direction": int(direction), "n": corr["n"],
           **{key: corr[key] for key in ("spearman", "spearman_low", "spearman_high", "spearman_p")},
           "mae": float(np.mean(np.abs(estimate - ood_accuracy))) if estimate is not None else np.nan,
           "mae_scope": mae_scope if estimate is not None else ""}
    if len(score) > LIFT_K and np.ptp(score) > 0:
        lift = selection_lift(score, ood_accuracy, LIFT_K, direction > 0, n_permutations, seed)
        row |= {f"top{LIFT_K}_ood_accuracy": lift["selected_mean"], f"lift{LIFT_K}": lift["lift"],
                f"lift{LIFT_K}_p": lift["p_value"]}
    else:  # choosing k of k or fewer networks, or by a constant score, selects nothing
        row |= {f"top{LIFT_K}_ood_accuracy": np.nan, f"lift{LIFT_K}": np.nan, f"lift{LIFT_K}_p": np.nan}
    return row


def baseline_table(merged: pd.DataFrame, probe_map: dict | None = None, probe_scope: str = "",
                   extra: dict[str, str] | None = None, n_bootstrap: int = 2000, n_permutations: int = 10_000,
                   seed: int = 0) -> pd.DataFrame:
    """The table from a per-network frame with ``ood_accuracy``, the estimate columns and the clean columns.

    ``probe_map``: the probe's frozen map (its MAE is then reported with ``probe_scope``); ``extra``: further
    clean-data columns (name -> method name) reported by Spearman only, their lift ranked by the sign of the
    in-sample Spearman (``direction_source`` says so).
    """
    truth = merged["ood_accuracy"].to_numpy(dtype=np.float64)
    common = {"n_bootstrap": n_bootstrap, "n_permutations": n_permutations, "seed": seed}
    rows = []
    for column, (name, is_accuracy, direction) in UNLABELED_METHODS.items():
        if column in merged and merged[column].notna().all():
            score = merged[column].to_numpy(dtype=np.float64)
            rows.append(method_row(name, "unlabeled OOD chains", score, truth, direction, score if is_accuracy else None,
                                   "label-free" if is_accuracy else "", **common) | {"direction_source": "definition"})
    for column, (name, is_accuracy, direction) in CLEAN_METHODS.items():
        if column not in merged:
            continue
        score = merged[column].to_numpy(dtype=np.float64)
        estimate, scope = (score, "clean accuracy taken as the estimate") if is_accuracy else (None, "")
        if column == PROBE and probe_map is not None:
            estimate, scope = apply_probe_map(probe_map, score), probe_scope
        rows.append(method_row(name, "clean data", score, truth, direction, estimate, scope, **common)
                    | {"direction_source": "definition" if column != PROBE else "frozen protocol"})
    for column, name in (extra or {}).items():
        score = merged[column].to_numpy(dtype=np.float64)
        if not np.isfinite(score).all():
            continue
        rho = spearman_rho(score, truth)
        direction = -1 if np.isfinite(rho) and rho < 0 else 1
        rows.append(method_row(name, "clean-data measure", score, truth, direction, **common)
                    | {"direction_source": "in-sample sign"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# a population
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineResult:
    """The table, the per-network estimates and the files written."""

    table: pd.DataFrame
    estimates: pd.DataFrame
    paths: tuple[Path, ...]


def population_estimates(population_dir: Path, manifest: dict, indices: list[int], unlabeled_seed: int = UNLABELED_SEED,
                         threads: int | None = None, device: str | None = None,
                         projnorm: ProjNormSettings | None = None) -> pd.DataFrame:
    """:func:`network_estimates` of the listed networks of a population (``model_index`` first).

    ``projnorm``: also ProjNorm (:func:`ssh_ood.ood.projection_norm.population_projection_norms`, on the CPU) with
    this budget, the reference copy fine-tuned on the clean test set (the source set of DoC and ATC) and the
    target copy on the unlabeled chains with the network's pseudo-labels; its columns are added beside the others.
    The paper fits its reference on the training data; the clean test set is used here because, like the chains,
    it spans v in [0, 2] with the transition window that training leaves out, so that the distance reflects the
    labels and the disorder rather than the window.
    """
    from ..ood.population_datasets import population_datasets
    from ..physics.datasets import ensure_datasets, load_split

    preset = get_preset(manifest["preset"])
    data_dir, writable = population_datasets(population_dir, manifest)  # a path from a file is data
    if writable:
        ensure_datasets(preset, int(manifest["seed"]), data_dir, progress=False)
    source = load_split(data_dir, "test", 0.0)
    chains = unlabeled_chains(preset, unlabeled_seed)
    softmax = population_softmax([population_dir / model_dir_name(i) for i in indices],
                                 {"target": chains["X"], "source": source["X"]}, threads, device)
    estimates = network_estimates(softmax["target"], softmax["source"], source["labels"])
    if projnorm is not None:
        norms = population_projection_norms([population_dir / model_dir_name(i) for i in indices], source["X"],
                                            source["labels"], chains["X"], softmax["target"], projnorm)
        estimates = pd.concat([estimates, norms], axis=1)
    estimates.insert(0, "model_index", indices)
    estimates["unlabeled_seed"] = unlabeled_seed
    estimates["n_unlabeled"] = len(chains["X"])
    return estimates


def population_clean_measures(population_dir: Path, manifest: dict, indices: list[int], seed: int = 0) -> pd.DataFrame:
    """:func:`ssh_ood.interpret.clean_measures.clean_data_measures` of the listed networks on the clean test set
    (read through :func:`ssh_ood.interpret.diagnostics.clean_split`), one row each with ``model_index``."""
    from ..nets.model_folders import load_model
    from ..ood.population_datasets import population_datasets

    clean = clean_split(population_datasets(population_dir, manifest)[0], 0.0)
    X, y = clean["X"][:, None], clean["labels"]
    return pd.DataFrame([{"model_index": i, **clean_data_measures(load_model(population_dir / model_dir_name(i)), X, y,
                                                                   seed=seed)} for i in indices])


def run_baselines(population_dir: str | Path, unlabeled_seed: int = UNLABELED_SEED, threads: int | None = None,
                  device: str | None = None, probe_map_path: str | Path | None = None, seed: int = 0,
                  n_bootstrap: int = 2000, n_permutations: int = 10_000,
                  projnorm: ProjNormSettings | None = None) -> BaselineResult:
    """Compute the table of one population and write ``baselines.csv`` and ``baseline_estimates.csv`` there.

    ``probe_map_path``: a frozen probe map (:func:`fit_probe_map`); if it names no file, the map is fit on this
    population and written there. Without it the map is fit in sample and written as ``probe_ood_map.json``
    in the population folder. ``seed``: of the bootstrap, the permutations and the clean measures' random draws.
    ``projnorm``: also ProjNorm with this fine-tuning budget (:func:`population_estimates`); without it the table
    has no ProjNorm row.
    The folder is held (one writer) while its files are computed and written.
    """
    from ..ood.population_tables import load_population

    population_dir = Path(population_dir)
    with hold_folder(population_dir):
        return _run_baselines(population_dir, load_population(population_dir), unlabeled_seed, threads, device,
                              probe_map_path, seed, n_bootstrap, n_permutations, projnorm)


def _run_baselines(population_dir: Path, population, unlabeled_seed: int, threads: int | None, device: str | None,
                   probe_map_path: str | Path | None, seed: int, n_bootstrap: int, n_permutations: int,
                   projnorm: ProjNormSettings | None) -> BaselineResult:
    stats = population.stats[["model_index", "test_accuracy", "ood_accuracy"]]
    indices = [int(i) for i in stats["model_index"]]
    estimates = population_estimates(population_dir, population.manifest, indices, unlabeled_seed, threads, device,
                                     projnorm)
    estimates = estimates.merge(population_clean_measures(population_dir, population.manifest, indices, seed),
                                on="model_index")
    merged = stats.merge(estimates, on="model_index")
    probe_map, scope = None, ""
    if (population_dir / DIAGNOSTICS_FILE).is_file():
        clean = [c for c in CLEAN_METHODS if c != "test_accuracy"]
        merged = merged.merge(load_diagnostics(population_dir)[["model_index", *clean]], on="model_index")
        probe_map, scope = _probe_map(population_dir, merged, probe_map_path)
        estimates = estimates.merge(merged[["model_index"]], on="model_index")
        estimates["probe_estimate"] = apply_probe_map(probe_map, merged[PROBE].to_numpy())
    estimates["ood_accuracy"] = merged["ood_accuracy"].to_numpy()  # the truth, for scoring and figures only
    table = baseline_table(merged, probe_map, scope, CLEAN_MEASURES, n_bootstrap, n_permutations, seed)
    paths = tuple(_write_csv(population_dir / name, frame) for name, frame in
                  ((BASELINES_FILE, table), (ESTIMATES_FILE, estimates)))
    return BaselineResult(table, estimates, paths)


def _probe_map(population_dir: Path, merged: pd.DataFrame, path: str | Path | None) -> tuple[dict, str]:
    here = str(population_dir)
    if path is not None and Path(path).is_file():
        probe_map = load_json(path)
        same = Path(probe_map["population"]).resolve() == population_dir.resolve()
        return probe_map, ("in-sample: map fit on this population" if same
                           else f"out-of-sample: map frozen on {probe_map['population']}")
    probe_map = fit_probe_map(merged[PROBE].to_numpy(), merged["ood_accuracy"].to_numpy(), here)
    save_json(Path(path) if path is not None else population_dir / PROBE_MAP_FILE, probe_map)
    return probe_map, "in-sample: map fit on this population"


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    text = io.StringIO()
    frame.to_csv(text, index=False, lineterminator="\n")
    return atomic_write_bytes(path, text.getvalue().encode())


def load_baselines(population_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``baselines.csv`` and ``baseline_estimates.csv`` of a population, checked against the folder's record."""
    population_dir = Path(population_dir)
    return tuple(pd.read_csv(io.BytesIO(verified_bytes(population_dir / name))) for name in (BASELINES_FILE, ESTIMATES_FILE))


def format_table(table: pd.DataFrame) -> str:
    """The table's main columns as fixed-width text."""
    columns = ["method", "spearman", "spearman_low", "spearman_high", "mae", f"lift{LIFT_K}", f"lift{LIFT_K}_p", "mae_scope"]
    return table[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")

