"""The package as users install it: a wheel holding the whole package that imports and runs from any directory,
and no ``sys.path`` edits anywhere."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from ssh_ood.base.paths import HOME_VARIABLE, REPO_ROOT
from tests.isolated_env import environment_without_package

LAYERS = ("base", "physics", "nets", "ood", "interpret", "figures", "commands")
PACKAGE_DIR = REPO_ROOT / "src" / "ssh_ood"


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", *patterns], cwd=REPO_ROOT, capture_output=True, check=True,
                         timeout=60).stdout.decode()
    return [REPO_ROOT / name for name in out.split("\0") if name]


def _package_files() -> set[str]:
    """Every file of the package in the source tree, as the wheel names it (``ssh_ood/...``); no bytecode."""
    return {path.relative_to(PACKAGE_DIR.parent).as_posix() for path in PACKAGE_DIR.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def _run(command: list, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_holds_the_package_and_runs_from_another_directory(tmp_path):
    # build from a copy holding only what pyproject.toml names, so the build needs nothing else of the repository
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in _package_files():
        (source / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE_DIR.parent / name, source / "src" / name)
    _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--quiet", "-w", tmp_path / "wheels"], tmp_path)
    (wheel,) = (tmp_path / "wheels").glob("ssh_ood-*.whl")
    assert wheel.name.startswith(f"ssh_ood-{_pyproject()['project']['version']}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ssh_ood/__init__.py" in names
    assert {f"ssh_ood/{layer}/__init__.py" for layer in LAYERS} <= names
    templates = {name for name in _package_files() if name.startswith("ssh_ood/commands/jupyter_data/")}
    assert {"ssh_ood/commands/jupyter_data/voila/templates/offline/conf.json",
            "ssh_ood/commands/jupyter_data/voila/templates/offline/index.html.j2"} <= templates
    assert _package_files() <= names, _package_files() - names  # every module and data file, nothing left out

    # installed into an environment that has the dependencies but not the editable package
    python = environment_without_package(tmp_path / "env")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
         tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in (HOME_VARIABLE, "PYTHONPATH")}
    probe = "import ssh_ood, ssh_ood.base.paths as p; print(ssh_ood.__file__); print(p.REPO_ROOT)"
    where, root = _run([python, "-c", probe], elsewhere, env).stdout.split()
    assert Path(where).is_relative_to(tmp_path / "env") and Path(root) == elsewhere.resolve()
    home = tmp_path / "home"
    where, root = _run([python, "-c", probe], elsewhere, {**env, HOME_VARIABLE: str(home)}).stdout.split()
    assert Path(root) == home.resolve()
    command = tmp_path / "env" / "bin" / "ssh-ood"
    assert "population" in _run([command, "--help"], elsewhere, env).stdout
    # a command given explicit paths writes only there
    data = tmp_path / "data"
    _run([command, "data", "--preset", "smoke", "--out", data, "--quiet"], elsewhere, env)
    assert (data / "datasets.json").is_file() and not any(elsewhere.iterdir())


def test_the_editable_install_imports_and_runs_from_another_directory(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in (HOME_VARIABLE, "PYTHONPATH")}
    where = _run([sys.executable, "-c", "import ssh_ood; print(ssh_ood.__file__)"], tmp_path, env).stdout.strip()
    assert Path(where) == PACKAGE_DIR / "__init__.py"
    assert "population" in _run([Path(sys.executable).parent / "ssh-ood", "--help"], tmp_path, env).stdout


def _edits_sys_path(source: str) -> list[int]:
    """Lines of ``source`` that change ``sys.path`` (assign, augment, call a method on it) or call ``site.addsitedir``."""
    tree = ast.parse(source)

    def is_sys_path(node: ast.AST) -> bool:
        while isinstance(node, ast.Subscript):
            node = node.value
        return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                and node.value.id == "sys")

    lines = []
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
        if any(is_sys_path(target) for target in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if is_sys_path(node.func.value) or node.func.attr == "addsitedir":
                lines.append(node.lineno)
    return sorted(lines)


def test_no_tracked_file_edits_sys_path():
    assert _edits_sys_path("import sys\nsys.path.insert(0, 'src')\nsys.path[:0] = ['x']\nsys.path += ['y']\n") == [2, 3, 4]
    assert _edits_sys_path("import sys\nprint(sys.path)\npaths = list(sys.path)\n") == []
    offenders = []
    for path in _tracked("*.py"):
        offenders += [f"{path.relative_to(REPO_ROOT)}:{line}" for line in _edits_sys_path(path.read_text())]
    for path in _tracked("*.ipynb"):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":  # IPython magics and shell lines are not Python
                code = "\n".join(line for line in "".join(cell["source"]).splitlines()
                                 if not line.lstrip().startswith(("%", "!")))
                offenders += [f"{path.relative_to(REPO_ROOT)}, cell {number}" for _ in _edits_sys_path(code)]
    assert not offenders, offenders
    assert "pythonpath" not in _pyproject()["tool"]["pytest"]["ini_options"]
