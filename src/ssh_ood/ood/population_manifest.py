"""A population's ``manifest.json``: preset, seeds, grid, cut, package versions, git commit, and every invocation
(models, wall time, device, scheduler). The stats table is :mod:`ssh_ood.ood.population_tables`."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from threadpoolctl import threadpool_info

from ..base.device import select_device
from ..base.io_utils import load_json_object, save_json
from ..base.provenance import git_state, package_versions
from ..base.run_folders import hold_folder
from ..nets.model_folders import is_complete
from ..nets.recipes import DEFAULT_RECIPE
from ..nets.training_processes import available_cpus
from ..nets.training_recipe import model_seed
from .generalization import GeneralizationGrid
from .generalization_metrics import GeneralizationCut
from .model_evaluation import WEIGHT_FILES
from .population_settings import PopulationSettings
from .population_tables import MANIFEST_FIELDS, MANIFEST_FILE, write_stats


def device_description(device: str | None) -> str:
    """The torch device with the GPU name, or the CPU model, usable cores and the OpenBLAS kernel.

    The kernel (``SkylakeX``, ``Haswell``, ...) is recorded because it sets the last bits of the SVDs behind the
    inputs, and so the data fingerprint of a run (``OPENBLAS_CORETYPE`` chooses it).
    """
    resolved = select_device(device)
    if resolved.type == "cuda":
        return f"{resolved} ({torch.cuda.get_device_name(resolved)})"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    kernels = sorted({pool["architecture"] for pool in threadpool_info()
                      if pool.get("internal_api") == "openblas" and pool.get("architecture")})
    kernel = f", OpenBLAS kernel {'/'.join(kernels)}" if kernels else ""
    return f"{resolved} ({cpu}, {available_cpus()} usable cores{kernel})"


def check_manifest(out_dir: Path, preset: str, seed: int, recipe: str = DEFAULT_RECIPE) -> dict:
    """The existing manifest of ``out_dir`` ({} if none); ``ValueError`` if it is another population's."""
    path = out_dir / MANIFEST_FILE
    previous = load_json_object(path, MANIFEST_FIELDS) if path.is_file() else {}
    if previous and (previous.get("preset") != preset or previous.get("seed") != seed):
        raise ValueError(f"{path}: population of preset {previous.get('preset')!r}, seed {previous.get('seed')}, not "
                         f"{preset!r}, {seed}; choose another output folder")
    if previous and previous.get("recipe", DEFAULT_RECIPE) != recipe:
        raise ValueError(f"{path}: population of recipe {previous.get('recipe', DEFAULT_RECIPE)!r}, not {recipe!r}; "
                         "choose another output folder")
    return previous


def write_manifest(out_dir: Path, settings: PopulationSettings, run: dict) -> Path:
    """Create or update ``manifest.json``: provenance, plus ``run`` appended to the list of invocations.

    The read-modify-write happens while holding the folder (:func:`ssh_ood.base.run_folders.hold_folder`).
    """
    with hold_folder(out_dir):
        return _write_manifest(Path(out_dir), settings, run)


def _write_manifest(out_dir: Path, settings: PopulationSettings, run: dict) -> Path:
    path = Path(out_dir) / MANIFEST_FILE
    previous = check_manifest(Path(out_dir), settings.preset.name, settings.seed, settings.recipe)
    runs = [*previous.get("runs", []), run]
    finished = sorted(int(d.name.split("_")[1]) for d in Path(out_dir).glob("model_*") if is_complete(d))
    manifest = {
        "preset": settings.preset.name,
        "preset_fields": settings.preset.to_dict(),
        "seed": settings.seed,
        **({"recipe": settings.recipe} if settings.recipe != DEFAULT_RECIPE else {}),
        "seeds": {
            "datasets": settings.seed,
            "grid_disorder": settings.seed,
            "models": {str(i): model_seed(settings.seed, i) for i in finished},
        },
        "grid": settings.grid.to_dict(),
        "evaluated_weights": WEIGHT_FILES[settings.which],
        "generalization_cut": settings.cut.to_dict(),
        "data_dir": str(settings.data_dir),
        "packages": package_versions(),
        "git": git_state(),
        "total_wall_time_s": round(sum(r["wall_time_s"] for r in runs), 3),
        "runs": runs,
    }
    return save_json(path, manifest)


def record_evaluation(out_dir: Path, grid: GeneralizationGrid, which: str, cut: GeneralizationCut, run: dict) -> Path:
    """After models of a population were (re-)evaluated: the manifest's grid, weights, cut and list of
    invocations, and ``stats.csv``, rewritten to match the models' results; returns the stats path."""
    with hold_folder(out_dir):
        path = Path(out_dir) / MANIFEST_FILE
        manifest = load_json_object(path, MANIFEST_FIELDS)
        runs = [*manifest["runs"], run]
        manifest.update(grid=grid.to_dict(), evaluated_weights=WEIGHT_FILES[which], generalization_cut=cut.to_dict(),
                        runs=runs, total_wall_time_s=round(sum(r.get("wall_time_s", 0.0) for r in runs), 3))
        save_json(path, manifest)
        return write_stats(out_dir, cut)
