"""Do clean-data diagnostics predict out-of-distribution generalization? Statistics, a frozen protocol, validation.

Given a population's ``diagnostics.csv`` (:mod:`ssh_ood.interpret.diagnostics`, clean data only) and its ``stats.csv``
(OOD accuracy and MAE on the generalization grid), for every diagnostic:

- Pearson and Spearman correlation with the OOD accuracy and with the MAE, each with a bootstrap 95 %
  confidence interval (networks resampled with replacement, percentile interval);
- the **selection lift**: the mean OOD accuracy of the k networks the diagnostic ranks best, minus the
  population mean (the expected value for a random k-subset), with a permutation p-value: the fraction of
  random k-subsets whose mean is at least as high ((1 + count) / (1 + n_permutations)).

On the population used to *find* the predictors the direction of each ranking is read off the same data, so
in-sample lifts and correlations are optimistic. The honest test is out of sample: before any OOD result of
a second, independently seeded population is looked at, :func:`make_protocol` freezes each diagnostic's
expected sign and one selection rule (diagnostic, direction, k) into ``diagnostics_protocol.json``, which is
committed; :func:`validate_protocol` then reports, on the new population, which diagnostics replicate (same
sign of the Spearman correlation with OOD accuracy and a 95 % interval that excludes 0) and the frozen
rule's out-of-sample lift. The protocol also stores the diagnostics' values on a fixed seeded reference network
and data set (:mod:`ssh_ood.interpret.definitions_check`), and validation refuses to run if they have moved beyond
the measured float tolerance since, that is, if the definitions have changed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from ..base.validation import require_int
from ..ood.paper_reference import paper_network_metrics
from ..physics.ceiling import band_rows
from .definitions_check import check_definitions as check_definitions_against
from .definitions_check import reference_network_values, values_fingerprint
from .diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS

OUTCOMES = ("ood_accuracy", "mae")
LIFT_KS = (5, 10, 20)
PROTOCOL_FILE = "diagnostics_protocol.json"
PREDICTORS_FILE = "predictors.csv"
VALIDATION_FILE = "protocol_validation.json"


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 1:
        raise ValueError(f"x and y must be non-empty 1-D arrays of equal length, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=-1) / norm, np.nan)


def correlation_with_ci(
    x: Sequence[float], y: Sequence[float], n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Pearson r and Spearman rho of (x, y) with percentile bootstrap intervals and two-sided p-values.

    Returns ``{"pearson", "pearson_low", "pearson_high", "pearson_p", "spearman", "spearman_low",
    "spearman_high", "spearman_p", "n"}``; NaN where x or y is constant (in a resample: that resample is
    left out of the interval) and for fewer than 3 pairs.
    """
    x, y = _pair(x, y)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if x.size < 3 or x.std() == 0 or y.std() == 0:
        nan = float("nan")
        return {f"{m}{s}": nan for m in ("pearson", "spearman") for s in ("", "_low", "_high", "_p")} | {"n": x.size}
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, x.size, size=(n_bootstrap, x.size))
    xs, ys = x[rows], y[rows]
    result: dict[str, float] = {"n": int(x.size)}
    for method, transform in (("pearson", lambda a: a), ("spearman", lambda a: scipy_stats.rankdata(a, axis=-1))):
        estimate = float(_rowwise_pearson(transform(x), transform(y)))
        boot = _rowwise_pearson(transform(xs), transform(ys))
        boot = boot[np.isfinite(boot)]
        tail = (1 - level) / 2
        test = scipy_stats.pearsonr(x, y) if method == "pearson" else scipy_stats.spearmanr(x, y)
        result |= {
            method: estimate,
            f"{method}_low": float(np.quantile(boot, tail)),
            f"{method}_high": float(np.quantile(boot, 1 - tail)),
            f"{method}_p": float(test.pvalue),
        }
    return result


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of the pairs (x, y) where both are finite.

    NaN, decided here rather than by a scipy/pandas ``ConstantInputWarning``, where fewer than 3 pairs remain
    or either side is constant (e.g. a clean test accuracy of 1.000 for every network of a small run).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of equal length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(_rowwise_pearson(scipy_stats.rankdata(x), scipy_stats.rankdata(y)))


def top_k(score: Sequence[float], k: int, higher_is_better: bool = True) -> np.ndarray:
    """Positions of the k best-ranked entries (ties broken by position, so the choice is deterministic)."""
    score = np.asarray(score, dtype=np.float64)
    k = require_int("k", k, minimum=1, maximum=score.size)
    order = np.argsort(-score if higher_is_better else score, kind="stable")
    return order[:k]


def selection_lift(
    score: Sequence[float], outcome: Sequence[float], k: int, higher_is_better: bool = True,
    n_permutations: int = 10_000, seed: int = 0,
) -> dict[str, float]:
    """Mean outcome of the top-k by ``score`` against random k-subsets.

    Returns ``{"k", "selected_mean", "population_mean", "lift", "p_value"}`` with lift = selected_mean -
    population_mean (the expectation for a random subset) and p_value = (1 + #{random subsets with mean >=
    selected_mean}) / (1 + n_permutations).
    """
    score, outcome = _pair(score, outcome)
    chosen = top_k(score, k, higher_is_better)
    selected = float(outcome[chosen].mean())
    rng = np.random.default_rng(seed)
    subsets = np.argsort(rng.random((n_permutations, outcome.size)), axis=1)[:, :k]
    random_means = outcome[subsets].mean(axis=1)
    count = int(np.sum(random_means >= selected - 1e-12))
    return {
        "k": int(k),
        "selected_mean": selected,
        "population_mean": float(outcome.mean()),
        "lift": selected - float(outcome.mean()),
        "p_value": (1 + count) / (1 + n_permutations),
    }


def merged_table(diagnostics: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Diagnostics joined with the outcomes of ``stats`` on ``model_index`` (models present in both)."""
    missing = [c for c in ("model_index", *OUTCOMES) if c not in stats.columns]
    if missing:
        raise ValueError(f"stats table lacks {missing}")
    table = diagnostics.merge(stats[["model_index", *OUTCOMES]], on="model_index", how="inner")
    if table.empty:
        raise ValueError("no model has both diagnostics and OOD results")
    return table


def diagnostic_names(table: pd.DataFrame) -> list[str]:
    """The diagnostic columns of a merged table that vary across the population."""
    names = [c for c in DIAGNOSTIC_COLUMNS if c != "model_index" and c in table.columns]
    return [c for c in names if table[c].std() > 0]


def predictor_table(
    table: pd.DataFrame, ks: Sequence[int] = LIFT_KS, n_bootstrap: int = 2000, n_permutations: int = 10_000,
    seed: int = 0, directions: dict[str, int] | None = None,
) -> pd.DataFrame:
    """One row per diagnostic: correlations with every outcome (with CIs) and selection lifts of OOD accuracy.

    ``directions``: diagnostic -> +1 (higher predicts better generalization) or -1; default: the sign of the
    in-sample Spearman correlation with OOD accuracy (optimistic; use a frozen protocol out of sample).
    Sorted by |Spearman with OOD accuracy|, largest first.
    """
    rows = []
    for name in diagnostic_names(table):
        row: dict[str, float | str] = {"diagnostic": name}
        for outcome in OUTCOMES:
            corr = correlation_with_ci(table[name], table[outcome], n_bootstrap, seed)
            row |= {f"{key}_{outcome}": value for key, value in corr.items() if key != "n"}
        observed = row["spearman_ood_accuracy"]
        sign = (directions or {}).get(name, int(np.sign(observed)) if np.isfinite(observed) and observed else 1)
        row["direction"] = int(sign)
        for k in ks:
            if k <= len(table):
                lift = selection_lift(table[name], table["ood_accuracy"], k, sign > 0, n_permutations, seed)
                row |= {f"top{k}_ood_accuracy": lift["selected_mean"], f"lift{k}": lift["lift"], f"lift{k}_p": lift["p_value"]}
        rows.append(row)
    result = pd.DataFrame(rows)
    order = result["spearman_ood_accuracy"].abs().sort_values(ascending=False).index
    return result.loc[order].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# the paper's metric
# ----------------------------------------------------------------------------------------------
def error_metric_fits(stats: pd.DataFrame, metrics: Sequence[str] = ("mae", "rmse")) -> pd.DataFrame:
    """Least-squares line metric = slope (1 - OOD accuracy) + intercept and Pearson r, per diagram metric.

    The paper's per-network table has its "RMSE" column on the line :func:`paper_rmse_fit`; the metric whose
    fit matches it is the one the paper's cut "RMSE <= 0.2" was applied to.
    """
    error = 1 - stats["ood_accuracy"].to_numpy(dtype=np.float64)
    rows = []
    for metric in metrics:
        values = stats[metric].to_numpy(dtype=np.float64)
        slope, intercept = np.polyfit(error, values, 1)
        rows.append({"metric": metric, "slope": float(slope), "intercept": float(intercept),
                     "pearson": float(np.corrcoef(error, values)[0, 1]),
                     "well_generalizing_at_0.2": int(np.sum(values <= 0.2))})
    return pd.DataFrame(rows)


def paper_rmse_fit() -> dict[str, float]:
    """The line of the paper's "RMSE" column against 1 - OOD accuracy, from its shipped per-network table.

    Returns
    -------
    ``{"slope", "intercept", "pearson"}``: the least-squares line "RMSE" = slope (1 - accuracy) + intercept
    over the paper's 100 networks (:func:`ssh_ood.ood.paper_reference.paper_network_metrics`) and its Pearson
    r, as :func:`error_metric_fits` computes them for our populations.
    """
    fit = error_metric_fits(paper_network_metrics(), ["rmse"]).iloc[0]
    return {key: float(fit[key]) for key in ("slope", "intercept", "pearson")}


# ----------------------------------------------------------------------------------------------
# the mechanism: what fails, where
# ----------------------------------------------------------------------------------------------
DISORDER_BANDS = ((0.0, 0.5), (0.5, 1.5), (1.5, 3.0), (3.0, 5.0))


def recall_by_band(model_dir: str | Path, bands: Sequence[tuple[float, float]] = DISORDER_BANDS) -> dict[str, float]:
    """Each class's recall, and the accuracy, averaged over the (W, realization) test sets of each disorder band [low, high).

    The last band includes its upper end; a band without grid rows is left out. Read from the model's ``phase_diagram.npz`` (OOD data: use it to
    explain a result, never as a predictor). Keys ``recall_<class>_W<low>-<high>`` for class trivial and
    topological, and ``accuracy_W<low>-<high>``.
    """
    from ..ood.model_evaluation import load_result

    result = load_result(model_dir)
    W = result.grid.W_values
    out = {}
    for band, rows in band_rows(W, bands):  # a coarse grid (smoke preset) can miss a band
        for name in ("trivial", "topological"):
            out[f"recall_{name}_W{band}"] = float(np.mean(result.set_metrics[f"recall_{name}"][rows]))
        out[f"accuracy_W{band}"] = float(np.mean(result.set_metrics["accuracy"][rows]))
    return out


def population_recall_by_band(population_dir: str | Path, indices: Sequence[int],
                              bands: Sequence[tuple[float, float]] = DISORDER_BANDS) -> pd.DataFrame:
    """:func:`recall_by_band` of every listed model of a population, one row each (with ``model_index``)."""
    from ..nets.model_folders import model_dir_name

    return pd.DataFrame([{"model_index": int(i), **recall_by_band(Path(population_dir) / model_dir_name(int(i)), bands)}
                         for i in indices])


# ----------------------------------------------------------------------------------------------
# the frozen protocol and its validation
# ----------------------------------------------------------------------------------------------
def make_protocol(predictors: pd.DataFrame, discovery: str, validation: str, k: int = 10) -> dict:
    """Freeze the expected sign of every diagnostic and one selection rule from a discovery population.

    The rule: the diagnostic with the largest |Spearman| with OOD accuracy on the discovery population,
    ranked in the direction of that correlation, top ``k``. Replication on the validation population means
    the same sign and a bootstrap 95 % interval of Spearman excluding 0.
    """
    predictors = predictors[np.isfinite(predictors["spearman_ood_accuracy"])]
    if predictors.empty:
        raise ValueError("no diagnostic has a defined correlation with OOD accuracy (too few networks?)")
    best = predictors.iloc[0]
    reference = reference_network_values()
    return {
        "frozen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "discovery_population": discovery,
        "validation_population": validation,
        "outcome": "ood_accuracy",
        "statistic": "Spearman rho with OOD accuracy, percentile bootstrap 95 % CI over networks (2000 resamples)",
        "replication": "same sign as expected and the 95 % CI excludes 0",
        "expected_signs": {row.diagnostic: int(np.sign(row.spearman_ood_accuracy)) for row in predictors.itertuples()},
        "discovery_spearman": {row.diagnostic: round(float(row.spearman_ood_accuracy), 4) for row in predictors.itertuples()},
        "selection_rule": {
            "diagnostic": str(best["diagnostic"]),
            "direction": "high" if best["spearman_ood_accuracy"] > 0 else "low",
            "k": int(k),
            "statistic": "mean OOD accuracy of the k chosen networks minus the population mean; permutation p-value "
            "against random k-subsets (10,000)",
        },
        "definitions_fingerprint": values_fingerprint(reference),
        "definitions_reference": reference,
    }


def validate_protocol(protocol: dict, table: pd.DataFrame, n_bootstrap: int = 2000, seed: int = 0,
                      check_definitions: bool = True) -> dict:
    """Out-of-sample test of a frozen protocol on a merged table of a validation population.

    Returns ``{"n_models", "replication": DataFrame rows (diagnostic, expected, spearman, low, high,
    replicated), "n_replicated", "n_tested", "rule": lift of the frozen selection rule}``; the rule's lift
    is None (with a ``note``) when the population has no more than k networks.
    """
    if check_definitions:  # ValueError naming the diagnostics that moved: the validation would test other definitions
        check_definitions_against(protocol, reference_network_values())
    rows = []
    for name, expected in protocol["expected_signs"].items():
        if name not in table.columns or table[name].std() == 0:
            continue
        corr = correlation_with_ci(table[name], table["ood_accuracy"], n_bootstrap, seed)
        low, high = corr["spearman_low"], corr["spearman_high"]
        replicated = bool(np.sign(corr["spearman"]) == expected and (low > 0 or high < 0))
        rows.append({"diagnostic": name, "expected": expected, "discovery_spearman": protocol["discovery_spearman"][name],
                     "spearman": corr["spearman"], "low": low, "high": high, "replicated": replicated})
    rule = protocol["selection_rule"]
    if len(table) > rule["k"]:
        lift = selection_lift(table[rule["diagnostic"]], table["ood_accuracy"], rule["k"], rule["direction"] == "high",
                              seed=seed)
    else:  # choosing k of k or fewer networks selects nothing
        lift = {"selected_mean": None, "population_mean": float(table["ood_accuracy"].mean()), "lift": None,
                "p_value": None, "note": f"not applicable: {len(table)} networks, k = {rule['k']}"}
    replication = pd.DataFrame(rows)
    return {"n_models": len(table), "replication": replication, "n_replicated": int(replication["replicated"].sum()),
            "n_tested": len(replication), "rule": {**rule, **lift}}


def describe_rule(rule: dict) -> str:
    """One sentence on the frozen rule's out-of-sample result (``validate_protocol(...)["rule"]``)."""
    head = f"frozen rule, top {rule['k']} by {rule['direction']} {rule['diagnostic']}"
    if rule["lift"] is None:
        return f"{head}: {rule['note']}"
    return (f"{head}: mean OOD accuracy {rule['selected_mean']:.3f} vs {rule['population_mean']:.3f} "
            f"(lift {rule['lift']:+.3f}, permutation p = {rule['p_value']:.4f})")
