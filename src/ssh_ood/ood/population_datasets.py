"""The datasets folder a command uses for a population: named on its command line, or read from the manifest.

The manifest's ``data_dir`` is data (:mod:`ssh_ood.base.safe_paths`): resolved, and written to (datasets
generated there) only when it lies inside the population folder or the project's datasets folder. A folder
elsewhere is only read, and only when it already holds the datasets of the population's preset and seed, in a
folder the project recorded (``datasets.json`` verified against its record); otherwise the command refuses it
in one line and asks for ``--data-dir``.
"""

from __future__ import annotations

from pathlib import Path

from ..base.paths import REPO_ROOT
from ..base.presets import get_preset
from ..base.safe_paths import confined_path
from ..nets.model_identity import check_field
from ..nets.training_recipe import check_seed
from ..physics.datasets import read_manifest
from .population_tables import MANIFEST_FILE


def population_datasets(population_dir: str | Path, manifest: dict, data_dir: str | Path | None = None
                        ) -> tuple[Path, bool]:
    """The datasets folder of a population, and whether the command may generate missing datasets there.

    Parameters
    ----------
    population_dir : the population folder the command was given.
    manifest : its ``manifest.json`` (``data_dir``, ``preset``, ``seed``).
    data_dir : the folder given on the command line (``--data-dir``), if any: used as it is, writable.

    Raises
    ------
    ValueError
        in one line naming the manifest if its ``preset`` or ``seed`` is invalid (the command line's validators),
        or if its ``data_dir`` lies outside the allowed folders and does not hold
        the population's datasets.
    """
    source = Path(population_dir) / MANIFEST_FILE
    check_field(source, "preset", manifest.get("preset"), get_preset)  # as --preset and --seed would be
    check_field(source, "seed", manifest.get("seed"), check_seed)
    if data_dir is not None:
        return Path(data_dir), True
    try:
        return confined_path(manifest.get("data_dir"), source, "data_dir", [population_dir], "--data-dir"), True
    except ValueError as outside:
        if not isinstance(manifest.get("data_dir"), str):
            raise
        path = Path(manifest["data_dir"])
        folder = (path if path.is_absolute() else REPO_ROOT / path).resolve()
        try:
            held = read_manifest(folder)
        except (FileNotFoundError, ValueError):
            raise outside from None
        if (held["preset"], held["seed"]) != (manifest["preset"], manifest["seed"]):
            raise outside from None
        return folder, False
