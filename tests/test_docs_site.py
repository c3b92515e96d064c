"""The documentation site (``make docs``, ``docs/build.py``) built from the smoke run's executed notebooks and
opened in a headless Chromium, offline: every notebook page shows its figures, the formulas are typeset, the
console shows no error, and no page asks for anything from another host."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.commands.reproduce import NOTEBOOKS
from tests.browser_support import CHROMIUM_ARGS, LOCAL_HOSTS, VIEWPORT, require_browser

BUILD = REPO_ROOT / "docs" / "build.py"
PAGES = ("index", "findings", "recipe_study", "physics_and_methods", "command_line", "reliability", "performance",
         "dashboard", "gallery", "code_map", "docs_site", "notebooks", "api")


def test_every_relative_link_of_the_readme_and_the_pages_resolves():
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            path = target.split("#")[0]
            if path and "://" not in path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target}")
    assert not broken, broken


@pytest.fixture(scope="module")
def site(smoke_reproduction, tmp_path_factory) -> Path:
    """The site built by ``docs/build.py`` from the smoke run's executed notebooks (the build time is printed)."""
    notebooks = smoke_reproduction[0] / "executed_notebooks"
    out = tmp_path_factory.mktemp("docs") / "html"
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(BUILD), "--notebooks", str(notebooks), "--out", str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"docs site built in {time.monotonic() - start:.0f} s; warnings: {result.stderr.count('WARNING')}")
    return out


@contextlib.contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output is its assertions
        pass


def test_the_site_holds_every_page_notebook_and_module(site):
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page
    for notebook in NOTEBOOKS.values():
        assert (site / "notebooks" / f"{Path(notebook).stem}.html").is_file(), notebook
    api = {path.stem for path in (site / "api").glob("ssh_ood*.html")}
    assert {"ssh_ood.physics.data_generation", "ssh_ood.nets.architecture", "ssh_ood.commands.reproduce"} <= api
    # autodoc ran: the docstring of a function, not only the page's title
    assert "should_stop" in (site / "api" / "ssh_ood.nets.training_recipe.html").read_text()
    # no page carries the widgets' saved state (megabytes of JavaScript that the site never runs)
    assert max(path.stat().st_size for path in (site / "notebooks").glob("*.html")) < 1_000_000


def test_every_notebook_page_shows_its_figures_offline_in_chromium(site, smoke_reproduction):
    from playwright.sync_api import sync_playwright

    executable = require_browser()
    outside, errors = [], []
    with _served(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)

            def route(route) -> None:
                host = urllib.parse.urlsplit(route.request.url).hostname
                if host in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            for notebook in NOTEBOOKS.values():
                executed = nbformat.read(smoke_reproduction[0] / "executed_notebooks" / notebook, as_version=4)
                n_images = sum("image/png" in output.get("data", {})
                               for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs)
                page.goto(f"{base}/notebooks/{Path(notebook).stem}.html", wait_until="load")
                images = page.eval_on_selector_all(
                    "div.body img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth])")
                assert n_images > 0 and len(images) >= n_images, (notebook, n_images, images)
                assert all(width for _, width in images), (notebook, [src for src, width in images if not width])
            page.goto(f"{base}/physics_and_methods.html", wait_until="load")
            page.wait_for_selector("mjx-container", timeout=30_000)  # MathJax, from the site itself, typeset
            page.goto(f"{base}/gallery.html", wait_until="load")
            gallery = page.eval_on_selector_all("div.body img", "els => els.map(e => e.complete && e.naturalWidth)")
            assert gallery and all(gallery)
        finally:
            browser.close()
    assert not outside, f"the site requested other hosts: {outside}"
    assert not errors, f"console errors: {errors}"
