"""Interactive browser of a CNN population (notebook 06); its summary figure is in :mod:`.population_summary`.

:class:`PopulationBrowser` builds the widgets of notebook 06:

- a metric dropdown, a threshold slider and a below/above toggle select the models whose metric lies
  below (<=) or above (>=) the threshold; the model selector lists them. The filter starts at the
  population's well-generalizing cut (``population.cut``, e.g. MAE <= 0.2);
- an interactive scatter of two columns of ``stats.csv`` or ``diagnostics.csv`` (:func:`browser_table`) over
  the whole population (a Plotly ``FigureWidget``), under readable names (:mod:`.column_labels`); it opens
  on the clean-data probe ``probe_mid_bulk_shift`` against the OOD accuracy. Hovering a network shows its
  index and metrics (counts as integers), clicking it selects it;
- a view selector shows the selected model: its predicted phase diagram beside the target (with the
  thermodynamic boundary v_c(W)), its training history (smoothed by the smoothing slider, shown only
  for this view), its CAM or the PCA of its GAP features, or any view registered later. Slow views
  report what they are doing (e.g. generating the datasets they need, and where) in a status line.

Why Plotly's ``FigureWidget`` for the scatter: it is an anywidget whose JavaScript (plotly.js included)
ships inside the Python package, so it renders and answers hover and click events in JupyterLab and in
Voilà with no CDN and no network, and each event costs no server-side redraw.

Views are pluggable: ``register_view(name, render)`` with ``render(population, index, state) -> Figure``.
View figures are ``matplotlib.figure.Figure`` (no pyplot state), shown as PNGs rendered at twice the
screen resolution and displayed at their natural size (never wider than :data:`MAX_WIDTH_PX`, never
stretched). The figures shown are kept in ``browser.figures`` (``"scatter"``: the Plotly figure,
``"view"``: the matplotlib figure) so tests can drive the widgets from Python and inspect what is shown.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import Image, display
from matplotlib.figure import Figure

from ..base.validation import require_int
from ..interpret.diagnostics import DIAGNOSTICS_FILE, load_diagnostics
from ..nets.model_folders import HISTORY_KEYS
from ..ood.generalization_metrics import DEFAULT_CUT_METRIC, GeneralizationCut
from ..ood.population_tables import Population
from .column_labels import column_label, format_value, value_format
from .interpretation_figures import Reporter, render_cam_view, render_pca_view
from .plotting import PHASE_LABEL, plot_phase_diagram
from .training_figures import plot_training_curves

NON_METRIC_COLUMNS = ("model_index", "model_seed", "stopped_early", "well_generalizing")
# the scatter opens on the finding: the clean-data probe against OOD accuracy (notebook 08); a population
# without diagnostics.csv opens on the cut's metric instead
SCATTER_X_DEFAULT = "probe_mid_bulk_shift"
SCATTER_Y_DEFAULT = "ood_accuracy"
MAX_WIDTH_PX = 1100  # widest figure shown: fits the notebook column of a 1366-px screen, in JupyterLab and Voilà
PIXELS_PER_INCH = 100  # screen pixels per figure inch: 10-pt text is 14 px high
PNG_SCALE = 2  # PNGs carry twice the screen pixels, sharp on high-density screens
CONTROL_STYLE = {"description_width": "80px"}  # every control's label has this width, so the controls line up


@dataclass(frozen=True)
class ViewState:
    """What a view may depend on besides the model.

    Attributes
    ----------
    smoothing : history smoothing window (epochs).
    report : callback through which a slow view reports progress (None: report nothing).
    """

    smoothing: int = 1
    report: Reporter | None = None


ViewRenderer = Callable[[Population, int, ViewState], Figure]


# ----------------------------------------------------------------------------------------------
# pure helpers (tested directly)
# ----------------------------------------------------------------------------------------------
def metric_columns(stats: pd.DataFrame) -> list[str]:
    """Numeric columns of a stats table that describe a model's quality or training."""
    return [c for c in stats.columns if c not in NON_METRIC_COLUMNS and pd.api.types.is_numeric_dtype(stats[c])]


def browser_table(population: Population) -> pd.DataFrame:
    """``stats.csv`` of ``population`` with the columns of its ``diagnostics.csv`` (when it has one) joined on
    ``model_index``; a column in both keeps the stats value. One row per model, in the order of ``stats``."""
    if not (population.folder / DIAGNOSTICS_FILE).is_file():
        return population.stats
    diagnostics = load_diagnostics(population.folder)
    extra = ["model_index", *(c for c in diagnostics.columns if c not in population.stats.columns)]
    table = population.stats.merge(diagnostics[extra], on="model_index", how="left", validate="one_to_one")
    if len(table) != len(population.stats):
        raise ValueError(f"{population.folder}: diagnostics.csv does not match stats.csv model for model")
    return table


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
    window = require_int("smoothing window", window, minimum=1)
    if window == 1 or values.size == 0:
        return values
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def scatter_figure(stats: pd.DataFrame, x: str, y: str, selected: Sequence[int] = (), current: int | None = None,
                   metric: str = DEFAULT_CUT_METRIC) -> go.Figure:
    """Interactive scatter of two stats columns: selected models filled, the current one ringed in red.

    Trace 0 holds every model (in the order of ``stats``; ``customdata`` = model index and ``metric``) and
    answers clicks; trace 1 is the ring around ``current``. Hovering a point shows the model's index,
    ``x``, ``y`` and ``metric``.
    """
    for column in (x, y, metric):
        if column not in stats.columns:
            raise ValueError(f"column {column!r} is not in the stats table")
    indices = stats["model_index"].to_numpy()
    chosen = np.isin(indices, list(selected))
    fx, fy, fm = (value_format(stats[column]) for column in (x, y, metric))
    hover = f"model %{{customdata[0]}}<br>{column_label(x)} = %{{x:{fx}}}<br>{column_label(y)} = %{{y:{fy}}}"
    if metric not in (x, y):
        hover += f"<br>{column_label(metric)} = %{{customdata[1]:{fm}}}"
    hover += "<extra></extra>"
    models = go.Scatter(
        x=stats[x], y=stats[y], mode="markers", name="models (filled: kept by the filter)",
        customdata=np.column_stack([indices, stats[metric].to_numpy(dtype=np.float64)]), hovertemplate=hover,
        marker={"size": 9, "color": np.where(chosen, "#1f77b4", "rgba(0,0,0,0)").tolist(),
                "line": {"width": 1.2, "color": np.where(chosen, "#1f77b4", "#7f7f7f").tolist()}},
    )
    row = stats[stats["model_index"] == current]
    ring = go.Scatter(
        x=row[x], y=row[y], mode="markers", name=f"model {current}" if len(row) else "no model selected",
        hoverinfo="skip", marker={"size": 18, "color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": "#d62728"}},
    )
    fig = go.Figure([models, ring])
    fig.update_layout(
        width=560, height=400, margin={"l": 60, "r": 10, "t": 40, "b": 50}, template="simple_white",
        title={"text": "click a network to select it", "font": {"size": 13}}, font={"size": 13},
        xaxis_title=column_label(x), yaxis_title=column_label(y), hovermode="closest", clickmode="event",
        legend={"orientation": "h", "y": -0.25, "x": 0, "font": {"size": 11}}, showlegend=True,
    )
    return fig


def figure_png(fig: Figure, dpi: int = PIXELS_PER_INCH) -> bytes:
    """PNG bytes of a figure (shown by the image widgets, independent of the matplotlib backend)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes, read from the header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not PNG data")
    return struct.unpack(">II", png[16:24])


def fit_width(fig: Figure, max_px: int = MAX_WIDTH_PX) -> Figure:
    """Shrink ``fig`` (both sides, text sizes kept) so it is at most ``max_px`` screen pixels wide."""
    width, height = fig.get_size_inches()
    if width * PIXELS_PER_INCH > max_px:
        factor = max_px / (width * PIXELS_PER_INCH)
        fig.set_size_inches(width * factor, height * factor)
    return fig


def show_figure(fig: Figure) -> None:
    """Display a figure in the notebook as a sharp PNG at its natural size (works headless, any backend).

    A figure wider than :data:`MAX_WIDTH_PX` is first shrunk to it (:func:`fit_width`, which resizes ``fig``),
    so it is never scaled down by the page with its text.
    """
    fit_width(fig)
    png = figure_png(fig, dpi=PIXELS_PER_INCH * PNG_SCALE)
    display(Image(data=png, width=png_size(png)[0] // PNG_SCALE))


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
    # constrained layout: each title over its own panel (two lines for the predicted one) and the colour
    # bar in a column of its own, its label beside it rather than over a panel
    fig = Figure(figsize=(9.5, 4.0), layout="constrained")
    ax_pred, ax_target = fig.subplots(1, 2, sharey=True)
    summary = result.summary(population.cut)
    plot_phase_diagram(ax_pred, result.predicted, W, v, title=f"model {index}: predicted\n"
                       f"MAE {summary['mae']:.3f}, RMSE {summary['rmse']:.3f}, SSIM {summary['ssim']:.2f}")
    image = plot_phase_diagram(ax_target, result.target, W, v,
                               title=f"target\n(mean over {result.grid.n_realizations} realizations)")
    ax_target.set_ylabel("")  # shared with the predicted panel
    ax_target.legend(loc="upper right", fontsize=8)
    fig.colorbar(image, ax=[ax_pred, ax_target], label=PHASE_LABEL, fraction=0.04, pad=0.02)
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
SMOOTHED_VIEWS = frozenset({"training history"})  # the views the smoothing slider acts on


def register_view(name: str, render: ViewRenderer) -> None:
    """Add or replace a view of the browser: ``render(population, index, state) -> Figure``."""
    if not callable(render):
        raise ValueError(f"view {name!r}: render must be callable")
    VIEWS[name] = render


# ----------------------------------------------------------------------------------------------
# the widget
# ----------------------------------------------------------------------------------------------
class PopulationBrowser:
    """The widgets of notebook 06 over a loaded :class:`~ssh_ood.ood.population_tables.Population`.

    Parameters
    ----------
    population : the population (``load_population``).
    views : view name -> renderer (default: the module's :data:`VIEWS`, read when the browser is built).
    cut : the well-generalizing cut the filter starts at, and returns to when its metric is chosen again
        (default: the population's, ``population.cut``); other metrics start at their median.
    table : one row per model, ``model_index`` and the columns offered as filter and axes (default:
        :func:`browser_table`, ``stats.csv`` with the clean-data diagnostics of ``diagnostics.csv`` when the
        population has them). The scatter opens on :data:`SCATTER_X_DEFAULT` against
        :data:`SCATTER_Y_DEFAULT` when the table has them.

    Attributes
    ----------
    metric, threshold, direction, model, x_axis, y_axis, smoothing, view : the control widgets.
    info : HTML line describing the selection.
    status : HTML line saying what a slow view is doing; progress : its progress bar (hidden when idle).
    scatter : the Plotly ``FigureWidget`` of the population (hover: a network's metrics; click: select it).
    view_image : image widget showing the selected view.
    figures : the figures currently shown, ``"scatter"`` (Plotly) and ``"view"`` (matplotlib).
    widget : the whole layout, to ``display``.
    """

    def __init__(self, population: Population, views: dict[str, ViewRenderer] | None = None,
                 cut: GeneralizationCut | None = None, table: pd.DataFrame | None = None) -> None:
        if population.stats.empty:
            raise ValueError(f"population {population.folder} has no models")
        self.population = population
        self.stats = browser_table(population) if table is None else table
        self.views = dict(VIEWS if views is None else views)
        self.cut = population.cut if cut is None else cut
        columns = metric_columns(self.stats)
        if self.cut.metric not in columns:
            raise ValueError(f"cut metric {self.cut.metric!r} is not a metric column of the stats table: {columns}")

        def control(cls, width: str, **kwargs):
            return cls(style=CONTROL_STYLE, layout=widgets.Layout(width=width), **kwargs)

        def buttons(options: list[str], value: str) -> widgets.ToggleButtons:
            # no description: a ToggleButtons label sits above its buttons, so a Label beside them is used
            style = {"button_width": "auto"}
            return widgets.ToggleButtons(options=options, value=value, style=style)

        options = [(column_label(column), column) for column in columns]
        self.metric = control(widgets.Dropdown, "300px", options=options, value=self.cut.metric,
                              description="metric")
        self.direction = buttons(["below", "above"], "below")
        self.threshold = control(widgets.FloatSlider, "420px", description="threshold", continuous_update=False,
                                 readout_format=".3f")
        self.model = control(widgets.Dropdown, "300px", description="model")
        self.x_axis = control(widgets.Dropdown, "400px", options=options,
                              value=SCATTER_X_DEFAULT if SCATTER_X_DEFAULT in columns else self.cut.metric,
                              description="x axis")
        self.y_axis = control(widgets.Dropdown, "400px", options=options,
                              value=SCATTER_Y_DEFAULT if SCATTER_Y_DEFAULT in columns else columns[0],
                              description="y axis")
        self.view = buttons(list(self.views), next(iter(self.views)))
        self.smoothing = control(widgets.IntSlider, "360px", value=1, min=1, max=25, description="smoothing",
                                 continuous_update=False)
        self.info = widgets.HTML()
        self.status = widgets.HTML()
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(display="none", width="300px"))
        self.scatter: go.FigureWidget | None = None  # made by the first draw, holding its traces from the start
        self.view_image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.figures: dict[str, object] = {}
        self._programmatic = False  # set while the browser itself changes widgets: observers stay quiet
        self._set_threshold_range()
        self._update_selection()
        self._observe(self.metric, self._on_metric)
        for widget in (self.threshold, self.direction):
            self._observe(widget, self._update_selection)
        for widget in (self.x_axis, self.y_axis):
            self._observe(widget, self._draw_scatter)
        self._observe(self.model, self._draw_all)
        self._observe(self.smoothing, self._draw_view)
        self._observe(self.view, self._on_view)
        row = widgets.Layout(align_items="center", flex_flow="row wrap")

        def label(text: str) -> widgets.Label:
            return widgets.Label(text, layout=widgets.Layout(width=CONTROL_STYLE["description_width"],
                                                             justify_content="flex-end", padding="0 8px 0 0"))

        self.widget = widgets.VBox([
            widgets.HBox([self.metric, label("keep"), self.direction, self.threshold], layout=row),
            self.info,
            widgets.HBox([self.model, self.x_axis, self.y_axis], layout=row),
            self.scatter,
            widgets.HBox([label("view"), self.view, self.smoothing], layout=row),
            widgets.HBox([self.progress, self.status], layout=row),
            self.view_image,
        ])
        self._show_controls()

    @property
    def selected(self) -> list[int]:
        """Models passing the metric filter."""
        return select_models(self.stats, self.metric.value, self.threshold.value, self.direction.value == "above")

    def select_model(self, index: int) -> None:
        """Show model ``index`` (what a click on its point does); a model outside the filter is listed too."""
        index = int(index)
        if index not in set(self.stats["model_index"]):
            raise ValueError(f"model {index} is not in the population")
        if index == self.model.value:
            return
        if index not in [value for _, value in self.model.options]:
            self._set_model_options(self.selected, extra=index)
        self._programmatic = True
        try:
            self.model.value = index
        finally:
            self._programmatic = False
        self._draw_all()

    def _observe(self, control: widgets.Widget, action: Callable[[], None]) -> None:
        def handler(change) -> None:
            if not self._programmatic:
                action()

        control.observe(handler, names="value")

    def _set_threshold_range(self) -> None:
        metric = self.metric.value
        values = self.stats[metric].to_numpy(dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            high = low + 1.0
        default = self.cut.threshold if metric == self.cut.metric else float(np.median(values))
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

    def _on_view(self) -> None:
        self._show_controls()
        self._draw_view()

    def _show_controls(self) -> None:
        self.smoothing.layout.display = "flex" if self.view.value in SMOOTHED_VIEWS else "none"

    def _set_model_options(self, selected: list[int], extra: int | None = None) -> None:
        rows = self.stats.set_index("model_index")
        metric = self.metric.value
        spec = value_format(self.stats[metric])
        label = column_label(metric)
        options = [(f"{i}  ({label} = {format_value(rows.at[i, metric], spec)})", i) for i in selected]
        if extra is not None and extra not in selected:
            options.append((f"{extra}  ({label} = {format_value(rows.at[extra, metric], spec)}, not kept by the filter)",
                            extra))
        self._programmatic = True
        try:
            previous = self.model.value
            self.model.options = options
            values = [value for _, value in options]
            self.model.value = previous if previous in values else (values[0] if values else None)
        finally:
            self._programmatic = False

    def _update_selection(self) -> None:
        selected = self.selected
        sign = ">=" if self.direction.value == "above" else "<="
        self.info.value = (f"<b>{len(selected)}</b> of {len(self.stats)} models with "
                           f"{column_label(self.metric.value)} {sign} "
                           f"{format_value(self.threshold.value, value_format(self.stats[self.metric.value]))}")
        self._set_model_options(selected)
        self._draw_all()

    def _draw_all(self) -> None:
        self._draw_scatter()
        self._draw_view()

    def _on_scatter_click(self, trace, points, selector) -> None:
        if points.point_inds:
            self.select_model(int(self.stats["model_index"].iloc[points.point_inds[0]]))

    def _draw_scatter(self) -> None:
        fig = scatter_figure(self.stats, self.x_axis.value, self.y_axis.value, self.selected, self.model.value,
                             metric=self.metric.value)
        self.figures["scatter"] = fig
        if self.scatter is None:
            # Voilà builds a widget from its state when the page loads and misses the messages Plotly sends
            # for later edits made before that; so the widget starts out holding the first figure
            self.scatter = go.FigureWidget(fig)
            self.scatter.data[0].on_click(self._on_scatter_click)
            return
        with self.scatter.batch_update():
            for shown, new in zip(self.scatter.data, fig.data, strict=True):
                shown.update({key: value for key, value in new.to_plotly_json().items() if key != "type"})
            self.scatter.layout = fig.layout

    def _report(self, message: str, fraction: float | None = None) -> None:
        self.status.value = message
        if fraction is None:
            self.progress.layout.display = "none"
        else:
            self.progress.layout.display = "flex"
            self.progress.value = float(min(max(fraction, 0.0), 1.0))

    def _draw_view(self) -> None:
        name = self.view.value
        if self.model.value is None:
            fig = message_figure("no model passes the filter: change the metric, threshold or direction")
        else:
            index = int(self.model.value)
            self._report(f"drawing the {name} view of model {index} ...")
            start = time.perf_counter()
            state = ViewState(smoothing=int(self.smoothing.value), report=self._report)
            fig = self.views[name](self.population, index, state)
            elapsed = time.perf_counter() - start
            self._report(f"{name} view of model {index} drawn in {elapsed:.1f} s" if elapsed >= 1.0 else "")
        fit_width(fig)
        png = figure_png(fig, dpi=PIXELS_PER_INCH * PNG_SCALE)
        self.figures["view"] = fig
        self.view_image.value = png
        self.view_image.layout.width = f"{png_size(png)[0] // PNG_SCALE}px"
