"""Interactive browser of a CNN population (notebook 06) and the population summary figures.

:class:`PopulationBrowser` builds the ipywidgets of notebook 06:

- a metric dropdown, a threshold slider and an above/below toggle select the models whose metric lies
  above (>=) or below (<=) the threshold; the model selector lists them;
- two dropdowns choose the axes of a scatter plot of the whole population (selected models and the
  current model highlighted);
- a view selector shows one model: its predicted phase diagram beside the target (with the thermodynamic
  boundary v_c(W)), its training history (smoothed by the smoothing slider), or any view registered
  later (CAM and PCA are placeholders until the interpretability code provides them).

Views are pluggable: ``register_view(name, render)`` with ``render(population, index, state) -> Figure``.
Every figure is a ``matplotlib.figure.Figure`` (no pyplot state), shown as a PNG in an image widget and
kept in ``browser.figures`` (``"scatter"``, ``"view"``) so tests can drive the widgets from Python and
inspect what is shown.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import Image, display
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .generalization import CUT_METRICS, DEFAULT_CUT_METRIC, GeneralizationCut
from .interpretation_figures import render_cam_view, render_pca_view
from .plotting import PHASE_LABEL, plot_phase_diagram
from .population import Population
from .training_utils import HISTORY_KEYS, plot_training_curves

NON_METRIC_COLUMNS = ("model_index", "model_seed", "stopped_early", "well_generalizing")
CORRELATION_COLUMNS = (
    "mae", "rmse", "ssim", "ood_accuracy", "ood_macro_f1", "clean_accuracy", "test_accuracy", "final_val_loss", "epochs_run",
)
SUMMARY_DEFAULTS = {"metric": DEFAULT_CUT_METRIC, "x": DEFAULT_CUT_METRIC, "y": "ood_accuracy"}


@dataclass(frozen=True)
class ViewState:
    """What a view may depend on besides the model: the history smoothing window (epochs)."""

    smoothing: int = 1


ViewRenderer = Callable[[Population, int, ViewState], Figure]


# ----------------------------------------------------------------------------------------------
# pure helpers (tested directly)
# ----------------------------------------------------------------------------------------------
def metric_columns(stats: pd.DataFrame) -> list[str]:
    """Numeric columns of a stats table that describe a model's quality or training."""
    return [c for c in stats.columns if c not in NON_METRIC_COLUMNS and pd.api.types.is_numeric_dtype(stats[c])]


def select_models(stats: pd.DataFrame, metric: str, threshold: float, above: bool) -> list[int]:
    """Indices of the models with ``metric >= threshold`` (``above``) or ``metric <= threshold``."""
    if metric not in stats.columns:
        raise ValueError(f"metric {metric!r} is not a column of the stats table")
    values = stats[metric].to_numpy(dtype=np.float64)
    keep = values >= threshold if above else values <= threshold
    return [int(i) for i in stats["model_index"].to_numpy()[keep]]


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over ``window`` epochs (shorter at the start); window 1 returns the values."""
    values = np.asarray(values, dtype=np.float64)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"smoothing window must be a positive integer, got {window!r}")
    if window == 1 or values.size == 0:
        return values
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def well_generalizing_counts(stats: pd.DataFrame, threshold: float) -> dict[str, int]:
    """Models well generalizing under each cut metric at ``threshold``: ``{"mae": n, "rmse": n}``."""
    return {metric: int((stats[metric] <= threshold).sum()) for metric in CUT_METRICS}


def summary_text(stats: pd.DataFrame, cut: GeneralizationCut) -> str:
    """One paragraph: population size, fraction well generalizing under ``cut`` and under the other cut
    metric at the same threshold, OOD accuracy, MAE, RMSE and clean-accuracy ranges."""
    n = len(stats)
    counts = well_generalizing_counts(stats, cut.threshold)
    others = [m for m in CUT_METRICS if m != cut.metric]
    parts = [f"{n} models; {counts[cut.metric]} ({counts[cut.metric] / n:.0%}) well generalizing ({cut.label})"
             + "".join(f"; {counts[m]} ({counts[m] / n:.0%}) with {m.upper()} ≤ {cut.threshold:g}" for m in others) + "."]
    for column, label in (("ood_accuracy", "OOD accuracy"), ("mae", "MAE"), ("rmse", "RMSE"), ("clean_accuracy", "clean accuracy")):
        values = stats[column]
        parts.append(f"{label}: min {values.min():.3f}, median {values.median():.3f}, max {values.max():.3f}.")
    return " ".join(parts)


def correlation_table(stats: pd.DataFrame, columns: Sequence[str] = CORRELATION_COLUMNS, method: str = "pearson") -> pd.DataFrame:
    """Correlation matrix (``"pearson"`` or ``"spearman"``) between metrics across the population."""
    missing = [c for c in columns if c not in stats.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the stats table")
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    return stats[list(columns)].astype(np.float64).corr(method=method)


def summary_figure(stats: pd.DataFrame, cut: GeneralizationCut, bins: int = 20) -> Figure:
    """Histograms of the OOD accuracy, the MAE and the RMSE over the population, the threshold of ``cut``
    marked on both diagram errors (the cut's own metric solid, the other dashed)."""
    fig = Figure(figsize=(12, 3.4))
    ax_acc, *ax_errors = fig.subplots(1, 3)
    ax_acc.hist(stats["ood_accuracy"], bins=bins, color="tab:blue", edgecolor="white")
    ax_acc.set_xlabel("OOD accuracy (mean over (W, realization) sets)")
    ax_acc.set_ylabel("models")
    counts = well_generalizing_counts(stats, cut.threshold)
    n = max(len(stats), 1)
    for ax, metric, colour in zip(ax_errors, CUT_METRICS, ("tab:green", "tab:orange"), strict=True):
        ax.hist(stats[metric], bins=bins, color=colour, edgecolor="white")
        role = "the cut" if metric == cut.metric else "same number, other metric"
        ax.axvline(cut.threshold, color="k", ls="-" if metric == cut.metric else "--", lw=1,
                   label=f"{metric.upper()} ≤ {cut.threshold:g} ({role}): {counts[metric]} of {len(stats)}")
        ax.set_xlabel(f"{metric.upper()}(predicted, target diagram)")
        ax.legend(fontsize=8)
    for ax in (ax_acc, *ax_errors):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{len(stats)} networks; well generalizing ({cut.label}): {counts[cut.metric]} "
                 f"({counts[cut.metric] / n:.0%}); median clean accuracy {stats['clean_accuracy'].median():.3f}", fontsize=10)
    fig.tight_layout()
    return fig


def scatter_figure(stats: pd.DataFrame, x: str, y: str, selected: Sequence[int] = (), current: int | None = None) -> Figure:
    """Scatter of two stats columns over the population; selected models filled, the current one ringed."""
    for column in (x, y):
        if column not in stats.columns:
            raise ValueError(f"column {column!r} is not in the stats table")
    fig = Figure(figsize=(4.8, 3.6))
    ax = fig.subplots()
    chosen = stats["model_index"].isin(list(selected)).to_numpy()
    ax.scatter(stats[x][~chosen], stats[y][~chosen], s=18, facecolors="none", edgecolors="0.5", label="other models")
    ax.scatter(stats[x][chosen], stats[y][chosen], s=18, color="tab:blue", label="selected by the filter")
    if current is not None and current in set(stats["model_index"]):
        row = stats[stats["model_index"] == current].iloc[0]
        ax.scatter([row[x]], [row[y]], s=90, facecolors="none", edgecolors="tab:red", linewidths=2, label=f"model {current}")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (shown by the image widgets, independent of the matplotlib backend)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show_figure(fig: Figure) -> None:
    """Display a figure as a PNG image in the notebook (works headless and with any backend)."""
    display(Image(data=figure_png(fig)))


def message_figure(text: str) -> Figure:
    """A figure showing only ``text`` (for views without content)."""
    fig = Figure(figsize=(6, 1.4))
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


# ----------------------------------------------------------------------------------------------
# views of one model
# ----------------------------------------------------------------------------------------------
def render_phase_diagrams(population: Population, index: int, state: ViewState) -> Figure:
    """Predicted diagram of model ``index`` beside the target, both with v_c(W)."""
    result = population.result(index)
    W, v = result.grid.W_values, result.grid.v_values
    fig = Figure(figsize=(9.5, 3.6))
    ax_pred, ax_target = fig.subplots(1, 2, sharey=True)
    summary = result.summary(population.cut)
    plot_phase_diagram(ax_pred, result.predicted, W, v,
                       title=f"model {index}: predicted (RMSE {summary['rmse']:.3f}, SSIM {summary['ssim']:.2f})")
    image = plot_phase_diagram(ax_target, result.target, W, v,
                               title=f"target ({result.grid.n_realizations} realizations)")
    ax_target.legend(loc="upper right", fontsize=8)
    fig.colorbar(image, ax=[ax_pred, ax_target], label=PHASE_LABEL)
    return fig


def render_history(population: Population, index: int, state: ViewState) -> Figure:
    """Training and validation loss and accuracy of model ``index``, smoothed over ``state.smoothing`` epochs."""
    history = dict(population.history(index))
    for key in HISTORY_KEYS:
        history[key] = smooth(history[key], state.smoothing)
    fig = Figure(figsize=(9, 3.4))
    plot_training_curves(history, axes=fig.subplots(1, 2))
    suffix = f", moving average over {state.smoothing} epochs" if state.smoothing > 1 else ""
    fig.suptitle(f"model {index}: training history{suffix}", fontsize=10)
    fig.tight_layout()
    return fig


VIEWS: dict[str, ViewRenderer] = {
    "phase diagram": render_phase_diagrams,
    "training history": render_history,
    "CAM": render_cam_view,
    "PCA": render_pca_view,
}


def register_view(name: str, render: ViewRenderer) -> None:
    """Add or replace a view of the browser: ``render(population, index, state) -> Figure``."""
    if not callable(render):
        raise ValueError(f"view {name!r}: render must be callable")
    VIEWS[name] = render


# ----------------------------------------------------------------------------------------------
# the widget
# ----------------------------------------------------------------------------------------------
class PopulationBrowser:
    """The ipywidgets of notebook 06 over a loaded :class:`~src.population.Population`.

    Parameters
    ----------
    population : the population (``load_population``).
    views : view name -> renderer (default: the module's :data:`VIEWS`, read when the browser is built).

    Attributes
    ----------
    metric, threshold, direction, model, x_axis, y_axis, smoothing, view : the control widgets.
    info : HTML line describing the selection.
    scatter_image, view_image : image widgets showing the figures.
    figures : the figures currently shown, ``"scatter"`` and ``"view"``.
    widget : the whole layout, to ``display``.
    """

    def __init__(self, population: Population, views: dict[str, ViewRenderer] | None = None) -> None:
        if population.stats.empty:
            raise ValueError(f"population {population.folder} has no models")
        self.population = population
        self.stats = population.stats
        self.views = dict(VIEWS if views is None else views)
        columns = metric_columns(self.stats)
        self.metric = widgets.Dropdown(options=columns, value=_default(columns, "metric"), description="metric")
        self.threshold = widgets.FloatSlider(description="threshold", continuous_update=False, readout_format=".3f")
        self.direction = widgets.ToggleButtons(options=["below", "above"], value="below", description="keep")
        self.model = widgets.Dropdown(description="model")
        self.x_axis = widgets.Dropdown(options=columns, value=_default(columns, "x"), description="x axis")
        self.y_axis = widgets.Dropdown(options=columns, value=_default(columns, "y"), description="y axis")
        self.smoothing = widgets.IntSlider(value=1, min=1, max=25, description="smoothing", continuous_update=False)
        self.view = widgets.ToggleButtons(options=list(self.views), value=next(iter(self.views)), description="view")
        self.info = widgets.HTML()
        self.scatter_image = widgets.Image(format="png")
        self.view_image = widgets.Image(format="png")
        self.figures: dict[str, Figure] = {}
        self._programmatic = False  # set while the browser itself changes widgets: observers stay quiet
        self._set_threshold_range()
        self._update_selection()
        self._observe(self.metric, self._on_metric)
        for control in (self.threshold, self.direction):
            self._observe(control, self._update_selection)
        for control in (self.x_axis, self.y_axis):
            self._observe(control, self._draw_scatter)
        self._observe(self.model, self._draw_all)
        for control in (self.smoothing, self.view):
            self._observe(control, self._draw_view)
        self.widget = widgets.VBox([
            widgets.HBox([self.metric, self.direction, self.threshold]),
            self.info,
            widgets.HBox([self.model, self.x_axis, self.y_axis]),
            self.scatter_image,
            widgets.HBox([self.view, self.smoothing]),
            self.view_image,
        ])

    @property
    def selected(self) -> list[int]:
        """Models passing the metric filter."""
        return select_models(self.stats, self.metric.value, self.threshold.value, self.direction.value == "above")

    def _observe(self, control: widgets.Widget, action: Callable[[], None]) -> None:
        def handler(change) -> None:
            if not self._programmatic:
                action()

        control.observe(handler, names="value")

    def _set_threshold_range(self) -> None:
        values = self.stats[self.metric.value].to_numpy(dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            high = low + 1.0
        cut = self.population.cut
        default = cut.threshold if self.metric.value == cut.metric else float(np.median(values))
        new_min, new_max = min(low, default), max(high, default)
        if new_min > self.threshold.max:  # keep min <= max at every step
            self.threshold.max, self.threshold.min = new_max, new_min
        else:
            self.threshold.min, self.threshold.max = new_min, new_max
        self.threshold.step = (new_max - new_min) / 200
        self.threshold.value = default

    def _on_metric(self) -> None:
        self._programmatic = True
        try:
            self._set_threshold_range()
        finally:
            self._programmatic = False
        self._update_selection()

    def _update_selection(self) -> None:
        selected = self.selected
        rows = self.stats.set_index("model_index")
        options = [(f"{i}  ({self.metric.value} = {rows.at[i, self.metric.value]:.3f})", i) for i in selected]
        sign = ">=" if self.direction.value == "above" else "<="
        self.info.value = (f"<b>{len(selected)}</b> of {len(self.stats)} models with {self.metric.value} {sign} "
                           f"{self.threshold.value:.3f}")
        previous = self.model.value
        self._programmatic = True
        try:
            self.model.options = options
            self.model.value = previous if previous in selected else (selected[0] if selected else None)
        finally:
            self._programmatic = False
        self._draw_all()

    def _draw_all(self) -> None:
        self._draw_scatter()
        self._draw_view()

    def _show(self, key: str, image: widgets.Image, fig: Figure) -> None:
        self.figures[key] = fig
        image.value = figure_png(fig)

    def _draw_scatter(self) -> None:
        fig = scatter_figure(self.stats, self.x_axis.value, self.y_axis.value, self.selected, self.model.value)
        self._show("scatter", self.scatter_image, fig)

    def _draw_view(self) -> None:
        if self.model.value is None:
            fig = message_figure("no model passes the filter: change the metric, threshold or direction")
        else:
            render = self.views[self.view.value]
            fig = render(self.population, int(self.model.value), ViewState(smoothing=int(self.smoothing.value)))
        self._show("view", self.view_image, fig)


def _default(columns: list[str], role: str) -> str:
    preferred = SUMMARY_DEFAULTS[role]
    return preferred if preferred in columns else columns[0]
