"""Where a result came from: package versions and the git state of the repository."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from .paths import SOURCE_ROOT

PACKAGES = ("numpy", "scipy", "numba", "torch", "scikit-learn", "scikit-image", "umap-learn", "captum", "pandas",
            "matplotlib", "dask", "distributed")


def package_versions() -> dict[str, str]:
    """Python and package versions of this environment."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state() -> dict:
    """Commit of the checkout the package runs from and whether its working tree had changes ("unknown" outside
    git, and for a package installed from a wheel: :data:`ssh_ood.base.paths.SOURCE_ROOT` is None)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, check=True, timeout=30).stdout

    if SOURCE_ROOT is None:
        return {"commit": "unknown", "dirty": None}
    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
