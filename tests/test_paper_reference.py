"""The paper's per-network table (src/ssh_ood/ood/paper_reference.py) and every number the README, the findings page
and the report quote from it: read by position despite its header quirk, and the quotes computed back from the file."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from scipy.stats import linregress

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.figures.findings import key_numbers
from ssh_ood.interpret.generalization_prediction import paper_rmse_fit
from ssh_ood.ood.paper_reference import PAPER_TABLE, load_paper_table, paper_network_metrics
from tests.test_findings import STATS


def _page(path: str) -> str:
    """A page of the repository with every run of whitespace made one space."""
    return re.sub(r"\s+", " ", (REPO_ROOT / path).read_text())


def test_the_table_is_the_papers_file_read_by_position():
    assert hashlib.sha256(PAPER_TABLE.read_bytes()).hexdigest().startswith("e641c20b4be90d9a")
    table = load_paper_table()
    assert len(table) == 100 and table["model_name"].str.contains("final_run_").all()
    # the checks the reference folder's README gives (accuracy min / median / max; 22 rows with "RMSE" <= 0.2)
    accuracy = table["ood_accuracy"]
    assert (accuracy.min(), accuracy.median(), accuracy.max()) == (0.491, 0.607, 0.917)
    assert int((table["rmse"] <= 0.2).sum()) == 22
    # read by position: macro recall is the mean of the two class recalls, accuracy lies between them
    macro = (table["topological_recall"] + table["trivial_recall"]) / 2
    assert np.allclose(macro, table["macro_recall"], atol=0.0015)
    metrics = paper_network_metrics()
    assert list(metrics.columns) == ["ood_accuracy", "rmse", "ssim"] and len(metrics) == 100
    assert metrics.to_numpy().min() >= 0 and metrics.to_numpy().max() <= 1


def test_a_table_of_another_shape_is_refused(tmp_path):
    lines = PAPER_TABLE.read_text().splitlines()
    (tmp_path / "extra.csv").write_text("\n".join([lines[0], lines[1] + ",0.5"]))
    with pytest.raises(ValueError, match="line 2: 16 values, expected 15"):
        load_paper_table(tmp_path / "extra.csv")
    (tmp_path / "header.csv").write_text("\n".join([lines[0].replace("Folder,", ""), lines[1]]))
    with pytest.raises(ValueError, match="16-name header"):
        load_paper_table(tmp_path / "header.csv")


def test_the_papers_numbers_quoted_in_readme_and_report_match_the_file():
    paper = load_paper_table()
    accuracy, rmse = paper["ood_accuracy"], paper["rmse"]
    findings, readme = _page("docs/findings.md"), _page("README.md")
    assert (f"The paper's own table of its 100 CNNs gives OOD accuracy {accuracy.min():.3f}–{accuracy.max():.3f} "
            f"(median {accuracy.median():.3f})") in findings
    assert f"In the paper's table, {int((rmse <= 0.2).sum())} of its 100 pass its \"RMSE\" ≤ 0.2" in findings
    assert (f"| OOD accuracy, min / median / max | {accuracy.min():.3f} / {accuracy.median():.3f} / "
            f"{accuracy.max():.3f} |") in readme
    assert f"| {int((rmse <= 0.2).sum())} of 100 by its \"RMSE\", which behaves like a MAE |" in readme
    slope, intercept = np.polyfit(1 - accuracy, rmse, 1)
    assert f"Its table's \"RMSE\" column lies on {slope:.2f} (1 − accuracy) + {intercept:.2f}" in findings
    fit = paper_rmse_fit()  # against scipy's closed-form regression
    line = linregress(1 - accuracy, rmse)
    assert fit == pytest.approx({"slope": line.slope, "intercept": line.intercept, "pearson": line.rvalue}, rel=1e-9)
    # the line once typed into the code as 0.99 (1 - accuracy) + 0.02, Pearson 0.995, now computed
    assert (round(fit["slope"], 2), round(fit["intercept"], 2), round(fit["pearson"], 3)) == (0.99, 0.02, 0.995)
    rows = {quantity: paper_value for quantity, _, paper_value in key_numbers(STATS.assign(ssim=0.5))}
    assert rows["OOD accuracy, min / median / max"].startswith(
        f"{accuracy.min():.3f} / {accuracy.median():.3f} / {accuracy.max():.3f}")
    assert rows["well generalizing, MAE ≤ 0.2"].startswith(f"{int((rmse <= 0.2).sum())} of 100 ")
    ssim = paper["ssim"]
    assert rows["SSIM of predicted and target diagram, median (min–max)"].startswith(
        f"{ssim.median():.3f} ({ssim.min():.3f}–{ssim.max():.3f})")
