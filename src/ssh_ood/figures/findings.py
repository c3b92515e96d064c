"""What a run finds, in numbers: the report's key-number table and its findings paragraphs.

Everything here is assembled from the files a population folder holds, and only from those that exist, so a
quick run without diagnostics gets a shorter text, never an error or an invented number:

- ``stats.csv`` (:mod:`ssh_ood.ood.population`): OOD accuracy spread, well-generalizing fractions on both cut
  metrics, clean accuracy and its rank correlation with OOD accuracy;
- ``predictors.csv`` (:mod:`ssh_ood.interpret.generalization_prediction`, best first): the best clean-data predictor and the
  paper's CAM score;
- ``precise_bn_summary.json`` (the precise-BatchNorm study): medians as trained and recalibrated;
- ``protocol_validation.json`` in the validation population: the frozen protocol tested out of sample;
- ``baselines.csv`` (:mod:`ssh_ood.interpret.baselines`) in either population: the probe against the field's
  label-free estimators of OOD accuracy;
- ``recipes_protocol.json`` and the validation populations it names (the recipe study): each training recipe's
  networks beside the paper recipe's (:func:`recipes_markdown`).

The paper column of :func:`key_numbers` holds only what the project has from the paper (its text, and
its per-network table read by :mod:`ssh_ood.ood.paper_reference`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..base.io_utils import load_json
from ..interpret.baselines import BASELINES_FILE, load_baselines
from ..interpret.baselines import PROBE as BASELINE_PROBE
from ..interpret.generalization_prediction import PREDICTORS_FILE, VALIDATION_FILE, spearman_rho, top_k
from ..interpret.recipe_protocol import goals_table, population_outcomes
from ..interpret.recipe_results import COMMITTEE_FILE, diagnostics_within_populations
from ..ood.batchnorm_study import SUMMARY_FILE as PRECISE_BN_SUMMARY_FILE
from ..ood.generalization_metrics import CUT_METRICS, DEFAULT_THRESHOLD
from ..ood.paper_reference import paper_network_metrics
from ..ood.population_tables import STATS_FILE
from .population_summary import well_generalizing_counts

#: the paper's numbers for the key-number rows that its per-network table does not give
PAPER = {
    "networks": "100",
    "rmse": "not given; the paper's 'RMSE' is not a true RMSE",
    "test_accuracy": "1.00 (the paper's demo network)",
    "clean_accuracy": "not given",
}


def paper_column(threshold: float = DEFAULT_THRESHOLD) -> dict[str, str]:
    """The paper column of the key-number table: :data:`PAPER` plus what its per-network table gives
    (:func:`ssh_ood.ood.paper_reference.paper_network_metrics`): the OOD accuracy spread, the count passing its
    "RMSE" cut (a column that behaves like our MAE) and the SSIM."""
    paper = paper_network_metrics()
    n = len(paper)
    return {
        **PAPER,
        "networks": str(n),
        "ood_spread": f"{_spread(paper['ood_accuracy'])} (its table)",
        "mae": f"{_count(int((paper['rmse'] <= threshold).sum()), n)} by its 'RMSE' ≤ {threshold:g}, a column that "
               "behaves like this MAE (its 'RMSE' ≈ 0.99 (1 - accuracy) + 0.02)",
        "ssim": f"{_median_range(paper['ssim'])} (its table)",
    }


def load_stats(population_dir: str | Path) -> pd.DataFrame | None:
    """The population's ``stats.csv``, or ``None`` if it has none (or no row)."""
    path = Path(population_dir) / STATS_FILE
    if not path.is_file():
        return None
    stats = pd.read_csv(path)
    return stats if len(stats) else None


def _spread(values: pd.Series) -> str:
    return f"{values.min():.3f} / {values.median():.3f} / {values.max():.3f}"


def _median_range(values: pd.Series) -> str:
    return f"{values.median():.3f} ({values.min():.3f}–{values.max():.3f})"


def _count(count: int, n: int) -> str:
    return f"{count} of {n} ({count / n:.0%})"


def key_numbers(stats: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> list[tuple[str, str, str]]:
    """Rows (quantity, this run, paper) of the report's key-number table, computed from a stats table.

    Parameters
    ----------
    stats : a population's ``stats.csv`` (columns ``ood_accuracy``, ``mae``, ``rmse``, ``test_accuracy``,
        ``clean_accuracy``; a row whose column is absent is left out).
    threshold : the well-generalizing cut applied to both MAE and RMSE.
    """
    n = len(stats)
    paper = paper_column(threshold)
    counts = well_generalizing_counts(stats, threshold) if set(CUT_METRICS) <= set(stats.columns) else {}
    rows = [("networks", str(n), paper["networks"])]
    if "ood_accuracy" in stats:
        rows.append(("OOD accuracy, min / median / max", _spread(stats["ood_accuracy"]), paper["ood_spread"]))
    rows += [(f"well generalizing, {metric.upper()} ≤ {threshold:g}", _count(counts[metric], n), paper[metric])
             for metric in CUT_METRICS if metric in counts]
    if "ssim" in stats:
        rows.append(("SSIM of predicted and target diagram, median (min–max)", _median_range(stats["ssim"]),
                     paper["ssim"]))
    if "test_accuracy" in stats:
        rows.append(("clean test accuracy (in-distribution test set), median (min–max)",
                     _median_range(stats["test_accuracy"]), paper["test_accuracy"]))
    if "clean_accuracy" in stats:
        rows.append(("accuracy on the clean row (W = 0) of the OOD grid, median (min–max)",
                     _median_range(stats["clean_accuracy"]), paper["clean_accuracy"]))
    return rows


def baseline_rows(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Key-number rows from a ``baselines.csv``: the probe against the label-free estimators, Spearman with OOD
    accuracy (sign as measured) and MAE of the accuracy estimate (the paper studies neither)."""
    rows = table.set_index("method")
    probe = rows[rows.index.str.startswith(BASELINE_PROBE)]
    others = rows[rows["family"] == "unlabeled OOD chains"]
    out = []
    for column, what, best in (("spearman", "Spearman with OOD accuracy: the probe / the label-free estimator of "
                                           "largest absolute Spearman", "abs"),
                               ("mae", "MAE of the OOD accuracy estimate: the probe's map / the closest label-free "
                                       "estimator", "min")):
        values = others[column].dropna()
        if len(probe) and pd.notna(probe[column].iloc[0]) and len(values):
            name = values.abs().idxmax() if best == "abs" else values.idxmin()
            out.append((f"{what} ({name})",
                        f"{probe[column].iloc[0]:.3f} / {values[name]:.3f}", "not studied"))
    return out


def key_numbers_markdown(population_dir: str | Path) -> str:
    """The key-number table (Markdown) of a population, with a note on the paper column; "" without stats.

    With a ``baselines.csv`` the table gets the rows of :func:`baseline_rows`."""
    stats = load_stats(population_dir)
    if stats is None:
        return ""
    rows = key_numbers(stats)
    if (Path(population_dir) / BASELINES_FILE).is_file():
        rows += baseline_rows(load_baselines(population_dir)[0])
    lines = ["| quantity | this run | paper |", "|---|---|---|"]
    lines += [f"| {quantity} | {ours} | {paper} |" for quantity, ours, paper in rows]
    lines += ["", "OOD: out of distribution, the generalization grid W = 0 to 5. The paper column holds only what this "
              "project has from the paper: its per-network table of 100 CNNs "
              "(`00_demonstrations_data/reference/paper_all_stats_10_real_100_slices.csv`) and its demo network; "
              "\"not given\" means it has no comparable number."]
    return "\n".join(lines)


def _stats_paragraph(stats: pd.DataFrame, threshold: float) -> str:
    n = len(stats)
    sentences = []
    if {"test_accuracy", "ood_accuracy"} <= set(stats.columns):
        test, ood = stats["test_accuracy"], stats["ood_accuracy"]
        sentence = (f"Over the {n} networks, which differ only in their random seeds, the clean test accuracy lies "
                    f"between {test.min():.3f} and {test.max():.3f} (median {test.median():.3f}) while the OOD accuracy "
                    f"spreads from {ood.min():.3f} to {ood.max():.3f} (median {ood.median():.3f})")
        rho = spearman_rho(test, ood)
        if not math.isnan(rho):
            sentence += f"; the Spearman correlation between the two is {rho:+.2f}"
        sentences.append(sentence + ".")
    if set(CUT_METRICS) <= set(stats.columns):
        counts = well_generalizing_counts(stats, threshold)
        sentences.append(f"By MAE ≤ {threshold:g}, the paper's cut on the metric its 'RMSE' column behaves like, "
                         f"{_count(counts['mae'], n)} generalize well; by a true RMSE ≤ {threshold:g}, "
                         f"{_count(counts['rmse'], n)}.")
    return " ".join(sentences)


def _rho(row: pd.Series) -> str:
    return (f"Spearman {row['spearman_ood_accuracy']:+.2f} with OOD accuracy (95 % CI "
            f"{row['spearman_low_ood_accuracy']:+.2f} to {row['spearman_high_ood_accuracy']:+.2f})")


def _predictors_paragraph(predictors: pd.DataFrame) -> str:
    best = predictors.iloc[0]
    sentences = [f"The best clean-data predictor (computed from chains with W ≤ 0.05 only) is "
                 f"`{best['diagnostic']}`: {_rho(best)}; the 10 networks it ranks best have a mean OOD accuracy "
                 f"{best['lift10']:+.3f} above the population's (permutation p = {best['lift10_p']:.2g})."]
    cam = predictors.index[predictors["diagnostic"] == "cam_score"]
    if len(cam):
        sentences.append(f"The paper's criterion, the CAM score, ranks {cam[0] + 1} of {len(predictors)} "
                         f"diagnostics: {_rho(predictors.loc[cam[0]])}.")
    return " ".join(sentences)


def _precise_bn_paragraph(summary: dict) -> str:
    ood = summary["ood_accuracy"]
    near_half = summary.get("near_half", "OOD accuracy near 0.5")
    return (f"With precise BatchNorm statistics (averages over the whole training set instead of running averages) "
            f"the median OOD accuracy goes from {ood['running_median']:.3f} to {ood['precise_median']:.3f} (median "
            f"paired change {ood['change_median']:+.3f}); networks with {near_half}: "
            f"{summary['near_half_running']} as trained, {summary['near_half_precise']} with precise BN.")


def _validation_paragraph(validation: dict) -> str:
    rule = validation["rule"]
    extreme = {"high": "highest", "low": "lowest"}[rule["direction"]]
    return (f"On an independent population of {validation['n_models']} networks (another master seed), evaluated "
            f"only after the protocol was frozen, {validation['n_replicated']} of {validation['n_tested']} "
            f"diagnostics replicate (expected sign, 95 % CI excluding 0); the frozen rule, the {rule['k']} networks "
            f"with the {extreme} `{rule['diagnostic']}`, picks a mean OOD accuracy of {rule['selected_mean']:.3f} "
            f"against the population's {rule['population_mean']:.3f} (lift {rule['lift']:+.3f}, permutation "
            f"p = {rule['p_value']:.2g}).")


def _baselines_paragraph(label: str, table: pd.DataFrame) -> str:
    rows = table.set_index("method")
    probe = [m for m in rows.index if m.startswith(BASELINE_PROBE)]
    if not probe:
        return ""
    p = rows.loc[probe[0]]
    mae = f", its frozen isotonic map's MAE {p['mae']:.3f} ({p['mae_scope']})" if pd.notna(p["mae"]) else ""
    parts = [f"Against the field's label-free OOD accuracy estimators ({label}, {int(p['n'])} networks): the probe's "
             f"Spearman with OOD accuracy is {p['spearman']:+.2f}{mae}"]
    others = rows[rows["family"] == "unlabeled OOD chains"]
    for column, what, sign in (("spearman", "Spearman", "+"), ("mae", "MAE", "")):
        values = others[column].dropna()
        if len(values):
            parts.append(f"the estimators' {what} ranges from {values.min():{sign}.2f} ({values.idxmin()}) to "
                         f"{values.max():{sign}.2f} ({values.idxmax()})")
    measures = rows.loc[rows["family"] == "clean-data measure", "spearman"].dropna()
    if len(measures):
        strongest = measures.abs().idxmax()
        parts.append(f"the strongest clean-data generalization measure is {strongest} at {measures[strongest]:+.2f}")
    return "; ".join(parts) + "."


def findings_markdown(population_dir: str | Path, validation_dir: str | Path | None = None,
                      threshold: float = DEFAULT_THRESHOLD) -> str:
    """The findings as Markdown paragraphs, each built from one file of the population, with its numbers.

    Parameters
    ----------
    population_dir : population folder (``stats.csv``, optionally ``predictors.csv`` and
        ``precise_bn_summary.json``).
    validation_dir : the independent validation population, whose ``protocol_validation.json`` (if
        present) reports the frozen protocol out of sample.
    threshold : the well-generalizing cut on MAE and RMSE.

    Returns
    -------
    str : paragraphs separated by blank lines; a file that does not exist contributes nothing, so the
        result is "" for an empty folder.
    """
    population_dir = Path(population_dir)
    paragraphs = []
    stats = load_stats(population_dir)
    if stats is not None:
        paragraphs.append(_stats_paragraph(stats, threshold))
    if (population_dir / PREDICTORS_FILE).is_file():
        predictors = pd.read_csv(population_dir / PREDICTORS_FILE)
        if len(predictors):
            paragraphs.append(_predictors_paragraph(predictors))
    if (population_dir / PRECISE_BN_SUMMARY_FILE).is_file():
        paragraphs.append(_precise_bn_paragraph(load_json(population_dir / PRECISE_BN_SUMMARY_FILE)))
    if validation_dir is not None and (Path(validation_dir) / VALIDATION_FILE).is_file():
        paragraphs.append(_validation_paragraph(load_json(Path(validation_dir) / VALIDATION_FILE)))
    for label, folder in (("this population", population_dir), ("validation population", validation_dir)):
        if folder is not None and (Path(folder) / BASELINES_FILE).is_file():
            paragraphs.append(_baselines_paragraph(label, load_baselines(folder)[0]))
    return "\n\n".join(p for p in paragraphs if p)


def recipes_markdown(protocol_path: str | Path, repo_root: str | Path = ".") -> str:
    """The training recipes' validation populations of the recipe study beside the paper recipe's, as a Markdown table.

    Reads the frozen protocol (``recipes_protocol.json``) for the populations it names and its comparison
    populations (folders relative to ``repo_root``), and of each evaluated one its ``stats.csv`` and, if
    cached, ``committee.json``. One row per population: networks, OOD accuracy min / median / max, share with
    MAE <= 0.2, median clean test accuracy, the clean-data committee's OOD accuracy. "" when the protocol is
    missing or no population it names is evaluated yet.
    """
    protocol_path, repo_root = Path(protocol_path), Path(repo_root)
    if not protocol_path.is_file():
        return ""
    protocol = load_json(protocol_path)
    named = {f"{name} (seed {protocol['master_seed']})": entry["out"] for name, entry in protocol["populations"].items()}
    compared = {f"paper recipe, {Path(folder).name}": folder for folder in protocol.get("comparison_populations", [])}
    rows, evaluated = [], 0
    for label, folder in {**named, **compared}.items():
        stats = load_stats(repo_root / folder)
        if stats is None or not len(stats):
            continue
        evaluated += label in named
        outcomes = population_outcomes(stats)
        committee = repo_root / folder / COMMITTEE_FILE
        vote = f"{load_json(committee)['ood_accuracy']:.3f}" if committee.is_file() else "not evaluated"
        rows.append(f"| {label} | {len(stats)} | {_spread(stats['ood_accuracy'])} | "
                    f"{outcomes['fraction_mae_le_0.2']:.0%} | {outcomes['median_test_accuracy']:.3f} | {vote} |")
    if not evaluated:
        return ""
    return "\n".join(["| population | networks | OOD accuracy, min / median / max | MAE ≤ 0.2 | clean test accuracy, "
                      "median | committee of 10 lowest-probe networks, OOD accuracy |", "|---|---:|---|---:|---:|---:|",
                      *rows, "", f"Paper preset. Main recipe `{protocol['main_recipe']}`; the protocol, frozen "
                      f"{protocol['frozen'][:10]} before any of these networks was evaluated out of distribution, is "
                      "scored in notebook 09."])


def cam_finding_markdown(table: pd.DataFrame, score_cut: float, chance_level: float, k: int = 10) -> str:
    """What the CAM score says about generalization on one population, as the closing note of notebook 03.

    Parameters
    ----------
    table : one row per network with ``cam_score``, ``ood_accuracy`` and ``category`` (the table of
        :func:`ssh_ood.interpret.highlighted_models.highlight_population`).
    score_cut : the good / misleading cut on the CAM score (by default the population median).
    chance_level : the score of a structureless map (the edge-state region's area fraction).
    k : size of the pick by the paper's criterion, the ``k`` most edge-focused CAMs (at most the population).

    Returns
    -------
    Markdown: the Spearman correlation of the CAM score with OOD accuracy and what its sign means for the
    paper's criterion, the mean OOD accuracy of the ``k`` highest scores against the population's, the
    well-generalizing share on each side of the cut, and how far the cut is from chance.
    """
    rho = spearman_rho(table["cam_score"], table["ood_accuracy"])
    k = min(k, len(table))
    picked = table["ood_accuracy"].to_numpy()[top_k(table["cam_score"], k, higher_is_better=True)].mean()
    well = table["category"].str.startswith("well")
    good = table["category"].str.endswith("good")
    verdict = ("**This repository's finding: the paper's CAM criterion comes out reversed.** The more edge-focused "
               "a network's CAM, the *worse* it generalizes" if rho < 0 else
               "**Here the CAM criterion keeps the paper's sign:** the more edge-focused a network's CAM, the better it "
               "generalizes")
    return (f"{verdict}: on these {len(table)} networks the CAM score has Spearman {rho:+.2f} with OOD accuracy. "
            f"The {k} networks with the most edge-focused CAMs, the paper's pick, reach a mean OOD accuracy of "
            f"{picked:.3f}, against {table['ood_accuracy'].mean():.3f} for the whole population. Well generalizing: "
            f"{int((well & good).sum())} of {int(good.sum())} networks with a good CAM, {int((well & ~good).sum())} of "
            f"{int((~good).sum())} with a misleading one. The good / misleading cut, CAM score {score_cut:.3f}, lies "
            f"{score_cut - chance_level:+.3f} from the chance level {chance_level:.3f} of a structureless map: a "
            "\"good\" CAM is barely more edge-focused than noise, which is why the four CAMs of Fig. 2 look alike.")


def recipes_answer_markdown(results: Mapping[str, Mapping], protocol: Mapping, ceiling_accuracy: Mapping[str, float],
                            recipe_labels: Mapping[str, str]) -> str:
    """The closing answer of notebook 09, computed from the populations it read.

    Parameters
    ----------
    results : label -> :func:`ssh_ood.interpret.recipe_results.validation_results` of each population shown, the
        recipes' validation populations and the paper recipe's shipped ones.
    protocol : the frozen recipes protocol (``recipes_protocol.json``): its main recipe, predictions and goals.
    ceiling_accuracy : disorder band ``"low-high"`` -> the Bayes classifier's accuracy there; the last band is the
        strongest disorder, where the answer compares the median networks.
    recipe_labels : recipe name -> its label in ``results`` (the recipes evaluated so far).

    Returns
    -------
    Markdown bullets: each recipe's median OOD accuracy and share with MAE <= 0.2 beside the paper recipe's, its
    median network's accuracy in the strongest band beside the ceiling, the main recipe's goals met, how well
    ``probe_mid_bulk_shift`` still ranks the networks within each recipe, and where the median network's CAM looks.
    """
    paper = {label: result for label, result in results.items() if label not in recipe_labels.values()}
    strong = list(ceiling_accuracy)[-1]
    band = f"W in [{strong.replace('-', ', ')}]"

    def against(values: list[float], spec: str) -> str:
        """`` against <min>–<max>`` of the paper recipe's populations ("" without them)."""
        if not values:
            return ""
        low, high = format(min(values), spec), format(max(values), spec)
        return f" against {low}" if low == high else f" against {low}–{high}"

    def strong_accuracy(result: Mapping) -> float:  # NaN where a coarse grid has no row in the band
        column = f"accuracy_W{strong}"
        return float(result["recalls"][column].median()) if column in result["recalls"] else math.nan

    paper_medians = [r["outcomes"]["median_ood_accuracy"] for r in paper.values()]
    bullets = []
    for recipe, label in recipe_labels.items():
        outcomes = results[label]["outcomes"]
        median = outcomes["median_ood_accuracy"]
        verdict = ("" if not paper_medians else " generalizes better than the paper recipe" if median > max(paper_medians)
                   else " generalizes worse than the paper recipe" if median < min(paper_medians)
                   else " generalizes like the paper recipe")
        bullets.append(
            f"**`{recipe}`{verdict}** ({int(outcomes['n_models'])} networks): median OOD accuracy {median:.2f}"
            f"{against(paper_medians, '.2f')}, {outcomes['fraction_mae_le_0.2']:.0%} pass MAE ≤ 0.2"
            f"{against([r['outcomes']['fraction_mae_le_0.2'] for r in paper.values()], '.0%')}; at {band} its median "
            f"network is right on {strong_accuracy(results[label]):.2f} of the chains"
            f"{against([strong_accuracy(r) for r in paper.values()], '.2f')} (ceiling {ceiling_accuracy[strong]:.2f}).")
    main = protocol["main_recipe"]
    if main in recipe_labels:
        goals = goals_table(protocol, results[recipe_labels[main]]["outcomes"])
        met = goals["met"].eq(True)
        listed = "; ".join(f"{row.goal} {row.observed:.3f} against {row.target}" for row in goals.itertuples())
        bullets.append(f"**{int(met.sum())} of {len(goals)} goals met** by the main recipe `{main}`: {listed}.")
    within = diagnostics_within_populations({label: results[label] for label in recipe_labels.values()},
                                            ("probe_mid_bulk_shift", "cam_score")).set_index(["population", "diagnostic"])
    ranks = []
    for recipe, label in recipe_labels.items():
        rho = within.loc[(label, "probe_mid_bulk_shift"), "spearman_ood"]
        predicted = protocol["predictions"].get(recipe, {}).get("spearman_probe_ood")
        note = f" (the protocol predicted {predicted['op']} {predicted['value']})" if predicted else ""
        ranks.append(f"`{recipe}` {rho:+.2f}{note}")
    bullets.append("**Within a recipe, `probe_mid_bulk_shift` ranks the networks** by Spearman with OOD accuracy: "
                   + ", ".join(ranks) + ".")
    cams = []
    for label, result in results.items():
        scores = result["diagnostics"].set_index("model_index")["cam_score"]
        cams.append(f"{label}: {scores.loc[result['median_index']]:.3f} (population median {scores.median():.3f})")
    bullets.append("**The CAM score of each population's median network**: " + "; ".join(cams) + ".")
    return "\n".join(f"- {bullet}" for bullet in bullets)


def rules_bar_markdown(table: pd.DataFrame, reference: str) -> str:
    """What :func:`ssh_ood.interpret.recipe_results.rules_by_band` shows, in sentences computed from it.

    Parameters
    ----------
    table : the populations, the physics rules, the ceiling and the margins over ``reference``, overall and per band.
    reference : the rule the margins are taken over.

    Returns
    -------
    Markdown bullets: the reference rule's accuracy overall and per band beside the ceiling's; per population whether
    its median network beats the rule overall, and the bands where it beats it and falls short of it, with the
    margins; and how many populations beat the rule in every band.
    """
    columns = [c for c in table.columns if c != "kind"]
    bands = [c for c in columns if c != "overall"]
    rule = table.loc[reference]
    ceiling = table.loc["ceiling"] if "ceiling" in table.index else None
    gaps = "" if ceiling is None else f" (ceiling {ceiling['overall']:.3f}; " + ", ".join(
        f"{band} {rule[band]:.3f} against {ceiling[band]:.3f}" for band in bands) + ")"
    bullets = [f"**The `{reference}` rule** is right on {rule['overall']:.3f} of the grid's chains{gaps}."]
    populations = table[table["kind"] == "population"]
    everywhere = 0
    for label in populations.index:
        margin = table.loc[f"{label} − {reference}"]
        above = [band for band in bands if margin[band] > 0]
        below = [band for band in bands if margin[band] < 0]
        everywhere += len(above) == len(bands) and margin["overall"] > 0
        verdict = "beats" if margin["overall"] > 0 else "falls short of" if margin["overall"] < 0 else "ties"
        parts = [f"**{label}**: the median network {verdict} the rule overall "
                 f"({populations.loc[label, 'overall']:.3f}, margin {margin['overall']:+.3f})"]
        if above:
            parts.append("ahead in " + ", ".join(f"{band} ({margin[band]:+.3f})" for band in above))
        if below:
            parts.append("behind in " + ", ".join(f"{band} ({margin[band]:+.3f})" for band in below))
        bullets.append("; ".join(parts) + ".")
    bullets.append(f"**{everywhere} of {len(populations)} populations** clear the `{reference}` rule overall and in "
                   "every band.")
    return "\n".join(f"- {bullet}" for bullet in bullets)
