"""CAM, Grad-CAM, the CAM quality score and the choice of the highlighted networks (ssh_ood.interpret.cam_utils,
ssh_ood.interpret.highlighted_models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import resize

from ssh_ood.base.file_records import record_existing
from ssh_ood.base.io_utils import load_json
from ssh_ood.interpret.cam_utils import (
    EDGE_STATE_REGION,
    EdgeStateRegion,
    averaged_class_activation_maps,
    cam_score,
    cam_scores_per_sample,
    class_activation_maps,
    grad_cam,
    map_score,
    minmax_normalize,
    raw_class_activation_maps,
    region_share,
    score_correlations,
    toy_model_cam,
    upsample_maps,
)
from ssh_ood.interpret.highlighted_models import (
    CATEGORIES,
    PROVENANCE_FILE,
    SelectionRule,
    categorize,
    discover_models,
    select_highlighted,
    write_highlighted,
)
from ssh_ood.nets.architecture import CNN_SSH
from ssh_ood.ood.generalization_metrics import GeneralizationCut
from ssh_ood.physics.data_generation import observables, sample_hoppings


def random_model(seed: int) -> CNN_SSH:
    """A CNN_SSH with random weights and non-trivial BatchNorm statistics (as after training)."""
    torch.manual_seed(seed)
    model = CNN_SSH()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
        model.linear_layers[0].weight.uniform_(-1.0, 1.0)
    return model


def clean_samples(v_values) -> np.ndarray:
    v_n, w_n = sample_hoppings(np.asarray(v_values, dtype=float), 0.0, np.random.default_rng(0))
    return observables(v_n, w_n).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> CNN_SSH:
    return random_model(1)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return clean_samples(np.linspace(0.05, 1.95, 6))


def test_cam_decomposes_the_logits(model, inputs):
    model.train()
    raw = raw_class_activation_maps(model, inputs)
    assert raw.shape == (6, 2, 26, 26)
    assert model.training, "the caller's train mode must be restored"
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs)[:, None]).numpy()
    model.train()
    bias = model.linear_layers[0].bias.detach().numpy()
    np.testing.assert_allclose(raw.mean(axis=(2, 3)) + bias, logits, atol=1e-5)
    # eval mode: dropout off, so repeated calls agree, and batches do not interact
    np.testing.assert_array_equal(raw, raw_class_activation_maps(model, inputs, batch_size=4))
    np.testing.assert_allclose(raw[2:3], raw_class_activation_maps(model, inputs[2:3]), atol=1e-6)
    assert not model._forward_hooks and not model.cnn_layers_2._forward_hooks


def test_upsampled_maps_are_normalized_bilinear_resizes(model, inputs):
    cams = class_activation_maps(model, inputs, upsample=True)
    assert cams.shape == (6, 2, 50, 50)
    np.testing.assert_allclose(cams.min(axis=(2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(cams.max(axis=(2, 3)), 1.0, atol=1e-6)
    raw = class_activation_maps(model, inputs, upsample=False)
    # an independent bilinear resize (scikit-image, half-pixel centres) of the raw map, then min-max
    reference = resize(raw[3, 1].astype(np.float64), (50, 50), order=1, mode="edge", anti_aliasing=False)
    reference = (reference - reference.min()) / (reference.max() - reference.min())
    np.testing.assert_allclose(cams[3, 1], reference, atol=1e-4)
    assert np.all(minmax_normalize(np.full((3, 3), 2.0)) == 0)


def test_grad_cam_is_cam_over_feature_area(model, inputs):
    """d logit_c / d A_k(i, j) = W[c, k] / 676, so Grad-CAM = CAM / 676 before the ReLU."""
    raw = raw_class_activation_maps(model, inputs)
    no_relu = grad_cam(model, inputs, relu_attributions=False)
    np.testing.assert_allclose(no_relu * 26 * 26, raw, atol=1e-5)
    with_relu = grad_cam(model, inputs)
    np.testing.assert_allclose(with_relu * 26 * 26, np.clip(raw, 0, None), atol=1e-5)
    assert (raw < 0).any() and (raw > 0).any(), "the test needs maps of both signs"
    assert grad_cam(model, inputs, upsample=True).shape == (6, 2, 50, 50)
    assert not model.cnn_layers_2._forward_hooks and not model.cnn_layers_2._backward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_region_is_symmetric_and_holds_the_edge_states():
    mask = EDGE_STATE_REGION.mask()
    assert mask.shape == (50, 50) and mask.sum() == 160
    np.testing.assert_array_equal(mask, mask[:, ::-1])  # chiral mirror i -> 49 - i
    np.testing.assert_array_equal(mask, mask[::-1, :])  # chain inversion j -> 49 - j
    X = clean_samples([0.3, 1.8])
    midgap = np.zeros((50, 50), dtype=bool)
    midgap[:, [24, 25]] = True
    in_region = (X * (mask & midgap)).sum(axis=(1, 2)) / (X * midgap).sum(axis=(1, 2))
    assert in_region[0] > 0.99  # topological: the mid-gap states sit on the end sites
    assert in_region[1] < 0.5  # trivial: the band-edge states spread over the bulk


def test_score_of_reference_maps():
    toy = toy_model_cam()
    assert map_score(toy) == 1.0
    bulk = np.zeros((50, 50))
    bulk[15:35, 5:45] = 1.0
    assert map_score(bulk) == 0.0
    assert map_score(np.full((50, 50), 3.0)) == 0.0  # no structure, no excess anywhere
    noise = np.random.default_rng(0).normal(size=(200, 50, 50))
    assert map_score(noise).mean() == pytest.approx(EDGE_STATE_REGION.area_fraction, rel=0.05)
    # equally bright region (160 pixels) and bulk (800 pixels): the excess splits by area, 160 / 960
    assert map_score(toy + bulk) == pytest.approx(160 / 960)
    # invariant under positive affine maps: raw and min-max normalized maps score the same
    maps = np.random.default_rng(1).normal(size=(4, 50, 50)) + 2 * toy
    np.testing.assert_allclose(map_score(maps), map_score(7.0 * maps - 3.0))
    np.testing.assert_allclose(map_score(maps), map_score(minmax_normalize(maps)), rtol=1e-5)
    # region_share, the building block: share of the positive part
    assert region_share(toy - 3 * bulk) == pytest.approx(1.0)
    assert region_share(np.ones((50, 50))) == pytest.approx(EDGE_STATE_REGION.area_fraction)
    assert region_share(-np.ones((50, 50))) == 0.0
    with pytest.raises(ValueError, match="band"):
        EdgeStateRegion(columns=(30, 20))
    with pytest.raises(ValueError, match="end with shape"):
        region_share(np.ones((26, 26)))


def test_network_score_is_the_score_of_its_maps(model, inputs):
    """The per-sample score is the share of the above-average part of the topological CAM, resized to 50 x 50,
    that lies in the edge-state region, recomputed here from its definition with an independent bilinear
    resize (scikit-image) of the raw maps; the network's score is their mean."""
    raw = raw_class_activation_maps(model, inputs)[:, 1].astype(np.float64)
    mask = EDGE_STATE_REGION.mask()
    expected = []
    for raw_map in raw:
        big = resize(raw_map, (50, 50), order=1, mode="edge", anti_aliasing=False)
        excess = np.clip(big - big.mean(), 0.0, None)
        expected.append(excess[mask].sum() / excess.sum())
    per_sample = cam_scores_per_sample(model, inputs)
    np.testing.assert_allclose(per_sample, expected, atol=1e-4)
    assert np.ptp(expected) > 0.01, "the test needs samples whose scores differ"
    assert cam_score(model, inputs) == pytest.approx(np.mean(expected), abs=1e-4)


def test_averaged_maps_are_means_of_per_sample_maps(model, inputs):
    averaged = averaged_class_activation_maps(model, inputs)
    assert averaged.shape == (2, 50, 50)
    np.testing.assert_allclose(averaged, class_activation_maps(model, inputs).mean(axis=0), atol=1e-6)
    raw_mean = averaged_class_activation_maps(model, inputs, normalized=False)
    halves = [averaged_class_activation_maps(model, part, normalized=False) for part in (inputs[:3], inputs[3:])]
    np.testing.assert_allclose(raw_mean, 0.5 * (halves[0] + halves[1]), atol=1e-5)
    np.testing.assert_allclose(upsample_maps(raw_class_activation_maps(model, inputs).mean(axis=0)), raw_mean, atol=1e-5)


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="shape"):
        raw_class_activation_maps(model, np.zeros((2, 2, 50, 50), dtype=np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        class_activation_maps(model, np.zeros((2, 50, 50), dtype=np.float32), batch_size=0)
    with pytest.raises(ValueError, match="no samples"):
        raw_class_activation_maps(model, np.zeros((0, 50, 50), dtype=np.float32))


def test_score_correlations_match_numpy():
    rng = np.random.default_rng(3)
    scores = rng.uniform(size=30)
    rmse = 0.5 - 0.4 * scores + 0.05 * rng.normal(size=30)
    accuracy = np.exp(scores)  # monotone, not linear
    result = score_correlations(scores, {"rmse": rmse, "accuracy": accuracy})
    assert result["rmse"]["pearson_r"] == pytest.approx(np.corrcoef(scores, rmse)[0, 1])
    ranks = np.argsort(np.argsort(rmse))
    assert result["rmse"]["spearman_rho"] == pytest.approx(np.corrcoef(np.argsort(np.argsort(scores)), ranks)[0, 1])
    assert result["accuracy"]["spearman_rho"] == pytest.approx(1.0)
    assert result["accuracy"]["pearson_r"] < 1.0
    assert np.isnan(score_correlations(scores[:2], {"rmse": rmse[:2]})["rmse"]["pearson_r"])


# ----------------------------------------------------------------------------------------------
# highlighted networks
# ----------------------------------------------------------------------------------------------
def four_clusters(rng: np.random.Generator, n: int = 10):
    """Four clouds of (rmse, score) models, one per category; the member nearest each centre known."""
    centres = {"poorly_misleading": (0.4, 0.1), "well_good": (0.1, 0.6), "poorly_good": (0.4, 0.6),
               "well_misleading": (0.1, 0.1)}
    rmse, score, truth = [], [], []
    for category, (r, s) in centres.items():
        rmse += list(r + 0.03 * rng.uniform(-1, 1, n))
        score += list(s + 0.05 * rng.uniform(-1, 1, n))
        truth += [category] * n
    return np.array(rmse), np.array(score), np.array(truth)


def test_selection_takes_the_most_typical_of_each_class():
    rmse, score, truth = four_clusters(np.random.default_rng(0))
    rule = SelectionRule(GeneralizationCut("rmse", 0.2), score_cut=0.35)
    np.testing.assert_array_equal(categorize(rmse, score, 0.2, 0.35), truth)
    choices = select_highlighted(rmse, score, model_indices=np.arange(100, 140), rule=rule)
    assert list(choices) == list(CATEGORIES)
    scaled = np.stack([rmse / rmse.std(), score / score.std()], axis=1)
    for category, choice in choices.items():
        members = np.flatnonzero(truth == category)
        centre = np.median(scaled[members], axis=0)
        expected = members[np.argmin(((scaled[members] - centre) ** 2).sum(axis=1))]
        assert choice.position == expected and choice.model_index == 100 + expected
        assert choice.class_size == 10 and "empty" not in choice.note


def test_selection_reports_an_empty_class_and_takes_the_nearest():
    rmse, score, truth = four_clusters(np.random.default_rng(1))
    keep = truth != "poorly_good"
    rmse, score = rmse[keep], score[keep]
    choices = select_highlighted(rmse, score, rule=SelectionRule(GeneralizationCut("mae", 0.2), 0.35))
    empty = choices["poorly_good"]
    assert empty.class_size == 0 and "empty class" in empty.note
    positions = [c.position for c in choices.values()]
    assert len(set(positions)) == 4, "an empty class must not reuse a model chosen for another class"
    # nearest to the quadrant rmse > 0.2, score >= 0.35 among the free models: a poorly-misleading model
    # with the highest score or a well-good model with the highest rmse
    candidates = [p for p in range(rmse.size) if p not in positions[:1] + positions[1:2] + positions[3:]]
    gaps = [
        np.hypot(max(0.2 - rmse[p], 0) / rmse.std(), max(0.35 - score[p], 0) / score.std()) for p in candidates
    ]
    assert empty.position == candidates[int(np.argmin(gaps))]
    median_rule = SelectionRule()
    assert median_rule.resolved_score_cut(score) == pytest.approx(np.median(score))
    with pytest.raises(ValueError, match="score_cut"):
        SelectionRule(score_cut=2.0)
    with pytest.raises(ValueError, match="finite"):
        select_highlighted([0.1, np.nan], [0.2, 0.3])


def test_write_highlighted_copies_folders_with_provenance(tmp_path):
    rmse, score, _ = four_clusters(np.random.default_rng(2), n=3)
    model_dirs = {}
    for index in range(rmse.size):
        folder = tmp_path / "population" / f"model_{index:03d}"
        folder.mkdir(parents=True)
        torch.save(random_model(index).state_dict(), folder / "weights.pt")
        (folder / "config.json").write_text(f'{{"index": {index}}}')
        record_existing(folder, {"kind": "model", "index": index})  # readers verify a model folder's files
        model_dirs[index] = folder
    rule = SelectionRule(GeneralizationCut("mae", 0.2), 0.35)
    choices = select_highlighted(rmse, score, rule=rule)
    out = tmp_path / "models"
    write_highlighted(choices, model_dirs, out, rule.describe(score), extra={"population": "test"})
    write_highlighted(choices, model_dirs, out, rule.describe(score))  # overwriting works
    assert [name for name, _ in discover_models(out)] == list(CATEGORIES)
    for category, choice in choices.items():
        provenance = load_json(out / category / PROVENANCE_FILE)
        assert provenance["model_index"] == choice.model_index
        assert provenance["error"] == pytest.approx(rmse[choice.position])
        assert provenance["score"] == pytest.approx(score[choice.position])
        assert provenance["rule"]["generalization_cut"] == {"metric": "mae", "threshold": 0.2}
        assert provenance["source_folder"] == str(model_dirs[choice.model_index].resolve())
        state = torch.load(out / category / "weights.pt", weights_only=True)
        expected = random_model(choice.model_index).state_dict()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert not list(out.glob(".*.tmp"))
    with pytest.raises(FileNotFoundError, match="models folder"):
        discover_models(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no model folder"):
        discover_models(tmp_path)


def test_feature_map_footprint_of_an_edge_state_pixel():
    """Feature position p sees input pixels 2p-6..2p+5 (k4/s2/p2 then two 3x3 convs): an input change at
    (site 0, mid-gap column 24) moves the 26 x 26 feature maps only at rows 0-3 and columns 10-15, which
    the 50 x 50 grid places at columns ~19-30 (the default region's columns 20-29 plus the blur)."""
    model = random_model(5)
    x = torch.zeros(1, 1, 50, 50)
    x[0, 0, 0, 24] = 1.0
    model.eval()
    with torch.no_grad():
        changed = (model.features(x) - model.features(torch.zeros_like(x))).abs().sum(dim=1)[0] > 0
    rows, cols = np.nonzero(changed.numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 3, 10, 15)


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------
def test_colours_are_fixed_by_class_name():
    from ssh_ood.figures.interpretation_figures import CLASS_COLORS, class_colors

    assert class_colors([1, 0, 1], "dark") == [CLASS_COLORS["Topological"]["dark"], CLASS_COLORS["Trivial"]["dark"],
                                               CLASS_COLORS["Topological"]["dark"]]
    assert class_colors(np.array([0, 1]), "light") == [CLASS_COLORS["Trivial"]["light"], CLASS_COLORS["Topological"]["light"]]


def test_figures_on_smoke_data(tmp_path):
    import matplotlib.pyplot as plt

    from ssh_ood.figures.interpretation_figures import (
        figure_cam_comparison,
        figure_cam_score_scatter,
        figure_model_cam_view,
        figure_model_pca_view,
    )
    from ssh_ood.interpret.cam_utils import cam_score, clean_topological_test_set
    from ssh_ood.physics.datasets import write_datasets

    write_datasets("smoke", 0, tmp_path, progress=False)
    model = random_model(7)
    fig = figure_model_cam_view(model, tmp_path, sample_v=0.4)
    score = cam_score(model, clean_topological_test_set(tmp_path)["X"])
    assert f"CAM score {score:.2f}" in fig._suptitle.get_text()
    plt.close(fig)
    fig = figure_model_pca_view(model, tmp_path, (0.0, 0.01, 0.05), (0.0, 0.5, 2.0))
    assert len([ax for ax in fig.axes if ax.get_title().startswith("W = ")]) == 3
    plt.close(fig)
    W, v = np.linspace(0, 5, 3), np.linspace(0, 2, 4)
    diagram = np.tile([1.0, 1.0, 0.0, 0.0], (3, 1))
    cams = {"well_good": toy_model_cam(), "poorly_good": toy_model_cam()}
    fig = figure_cam_comparison(toy_model_cam(), cams, {"well_good": 0.8, "poorly_good": 0.6}, {}, 0.4,
                                {k: diagram for k in cams}, diagram, W, v)
    titles = [ax.get_title() for ax in fig.axes]
    assert "well_good\nCAM score 0.80" in titles and "target" in titles
    assert "0.400" in fig._suptitle.get_text()
    plt.close(fig)
    scores = np.linspace(0, 1, 5)
    fig = figure_cam_score_scatter(scores, {"rmse": 1 - scores}, score_correlations(scores, {"rmse": 1 - scores}))
    assert "Pearson r = -1.00" in fig.axes[0].get_title()
    plt.close(fig)


def test_highlight_models_scores_selects_and_writes(tmp_path):
    import pandas as pd

    from ssh_ood.interpret.cam_utils import cam_score, clean_topological_test_set
    from ssh_ood.interpret.highlighted_models import highlight_models
    from ssh_ood.nets.model_folders import load_model
    from ssh_ood.physics.datasets import write_datasets

    write_datasets("smoke", 0, tmp_path / "data", progress=False)
    model_dirs = {}
    for index in range(6):
        folder = tmp_path / "population" / f"model_{index:03d}"
        folder.mkdir(parents=True)
        torch.save(random_model(10 + index).state_dict(), folder / "weights.pt")
        record_existing(folder, {"kind": "model", "index": index})
        model_dirs[index] = folder
    rmse = np.array([0.1, 0.3, 0.15, 0.4, 0.05, 0.35])
    metrics = pd.DataFrame({"model_index": range(6), "mae": rmse / 2, "rmse": rmse, "ood_accuracy": 1 - rmse})
    result = highlight_models(metrics, model_dirs, tmp_path / "data", tmp_path / "models", progress=False)
    clean = clean_topological_test_set(tmp_path / "data")
    for row in result.table.itertuples():
        assert row.cam_score == pytest.approx(cam_score(load_model(model_dirs[row.model_index]), clean["X"]), abs=1e-6)
    assert result.score_cut == pytest.approx(np.median(result.table["cam_score"]))
    assert result.correlations["rmse"]["spearman_rho"] == pytest.approx(-result.correlations["ood_accuracy"]["spearman_rho"])
    selection = load_json(tmp_path / "models" / "selection.json")
    assert sum(selection["class_sizes"].values()) == 6
    assert [name for name, _ in discover_models(tmp_path / "models")] == list(CATEGORIES)
    for category, choice in result.choices.items():
        assert load_json(tmp_path / "models" / category / PROVENANCE_FILE)["model_index"] == choice.model_index
        if choice.class_size:
            assert result.table.set_index("model_index").loc[choice.model_index, "category"] == category
    with pytest.raises(ValueError, match="lacks columns"):
        highlight_models(metrics.drop(columns="mae"), model_dirs, tmp_path / "data", tmp_path / "models")


def test_notebook_03_runs_on_smoke(tmp_path):
    """Notebook 03 headless on the smoke preset: it makes the datasets and a fallback population itself."""
    from ssh_ood.base.notebook_runner import run_notebook
    from ssh_ood.base.paths import REPO_ROOT

    parameters = {
        "PRESET": "smoke", "SEED": 0, "POPULATION_DIR": str(tmp_path / "missing"), "FALLBACK_DIR": str(tmp_path / "population"),
        "DATA_DIR": str(tmp_path / "data"), "MODELS_DIR": str(tmp_path / "models"), "FIGURES_DIR": str(tmp_path / "figures"),
    }
    run_notebook(REPO_ROOT / "03_CAM.ipynb", tmp_path / "03_executed.ipynb", parameters)
    for name in ("Fig_2", "Fig_CAM_averaged", "Fig_CAM_score_vs_generalization"):
        assert (tmp_path / "figures" / f"{name}.pdf").stat().st_size > 0
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 0
    assert [name for name, _ in discover_models(tmp_path / "models")] == list(CATEGORIES)
    # the same selection from the command line, on the population the notebook made
    from ssh_ood.commands.cli import main

    args = ["highlight", "--population", str(tmp_path / "population"), "--preset", "smoke", "--data",
            str(tmp_path / "data"), "--out", str(tmp_path / "cli_models"), "--quiet"]
    assert main(args) == 0
    assert load_json(tmp_path / "cli_models" / "selection.json") == load_json(tmp_path / "models" / "selection.json")
    assert main(["highlight", "--population", str(tmp_path / "missing")]) == 2
    # the CAM and PCA views offered to notebook 06's browser
    from ssh_ood.figures.interpretation_figures import render_cam_view, render_pca_view
    from ssh_ood.ood.population_tables import load_population

    population = load_population(tmp_path / "population")
    index = population.indices[-1]
    assert render_cam_view(population, index)._suptitle.get_text().startswith(f"model {index}: CAM score")
    titles = [ax.get_title() for ax in render_pca_view(population, index).axes]
    assert "W = 0.15" in titles and "W = 2" in titles


def test_pca_figure_insets_sit_in_the_emptiest_corner_with_their_titles_inside_the_panel():
    """Fig. 4: each true-label inset avoids the data of its panel and its title clears the panel's frame."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from ssh_ood.figures.interpretation_figures import emptiest_corner, figure_pca_gap
    from ssh_ood.interpret.clustering_utils import Projection

    x = np.linspace(0, 1, 200)
    assert emptiest_corner(x, x, (0, 1), (0, 1)) == "upper left"  # a rising diagonal leaves that corner empty
    assert emptiest_corner(x, 1 - x, (0, 1), (0, 1)) == "upper right"
    assert emptiest_corner(x, 0.9 + 0 * x, (0, 1), (0, 1)) == "lower right"  # a line along the top
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"v": x, "label": rng.integers(0, 2, 200), "predicted": rng.integers(0, 2, 200),
                           "dim1": x, "dim2": x ** 2})
    projection = Projection("pca", "gap", (0.0,), {0.0: points, 0.5: points.assign(dim2=x ** 2 + 0.05)},
                            np.array([0.9, 0.05]), None, None)
    fig = figure_pca_gap({"network a": projection, "network b": projection}, (0.0, 0.5), (0.0,))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title().startswith("W = ")]
    assert len(panels) == 4
    for ax in panels:
        (inset,) = ax.child_axes
        assert inset.get_title() == "true label" and inset.title.get_fontsize() >= 9
        frame, title = ax.get_window_extent(renderer), inset.title.get_window_extent(renderer)
        assert frame.y0 < title.y0 and title.y1 < frame.y1 - 2, "the inset title collides with the panel's frame"
        assert inset.get_position().x0 < 0.5 * (ax.get_position().x0 + ax.get_position().x1)  # x = y^2: upper left
        assert ax.title.get_fontsize() >= 10
    plt.close(fig)


def test_cam_finding_states_the_sign_and_the_pick_of_the_papers_criterion():
    import pandas as pd

    from ssh_ood.figures.findings import cam_finding_markdown

    scores = np.linspace(0.02, 0.2, 20)
    accuracy = 0.9 - 2 * scores  # the more edge-focused, the worse: Spearman -1
    categories = ["well_good" if s >= 0.1 and a > 0.6 else "poorly_good" if s >= 0.1 else
                  "well_misleading" if a > 0.6 else "poorly_misleading" for s, a in zip(scores, accuracy, strict=True)]
    table = pd.DataFrame({"cam_score": scores, "ood_accuracy": accuracy, "category": categories})
    text = cam_finding_markdown(table, score_cut=0.1, chance_level=0.064, k=5)
    assert "comes out reversed" in text and "Spearman -1.00" in text
    assert f"{accuracy[-5:].mean():.3f}, against {accuracy.mean():.3f}" in text  # the 5 highest scores' mean
    good = scores >= 0.1
    well = np.array([c.startswith("well") for c in categories])
    assert f"{(well & good).sum()} of {good.sum()} networks with a good CAM" in text
    assert "+0.036 from the chance level 0.064" in text
    agreeing = cam_finding_markdown(table.assign(ood_accuracy=accuracy[::-1]), score_cut=0.1, chance_level=0.064)
    assert "keeps the paper's sign" in agreeing and "Spearman +1.00" in agreeing


def test_notebook_04_reads_the_networks_notebook_03_chose(tmp_path):
    from ssh_ood.base.paths import HIGHLIGHTED_MODELS_DIR, POPULATION_DIR
    from ssh_ood.interpret.highlighted_models import chosen_models_dir

    chosen = tmp_path / "highlighted"
    assert chosen_models_dir(chosen, tmp_path / "population") is None  # nothing chosen: the selection must run
    assert chosen_models_dir(chosen, POPULATION_DIR) == HIGHLIGHTED_MODELS_DIR  # the shipped choice of its population
    (chosen / "well_good").mkdir(parents=True)
    (chosen / "well_good" / "weights.pt").write_bytes(b"")
    assert chosen_models_dir(chosen, POPULATION_DIR) == chosen  # what notebook 03 wrote comes first
