"""The run report (src/ssh_ood/commands/reproduce.py write_report, src/ssh_ood/figures/html_report.py) without a pipeline run: a fake context,
step records, tiny PNG figures and the synthetic population of tests/test_findings.py."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from PIL import Image

from ssh_ood.base.presets import get_preset
from ssh_ood.commands.reproduce import Context, write_report
from ssh_ood.figures.figure_catalog import CAPTIONS, OTHER_SECTION
from ssh_ood.figures.html_report import embed_images
from tests.test_findings import _population


def _png(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8)).save(path)


def test_report_is_a_document_in_the_papers_order_with_a_self_contained_html(tmp_path):
    ctx = Context(get_preset("smoke"), 1, tmp_path, progress=False)
    _population(ctx.population_dir)
    ctx.figures_dir.mkdir(parents=True)
    # the paper's order differs from the alphabetical one; Fig_6 and others are missing, hence skipped
    drawn = ("Fig_2", "Fig_3", "Fig_architecture", "Fig_target_diagram", "Fig_zz_extra")
    for seed, name in enumerate(drawn):
        _png(ctx.figures_dir / f"{name}.png", seed)
    records = [{"step": "data", "seconds": 1.25, "numbers": {"datasets": 3}, "skipped": False},
               {"step": "population (train + OOD evaluation)", "seconds": 7.0, "numbers": {}, "skipped": True}]
    markdown_path = write_report(ctx, records)
    text = markdown_path.read_text()
    headings = ["## Key numbers", "## Findings", "## Figures", "## Steps", "## Preset", "## Versions"]
    assert [text.index(h) for h in headings] == sorted(text.index(h) for h in headings)
    assert text.startswith("# Reproduction report: preset `smoke`, seed 1\n")
    assert "| OOD accuracy, min / median / max | 0.500 / 0.700 / 0.950 | 0.491 / 0.607 / 0.917 (its table) |" in text
    assert "the clean test accuracy lies between 0.900 and 1.000" in text
    figures = text[text.index("## Figures"):text.index("## Steps")]
    paper_order = ("Fig_3", "Fig_target_diagram", "Fig_architecture", "Fig_2", "Fig_zz_extra")
    order = [figures.index(f"![{name}](../figures/{name}.png)") for name in paper_order]
    assert order == sorted(order)
    assert figures.index("### The data (notebook 01)") < order[0] and figures.index(f"### {OTHER_SECTION}") < order[-1]
    for name in paper_order[:-1]:
        assert f"{CAPTIONS[name]} (`{name}`)" in figures
    assert "Fig_6" not in figures and "`Fig_zz_extra`" in figures and "not in the figure catalogue" in figures
    assert "| data | 1.25 | datasets = 3 |" in text and "(up to date, skipped) | 7.0 |" in text

    html = (ctx.report_dir / "report.html").read_text()
    references = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html)
    assert references and all(r.startswith("data:") for r in references), "the page refers to a file or URL"
    assert "http://" not in html and "https://" not in html
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(sources) == len(drawn) and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = [base64.b64decode(s.removeprefix("data:image/png;base64,")) for s in sources]
    assert embedded == [(ctx.figures_dir / f"{name}.png").read_bytes() for name in paper_order]
    assert "<td>2 of 5 (40%)</td>" in html and "<h2>Findings</h2>" in html


def test_embedding_refuses_a_missing_image_and_keeps_data_uris(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot be embedded"):
        embed_images('<p><img alt="x" src="../figures/none.png" /></p>', tmp_path)
    kept = '<img src="data:image/png;base64,AAAA" />'
    assert embed_images(kept, tmp_path) == kept


def test_steps_read_as_text_and_the_summary_counts_only_what_exists(tmp_path):
    from ssh_ood.commands.reproduce import format_step_number

    ctx = Context(get_preset("smoke"), 1, tmp_path, progress=False)
    _population(ctx.population_dir)
    correlation = {"n": 100, "pearson_r": 0.41234, "pearson_p": 2.3e-06, "spearman_rho": -0.5, "spearman_p": 0.0}
    assert format_step_number(correlation) == "n 100, Pearson r 0.412, p 2.3e-06, Spearman ρ -0.5, p 0"
    ran = [{"step": "data", "seconds": 1.0, "numbers": {}, "skipped": False},
           {"step": "highlighted networks", "seconds": 2.0, "numbers": {"corr(CAM score, MAE)": correlation,
                                                                        "CAM score cut": 0.25}, "skipped": False}]
    text = write_report(ctx, ran).read_text()
    assert "It ran all 2 pipeline steps (3.0 s)." in text and "other" not in text.split("## Key numbers")[0]
    assert "| corr(CAM score, MAE) = n 100, Pearson r 0.412, p 2.3e-06, Spearman ρ -0.5, p 0; CAM score cut = 0.25 |" in text
    assert "{" not in text.split("## Steps")[1].split("## Preset")[0]
    text = write_report(ctx, [{**ran[0], "skipped": True}, ran[1]]).read_text()
    assert "It ran 1 of the 2 pipeline steps (2.0 s); the other one was up to date from an earlier run." in text
    text = write_report(ctx, [{**r, "skipped": True} for r in ran]).read_text()
    assert "All 2 pipeline steps were up to date from an earlier run; none ran now." in text


def test_executed_notebooks_are_signed_so_jupyter_trusts_them(tmp_path, monkeypatch):
    import nbformat
    from nbformat.sign import NotebookNotary

    from ssh_ood.commands.reproduce import _sign_notebook

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # a fresh signature store
    cell = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("display_data", {"text/html": "<b>1</b>"})])
    path = tmp_path / "executed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert not NotebookNotary().check_signature(nbformat.read(path, as_version=4))
    _sign_notebook(path)
    assert NotebookNotary().check_signature(nbformat.read(path, as_version=4))
