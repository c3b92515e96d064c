"""A Python environment with this project's dependencies but without the package itself, for the tests that
install the wheel into it or start a Dask worker that cannot import the package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGE = "ssh_ood"


def environment_without_package(folder: Path) -> Path:
    """Create a virtual environment in ``folder`` (``python -m venv``, no pip) that sees every distribution
    installed beside this package, but not the package; return its ``python``.

    The dependencies are linked into ``folder/dependencies`` (everything in this interpreter's site-packages
    except the package, its metadata and its editable-install hooks), which a ``.pth`` file of the new
    environment puts on its path; ``.pth`` files are processed only in site directories, so none of the links'
    own hooks run there either.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    farm = folder / "dependencies"
    farm.mkdir()
    for site in dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]):
        for entry in Path(site).iterdir():
            name = entry.name.lower().replace("-", "_")
            if name.startswith((PACKAGE, f"__editable__.{PACKAGE}", f"__editable___{PACKAGE}")):
                continue
            if not (farm / entry.name).exists():
                (farm / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(f"{farm}\n")
    return python
