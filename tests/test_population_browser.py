"""The 100-CNN browser of notebook 06: driven from Python, and in a real browser (JupyterLab and Voilà).

The real-browser tests open the committed notebooks, with their parameters pointed at a two-model smoke
population, in headless Chromium (see ``browser_support``); they are skipped without Chromium and
Playwright, and fail instead under ``CI=true``.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.error
import urllib.request

import numpy as np
import psutil
import pytest
from plotly.callbacks import InputDeviceState, Points

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.base.presets import get_preset
from ssh_ood.figures import interpretation_figures, population_browser
from ssh_ood.figures.column_labels import column_label, format_value, is_integer_column
from ssh_ood.figures.population_browser import (
    MAX_WIDTH_PX,
    PIXELS_PER_INCH,
    PNG_SCALE,
    PopulationBrowser,
    png_size,
    scatter_figure,
)
from ssh_ood.ood.generalization_metrics import GeneralizationCut
from ssh_ood.ood.population import run_population
from ssh_ood.ood.population_settings import PopulationSettings
from ssh_ood.ood.population_tables import load_population
from ssh_ood.physics.datasets import write_datasets
from tests import browser_support
from tests.browser_support import chromium_page, copy_notebook, jupyter_server, require_browser

PRESET = "smoke"


@pytest.fixture(scope="module")
def population_dir(tmp_path_factory):
    """A two-model smoke population (its RMSEs are all above 0.2: nobody passes the default filter)."""
    data_dir = tmp_path_factory.mktemp("datasets")
    write_datasets(PRESET, 0, data_dir, progress=False)
    folder = tmp_path_factory.mktemp("population")
    run_population(PopulationSettings(get_preset(PRESET), 0, folder, model_indices=[0, 1], data_dir=data_dir, train_workers=1, progress=False))
    return folder


def click(browser: PopulationBrowser, position: int) -> None:
    """What Plotly does on a click on the ``position``-th point of the scatter: call the trace's callbacks."""
    trace = browser.scatter.data[0]
    points = Points(point_inds=[position], xs=[trace.x[position]], ys=[trace.y[position]], trace_name=trace.name,
                    trace_index=0)
    trace._dispatch_on_click(points, InputDeviceState(ctrl=False, alt=False, shift=False, meta=False, button=0,
                                                      buttons=1))


# ----------------------------------------------------------------------------------------------
# from Python
# ----------------------------------------------------------------------------------------------
def test_clicking_a_point_selects_that_network(population_dir):
    browser = PopulationBrowser(load_population(population_dir))
    assert browser.model.value is None and "no model" in browser.figures["view"].axes[0].texts[0].get_text()
    assert list(browser.scatter.data[1].x) == []  # no red ring yet
    stats = browser.stats
    click(browser, 1)
    chosen = int(stats["model_index"].iloc[1])
    assert browser.model.value == chosen
    assert "not kept by the filter" in browser.model.options[-1][0]
    assert browser.figures["view"].axes[0].get_title().startswith(f"model {chosen}: predicted")
    assert list(browser.scatter.data[1].x) == [stats[browser.x_axis.value].iloc[1]]  # the ring moved to it
    click(browser, 0)
    assert browser.model.value == int(stats["model_index"].iloc[0])
    browser.threshold.value = browser.threshold.max  # both kept now: the extra entry is gone
    assert [value for _, value in browser.model.options] == stats["model_index"].tolist()


def test_hover_shows_the_index_and_metrics():
    import pandas as pd

    stats = pd.DataFrame({"model_index": [4, 9], "rmse": [0.1, 0.3], "ssim": [0.8, 0.5], "ood_accuracy": [0.9, 0.6]})
    fig = scatter_figure(stats, "ssim", "ood_accuracy", selected=[4], current=9, metric="rmse")
    models, ring = fig.data
    assert models.customdata.tolist() == [[4, 0.1], [9, 0.3]]
    assert "model %{customdata[0]}" in models.hovertemplate and "RMSE = %{customdata[1]:.3f}" in models.hovertemplate
    assert "SSIM = %{x:.3f}" in models.hovertemplate and "OOD accuracy = %{y:.3f}" in models.hovertemplate
    assert models.marker.color[0] != models.marker.color[1]  # kept by the filter: filled
    assert list(ring.x) == [0.5] and ring.name == "model 9"
    with pytest.raises(ValueError, match="lpips"):
        scatter_figure(stats, "lpips", "ssim")


def test_counts_are_shown_as_integers():
    import pandas as pd

    stats = pd.DataFrame({"model_index": [4, 9], "epochs_run": [192, 57], "best_epoch": [190.0, 50.0],
                          "mae": [0.1, 0.3], "ood_accuracy": [0.9, 0.6]})
    models = scatter_figure(stats, "epochs_run", "ood_accuracy", metric="best_epoch").data[0]
    assert "epochs run = %{x:d}" in models.hovertemplate and "best epoch = %{customdata[1]:d}" in models.hovertemplate
    assert "OOD accuracy = %{y:.3f}" in models.hovertemplate
    assert [is_integer_column(stats[c]) for c in stats] == [True, True, True, False, False]
    assert format_value(192.0, "d") == "192" and format_value(0.25, ".3f") == "0.250"


def test_columns_have_readable_labels():
    assert column_label("probe_mid_bulk_shift") == "probe (centre, bulk density added): logit shift"
    assert column_label("probe_remove_zero_modes_flip") == "probe (zero modes removed): flips"
    assert column_label("pca_drift_block2_W0.05") == "PCA drift of block2 at W = 0.05"
    assert column_label("accuracy_W0.01") == "accuracy at W = 0.01"
    assert column_label("ood_macro_f1") == "OOD macro F1" and column_label("clean_f1_trivial") == "clean F1 trivial"
    assert column_label("something_new") == "something_new"


def test_the_shipped_browser_opens_on_the_probe_against_ood_accuracy():
    import csv

    folder = REPO_ROOT / "00_demonstrations_data" / "100_CNNs"
    browser = PopulationBrowser(load_population(folder))
    assert (browser.x_axis.value, browser.y_axis.value) == ("probe_mid_bulk_shift", "ood_accuracy")
    with open(folder / "diagnostics.csv", newline="") as f:  # read apart from the project's readers
        rows = {int(r["model_index"]): r for r in csv.DictReader(f)}
    shown = browser.scatter.data[0]
    indices = [int(i) for i, _ in shown.customdata]
    assert sorted(indices) == sorted(rows) and len(indices) == 100
    assert list(shown.x) == pytest.approx([float(rows[i]["probe_mid_bulk_shift"]) for i in indices], rel=1e-12)
    labels = dict((value, label) for label, value in browser.x_axis.options)
    assert {"cam_score", "probe_mid_bulk_shift", "mae"} <= set(labels)  # diagnostics and stats, both offered
    assert set(labels) == {value for _, value in browser.metric.options}  # as filters too
    assert labels["cam_score"] == "CAM score (edge-state share)" and "_" not in labels["probe_mid_bulk_shift"]
    assert browser.scatter.layout.xaxis.title.text == labels["probe_mid_bulk_shift"]
    browser.metric.value = "cam_score"  # a diagnostic as the filter: the models at or below its median
    median = float(np.median([float(r["cam_score"]) for r in rows.values()]))
    assert sorted(browser.selected) == sorted(i for i, r in rows.items() if float(r["cam_score"]) <= median)


def test_controls_only_where_they_act_and_views_fit_the_screen(population_dir):
    browser = PopulationBrowser(load_population(population_dir))
    browser.select_model(0)
    for view in browser.view.options:
        browser.view.value = view
        shown = browser.smoothing.layout.display != "none"
        assert shown == (view == "training history"), view
        fig = browser.figures["view"]
        width, _ = png_size(browser.view_image.value)
        assert browser.view_image.layout.width == f"{width // PNG_SCALE}px"  # shown at its own size, not stretched
        assert width // PNG_SCALE <= MAX_WIDTH_PX + 20, view  # bbox_inches="tight" may add a few pixels
        for ax in fig.axes:
            title = ax.title
            if title.get_text():
                assert title.get_fontsize() * PIXELS_PER_INCH / 72 >= 10, (view, title.get_text())


def test_phase_diagram_view_texts_stay_clear_of_each_other(population_dir):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def overlap(a, b) -> bool:
        return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1

    fig = population_browser.render_phase_diagrams(load_population(population_dir), 0, population_browser.ViewState())
    population_browser.fit_width(fig)  # as shown
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    predicted, target, colorbar = fig.axes
    titles = [ax.title.get_window_extent(renderer) for ax in (predicted, target)]
    assert not overlap(*titles), "the panel titles run into each other"
    for title, ax in zip(titles, (predicted, target), strict=True):  # each title within its own panel's width
        box = ax.get_window_extent(renderer)
        assert box.x0 - 2 <= title.x0 and title.x1 <= box.x1 + 2
    label = colorbar.yaxis.label.get_window_extent(renderer)
    for ax in (predicted, target):
        assert not overlap(label, ax.get_window_extent(renderer)), "the colour-bar label covers a panel"
        assert not overlap(colorbar.get_window_extent(renderer), ax.get_window_extent(renderer))


def test_figures_are_shown_sharp_and_no_wider_than_the_page(monkeypatch):
    from matplotlib.figure import Figure

    shown = []
    monkeypatch.setattr(population_browser, "display", shown.append)
    for inches in (5.0, 15.0):
        fig = Figure(figsize=(inches, 3))
        fig.subplots().set_title("title")
        population_browser.show_figure(fig)
        image = shown[-1]
        assert abs(png_size(image.data)[0] - PNG_SCALE * image.width) <= 1  # twice the pixels it takes on screen
        assert image.width <= MAX_WIDTH_PX + 20
    assert shown[0].width < 600 < shown[1].width  # a small figure is not stretched, a wide one only shrunk


def test_slow_views_say_what_they_generate_and_where(population_dir, tmp_path, monkeypatch):
    loaded = load_population(population_dir)
    population = dataclasses.replace(loaded, manifest={**loaded.manifest, "data_dir": ""})  # datasets not found
    target = tmp_path / "datasets" / PRESET
    monkeypatch.setattr(interpretation_figures, "datasets_dir", lambda preset: target)
    browser = PopulationBrowser(population)
    browser.select_model(1)
    messages = []
    browser.status.observe(lambda change: messages.append(change["new"]), names="value")
    progress = []
    browser.progress.observe(lambda change: progress.append(change["new"]), names="value")
    browser.view.value = "CAM"
    generating = [m for m in messages if m.startswith("generating")]
    assert generating and str(target) in generating[0] and "'smoke'" in generating[0]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert (target / "test_W0.npz").is_file()
    assert browser.figures["view"].get_suptitle().startswith("model 1: CAM score")
    messages.clear()
    browser.view.value = "PCA"  # the datasets are there now: nothing generated
    assert not [m for m in messages if m.startswith("generating")]
    assert messages[0] == "drawing the PCA view of model 1 ..."


def test_the_filter_starts_at_the_populations_cut_or_a_given_one(population_dir):
    population = load_population(population_dir)
    stats = population.stats
    default = PopulationBrowser(population)
    assert (default.metric.value, default.threshold.value) == (population.cut.metric, population.cut.threshold)
    assert default.x_axis.value == population.cut.metric
    browser = PopulationBrowser(population, cut=GeneralizationCut("rmse", 0.7))
    assert (browser.metric.value, browser.threshold.value, browser.x_axis.value) == ("rmse", 0.7, "rmse")
    assert browser.selected == stats.loc[stats["rmse"] <= 0.7, "model_index"].tolist()
    assert "RMSE <=" in browser.info.value
    browser.metric.value = "ssim"
    assert browser.threshold.value == pytest.approx(float(stats["ssim"].median()))
    browser.metric.value = "rmse"  # back to the cut's metric: back to its threshold
    assert browser.threshold.value == 0.7


# ----------------------------------------------------------------------------------------------
# in a real browser
# ----------------------------------------------------------------------------------------------
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
ALL_EXECUTED = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
STDERR = "[data-mime-type='application/vnd.jupyter.stderr']"


@pytest.fixture(scope="module")
def notebooks(population_dir, tmp_path_factory):
    """Copies of notebooks 05 and 06 in a scratch folder, parameters pointed at the smoke population."""
    require_browser()
    root = tmp_path_factory.mktemp("notebooks")
    figures = root / "figures"
    copy_notebook(REPO_ROOT / "06_100_cnns_analysis.ipynb", root / "06.ipynb",
                  {"POPULATION_DIR": str(population_dir), "FIGURES_DIR": str(figures), "CREATE_IF_MISSING": False})
    copy_notebook(REPO_ROOT / "05_explain_windnum.ipynb", root / "05.ipynb",
                  {"PRESET": PRESET, "FIGURES_DIR": str(figures),
                   "REFERENCE": str(REPO_ROOT / "00_demonstrations_data/reference/targets_25_reals.npy")})
    return root


@pytest.fixture(scope="module")
def lab(notebooks, tmp_path_factory):
    with jupyter_server("lab", notebooks, tmp_path_factory.mktemp("lab_home")) as server:
        yield server


def open_and_run_all(page, server, name: str) -> None:
    """Open ``name`` in JupyterLab (``?reset``: no restored workspace), check it is unmodified, run all cells."""
    page.goto(server.page(f"/lab/tree/{name}", "reset"), timeout=120_000)
    page.wait_for_selector(IDLE, timeout=90_000)
    page.wait_for_timeout(1000)
    assert page.locator(".jp-mod-dirty").count() == 0, "opening the notebook modified it"
    page.locator(".jp-Notebook").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(ALL_EXECUTED, timeout=240_000)
    page.wait_for_selector(IDLE, timeout=60_000)


def assert_clean_outputs(page) -> None:
    body = page.locator(".jp-Notebook, body").first.inner_text()
    assert "Error displaying widget" not in body and "VBox(children=" not in body
    assert page.locator(STDERR).count() == 0, page.locator(STDERR).first.inner_text()


def changes(page, locator, action, timeout: float = 60.0) -> bool:
    """Whether ``action()`` changes what ``locator`` shows (its screenshot) within ``timeout`` seconds."""
    locator.scroll_into_view_if_needed()
    before = locator.screenshot()
    action()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        if locator.screenshot() != before:
            return True
    return False


def click_point(page, position: int) -> None:
    point = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator("path.point").nth(position)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_notebook_06_in_jupyterlab(lab):
    with chromium_page() as page:
        open_and_run_all(page, lab, "06.ipynb")
        assert_clean_outputs(page)
        assert page.locator(".js-plotly-plot").count() == 1
        assert page.locator(".js-plotly-plot .scatterlayer .trace").first.locator("path.point").count() == 2
        view = page.locator(".widget-image").last
        assert changes(page, view, lambda: click_point(page, 1)), "clicking a network did not show it"
        assert "not kept by the filter" in page.locator(".widget-dropdown select").nth(1).inner_text().replace("\xa0", " ")
        smoothing = page.locator("label.widget-label", has_text="smoothing")
        assert smoothing.is_hidden()
        assert changes(page, view, lambda: page.get_by_role("button", name="training history").click())
        assert smoothing.is_visible()
        assert_clean_outputs(page)


def test_notebook_05_in_jupyterlab(lab):
    with chromium_page() as page:
        open_and_run_all(page, lab, "05.ipynb")
        assert_clean_outputs(page)
        assert page.locator(".jp-OutputArea-output img").count() >= 3
        assert "'smoke' preset" in page.locator(".jp-Notebook").inner_text()


def test_notebook_06_as_a_voila_dashboard(notebooks, tmp_path):
    with jupyter_server("voila", notebooks, tmp_path, notebook="06.ipynb") as server, chromium_page() as page:
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(server.page("/"), timeout=240_000)  # Voilà runs the whole notebook before the page loads
        page.wait_for_selector(".js-plotly-plot .scatterlayer path.point", timeout=60_000)
        body = page.locator("body").inner_text()
        assert "Error displaying widget" not in body and "Traceback" not in body and "VBox(children=" not in body
        assert "import " not in body  # a dashboard: no code cells
        assert page.locator("mjx-container").count() > 0  # formulas typeset, without a CDN
        page.wait_for_timeout(1000)
        assert page.evaluate("window.scrollY") == 0  # the page opens at its top
        controls = page.locator(".widget-dropdown").first.bounding_box()
        assert controls["y"] + controls["height"] < browser_support.VIEWPORT["height"], "the browser is below the first screen"
        view = page.locator(".widget-image").last
        assert changes(page, view, lambda: click_point(page, 0)), "clicking a network did not show it"
        assert changes(page, view, lambda: page.get_by_role("button", name="training history").click())
    # the widget manager's labextension and Voilà's bundled JupyterLab share their singletons without conflict
    mismatches = [text for text in console if "Unsatisfied version" in text]
    assert not mismatches, f"{len(mismatches)} shared-module version warnings, e.g. {mismatches[0]}"
    log = (tmp_path / "voila.log").read_text()
    assert "_xsrf" not in log and " 403 " not in log  # every request of the widgets was accepted


KERNEL_ID = "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"


def kernel_processes(server) -> int:
    """Kernels running under the server (its child processes running ipykernel)."""
    count = 0
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            count += process.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(process.cmdline())
        except psutil.Error:  # ended (or became a zombie) while being read
            pass
    return count


def kernel_alive(server, kernel_id: str) -> bool:
    """Whether the server's REST API knows the kernel (GET /api/kernels/<id>: 200, or 404 once shut down)."""
    try:
        with urllib.request.urlopen(server.page(f"/api/kernels/{kernel_id}"), timeout=30) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def eventually(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def slider_notebook(folder) -> str:
    """A one-cell notebook showing a widget, in ``folder``: a dashboard whose page loads in seconds, for the tests of
    Voilà's kernel lifecycle (notebook 06 itself is opened in ``test_notebook_06_as_a_voila_dashboard``)."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider()")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "slider.ipynb")
    return "slider.ipynb"


def load_dashboard(page, server) -> str:
    """Load the dashboard in ``page``; its kernel's id once the widget is drawn."""
    page.goto(server.page("/"), timeout=120_000)
    page.wait_for_selector(".widget-slider", timeout=60_000)
    return page.evaluate(KERNEL_ID)


def test_dashboard_reloads_and_closed_tabs_leave_no_kernel(tmp_path):
    require_browser()
    name = slider_notebook(tmp_path)
    with jupyter_server("voila", tmp_path, tmp_path / "home", notebook=name) as server, chromium_page() as page:
        kernels = [load_dashboard(page, server)]
        assert kernel_alive(server, kernels[0]) and kernel_processes(server) == 1
        for _ in range(3):
            page.reload(timeout=120_000)
            page.wait_for_selector(".widget-slider", timeout=60_000)
            kernels.append(page.evaluate(KERNEL_ID))
        tab = page.context.new_page()  # a second tab, closed as a user closes it
        kernels.append(load_dashboard(tab, server))
        assert len(set(kernels)) == len(kernels) == 5  # a kernel per page load
        tab.close(run_before_unload=True)
        assert eventually(lambda: kernel_processes(server) == 1, 30), f"{kernel_processes(server)} kernels for one page"
        assert eventually(lambda: [kernel_alive(server, k) for k in kernels] == [False, False, False, True, False], 30)
        page.goto("about:blank")
        assert eventually(lambda: kernel_processes(server) == 0, 30), "the last page's kernel outlived it"
        assert eventually(lambda: not kernel_alive(server, kernels[3]), 30)  # and the server forgot it
    log = (tmp_path / "home" / "voila.log").read_text()
    assert "_xsrf" not in log and " 403 " not in log


def test_dashboard_culls_a_kernel_whose_page_vanished(tmp_path):
    require_browser()
    name = slider_notebook(tmp_path)
    with (jupyter_server("voila", tmp_path, tmp_path / "home", notebook=name, cull_idle_s=4,
                         cull_interval_s=1) as server, chromium_page() as page):
        page.goto(server.page("/"), timeout=120_000)
        page.wait_for_selector(".widget-slider", timeout=60_000)
        kernel = page.evaluate(KERNEL_ID)
        time.sleep(8)  # idle for twice the timeout, but its page is connected: kept
        assert kernel_alive(server, kernel)
        page.close(run_before_unload=False)  # the page vanishes without a word (a crash): no shutdown request
        assert eventually(lambda: not kernel_alive(server, kernel), 30), "the orphaned kernel was not culled"
        assert kernel_processes(server) == 0


def test_a_missing_browser_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(browser_support, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="Chromium"):
        browser_support.require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Chromium"):
        browser_support.require_browser()


def test_a_failing_test_leaves_no_server_or_kernel(tmp_path):
    with pytest.raises(RuntimeError, match="the test failed"):
        with jupyter_server("lab", tmp_path, tmp_path) as server:
            request = urllib.request.Request(server.page("/api/kernels"), data=b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 201
            processes = psutil.Process(server.process.pid).children(recursive=True) + [psutil.Process(server.process.pid)]
            assert any("ipykernel" in " ".join(p.cmdline()) for p in processes)
            raise RuntimeError("the test failed")
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
