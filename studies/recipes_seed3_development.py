"""Clean-data development of the recipes of the seed-3 study: a few networks per recipe, nothing out of distribution.

Trains ``--models`` networks of each recipe on the quick preset (data seed 0, ``--epochs`` epochs with the paper's
early-stopping rule) into ``00_demonstrations_data/runs/seed3_development/<recipe>`` (not shipped), then measures on
clean and perturbative chains only (W <= 0.05, checked by ``require_clean``), through ``predict_phase``:

- ``test_accuracy``: the clean test set of the preset (recorded by training);
- ``accuracy_W0.05``: a fresh test set at W = 0.05 (v on the test grid, 0-2, seed 1000);
- ``window_accuracy``: the clean chains of the test grid with v in (0.8, 1.2), which the paper's training leaves out;
- ``clean_boundary``: the v at which the network's clean-chain probability of the topological phase first falls
  below 1/2 (v = linspace(0, 2, 401)), 1.0 for a perfect network.

Writes ``recipes_seed3_development.csv`` in 00_demonstrations_data/. Run:
``nice -n 15 .venv/bin/python studies/recipes_seed3_development.py --recipes paper window ...``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ssh_ood.base.paths import DEMO_DIR, RUNS_DIR, datasets_dir
from ssh_ood.base.presets import get_preset
from ssh_ood.nets.model_folders import training_outcome
from ssh_ood.nets.prediction import predict_phase
from ssh_ood.nets.recipes import RECIPE_NAMES
from ssh_ood.nets.training_run import train_models
from ssh_ood.physics.data_generation import generate_dataset
from ssh_ood.physics.datasets import ensure_datasets
from ssh_ood.physics.no_peeking import require_clean
from ssh_ood.physics.physics_rules import clean_chains

DEMO = DEMO_DIR
PRESET = get_preset("quick")
CHECK_W, CHECK_SEED = 0.05, 1000


def measure(folder: Path) -> dict:
    """Clean and perturbative measures of one trained network (module docstring)."""
    require_clean([0.0, CHECK_W], "development measures")
    perturbed = generate_dataset("test", 2000, CHECK_W, CHECK_SEED)
    p_perturbed = predict_phase(folder, perturbed["v_n"], perturbed["w_n"])
    v = np.linspace(0.0, 2.0, 401)
    p_clean = predict_phase(folder, *clean_chains(v))
    below = np.flatnonzero(p_clean < 0.5)
    clean = generate_dataset("test", PRESET.n_test, 0.0, 0)
    window = (clean["v"] > 0.8) & (clean["v"] < 1.2)
    p_window = predict_phase(folder, clean["v_n"][window], clean["w_n"][window])
    return {
        "test_accuracy": training_outcome(folder)["test_accuracy"],
        f"accuracy_W{CHECK_W}": float(np.mean((p_perturbed > 0.5) == perturbed["labels"])),
        "window_accuracy": float(np.mean((p_window > 0.5) == clean["labels"][window])),
        "clean_boundary": float(v[below[0]]) if below.size else float("nan"),
        "epochs_run": training_outcome(folder)["epochs_run"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPE_NAMES, default=list(RECIPE_NAMES))
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=DEMO / "recipes_seed3_development.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_dir = ensure_datasets(PRESET, 0, datasets_dir(PRESET.name), progress=False)
    rows = []
    for recipe in args.recipes:  # the table is rewritten after each recipe, so an interrupted run keeps what it measured
        start = time.time()
        folders = train_models(PRESET, data_dir, RUNS_DIR / "seed3_development" / f"{recipe}_e{args.epochs}",
                               range(args.models), device="cpu", max_epochs=args.epochs, recipe=recipe, n_workers=1,
                               progress=False)
        seconds = time.time() - start
        for index, folder in enumerate(folders):
            rows.append({"run": f"quick, {args.epochs} epochs", "recipe": recipe, "model_index": index,
                         **measure(folder), "train_seconds_per_model": round(seconds / len(folders), 1)})
            print(rows[-1], flush=True)
        table = write_table(pd.DataFrame(rows), args.out)
    print(table.groupby(["run", "recipe"]).median(numeric_only=True).round(3).to_string())
    return 0


def write_table(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """``table`` merged into the CSV at ``out`` (its rows replace rows of the same run, recipe and model), written."""
    if out.is_file():
        previous = pd.read_csv(out)
        key = ["run", "recipe", "model_index"]
        keep = ~previous.set_index(key).index.isin(table.set_index(key).index)
        table = pd.concat([previous[keep], table], ignore_index=True)
    table.to_csv(out, index=False)
    return table


if __name__ == "__main__":
    raise SystemExit(main())
