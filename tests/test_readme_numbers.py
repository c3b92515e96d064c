"""The README's numbers on the seed-1 validation population are those of the shipped files.

The validation population grows across sessions, chunk by chunk; every chunk rewrites its
``stats.csv``, ``protocol_validation.json`` and ``precise_bn*.{csv,json}``. This test fails as soon as the
README's "What this reproduction finds" section quotes numbers of an earlier state.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from ssh_ood.base.paths import REPO_ROOT

SEED1 = REPO_ROOT / "00_demonstrations_data" / "100_CNNs_seed1"


def _readme() -> str:
    """The README with every run of whitespace made one space (line wrapping does not matter)."""
    return re.sub(r"\s+", " ", (REPO_ROOT / "README.md").read_text())


def _number(value: float, digits: int = 2, sign: bool = False) -> str:
    """A number as the README writes it: fixed digits, a typographic minus, ``+`` only if ``sign``."""
    return f"{value:{'+' if sign else ''}.{digits}f}".replace("-", "−")


def _correlation(entry: dict) -> str:
    return f"{_number(entry['spearman'])} [{_number(entry['low'])}, {_number(entry['high'])}]"


@pytest.fixture(scope="module")
def validation() -> dict:
    return json.loads((SEED1 / "protocol_validation.json").read_text())


def test_population_size_and_spread(validation):
    readme, stats = _readme(), pd.read_csv(SEED1 / "stats.csv")
    n, ood = len(stats), stats["ood_accuracy"]
    assert validation["n_models"] == n, "protocol_validation.json is not of the population's stats.csv"
    assert f"**{n} networks**" in readme or f"**{n} networks are evaluated" in readme
    assert f"On these {n}:" in readme
    assert f"OOD accuracy {ood.min():.2f}–{ood.max():.2f}, median {ood.median():.2f}." in readme
    mae, rmse = int((stats["mae"] <= 0.2).sum()), int((stats["rmse"] <= 0.2).sum())
    assert f"MAE ≤ 0.2 passes {mae} networks; RMSE ≤ 0.2 passes {rmse}." in readme


def test_replication_and_the_frozen_rule(validation):
    readme = _readme()
    n, rule = validation["n_models"], validation["rule"]
    assert f"{validation['n_replicated']} of the {validation['n_tested']} varying diagnostics replicate" in readme
    by_name = {entry["diagnostic"]: entry for entry in validation["replication"]}
    for name in ("probe_mid_bulk_shift", "cam_zero_mode_correlation", "cam_score"):
        assert _correlation(by_name[name]) in readme, name
    assert (f"mean OOD accuracy of {rule['selected_mean']:.3f}, against {rule['population_mean']:.3f} for the {n} "
            f"(lift {_number(rule['lift'], 3, sign=True)}, permutation p = {rule['p_value']:.2g})") in readme


def test_precise_batchnorm_on_the_validation_population():
    readme = _readme()
    summary = json.loads((SEED1 / "precise_bn_summary.json").read_text())
    ood = summary["ood_accuracy"]
    assert f"The {summary['n_models']} evaluated seed-1 networks behave the same way" in readme
    assert (f"paired change of OOD accuracy median {_number(ood['change_median'], 3, sign=True)}, "
            f"Wilcoxon p = {ood['wilcoxon_p']:.2f}") in readme
    assert f"{summary['near_half_running']} → {summary['near_half_precise']} networks below 0.55" in readme
    table = (pd.read_csv(SEED1 / "diagnostics.csv")
             .merge(pd.read_csv(SEED1 / "stats.csv")[["model_index", "ood_accuracy"]], on="model_index")
             .merge(pd.read_csv(SEED1 / "precise_bn.csv")[["model_index", "ood_accuracy_precise"]], on="model_index"))
    for name, label in (("probe_mid_bulk_shift", "`probe_mid_bulk_shift`"), ("cam_score", "CAM score")):
        trained = table[name].corr(table["ood_accuracy"], method="spearman")
        precise = table[name].corr(table["ood_accuracy_precise"], method="spearman")
        assert f"{label} {_number(trained)} → {_number(precise)}" in readme, name


def test_the_field_estimators_against_the_probe():
    """The README's baselines paragraph quotes both populations' baselines.csv (seed 0 / seed 1)."""
    readme = _readme()
    tables = [pd.read_csv(folder / "baselines.csv").set_index("method")
              for folder in (SEED1.parent / "100_CNNs", SEED1)]

    def pair(method: str, column: str, digits: int = 2, sign: bool = False) -> str:
        return " / ".join(_number(table.loc[method, column], digits, sign) for table in tables)

    for method, label in (("AC (Hendrycks & Gimpel 2017)", "average confidence AC (Hendrycks & Gimpel 2017)"),
                          ("DoC (Guillory et al. 2021)", "DoC (Guillory et al. 2021)"),
                          ("ATC-MC (Garg et al. 2022)", "ATC (Garg et al. 2022)"),
                          ("agreement (Jiang et al. 2022, Baek et al. 2022)",
                           "agreement with the rest of the population (Jiang et al. 2022, Baek et al. 2022)")):
        assert f"{label}: {pair(method, 'spearman')}, MAE {pair(method, 'mae')}" in readme, method
    assert f"(Deng et al. 2023): {pair('nuclear norm (Deng et al. 2023)', 'spearman')};" in readme
    probe = "probe_mid_bulk_shift (issue 12)"
    assert f"`probe_mid_bulk_shift`: {pair(probe, 'spearman')}." in readme
    mae = [table.loc[probe, "mae"] for table in tables]
    assert f"MAE {mae[0]:.3f} in sample and **{mae[1]:.3f} on seed 1**" in readme
    assert tables[1].loc[probe, "mae_scope"].startswith("out-of-sample")
    ei = "effective invariance (Deng et al. 2022)"
    assert f"gives {pair(ei, 'spearman', sign=True)} (seed 1: 95 % CI [{_number(tables[1].loc[ei, 'spearman_low'], sign=True)}, " \
        f"{_number(tables[1].loc[ei, 'spearman_high'], sign=True)}])" in readme
