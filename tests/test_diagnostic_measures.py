"""The measures behind the clean-data diagnostics (ssh_ood.interpret.diagnostics) against independent references:
the first convolution's geometry read off torch, numpy's correlation and SVD, and small hand-worked examples.

Fast (no training, no data files): with the hand-built networks of tests/test_diagnostics.py these are the tests
``make mutation`` runs for the diagnostics.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssh_ood.interpret.cam_utils import (
    EDGE_STATE_REGION,
    EdgeStateRegion,
    map_score,
    raw_class_activation_maps,
    upsample_maps,
)
from ssh_ood.interpret.diagnostics import (
    COLUMNS,
    DIAGNOSTIC_W,
    PCA_LAYERS,
    TRAINING_COLUMNS,
    ZERO_MODE_REGION,
    CleanData,
    _rms_radius,
    cam_diagnostics,
    feature_centre,
    feature_grid_mask,
    feature_grid_score,
    network_diagnostics,
    pca_diagnostics,
    pixel_correlation,
    resized_feature_centre,
    sensitivity_diagnostics,
)
from ssh_ood.physics.data_generation import generate_dataset
from ssh_ood.physics.interventions import PROBES, insert_localized_density


# ---------------------------------------------------------------------------------------------- feature grid
def receptive_field_centres(size: int = 50) -> np.ndarray:
    """For each output position of the first convolution's geometry (kernel 4, stride 2, padding 2), the mean of
    the input pixels it reads, found by pooling one-hot inputs."""
    reads = F.avg_pool2d(torch.eye(size)[:, None, None, :], 4, 2, 2)[:, 0, 0, :].numpy() > 0  # (input, output)
    return np.array([np.flatnonzero(reads[:, p]).mean() for p in range(reads.shape[1])])


def test_a_feature_position_is_centred_where_the_first_convolution_reads():
    centres = receptive_field_centres()
    inner = np.arange(1, centres.size - 1)  # the end positions read a clipped window
    np.testing.assert_array_equal(feature_centre(inner), centres[inner])
    assert feature_centre(3).dtype == np.float64 and feature_centre(np.array([0, 25])).tolist() == [-0.5, 49.5]
    assert feature_centre(np.array([1, 2], dtype=np.float32)).dtype == np.float64  # double precision


@pytest.mark.parametrize(("feature_size", "size"), [(26, 50), (13, 25), (8, 40)])
def test_a_resized_feature_lands_where_bilinear_resizing_puts_its_source_position(feature_size, size):
    # resize a ramp f(q) = q of the feature positions: inside the grid, linear interpolation reproduces it, so the
    # output reads the source position each output pixel comes from; feature p lands where that equals p
    ramp = torch.arange(feature_size, dtype=torch.float64)[None, None, None, :]
    source = F.interpolate(ramp, size=(1, size), mode="bilinear", align_corners=False)[0, 0, 0].numpy()
    inner = np.arange(1, feature_size - 1)
    landing = np.interp(inner, source, np.arange(size, dtype=np.float64))
    if (feature_size, size) == (26, 50):
        np.testing.assert_allclose(resized_feature_centre(inner), landing, atol=1e-9)
    np.testing.assert_allclose(resized_feature_centre(inner, feature_size, size), landing, atol=1e-9)
    assert resized_feature_centre(np.array([1, 2])).dtype == np.float64
    assert resized_feature_centre(np.array([1, 2], dtype=np.float32)).dtype == np.float64  # double precision


def test_the_feature_grid_mask_holds_the_positions_centred_in_the_widened_bands():
    # centres 2p - 0.5: band (4, 7) widened to [3.5, 7.5] holds p = 2, 3, 4 (both edges included)
    region = EdgeStateRegion(columns=(4, 7), row_bands=((0, 2), (4, 7)))
    mask = feature_grid_mask(region, feature_size=10)
    assert mask.shape == (10, 10) and mask.dtype == bool
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    assert rows.tolist() == [0, 1, 2, 3, 4] and columns.tolist() == [2, 3, 4]  # [-0.5, 2.5]: p = 0, 1
    assert np.array_equal(mask, np.outer(mask.any(axis=1), mask.any(axis=0)))
    # band (3, 6) widened to [2.5, 6.5] holds the centres 3.5 and 5.5 only, not 1.5 nor 7.5
    odd = feature_grid_mask(EdgeStateRegion(columns=(3, 6), row_bands=((3, 6),)), feature_size=10)
    assert np.flatnonzero(odd.any(axis=0)).tolist() == [2, 3] == np.flatnonzero(odd.any(axis=1)).tolist()
    default = feature_grid_mask()
    assert default.shape == (26, 26) and np.array_equal(default, feature_grid_mask(EDGE_STATE_REGION, 26))


def reference_grid_score(single_map: np.ndarray, mask: np.ndarray) -> float:
    excess = np.maximum(single_map - single_map.mean(), 0.0)
    return excess[mask].sum() / excess.sum() if excess.sum() > 0 else 0.0


def test_the_feature_grid_score_is_the_share_of_the_excess_inside_the_region():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 3, 26, 26)).astype(np.float32)
    scores = feature_grid_score(maps)
    assert scores.shape == (2, 3) and scores.dtype == np.float64
    mask = feature_grid_mask()
    for index in np.ndindex(2, 3):
        assert scores[index] == pytest.approx(reference_grid_score(maps[index].astype(np.float64), mask), rel=1e-12)
    # another region and grid size
    region = EdgeStateRegion(columns=(4, 7), row_bands=((0, 2),))
    small = rng.normal(size=(13, 13))
    assert feature_grid_score(small, region) == pytest.approx(reference_grid_score(small, feature_grid_mask(region, 13)))
    # a share: the same for the map scaled by any a > 0, however small its excess
    np.testing.assert_allclose(feature_grid_score(1e-4 * maps.astype(np.float64)), scores, rtol=1e-12)
    # a constant map has no excess (and no 0 / 0 is computed); all of it inside or outside
    with np.errstate(all="raise"):
        assert feature_grid_score(np.full((26, 26), 3.0)) == 0.0
    inside = np.where(mask, 1.0, 0.0)
    assert feature_grid_score(inside) == 1.0 and feature_grid_score(1.0 - inside) == 0.0


def test_pixel_correlation_is_pearsons_r_over_the_pixels():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(4, 5, 5)).astype(np.float32)
    images = (0.7 * maps + rng.normal(size=(4, 5, 5))).astype(np.float32)
    images[3] = -2 * maps[3] + 1  # perfectly anticorrelated
    r = pixel_correlation(maps, images)
    expected = [np.corrcoef(maps[s].astype(np.float64).ravel(), images[s].astype(np.float64).ravel())[0, 1]
                for s in range(4)]
    np.testing.assert_allclose(r, expected, rtol=1e-10)
    assert r[3] == pytest.approx(-1.0) and r.dtype == np.float64
    constant = np.ones((2, 5, 5))
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(pixel_correlation(np.stack([maps[0], constant[0]]), np.stack([constant[0], maps[0]])),
                                      [0.0, 0.0])


def test_the_rms_radius_is_the_root_mean_square_distance_to_the_centroid():
    assert _rms_radius(np.array([[1.0, 0.0], [-1.0, 0.0]]) + 5) == pytest.approx(1.0)
    points = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])  # centroid (3/4, ...)
    assert _rms_radius(points) == pytest.approx(np.sqrt((3 * 0.75**2 * 1 + 3 * (2.25**2 + 2 * 0.75**2)) / 4))
    assert isinstance(_rms_radius(points), float)


# ---------------------------------------------------------------------------------------------- PCA family
def plane(clean: np.ndarray):
    """Projection onto the clean cloud's principal plane (numpy SVD; at most two axes)."""
    mean = clean.mean(axis=0)
    _, _, vt = np.linalg.svd(clean - mean, full_matrices=False)
    axes = vt[: min(2, *clean.shape)]
    return lambda x: (x - mean) @ axes.T


def reference_pca(activations, labels):
    out = {}
    for layer in PCA_LAYERS:
        project = plane(activations[0.0][layer])
        clean = project(activations[0.0][layer])
        radius = np.sqrt(np.mean(np.sum((clean - clean.mean(axis=0)) ** 2, axis=1))) or 1.0
        for W in (0.01, 0.05):
            out[f"pca_drift_{layer}_W{W:g}"] = np.mean(np.linalg.norm(project(activations[W][layer]) - clean, axis=1)) / radius
        classes = [clean[labels == c] for c in (0, 1)]
        within = np.sqrt(np.mean([np.mean(np.sum((k - k.mean(axis=0)) ** 2, axis=1)) for k in classes])) or 1.0
        out[f"pca_separation_{layer}"] = np.linalg.norm(classes[1].mean(axis=0) - classes[0].mean(axis=0)) / within
    return out


def test_pca_drift_and_separation_are_measured_in_the_clean_principal_plane():
    rng = np.random.default_rng(2)
    n, labels = 60, np.array([0, 1] * 30)
    # unequal spreads, so that the plane is the exact top two axes: conv1 600 features (as wide as a layer, where
    # an approximate randomized SVD would not find the plane exactly), block1 2, block2 1, gap 3
    dims = {"conv1": 600, "block1": 2, "block2": 1, "gap": 3}
    clean = {layer: rng.normal(size=(n, d)) * np.linspace(3.0, 0.2, d) + 2.0 * labels[:, None]
             for layer, d in dims.items()}
    activations = {0.0: clean}
    for W in (0.01, 0.05):
        activations[W] = {layer: x + 10 * W * rng.normal(size=x.shape) for layer, x in clean.items()}
    values = pca_diagnostics(activations, labels)
    expected = reference_pca(activations, labels)
    assert set(values) == set(expected)
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-9), key
        assert isinstance(values[key], float)


def test_a_cloud_without_spread_is_measured_in_activation_units():
    # every clean sample of a class at one point: the within-class radius is 0, so the separation is the
    # centroid distance itself; a clean cloud that is one point: the drift is the mean distance itself
    labels = np.array([0, 0, 1, 1])
    separated = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])
    point = np.ones((4, 2))
    moved = point + np.array([[0.3, 0.4], [0.0, 0.0], [0.6, 0.8], [0.0, 0.0]])  # distances 0.5, 0, 1, 0
    clean = {"conv1": separated, "block1": point, "block2": separated, "gap": separated}
    activations = {0.0: clean, 0.01: {**clean, "block1": moved}, 0.05: clean}
    values = pca_diagnostics(activations, labels)
    assert values["pca_separation_conv1"] == pytest.approx(5.0)
    assert values["pca_drift_block1_W0.01"] == pytest.approx(0.375)
    assert values["pca_drift_conv1_W0.05"] == 0.0


# ---------------------------------------------------------------------------------------------- sensitivity
def test_sensitivity_is_read_off_the_logit_differences_by_hand():
    labels = np.array([1, 1, 0, 0, 1])
    base = np.array([[0.5, 0.0], [1.0, 1.0], [2.0, 0.0], [-1.0, -3.0], [3.0, 1.0]])  # class-0 logits not zero
    delta = {0.0: [1.0, 2.0, -2.0, 0.0, -1.0], 0.01: [1.0, 2.0, -2.0, 1.0, 1.0], 0.05: [-1.0, 2.0, 1.0, 0.0, -1.0]}
    logits = {W: np.column_stack([base[:, 0], base[:, 0] + np.array(d)]) for W, d in delta.items()}
    values = sensitivity_diagnostics(logits, labels)
    # predictions delta > 0 (a delta of 0 is trivial): W0 right on samples 0, 1, 2, 3; W0.01 on 0, 1, 2, 4;
    # W0.05 on 1, 3
    assert values["accuracy_W0"] == pytest.approx(0.8) and values["accuracy_W0.01"] == pytest.approx(0.8)
    assert values["accuracy_W0.05"] == pytest.approx(0.4)
    assert values["flip_W0.05"] == pytest.approx(0.4)  # samples 0 and 2 change sides
    scale = np.sqrt(np.mean((np.array(delta[0.0]) - 0.0) ** 2))  # mean delta_0 is 0: std = sqrt(10 / 5)
    assert values["logit_scale"] == pytest.approx(np.sqrt(2.0)) == pytest.approx(scale)
    assert values["logit_shift_W0.05"] == pytest.approx((2 + 0 + 3 + 0 + 0) / 5 / np.sqrt(2.0))
    # signed margins delta (2 y - 1): 1, 2, 2, 0, -1 -> sorted -1, 0, 1, 2, 2: median 1, 10 % quantile -0.6
    assert values["margin_median"] == pytest.approx(1.0)
    assert values["margin_q10"] == pytest.approx(-0.6)
    assert set(values) == {"accuracy_W0", "accuracy_W0.01", "accuracy_W0.05", "flip_W0.05", "logit_shift_W0.05",
                           "logit_scale", "margin_median", "margin_q10"}
    assert all(type(value) is float for value in values.values())
    # the shift is in units of the spread: logits ten times smaller (spread below 1) give the same shift
    small = sensitivity_diagnostics({W: 0.1 * values_ for W, values_ in logits.items()}, labels)
    assert small["logit_scale"] == pytest.approx(0.1 * np.sqrt(2.0))
    assert small["logit_shift_W0.05"] == pytest.approx(values["logit_shift_W0.05"])


def test_a_network_with_constant_logits_has_no_logit_shift():
    labels = np.array([0, 1, 1])
    logits = {W: np.tile([[1.0, 1.0 + W]], (3, 1)) for W in DIAGNOSTIC_W}
    values = sensitivity_diagnostics(logits, labels)
    assert values["logit_scale"] == 0.0 and values["logit_shift_W0.05"] == 0.0
    assert values["accuracy_W0"] == pytest.approx(1 / 3) and values["accuracy_W0.05"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------- one network
class TwoViewNet(nn.Module):
    """A GAP-linear network laid out like CNN_SSH with two feature channels: the 4 x 4 average pool (stride 2,
    padding 2) of the input seen through two masks of the 26 x 26 grid, and class weights that make
    cam_1 - cam_0, cam_1 + cam_0 and either class map differ in shape."""

    in_channels = 1

    def __init__(self, masks: np.ndarray, weight: list[list[float]], bias: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.cnn_layers_1 = nn.Sequential(nn.AvgPool2d(4, 2, 2))
        self.cnn_layers_2 = _Masks(masks)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.linear_layers = nn.Sequential(nn.Linear(2, 2))
        with torch.no_grad():
            self.linear_layers[0].weight.copy_(torch.tensor(weight))
            self.linear_layers[0].bias.copy_(torch.tensor(bias))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn_layers_2(self.cnn_layers_1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layers(self.avg_pool(self.features(x)).flatten(1))


class _Masks(nn.Module):
    def __init__(self, masks: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("masks", torch.as_tensor(masks, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.masks  # (B, 1, 26, 26) * (2, 26, 26) -> (B, 2, 26, 26)


def two_view_net(bias=(0.0, 0.0)) -> TwoViewNet:
    ends = feature_grid_mask()
    rest = np.zeros((26, 26), dtype=bool)
    rest[6:20, 3:23] = True
    return TwoViewNet(np.stack([ends, rest]), [[1.0, 3.0], [2.0, -1.0]], bias)


@pytest.fixture(scope="module")
def clean_sets() -> CleanData:
    sets = {}
    for W in DIAGNOSTIC_W:
        data = generate_dataset("test", 16, W, seed=6)
        sets[W] = {"X": data["X"], "labels": data["labels"], "v": data["v"]}
    return CleanData(sets)


def test_the_cam_family_is_the_documented_share_of_each_map(clean_sets):
    X = clean_sets.clean["X"][clean_sets.clean["labels"] == 1]
    net = two_view_net()
    values = cam_diagnostics(net, X)
    raw = raw_class_activation_maps(net, X).astype(np.float64)
    topological = upsample_maps(raw[:, 1])
    zero_modes = np.zeros_like(X)
    zero_modes[:, :, 24:26] = X[:, :, 24:26]  # the mid-gap columns of 25 cells
    correlation = np.mean([np.corrcoef(topological[s].ravel(), zero_modes[s].astype(np.float64).ravel())[0, 1]
                           for s in range(len(X))])
    expected = {
        "cam_score": map_score(topological).mean(),
        "cam_zero_mode_score": map_score(topological, ZERO_MODE_REGION).mean(),
        "cam_feature_grid_score": np.mean([reference_grid_score(m, feature_grid_mask()) for m in raw[:, 1]]),
        "cam_difference_score": map_score(upsample_maps(raw[:, 1] - raw[:, 0])).mean(),
        "cam_zero_mode_correlation": correlation,
    }
    assert set(values) == set(expected)
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
        assert type(values[key]) is float
    # the maps differ: each family member reads the map it names
    assert len({round(values[key], 6) for key in ("cam_score", "cam_zero_mode_score", "cam_difference_score")}) == 3
    assert values["cam_difference_score"] != pytest.approx(map_score(upsample_maps(raw[:, 1] + raw[:, 0])).mean(), abs=1e-3)


def test_a_network_gets_every_column_but_the_index_and_its_training_record(clean_sets):
    net = two_view_net(bias=(0.0, -0.2))
    values = network_diagnostics(net, clean_sets, batch_size=7)
    assert set(values) == set(COLUMNS) - {"model_index", *TRAINING_COLUMNS}
    clean = clean_sets.clean
    labels = clean["labels"]
    assert values == pytest.approx({**values, **cam_diagnostics(net, clean["X"][labels == 1])}, rel=1e-6)
    forward = _logits(net)
    delta = {W: forward(s["X"])[:, 1] - forward(s["X"])[:, 0] for W, s in clean_sets.sets.items()}
    assert values["accuracy_W0"] == pytest.approx(np.mean((delta[0.0] > 0) == (labels == 1)))
    assert values["logit_scale"] == pytest.approx(np.std(delta[0.0]), rel=1e-5)
    trivial = clean["X"][labels == 0]
    gain = forward(insert_localized_density(trivial, "end", "zero")) - forward(trivial)
    assert values["probe_end_zero_shift"] == pytest.approx(np.mean(gain[:, 1] - gain[:, 0]) / np.std(delta[0.0]), rel=1e-4)


def _logits(net):
    def forward(images):
        with torch.no_grad():
            return net(torch.as_tensor(np.asarray(images), dtype=torch.float32)[:, None]).numpy().astype(np.float64)
    return forward


def test_a_network_blind_to_the_clean_images_measures_its_probes_in_logit_units():
    # every clean image the same: delta has no spread (scale 0), so the probe shifts are plain logit differences
    image = np.full((50, 50), 0.02, dtype=np.float32)
    sets = {W: {"X": np.stack([image] * 4), "labels": np.array([0, 1, 0, 1]), "v": np.array([1.5, 0.5, 1.6, 0.4])}
            for W in DIAGNOSTIC_W}
    net = two_view_net()
    with np.errstate(all="ignore"):
        values = network_diagnostics(net, CleanData(sets))
    assert values["logit_scale"] == 0.0 and values["logit_shift_W0.05"] == 0.0
    forward = _logits(net)
    for name in PROBES[1:]:
        where, columns = name.split("_")
        after = forward(insert_localized_density(np.stack([image] * 2), where, columns))
        before = forward(np.stack([image] * 2))
        expected = np.mean((after[:, 1] - after[:, 0]) - (before[:, 1] - before[:, 0]))
        assert values[f"probe_{name}_shift"] == pytest.approx(expected, rel=1e-4, abs=1e-7), name
    assert values["probe_end_zero_shift"] != 0.0
