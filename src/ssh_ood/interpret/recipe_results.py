"""Results of the training recipes (the recipe study): the clean-data development table and the validation populations.

Development (before the protocol is frozen) reads only ``diagnostics.csv`` of small quick-preset runs, one
per recipe: clean test accuracy and the clean-data probes (W <= 0.05). :func:`develop_recipes` trains and
diagnoses them; :func:`development_table` gathers them. The validation populations (paper preset, master seed
2, one folder per recipe under a root, as the frozen protocol names them) are read by
:func:`validation_results` only once they exist: stats, diagnostics, the median network's diagram, recall by
band, the clean-data committee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..nets.model_folders import model_dir_name
from ..ood.population_datasets import population_datasets
from ..ood.population_tables import STATS_FILE, load_population
from .diagnostics import DIAGNOSTICS_FILE, diagnose_population, load_diagnostics
from .generalization_prediction import DISORDER_BANDS, population_recall_by_band
from .recipe_protocol import committee_members, population_outcomes

#: diagnostics reported per recipe in the development table (clean data only)
DEVELOPMENT_COLUMNS = ("test_accuracy", "accuracy_W0", "accuracy_W0.05", "probe_mid_bulk_shift", "probe_mid_bulk_flip",
                       "probe_end_bulk_flip", "probe_end_zero_shift", "probe_remove_zero_modes_shift",
                       "cam_zero_mode_correlation", "epochs_run")
COMMITTEE_FILE = "committee.json"


def development_table(root: str | Path, recipes: Sequence[str], run: str = "") -> pd.DataFrame:
    """One row per network of the development runs ``root/<recipe>`` (their ``diagnostics.csv``), with
    ``run`` (a label of the runs, e.g. their epoch budget) and ``recipe``."""
    frames = []
    for recipe in recipes:
        table = load_diagnostics(Path(root) / recipe)
        frames.append(table.assign(run=run, recipe=recipe)[["run", "recipe", "model_index", *DEVELOPMENT_COLUMNS]])
    return pd.concat(frames, ignore_index=True)


def development_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median (and for the probe the 10-90 % range) of each development column per run and recipe."""
    grouped = table.groupby(["run", "recipe"], sort=False)
    summary = grouped[list(DEVELOPMENT_COLUMNS)].median().add_prefix("median_")
    summary["n_models"] = grouped.size()
    summary["probe_mid_bulk_shift_q10"] = grouped["probe_mid_bulk_shift"].quantile(0.1)
    summary["probe_mid_bulk_shift_q90"] = grouped["probe_mid_bulk_shift"].quantile(0.9)
    return summary.reset_index()


def write_development(runs: Mapping[str, tuple[str | Path, Sequence[str]]], out: str | Path) -> Path:
    """Write the development tables of several runs (label -> (root, recipes)) to the CSV ``out`` (atomically)."""
    table = pd.concat([development_table(root, recipes, label) for label, (root, recipes) in runs.items()],
                      ignore_index=True)
    return atomic_write_bytes(Path(out), table.to_csv(index=False, float_format="%.6g").encode())


def is_validated(folder: str | Path) -> bool:
    """A validation population with an OOD stats table of at least one network."""
    path = Path(folder) / STATS_FILE
    return path.is_file() and len(pd.read_csv(path)) > 0


def validation_results(folder: str | Path, committee: Mapping | None = None, bands=DISORDER_BANDS,
                       progress: bool = False) -> dict:
    """Everything notebook 09 shows of one evaluated population (validation or shipped paper one).

    Returns ``{"stats", "diagnostics", "outcomes", "median_index", "median_diagram", "target", "W", "v",
    "recalls", "committee"}``; diagnostics are computed (clean data only) if missing; the committee
    (``{"diagnostic", "direction", "k"}``) is evaluated on the population's grid once and cached in
    ``committee.json``.
    """
    from ..nets.model_folders import load_model
    from ..ood.committee import committee_result
    from ..ood.generalization import GeneralizationGrid
    from ..ood.model_evaluation import load_result

    folder = Path(folder)
    population = load_population(folder)
    stats = population.stats
    if not (folder / DIAGNOSTICS_FILE).is_file():
        diagnose_population(folder, population_datasets(folder, population.manifest)[0], progress=progress)
    diagnostics = load_diagnostics(folder)
    order = stats.sort_values("ood_accuracy", kind="stable")["model_index"].to_numpy()
    median_index = int(order[(len(order) - 1) // 2])
    result = load_result(folder / model_dir_name(median_index))
    out = {"stats": stats, "diagnostics": diagnostics, "outcomes": population_outcomes(stats, diagnostics),
           "median_index": median_index, "median_diagram": result.predicted, "target": result.target,
           "W": result.grid.W_values, "v": result.grid.v_values,
           "recalls": population_recall_by_band(folder, stats["model_index"], bands), "committee": None}
    if committee is not None and len(stats) > committee["k"]:
        cache = folder / COMMITTEE_FILE
        members = committee_members(diagnostics[diagnostics["model_index"].isin(stats["model_index"])],
                                    committee["diagnostic"], committee["direction"], committee["k"])
        stored = load_json(cache) if cache.is_file() else None
        if stored is None or stored.get("members") != members:
            grid = GeneralizationGrid.from_dict(population.manifest["grid"])
            models = [load_model(folder / model_dir_name(i)) for i in members]
            vote = committee_result(models, grid, progress=progress)
            stored = {**dict(committee), "members": members, "ood_accuracy": vote.ood_metrics()["accuracy"],
                      "mean_member_ood_accuracy": float(stats.set_index("model_index").loc[members, "ood_accuracy"].mean())}
            save_json(cache, stored)
        out["committee"] = stored
        out["outcomes"]["committee_ood_accuracy"] = float(stored["ood_accuracy"])
    return out


def ceiling_gap_by_band(results: Mapping[str, Mapping], ceiling_accuracy: Mapping[str, float]) -> pd.DataFrame:
    """Median over networks of the OOD accuracy in each disorder band, per population, beside the ceiling.

    ``results``: label -> :func:`validation_results` of a population; ``ceiling_accuracy``: band ``"low-high"``
    -> the Bayes classifier's accuracy there (:func:`ssh_ood.physics.ceiling.band_means`). One row per band with
    ``ceiling`` and, per population, ``<label>`` (the median network-wise band accuracy) and ``<label> gap``
    (ceiling minus it). Bands a population's grid lacks are NaN.
    """
    rows = []
    for band, ceiling in ceiling_accuracy.items():
        row = {"band": f"W in [{band.replace('-', ', ')}]", "ceiling": float(ceiling)}
        for label, result in results.items():
            column = f"accuracy_W{band}"
            median = float(result["recalls"][column].median()) if column in result["recalls"] else float("nan")
            row[label] = median
            row[f"{label} gap"] = float(ceiling) - median
        rows.append(row)
    return pd.DataFrame(rows).set_index("band")


def diagnostics_within_populations(results: Mapping[str, Mapping],
                                   columns: Sequence[str] = ("probe_mid_bulk_shift", "cam_score",
                                                             "cam_zero_mode_score")) -> pd.DataFrame:
    """Does a clean-data diagnostic still rank networks within a recipe, and where does the CAM sit?

    One row per population and diagnostic: its median over the networks, and the Spearman correlation with OOD
    accuracy across the population's networks with its two-sided p-value (``scipy.stats.spearmanr``). For
    ``cam_score`` the median is the share of the above-average topological CAM in the edge-state region, so a
    larger median means a CAM that lights the edge states more.
    """
    from scipy.stats import spearmanr

    rows = []
    for label, result in results.items():
        merged = result["stats"][["model_index", "ood_accuracy"]].merge(result["diagnostics"], on="model_index")
        for column in columns:
            rho, p = spearmanr(merged[column], merged["ood_accuracy"])
            rows.append({"population": label, "diagnostic": column, "n_models": len(merged),
                         "median": float(merged[column].median()), "spearman_ood": float(rho), "p_value": float(p)})
    return pd.DataFrame(rows)
