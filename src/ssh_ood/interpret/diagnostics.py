"""Clean-data diagnostics: what can be measured about a trained network *without* out-of-distribution data.

The paper's question is whether interpretability tools, applied to the clean problem, tell which networks
generalize to disordered chains. To ask it honestly the candidate predictors must be computed from data the
networks' users have before they test out of distribution: the clean (W = 0) and perturbative
(W = 0.01, 0.05) test sets of docs/physics_and_methods.md §2. This module reads datasets only through :func:`clean_split`, which
refuses any W > :data:`MAX_DIAGNOSTIC_W`, and reads model folders only through their weights and training
records (``weights.pt``, ``config.json``, ``history.json``, ``test_report.json``), never the phase diagram
or the OOD metrics (tested by running it on copies of a population and a datasets folder from which every
out-of-distribution file was deleted).

Per network (one row of ``diagnostics.csv``, columns documented in :data:`COLUMNS`):

CAM family (clean topological test samples; :mod:`ssh_ood.interpret.cam_utils`)
    ``cam_score``: the score used to pick the highlighted networks (share of the above-average topological
    CAM, resized to 50 x 50, in the edge-state region: mid-gap columns 20-29 x end sites 0-7, 42-49).
    ``cam_zero_mode_score``: the same share in the zero modes proper, columns 24-25 x sites 0 and 49.
    ``cam_feature_grid_score``: the share on the 26 x 26 feature grid itself, without resizing: feature
    position p of ``cnn_layers_2`` is centred on input pixel 2p - 0.5 (the first convolution has kernel 4,
    stride 2, padding 2; the others keep positions), so the region is the set of positions whose centre lies
    in the input region widened by half a pixel (rows 0-4 and 21-25, columns 10-15). Bilinear resizing with
    ``align_corners=False`` instead puts feature p at output pixel 1.92 p + 0.46, about one pixel towards
    the centre at either end (:func:`resized_feature_centre`), which is why both versions are reported.
    ``cam_difference_score``: the score of the CAM of the logit difference, cam_1 - cam_0 (a two-class
    softmax depends only on it).
    ``cam_zero_mode_correlation``: per sample, the Pearson correlation over the 50 x 50 pixels between the
    resized topological CAM and that sample's own zero-mode density (X restricted to columns 24-25), mean
    over samples.

PCA family (:mod:`ssh_ood.interpret.clustering_utils` activations, eval mode; layers conv1, block1, block2, gap)
    PCA(2) fit on the clean test set (fewer components if a layer has fewer features). ``pca_drift_<layer>_W<W>``: mean distance, in the plane of the two
    principal components, between each perturbative sample (W = 0.01, 0.05) and the clean sample with the
    same v (the test grids share v), in units of the clean cloud's RMS radius. ``pca_separation_<layer>``:
    distance between the two class centroids of the clean cloud over the RMS within-class radius.

Weak-disorder sensitivity and margins (logit difference delta = logit_1 - logit_0)
    ``accuracy_W0``, ``accuracy_W0.01``, ``accuracy_W0.05``; ``flip_W0.05``: fraction of predictions that
    change between a clean sample and its W = 0.05 twin; ``logit_shift_W0.05``: mean |delta_W - delta_0| over
    the standard deviation of delta_0; ``logit_scale``: that standard deviation; ``margin_median``,
    ``margin_q10``: median and 10 % quantile of the signed margin delta (2 y - 1) on the clean test set.

Intervention probes (:mod:`ssh_ood.physics.interventions`)
    ``probe_<name>_flip`` and ``probe_<name>_shift`` for every probe: zero modes removed from topological
    chains; zero-mode-like density inserted into trivial chains at the ends or the centre, in the mid-gap or
    in bulk columns.

Training (the model folder's records): ``test_accuracy``, ``best_val_loss``, ``final_val_loss``,
``final_train_loss``, ``final_val_accuracy``, ``epochs_run``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..base.file_records import read_record
from ..base.io_utils import atomic_write_bytes, load_documented_table, load_json, save_json
from ..base.run_folders import hold_folder
from ..nets.model_folders import check_undamaged, is_complete, load_model, model_dir_name, training_outcome
from ..nets.prediction import require_density_input
from ..physics.datasets import load_split
from ..physics.interventions import PROBES, mid_gap_columns, probe_responses
from ..physics.no_peeking import MAX_CLEAN_W, require_clean
from .cam_utils import EDGE_STATE_REGION, EdgeStateRegion, map_score, raw_class_activation_maps, upsample_maps
from .clustering_utils import collect_activations

MAX_DIAGNOSTIC_W = MAX_CLEAN_W
DIAGNOSTIC_W = (0.0, 0.01, 0.05)
PCA_LAYERS = ("conv1", "block1", "block2", "gap")
ZERO_MODE_REGION = EdgeStateRegion(columns=(24, 25), row_bands=((0, 0), (49, 49)))
DIAGNOSTICS_FILE = "diagnostics.csv"
DIAGNOSTICS_COLUMNS_FILE = "diagnostics_columns.json"
TRAINING_COLUMNS = ("test_accuracy", "best_val_loss", "final_val_loss", "final_train_loss", "final_val_accuracy", "epochs_run")


def _perturbative(W: float) -> str:
    return f"W{W:g}"


COLUMNS: dict[str, str] = {
    "model_index": "index i of the model in the population (folder model_XXX)",
    "cam_score": "share of the above-average topological CAM (resized to 50x50) in the edge-state region "
    "(columns 20-29 x sites 0-7, 42-49), mean over clean topological test samples",
    "cam_zero_mode_score": "the same share in the zero modes proper: columns 24-25 x sites 0 and 49",
    "cam_feature_grid_score": "the same share on the 26x26 feature grid without resizing (positions centred in "
    "the edge-state region: rows 0-4, 21-25 x columns 10-15)",
    "cam_difference_score": "CAM score of the logit-difference map cam_1 - cam_0",
    "cam_zero_mode_correlation": "Pearson correlation over pixels between a sample's resized topological CAM and "
    "its zero-mode density (X in columns 24-25), mean over clean topological test samples",
    **{
        f"pca_drift_{layer}_{_perturbative(W)}": f"mean distance in the clean PCA(2) plane of layer {layer} between "
        f"each W = {W:g} test sample and its clean twin (same v), over the clean cloud's RMS radius"
        for layer in PCA_LAYERS for W in DIAGNOSTIC_W[1:]
    },
    **{
        f"pca_separation_{layer}": f"distance between the class centroids of the clean cloud in the PCA(2) plane "
        f"of layer {layer}, over the RMS within-class radius"
        for layer in PCA_LAYERS
    },
    **{f"accuracy_{_perturbative(W)}": f"accuracy on the W = {W:g} test set" for W in DIAGNOSTIC_W},
    "flip_W0.05": "fraction of test samples whose prediction changes between W = 0 and its W = 0.05 twin",
    "logit_shift_W0.05": "mean |delta_W0.05 - delta_W0| over std(delta_W0), delta = logit_1 - logit_0",
    "logit_scale": "standard deviation of delta = logit_1 - logit_0 over the clean test set (logit units)",
    "margin_median": "median signed margin delta * (2 y - 1) on the clean test set (logit units)",
    "margin_q10": "10 % quantile of the signed margin on the clean test set (logit units)",
    **{
        f"probe_{name}_{what}": f"probe {name}: "
        + ("fraction of predictions flipped" if what == "flip" else "mean shift of delta over std(delta_W0)")
        for name in PROBES for what in ("flip", "shift")
    },
    **{name: f"training record: {name} (history.json / test_report.json)" for name in TRAINING_COLUMNS},
}


# ----------------------------------------------------------------------------------------------
# clean data only
# ----------------------------------------------------------------------------------------------
def clean_split(data_dir: str | Path, W: float) -> dict[str, np.ndarray]:
    """The test set ``test_W<W>.npz`` of a datasets folder, for W <= :data:`MAX_DIAGNOSTIC_W` only.

    Raises ``ValueError`` for any larger W: diagnostics must not see out-of-distribution data.
    """
    require_clean(W, "diagnostics")
    return load_split(data_dir, "test", float(W))


@dataclass(frozen=True)
class CleanData:
    """The clean and perturbative test sets: W -> {"X": (N, M, M), "labels": (N,), "v": (N,)}."""

    sets: dict[float, dict[str, np.ndarray]]

    @classmethod
    def load(cls, data_dir: str | Path) -> CleanData:
        """Load the test sets at W = 0, 0.01, 0.05 through :func:`clean_split`; their v grids must agree."""
        sets = {W: clean_split(data_dir, W) for W in DIAGNOSTIC_W}
        reference = sets[0.0]["v"]
        for W, data in sets.items():
            if data["v"].shape != reference.shape or not np.allclose(data["v"], reference):
                raise ValueError(f"{data_dir}: test set W = {W} does not share the clean set's v grid")
        return cls(sets)

    @property
    def clean(self) -> dict[str, np.ndarray]:
        return self.sets[0.0]


# ----------------------------------------------------------------------------------------------
# CAM family
# ----------------------------------------------------------------------------------------------
def feature_centre(position: np.ndarray | int) -> np.ndarray:
    """Input pixel on which feature position p of ``cnn_layers_2`` is centred: 2 p - 0.5."""
    return 2.0 * np.asarray(position, dtype=np.float64) - 0.5


def resized_feature_centre(position: np.ndarray | int, feature_size: int = 26, size: int = 50) -> np.ndarray:
    """Output pixel where bilinear resizing (``align_corners=False``) puts feature position p:
    (p + 0.5) size / feature_size - 0.5."""
    return (np.asarray(position, dtype=np.float64) + 0.5) * size / feature_size - 0.5


def feature_grid_mask(region: EdgeStateRegion = EDGE_STATE_REGION, feature_size: int = 26) -> np.ndarray:
    """Boolean (feature_size, feature_size) mask of the positions whose centre (:func:`feature_centre`) lies
    in the input region's bands widened by half a pixel."""
    centres = feature_centre(np.arange(feature_size))

    def inside(bands: Sequence[tuple[int, int]]) -> np.ndarray:
        return np.any([(centres >= first - 0.5) & (centres <= last + 0.5) for first, last in bands], axis=0)

    return inside(region.row_bands)[:, None] & inside([region.columns])[None, :]


def feature_grid_score(maps: np.ndarray, region: EdgeStateRegion = EDGE_STATE_REGION) -> np.ndarray:
    """Share of the above-average part of raw (..., 26, 26) maps in the feature-grid region, (...)."""
    maps = np.asarray(maps, dtype=np.float64)
    excess = np.clip(maps - maps.mean(axis=(-2, -1), keepdims=True), 0, None)
    total = excess.sum(axis=(-2, -1))
    inside = (excess * feature_grid_mask(region, maps.shape[-1])).sum(axis=(-2, -1))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)


def pixel_correlation(maps: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Pearson correlation over the pixels of each pair (map, image), (N,); 0 where either is constant."""
    a = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    b = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1), 0.0)


def cam_diagnostics(model: torch.nn.Module, X: np.ndarray) -> dict[str, float]:
    """The CAM family on clean topological samples ``X`` (N, 50, 50)."""
    raw = raw_class_activation_maps(model, X)  # (N, 2, 26, 26)
    topological = upsample_maps(raw[:, 1])
    low, high = mid_gap_columns(X.shape[-1])
    zero_modes = np.zeros_like(X)
    zero_modes[:, :, low : high + 1] = X[:, :, low : high + 1]
    return {
        "cam_score": float(map_score(topological).mean()),
        "cam_zero_mode_score": float(map_score(topological, ZERO_MODE_REGION).mean()),
        "cam_feature_grid_score": float(feature_grid_score(raw[:, 1]).mean()),
        "cam_difference_score": float(map_score(upsample_maps(raw[:, 1] - raw[:, 0])).mean()),
        "cam_zero_mode_correlation": float(pixel_correlation(topological, zero_modes).mean()),
    }


# ----------------------------------------------------------------------------------------------
# PCA family, weak-disorder sensitivity, margins
# ----------------------------------------------------------------------------------------------
def _rms_radius(points: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def pca_diagnostics(activations: dict[float, dict[str, np.ndarray]], labels: np.ndarray) -> dict[str, float]:
    """Drift of the perturbative sets and class separation in each layer's clean PCA(2) plane.

    ``activations``: W -> layer -> (N, D), samples paired across W (same v); ``labels`` (N,) of the clean set.
    """
    out = {}
    for layer in PCA_LAYERS:
        pca = PCA(n_components=min(2, *activations[0.0][layer].shape), svd_solver="full").fit(activations[0.0][layer])
        clean = pca.transform(activations[0.0][layer])
        radius = _rms_radius(clean) or 1.0
        for W in DIAGNOSTIC_W[1:]:
            moved = pca.transform(activations[W][layer])
            out[f"pca_drift_{layer}_{_perturbative(W)}"] = float(np.mean(np.linalg.norm(moved - clean, axis=1)) / radius)
        centroids = [clean[labels == c].mean(axis=0) for c in (0, 1)]
        within = math.sqrt(np.mean([_rms_radius(clean[labels == c]) ** 2 for c in (0, 1)])) or 1.0
        out[f"pca_separation_{layer}"] = float(np.linalg.norm(centroids[1] - centroids[0]) / within)
    return out


def sensitivity_diagnostics(logits: dict[float, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Accuracies, weak-disorder flips and logit shift, margins from logits W -> (N, 2) (paired samples)."""
    delta = {W: values[:, 1] - values[:, 0] for W, values in logits.items()}
    scale = float(np.std(delta[0.0]))
    sign = 2 * np.asarray(labels) - 1
    margin = delta[0.0] * sign
    return {
        **{f"accuracy_{_perturbative(W)}": float(np.mean((d > 0) == (labels == 1))) for W, d in delta.items()},
        "flip_W0.05": float(np.mean((delta[0.05] > 0) != (delta[0.0] > 0))),
        "logit_shift_W0.05": float(np.mean(np.abs(delta[0.05] - delta[0.0])) / scale) if scale > 0 else 0.0,
        "logit_scale": scale,
        "margin_median": float(np.median(margin)),
        "margin_q10": float(np.quantile(margin, 0.1)),
    }


# ----------------------------------------------------------------------------------------------
# one network, a population
# ----------------------------------------------------------------------------------------------
def network_diagnostics(model: torch.nn.Module, data: CleanData, batch_size: int = 500) -> dict[str, float]:
    """Every model-dependent diagnostic of :data:`COLUMNS` (all but the index and the training record)."""
    clean = data.clean
    labels = clean["labels"].astype(np.int64)
    activations, logits = {}, {}
    for W, split in data.sets.items():
        activations[W], logits[W] = collect_activations(model, split["X"], PCA_LAYERS, batch_size)
    scale = float(np.std(logits[0.0][:, 1] - logits[0.0][:, 0]))

    def forward(images: np.ndarray) -> np.ndarray:
        return collect_activations(model, images, ("gap",), batch_size)[1]

    probes = probe_responses(forward, clean["X"], labels, scale if scale > 0 else 1.0)
    return {
        **cam_diagnostics(model, clean["X"][labels == 1]),
        **pca_diagnostics(activations, labels),
        **sensitivity_diagnostics(logits, labels),
        **{f"probe_{name}_{what}": getattr(response, what) for name, response in probes.items() for what in ("flip", "shift")},
    }


def model_diagnostics(model_dir: str | Path, data: CleanData) -> dict:
    """The :data:`COLUMNS` row of one model folder (weights and training records only)."""
    model_dir = Path(model_dir)
    require_density_input(model_dir, "the clean-data diagnostics")
    config = load_json(model_dir / "config.json")
    outcome = training_outcome(model_dir)
    row = {
        "model_index": int(config["index"]),
        **network_diagnostics(load_model(model_dir), data),
        **{name: outcome[name] for name in TRAINING_COLUMNS},
    }
    return {name: row[name] for name in COLUMNS}


def diagnose_population(
    population_dir: str | Path,
    data_dir: str | Path,
    model_indices: Sequence[int] | None = None,
    progress: bool = True,
) -> Path:
    """Write ``diagnostics.csv`` (one row per model) and ``diagnostics_columns.json`` in ``population_dir``.

    Every trained model folder (``weights.pt``) is diagnosed, or only ``model_indices``; rows of other
    models already in the file are kept. Torch and BLAS run on one thread (small batched calls).
    """
    population_dir = Path(population_dir)
    if model_indices is None:
        check_undamaged(sorted(population_dir.glob("model_*")))  # a damaged model is refused, not left out
        dirs = sorted(d for d in population_dir.glob("model_*") if is_complete(d))
    else:
        dirs = [population_dir / model_dir_name(int(i)) for i in model_indices]
    if not dirs:
        raise FileNotFoundError(f"{population_dir}: no trained model folder (model_XXX/weights.pt)")
    with hold_folder(population_dir):  # one writer of diagnostics.csv (a read-modify-write)
        data = CleanData.load(data_dir)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1):
                rows = [model_diagnostics(d, data) for d in tqdm(dirs, desc="diagnostics", unit="model", disable=not progress)]
        finally:
            torch.set_num_threads(threads)
        table = pd.DataFrame(rows, columns=list(COLUMNS))
        path = population_dir / DIAGNOSTICS_FILE
        if path.is_file() and model_indices is not None:
            previous = load_diagnostics(population_dir)
            table = pd.concat([previous[~previous["model_index"].isin(table["model_index"])], table])
        table = table.sort_values("model_index")
        text = io.StringIO()
        table.to_csv(text, index=False, lineterminator="\n")
        save_json(population_dir / DIAGNOSTICS_COLUMNS_FILE, COLUMNS)
        return atomic_write_bytes(path, text.getvalue().encode())


def load_diagnostics(population_dir: str | Path) -> pd.DataFrame:
    """``diagnostics.csv`` of a population, verified against the folder's record and against the model folders
    it summarizes (each row's model trained there, its training columns equal to the folder's records);
    ``ValueError`` in one line naming the file if not, or if its header is not :data:`COLUMNS`."""
    population_dir = Path(population_dir)
    path = population_dir / DIAGNOSTICS_FILE
    command = f"python -m ssh_ood diagnose --population {population_dir}"
    if path.is_file():
        read_record(population_dir)
    table = load_documented_table(path, COLUMNS, command)
    for _, row in table.iterrows():
        index = int(row["model_index"])
        outcome = training_outcome(population_dir / model_dir_name(index))
        wrong = [name for name in TRAINING_COLUMNS
                 if not np.isclose(float(row[name]), float(outcome[name]), rtol=1e-12, atol=0.0, equal_nan=True)]
        if wrong:
            raise ValueError(f"{path}: model {index}: {wrong[0]} = {row[wrong[0]]!r} in the table, {outcome[wrong[0]]!r} "
                             f"in its model folder; rerun `{command}` to rewrite the table")
    return table
