"""The probe against the field's OOD accuracy estimators (ssh_ood.interpret.baselines, ssh_ood.ood.unlabeled_softmax)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from ssh_ood.base.presets import get_preset
from ssh_ood.interpret.baselines import (
    BASELINES_FILE,
    ESTIMATES_FILE,
    PROBE,
    PROBE_MAP_FILE,
    apply_probe_map,
    baseline_table,
    fit_probe_map,
    network_estimates,
)
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.ood.unlabeled_softmax import softmax_outputs, unlabeled_chains


def test_unlabeled_chains_cover_the_grid_and_depend_on_their_seed_only():
    preset = get_preset("smoke")
    chains = unlabeled_chains(preset, seed=2021, chains_per_W=5)
    assert chains["X"].shape == (preset.grid_n_W * 5, 2 * preset.n_cells, 2 * preset.n_cells)
    assert set(np.round(chains["W"], 9)) == set(np.round(np.linspace(0, preset.grid_W_max, preset.grid_n_W), 9))
    # v ~ U(0, grid_v_max) over the whole range: a draw on a narrower or shifted interval fails the KS test
    assert stats.kstest(chains["v"], "uniform", args=(0.0, preset.grid_v_max)).pvalue > 1e-3
    assert "labels" not in chains
    # each chain's density sums to one over the sites for every eigenstate (columns of X)
    assert np.allclose(chains["X"].sum(axis=1), 1.0, atol=1e-4)
    same = unlabeled_chains(preset, seed=2021, chains_per_W=5)
    other = unlabeled_chains(preset, seed=2022, chains_per_W=5)
    assert np.array_equal(same["X"], chains["X"]) and not np.array_equal(other["v"], chains["v"])


class Constant(nn.Module):
    """Logits (0, a) whatever the input: softmax (1 / (1 + e^a), e^a / (1 + e^a))."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros(len(x)), self.a.expand(len(x))], dim=1)


def test_softmax_outputs_in_batches():
    P = softmax_outputs(Constant(np.log(3.0)).eval(), np.zeros((7, 4, 4), dtype=np.float32), batch_size=3)
    assert P.shape == (7, 2) and np.allclose(P, [[0.25, 0.75]] * 7)
    from ssh_ood.nets.architecture import build_model

    with pytest.raises(ValueError, match="real-valued"):
        softmax_outputs(build_model(3).eval(), np.zeros((2, 50, 50), dtype=np.float32))


def test_network_estimates_on_known_softmax_matrices():
    """Two networks, two classes. Source: 4 validation samples, labels 0, 0, 1, 1."""
    labels = np.array([0, 0, 1, 1])
    source = np.array([
        [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]],  # 3 of 4 correct, AC_S = 0.75
        [[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]],  # all correct, AC_S = 0.9
    ])
    target = np.array([
        [[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]],  # AC_T = 0.6333, predictions 0, 0, 0 (argmax of a tie: 0)
        [[0.95, 0.05], [0.05, 0.95], [0.95, 0.05]],  # AC_T = 0.95, predictions 0, 1, 0
    ])
    estimates = network_estimates(target, source, labels)
    assert estimates["source_accuracy"].tolist() == [0.75, 1.0]
    assert estimates["ac"].to_numpy() == pytest.approx([1.9 / 3, 0.95])
    assert estimates["doc"].to_numpy() == pytest.approx([0.75 - (0.75 - 1.9 / 3), 1.0 - (0.9 - 0.95)])
    # network 0: max-softmax on the source 0.9, 0.8, 0.7, 0.6 with 3 correct: t = 0.6; target 0.5, 0.5, 0.9 -> 1/3
    assert estimates["atc_mc"].to_numpy() == pytest.approx([1 / 3, 1.0])  # network 1: every source point correct
    assert estimates["agreement"].to_numpy() == pytest.approx([2 / 3, 2 / 3])
    alone = network_estimates(target[:1], source[:1], labels)
    assert np.isnan(alone.loc[0, "agreement"]) and alone.loc[0, "ac"] == pytest.approx(1.9 / 3)
    merged = alone.assign(model_index=0, ood_accuracy=0.6)
    assert "agreement (Jiang et al. 2022, Baek et al. 2022)" not in set(baseline_table(merged)["method"])


def test_cot_uses_the_source_class_proportion_and_enters_the_table():
    """COT's labels are drawn in the proportions of the clean (source) labels: here 3 of 4 are class 1."""
    from ssh_ood.ood.ood_estimators import cot_error

    labels = np.array([1, 1, 1, 0])
    source = np.array([[[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]]])
    target = np.array([[[0.95, 0.05], [0.9, 0.1], [0.1, 0.9], [0.2, 0.8]]])  # calls half the chains class 1
    cot = network_estimates(target, source, labels).loc[0, "cot"]
    # q = 3/4: the three rows with the largest p_1 take label 1 (costs 0.1, 0.2 and 0.9 for p_1 = 0.1), the last
    # label 0 (cost 0.05): error 1.25 / 4
    assert cot == pytest.approx(1 - 1.25 / 4) and cot == pytest.approx(1 - cot_error(target[0], 0.75))
    assert 1 - cot_error(target[0], 0.5) == pytest.approx(1 - 0.45 / 4)  # a balanced source: 0.05 + 0.1 + 0.1 + 0.2
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.5, 0.9, 30)
    merged = pd.DataFrame({"model_index": range(30), "ood_accuracy": truth, "cot": truth - 0.05,
                           "projnorm": 3 - truth})
    table = baseline_table(merged, n_bootstrap=50, n_permutations=50).set_index("method")
    row = table.loc["COT (Lu et al. 2023)"]
    assert row["spearman"] == pytest.approx(1.0) and row["mae"] == pytest.approx(0.05) and row["direction"] == 1
    projnorm = table.loc["ProjNorm (Yu et al. 2022)"]  # a score whose paper reads a larger value as a larger error
    assert projnorm["spearman"] == pytest.approx(-1.0) and projnorm["direction"] == -1 and np.isnan(projnorm["mae"])
    assert projnorm["lift10"] > 0.1 and projnorm["top10_ood_accuracy"] == pytest.approx(np.sort(truth)[-10:].mean())


def test_probe_map_is_decreasing_frozen_and_reproduces_isotonic_regression():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    probe = rng.uniform(0, 1, 60)
    accuracy = 0.9 - 0.3 * probe + 0.03 * rng.normal(size=60)
    probe_map = fit_probe_map(probe, accuracy, "pop")
    assert np.all(np.diff(probe_map["y"]) <= 0) and np.all(np.diff(probe_map["x"]) >= 0)
    new = np.concatenate([rng.uniform(-0.5, 1.5, 50), [-10.0, 10.0]])  # beyond the breakpoints: clipped
    reference = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(probe, accuracy).predict(new)
    assert apply_probe_map(probe_map, new) == pytest.approx(reference)
    assert apply_probe_map(probe_map, [10.0])[0] == pytest.approx(min(probe_map["y"]))


def test_table_scores_a_perfect_and_a_useless_estimator():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.5, 0.9, 40)
    merged = pd.DataFrame({
        "model_index": range(40), "ood_accuracy": truth,
        "ac": truth + 0.1,  # perfect ranking, biased by 0.1
        "agreement": rng.uniform(0.5, 0.9, 40),  # unrelated
        "test_accuracy": np.full(40, 0.98) - 1e-3 * rng.random(40),
        PROBE: -truth,  # perfect in reverse
    })
    table = baseline_table(merged, fit_probe_map(-truth, truth, "here"), "in-sample", n_bootstrap=200,
                           n_permutations=500).set_index("method")
    ac = table.loc["AC (Hendrycks & Gimpel 2017)"]
    assert ac["spearman"] == pytest.approx(1.0) and ac["mae"] == pytest.approx(0.1)
    assert ac["top10_ood_accuracy"] == pytest.approx(np.sort(truth)[-10:].mean()) and ac["lift10_p"] < 0.01
    agreement = table.loc["agreement (Jiang et al. 2022, Baek et al. 2022)"]
    assert agreement["spearman_low"] < 0 < agreement["spearman_high"]
    probe = table.loc["probe_mid_bulk_shift (frozen protocol)"]
    assert probe["spearman"] == pytest.approx(-1.0) and probe["direction"] == -1 and probe["lift10"] > 0.1
    assert probe["mae"] == pytest.approx(0.0, abs=1e-12) and probe["mae_scope"] == "in-sample"
    assert table.loc["clean test accuracy", "mae"] == pytest.approx(np.mean(np.abs(merged["test_accuracy"] - truth)))
    assert "nuclear norm (Deng et al. 2023)" not in table.index  # a method without a column gets no row
    merged["sharp"] = 2 - truth  # a clean-data measure without a direction of its own: its sign is read in sample
    sharp = baseline_table(merged, extra={"sharp": "sharpness"}, n_bootstrap=50, n_permutations=200).set_index("method")
    assert sharp.loc["sharpness", "spearman"] == pytest.approx(-1.0) and sharp.loc["sharpness", "direction"] == -1
    assert sharp.loc["sharpness", "direction_source"] == "in-sample sign" and np.isnan(sharp.loc["sharpness", "mae"])
    assert sharp.loc["sharpness", "top10_ood_accuracy"] == pytest.approx(np.sort(truth)[-10:].mean())
    merged["atc_mc"] = 1.0  # every network right on the whole source set: a constant estimate ranks nothing
    atc = baseline_table(merged, n_bootstrap=50, n_permutations=50).set_index("method").loc["ATC-MC (Garg et al. 2022)"]
    assert np.isnan(atc["spearman"]) and np.isnan(atc["lift10"]) and atc["mae"] == pytest.approx(np.mean(1 - truth))


@pytest.fixture(scope="module")
def smoke_population(tmp_path_factory):
    from ssh_ood.interpret.diagnostics import diagnose_population
    from ssh_ood.ood.population import run_population

    root = tmp_path_factory.mktemp("baselines")
    run_population(PopulationSettings(get_preset("smoke"), 0, root / "population", model_indices=range(4), data_dir=root / "data", progress=False))
    diagnose_population(root / "population", root / "data", progress=False)
    return root / "population"


def test_baselines_command_writes_the_table_and_a_frozen_map(smoke_population, tmp_path, capsys):
    from ssh_ood.base.file_records import read_record
    from ssh_ood.commands.cli import main

    probe_map = tmp_path / "map.json"
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--threads", "1",
                 "--probe-map", str(probe_map)]) == 0
    out = capsys.readouterr().out
    assert "ATC-MC" in out and f"wrote {smoke_population / BASELINES_FILE}" in out and probe_map.is_file()
    table = pd.read_csv(smoke_population / BASELINES_FILE)
    assert table.loc[table["method"].str.startswith("probe"), "mae_scope"].item().startswith("in-sample")
    measures = table[table["family"] == "clean-data measure"]
    assert len(table) == 11 + len(measures) and "path norm (Jiang et al. 2020)" in set(measures["method"])
    assert "COT (Lu et al. 2023)" in set(table["method"]) and "ProjNorm (Yu et al. 2022)" not in set(table["method"])
    assert (measures["direction_source"] == "in-sample sign").all() and measures["mae"].isna().all()
    estimates = pd.read_csv(smoke_population / ESTIMATES_FILE)
    assert len(estimates) == 4 and estimates["unlabeled_seed"].eq(2021).all() and "path_norm" in estimates
    assert estimates[["ac", "doc", "atc_mc", "atc_ne", "agreement"]].apply(lambda c: c.between(-1, 2)).all().all()
    assert estimates["cot"].between(0, 1).all()
    assert {BASELINES_FILE, ESTIMATES_FILE} <= set(read_record(smoke_population)["files"])
    # the same frozen map scored on a population it was not fit on is labelled out of sample
    moved = tmp_path / "map_elsewhere.json"
    moved.write_text(probe_map.read_text().replace(str(smoke_population), str(tmp_path / "other")))
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--probe-map", str(moved),
                 "--unlabeled-seed", "7", "--threads", "1", "--projnorm", "--projnorm-steps", "2",
                 "--projnorm-seed", "1"]) == 0
    table = pd.read_csv(smoke_population / BASELINES_FILE)
    assert table.loc[table["method"].str.startswith("probe"), "mae_scope"].item().startswith("out-of-sample")
    estimates = pd.read_csv(smoke_population / ESTIMATES_FILE)
    assert estimates["unlabeled_seed"].eq(7).all()
    # --projnorm adds ProjNorm, a score ranked with its paper's sign (a larger norm predicts a larger error)
    projnorm = table.set_index("method").loc["ProjNorm (Yu et al. 2022)"]
    assert projnorm["direction"] == -1 and np.isnan(projnorm["mae"]) and projnorm["family"] == "unlabeled OOD chains"
    assert (estimates["projnorm"] > 0).all() and (estimates["projnorm_seconds"] > 0).all()
    assert estimates["projnorm_steps"].eq(2).all() and estimates["projnorm_seed"].eq(1).all()
    # without --probe-map the map is fit here and recorded with the folder's files: a changed map is refused
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--threads", "1"]) == 0
    assert PROBE_MAP_FILE in read_record(smoke_population)["files"]
    capsys.readouterr()
    path = smoke_population / PROBE_MAP_FILE
    path.write_text(path.read_text().replace('"n": 4', '"n": 5'))
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--threads", "1",
                 "--probe-map", str(path)]) == 2
    assert PROBE_MAP_FILE in capsys.readouterr().err
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--threads", "0"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err
    assert main(["predict", "--population", str(smoke_population), "--baselines", "--projnorm", "--projnorm-steps",
                 "0"]) == 2
    assert "--projnorm-steps must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses a negative seed like every other seed option
        main(["predict", "--population", str(smoke_population), "--baselines", "--unlabeled-seed", "-1"])


def test_the_report_quotes_the_table(tmp_path):
    from ssh_ood.figures.findings import findings_markdown, key_numbers_markdown

    rng = np.random.default_rng(5)
    truth = rng.uniform(0.5, 0.9, 30)
    merged = pd.DataFrame({"model_index": range(30), "ood_accuracy": truth, "ac": 1.2 - truth,
                           "agreement": truth + 0.05, PROBE: -truth, "ei": truth ** 2, "norm": rng.random(30)})
    table = baseline_table(merged, fit_probe_map(-truth, truth, "here"), "in-sample", {"ei": "EI", "norm": "a norm"},
                           n_bootstrap=50, n_permutations=50)
    table.to_csv(tmp_path / BASELINES_FILE, index=False)
    pd.DataFrame({"model_index": range(30), "model_seed": 0, "test_accuracy": 0.97, "ood_accuracy": truth,
                  "mae": 1 - truth, "rmse": 1 - truth}).to_csv(tmp_path / ESTIMATES_FILE, index=False)
    pd.DataFrame({"model_index": range(30), "test_accuracy": 0.97, "ood_accuracy": truth, "mae": 1 - truth,
                  "rmse": 1 - truth}).to_csv(tmp_path / "stats.csv", index=False)
    rows = key_numbers_markdown(tmp_path)
    # AC has the largest |rho| (-1, reversed) and agreement the smallest error (0.05)
    assert "largest absolute Spearman (AC (Hendrycks & Gimpel 2017)) | -1.000 / -1.000 |" in rows
    assert "closest label-free estimator (agreement (Jiang et al. 2022, Baek et al. 2022)) | 0.000 / 0.050 |" in rows
    text = findings_markdown(tmp_path)
    assert "the probe's Spearman with OOD accuracy is -1.00" in text and "MAE ranges from 0.05 (agreement" in text
    assert "the strongest clean-data generalization measure is EI at +1.00" in text
