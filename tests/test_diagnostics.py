"""Clean-data diagnostics (ssh_ood.interpret.diagnostics, ssh_ood.physics.interventions): known answers, no OOD data, determinism."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssh_ood.base.presets import get_preset
from ssh_ood.interpret import diagnostics as diag
from ssh_ood.interpret.cam_utils import EDGE_STATE_REGION, upsample_maps
from ssh_ood.interpret.diagnostics import (
    DIAGNOSTIC_W,
    DIAGNOSTICS_FILE,
    CleanData,
    clean_split,
    diagnose_population,
    feature_centre,
    feature_grid_mask,
    load_diagnostics,
    network_diagnostics,
    resized_feature_centre,
)
from ssh_ood.ood.population import run_population
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.physics.data_generation import generate_dataset
from ssh_ood.physics.interventions import (
    bulk_columns,
    insert_localized_density,
    localized_density,
    mid_gap_columns,
    probe_responses,
    remove_zero_modes,
)


# ----------------------------------------------------------------------------------------------
# hand-built GAP-linear networks with known answers
# ----------------------------------------------------------------------------------------------
class AveragePool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=4, stride=2, padding=2)


class Mask(nn.Module):
    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class MaskedDensityNet(nn.Module):
    """A GAP-linear network laid out like CNN_SSH that sees only the pixels under ``mask`` (26 x 26 grid).

    features = mask * (4 x 4 average pool, stride 2, padding 2, the geometry of CNN_SSH's first convolution),
    so feature p is centred on input pixel 2p - 0.5; logit_1 - logit_0 = 2 a mean(features) - 2 b.
    """

    in_channels = 1

    def __init__(self, mask: np.ndarray, a: float = 50.0, b: float = 0.0) -> None:
        super().__init__()
        self.cnn_layers_1 = nn.Sequential(AveragePool())
        self.cnn_layers_2 = Mask(mask)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.linear_layers = nn.Sequential(nn.Linear(1, 2))
        with torch.no_grad():
            self.linear_layers[0].weight.copy_(torch.tensor([[-a], [a]]))
            self.linear_layers[0].bias.copy_(torch.tensor([b, -b]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn_layers_2(self.cnn_layers_1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layers(self.avg_pool(self.features(x)).flatten(1))


def logits_of(model: nn.Module):
    def forward(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None]).numpy()

    return forward


@pytest.fixture(scope="module")
def clean_data() -> CleanData:
    sets = {}
    for W in DIAGNOSTIC_W:
        data = generate_dataset("test", 60, W, seed=4)
        sets[W] = {"X": data["X"], "labels": data["labels"], "v": data["v"]}
    return CleanData(sets)


def end_mask() -> np.ndarray:
    return feature_grid_mask(EDGE_STATE_REGION)


def bulk_mask() -> np.ndarray:
    mask = np.zeros((26, 26), dtype=bool)
    mask[8:18, :10] = True
    mask[8:18, 16:] = True
    return mask


def balanced(mask: np.ndarray, data: CleanData) -> MaskedDensityNet:
    """The masked net with its bias halfway between the classes' mean evidence (so it classifies)."""
    net = MaskedDensityNet(mask)
    clean = data.clean
    evidence = logits_of(net)(clean["X"])
    delta = evidence[:, 1] - evidence[:, 0]
    middle = 0.5 * (delta[clean["labels"] == 1].mean() + delta[clean["labels"] == 0].mean())
    return MaskedDensityNet(mask, b=float(middle) / 2)


def test_feature_grid_registration():
    # the first convolution (k4, s2, p2): feature p covers input pixels 2p-2 .. 2p+1, centre 2p - 0.5
    x = torch.zeros(1, 1, 50, 50)
    x[0, 0, 49, 25] = 1.0
    pooled = F.avg_pool2d(x, 4, 2, 2)[0, 0].numpy()
    rows, cols = np.nonzero(pooled)
    assert set(rows) == {24, 25} and set(cols) == {12, 13}
    assert np.all(np.abs(feature_centre(rows) - 49) <= 1.5) and np.all(np.abs(feature_centre(cols) - 25) <= 1.5)
    # bilinear resizing (align_corners=False) of a one-hot feature peaks where resized_feature_centre says
    for p in (0, 12, 25):
        one_hot = np.zeros((26, 26), dtype=np.float32)
        one_hot[p, p] = 1.0
        peak = np.unravel_index(np.argmax(upsample_maps(one_hot)), (50, 50))[0]
        assert abs(peak - resized_feature_centre(p)) <= 0.5
    assert resized_feature_centre(0) - feature_centre(0) == pytest.approx(0.9615, abs=1e-3)  # ~1 px inwards
    mask = end_mask()
    assert mask.sum() == 10 * 6 and np.array_equal(mask, mask[::-1, ::-1])  # chain inversion + chiral mirror
    assert np.array_equal(np.flatnonzero(mask.any(axis=1)), [0, 1, 2, 3, 4, 21, 22, 23, 24, 25])


def test_localized_density_is_a_zero_mode_profile():
    end = localized_density(50, "end", decay=0.5)
    assert end.sum() == pytest.approx(1.0)
    assert end[0] == pytest.approx((1 - 0.25) / 2, rel=1e-6) and end[49] == pytest.approx(end[0])
    assert end[1] == 0 and end[2] == pytest.approx(end[0] * 0.25)  # one sublattice, decay r^2 per cell
    mid = localized_density(50, "mid", decay=0.5)
    assert np.sort(mid).tolist() == pytest.approx(np.sort(end).tolist())  # same profile, other place
    assert mid.argmax() in (24, 25)
    with pytest.raises(ValueError, match="decay"):
        localized_density(50, "end", decay=1.0)
    assert mid_gap_columns(50) == (24, 25) and bulk_columns(50) == (12, 37)


def test_interventions_edit_only_their_columns(clean_data):
    X = clean_data.clean["X"][:5]
    removed = remove_zero_modes(X)
    np.testing.assert_array_equal(removed[:, :, 24], X[:, :, 23])
    np.testing.assert_array_equal(np.delete(removed, [24, 25], axis=2), np.delete(X, [24, 25], axis=2))
    inserted = insert_localized_density(X, "mid", "bulk")
    np.testing.assert_array_equal(np.delete(inserted, [12, 37], axis=2), np.delete(X, [12, 37], axis=2))
    assert inserted[:, :, 12].sum(axis=1) == pytest.approx(np.ones(5))


def test_end_looking_network_gets_the_answers_its_construction_implies(clean_data):
    net = balanced(end_mask(), clean_data)
    values = network_diagnostics(net, clean_data)
    # its topological CAM lives only in the edge-state region of the feature grid
    assert values["cam_feature_grid_score"] == pytest.approx(1.0)
    assert values["cam_score"] > 0.6 > EDGE_STATE_REGION.area_fraction
    # deleting the edge states removes its evidence; putting them at the ends adds it
    assert values["probe_remove_zero_modes_shift"] < -0.5 and values["probe_remove_zero_modes_flip"] > 0.3
    assert values["probe_end_zero_shift"] > 0.5
    # it cannot see bulk columns 12 and 37: those insertions change nothing, exactly
    assert values["probe_end_bulk_shift"] == 0.0 and values["probe_mid_bulk_shift"] == 0.0
    assert values["probe_end_bulk_flip"] == 0.0 and values["probe_mid_bulk_flip"] == 0.0


def test_bulk_looking_network_gets_the_answers_its_construction_implies(clean_data):
    net = balanced(bulk_mask(), clean_data)
    values = network_diagnostics(net, clean_data)
    assert values["cam_feature_grid_score"] == 0.0 and values["cam_score"] == 0.0
    # the mid-gap columns are outside its view: removing or inserting there changes nothing
    for probe in ("remove_zero_modes", "end_zero", "mid_zero"):
        assert values[f"probe_{probe}_shift"] == 0.0 and values[f"probe_{probe}_flip"] == 0.0, probe
    # a localized density in its bulk columns, mid-chain, raises its evidence
    assert values["probe_mid_bulk_shift"] > 0.1


def test_probe_shift_is_the_mean_logit_difference_change(clean_data):
    net = balanced(end_mask(), clean_data)
    clean = clean_data.clean
    forward = logits_of(net)
    responses = probe_responses(forward, clean["X"], clean["labels"], scale=2.0)
    trivial = clean["X"][clean["labels"] == 0]
    before, after = forward(trivial), forward(insert_localized_density(trivial, "end", "zero"))
    expected = np.mean((after[:, 1] - after[:, 0]) - (before[:, 1] - before[:, 0])) / 2.0
    assert responses["end_zero"].shift == pytest.approx(expected)
    with pytest.raises(ValueError, match="scale"):
        probe_responses(forward, clean["X"], clean["labels"], scale=0.0)


def test_clean_split_refuses_out_of_distribution_data(tmp_path):
    for W in (0.15, 0.5, 2.0, float("nan"), -0.01):
        with pytest.raises(ValueError, match="out of distribution"):
            clean_split(tmp_path, W)


@pytest.fixture(scope="module")
def smoke_population(tmp_path_factory):
    root = tmp_path_factory.mktemp("diagnostics")
    run_population(PopulationSettings(get_preset("smoke"), 0, root / "population", data_dir=root / "data", progress=False))
    return root


def test_diagnostics_need_no_out_of_distribution_file(smoke_population, tmp_path):
    """Copies of the population and the datasets without any OOD file give the same table, bitwise."""
    population, data = smoke_population / "population", smoke_population / "data"
    full = pd.read_csv(diagnose_population(population, data, progress=False))
    assert list(full.columns) == list(diag.COLUMNS) and len(full) == 2
    assert np.isfinite(full.drop(columns="model_index").to_numpy(dtype=float)).all()
    bare_population, bare_data = tmp_path / "population", tmp_path / "data"
    shutil.copytree(population, bare_population)
    for path in bare_population.rglob("*"):
        if path.name in ("phase_diagram.npz", "generalization_metrics.json", "stats.csv", "summary.csv"):
            path.unlink()
    bare_data.mkdir()
    for W in DIAGNOSTIC_W:
        shutil.copy(data / f"test_W{W:g}.npz", bare_data)
    for name in ("datasets.json", "files.json"):  # the folder's description and record of its files
        shutil.copy(data / name, bare_data)
    assert not list(bare_population.rglob("phase_diagram.npz")) and len(list(bare_data.glob("*.npz"))) == 3
    bare = pd.read_csv(diagnose_population(bare_population, bare_data, progress=False))
    pd.testing.assert_frame_equal(bare, full)
    # deterministic, and a subset rewrites only its rows
    diagnose_population(bare_population, bare_data, model_indices=[1], progress=False)
    pd.testing.assert_frame_equal(load_diagnostics(bare_population), full)


def test_diagnose_command_and_errors(smoke_population, tmp_path, capsys):
    from ssh_ood.commands.cli import main

    population = smoke_population / "population"
    assert main(["diagnose", "--population", str(population), "--data-dir", str(smoke_population / "data"), "--quiet"]) == 0
    assert "2 models" in capsys.readouterr().out
    assert main(["diagnose", "--population", str(population), "--data-dir", str(smoke_population / "data"),
                 "--models", "1", "--quiet"]) == 0  # one model's row rewritten, the other kept
    assert "2 models" in capsys.readouterr().out
    assert main(["diagnose", "--population", str(population), "--models", "0-99999999999", "--quiet"]) == 2
    assert "beyond" in capsys.readouterr().err
    assert main(["diagnose", "--population", str(tmp_path)]) == 2
    assert "not a population folder" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood diagnose"):
        load_diagnostics(tmp_path)


def test_notebook_08_runs_and_validates_a_frozen_protocol(tmp_path):
    """Notebook 08 headless: a 4-network smoke discovery population, a protocol frozen on it, a 4-network
    seed-1 population validated against it; figures, findings and the validation output appear."""
    from ssh_ood.base.io_utils import save_json
    from ssh_ood.base.notebook_runner import run_notebook
    from ssh_ood.base.paths import REPO_ROOT
    from ssh_ood.interpret.generalization_prediction import make_protocol, merged_table, predictor_table
    from ssh_ood.ood.population_tables import load_population

    folders = {}
    for seed in (0, 1):
        folders[seed] = tmp_path / f"population_{seed}"
        run_population(PopulationSettings(get_preset("smoke"), seed, folders[seed], model_indices=range(4), data_dir=tmp_path / f"data_{seed}",
                       progress=False))
    diagnose_population(folders[0], tmp_path / "data_0", progress=False)
    discovery = merged_table(load_diagnostics(folders[0]), load_population(folders[0]).stats)
    protocol = make_protocol(predictor_table(discovery, n_bootstrap=50, n_permutations=50), str(folders[0]), str(folders[1]))
    save_json(tmp_path / "protocol.json", protocol)
    figures = tmp_path / "figures"
    notebook = run_notebook(REPO_ROOT / "08_predicting_generalization.ipynb", tmp_path / "08_executed.ipynb", {
        "POPULATION_DIR": str(folders[0]), "VALIDATION_DIR": str(folders[1]), "PROTOCOL": str(tmp_path / "protocol.json"),
        "FIGURES_DIR": str(figures), "N_BOOTSTRAP": 50, "PRECISE_BN": True,
    })
    for name in ("Fig_predictors", "Fig_lift_curves", "Fig_probe_images", "Fig_recall_by_band", "Fig_precise_bn",
                 "Fig_protocol_validation", "Fig_baseline_estimates"):
        assert (figures / f"{name}.png").is_file() and (figures / f"{name}.pdf").is_file(), name
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "4 validation networks" in text and not any(o.get("output_type") == "error" for o in outputs)
    assert (folders[1] / DIAGNOSTICS_FILE).is_file() and (folders[0] / "precise_bn.csv").is_file()
    assert "probe_mid_bulk_shift (frozen protocol)" in text and (folders[0] / "probe_ood_map.json").is_file()
    assert "out-of-sample: map frozen on" in (folders[1] / "baselines.csv").read_text()
    assert any("text/markdown" in o.get("data", {}) for o in outputs)  # the findings
    # the same through the command line: freeze on one population, validate on the other, precise BN
    from ssh_ood.commands.cli import main

    assert main(["predict", "--population", str(folders[0]), "--freeze", str(tmp_path / "cli_protocol.json")]) == 0
    assert main(["predict", "--population", str(folders[1]), "--protocol", str(tmp_path / "cli_protocol.json")]) == 0
    assert (folders[1] / "protocol_validation.json").is_file() and (folders[1] / "predictors.csv").is_file()
    assert main(["precise-bn", "--population", str(folders[1]), "--copies", str(tmp_path / "copies"), "--quiet"]) == 0
    assert (folders[1] / "precise_bn_summary.json").is_file()
