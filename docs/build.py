"""Build the documentation site: the pages of ``docs/``, the executed notebooks and the API reference.

    python docs/build.py [--notebooks DIR] [--out DIR]

``make docs`` runs ``make reproduce`` first (its steps already done are skipped), so ``DIR`` defaults to the
executed notebooks it writes, ``00_demonstrations_data/executed_notebooks/``. The pages, the notebooks and one
API page per module of ``ssh_ood`` (found by walking the package, so a renamed or new module needs no edit
here) are staged in a temporary folder and built by Sphinx with MyST-NB; the notebooks are shown as they were
executed, never run again, without the saved state of their widgets. The site is written to ``<out>``
(default ``docs/_build/html``); open ``index.html``. Exit status: Sphinx's, or 2 with one line if a notebook
is missing.
"""

from __future__ import annotations

import argparse
import pkgutil
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

DOCS = Path(__file__).resolve().parent
REPO_ROOT = DOCS.parent
DEFAULT_NOTEBOOKS = REPO_ROOT / "00_demonstrations_data" / "executed_notebooks"
DEFAULT_OUT = DOCS / "_build" / "html"


def api_modules(package: str = "ssh_ood") -> list[str]:
    """Every public module and package of ``package``, sorted (private names and ``__main__`` left out)."""
    root = __import__(package)
    names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    return sorted(name for name in names if not any(part.startswith("_") for part in name.split(".")))


def stage(notebooks_dir: Path, source: Path) -> list[str]:
    """Write the Sphinx source folder ``source`` (a new folder): the pages of ``docs/``, the notebooks, one page per module.

    Returns the notebooks' file names. ``FileNotFoundError`` names the notebooks ``notebooks_dir`` lacks.
    """
    from ssh_ood.commands.reproduce import NOTEBOOKS

    names = sorted(NOTEBOOKS.values())
    missing = [name for name in names if not (notebooks_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{notebooks_dir} lacks the executed notebooks {missing}; run `make reproduce` first")
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "build.py", "__pycache__"))
    (source / "notebooks").mkdir()
    for name in names:
        notebook = nbformat.read(notebooks_dir / name, as_version=4)
        # the saved state of the widgets (notebook 06's scatter carries all of plotly.js, 5 MB) would be dead
        # weight: the site loads no widget JavaScript, and the widgets need a kernel (make lab, make dashboard)
        notebook.metadata.pop("widgets", None)
        nbformat.write(notebook, source / "notebooks" / name)
    (source / "api").mkdir()
    for module in api_modules():
        (source / "api" / f"{module}.md").write_text(
            f"# `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n```\n")
    return names


def build(notebooks_dir: Path = DEFAULT_NOTEBOOKS, out_dir: Path = DEFAULT_OUT, quiet: bool = True) -> int:
    """Stage the sources in a temporary folder and build the HTML site into ``out_dir``; Sphinx's exit status."""
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory(prefix="ssh-ood-docs-") as scratch:
        source = Path(scratch) / "source"
        stage(notebooks_dir, source)
        arguments = ["-b", "html", "-E", str(source), str(out_dir), "-d", str(Path(scratch) / "doctrees")]
        return build_main(arguments + (["-q"] if quiet else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS,
                        help="folder of the executed notebooks (default: make reproduce's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="site folder (default: docs/_build/html)")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress, not only its warnings")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        status = build(args.notebooks.resolve(), args.out.resolve(), quiet=not args.verbose)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if status == 0:
        print(f"site built in {time.monotonic() - start:.0f} s: {args.out / 'index.html'}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
