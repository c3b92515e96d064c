"""The population summary (src/ssh_ood/figures/population_summary.py): the paper's numbers beside ours, read from
the paper's file, and figures whose texts do not run into each other or into the data."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Polygon, Rectangle

from ssh_ood.base.paths import REFERENCE_DIR
from ssh_ood.figures.population_summary import paper_summary_text, summary_figure
from ssh_ood.ood.generalization_metrics import GeneralizationCut
from ssh_ood.ood.paper_reference import paper_network_metrics

PAPER_FILE = REFERENCE_DIR / "paper_all_stats_10_real_100_slices.csv"


def paper_columns_by_hand() -> dict[str, np.ndarray]:
    """The paper's accuracy, SSIM and "RMSE" read with the csv module: the last four values of every row are
    accuracy, SSIM, "RMSE", LPIPS (the reference README)."""
    with open(PAPER_FILE, newline="") as f:
        rows = [row for row in list(csv.reader(f))[1:] if row]
    values = np.array([[float(x) for x in row[-4:-1]] for row in rows])
    return {"ood_accuracy": values[:, 0], "ssim": values[:, 1], "rmse": values[:, 2]}


@pytest.fixture
def ours() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mae = rng.uniform(0.05, 0.5, 40)
    return pd.DataFrame({"model_index": range(40), "mae": mae, "rmse": mae * 1.4, "ssim": rng.uniform(0.2, 0.7, 40),
                         "ood_accuracy": 1 - mae, "clean_accuracy": np.full(40, 0.97)})


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_paper_outlines_come_from_its_file(ours):
    by_hand = paper_columns_by_hand()
    assert len(by_hand["ood_accuracy"]) == 100
    fig = summary_figure(ours, GeneralizationCut("mae", 0.2), paper=paper_network_metrics())
    acc, mae, rmse, ssim = fig.axes[:4]
    for ax, ours_column, theirs in ((acc, "ood_accuracy", "ood_accuracy"), (mae, "mae", "rmse"), (ssim, "ssim", "ssim")):
        paper_line = [t for t in legend_texts(ax) if t.startswith("paper")]
        assert len(paper_line) == 1, legend_texts(ax)
        assert f"median {np.median(by_hand[theirs]):.3f}" in paper_line[0], (ours_column, paper_line)
        ours_line = [t for t in legend_texts(ax) if t.startswith("ours")][0]
        assert f"median {np.median(ours[ours_column]):.3f}" in ours_line
    # the paper's "RMSE" column is drawn and named on the MAE panel, never on the RMSE one
    assert '"RMSE"' in legend_texts(mae)[1] and "MAE" in legend_texts(mae)[1]
    passing = int(np.sum(by_hand["rmse"] <= 0.2))
    assert passing == 22  # the reference README's check
    assert f"≤ 0.2: {passing} of 100" in legend_texts(mae)[1]
    assert not [t for t in legend_texts(rmse) if t.startswith("paper")]
    # the outline's bars are the paper's histogram: heights of the step path at the bin centres
    for ax, theirs in ((acc, "ood_accuracy"), (ssim, "ssim")):
        ours_bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(ours_bars) == 20
        edges = np.array([bar.get_x() for bar in ours_bars] + [ours_bars[-1].get_x() + ours_bars[-1].get_width()])
        expected, _ = np.histogram(by_hand[theirs], bins=edges)
        step = [p for p in ax.patches if isinstance(p, Polygon)][0].get_xy()
        centres = (edges[:-1] + edges[1:]) / 2
        drawn = [step[(step[:, 0] <= c), 1][-1] for c in centres]  # the step's level at each centre
        np.testing.assert_array_equal(drawn, expected)


def test_the_paper_summary_quotes_its_file():
    by_hand = paper_columns_by_hand()
    text = paper_summary_text(paper_network_metrics(), 0.2)
    for column in ("ood_accuracy", "rmse", "ssim"):
        values = by_hand[column]
        assert f"min {values.min():.3f}, median {np.median(values):.3f}, max {values.max():.3f}" in text, column
    assert "22 (22%) at or below 0.2" in text and "compares with our MAE" in text


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_summary_legends_sit_outside_every_panel(ours):
    fig = summary_figure(ours, GeneralizationCut("mae", 0.2), paper=paper_network_metrics())
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    panels = fig.axes[:4]
    for ax in panels:
        legend = ax.get_legend().get_window_extent(renderer)
        for other in panels:  # not over any panel's plotting area, nor over a tick label
            assert not boxes_overlap(legend, other.get_window_extent(renderer)), legend_texts(ax)
            for label in other.get_yticklabels() + other.get_xticklabels():
                if label.get_visible() and label.get_text():
                    assert not boxes_overlap(legend, label.get_window_extent(renderer)), (legend_texts(ax), label.get_text())
    texts = " ".join(" ".join(legend_texts(ax)) for ax in panels)
    assert "same number" not in texts and "the cut's threshold applied to the RMSE instead" in texts
