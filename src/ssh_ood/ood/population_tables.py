"""A population folder's tables: ``stats.csv`` (one row per evaluated model, columns documented in
:data:`COLUMNS` and ``stats_columns.json``), and loading a folder with its manifest for analysis.

Written by :mod:`ssh_ood.ood.population` (which also writes ``manifest.json``); read by the notebooks, the
browser, the figures and the studies of :mod:`ssh_ood.interpret.diagnostics` and :mod:`ssh_ood.ood.batchnorm_study`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.file_records import problem, read_record
from ..base.io_utils import atomic_write_bytes, load_documented_table, load_json_object, save_json
from ..base.run_folders import hold_folder
from ..nets.metrics import METRIC_NAMES
from ..nets.model_folders import (
    check_undamaged,
    is_complete,
    load_config,
    load_history,
    model_dir_name,
    training_outcome,
)
from .generalization import GeneralizationResult
from .generalization_metrics import GeneralizationCut, diagram_mae, diagram_rmse
from .model_evaluation import load_metrics, load_result

#: fields of manifest.json every reader relies on, with their JSON types
MANIFEST_FIELDS = {"preset": str, "seed": int, "grid": dict, "runs": list}
STATS_FILE = "stats.csv"
STATS_COLUMNS_FILE = "stats_columns.json"
MANIFEST_FILE = "manifest.json"
_METRIC_MEANING = {
    "accuracy": "accuracy",
    "precision_trivial": "precision of the trivial class",
    "recall_trivial": "recall of the trivial class",
    "f1_trivial": "F1 score of the trivial class",
    "precision_topological": "precision of the topological class",
    "recall_topological": "recall of the topological class",
    "f1_topological": "F1 score of the topological class",
    "macro_precision": "macro-averaged precision (mean over the two classes)",
    "macro_recall": "macro-averaged recall",
    "macro_f1": "macro-averaged F1 score",
}
COLUMNS: dict[str, str] = {
    "model_index": "index i of the model in the population (folder model_XXX)",
    "model_seed": "seed of the model's initialization and dropout: model_seed(seed, i) = seed * 10**6 + i",
    "epochs_run": "training epochs run (early stopping or the preset's maximum)",
    "best_epoch": "epoch with the lowest validation loss (1-based)",
    "stopped_early": "True if the paper's early-stopping rule ended training",
    "final_train_loss": "cross-entropy on the training set in the last epoch (with dropout)",
    "final_val_loss": "cross-entropy on the validation set after the last epoch (eval mode)",
    "final_train_accuracy": "training accuracy in the last epoch (with dropout)",
    "final_val_accuracy": "validation accuracy after the last epoch",
    "best_val_loss": "lowest validation loss over all epochs",
    "test_accuracy": "accuracy on the clean in-distribution test set (transition window included), last weights",
    "mae": "mean absolute difference between the predicted and target phase diagrams (fractions in [0, 1]); "
    "the metric the paper's 'RMSE' column behaves like (≈ 1 - OOD accuracy)",
    "rmse": "root-mean-square difference between the predicted and target phase diagrams (fractions in [0, 1])",
    "ssim": "structural similarity (scikit-image, data_range 1) between predicted and target phase diagrams",
    "well_generalizing": "True if the population's cut metric <= its threshold (manifest: generalization_cut; "
    "default mae <= 0.2, the paper's cut on the metric its table behaves like)",
    **{
        f"ood_{name}": f"{_METRIC_MEANING[name]} on the generalization grid, mean over its n_W x R (W, realization) test sets"
        for name in METRIC_NAMES
    },
    **{
        f"clean_{name}": f"{_METRIC_MEANING[name]} on the grid's clean row (W = 0), mean over its R test sets"
        for name in METRIC_NAMES
    },
}


def model_row(model_dir: str | Path, cut: GeneralizationCut | None = None) -> dict:
    """The stats-table row (every key of :data:`COLUMNS`) of a finished model folder (``cut``: default
    MAE <= 0.2)."""
    cut = GeneralizationCut() if cut is None else cut
    model_dir = Path(model_dir)
    config = load_config(model_dir)
    metrics = load_metrics(model_dir)
    row = {
        "model_index": int(config["index"]),
        "model_seed": int(config["model_seed"]),
        **training_outcome(model_dir),
        "mae": metrics["mae"],
        "rmse": metrics["rmse"],
        "ssim": metrics["ssim"],
        "well_generalizing": cut.passes(metrics),
        **{f"ood_{name}": metrics["ood"][name] for name in METRIC_NAMES},
        **{f"clean_{name}": metrics["clean"][name] for name in METRIC_NAMES},
    }
    return {name: row[name] for name in COLUMNS}


def write_stats(out_dir: str | Path, cut: GeneralizationCut | None = None) -> Path:
    """Write ``stats.csv`` (one row per model folder with an evaluation, by index) and ``stats_columns.json``.

    Read and written while holding the folder (:func:`ssh_ood.base.run_folders.hold_folder`): one writer at a time.
    """
    out_dir = Path(out_dir)
    with hold_folder(out_dir):
        check_undamaged(sorted(out_dir.glob("model_*")))
        rows = [
            model_row(d, cut)
            for d in sorted(out_dir.glob("model_*"))
            # an evaluation file that does not verify is refused by model_row, never left out
            if is_complete(d) and any((d / name).is_file() for name in ("generalization_metrics.json", "phase_diagram.npz"))
        ]
        table = pd.DataFrame(rows, columns=list(COLUMNS)).sort_values("model_index")
        text = io.StringIO()
        table.to_csv(text, index=False, lineterminator="\n")
        save_json(out_dir / STATS_COLUMNS_FILE, COLUMNS)
        return atomic_write_bytes(out_dir / STATS_FILE, text.getvalue().encode())


@dataclass
class Population:
    """A population folder loaded for analysis.

    Attributes
    ----------
    folder : the population folder.
    stats : the stats table (one row per model, columns of :data:`COLUMNS`).
    columns : column name -> meaning (``stats_columns.json``).
    manifest : ``manifest.json``.
    """

    folder: Path
    stats: pd.DataFrame
    columns: dict[str, str]
    manifest: dict

    @property
    def indices(self) -> list[int]:
        return [int(i) for i in self.stats["model_index"]]

    @property
    def cut(self) -> GeneralizationCut:
        """The population's well-generalizing cut (manifest ``generalization_cut``; an old manifest's
        ``rmse_threshold`` is an RMSE cut)."""
        return GeneralizationCut.stored_in(self.manifest, str(self.folder / MANIFEST_FILE))

    def model_dir(self, index: int) -> Path:
        """Folder of model ``index``; ``ValueError`` if the population has no such model."""
        if int(index) not in self.indices:
            raise ValueError(f"model index {index} is not in the population {self.folder} (has {self.indices})")
        return self.folder / model_dir_name(int(index))

    def result(self, index: int) -> GeneralizationResult:
        """Predicted and target diagrams and per-set metrics of model ``index``."""
        return load_result(self.model_dir(index))

    def history(self, index: int) -> dict:
        """Training history (per-epoch losses and accuracies) of model ``index``."""
        return load_history(self.model_dir(index))


def load_population(folder: str | Path) -> Population:
    """Load ``stats.csv``, its column documentation and the manifest of a population folder, verified.

    Every file must equal the folder's record (:mod:`ssh_ood.base.file_records`), and the table must agree with
    the model folders it summarizes (:func:`check_stats`). Raises ``FileNotFoundError`` (with the command that
    creates one) if the folder has no stats table and ``ValueError`` in one line naming the file otherwise.
    """
    folder = Path(folder)
    command = f"python -m ssh_ood population --preset <preset> --seed <seed> --out {folder}"
    if not (folder / STATS_FILE).is_file():
        raise FileNotFoundError(f"{folder / STATS_FILE}: not found; make it with `{command}`")
    stats = load_documented_table(folder / STATS_FILE, COLUMNS, command)  # verified if the folder is recorded
    read_record(folder)  # and it must be
    columns = load_json_object(folder / STATS_COLUMNS_FILE, {})
    manifest = load_json_object(folder / MANIFEST_FILE, MANIFEST_FIELDS)
    population = Population(folder=folder, stats=stats, columns=columns, manifest=manifest)
    check_stats(population)
    return population


def check_stats(population: Population) -> None:
    """``ValueError`` naming ``stats.csv`` if it does not summarize the population's model folders: the models
    evaluated there (a verified ``generalization_metrics.json``) must be its rows, each row equal to
    :func:`model_row` of its folder (values written by pandas read back exactly; 1e-12 relative slack)."""
    folder, stats = population.folder, population.stats
    path = folder / STATS_FILE
    evaluated = sorted(int(d.name[len("model_"):]) for d in folder.glob("model_*")
                       if d.name[len("model_"):].isdigit() and problem(d / "generalization_metrics.json") is None)
    listed = sorted(int(i) for i in stats["model_index"])
    for index in sorted(set(listed) - set(evaluated)):  # name the model's file that fails
        found = problem(folder / model_dir_name(index) / "generalization_metrics.json")
        raise ValueError(f"{found}; {path} lists model {index}")
    if listed != evaluated:
        extra, missing = sorted(set(listed) - set(evaluated)), sorted(set(evaluated) - set(listed))
        raise ValueError(f"{path}: does not list the models evaluated in {folder} (rows without a verified evaluation: "
                         f"{extra}; evaluated models without a row: {missing}); rerun the population or evaluate command "
                         "on the folder to rewrite it")
    for _, row in stats.iterrows():
        index = int(row["model_index"])
        expected = model_row(folder / model_dir_name(index), population.cut)
        for name, value in expected.items():
            stored = row[name]
            same = (bool(stored) == bool(value) if isinstance(value, (bool, np.bool_))
                    else np.isclose(float(stored), float(value), rtol=1e-12, atol=0.0, equal_nan=True))
            if not same:
                raise ValueError(f"{path}: model {index}: {name} = {stored!r} in the table, {value!r} in its model folder; "
                                 "rerun the population or evaluate command on the folder to rewrite the table")


def check_phase_diagrams(population: Population) -> None:
    """``ValueError`` naming the file if a model's phase diagram set does not agree with its metrics and the
    population: each ``phase_diagram.npz`` on the manifest's grid, its MAE and RMSE (recomputed from the
    diagrams) equal to those of ``generalization_metrics.json`` and of ``stats.csv``."""
    grid = population.manifest["grid"]
    stats = population.stats.set_index("model_index")
    for index in population.indices:
        model_dir = population.model_dir(index)
        result, metrics = load_result(model_dir), load_metrics(model_dir)
        path = model_dir / "phase_diagram.npz"
        if result.grid.to_dict() != grid:
            raise ValueError(f"{path}: grid {result.grid.to_dict()}, but the population's manifest has {grid}")
        for name, value in (("mae", diagram_mae(result.predicted, result.target)),
                            ("rmse", diagram_rmse(result.predicted, result.target))):
            for source, stored in (("generalization_metrics.json", metrics[name]), (STATS_FILE, stats.loc[index, name])):
                if not np.isclose(float(stored), value, rtol=1e-9, atol=1e-12):
                    raise ValueError(f"{path}: its diagrams give {name} = {value!r}, but {source} holds {stored!r}")
