"""Statistics of ssh_ood.interpret.generalization_prediction: correlations with CIs, selection lift, the frozen protocol."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ssh_ood.figures.prediction_figures import figure_protocol_validation
from ssh_ood.interpret import generalization_prediction as gp
from ssh_ood.interpret.generalization_prediction import (
    correlation_with_ci,
    make_protocol,
    predictor_table,
    selection_lift,
    top_k,
    validate_protocol,
)


def test_correlations_match_scipy_and_their_intervals_cover_them():
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    y = 0.6 * x + rng.normal(size=80)
    result = correlation_with_ci(x, y, n_bootstrap=1000, seed=1)
    assert result["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert result["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    for method in ("pearson", "spearman"):
        assert result[f"{method}_low"] < result[method] < result[f"{method}_high"]
        assert 0 < result[f"{method}_low"]  # a clear positive relation: the interval excludes 0
    independent = correlation_with_ci(x, rng.normal(size=80), n_bootstrap=1000)
    assert independent["spearman_low"] < 0 < independent["spearman_high"]
    assert np.isnan(correlation_with_ci(x, np.ones(80))["spearman"])
    assert np.isnan(correlation_with_ci([1.0, 2.0], [2.0, 1.0])["pearson_low"])  # undefined for two networks
    with pytest.raises(ValueError, match="finite"):
        correlation_with_ci([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])


def test_a_perfect_predictor_picks_the_best_k():
    rng = np.random.default_rng(2)
    outcome = rng.uniform(0.5, 0.9, size=50)
    for k in (1, 5, 20):
        lift = selection_lift(outcome, outcome, k, n_permutations=2000)
        assert lift["selected_mean"] == pytest.approx(np.sort(outcome)[-k:].mean())
        assert lift["lift"] == pytest.approx(lift["selected_mean"] - outcome.mean())
        # only the best subset itself does as well: probability 1 / C(50, k) per random subset
        assert lift["p_value"] == pytest.approx(1 / 50, abs=0.008) if k == 1 else lift["p_value"] == pytest.approx(1 / 2001)
    # ranking by -outcome with higher_is_better=False is the same choice
    assert set(top_k(-outcome, 5, higher_is_better=False)) == set(top_k(outcome, 5))
    with pytest.raises(ValueError, match="k must be"):
        top_k(outcome, 0)


def test_a_random_predictor_gives_uniform_p_values():
    rng = np.random.default_rng(3)
    outcome = rng.uniform(0.5, 0.9, size=40)
    p_values = np.array([
        selection_lift(rng.normal(size=40), outcome, 10, n_permutations=1000, seed=i)["p_value"] for i in range(300)
    ])
    assert stats.kstest(p_values, "uniform").pvalue > 0.001
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.09
    assert 0.4 <= np.median(p_values) <= 0.6


def synthetic(seed: int, sign: float) -> pd.DataFrame:
    """Networks whose OOD accuracy falls with ``probe_mid_bulk_shift`` (sign -1) and ignores ``epochs_run``."""
    rng = np.random.default_rng(seed)
    shift = rng.uniform(0, 1, size=60)
    accuracy = 0.7 + 0.15 * sign * (shift - 0.5) + 0.03 * rng.normal(size=60)
    return pd.DataFrame({"model_index": range(60), "probe_mid_bulk_shift": shift, "epochs_run": rng.integers(100, 300, 60),
                         "ood_accuracy": accuracy, "mae": 1 - accuracy})


REFERENCE = {"probe_mid_bulk_shift": 0.2656, "margin_median": 7.3e-05, "accuracy_W0": 0.5}


def test_protocol_frozen_on_one_population_is_validated_on_another(monkeypatch):
    monkeypatch.setattr(gp, "reference_network_values", lambda: dict(REFERENCE))
    discovery = predictor_table(synthetic(0, -1.0), n_bootstrap=300, n_permutations=500)
    assert discovery.iloc[0]["diagnostic"] == "probe_mid_bulk_shift" and discovery.iloc[0]["direction"] == -1
    protocol = make_protocol(discovery, "discovery", "validation", k=10)
    assert protocol["definitions_reference"] == REFERENCE
    assert protocol["selection_rule"] == {**protocol["selection_rule"], "diagnostic": "probe_mid_bulk_shift",
                                          "direction": "low", "k": 10}
    same = validate_protocol(protocol, synthetic(1, -1.0), n_bootstrap=300)
    row = same["replication"].set_index("diagnostic").loc["probe_mid_bulk_shift"]
    assert row["replicated"] and same["rule"]["lift"] > 0.03 and same["rule"]["p_value"] < 0.01
    reversed_ = validate_protocol(protocol, synthetic(1, +1.0), n_bootstrap=300)
    assert not reversed_["replication"].set_index("diagnostic").loc["probe_mid_bulk_shift", "replicated"]
    assert reversed_["rule"]["lift"] < 0
    fig = figure_protocol_validation(same["replication"], n_models=same["n_models"])
    assert fig.axes[0].get_title().endswith(
        f"{same['n_models']} validation networks: {same['n_replicated']} of {same['n_tested']} diagnostics replicate")
    plt.close(fig)
    # float noise within the tolerance passes; a moved definition is refused, naming what moved and by how much
    monkeypatch.setattr(gp, "reference_network_values", lambda: {**REFERENCE, "probe_mid_bulk_shift": 0.2656 * (1 + 1e-4)})
    validate_protocol(protocol, synthetic(1, -1.0), n_bootstrap=50)
    monkeypatch.setattr(gp, "reference_network_values", lambda: {**REFERENCE, "probe_mid_bulk_shift": 0.30})
    with pytest.raises(ValueError, match=r"definitions changed .*1 of 3 .*probe_mid_bulk_shift: 0.2656 -> 0.3 "
                                         r"\(change \+0.0344, 12.95% relative\)"):
        validate_protocol(protocol, synthetic(1, -1.0))


def test_error_metric_fits_recover_a_known_line():
    accuracy = np.linspace(0.5, 0.95, 30)
    stats_table = pd.DataFrame({"ood_accuracy": accuracy, "mae": 1.0 * (1 - accuracy),
                                "rmse": 0.99 * (1 - accuracy) + 0.02})
    fits = gp.error_metric_fits(stats_table).set_index("metric")
    assert fits.loc["rmse", "slope"] == pytest.approx(0.99) and fits.loc["rmse", "intercept"] == pytest.approx(0.02)
    assert fits.loc["mae", "pearson"] == pytest.approx(1.0)
    assert fits.loc["mae", "well_generalizing_at_0.2"] == int(np.sum(1 - accuracy <= 0.2))


def test_recall_by_band_averages_the_stored_set_metrics(tmp_path):
    from ssh_ood.base.file_records import open_folder
    from ssh_ood.nets.metrics import METRIC_NAMES
    from ssh_ood.ood.generalization import GeneralizationGrid, GeneralizationResult
    from ssh_ood.ood.model_evaluation import save_result

    open_folder(tmp_path, {"kind": "model"})  # a model folder records its files as they are written
    grid = GeneralizationGrid(n_W=6, W_max=5.0, n_realizations=2, n_v=4, v_max=2.0, seed=0)
    rng = np.random.default_rng(0)
    sets = {name: rng.uniform(size=(6, 2)) for name in METRIC_NAMES}
    counts = rng.integers(0, 3, size=(6, 4))
    save_result(GeneralizationResult(grid, counts, counts, sets), tmp_path)
    recalls = gp.recall_by_band(tmp_path, bands=((0.0, 2.0), (2.0, 5.0)))
    W = grid.W_values  # 0, 1, 2, 3, 4, 5: rows 0-1 below 2, rows 2-5 in [2, 5]
    assert recalls["recall_trivial_W0-2"] == pytest.approx(np.float32(sets["recall_trivial"][W < 2]).mean(), rel=1e-6)
    assert recalls["recall_topological_W2-5"] == pytest.approx(np.float32(sets["recall_topological"][W >= 2]).mean(), rel=1e-6)
    assert recalls["accuracy_W2-5"] == pytest.approx(np.float32(sets["accuracy"][W >= 2]).mean(), rel=1e-6)
    assert gp.recall_by_band(tmp_path, bands=((0.0, 2.0), (5.5, 6.0))).keys() == {
        "recall_trivial_W0-2", "recall_topological_W0-2", "accuracy_W0-2"}


def test_spearman_rho_matches_scipy_and_is_nan_without_a_warning_for_constant_input(tmp_path):
    import warnings

    from ssh_ood.figures.findings import findings_markdown
    from ssh_ood.interpret.generalization_prediction import spearman_rho

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    y_gaps = y.copy()
    y_gaps[:4] = np.nan  # pairs with a missing value are left out, as pandas does
    assert spearman_rho(x, y_gaps) == pytest.approx(stats.spearmanr(x[4:], y[4:]).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(spearman_rho(np.ones(30), y)) and np.isnan(spearman_rho(x[:2], y[:2]))
        pd.DataFrame({"model_index": range(4), "test_accuracy": 1.0, "ood_accuracy": [0.5, 0.6, 0.7, 0.8],
                      "mae": 0.3, "rmse": 0.4}).to_csv(tmp_path / "stats.csv", index=False)
        text = findings_markdown(tmp_path)  # every network at test accuracy 1.000: no correlation quoted
    assert "between 1.000 and 1.000" in text and "Spearman" not in text
