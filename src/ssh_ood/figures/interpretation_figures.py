"""Figures of the interpretability analysis: Fig. 2 (CAMs over phase diagrams), Fig. 4 (PCA of GAP),
Figs. 12-13 (UMAP per layer), the CAM-score vs generalization scatter, and single-model CAM views.

Colours are fixed by class name (never by order of appearance): trivial = blues, topological = reds;
light shades draw the clean reference cloud, dark shades the set being looked at. No LaTeX is needed.
Every ``figure_*`` function returns a ``matplotlib.figure.Figure``; save it with
:func:`ssh_ood.figures.plotting.save_figure` (PDF + PNG).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..base.paths import datasets_dir
from ..base.presets import get_preset
from ..interpret.cam_utils import (
    EDGE_STATE_REGION,
    EdgeStateRegion,
    as_input_tensor,
    cam_score,
    class_activation_maps,
    clean_topological_test_set,
    eval_mode,
    grad_cam,
    nearest_sample,
)
from ..interpret.clustering_utils import LAYER_TITLES, Projection, activation_sets, project_pca
from ..nets.architecture import CNN_SSH
from ..nets.model_folders import load_model
from ..ood.generalization_metrics import GeneralizationCut
from ..ood.population_tables import Population
from ..physics.data_generation import CLASS_NAMES
from ..physics.datasets import dataset_specs, read_manifest, write_datasets
from .column_labels import column_label
from .plotting import PHASE_LABEL, plot_phase_diagram

Reporter = Callable[[str, "float | None"], None]
"""``report(message, fraction_done)``: what a slow step is doing (fraction None: unknown)."""

CLASS_COLORS = {
    "Trivial": {"light": "#a6cee3", "dark": "#08519c"},
    "Topological": {"light": "#fbb4ae", "dark": "#a50f15"},
}
CAM_CMAP = "viridis"


def class_colors(classes: np.ndarray, shade: str) -> list[str]:
    """Colour of each point from its class index (0 = trivial, 1 = topological) and a shade."""
    return [CLASS_COLORS[CLASS_NAMES[int(c)]][shade] for c in np.asarray(classes)]


def _class_handles(reference_label: str = "reference (clean)") -> list[Line2D]:
    return [
        Line2D([], [], ls="", marker="o", color=CLASS_COLORS[name][shade], label=f"{name}, {text}")
        for name in CLASS_NAMES
        for shade, text in (("light", reference_label), ("dark", "this set"))
    ]


def draw_region(ax: plt.Axes, region: EdgeStateRegion = EDGE_STATE_REGION, color: str = "w") -> None:
    """Outline the edge-state region on an image axis (rows = sites, columns = eigenstates)."""
    first_col, last_col = region.columns
    for first_row, last_row in region.row_bands:
        ax.add_patch(
            Rectangle(
                (first_col - 0.5, first_row - 0.5), last_col - first_col + 1, last_row - first_row + 1,
                fill=False, ec=color, ls="--", lw=0.8,
            )
        )


def _show_map(ax: plt.Axes, image: np.ndarray, title: str, cmap: str = CAM_CMAP, vmin=0.0, vmax=1.0,
              fontsize: float | str = "small"):
    shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, origin="upper", interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.set_xlabel("eigenstate index")
    ax.set_ylabel("site")
    return shown


# ----------------------------------------------------------------------------------------------
# Fig. 2
# ----------------------------------------------------------------------------------------------
def figure_cam_comparison(
    toy_map: np.ndarray,
    cams: Mapping[str, np.ndarray],
    scores: Mapping[str, float],
    titles: Mapping[str, str],
    sample_v: float,
    diagrams: Mapping[str, np.ndarray] | None = None,
    target: np.ndarray | None = None,
    W_values: np.ndarray | None = None,
    v_values: np.ndarray | None = None,
    region: EdgeStateRegion = EDGE_STATE_REGION,
) -> plt.Figure:
    """Fig. 2: toy-model CAM and each network's topological CAM over the phase diagrams.

    Parameters
    ----------
    toy_map : (50, 50) ideal map (:func:`ssh_ood.interpret.cam_utils.toy_model_cam`), score 1 by construction.
    cams : name -> (50, 50) min-max normalized topological CAM of the shown sample, in panel order.
    scores : name -> CAM score of the network (mean over clean topological test samples).
    titles : name -> panel title.
    sample_v : v of the clean topological sample shown (stated in the figure title).
    diagrams, target, W_values, v_values : predicted (n_W, n_v) diagrams per name and the target; when
        given, the bottom row shows them with ``plot_phase_diagram`` (x = W, y = v).
    """
    names = list(cams)
    with_diagrams = diagrams is not None and target is not None
    n_rows = 2 if with_diagrams else 1
    fig, axes = plt.subplots(n_rows, len(names) + 1, figsize=(3.3 * (len(names) + 1), 3.5 * n_rows), squeeze=False, layout="constrained")
    image = _show_map(axes[0, 0], toy_map, "toy model\n\nCAM score 1.00", fontsize=12)
    draw_region(axes[0, 0], region)
    for column, name in enumerate(names, start=1):
        title = titles.get(name, name).replace(", ", ",\n", 1)  # "(a) poorly generalizing,\nmisleading CAM"
        _show_map(axes[0, column], cams[name], f"{title}\nCAM score {scores[name]:.2f}", fontsize=12)
        draw_region(axes[0, column], region)
        axes[0, column].set_ylabel("")
    fig.colorbar(image, ax=list(axes[0]), label="normalized topological CAM", shrink=0.8)
    if with_diagrams:
        phase = plot_phase_diagram(axes[1, 0], target, W_values, v_values, title="target")
        for column, name in enumerate(names, start=1):
            title = titles.get(name, name)
            short = title.split(" ")[0] if title.startswith("(") else title
            plot_phase_diagram(axes[1, column], diagrams[name], W_values, v_values, title=f"{short} predicted")
            axes[1, column].set_ylabel("")
        for ax in axes[1]:
            ax.title.set_fontsize(12)
        fig.colorbar(phase, ax=list(axes[1]), label=PHASE_LABEL, shrink=0.8)
    fig.suptitle(f"Topological-class CAM of the clean topological test sample with v = {sample_v:.3f}", fontsize=15)
    return fig


# ----------------------------------------------------------------------------------------------
# PCA and UMAP scatter panels
# ----------------------------------------------------------------------------------------------
def _reference_points(projection: Projection, reference_W: Sequence[float]) -> pd.DataFrame:
    return pd.concat([projection.points[float(W)] for W in reference_W], ignore_index=True)


def _scatter_panel(ax: plt.Axes, reference, current, color_by: str, size: float = 6.0) -> None:
    ax.scatter(reference["dim1"], reference["dim2"], c=class_colors(reference[color_by], "light"), s=size, lw=0)
    ax.scatter(current["dim1"], current["dim2"], c=class_colors(current[color_by], "dark"), s=size, lw=0)
    ax.set_xticks([])
    ax.set_yticks([])


#: inset boxes [x0, y0, width, height] in axes coordinates, one per corner of a panel
INSET_CORNERS = {
    "upper right": (0.59, 0.51, 0.38, 0.36), "upper left": (0.03, 0.51, 0.38, 0.36),
    "lower right": (0.59, 0.05, 0.38, 0.38), "lower left": (0.03, 0.05, 0.38, 0.38),
}


def emptiest_corner(x: np.ndarray, y: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]) -> str:
    """The key of :data:`INSET_CORNERS` whose box (label included) covers the fewest of the points (x, y) drawn
    in axes with limits ``xlim``, ``ylim``; ties go to the first in the dictionary's order."""
    u = (np.asarray(x, dtype=np.float64) - xlim[0]) / (xlim[1] - xlim[0])
    w = (np.asarray(y, dtype=np.float64) - ylim[0]) / (ylim[1] - ylim[0])

    def covered(box: tuple[float, float, float, float]) -> int:
        x0, y0, width, height = box
        return int(np.sum((u >= x0 - 0.02) & (u <= x0 + width + 0.02) & (w >= y0 - 0.02) & (w <= y0 + height + 0.1)))

    return min(INSET_CORNERS, key=lambda corner: covered(INSET_CORNERS[corner]))


def _true_label_inset(ax: plt.Axes, reference: pd.DataFrame, current: pd.DataFrame) -> plt.Axes:
    """An inset coloured by the true label, in the corner of ``ax`` that hides the fewest points, labelled
    inside the panel (clear of its frame)."""
    points = pd.concat([reference, current])
    corner = emptiest_corner(points["dim1"], points["dim2"], ax.get_xlim(), ax.get_ylim())
    inset = ax.inset_axes(INSET_CORNERS[corner])
    _scatter_panel(inset, reference, current, "label", size=2.0)
    inset.set_title("true label", fontsize=11, pad=2)
    return inset


def figure_pca_gap(
    projections: Mapping[str, Projection],
    W_columns: Sequence[float],
    reference_W: Sequence[float],
) -> plt.Figure:
    """Fig. 4: PCA of the GAP layer, one row per network, one column per disorder strength.

    Main axes are coloured by the predicted class, insets by the true label (each inset in the corner of its
    panel that hides the fewest points, :func:`emptiest_corner`); light = the clean reference cloud (the sets
    the PCA was fit on, drawn in every panel), dark = the test set at that W.

    Parameters
    ----------
    projections : row title -> PCA :class:`Projection` of the ``gap`` layer.
    W_columns : disorder strengths of the columns (e.g. 0, 0.15, 0.5, 1.0, 2.0).
    reference_W : the sets forming the reference cloud.
    """
    rows = list(projections)
    fig, axes = plt.subplots(len(rows), len(W_columns), figsize=(3.2 * len(W_columns), 3.3 * len(rows)), squeeze=False, layout="constrained")
    for r, name in enumerate(rows):
        projection = projections[name]
        reference = _reference_points(projection, reference_W)
        ratio = projection.explained_variance_ratio
        for c, W in enumerate(W_columns):
            ax = axes[r, c]
            current = projection.points[float(W)]
            _scatter_panel(ax, reference, current, "predicted")
            _true_label_inset(ax, reference, current)
            ax.set_title(f"W = {W:g}", fontsize=15)
            if c == 0:
                ax.set_ylabel(f"{name.replace(', ', ',' + chr(10), 1)}\nPC2 ({ratio[1]:.0%})", fontsize=13)
            ax.set_xlabel(f"PC1 ({ratio[0]:.0%})", fontsize=13)  # each row its own PCA
    fig.legend(handles=_class_handles(), loc="outside lower center", ncols=4, fontsize=13, frameon=False,
               markerscale=1.5)
    fig.suptitle("PCA of the GAP activations (fit on the clean reference set)\ncolour = predicted class, "
                 "insets = true label", fontsize=15)
    return fig


def figure_umap_layers(
    projections: Mapping[str, Projection],
    W_columns: Sequence[float],
    reference_W: Sequence[float],
    title: str,
    color_by: str = "predicted",
) -> plt.Figure:
    """Figs. 12-13: UMAP of every layer (rows) at each disorder strength (columns) for one network.

    Parameters
    ----------
    projections : layer -> UMAP :class:`Projection` (fit on the union of all disorder strengths).
    W_columns : disorder strengths of the columns (the out-of-distribution sets).
    reference_W : the sets drawn as the light reference cloud.
    color_by : "predicted" or "label".
    """
    if color_by not in ("predicted", "label"):
        raise ValueError(f"color_by must be 'predicted' or 'label', got {color_by!r}")
    layers = list(projections)
    fig, axes = plt.subplots(len(layers), len(W_columns), figsize=(2.8 * len(W_columns), 2.6 * len(layers)), squeeze=False, layout="constrained")
    for r, layer in enumerate(layers):
        reference = _reference_points(projections[layer], reference_W)
        for c, W in enumerate(W_columns):
            _scatter_panel(axes[r, c], reference, projections[layer].points[float(W)], color_by, size=4.0)
            if r == 0:
                axes[r, c].set_title(f"W = {W:g}", fontsize=15)
            if c == 0:
                axes[r, c].set_ylabel(LAYER_TITLES.get(layer, layer), fontsize=14)
    fig.legend(handles=_class_handles(), loc="outside lower center", ncols=2, fontsize=13, frameon=False,
               markerscale=1.5)
    what = "predicted class" if color_by == "predicted" else "true label"
    fig.suptitle(f"UMAP per layer, {title}\ncolour = {what}", fontsize=16)
    return fig


# ----------------------------------------------------------------------------------------------
# CAM score vs generalization
# ----------------------------------------------------------------------------------------------
def figure_cam_score_scatter(
    scores: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    correlations: Mapping[str, Mapping[str, float]],
    score_cut: float | None = None,
    cut: GeneralizationCut | None = None,
    highlighted: Mapping[str, int] | None = None,
    chance_level: float | None = EDGE_STATE_REGION.area_fraction,
) -> plt.Figure:
    """CAM score (x) against each generalization metric (one panel each), with the correlations.

    Parameters
    ----------
    scores : (n_models,) CAM scores.
    metrics : metric name -> (n_models,) values (e.g. "mae", "ood_accuracy"); axes are labelled with
        :func:`ssh_ood.figures.column_labels.column_label` of the name.
    correlations : output of :func:`ssh_ood.interpret.cam_utils.score_correlations` for the same metrics.
    score_cut, cut : draw the selection cuts (the generalization cut on its metric's panel).
    highlighted : category -> position of the model in ``scores``, marked and labelled.
    chance_level : score of a map whose excess is spread evenly (the region's area fraction), dotted.

    The cut lines share one legend under the panels (none covers a point).
    """
    names = list(metrics)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], names, strict=True):
        values = np.asarray(metrics[name], dtype=np.float64)
        ax.scatter(scores, values, s=14, color="0.35")
        corr = correlations.get(name, {})
        ax.set_title(
            f"Pearson r = {corr.get('pearson_r', np.nan):.2f}, Spearman = {corr.get('spearman_rho', np.nan):.2f}"
            f"\n(n = {corr.get('n', len(values))})",
            fontsize="small",
        )
        ax.set_xlabel("CAM score\n(share of the above-average topological CAM in the edge region)", fontsize="small")
        ax.set_ylabel(column_label(name))
        if score_cut is not None:
            ax.axvline(score_cut, color="k", ls="--", lw=0.8, label=f"CAM-score cut {score_cut:.2f} (good / misleading)")
        if chance_level is not None:
            ax.axvline(chance_level, color="0.5", ls=":", lw=0.8, label=f"chance level {chance_level:.2f} (even spread)")
        if cut is not None and name == cut.metric:
            ax.axhline(cut.threshold, color="k", ls="-.", lw=0.8,
                       label=f"{column_label(cut.metric)} = {cut.threshold:g}: well generalizing below")
        for category, position in (highlighted or {}).items():
            ax.scatter(scores[position], values[position], s=60, facecolor="none", edgecolor="C3")
            ax.annotate(category, (scores[position], values[position]), fontsize="x-small", xytext=(4, 4),
                        textcoords="offset points")
    handles = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    if handles:  # one legend under the panels, where it covers no point
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=len(handles), fontsize="small",
                   frameon=False)
    fig.suptitle("Does a good CAM predict out-of-distribution generalization?")
    return fig


# ----------------------------------------------------------------------------------------------
# single-model CAM views (notebooks 03 and 06)
# ----------------------------------------------------------------------------------------------
def figure_cam_sample(
    image: np.ndarray,
    cams: np.ndarray,
    grad_cams: np.ndarray | None,
    v: float,
    probabilities: np.ndarray,
    region: EdgeStateRegion = EDGE_STATE_REGION,
    n_columns: int | None = None,
) -> plt.Figure:
    """One sample: the input, both classes' CAMs, the topological CAM over the input, and Grad-CAM.

    Parameters
    ----------
    image : (50, 50) input X[j, i] = |psi_i(j)|^2.
    cams : (2, 50, 50) min-max normalized CAMs (trivial, topological).
    grad_cams : (2, 50, 50) Grad-CAMs resized to the input (or None).
    v : the sample's v; probabilities : (2,) softmax output.
    n_columns : panels per row (default: all in one row).
    """
    n_panels = 4 + (2 if grad_cams is not None else 0)
    n_columns = n_panels if n_columns is None else max(1, min(int(n_columns), n_panels))
    n_rows = -(-n_panels // n_columns)
    fig, grid = plt.subplots(n_rows, n_columns, figsize=(3.0 * n_columns, 3.2 * n_rows), squeeze=False,
                             layout="constrained")
    axes = grid.ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    _show_map(axes[0], image, f"input, v = {v:.3f}", cmap="magma", vmin=None, vmax=None)
    for c in range(2):
        _show_map(axes[1 + c], cams[c], f"CAM {CLASS_NAMES[c]}\np = {probabilities[c]:.2f}")
        draw_region(axes[1 + c], region)
    axes[3].imshow(image, cmap="gray_r", origin="upper", interpolation="nearest")
    axes[3].imshow(cams[1], cmap=CAM_CMAP, alpha=0.55, origin="upper", interpolation="bilinear")
    axes[3].set_title("topological CAM over the input", fontsize="small")
    if grad_cams is not None:
        for c in range(2):
            _show_map(axes[4 + c], grad_cams[c], f"Grad-CAM {CLASS_NAMES[c]}", vmin=None, vmax=None)
    return fig


def figure_averaged_cams(
    averaged: Mapping[str, np.ndarray], scores: Mapping[str, float] | None = None,
    region: EdgeStateRegion = EDGE_STATE_REGION,
) -> plt.Figure:
    """Averaged CAMs: one row per network, columns trivial and topological class, (2, 50, 50) each."""
    names = list(averaged)
    fig, axes = plt.subplots(len(names), 2, figsize=(6.4, 3.0 * len(names)), squeeze=False, layout="constrained")
    for r, name in enumerate(names):
        for c in range(2):
            score = f", score {scores[name]:.2f}" if scores and c == 1 else ""
            _show_map(axes[r, c], averaged[name][c], f"{name}: mean CAM {CLASS_NAMES[c]}{score}", vmin=None, vmax=None)
            draw_region(axes[r, c], region)
    return fig


def figure_predictions_vs_v(v: np.ndarray, probabilities: Mapping[str, np.ndarray], labels: np.ndarray) -> plt.Figure:
    """Predicted probability of the topological class vs v for each network, with the true labels."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    order = np.argsort(v)
    ax.plot(np.asarray(v)[order], np.asarray(labels)[order], color="k", lw=1.5, label="true label")
    for name, p in probabilities.items():
        ax.plot(np.asarray(v)[order], np.asarray(p)[order], ".", ms=4, label=name)
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("v")
    ax.set_ylabel("P(topological)")
    ax.legend(fontsize="small")
    return fig


# ----------------------------------------------------------------------------------------------
# one-model views (notebook 06)
# ----------------------------------------------------------------------------------------------
def figure_model_cam_view(
    model: CNN_SSH, data_dir: str | Path, sample_v: float = 0.5, region: EdgeStateRegion = EDGE_STATE_REGION,
    n_columns: int | None = None,
) -> plt.Figure:
    """CAM view of one trained network: the clean topological sample nearest ``sample_v`` (input, both
    CAMs, overlay, Grad-CAM, ``n_columns`` panels per row), titled with the network's CAM score over all
    clean topological samples."""
    clean = clean_topological_test_set(data_dir)
    index = nearest_sample(clean["v"], sample_v)
    sample = clean["X"][index : index + 1]
    with eval_mode(model):
        probabilities = model.predict_proba(as_input_tensor(sample, model)).cpu().numpy()[0]
    fig = figure_cam_sample(
        sample[0], class_activation_maps(model, sample)[0], grad_cam(model, sample, upsample=True)[0],
        float(clean["v"][index]), probabilities, region, n_columns=n_columns,
    )
    fig.suptitle(f"CAM score {cam_score(model, clean['X'], region):.2f} (chance {region.area_fraction:.2f})")
    return fig


def figure_model_pca_view(
    model: CNN_SSH, data_dir: str | Path, reference_W: Sequence[float], W_columns: Sequence[float], title: str = "this network"
) -> plt.Figure:
    """PCA-of-GAP view of one trained network (one row of Fig. 4)."""
    W_values = list(dict.fromkeys([*map(float, reference_W), *map(float, W_columns)]))
    sets = activation_sets(model, data_dir, W_values, layers=("gap",))
    return figure_pca_gap({title: project_pca(sets, "gap", reference_W)}, W_columns, reference_W)


def population_data_dir(population: Population, report: Reporter | None = None) -> Path:
    """Datasets folder of a population: the manifest's ``data_dir`` if it exists, else the preset's
    default folder, generated (with the population's seed) when missing.

    ``report(message, fraction)`` hears what is generated and where, dataset by dataset (the paper
    preset's datasets take ~15 s and ~50 MB the first time).
    """
    manifest = population.manifest
    recorded = Path(manifest.get("data_dir", ""))
    if manifest.get("data_dir") and (recorded / "test_W0.npz").is_file():
        return recorded
    preset, seed = manifest["preset"], int(manifest["seed"])
    folder = datasets_dir(preset)
    if _datasets_complete(folder, preset, seed):
        return folder

    def on_dataset(done: int, total: int, spec) -> None:
        if report is not None:
            report(f"generating the {preset!r} datasets (seed {seed}) the CAM and PCA views need, once, into "
                   f"{folder}: {done + 1}/{total} {spec.filename}", done / total)

    write_datasets(preset, seed, folder, progress=False, on_dataset=on_dataset)
    if report is not None:
        report(f"datasets written to {folder}", 1.0)
    return folder


def _datasets_complete(folder: Path, preset: str, seed: int) -> bool:
    """Whether ``folder`` holds every dataset of ``preset`` written with ``seed`` (its manifest says so)."""
    try:
        manifest = read_manifest(folder)
    except (FileNotFoundError, ValueError):
        return False
    files = {entry.get("file") for entry in manifest.get("datasets", [])}
    return (manifest.get("preset") == preset and manifest.get("seed") == seed
            and all(spec.filename in files and (folder / spec.filename).is_file() for spec in dataset_specs(preset)))


def render_cam_view(population: Population, index: int, state: object = None) -> plt.Figure:
    """Notebook 06 view ``render(population, index, state)``: :func:`figure_model_cam_view` of model
    ``index``, three panels per row; progress goes to ``state.report`` when the state has one."""
    data_dir = population_data_dir(population, getattr(state, "report", None))
    fig = figure_model_cam_view(load_model(population.model_dir(index)), data_dir, n_columns=3)
    fig.suptitle(f"model {index}: {fig._suptitle.get_text()}")
    plt.close(fig)  # returned for display; not kept in pyplot's state
    return fig


def render_pca_view(population: Population, index: int, state: object = None) -> plt.Figure:
    """Notebook 06 view: :func:`figure_model_pca_view` (PCA of GAP fit on the clean + W = 0.01, 0.05 sets);
    progress goes to ``state.report`` when the state has one."""
    preset = get_preset(population.manifest["preset"])
    reference_W = (0.0, *preset.perturbative_W)
    fig = figure_model_pca_view(
        load_model(population.model_dir(index)), population_data_dir(population, getattr(state, "report", None)),
        reference_W,
        (0.0, *preset.ood_W), title=f"model {index}",
    )
    for legend in fig.legends:  # the browser shrinks the figure to the page: the shared legend shrinks with it
        for text in legend.get_texts():
            text.set_fontsize(9)
    fig._suptitle.set_fontsize(12)
    plt.close(fig)
    return fig
