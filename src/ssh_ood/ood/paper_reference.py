"""The paper's own per-network numbers: its table of 100 CNNs on the generalization grid.

``00_demonstrations_data/reference/paper_all_stats_10_real_100_slices.csv`` is the table published with the
paper's code (10 disorder realizations, 100 slices of W), copied byte for byte. Its header names 16 columns
but every row holds 15 values: the header's third name, ``Folder``, has no data. The rows are therefore read by
position (:data:`PAPER_TABLE_COLUMNS`): model name, model type, then 13 numbers in the header's order without
``Folder``.

Its "RMSE" column is not a root mean square: it lies on 0.99 (1 - accuracy) + 0.02 (Pearson 0.995), as a mean
absolute error of the diagrams does (:mod:`ssh_ood.ood.generalization_metrics`). Compare it with our ``mae``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ..base.paths import REFERENCE_DIR

PAPER_TABLE = REFERENCE_DIR / "paper_all_stats_10_real_100_slices.csv"
#: the 15 values of a row, by position (the header's ``Folder`` has no data and is skipped)
PAPER_TABLE_COLUMNS = (
    "model_name", "model_type",
    "topological_precision", "topological_recall", "topological_f1",
    "trivial_precision", "trivial_recall", "trivial_f1",
    "macro_precision", "macro_recall", "macro_f1",
    "ood_accuracy", "ssim", "rmse", "lpips",
)
PAPER_N_NETWORKS = 100


def load_paper_table(path: str | Path = PAPER_TABLE) -> pd.DataFrame:
    """The paper's whole table, one row per network, columns :data:`PAPER_TABLE_COLUMNS` (numbers as float).

    ``ValueError`` if a row does not hold exactly 15 values or a number does not parse.
    """
    path = Path(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [row for row in rows[1:] if row]
    if len(header) != len(PAPER_TABLE_COLUMNS) + 1 or header[2] != "Folder":
        raise ValueError(f"{path}: expected the paper's 16-name header with 'Folder' third, got {header}")
    for number, row in enumerate(body, start=2):
        if len(row) != len(PAPER_TABLE_COLUMNS):
            raise ValueError(f"{path}, line {number}: {len(row)} values, expected {len(PAPER_TABLE_COLUMNS)}")
    table = pd.DataFrame(body, columns=list(PAPER_TABLE_COLUMNS))
    numeric = list(PAPER_TABLE_COLUMNS[2:])
    try:
        table[numeric] = table[numeric].astype(float)
    except ValueError as exc:
        raise ValueError(f"{path}: a number does not parse ({exc})") from None
    return table


def paper_network_metrics(path: str | Path = PAPER_TABLE) -> pd.DataFrame:
    """The paper's per-network OOD accuracy, "RMSE" and SSIM, for overlays on our population.

    Returns
    -------
    DataFrame with one row per network of the paper (100) and columns ``ood_accuracy`` (accuracy on the
    generalization grid), ``rmse`` (the paper's "RMSE" column, which behaves like our ``mae``: plot it against
    that, not against our true ``rmse``) and ``ssim`` (of predicted vs target diagram), all floats in [0, 1].
    """
    return load_paper_table(path)[["ood_accuracy", "rmse", "ssim"]].reset_index(drop=True)
