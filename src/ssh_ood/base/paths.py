"""Canonical locations inside the repository (one place, used by CLI, notebooks and tests).

Every default folder of the commands (datasets, runs, figures, the shipped data) lies under :data:`REPO_ROOT`:

- ``SSH_OOD_HOME``, when this environment variable is set (to a checkout of the repository, or any folder
  that should hold ``00_demonstrations_data/``);
- otherwise the source checkout this package is imported from (``pip install -e .``, ``make venv``);
- otherwise, for a package installed from a wheel, the current directory at import time.

A command given explicit paths (``--out``, ``--data-dir``, ``--run`` ...) reads and writes only those, so an
installed wheel works from any directory; the defaults, the shipped data (``00_demonstrations_data/``) and the
notebooks need a checkout, found as above.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: the environment variable naming the repository folder, overriding where the package is imported from
HOME_VARIABLE = "SSH_OOD_HOME"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: the checkout holding this package (``<root>/src/ssh_ood``), or None for an installed wheel
SOURCE_ROOT = (_PACKAGE_DIR.parents[1] if _PACKAGE_DIR.parent.name == "src"
               and (_PACKAGE_DIR.parents[1] / "pyproject.toml").is_file() else None)


def _repo_root() -> Path:
    home = os.environ.get(HOME_VARIABLE, "")
    if home:
        return Path(home).expanduser().resolve()
    return SOURCE_ROOT if SOURCE_ROOT is not None else Path.cwd().resolve()


REPO_ROOT = _repo_root()
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


def install_hint() -> str:
    """How to install this package in another environment: ``pip install <checkout>`` from a source
    checkout, else the wheel of the version this process runs."""
    if SOURCE_ROOT is not None:
        return f"pip install {SOURCE_ROOT}"
    try:
        return f"pip install the ssh-ood {version('ssh-ood')} wheel"
    except PackageNotFoundError:
        return "pip install the ssh-ood wheel"
