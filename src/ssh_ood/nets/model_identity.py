"""A run folder's models are its own, and what their ``config.json`` says is checked like a command line.

Each model folder records its identity twice: in ``config.json`` (preset, run seed ``base_seed``, ``index``,
``model_seed``) and in its record of files (``files.json``, :mod:`ssh_ood.base.file_records`: kind, preset, seed,
index). A model is accepted only when

* every field is valid by the validator that checks the same value given on the command line (the preset
  by :func:`ssh_ood.base.presets.get_preset`, the run seed by :func:`ssh_ood.nets.training_recipe.check_seed`, the
  index and model seed by :func:`ssh_ood.nets.training_recipe.model_seed`): a negative seed read from disk is
  refused as ``--seed -1`` is (:func:`check_config_values`);
* the folder's name (``model_007``) is that of its index, the record's identity is the config's, and the
  model seed is the one its run seed and index give (:func:`check_model_identity`): a model folder copied in
  from another run, or from another index of the same run, is refused by name;
* all the models of a run folder belong to one run (same preset and run seed) and no index appears twice
  (:func:`check_run_members`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..base.file_records import folder_identity
from ..base.presets import get_preset
from .training_recipe import check_seed, model_seed

_MODEL_FOLDER = re.compile(r"model_(\d+)")


def check_field(path: str | Path, name: str, value: Any, validator: Callable[[Any], Any]) -> Any:
    """``validator(value)`` for field ``name`` read from ``path``; its ``ValueError`` prefixed with the file and field."""
    try:
        return validator(value)
    except ValueError as exc:
        raise ValueError(f"{path}: field {name!r}: {exc}") from None


def check_config_values(path: str | Path, config: dict) -> dict:
    """``config`` (a model's ``config.json`` read from ``path``) after checking its identity fields with the
    command line's validators; ``ValueError`` in one line naming the file and the field otherwise."""
    path = Path(path)
    check_field(path, "preset", config["preset"], get_preset)
    check_field(path, "base_seed", config["base_seed"], lambda seed: check_seed(seed, "base_seed"))
    expected_seed = check_field(path, "index", config["index"], lambda index: model_seed(config["base_seed"], index))
    if config["model_seed"] != expected_seed:
        raise ValueError(f"{path}: field 'model_seed': {config['model_seed']!r}, but run seed {config['base_seed']} "
                         f"and index {config['index']} give {expected_seed}")
    return config


def check_model_identity(model_dir: str | Path, config: dict) -> None:
    """``ValueError`` naming ``model_dir`` if its name, its record's identity and ``config`` disagree about which
    model of which run it holds (a foreign or duplicated model)."""
    model_dir = Path(model_dir)
    named = _MODEL_FOLDER.fullmatch(model_dir.name)
    if named is not None and int(named.group(1)) != config["index"]:
        raise ValueError(f"{model_dir}: holds model {config['index']} (its config.json), not model "
                         f"{int(named.group(1))}: a model folder copied in under another name; remove it")
    recorded = folder_identity(model_dir)
    claimed = {"kind": "model", "preset": config["preset"], "seed": config["base_seed"], "index": config["index"]}
    wrong = [f"{key} {recorded.get(key)!r} recorded, {value!r} in config.json" for key, value in claimed.items()
             if recorded.get(key) != value]
    if wrong:
        raise ValueError(f"{model_dir}: a foreign model ({'; '.join(wrong)}); remove it or retrain it")


def check_run_members(configs: Iterable[tuple[Path, dict]]) -> None:
    """``ValueError`` naming the model folder that belongs to another run than the first one (preset and run
    seed) or repeats an index already seen, among ``(model folder, config)`` pairs of one run folder."""
    first: tuple[Path, tuple] | None = None
    seen: dict[int, Path] = {}
    for model_dir, config in configs:
        run = (config["preset"], config["base_seed"])
        if first is None:
            first = (model_dir, run)
        elif run != first[1]:
            raise ValueError(f"{model_dir}: a model of another run (preset {run[0]!r}, seed {run[1]}) among those of "
                             f"{first[0].parent} (preset {first[1][0]!r}, seed {first[1][1]}); remove it")
        if config["index"] in seen:
            raise ValueError(f"{model_dir}: model {config['index']} again (also in {seen[config['index']]}); remove the "
                             "duplicate")
        seen[config["index"]] = model_dir
