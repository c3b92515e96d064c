"""``make reproduce``: the whole pipeline of a preset, headless, step by step, with a report.

Steps run in order; each writes its outputs and a stamp (``report/steps/<step>.json`` with the preset,
seed, outputs with their hashes, wall time and key numbers; recorded in the folder's ``files.json``). A step whose
stamp verifies and matches the preset and seed, whose outputs are what it recorded and whose kept results
verify (the datasets, the population against its model folders) is skipped, so an interrupted run resumes where it stopped (``--force`` redoes all).
A failing step stops the run with its name and a hint of what to do. At the end ``report/report.md`` (and
the same as one self-contained ``report/report.html``) tells what was run, the key numbers beside the
paper's, the findings, the figures in the paper's order with captions (:mod:`ssh_ood.figures.figure_catalog`), the time
of each step, the preset and the package versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..base.file_records import folder_problems, open_folder, problem, sha256_bytes
from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..base.paths import DEMO_DIR, POPULATION_DIR, REPO_ROOT, datasets_dir
from ..base.presets import PRESET_NAMES, Preset, get_preset
from ..base.provenance import git_state, package_versions
from .arguments import seed_argument

NOTEBOOKS = {
    "01": "01_data_generation.ipynb",
    "02": "02_architecture_training.ipynb",
    "03": "03_CAM.ipynb",
    "04": "04_clustering.ipynb",
    "05": "05_explain_windnum.ipynb",
    "06": "06_100_cnns_analysis.ipynb",
    "07": "07_thermometer_encoding.ipynb",
    "08": "08_predicting_generalization.ipynb",
    "09": "09_making_networks_generalize.ipynb",
}


@dataclass
class Context:
    """Everything a step needs: preset, seed and the output folders of this run."""

    preset: Preset
    seed: int
    out_dir: Path
    progress: bool = True
    retrain: bool = False

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
        return self.out_dir / "runs" / f"{self.preset.name}_seed{self.seed}"

    @property
    def uses_shipped_population(self) -> bool:
        """The paper preset uses the shipped 100-CNN population (if present) unless ``retrain``."""
        shipped = POPULATION_DIR / "stats.csv"
        return self.preset.name == "paper" and not self.retrain and self.seed == 0 and shipped.is_file()

    @property
    def population_dir(self) -> Path:
        return POPULATION_DIR if self.uses_shipped_population else self.runs_dir / "population"

    @property
    def highlighted_dir(self) -> Path:
        """Chosen anew from the population in every run: never written into the shipped ``models/``."""
        return self.runs_dir / "highlighted"

    @property
    def analysis_dir(self) -> Path:
        return self.runs_dir / "analysis"

    @property
    def validation_dir(self) -> Path | None:
        """The independent population that tests the frozen diagnostics protocol, if this run's population is
        the one the protocol (``00_demonstrations_data/diagnostics_protocol.json``) was frozen on."""
        from ..interpret.generalization_prediction import PROTOCOL_FILE

        path = DEMO_DIR / PROTOCOL_FILE
        if not path.is_file():
            return None
        protocol = load_json(path)
        if (REPO_ROOT / protocol["discovery_population"]).resolve() != self.population_dir.resolve():
            return None
        return REPO_ROOT / protocol["validation_population"]


@dataclass
class Step:
    """One pipeline step: ``run(ctx)`` returns key numbers; ``outputs(ctx)`` lists the files it makes."""

    name: str
    run: Callable[[Context], dict]
    outputs: Callable[[Context], list[Path]]
    hint: str
    key_numbers: dict = field(default_factory=dict)
    verify: Callable[[Context], None] | None = None  # raises if what a skip would keep does not verify
    # raises ValueError / FileNotFoundError, in one line saying what to do, if the step cannot start
    precondition: Callable[[Context], None] | None = None


NOTEBOOK_FIGURES = {
    "01": ("Fig_3",),
    "02": ("Fig_architecture", "Fig_training_inputs", "Fig_training_curves", "Fig_test_probability_vs_v",
           "Fig_accuracy_vs_W"),
    "03": ("Fig_2", "Fig_CAM_averaged", "Fig_CAM_score_vs_generalization"),
    "04": ("Fig_4", "Fig_12", "Fig_13"),
    "05": ("Fig_6", "Fig_target_diagram"),
    "06": ("Fig_population_summary",),
    "07": ("Fig_thermometer", "Fig_thermometer_generalization", "Fig_thermometer_generalization_precise_bn"),
    "08": ("Fig_predictors", "Fig_lift_curves", "Fig_probe_images", "Fig_recall_by_band", "Fig_precise_bn",
           "Fig_baseline_estimates"),
    # the last five are drawn from the shipped seed-2 validation populations
    "09": ("Fig_ceiling", "Fig_recipes_development", "Fig_recipes_ood", "Fig_recipes_median_diagrams",
           "Fig_recipes_recall_by_band", "Fig_recipes_physics_rules", "Fig_recipes_cams"),
}


#: figures a notebook draws only when its input exists (notebook 08: the validation population); a step records
#: those it drew, so that the gallery (:func:`ssh_ood.figures.gallery.figure_presets`) knows which preset drew them
NOTEBOOK_OPTIONAL_FIGURES = {"08": ("Fig_protocol_validation",)}


def _notebook_parameters(ctx: Context, key: str) -> dict:
    if key == "09":  # reads the shipped populations only: no preset, seed or datasets of its own
        return {"FIGURES_DIR": str(ctx.figures_dir)}
    common = {"PRESET": ctx.preset.name, "SEED": ctx.seed, "DATA_DIR": str(ctx.data_dir),
              "FIGURES_DIR": str(ctx.figures_dir)}
    extra = {
        "02": {"RUN_DIR": str(ctx.runs_dir / "notebook_02")},
        "03": {"POPULATION_DIR": str(ctx.population_dir), "MODELS_DIR": str(ctx.highlighted_dir)},
        "04": {"POPULATION_DIR": str(ctx.population_dir), "MODELS_DIR": str(ctx.highlighted_dir),
               "ANALYSIS_DIR": str(ctx.analysis_dir)},
        "06": {"POPULATION_DIR": str(ctx.population_dir), "CREATE_IF_MISSING": False},
        # the real-valued half of the comparison: models 0.. of the population (same preset, seed, recipe)
        "07": {"RUN_DIR": str(ctx.runs_dir / "thermometer"), "REAL_VALUED_DIR": str(ctx.population_dir),
               "RETRAIN": ctx.retrain},
        # the precise-BN copies inside this run (by default they go to a folder named after the population's
        # folder only, which the populations of every preset and seed, all named "population", would share)
        # the pipeline runs the precise-BN study of a new population (off by default in the notebook: 15-30 min for
        # 100 networks; the shipped populations have it)
        "08": {"POPULATION_DIR": str(ctx.population_dir), "DATA_DIR": str(ctx.data_dir), "PRECISE_BN": True,
               "PRECISE_BN_DIR": str(ctx.runs_dir / "precise_bn"),
               "VALIDATION_DIR": None if ctx.validation_dir is None else str(ctx.validation_dir)},
    }
    return {**common, **extra.get(key, {})}


def _sign_notebook(path: Path) -> None:
    """Trust an executed notebook that this run wrote, so that Jupyter shows its outputs and does not log
    "Notebook ... is not trusted" when it is opened (the signature goes to the user's Jupyter data folder)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    NotebookNotary().sign(nbformat.read(path, as_version=4))


def _run_notebook_step(key: str) -> Step:
    notebook = NOTEBOOKS[key]
    figures = NOTEBOOK_FIGURES[key]

    def run(ctx: Context) -> dict:
        from ..base.notebook_runner import NotebookBar, run_notebook

        bar = NotebookBar(Path(notebook).stem, enabled=ctx.progress)
        try:
            run_notebook(REPO_ROOT / notebook, ctx.notebooks_dir / notebook, _notebook_parameters(ctx, key),
                         on_progress=bar)
        finally:
            bar.close()
        _sign_notebook(ctx.notebooks_dir / notebook)
        return {}

    def outputs(ctx: Context) -> list[Path]:
        optional = [name for name in NOTEBOOK_OPTIONAL_FIGURES.get(key, ()) if (ctx.figures_dir / f"{name}.png").is_file()]
        return [ctx.notebooks_dir / notebook] + [ctx.figures_dir / f"{name}.{ext}" for name in (*figures, *optional)
                                                 for ext in ("pdf", "png")]

    return Step(f"notebook {notebook}", run, outputs, f"open {notebook} in Jupyter and run it to see the failing cell",
                precondition=_shipped_comparison_present if key == "07" else None)


def _shipped_comparison_present(ctx: Context) -> None:
    """Notebook 07 reads the shipped paper-recipe thermometer comparison unless ``--retrain``: it must be there."""
    from ..ood.shipped_thermometer_comparison import read_shipped_comparison

    if ctx.preset.name == "paper" and not ctx.retrain:
        for batchnorm in ("running", "precise"):
            read_shipped_comparison(ctx.preset, ctx.preset.thermometer_compare_levels, batchnorm)


def _data_step() -> Step:
    def run(ctx: Context) -> dict:
        from ..physics.datasets import read_manifest, write_datasets

        write_datasets(ctx.preset, ctx.seed, ctx.data_dir, progress=ctx.progress)
        entries = read_manifest(ctx.data_dir)["datasets"]
        return {"datasets": len(entries), "samples": sum(e["n_samples"] for e in entries)}

    def outputs(ctx: Context) -> list[Path]:
        return [ctx.data_dir / "datasets.json"]

    def verify(ctx: Context) -> None:
        from ..physics.datasets import dataset_specs

        for spec in dataset_specs(ctx.preset):
            found = problem(ctx.data_dir / spec.filename)
            if found is not None:
                raise ValueError(found)

    return Step("data", run, outputs, "run `python -m ssh_ood data --preset <preset>` to see the error in full", verify=verify)


def _population_step() -> Step:
    def run(ctx: Context) -> dict:
        from ..ood.generalization_metrics import CUT_METRICS, DEFAULT_THRESHOLD
        from ..ood.population import run_population
        from ..ood.population_settings import PopulationSettings
        from ..ood.population_tables import load_population

        if not ctx.uses_shipped_population:
            run_population(PopulationSettings(ctx.preset, ctx.seed, ctx.population_dir, data_dir=ctx.data_dir,
                                              progress=ctx.progress))
        stats = load_population(ctx.population_dir).stats
        return {
            "models": len(stats),
            "median clean accuracy": round(float(stats["clean_accuracy"].median()), 3),
            "median OOD accuracy": round(float(stats["ood_accuracy"].median()), 3),
            "median MAE": round(float(stats["mae"].median()), 3),
            "median RMSE": round(float(stats["rmse"].median()), 3),
            **{f"well generalizing ({m.upper()} <= {DEFAULT_THRESHOLD:g})":
               f"{int((stats[m] <= DEFAULT_THRESHOLD).sum())}/{len(stats)}" for m in CUT_METRICS},
        }

    def outputs(ctx: Context) -> list[Path]:
        return [ctx.population_dir / "stats.csv"]

    def verify(ctx: Context) -> None:
        from ..ood.population_tables import check_phase_diagrams, load_population

        check_phase_diagrams(load_population(ctx.population_dir))  # its files, stats.csv against the model folders
        for folder in (ctx.population_dir, *sorted(ctx.population_dir.glob("model_*"))):
            problems = folder_problems(folder)  # every file of every model, as recorded
            if problems:
                raise ValueError(problems[0])

    return Step("population (train + OOD evaluation)", run, outputs,
                "run `python -m ssh_ood population --preset <preset>` to see the error; it resumes where it stopped",
                verify=verify)


def _highlight_step() -> Step:
    def run(ctx: Context) -> dict:
        from ..interpret.highlighted_models import highlight_population
        from ..ood.population_tables import load_population

        result = highlight_population(load_population(ctx.population_dir), ctx.data_dir, ctx.highlighted_dir,
                                      progress=ctx.progress)
        chosen = ", ".join(f"{c.category}: model {c.model_index} (class of {c.class_size})" for c in result.choices.values())
        return {"CAM score cut": round(float(result.score_cut), 3), "chosen": chosen,
                "corr(CAM score, MAE)": result.correlations.get("mae", {})}

    def outputs(ctx: Context) -> list[Path]:
        return [ctx.highlighted_dir]

    return Step("highlighted networks", run, outputs, "run `python -m ssh_ood highlight --help` and try it on the population")


def _analysis_step(cam: int) -> Step:
    def run(ctx: Context) -> dict:
        command = [sys.executable, str(REPO_ROOT / "04a_figure_models_analysis.py"), "--CAM", str(cam),
                   "--preset", ctx.preset.name, "--seed", str(ctx.seed), "--data", str(ctx.data_dir),
                   "--models-dir", str(ctx.highlighted_dir), "--out", str(ctx.analysis_dir),
                   "--figures", str(ctx.figures_dir), "--quiet"]
        # in a session of its own, Ctrl-C in the terminal reaches only this process, whose interruption kills the
        # script (subprocess.run does): one line for the user, not a second traceback from the script
        subprocess.run(command, cwd=REPO_ROOT, check=True, start_new_session=True)
        return {}

    def outputs(ctx: Context) -> list[Path]:
        figures = ("Fig_2",) if cam else ("Fig_4", "Fig_12", "Fig_13")
        return [ctx.figures_dir / f"{name}.png" for name in figures]

    name = "04a CAM analysis" if cam else "04a clustering analysis"
    return Step(name, run, outputs, f"run `python 04a_figure_models_analysis.py --CAM {cam}` to see the error")


def pipeline_steps() -> list[Step]:
    """The steps of the pipeline, in order."""
    return [
        _data_step(),
        _population_step(),
        _highlight_step(),
        _analysis_step(1),
        _analysis_step(0),
        *(_run_notebook_step(key) for key in NOTEBOOKS),
    ]


def _stamp_path(ctx: Context, step: Step) -> Path:
    return ctx.report_dir / "steps" / f"{step.name.replace(' ', '_')}.json"


def _output_digest(path: Path) -> str | None:
    """SHA-256 of an output file; of a folder, over its files' relative paths and hashes; None if missing."""
    if path.is_file():
        return sha256_bytes(path.read_bytes())
    if not path.is_dir():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".run.lock")
    return sha256_bytes("".join(f"{p.relative_to(path)}:{sha256_bytes(p.read_bytes())}\n" for p in files).encode())


def _is_up_to_date(ctx: Context, step: Step) -> bool:
    """The step's stamp verifies (:mod:`ssh_ood.base.file_records`), is of this preset and seed, every output is
    what the stamp recorded (its hash), and what the step would keep verifies (``step.verify``)."""
    path = _stamp_path(ctx, step)
    if problem(path) is not None:
        return False
    try:
        stamp = load_json(path)
    except ValueError:
        return False
    same_run = stamp.get("preset") == ctx.preset.name and stamp.get("seed") == ctx.seed
    recorded = stamp.get("output_sha256", {})
    names = [s.name for s in pipeline_steps()]
    later = {str(p) for s in pipeline_steps()[names.index(step.name) + 1:] for p in s.outputs(ctx)} \
        if step.name in names else set()  # outputs a later step rewrites (a figure) are only required to exist
    if not same_run or not all(p.exists() for p in step.outputs(ctx)) or any(
            recorded.get(str(p)) != _output_digest(p) for p in step.outputs(ctx) if str(p) not in later):
        return False
    try:
        if step.verify is not None:
            step.verify(ctx)
    except (ValueError, FileNotFoundError):
        return False
    return True


class StepFailed(RuntimeError):
    """A pipeline step raised; the message names the step and what to do."""


def run_pipeline(preset: str | Preset, seed: int = 0, out_dir: Path = DEMO_DIR, force: bool = False,
                 progress: bool = True, retrain: bool = False) -> Path:
    """Run every step (skipping up-to-date ones) and write the report; returns the report path.

    ``retrain``: with the paper preset, train a new population and thermometer comparison (notebook 07) instead
    of using the shipped ones.
    """
    ctx = Context(get_preset(preset), int(seed), Path(out_dir), progress, retrain)
    records = []
    steps = pipeline_steps()
    for step in steps:  # before any work: a step that could not start would stop the run hours in
        if step.precondition is not None:
            try:
                step.precondition(ctx)
            except (ValueError, FileNotFoundError) as exc:
                raise StepFailed(f"step '{step.name}' cannot start: {exc}") from exc
    # steps differ by orders of magnitude in cost (seconds to hours), so the bar shows no estimate of the
    # time left: the step running, how many are done and the time so far
    bar = tqdm(total=len(steps), desc=f"reproduce ({ctx.preset.name})", disable=not progress, dynamic_ncols=True,
               bar_format="{desc}: {n_fmt}/{total_fmt} steps done [{elapsed}]{postfix}")
    with bar:
        for step in steps:
            bar.set_postfix_str(step.name)
            records.append(_run_step(ctx, step, force))
            bar.update()
    return write_report(ctx, records)


def _run_step(ctx: Context, step: Step, force: bool) -> dict:
    """Run ``step`` unless it is up to date (then its stamp is kept); returns its record for the report."""
    if not force and _is_up_to_date(ctx, step):
        return {**load_json(_stamp_path(ctx, step)), "skipped": True}
    start = time.perf_counter()
    try:
        numbers = step.run(ctx) or {}
    except KeyboardInterrupt as interruption:  # Ctrl-C or SIGTERM: the same kind, naming the step
        raise type(interruption)(f"step '{step.name}'") from None
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
        "output_sha256": {str(p): _output_digest(p) for p in step.outputs(ctx)},
    }
    open_folder(_stamp_path(ctx, step).parent, {"kind": "stamps"})
    save_json(_stamp_path(ctx, step), stamp)
    return {**stamp, "skipped": False}


def _display_path(path: Path, *roots: Path) -> str:
    """``path`` relative to the first of ``roots`` that contains it, else absolute."""
    for root in roots:
        if path.resolve().is_relative_to(root.resolve()):
            return str(path.resolve().relative_to(root.resolve()))
    return str(path)


def _steps_sentence(records: list[dict]) -> str:
    """How many steps ran now and how many were up to date, without speaking of others when there are none."""
    ran = [r for r in records if not r.get("skipped")]
    seconds = f"{sum(r['seconds'] for r in ran):.1f} s"
    if not ran:
        return f"All {len(records)} pipeline steps were up to date from an earlier run; none ran now."
    if len(ran) == len(records):
        return f"It ran all {len(records)} pipeline steps ({seconds})."
    others = len(records) - len(ran)
    return (f"It ran {len(ran)} of the {len(records)} pipeline steps ({seconds}); "
            f"{'the other one was' if others == 1 else f'the other {others} were'} up to date from an earlier run.")


#: readable names of the keys of a step's nested numbers (e.g. the CAM score's correlations)
_NUMBER_LABELS = {"n": "n", "pearson_r": "Pearson r", "pearson_p": "p", "spearman_rho": "Spearman ρ", "spearman_p": "p"}


def format_step_number(value) -> str:
    """A step's key number as report text: floats to 3 significant digits, a dict as "label value, ..."."""
    if isinstance(value, dict):
        return ", ".join(f"{_NUMBER_LABELS.get(k, k)} {format_step_number(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _summary(ctx: Context, records: list[dict]) -> str:
    state = git_state()
    commit = f"`{state['commit'][:10]}`" + (" (with uncommitted changes)" if state["dirty"] else "")
    population = _display_path(ctx.population_dir, REPO_ROOT, ctx.out_dir)
    origin = "the shipped population" if ctx.uses_shipped_population else "trained and evaluated by this pipeline"
    preset = ctx.preset
    sizes = (f"{preset.n_models} networks, up to {preset.max_epochs} epochs, OOD grid of {preset.grid_n_W} W × "
             f"{preset.grid_n_realizations} realizations × {preset.grid_n_v} v")
    return (f"A run of the `{preset.name}` preset ({sizes}) with master seed {ctx.seed} at commit {commit}, reported "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} on {platform.platform()}. {_steps_sentence(records)} "
            f"The networks: `{population}` ({origin}). Figures are in `figures/` and executed "
            f"notebooks in `executed_notebooks/` under `{_display_path(ctx.out_dir, REPO_ROOT)}`.")


def _figures_markdown(ctx: Context) -> list[str]:
    from ..figures.figure_catalog import present_sections

    folder = Path(os.path.relpath(ctx.figures_dir, ctx.report_dir)).as_posix()  # links relative to the report
    lines = []
    for section in present_sections(ctx.figures_dir):
        lines += [f"### {section.heading}", ""]
        for entry in section.figures:
            caption = entry.caption or "not in the figure catalogue (src/ssh_ood/figures/figure_catalog.py)"
            lines += [f"![{entry.name}]({folder}/{entry.name}.png)", "", f"{caption} (`{entry.name}`)", ""]
    return lines or ["No figures were found in `figures/`.", ""]


def report_markdown(ctx: Context, records: list[dict]) -> str:
    """The run report as Markdown: summary, key numbers, findings, figures by section, steps, preset, versions.

    Parameters
    ----------
    ctx : the run (preset, seed, folders; the population's files feed the numbers and findings).
    records : one stamp per pipeline step (``step``, ``seconds``, ``numbers``, ``skipped``).
    """
    from ..figures.findings import findings_markdown, key_numbers_markdown, recipes_markdown

    lines = [f"# Reproduction report: preset `{ctx.preset.name}`, seed {ctx.seed}", "", _summary(ctx, records), ""]
    table = key_numbers_markdown(ctx.population_dir)
    lines += ["## Key numbers", "", table or "The population has no `stats.csv` yet.", ""]
    findings = findings_markdown(ctx.population_dir, ctx.validation_dir)
    if findings:
        lines += ["## Findings", "", findings, ""]
    recipes = recipes_markdown(DEMO_DIR / "recipes_protocol.json", REPO_ROOT)
    if recipes:
        lines += ["## Training recipes that generalize (shipped validation populations)", "", recipes, ""]
    lines += ["## Figures", "", *_figures_markdown(ctx)]
    lines += ["## Steps", "", "| step | time (s) | key numbers |", "|---|---:|---|"]
    for record in records:
        numbers = "; ".join(f"{k} = {format_step_number(v)}" for k, v in record.get("numbers", {}).items())
        skipped = " (up to date, skipped)" if record.get("skipped") else ""
        lines.append(f"| {record['step']}{skipped} | {record['seconds']} | {numbers} |")
    total = sum(r["seconds"] for r in records if not r.get("skipped"))
    lines += ["", f"Total time of the steps run now: {total:.1f} s.", "",
              "## Preset", "", "```", *(f"{k}: {v}" for k, v in ctx.preset.to_dict().items()), "```", "",
              "## Versions", "", *(f"- {k} {v}" for k, v in package_versions().items()), ""]
    return "\n".join(lines)


def write_report(ctx: Context, records: list[dict]) -> Path:
    """Write ``report/report.md`` and beside it ``report/report.html`` (self-contained, figures embedded).

    Returns the path of the Markdown report.
    """
    from ..figures.html_report import markdown_to_html

    text = report_markdown(ctx, records)
    path = atomic_write_bytes(ctx.report_dir / "report.md", text.encode())
    title = f"Reproduction report: preset {ctx.preset.name}, seed {ctx.seed}"
    atomic_write_bytes(ctx.report_dir / "report.html", markdown_to_html(text, ctx.report_dir, title).encode())
    return path


def add_reproduce_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "reproduce", parents=parents,
        help="run the whole pipeline of a preset and write the report",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--preset", choices=PRESET_NAMES, default="paper",
                        help="run size (default: paper, the shipped networks and the paper's figures)")
    parser.add_argument("--seed", type=seed_argument, default=0, help="master seed (default: 0)")
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help="output root (default: 00_demonstrations_data)")
    parser.add_argument("--force", action="store_true", help="redo steps that are up to date")
    parser.add_argument("--retrain", action="store_true",
                        help="paper preset: train a new 100-CNN population instead of using the shipped one, and "
                        "the thermometer comparison of notebook 07 instead of reading the shipped one (hours)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_reproduce)


def _run_reproduce(args: argparse.Namespace) -> int:
    try:
        report = run_pipeline(args.preset, args.seed, args.out, force=args.force, progress=not args.quiet,
                              retrain=args.retrain)
    except StepFailed as exc:
        print(f"error: {exc}")
        return 1
    print(f"report: {report}")
    return 0
