"""The shipped thermometer comparison: read back and checked.

Training both ensembles of :func:`ssh_ood.ood.thermometer_experiment.compare_encodings` with the paper's recipe
takes hours on a CPU, so the comparison made with it ships in
``00_demonstrations_data/thermometer_comparison/paper_L3/`` (seed 1, see :data:`SHIPPED_SEEDS`), in the
layout ``thermometer-compare --out`` writes; :func:`read_shipped_comparison` reads it back, checked.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..base.io_utils import load_documented_table, load_json
from ..base.paths import DEMO_DIR, REPO_ROOT
from ..base.presets import Preset, get_preset
from .thermometer_experiment import BATCHNORM_MODES, TABLE_COLUMNS, comparison_command, default_comparison_dir

#: the shipped comparisons: ``<preset>_L<levels>/`` folders, one per preset, with their ``comparison*.csv/json``
SHIPPED_COMPARISONS_DIR = DEMO_DIR / "thermometer_comparison"
#: the master seed each shipped comparison read by :func:`read_shipped_comparison` was run with
SHIPPED_SEEDS = {"paper": 1}


def shipped_comparison_dir(preset: str, levels: int) -> Path:
    """``00_demonstrations_data/thermometer_comparison/<preset>_L<levels>/``."""
    return SHIPPED_COMPARISONS_DIR / f"{preset}_L{levels}"


def read_shipped_comparison(preset: Preset | str, levels: int, batchnorm: str = "running") -> tuple[pd.DataFrame, dict]:
    """The shipped comparison of ``preset`` with ``levels`` channels: its table and its summary.

    Reads ``comparison.csv`` and ``comparison.json`` (``_precise_bn`` with ``batchnorm="precise"``) of
    :func:`shipped_comparison_dir`, each checked against the folder's ``files.json``, and checks that the
    summary is of this preset, levels, BatchNorm mode and seed (:data:`SHIPPED_SEEDS`) and that the table has
    ``n_models`` rows per encoding.

    Raises ``FileNotFoundError`` in one line giving the command that makes the missing file, and
    ``ValueError`` if what is there is of another comparison.
    """
    preset = get_preset(preset)
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
    if preset.name not in SHIPPED_SEEDS:
        raise ValueError(f"no comparison is shipped for the {preset.name} preset (only for {sorted(SHIPPED_SEEDS)})")
    seed = SHIPPED_SEEDS[preset.name]
    folder = shipped_comparison_dir(preset.name, levels)
    suffix = "_precise_bn" if batchnorm == "precise" else ""
    summary_path = folder / f"comparison{suffix}.json"
    if not summary_path.is_file():
        command = comparison_command(preset.name, seed, preset.thermometer_compare_models, levels, batchnorm)
        made, shipped = (p.relative_to(REPO_ROOT) if p.is_relative_to(REPO_ROOT) else p
                         for p in (default_comparison_dir(preset.name, seed), folder))
        raise FileNotFoundError(
            f"{summary_path}: not found; make it with `{command}` (hours on a CPU), copy comparison{suffix}.csv, "
            f"comparison{suffix}.json and Fig_thermometer_generalization{suffix}.pdf/.png from {made}/ to {shipped}/ "
            f"and record them with `python -m ssh_ood record-files {shipped} --allow-shipped`; or train the comparison "
            f"in the notebook instead (`python -m ssh_ood reproduce --preset {preset.name} --retrain`)")
    summary = load_json(summary_path)
    expected = {"preset": preset.name, "seed": seed, "levels": levels, "batchnorm": batchnorm}
    found = {key: summary.get(key) for key in expected}
    if found != expected:
        raise ValueError(f"{summary_path}: a comparison of {found}, expected {expected}")
    table = load_documented_table(folder / f"comparison{suffix}.csv", TABLE_COLUMNS, summary["command"])
    counts = table.groupby("encoding").size().to_dict()
    wanted = {"real-valued": summary["n_models"], f"thermometer L={levels}": summary["n_models"]}
    if counts != wanted:
        raise ValueError(f"{folder / f'comparison{suffix}.csv'}: {counts} models per encoding, its summary says {wanted}")
    return table, summary
