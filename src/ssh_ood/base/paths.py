"""Canonical locations inside the repository (one place, used by CLI, notebooks and tests)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_DIR = REPO_ROOT / "00_demonstrations_data"
DATASETS_DIR = DEMO_DIR / "datasets"
RUNS_DIR = DEMO_DIR / "runs"
FIGURES_DIR = DEMO_DIR / "figures"
POPULATION_DIR = DEMO_DIR / "100_CNNs"
HIGHLIGHTED_MODELS_DIR = DEMO_DIR / "models"


def datasets_dir(preset: str) -> Path:
    """Folder holding the ``.npz`` datasets written by ``python -m ssh_ood data --preset <preset>``."""
    return DATASETS_DIR / preset
REFERENCE_DIR = DEMO_DIR / "reference"
#: the paper's published target phase diagram: (501, 200), rows W = 0..5, columns v on [0, 2], 25 realizations
REFERENCE_TARGET_DIAGRAM = REFERENCE_DIR / "targets_25_reals.npy"
#: folders of DEMO_DIR written by the pipeline (gitignored); everything else under DEMO_DIR is shipped data
GENERATED_DIRS = ("datasets", "figures", "runs", "executed_notebooks", "report", "analysis")


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` lies in the data shipped with the repository: under ``00_demonstrations_data`` but
    not in one of its generated folders (:data:`GENERATED_DIRS`). Shipped data is written only on purpose
    (``--allow-shipped``, see :mod:`ssh_ood.base.run_folders`)."""
    try:
        parts = Path(path).resolve().relative_to(DEMO_DIR.resolve()).parts
    except ValueError:
        return False
    return bool(parts) and parts[0] not in GENERATED_DIRS
