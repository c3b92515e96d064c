"""Conventions every figure keeps: one colour per class (red = topological, as in the phase diagrams), axis
labels in words (src/ssh_ood/figures/column_labels.py), cut lines that name the project's cut, and the figure
texts that say what a reader needs (disorder strength, colour scale, how many networks)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from ssh_ood.figures.column_labels import column_label
from ssh_ood.figures.plotting import CLASS_COLOURS, PHASE_CMAP
from ssh_ood.physics.data_generation import CLASS_NAMES


def test_class_colours_are_the_ends_of_the_phase_colour_map():
    """Winding number 1 (topological) is the top of the phase diagrams' colour map, 0 (trivial) the bottom: the
    class colour of each must lean the same way (red channel against blue channel)."""
    cmap = plt.get_cmap(PHASE_CMAP)
    assert set(CLASS_COLOURS) == set(CLASS_NAMES)
    for name, end in (("Topological", cmap(1.0)), ("Trivial", cmap(0.0))):
        red, _, blue, _ = to_rgba(CLASS_COLOURS[name])
        assert (red > blue) == (end[0] > end[2]), name


def _scatter_colour(ax) -> tuple:
    return tuple(ax.collections[0].get_facecolor()[0])


def test_recall_by_band_colours_each_class_as_everywhere_and_labels_the_score():
    from ssh_ood.figures.prediction_figures import figure_recall_by_band

    rng = np.random.default_rng(0)
    recalls = pd.DataFrame({f"recall_{c}_W{b}": rng.uniform(0, 1, 6) for c in ("trivial", "topological")
                            for b in ("0.0-0.5", "3.0-5.0")})
    fig = figure_recall_by_band(recalls, pd.Series(rng.normal(size=6)), "probe_mid_bulk_shift")
    axes = np.asarray(fig.axes).reshape(2, 2)
    assert [a.get_ylabel() for a in axes[:, 0]] == ["recall of the trivial class", "recall of the topological class"]
    assert _scatter_colour(axes[0, 1]) == to_rgba(CLASS_COLOURS["Trivial"])
    assert _scatter_colour(axes[1, 0]) == to_rgba(CLASS_COLOURS["Topological"])
    assert axes[1, 0].get_xlabel() == column_label("probe_mid_bulk_shift") != "probe_mid_bulk_shift"
    plt.close(fig)


def test_ceiling_recall_lines_use_the_class_colours():
    from ssh_ood.figures.recipe_figures import figure_ceiling

    W, v = np.linspace(0, 5, 4), np.linspace(0, 2, 3)
    ceiling = {"W": W, "v": v, "accuracy": np.full((4, 3), 0.9), "recall_trivial": np.full(4, 0.8),
               "recall_topological": np.full(4, 0.95)}
    fig = figure_ceiling(ceiling, {"0-5": 0.9})
    lines = {line.get_label(): line.get_color() for line in fig.axes[2].get_lines()}  # panel (c); then the colour bar
    assert lines == {"trivial": CLASS_COLOURS["Trivial"], "topological": CLASS_COLOURS["Topological"]}
    plt.close(fig)


def test_rules_figure_draws_rules_dashed_the_ceiling_dotted_and_keeps_its_legend_off_the_panels(tmp_path):
    from ssh_ood.base.figure_files import save_figure
    from ssh_ood.figures.recipe_figures import CEILING_STYLE, figure_rules_by_band

    columns = ["overall", "W in [0, 0.5]", "W in [3, 5]"]
    table = pd.DataFrame.from_dict({
        "recipe": ["population", 0.93, 0.99, 0.88], "sublattice_position": ["rule", 0.92, 0.98, 0.86],
        "edge_density": ["rule", 0.82, 0.95, 0.72], "ceiling": ["ceiling", 0.99, 1.0, 0.98],
        "recipe − sublattice_position": ["margin", 0.01, 0.01, 0.02]}, orient="index", columns=["kind", *columns])
    fig = figure_rules_by_band(table, "sublattice_position")
    accuracy, margin = fig.axes
    lines = {line.get_label(): line for line in accuracy.get_lines()}
    assert {lines[f"rule: {name}"].get_linestyle() for name in ("sublattice_position", "edge_density")} == {"--"}
    assert lines["ceiling"].get_linestyle() == CEILING_STYLE["ls"]
    assert lines["recipe: median network"].get_linestyle() == "-"
    assert [t.get_text() for t in accuracy.get_xticklabels()] == columns
    assert len(margin.patches) == 3 and "sublattice_position" in margin.get_title()
    assert margin.get_ylim()[1] > 0  # the rule's zero line inside the panel, not on its edge
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, under the panels
    (legend,) = fig.legends
    assert len(legend.get_texts()) == 4
    for path in save_figure(fig, "Fig_recipes_physics_rules", tmp_path):
        assert path.stat().st_size > 1000
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".pdf", ".png"]
    plt.close(fig)


def test_cam_score_scatter_labels_its_axes_in_words_and_keeps_its_legend_off_the_points():
    from ssh_ood.figures.interpretation_figures import figure_cam_score_scatter
    from ssh_ood.interpret.cam_utils import score_correlations
    from ssh_ood.ood.generalization_metrics import GeneralizationCut

    scores = np.linspace(0.02, 0.2, 8)
    metrics = {"mae": 0.5 - scores, "ood_accuracy": 0.5 + scores}
    fig = figure_cam_score_scatter(scores, metrics, score_correlations(scores, metrics), score_cut=0.08,
                                   cut=GeneralizationCut("mae", 0.2))
    panels = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_ylabel() for ax in panels] == ["MAE", "OOD accuracy"]
    assert all(ax.get_legend() is None for ax in panels)  # no legend inside a panel, over the points
    (legend,) = fig.legends
    assert "MAE = 0.2: well generalizing below" in [t.get_text() for t in legend.get_texts()]
    plt.close(fig)


def test_encoding_comparison_draws_the_cut_as_what_it_is_and_counts_the_networks():
    from ssh_ood.figures.thermometer_figures import figure_encoding_comparison

    table = pd.DataFrame({"encoding": ["real-valued"] * 3 + ["thermometer L=3"] * 3, "model": [0, 1, 2] * 2,
                          "ood_accuracy": np.linspace(0.5, 0.8, 6), "rmse": np.linspace(0.1, 0.6, 6)})
    fig = figure_encoding_comparison(table, batchnorm="precise", run="paper preset, seed 1")
    (legend,) = fig.legends  # under the panels, off the points
    (label,) = [t.get_text() for t in legend.get_texts()]
    assert "MAE ≤ 0.2" in label and "RMSE <=" not in label
    assert fig.axes[1].get_ylabel().startswith(column_label("rmse"))
    title = fig._suptitle.get_text()
    assert "paper preset, seed 1; 3 real-valued, 3 thermometer L=3" in title and "training set" in title
    plt.close(fig)


def test_probe_images_state_the_disorder_and_the_square_root_scale():
    from ssh_ood.figures.prediction_figures import figure_probe_images
    from ssh_ood.physics.data_generation import generate_dataset

    clean = generate_dataset("test", 8, 0.0, seed=0)
    X = clean["X"]
    fig = figure_probe_images(X[0], X[1], X[2], disorder_W=3.0)
    assert "disordered trivial (W = 3)" in [ax.get_title() for ax in fig.axes]
    colourbar = fig.axes[-1]
    assert "square-root" in colourbar.get_ylabel()
    image = fig.axes[0].images[0]
    assert image.norm.vmax == pytest.approx(0.5) and image.norm(0.125) == pytest.approx(0.5)  # sqrt(1/4) = 1/2
    plt.close(fig)


def test_thermometer_figure_draws_the_highlighted_channel_on_top_and_fills_panel_c():
    from ssh_ood.figures.thermometer_figures import figure_thermometer
    from ssh_ood.physics.data_generation import generate_dataset
    from ssh_ood.physics.thermometer_encoding import thermometer_encode

    X = generate_dataset("test", 5, 0.0, seed=0)["X"][1]
    fig = figure_thermometer(X, 15, highlight=1)
    ax_stack, ax_level = fig.axes[1], fig.axes[2]
    assert ax_stack.computed_zorder is False  # drawn in order, so depth sorting cannot bury the highlighted channel
    last = ax_stack.collections[-1]
    assert tuple(last.get_facecolor()[0][:3]) == to_rgba("C3")[:3]
    lit = thermometer_encode(X[None, None].astype(np.float32), 15)[0, 1] > 0.5
    assert len(last.get_offsets()) == lit.sum()
    level = ax_level.images[0].get_array()
    assert (np.asarray(level) > 0).mean() > 0.5  # the bulk lights channel 0: most pixels show a level
    plt.close(fig)
