"""The numbers the README's headline and ``docs/findings.md`` quote are those of the shipped files.

The validation population was trained and evaluated chunk by chunk; every chunk rewrites its
``stats.csv``, ``protocol_validation.json`` and ``precise_bn*.{csv,json}``. These tests fail as soon as the
findings page or the README quotes numbers of an earlier state or of another file.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.recipe_protocol import goals_table
from ssh_ood.interpret.recipe_results import rules_by_band, validation_results
from ssh_ood.physics.ceiling import ceiling_grid

DEMO = REPO_ROOT / "00_demonstrations_data"
SEED0, SEED1 = DEMO / "100_CNNs", DEMO / "100_CNNs_seed1"


def _text(path: str) -> str:
    """A page of the repository with every run of whitespace made one space (line wrapping does not matter)."""
    return re.sub(r"\s+", " ", (REPO_ROOT / path).read_text())


def _readme() -> str:
    return _text("README.md")


def _findings() -> str:
    return _text("docs/findings.md")


def _number(value: float, digits: int = 2, sign: bool = False) -> str:
    """A number as the README writes it: fixed digits, a typographic minus, ``+`` only if ``sign``."""
    return f"{value:{'+' if sign else ''}.{digits}f}".replace("-", "−")


def _correlation(entry: dict) -> str:
    return f"{_number(entry['spearman'])} [{_number(entry['low'])}, {_number(entry['high'])}]"


@pytest.fixture(scope="module")
def validation() -> dict:
    return json.loads((SEED1 / "protocol_validation.json").read_text())


def test_population_size_and_spread(validation):
    page, stats = _findings(), pd.read_csv(SEED1 / "stats.csv")
    n, ood = len(stats), stats["ood_accuracy"]
    assert validation["n_models"] == n, "protocol_validation.json is not of the population's stats.csv"
    assert f"**{n} networks**" in page or f"**{n} networks are evaluated" in page
    assert f"On these {n}:" in page
    assert f"OOD accuracy {ood.min():.2f}–{ood.max():.2f}, median {ood.median():.2f}." in page
    mae, rmse = int((stats["mae"] <= 0.2).sum()), int((stats["rmse"] <= 0.2).sum())
    assert f"MAE ≤ 0.2 passes {mae} networks; RMSE ≤ 0.2 passes {rmse}." in page


def test_replication_and_the_frozen_rule(validation):
    page = _findings()
    n, rule = validation["n_models"], validation["rule"]
    assert f"{validation['n_replicated']} of the {validation['n_tested']} varying diagnostics replicate" in page
    by_name = {entry["diagnostic"]: entry for entry in validation["replication"]}
    for name in ("probe_mid_bulk_shift", "cam_zero_mode_correlation", "cam_score"):
        assert _correlation(by_name[name]) in page, name
    assert (f"mean OOD accuracy of {rule['selected_mean']:.3f}, against {rule['population_mean']:.3f} for the {n} "
            f"(lift {_number(rule['lift'], 3, sign=True)}, permutation p = {rule['p_value']:.2g})") in page


def test_precise_batchnorm_on_the_validation_population():
    page = _findings()
    summary = json.loads((SEED1 / "precise_bn_summary.json").read_text())
    ood = summary["ood_accuracy"]
    assert f"The {summary['n_models']} evaluated seed-1 networks behave the same way" in page
    assert (f"paired change of OOD accuracy median {_number(ood['change_median'], 3, sign=True)}, "
            f"Wilcoxon p = {ood['wilcoxon_p']:.2f}") in page
    assert f"{summary['near_half_running']} → {summary['near_half_precise']} networks below 0.55" in page
    table = (pd.read_csv(SEED1 / "diagnostics.csv")
             .merge(pd.read_csv(SEED1 / "stats.csv")[["model_index", "ood_accuracy"]], on="model_index")
             .merge(pd.read_csv(SEED1 / "precise_bn.csv")[["model_index", "ood_accuracy_precise"]], on="model_index"))
    for name, label in (("probe_mid_bulk_shift", "`probe_mid_bulk_shift`"), ("cam_score", "CAM score")):
        trained = table[name].corr(table["ood_accuracy"], method="spearman")
        precise = table[name].corr(table["ood_accuracy_precise"], method="spearman")
        assert f"{label} {_number(trained)} → {_number(precise)}" in page, name


def test_the_field_estimators_against_the_probe():
    """The README's baselines paragraph quotes both populations' baselines.csv (seed 0 / seed 1)."""
    page = _findings()
    tables = [pd.read_csv(folder / "baselines.csv").set_index("method")
              for folder in (SEED0, SEED1)]

    def pair(method: str, column: str, digits: int = 2, sign: bool = False) -> str:
        return " / ".join(_number(table.loc[method, column], digits, sign) for table in tables)

    for method, label in (("AC (Hendrycks & Gimpel 2017)", "average confidence AC (Hendrycks & Gimpel 2017)"),
                          ("DoC (Guillory et al. 2021)", "DoC (Guillory et al. 2021)"),
                          ("ATC-MC (Garg et al. 2022)", "ATC (Garg et al. 2022)"),
                          ("agreement (Jiang et al. 2022, Baek et al. 2022)",
                           "agreement with the rest of the population (Jiang et al. 2022, Baek et al. 2022)")):
        assert f"{label}: {pair(method, 'spearman')}, MAE {pair(method, 'mae')}" in page, method
    assert f"(Deng et al. 2023): {pair('nuclear norm (Deng et al. 2023)', 'spearman')};" in page

    def interval(method: str) -> str:
        return " / ".join(f"[{_number(t.loc[method, 'spearman_low'], sign=True)}, "
                          f"{_number(t.loc[method, 'spearman_high'], sign=True)}]" for t in tables)

    cot, projnorm = "COT (Lu et al. 2023)", "ProjNorm (Yu et al. 2022)"
    assert (f"class proportions: {pair(cot, 'spearman', sign=True)} (95 % CI {interval(cot)}), "
            f"MAE {pair(cot, 'mae', 3)};") in page
    assert f"{pair(projnorm, 'spearman')} (95 % CI {interval(projnorm)});" in page
    # as the page says: ProjNorm's interval lies clear of the probe's on both populations, COT's |rho| overlaps it
    for t in tables:
        probe_low = t.loc["probe_mid_bulk_shift (frozen protocol)", "spearman_low"]
        assert t.loc[projnorm, "spearman_high"] < probe_low and t.loc[cot, "spearman_low"] < -probe_low
    probe = "probe_mid_bulk_shift (frozen protocol)"
    assert f"`probe_mid_bulk_shift`: {pair(probe, 'spearman')} (95 % CI {interval(probe)})." in page
    mae = [table.loc[probe, "mae"] for table in tables]
    assert f"MAE {mae[0]:.3f} in sample and **{mae[1]:.3f} on seed 1**" in page
    assert tables[1].loc[probe, "mae_scope"].startswith("out-of-sample")
    ei = "effective invariance (Deng et al. 2022)"
    assert f"gives {pair(ei, 'spearman', sign=True)} (seed 1: 95 % CI [{_number(tables[1].loc[ei, 'spearman_low'], sign=True)}, " \
        f"{_number(tables[1].loc[ei, 'spearman_high'], sign=True)}])" in page


def test_the_readme_headline_quotes_the_shipped_files(validation):
    """The three findings of the README's first screen, each from the file that holds it."""
    readme = _readme()
    cam = pd.read_csv(SEED0 / "predictors.csv").set_index("diagnostic").loc["cam_score"]
    replicated = {entry["diagnostic"]: entry for entry in validation["replication"]}
    assert (f"Spearman {_number(cam['spearman_ood_accuracy'])} [{_number(cam['spearman_low_ood_accuracy'])}, "
            f"{_number(cam['spearman_high_ood_accuracy'])}] with OOD accuracy, and "
            f"{_correlation(replicated['cam_score'])} on the second population") in readme
    baselines = [pd.read_csv(folder / "baselines.csv").set_index("method") for folder in (SEED0, SEED1)]
    probe = "probe_mid_bulk_shift (frozen protocol)"
    assert (f"Spearman {_number(baselines[0].loc[probe, 'spearman'])} with OOD accuracy, and "
            f"{_number(replicated['probe_mid_bulk_shift']['spearman'])} under a protocol frozen") in readme
    assert f"its accuracy estimate is off by {baselines[1].loc[probe, 'mae']:.3f} on average there" in readme
    estimators = ("AC (Hendrycks & Gimpel 2017)", "DoC (Guillory et al. 2021)", "ATC-MC (Garg et al. 2022)")
    ac, doc, atc = (_number(baselines[1].loc[method, "spearman"]) for method in estimators)
    assert f"give Spearman {ac}, {doc} and {atc}: the networks they rate highest generalize worst" in readme
    cot, projnorm = (baselines[1].loc[method, "spearman"] for method in ("COT (Lu et al. 2023)", "ProjNorm (Yu et al. 2022)"))
    assert f"get the sign right: COT ({_number(cot, sign=True)}) and ProjNorm ({_number(projnorm)}, a distance" in readme
    assert projnorm < baselines[1].loc[probe, "spearman"]  # "ranks the networks better than the probe"
    paper_recipe = pd.read_csv(SEED0 / "stats.csv")["ood_accuracy"].median()
    defects = pd.read_csv(DEMO / "recipes_seed2" / "defects" / "stats.csv")["ood_accuracy"].median()
    assert f"lift the median OOD accuracy from {paper_recipe:.2f} to {defects:.2f}, and networks that" in readme
    # the second study: its main recipe, the rule on its grid, and its goals as the protocol scores them
    protocol = json.loads((DEMO / "recipes_seed3_protocol.json").read_text())
    main = validation_results(DEMO / "recipes_seed3" / protocol["main_recipe"], protocol["committee"], diagnose=False)
    assert f"read the occupied-state projector instead of |ψ|² to {main['outcomes']['median_ood_accuracy']:.2f}**" in readme
    report = json.loads((DEMO / "physics_rules" / "paper_seed3.json").read_text())
    assert f"physics rule fitted on clean chains ({report['rules']['sublattice_position']['overall']:.2f}) in every " \
        "disorder band but the strongest" in readme
    margin = rules_by_band({"main": main}, report).loc["main − sublattice_position"].drop(["kind", "overall"])
    assert (margin.iloc[:-1] > 0).all() and margin.iloc[-1] < 0 and list(margin.index)[-1] == "W in [3, 5]"
    goals = goals_table(protocol, main["outcomes"])
    assert f"before any of its {int(main['outcomes']['n_models'])} networks was trained; " \
        f"{int(goals['met'].sum())} of the {len(goals)} goals set in it were met" in readme
    # the ceiling on the validation grid of the recipes (paper preset, master seed 2), from the physics alone
    grid = get_preset("paper")
    ceiling = ceiling_grid(np.linspace(0, grid.grid_W_max, grid.grid_n_W), np.linspace(0, grid.grid_v_max, grid.grid_n_v),
                           grid.grid_n_realizations, seed=2)["accuracy"].mean()
    assert f"against an accuracy ceiling of {ceiling:.2f} that no classifier" in readme


def test_the_readme_table_of_paper_and_reproduction():
    readme, stats = _readme(), pd.read_csv(SEED0 / "stats.csv")
    ood, clean = stats["ood_accuracy"], stats["test_accuracy"]
    assert f"| {ood.min():.3f} / {ood.median():.3f} / {ood.max():.3f} |" in readme
    mae, rmse = int((stats["mae"] <= 0.2).sum()), int((stats["rmse"] <= 0.2).sum())
    assert f"| {mae} of {len(stats)} by MAE; {rmse} by a true RMSE |" in readme
    assert f"| {clean.median():.3f} ({clean.min():.3f}–{clean.max():.3f}) |" in readme
    cam = pd.read_csv(SEED0 / "predictors.csv").set_index("diagnostic").loc["cam_score", "spearman_ood_accuracy"]
    cam1 = pd.read_csv(SEED1 / "predictors.csv").set_index("diagnostic").loc["cam_score", "spearman_ood_accuracy"]
    assert f"reversed: Spearman {_number(cam)} (seed 0), {_number(cam1)} (seed 1)" in readme
    encodings = json.loads((DEMO / "thermometer_comparison" / "paper_L3" / "comparison.json").read_text())["encodings"]
    thermometer, real = (encodings[name]["ood_accuracy"]["median"] for name in ("thermometer L=3", "real-valued"))
    assert f"median OOD accuracy {thermometer:.3f} against {real:.3f} real-valued" in readme
