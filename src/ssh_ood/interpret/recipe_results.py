"""Results of the training recipes (the recipe study): the clean-data development table and the validation populations.

Development (before the protocol is frozen) reads only ``diagnostics.csv`` of small quick-preset runs, one
per recipe: clean test accuracy and the clean-data probes (W <= 0.05). :func:`develop_recipes` trains and
diagnoses them; :func:`development_table` gathers them. The validation populations (paper preset, master seed
2, one folder per recipe under a root, as the frozen protocol names them) are read by
:func:`validation_results` only once they exist: stats, diagnostics, the median network's diagram, recall by
band, the clean-data committee. :func:`rules_by_band` sets them beside the one-threshold physics rules
(:mod:`ssh_ood.physics.physics_rules`) and the ceiling, band by band; :func:`study_status` says how far each
population of a protocol has got (trained, evaluated) without reading any OOD result.
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
#: the physics rule every population is measured against (the stronger of the two, :mod:`ssh_ood.physics.physics_rules`)
REFERENCE_RULE = "sublattice_position"


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
                       progress: bool = False, diagnose: bool = True) -> dict:
    """Everything notebook 09 shows of one evaluated population (validation or shipped paper one).

    Returns ``{"stats", "diagnostics", "outcomes", "median_index", "median_diagram", "target", "W", "v",
    "recalls", "committee", "grid"}`` (``grid``: the description of the generalization grid, from the
    manifest); diagnostics are computed (clean data only) if missing; the committee (``{"diagnostic",
    "direction", "k"}``: the k networks chosen by a clean-data diagnostic, or ``{"members": "all"}``: every
    network) is evaluated on the population's grid once and cached in ``committee.json``. The outcomes include
    the median accuracy in each band (``median_accuracy_W<band>``). ``diagnose=False`` (networks that do not read
    the paper's density images, which the clean-data probes build): ``diagnostics`` is None and only a committee
    of every network is allowed.
    """
    from ..nets.model_folders import load_model
    from ..nets.prediction import folder_representation
    from ..ood.committee import committee_result
    from ..ood.generalization import GeneralizationGrid
    from ..ood.model_evaluation import load_result

    folder = Path(folder)
    population = load_population(folder)
    stats = population.stats
    every_network = committee is not None and committee.get("members") == "all"
    if not diagnose and committee is not None and not every_network:
        raise ValueError("a committee chosen by a clean-data diagnostic needs the diagnostics (diagnose=True)")
    diagnostics = None
    if diagnose:
        if not (folder / DIAGNOSTICS_FILE).is_file():
            diagnose_population(folder, population_datasets(folder, population.manifest)[0], progress=progress)
        diagnostics = load_diagnostics(folder)
    order = stats.sort_values("ood_accuracy", kind="stable")["model_index"].to_numpy()
    median_index = int(order[(len(order) - 1) // 2])
    result = load_result(folder / model_dir_name(median_index))
    recalls = population_recall_by_band(folder, stats["model_index"], bands)
    out = {"stats": stats, "diagnostics": diagnostics, "outcomes": population_outcomes(stats, diagnostics, recalls),
           "median_index": median_index, "median_diagram": result.predicted, "target": result.target,
           "W": result.grid.W_values, "v": result.grid.v_values, "recalls": recalls, "committee": None,
           "grid": dict(population.manifest["grid"])}
    if committee is not None and (every_network or len(stats) > committee["k"]):
        cache = folder / COMMITTEE_FILE
        members = (sorted(int(i) for i in stats["model_index"]) if every_network else
                   committee_members(diagnostics[diagnostics["model_index"].isin(stats["model_index"])],
                                     committee["diagnostic"], committee["direction"], committee["k"]))
        stored = load_json(cache) if cache.is_file() else None
        if stored is None or stored.get("members") != members:
            grid = GeneralizationGrid.from_dict(population.manifest["grid"])
            models = [load_model(folder / model_dir_name(i)) for i in members]
            vote = committee_result(models, grid, progress=progress,  # each member fed the input it was trained on
                                    representations=[folder_representation(folder / model_dir_name(i)) for i in members])
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


def _band_label(band: str) -> str:
    return f"W in [{band.replace('-', ', ')}]"


def rules_by_band(results: Mapping[str, Mapping], rules_report: Mapping, ceiling: Mapping[str, float] | None = None,
                  reference: str = REFERENCE_RULE) -> pd.DataFrame:
    """The populations beside the one-threshold physics rules and the ceiling, overall and band by band.

    Parameters
    ----------
    results : label -> :func:`validation_results` of a population (its ``stats`` and ``recalls`` are read; its
        ``grid``, where given, must be the grid the rules were evaluated on).
    rules_report : the physics-rules report (``python -m ssh_ood physics-rules``,
        :func:`ssh_ood.ood.physics_baselines.baselines_report`): ``rules``: name -> ``{"overall": accuracy,
        "<low>-<high>": accuracy in the band, ...}``, ``ceiling`` (the same keys), ``bands`` and ``grid``.
    ceiling : band ``"low-high"`` -> the Bayes classifier's accuracy there, and optionally ``"overall"``; by default
        the report's own ceiling (computed on the rules' grid).
    reference : the rule the margins are taken over.

    Returns
    -------
    pandas.DataFrame
        One row per population, per rule, the ceiling, then per population its margin over the ``reference`` rule;
        index ``row`` (the population's label, the rule's name, ``"ceiling"``, ``"<label> − <reference>"``).
        Columns:

        ``kind``
            ``"population"``, ``"rule"``, ``"ceiling"`` or ``"margin"``.
        ``overall``
            accuracy over the whole generalization grid: for a population the median over its networks of each
            network's OOD accuracy; for a rule its accuracy (one fixed threshold, fitted on clean chains); for the
            ceiling the Bayes classifier's accuracy (NaN if ``ceiling`` has no ``"overall"``); for a margin the
            population's value minus the reference rule's (positive: the median network beats the rule).
        ``W in [low, high]`` (one per band)
            the same restricted to the grid's rows with W in the band: for a population the median over its
            networks of the network's accuracy in the band (as in :func:`ceiling_gap_by_band`).

    Raises
    ------
    ValueError
        naming what does not match: a band of the ceiling that a rule or a population lacks, a band of a rule
        that the ceiling lacks, a ``reference`` rule the report lacks, a population evaluated on another grid
        than the rules, or a population labelled like a rule.
    """
    rules = rules_report["rules"]
    taken = set(results) & {*rules, "ceiling"}
    if taken:
        raise ValueError(f"population label {sorted(taken)[0]!r} is also the name of a rule or the ceiling")
    if reference not in rules:
        raise ValueError(f"the rules report has no rule {reference!r} to take margins over (it has {sorted(rules)})")
    ceiling = dict(rules_report["ceiling"] if ceiling is None else ceiling)
    bands = [band for band in ceiling if band != "overall"]
    reported = [f"{low:g}-{high:g}" for low, high in rules_report.get("bands", ())]  # a coarse grid lacks some
    for name, rule in rules.items():
        for key in ("overall", *bands):
            if key not in rule:
                raise ValueError(f"rule {name!r} has no accuracy for band {key!r}")
        for band in reported:
            if band in rule and band not in bands:
                raise ValueError(f"band {band!r} of rule {name!r} is missing from the ceiling (it has {bands})")
    for label, result in results.items():
        grid = result.get("grid")
        if grid is not None and "grid" in rules_report and dict(grid) != dict(rules_report["grid"]):
            raise ValueError(f"population {label!r} was evaluated on another grid than the rules ({dict(grid)} "
                             f"against {dict(rules_report['grid'])})")
        for band in bands:
            if f"accuracy_W{band}" not in result["recalls"]:
                raise ValueError(f"population {label!r} has no accuracy for band {band!r} (its grid has no row there)")

    def row(kind: str, overall: float, by_band: Mapping[str, float]) -> dict:
        return {"kind": kind, "overall": float(overall), **{_band_label(band): float(by_band[band]) for band in bands}}

    rows, populations = {}, {}
    for label, result in results.items():
        populations[label] = row("population", result["stats"]["ood_accuracy"].median(),
                                 {band: result["recalls"][f"accuracy_W{band}"].median() for band in bands})
    rows.update(populations)
    rows.update({name: row("rule", rule["overall"], rule) for name, rule in rules.items()})
    rows["ceiling"] = row("ceiling", ceiling.get("overall", float("nan")), ceiling)
    columns = ["overall", *map(_band_label, bands)]
    for label, values in populations.items():
        rows[f"{label} − {reference}"] = {"kind": "margin", **{c: values[c] - rows[reference][c] for c in columns}}
    table = pd.DataFrame.from_dict(rows, orient="index")[["kind", *columns]]
    table.index.name = "row"
    return table


def study_status(protocol: Mapping, root: str | Path) -> pd.DataFrame:
    """How far each population of a protocol has got, from its files only (no OOD result is read).

    One row per population of ``protocol["populations"]`` (its folder ``root/<recipe>``): ``planned`` (the
    protocol's ``n_models``), ``trained`` (networks with a ``model_*/weights.pt``), ``evaluated``
    (:func:`is_validated`: an OOD stats table of at least one network exists), ``n_evaluated`` (the networks
    in that table: a count, not a result) and ``folder``.
    """
    rows = []
    for name, population in protocol["populations"].items():
        folder = Path(root) / name
        evaluated = is_validated(folder)
        rows.append({"recipe": name, "planned": int(population["n_models"]),
                     "trained": len(list(folder.glob("model_*/weights.pt"))), "evaluated": evaluated,
                     "n_evaluated": len(pd.read_csv(folder / STATS_FILE)) if evaluated else 0, "folder": str(folder)})
    columns = ["recipe", "planned", "trained", "evaluated", "n_evaluated", "folder"]
    return pd.DataFrame(rows, columns=columns).set_index("recipe")
