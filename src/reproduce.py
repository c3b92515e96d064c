"""``make reproduce``: the whole pipeline of a preset, headless, step by step, with a report.

Steps run in order; each writes its outputs and a stamp (``report/steps/<step>.json`` with the preset,
seed, outputs, wall time and key numbers). A step whose stamp matches the preset and seed and whose
outputs all exist is skipped, so an interrupted run resumes where it stopped (``--force`` redoes all).
A failing step stops the run with its name and a hint of what to do. At the end ``report/report.md``
collects the figures, the key numbers, the preset, seeds, package versions and the time of each step.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .io_utils import atomic_write_bytes, load_json, save_json
from .paths import DEMO_DIR, REPO_ROOT, datasets_dir
from .presets import PRESET_NAMES, Preset, get_preset

NOTEBOOKS = {
    "01": "01_data_generation.ipynb",
    "02": "02_architecture_training.ipynb",
    "03": "03_CAM.ipynb",
    "04": "04_clustering.ipynb",
    "05": "05_explain_windnum.ipynb",
    "06": "06_100_cnns_analysis.ipynb",
    "07": "07_thermometer_encoding.ipynb",
}
PACKAGES = ("numpy", "scipy", "numba", "torch", "scikit-learn", "scikit-image", "umap-learn", "captum", "matplotlib")


@dataclass
class Context:
    """Everything a step needs: preset, seed and the output folders of this run."""

    preset: Preset
    seed: int
    out_dir: Path
    progress: bool = True

    @property
    def data_dir(self) -> Path:
        return datasets_dir(self.preset.name) if self.out_dir == DEMO_DIR else self.out_dir / "datasets" / self.preset.name

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def notebooks_dir(self) -> Path:
        return self.out_dir / "executed_notebooks"

    @property
    def report_dir(self) -> Path:
        return self.out_dir / "report"

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs" / self.preset.name

    def notebook_parameters(self) -> dict:
        return {
            "PRESET": self.preset.name,
            "SEED": self.seed,
            "DATA_DIR": str(self.data_dir),
            "FIGURES_DIR": str(self.figures_dir),
            "RUN_DIR": str(self.runs_dir),
        }


@dataclass
class Step:
    """One pipeline step: ``run(ctx)`` returns key numbers; ``outputs(ctx)`` lists the files it makes."""

    name: str
    run: Callable[[Context], dict]
    outputs: Callable[[Context], list[Path]]
    hint: str
    key_numbers: dict = field(default_factory=dict)


def _run_notebook_step(key: str, figures: tuple[str, ...]) -> Step:
    notebook = NOTEBOOKS[key]

    def run(ctx: Context) -> dict:
        from .notebook_runner import run_notebook

        run_notebook(REPO_ROOT / notebook, ctx.notebooks_dir / notebook, ctx.notebook_parameters())
        return {}

    def outputs(ctx: Context) -> list[Path]:
        return [ctx.notebooks_dir / notebook] + [ctx.figures_dir / f"{name}.{ext}" for name in figures for ext in ("pdf", "png")]

    return Step(f"notebook {notebook}", run, outputs, f"open {notebook} in Jupyter and run it to see the failing cell")


def _data_step() -> Step:
    def run(ctx: Context) -> dict:
        from .datasets import read_manifest, write_datasets

        write_datasets(ctx.preset, ctx.seed, ctx.data_dir, progress=ctx.progress)
        entries = read_manifest(ctx.data_dir)["datasets"]
        return {"datasets": len(entries), "samples": sum(e["n_samples"] for e in entries)}

    def outputs(ctx: Context) -> list[Path]:
        return [ctx.data_dir / "datasets.json"]

    return Step("data", run, outputs, "run `python -m src data --preset <preset>` to see the error in full")


def pipeline_steps() -> list[Step]:
    """The steps of the pipeline, in order."""
    return [
        _data_step(),
        _run_notebook_step("01", ("Fig_3",)),
        _run_notebook_step("05", ("Fig_6", "Fig_target_diagram")),
    ]


def _stamp_path(ctx: Context, step: Step) -> Path:
    return ctx.report_dir / "steps" / f"{step.name.replace(' ', '_')}.json"


def _is_up_to_date(ctx: Context, step: Step) -> bool:
    path = _stamp_path(ctx, step)
    if not path.is_file():
        return False
    try:
        stamp = load_json(path)
    except ValueError:
        return False
    same_run = stamp.get("preset") == ctx.preset.name and stamp.get("seed") == ctx.seed
    return same_run and all(p.exists() for p in step.outputs(ctx))


class StepFailed(RuntimeError):
    """A pipeline step raised; the message names the step and what to do."""


def run_pipeline(preset: str | Preset, seed: int = 0, out_dir: Path = DEMO_DIR, force: bool = False,
                 progress: bool = True) -> Path:
    """Run every step (skipping up-to-date ones) and write the report; returns the report path."""
    ctx = Context(get_preset(preset), int(seed), Path(out_dir), progress)
    records = []
    for step in tqdm(pipeline_steps(), desc=f"reproduce ({ctx.preset.name})", disable=not progress):
        if not force and _is_up_to_date(ctx, step):
            stamp = load_json(_stamp_path(ctx, step))
            records.append({**stamp, "skipped": True})
            continue
        start = time.perf_counter()
        try:
            numbers = step.run(ctx) or {}
        except Exception as exc:  # noqa: BLE001 - re-raised with the step's name and a hint
            raise StepFailed(f"step '{step.name}' failed: {type(exc).__name__}: {exc}\n  what to do: {step.hint}; "
                             "then rerun `make reproduce` (finished steps are skipped)") from exc
        stamp = {
            "step": step.name,
            "preset": ctx.preset.name,
            "seed": ctx.seed,
            "seconds": round(time.perf_counter() - start, 2),
            "numbers": numbers,
            "outputs": [str(p.relative_to(ctx.out_dir)) if p.is_relative_to(ctx.out_dir) else str(p)
                        for p in step.outputs(ctx)],
        }
        save_json(_stamp_path(ctx, step), stamp)
        records.append({**stamp, "skipped": False})
    return write_report(ctx, records)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_report(ctx: Context, records: list[dict]) -> Path:
    """Markdown report: steps with times and key numbers, the figures, preset, seed and versions."""
    lines = [
        f"# Reproduction report: preset `{ctx.preset.name}`, seed {ctx.seed}",
        "",
        f"Commit `{_git_commit()}`, {time.strftime('%Y-%m-%d %H:%M:%S')}, {platform.platform()}.",
        "",
        "## Steps",
        "",
        "| step | time (s) | key numbers |",
        "|---|---:|---|",
    ]
    for record in records:
        numbers = ", ".join(f"{k} = {v}" for k, v in record.get("numbers", {}).items())
        skipped = " (up to date, skipped)" if record.get("skipped") else ""
        lines.append(f"| {record['step']}{skipped} | {record['seconds']} | {numbers} |")
    total = sum(r["seconds"] for r in records if not r.get("skipped"))
    lines += ["", f"Total time of the steps run now: {total:.1f} s.", "", "## Figures", ""]
    for png in sorted(ctx.figures_dir.glob("*.png")):
        lines += [f"### {png.stem}", "", f"![{png.stem}](../figures/{png.name})", ""]
    lines += ["## Preset", "", "```", *(f"{k}: {v}" for k, v in ctx.preset.to_dict().items()), "```", "",
              "## Versions", "", *(f"- {k} {v}" for k, v in _versions().items()), ""]
    path = ctx.report_dir / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path


def add_reproduce_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run the whole pipeline of a preset and write the report",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="run size (default: quick)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help="output root (default: 00_demonstrations_data)")
    parser.add_argument("--force", action="store_true", help="redo steps that are up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_reproduce)


def _run_reproduce(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    try:
        report = run_pipeline(args.preset, args.seed, args.out, force=args.force, progress=not args.quiet)
    except StepFailed as exc:
        print(f"error: {exc}")
        return 1
    print(f"report: {report}")
    return 0
