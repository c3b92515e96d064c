"""Out-of-distribution evaluation: predicted phase diagrams and metrics of trained models over disorder.

The generalization grid (docs/physics_and_methods.md §2, §5) is W = linspace(0, W_max, n_W) x R disorder realizations x n_v
values v = linspace(0, v_max, n_v) (paper: 100 x 10 x 200 = 200,000 chains). Row ``i`` (one W) is drawn
by :func:`ssh_ood.physics.data_generation.phase_diagram_hoppings` from the stream ``(seed, 3, i)``, so the same seed
gives the same chains to every model, and the labels of the target diagram are the winding numbers of
exactly those chains. The grid is streamed row by row (observables in chunks of ``chunk_size``); every
chunk is generated once and classified by all models of an ensemble.

For each model the evaluation yields

- the predicted diagram P[i, j] = fraction of the R realizations at (W_i, v_j) classified topological,
  and the target T[i, j] = fraction with winding number 1 (both (n_W, n_v), multiples of 1/R);
- the classification metrics of every (W, realization) test set of n_v chains
  (:func:`ssh_ood.nets.metrics.classification_metrics`), shape (n_W, R) each, and their means over the
  n_W * R sets ("ood" metrics, the paper's aggregation) and over the R sets of the clean row W = 0
  ("clean" metrics);
- image metrics between P and T, MAE, RMSE and SSIM, and whether the model is "well generalizing"
  (by default MAE <= 0.2, the paper's cut on the metric its table behaves like): see
  :mod:`ssh_ood.ood.generalization_metrics`. The paper's third image metric, LPIPS, needs pretrained backbone
  weights that cannot be downloaded here; it is left out rather than imitated.

Writing these results into model folders, and evaluating folders resumably, is
:mod:`ssh_ood.ood.model_evaluation`.

Inference reuses :func:`ssh_ood.nets.ensemble_training.evaluate_models` (eval mode: BatchNorm running
statistics, no dropout): engine ``"fused"`` runs the models one after the other on each batch with
BatchNorm folded into the convolutions (fastest on CPU, see ``benchmarks/bench_generalization.py``),
``"stacked"`` runs them as one grouped network (meant for CUDA). Thermometer-encoded models
(``CNN_SSH_ThermEncod``, L input channels) receive the encoding of :func:`ssh_ood.nets.data_loaders.encode_input`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numba
import numpy as np
import torch
from tqdm.auto import tqdm

from ..base.device import select_device
from ..base.presets import Preset, get_preset
from ..base.validation import optional_int, require_int
from ..nets.architecture import CNN_SSH
from ..nets.data_loaders import TensorSplit
from ..nets.ensemble_training import default_engine, evaluate_models
from ..nets.metrics import METRIC_NAMES, classification_metrics
from ..physics.data_generation import observables, phase_diagram_hoppings, winding_number
from ..physics.representations import DEFAULT_REPRESENTATION, represent
from .generalization_metrics import GeneralizationCut, diagram_mae, diagram_rmse, diagram_ssim


# ----------------------------------------------------------------------------------------------
# the grid
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneralizationGrid:
    """The W x realization x v grid of the out-of-distribution study.

    Attributes
    ----------
    n_W, W_max : rows W = linspace(0, W_max, n_W) (units of w; row 0 is the clean chain).
    n_realizations : independent disorder realizations R per (W, v) point.
    n_v, v_max : columns v = linspace(0, v_max, n_v).
    seed : master seed of the disorder (row i uses the stream ``disorder_rng(seed, 3, i)``).
    n_cells : unit cells per chain.
    """

    n_W: int
    W_max: float
    n_realizations: int
    n_v: int
    v_max: float
    seed: int
    n_cells: int = 25

    def __post_init__(self) -> None:
        for name in ("n_W", "n_realizations", "n_v", "seed", "n_cells"):
            require_int(f"grid {name}", getattr(self, name))
        if self.n_W < 1 or self.n_realizations < 1 or self.n_v < 1:
            raise ValueError(
                f"grid sizes must be >= 1, got n_W={self.n_W}, n_realizations={self.n_realizations}, n_v={self.n_v}"
            )
        if self.seed < 0:
            raise ValueError(f"grid seed must be >= 0, got {self.seed}")
        if self.n_cells < 2:
            raise ValueError(f"grid n_cells must be >= 2, got {self.n_cells}")
        for name in ("W_max", "v_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"grid {name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def from_preset(cls, preset: Preset | str, seed: int) -> GeneralizationGrid:
        """The grid of a preset (``grid_*`` fields) with disorder seed ``seed``."""
        preset = get_preset(preset)
        return cls(
            n_W=preset.grid_n_W,
            W_max=float(preset.grid_W_max),
            n_realizations=preset.grid_n_realizations,
            n_v=preset.grid_n_v,
            v_max=float(preset.grid_v_max),
            seed=int(seed),
            n_cells=preset.n_cells,
        )

    @classmethod
    def from_dict(cls, data: dict) -> GeneralizationGrid:
        """Inverse of :meth:`to_dict`; ``ValueError`` for missing or malformed entries."""
        try:
            return cls(
                n_W=int(data["n_W"]),
                W_max=float(data["W_max"]),
                n_realizations=int(data["n_realizations"]),
                n_v=int(data["n_v"]),
                v_max=float(data["v_max"]),
                seed=int(data["seed"]),
                n_cells=int(data["n_cells"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed grid description {data!r} ({exc})") from None

    def to_dict(self) -> dict:
        """JSON-ready description (sizes, ranges, seed)."""
        return {key: (float(v) if key in ("W_max", "v_max") else int(v)) for key, v in asdict(self).items()}

    @property
    def W_values(self) -> np.ndarray:
        """(n_W,) disorder strengths, ``linspace(0, W_max, n_W)``."""
        return np.linspace(0.0, self.W_max, self.n_W)

    @property
    def v_values(self) -> np.ndarray:
        """(n_v,) mean intracell hoppings, ``linspace(0, v_max, n_v)``."""
        return np.linspace(0.0, self.v_max, self.n_v)

    @property
    def samples_per_row(self) -> int:
        return self.n_realizations * self.n_v

    @property
    def n_samples(self) -> int:
        """Chains in the whole grid, n_W * R * n_v."""
        return self.n_W * self.samples_per_row

    def row_hoppings(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Hoppings (v_n, w_n), each (R * n_v, n_cells), of row ``row``; sample r * n_v + j has v = v_j."""
        if not 0 <= row < self.n_W:
            raise ValueError(f"row must be in [0, {self.n_W}), got {row}")
        return phase_diagram_hoppings(
            float(self.W_values[row]), self.v_values, self.n_realizations, self.seed, row, self.n_cells
        )


@dataclass(frozen=True)
class GridBatch:
    """A chunk of one grid row handed to a predictor.

    ``X`` (N, M, M) float32 observables, ``labels`` (N,) int64 winding numbers, ``v_n``, ``w_n``
    (N, n_cells) hoppings, ``W`` the row's disorder strength.
    """

    X: np.ndarray
    labels: np.ndarray
    v_n: np.ndarray
    w_n: np.ndarray
    W: float


Predictor = Callable[[GridBatch], np.ndarray]
"""Maps a :class:`GridBatch` of N chains to predicted labels (K, N) in {0, 1}, one row per model."""


# ----------------------------------------------------------------------------------------------
# results of one model
# ----------------------------------------------------------------------------------------------
@dataclass
class GeneralizationResult:
    """Evaluation of one model on a grid.

    Attributes
    ----------
    grid : the grid.
    predicted_counts, target_counts : (n_W, n_v) integers: realizations classified topological by the
        model, and with winding number 1.
    set_metrics : metric name -> (n_W, R) value on each (W, realization) test set of n_v chains.
    """

    grid: GeneralizationGrid
    predicted_counts: np.ndarray
    target_counts: np.ndarray
    set_metrics: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        shape = (self.grid.n_W, self.grid.n_v)
        sets = (self.grid.n_W, self.grid.n_realizations)
        for name, counts in (("predicted_counts", self.predicted_counts), ("target_counts", self.target_counts)):
            if np.shape(counts) != shape:
                raise ValueError(f"{name} must have shape {shape} (n_W, n_v), got {np.shape(counts)}")
        missing = [name for name in METRIC_NAMES if name not in self.set_metrics]
        if missing:
            raise ValueError(f"set_metrics lacks {missing}")
        for name in METRIC_NAMES:
            if np.shape(self.set_metrics[name]) != sets:
                raise ValueError(f"set metric {name!r} must have shape {sets} (n_W, R), got {np.shape(self.set_metrics[name])}")

    @property
    def predicted(self) -> np.ndarray:
        """(n_W, n_v) fraction of realizations predicted topological."""
        return np.asarray(self.predicted_counts, dtype=np.float64) / self.grid.n_realizations

    @property
    def target(self) -> np.ndarray:
        """(n_W, n_v) winding number averaged over realizations."""
        return np.asarray(self.target_counts, dtype=np.float64) / self.grid.n_realizations

    def ood_metrics(self) -> dict[str, float]:
        """Each metric averaged over all n_W * R (W, realization) sets (the paper's aggregation)."""
        return {name: float(np.mean(self.set_metrics[name])) for name in METRIC_NAMES}

    def clean_metrics(self) -> dict[str, float]:
        """Each metric averaged over the R sets of row 0 (W = 0: the clean chains)."""
        return {name: float(np.mean(self.set_metrics[name][0])) for name in METRIC_NAMES}

    def summary(self, cut: GeneralizationCut | None = None) -> dict:
        """Scalars of the evaluation: ``mae``, ``rmse``, ``ssim``, ``well_generalizing`` (under ``cut``,
        default MAE <= 0.2), the cut, the ``ood`` and ``clean`` metric dictionaries and the grid."""
        cut = GeneralizationCut() if cut is None else cut
        images = {
            "mae": diagram_mae(self.predicted, self.target),
            "rmse": diagram_rmse(self.predicted, self.target),
            "ssim": diagram_ssim(self.predicted, self.target),
        }
        return {
            "grid": self.grid.to_dict(),
            "n_samples": self.grid.n_samples,
            "n_sets": self.grid.n_W * self.grid.n_realizations,
            **images,
            "generalization_cut": cut.to_dict(),
            "well_generalizing": cut.passes(images),
            "ood": self.ood_metrics(),
            "clean": self.clean_metrics(),
        }


class GridAccumulator:
    """Running results of K models over the rows of a grid (filled by :func:`evaluate_grid`).

    ``predicted_counts`` (K, n_W, n_v), ``target_counts`` (n_W, n_v), ``set_metrics[name]`` (K, n_W, R),
    ``rows_done`` (n_W,) bool.
    """

    def __init__(self, grid: GeneralizationGrid, n_models: int) -> None:
        self.grid = grid
        self.n_models = require_int("n_models", n_models, minimum=1)
        self.predicted_counts = np.zeros((n_models, grid.n_W, grid.n_v), dtype=np.int64)
        self.target_counts = np.zeros((grid.n_W, grid.n_v), dtype=np.int64)
        self.set_metrics = {name: np.zeros((n_models, grid.n_W, grid.n_realizations)) for name in METRIC_NAMES}
        self.rows_done = np.zeros(grid.n_W, dtype=bool)

    def add_row(self, row: int, labels: np.ndarray, predictions: np.ndarray) -> None:
        """Record row ``row``: ``labels`` (R * n_v,) true, ``predictions`` (K, R * n_v) predicted labels."""
        R, n_v = self.grid.n_realizations, self.grid.n_v
        if predictions.shape != (self.n_models, R * n_v) or labels.shape != (R * n_v,):
            raise ValueError(
                f"row {row}: expected labels ({R * n_v},) and predictions ({self.n_models}, {R * n_v}), "
                f"got {labels.shape} and {predictions.shape}"
            )
        true = labels.reshape(R, n_v)
        predicted = predictions.reshape(self.n_models, R, n_v)
        metrics = classification_metrics(np.broadcast_to(true, predicted.shape), predicted)
        for name in METRIC_NAMES:
            self.set_metrics[name][:, row] = metrics[name]
        self.predicted_counts[:, row] = predicted.sum(axis=1)
        self.target_counts[row] = true.sum(axis=0)
        self.rows_done[row] = True

    def result(self, model: int) -> GeneralizationResult:
        """The finished result of model ``model`` (every row must be done)."""
        if not self.rows_done.all():
            raise ValueError(f"rows {np.flatnonzero(~self.rows_done).tolist()} of the grid are not evaluated yet")
        return GeneralizationResult(
            grid=self.grid,
            predicted_counts=self.predicted_counts[model].copy(),
            target_counts=self.target_counts.copy(),
            set_metrics={name: values[model].copy() for name, values in self.set_metrics.items()},
        )

    def model_state(self, model: int) -> dict[str, np.ndarray]:
        """Arrays of one model (for a checkpoint): its rows done, counts and set metrics."""
        return {
            "rows_done": self.rows_done.copy(),
            "predicted_counts": self.predicted_counts[model],
            "target_counts": self.target_counts,
            **{f"set_{name}": values[model] for name, values in self.set_metrics.items()},
        }

    def restore_model(self, model: int, state: dict[str, np.ndarray]) -> np.ndarray:
        """Load the rows of :meth:`model_state` output into model ``model``; returns its rows done (n_W,)."""
        rows = np.asarray(state["rows_done"], dtype=bool)
        if rows.shape != (self.grid.n_W,):
            raise ValueError(f"checkpoint rows_done has shape {rows.shape}, expected ({self.grid.n_W},)")
        self.predicted_counts[model, rows] = state["predicted_counts"][rows]
        self.target_counts[rows] = state["target_counts"][rows]
        for name, values in self.set_metrics.items():
            values[model, rows] = state[f"set_{name}"][rows]
        return rows


# ----------------------------------------------------------------------------------------------
# streaming evaluation
# ----------------------------------------------------------------------------------------------
@contextmanager
def thread_limits(inference_threads: int | None = None, generation_threads: int | None = None):
    """Run the block with ``inference_threads`` torch intra-op threads and ``generation_threads`` numba
    threads (None: leave that setting as it is); both are restored afterwards."""
    for name, value in (("inference_threads", inference_threads), ("generation_threads", generation_threads)):
        optional_int(name, value, minimum=1)
    previous_torch, previous_numba = torch.get_num_threads(), numba.get_num_threads()
    if inference_threads is not None:
        torch.set_num_threads(inference_threads)
    if generation_threads is not None:
        numba.set_num_threads(min(generation_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(previous_torch)
        numba.set_num_threads(previous_numba)


def evaluate_grid(
    predict: Predictor,
    n_models: int,
    grid: GeneralizationGrid,
    accumulator: GridAccumulator | None = None,
    chunk_size: int = 2000,
    progress: bool = True,
    after_row: Callable[[GridAccumulator], None] | None = None,
) -> GridAccumulator:
    """Stream the grid through ``predict`` and accumulate per-model diagrams and metrics.

    Parameters
    ----------
    predict : maps a :class:`GridBatch` to (n_models, N) predicted labels.
    n_models : number of models K behind ``predict``.
    grid : the grid.
    accumulator : partly filled results to resume from (rows already done are skipped).
    chunk_size : chains per generated chunk (observables of at most ``chunk_size`` chains in memory).
    progress : tqdm bar over the rows.
    after_row : called with the accumulator after each row (checkpointing).

    Returns
    -------
    The accumulator with every row done.
    """
    chunk_size = require_int("chunk_size", chunk_size, minimum=1)
    if accumulator is None:
        accumulator = GridAccumulator(grid, n_models)
    elif accumulator.grid != grid or accumulator.n_models != n_models:
        raise ValueError("accumulator belongs to another grid or number of models")
    rows = np.flatnonzero(~accumulator.rows_done)
    W_values = grid.W_values
    bar = tqdm(total=len(rows) * grid.samples_per_row, desc=f"OOD grid ({n_models} models)", unit="chain",
               unit_scale=True, disable=not progress)
    with bar:
        for row in rows:
            v_n, w_n = grid.row_hoppings(int(row))
            labels = winding_number(v_n, w_n)
            predictions = np.empty((n_models, labels.size), dtype=np.int64)
            for start in range(0, labels.size, chunk_size):
                part = slice(start, min(start + chunk_size, labels.size))
                batch = GridBatch(
                    X=observables(v_n[part], w_n[part]).astype(np.float32),
                    labels=labels[part],
                    v_n=v_n[part],
                    w_n=w_n[part],
                    W=float(W_values[row]),
                )
                predicted = np.asarray(predict(batch))
                if predicted.shape != (n_models, part.stop - start):
                    raise ValueError(
                        f"predictor returned shape {predicted.shape}, expected ({n_models}, {part.stop - start})"
                    )
                predictions[:, part] = predicted
                bar.update(part.stop - start)
            accumulator.add_row(int(row), labels, predictions)
            if after_row is not None:
                after_row(accumulator)
    return accumulator


class CNNEnsemble:
    """Predictor of K trained CNNs evaluated together on each generated chunk.

    Parameters
    ----------
    models : ``CNN_SSH`` / ``CNN_SSH_ThermEncod`` modules (put in eval mode; a model with L > 1 input
        channels receives the L-level thermometer encoding of the observables).
    device : where inference runs (default: :func:`ssh_ood.base.device.select_device`).
    engine : ``"fused"`` or ``"stacked"`` (default: fused on CPU, stacked elsewhere).
    batch_size : chains per forward pass (default: the engine's).
    names : how errors name each model (default: "model k").
    representations : the input representation each model reads (:mod:`ssh_ood.physics.representations`,
        :func:`ssh_ood.nets.prediction.config_representation`; default: the paper's densities for all).
    """

    def __init__(
        self,
        models: Sequence[CNN_SSH],
        device: str | torch.device | None = None,
        engine: str | None = None,
        batch_size: int | None = None,
        names: Sequence[str] | None = None,
        representations: Sequence[str] | None = None,
    ) -> None:
        if not models:
            raise ValueError("CNNEnsemble needs at least one model")
        for k, model in enumerate(models):
            if not isinstance(model, CNN_SSH):
                raise ValueError(f"model {k} is a {type(model).__name__}, not a CNN_SSH")
        self.device = select_device(None if device is None else str(device))
        self.engine = default_engine(self.device) if engine is None else engine
        self.batch_size = optional_int("batch_size", batch_size, minimum=1)
        self.models = [model.to(self.device).eval() for model in models]
        self.names = list(names) if names is not None else [f"model {k}" for k in range(len(models))]
        representations = [DEFAULT_REPRESENTATION] * len(models) if representations is None else list(representations)
        if len(representations) != len(models):
            raise ValueError(f"representations must name one per model ({len(models)}), got {len(representations)}")
        self.groups: dict[tuple[int | None, str], list[int]] = {}
        for k, (model, representation) in enumerate(zip(self.models, representations, strict=True)):
            levels = model.in_channels if model.in_channels > 1 else None
            self.groups.setdefault((levels, representation), []).append(k)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def __call__(self, batch: GridBatch) -> np.ndarray:
        """Predicted labels (K, N) of every model on the chains of ``batch``."""
        y = torch.from_numpy(np.asarray(batch.labels, dtype=np.int64))
        predictions = np.empty((self.n_models, len(y)), dtype=np.int64)
        for (levels, representation), members in self.groups.items():
            x = torch.from_numpy(represent(representation, batch.v_n, batch.w_n, batch.X)).unsqueeze(1)
            split = TensorSplit(x, y, ("generalization grid",)).to(self.device)
            evaluation = evaluate_models([self.models[k] for k in members], split, levels, self.engine, self.batch_size)
            for k, loss in zip(members, evaluation.loss, strict=True):
                if not np.isfinite(loss):  # any NaN or infinite logit makes the cross-entropy non-finite
                    raise ValueError(f"{self.names[k]}: non-finite logits on the chains of W = {batch.W:g}; "
                                     "its predictions would be meaningless")
            predictions[members] = evaluation.predictions
        return predictions


def evaluate_models_on_grid(
    models: Sequence[CNN_SSH],
    grid: GeneralizationGrid,
    device: str | torch.device | None = None,
    engine: str | None = None,
    batch_size: int | None = None,
    chunk_size: int = 2000,
    inference_threads: int | None = 1,
    generation_threads: int | None = None,
    progress: bool = True,
) -> list[GeneralizationResult]:
    """Evaluate in-memory models together on ``grid``; one :class:`GeneralizationResult` per model.

    Threads: see :func:`evaluate_model_dirs`.
    """
    ensemble = CNNEnsemble(models, device=device, engine=engine, batch_size=batch_size)
    with thread_limits(inference_threads, generation_threads), torch.inference_mode():
        accumulator = evaluate_grid(ensemble, ensemble.n_models, grid, chunk_size=chunk_size, progress=progress)
    return [accumulator.result(k) for k in range(ensemble.n_models)]
