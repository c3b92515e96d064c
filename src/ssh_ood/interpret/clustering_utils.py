"""Activations layer by layer, their PCA (fit on clean data only) and UMAP embeddings (docs/physics_and_methods.md §6).

Layers of ``CNN_SSH`` (eval mode, flattened per sample, captured by forward hooks registered once per
call and removed afterwards):

    input   raw input                       1 x 50 x 50 = 2500
    conv1   first convolution, before BN    5 x 26 x 26 = 3380
    block1  output of cnn_layers_1          7 x 26 x 26 = 4732
    block2  output of cnn_layers_2          9 x 26 x 26 = 6084
    gap     global average pool             9

PCA(2) of each layer is **fit on the reference set only** (the clean test set, optionally with the
weak-disorder W = 0.01, 0.05 test sets) and then applied unchanged to the disordered test
sets W = 0.15, 0.5, 1.0, 2.0, so disordered samples are placed in the coordinates of the clean clusters and
never influence them. UMAP (2-D, ``min_dist`` 0, seeded) is fit on the union of all disorder strengths
(optionally on the union's leading principal components).
Optionally the transition window (the central 20 % of each v-ordered set, v ~ 0.8-1.2 on the test grid)
is left out of every set.

Results are saved per model, method, layer and W as CSV files (columns ``v, label, predicted, dim1,
dim2``) plus, for PCA, the explained variance ratios and the fitted components (``.npz``).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances
from tqdm.auto import tqdm

from ..base.io_utils import atomic_write_bytes, load_json, load_npz, save_json, save_npz
from ..base.validation import require_int
from ..nets.architecture import CNN_SSH
from ..physics.datasets import dataset_filename, load_split, read_manifest
from .cam_utils import as_input_tensor, check_batch_size, eval_mode

LAYER_MODULES = {
    "input": "",
    "conv1": "cnn_layers_1.0",
    "block1": "cnn_layers_1",
    "block2": "cnn_layers_2",
    "gap": "avg_pool",
}
LAYER_NAMES = tuple(LAYER_MODULES)
LAYER_TITLES = {
    "input": "raw input",
    "conv1": "Conv1 (before BN)",
    "block1": "block 1",
    "block2": "block 2",
    "gap": "GAP",
}
METHODS = ("pca", "umap")
POINT_COLUMNS = ("v", "label", "predicted", "dim1", "dim2")
TRANSITION_FRACTION = 0.2
SETTINGS_FILE = "clustering_settings.json"
UMAP_EXACT_LIMIT = 4096  # umap-learn's threshold for exact nearest neighbours
UMAP_N_EPOCHS = 200


# ----------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------
def _check_layers(layers: Sequence[str]) -> tuple[str, ...]:
    layers = tuple(layers)
    unknown = [name for name in layers if name not in LAYER_MODULES]
    if unknown or not layers:
        raise ValueError(f"layers must be a non-empty subset of {LAYER_NAMES}, got {list(layers)}")
    return layers


@torch.no_grad()
def collect_activations(
    model: CNN_SSH, x: np.ndarray | torch.Tensor, layers: Sequence[str] = LAYER_NAMES, batch_size: int = 256
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flattened activations of the chosen layers and the logits, eval mode.

    One forward hook per layer (a forward pre-hook on the model for ``input``) is registered before the
    batches and removed at the end, also when an error occurs, so repeated calls never accumulate hooks.

    Parameters
    ----------
    model : a ``CNN_SSH``; its train/eval mode is restored afterwards.
    x : (N, 50, 50) or (N, C, 50, 50) input.
    layers : names from :data:`LAYER_NAMES`.
    batch_size : samples per forward pass.

    Returns
    -------
    activations : layer -> float32 array (N, D_layer).
    logits : float32 array (N, 2).
    """
    layers = _check_layers(layers)
    batch_size = check_batch_size(batch_size)
    inputs = as_input_tensor(x, model)
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def store(name: str, tensor: torch.Tensor) -> None:
        captured[name].append(tensor.detach().flatten(1).cpu())

    handles = []
    try:
        for name in layers:
            if name == "input":
                handles.append(model.register_forward_pre_hook(lambda _m, args: store("input", args[0])))
            else:
                module = model.get_submodule(LAYER_MODULES[name])
                handles.append(module.register_forward_hook(lambda _m, _a, out, name=name: store(name, out)))
        logits = []
        with eval_mode(model):
            for start in range(0, inputs.shape[0], batch_size):
                logits.append(model(inputs[start : start + batch_size]).cpu())
    finally:
        for handle in handles:
            handle.remove()
    if not logits:
        raise ValueError("x holds no samples")
    activations = {name: torch.cat(parts).numpy().astype(np.float32) for name, parts in captured.items()}
    return activations, torch.cat(logits).numpy().astype(np.float32)


def transition_window_mask(v: np.ndarray, fraction: float = TRANSITION_FRACTION) -> np.ndarray:
    """Boolean mask (N,) that keeps every sample except the central ``fraction`` of the v-ordered set."""
    v = np.asarray(v, dtype=np.float64)
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    n = v.size
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(v, kind="stable")] = np.arange(n)
    n_drop = int(round(fraction * n))
    first = (n - n_drop) // 2
    return (rank < first) | (rank >= first + n_drop)


@dataclass
class ActivationSet:
    """Activations of one model on one test set.

    Attributes
    ----------
    W : disorder strength of the set.
    activations : layer -> (N, D) float32.
    labels : (N,) true classes; predicted : (N,) argmax of the logits; v : (N,) mean intracell hopping.
    """

    W: float
    activations: dict[str, np.ndarray]
    labels: np.ndarray
    predicted: np.ndarray
    v: np.ndarray


def activation_sets(
    model: CNN_SSH,
    data_dir: str | Path,
    W_values: Sequence[float],
    layers: Sequence[str] = LAYER_NAMES,
    exclude_transition: bool = False,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[float, ActivationSet]:
    """Activations of ``model`` on the test sets ``test_W<W>.npz`` of a datasets folder.

    ``exclude_transition`` drops the central 20 % of each v-ordered set (:func:`transition_window_mask`).
    """
    sets = {}
    for W in tqdm(list(W_values), desc="activations", disable=not progress, leave=False):
        data = load_split(data_dir, "test", W)
        keep = transition_window_mask(data["v"]) if exclude_transition else np.ones(data["v"].size, dtype=bool)
        activations, logits = collect_activations(model, data["X"][keep], layers, batch_size)
        sets[float(W)] = ActivationSet(
            W=float(W),
            activations=activations,
            labels=data["labels"][keep].astype(np.int64),
            predicted=logits.argmax(axis=1).astype(np.int64),
            v=data["v"][keep].astype(np.float64),
        )
    return sets


# ----------------------------------------------------------------------------------------------
# projections
# ----------------------------------------------------------------------------------------------
@dataclass
class Projection:
    """2-D coordinates of every set for one layer and one method.

    Attributes
    ----------
    method : "pca" or "umap".
    layer : layer name.
    fit_W : disorder strengths of the sets the projection was fit on.
    points : W -> DataFrame with columns ``v, label, predicted, dim1, dim2``.
    explained_variance_ratio : (2,) for PCA, None for UMAP.
    components : (2, D) principal axes and ``mean`` (D,) for PCA, None for UMAP.
    pre_pca_variance : for UMAP on leading principal components, the variance share they keep.
    """

    method: str
    layer: str
    fit_W: tuple[float, ...]
    points: dict[float, pd.DataFrame]
    explained_variance_ratio: np.ndarray | None = None
    components: np.ndarray | None = None
    mean: np.ndarray | None = None
    pre_pca_variance: float | None = None


def _points(activation_set: ActivationSet, coords: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "v": activation_set.v,
            "label": activation_set.labels,
            "predicted": activation_set.predicted,
            "dim1": coords[:, 0],
            "dim2": coords[:, 1],
        }
    )


def _check_sets(sets: dict[float, ActivationSet], W_values: Sequence[float], what: str) -> None:
    missing = [W for W in W_values if float(W) not in sets]
    if missing or not W_values:
        raise ValueError(f"{what}: need activation sets for W = {list(W_values)}; missing {missing}")


def project_pca(
    sets: dict[float, ActivationSet], layer: str, reference_W: Sequence[float], seed: int = 0
) -> Projection:
    """PCA(2) of ``layer`` fit on the reference sets only, applied to every set.

    Parameters
    ----------
    sets : W -> activations (must contain every W of ``reference_W``).
    reference_W : the sets the PCA is fit on (clean, optionally with W = 0.01, 0.05); the others are only
        transformed.
    seed : random_state of the solver.

    Notes
    -----
    sklearn's randomized SVD (seeded, with its deterministic sign convention, so the same reference data
    always give the same axes). For the two leading components it agrees with the exact SVD to float
    precision (tested) and is ~60x faster on the 1,500 x 6,084 block-2 matrix of the paper's sizes
    (0.6 s against 37 s for the exact solver, measured on this shared 2-core machine).
    """
    _check_sets(sets, reference_W, "project_pca")
    reference = np.concatenate([sets[float(W)].activations[layer] for W in reference_W])
    pca = PCA(n_components=2, svd_solver="randomized", random_state=int(seed)).fit(reference)
    points = {W: _points(s, pca.transform(s.activations[layer])) for W, s in sets.items()}
    return Projection(
        method="pca",
        layer=layer,
        fit_W=tuple(float(W) for W in reference_W),
        points=points,
        explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
        components=pca.components_.astype(np.float64),
        mean=pca.mean_.astype(np.float64),
    )


def project_umap(
    sets: dict[float, ActivationSet],
    layer: str,
    n_neighbors: int,
    seed: int = 0,
    pre_pca: int | None = None,
) -> Projection:
    """2-D UMAP of ``layer`` fit on the union of every set (n_neighbors given, min_dist 0, seeded).

    Parameters
    ----------
    pre_pca : if given and the layer has more features than this, UMAP runs on the first ``pre_pca``
        principal components of the union (seeded randomized PCA), the usual preparation of
        high-dimensional data for UMAP; the variance they keep is stored in ``pre_pca_variance``. Off by
        default: 50 components keep only ~40 % of the variance of the raw input and of Conv1 for a
        quick-preset network (95 % for block 2), and the gain is modest (block 2: 16 s instead of 37 s for
        3,500 samples; the 9-feature GAP layer alone takes 14 s, so the layout optimization dominates;
        timings on this shared, loaded 2-core machine).

    Notes
    -----
    With ``random_state`` set, umap-learn runs single-threaded and is deterministic: the same seed and
    data give the same embedding. Two measured speed-ups that leave the result unchanged in substance:

    - below 4,096 samples umap-learn finds the exact nearest neighbours from the full distance matrix,
      but computes it with a Python-level callback per pair (31 of 38 s for 3,500 GAP vectors); the
      matrix is computed here with BLAS (``sklearn.metrics.pairwise_distances``) and passed as
      ``metric="precomputed"``, the same exact neighbours;
    - ``n_epochs`` = 200 (umap-learn's default for large data sets, 500 below 10,000 samples): the
      layout optimization dominates what remains, and the trustworthiness (k = 30) of the embedding of a
      quick-preset network's activations is unchanged (GAP 0.9968 vs 0.9966, block 2 0.9147 vs 0.9150).
    """
    import umap  # slow import (numba); only when a UMAP is asked for

    n_neighbors = require_int("n_neighbors", n_neighbors, minimum=2)
    W_values = list(sets)
    union = np.concatenate([sets[W].activations[layer] for W in W_values])
    if union.shape[0] <= n_neighbors:
        raise ValueError(f"UMAP needs more than n_neighbors={n_neighbors} samples, got {union.shape[0]}")
    pre_pca_variance = None
    if pre_pca is not None and union.shape[1] > pre_pca:
        reduction = PCA(n_components=min(pre_pca, union.shape[0]), svd_solver="randomized", random_state=int(seed))
        union = reduction.fit_transform(union)
        pre_pca_variance = float(reduction.explained_variance_ratio_.sum())
    metric = "euclidean"
    if union.shape[0] < UMAP_EXACT_LIMIT:  # umap-learn's own exact path, with BLAS distances
        union, metric = pairwise_distances(union, metric="euclidean"), "precomputed"
    reducer = umap.UMAP(
        n_neighbors=int(n_neighbors), n_components=2, min_dist=0.0, metric=metric, n_epochs=UMAP_N_EPOCHS,
        random_state=int(seed), n_jobs=1,
    )
    with warnings.catch_warnings():  # umap-learn's notices about these deliberate choices
        warnings.filterwarnings("ignore", message=".*inverse_transform will be unavailable", category=UserWarning)
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        embedding = reducer.fit_transform(union)
    bounds = np.cumsum([0] + [sets[W].v.size for W in W_values])
    points = {W: _points(sets[W], embedding[bounds[i] : bounds[i + 1]]) for i, W in enumerate(W_values)}
    return Projection(method="umap", layer=layer, fit_W=tuple(W_values), points=points, pre_pca_variance=pre_pca_variance)


# ----------------------------------------------------------------------------------------------
# saving and loading
# ----------------------------------------------------------------------------------------------
def _points_filename(layer: str, W: float) -> str:
    return f"{layer}_{Path(dataset_filename('test', W)).stem.removeprefix('test_')}.csv"


def save_projection(projection: Projection, out_dir: str | Path) -> Path:
    """Write ``<out_dir>/<method>/<layer>_W<W>.csv`` per set and ``<layer>_fit.json`` (and PCA ``.npz``)."""
    folder = Path(out_dir) / projection.method
    for W, frame in projection.points.items():
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        atomic_write_bytes(folder / _points_filename(projection.layer, W), buffer.getvalue().encode())
    meta = {"method": projection.method, "layer": projection.layer, "fit_W": list(projection.fit_W)}
    meta["W"] = list(projection.points)
    meta["pre_pca_variance"] = projection.pre_pca_variance
    if projection.explained_variance_ratio is not None:
        meta["explained_variance_ratio"] = projection.explained_variance_ratio.tolist()
        save_npz(folder / f"{projection.layer}_pca.npz", {"components": projection.components, "mean": projection.mean})
    save_json(folder / f"{projection.layer}_fit.json", meta)
    return folder


def load_projection(out_dir: str | Path, method: str, layer: str) -> Projection:
    """Read back a projection written by :func:`save_projection`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    folder = Path(out_dir) / method
    meta = load_json(folder / f"{layer}_fit.json")
    points = {}
    for W in meta["W"]:
        path = folder / _points_filename(layer, W)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        frame = pd.read_csv(path)
        if list(frame.columns) != list(POINT_COLUMNS):
            raise ValueError(f"{path}: expected columns {list(POINT_COLUMNS)}, got {list(frame.columns)}")
        points[float(W)] = frame
    components = mean = ratio = None
    if method == "pca":
        arrays = load_npz(folder / f"{layer}_pca.npz", required=("components", "mean"))
        components, mean = arrays["components"], arrays["mean"]
        ratio = np.asarray(meta["explained_variance_ratio"], dtype=np.float64)
    return Projection(method, layer, tuple(meta["fit_W"]), points, ratio, components, mean, meta.get("pre_pca_variance"))


def explained_variance_table(projections: dict[str, Projection]) -> pd.DataFrame:
    """Explained variance ratio of PC1, PC2 (and their sum) per layer, one row per layer."""
    rows = [
        {
            "layer": layer,
            "pc1": float(p.explained_variance_ratio[0]),
            "pc2": float(p.explained_variance_ratio[1]),
            "total": float(p.explained_variance_ratio.sum()),
        }
        for layer, p in projections.items()
    ]
    return pd.DataFrame(rows, columns=["layer", "pc1", "pc2", "total"])


# ----------------------------------------------------------------------------------------------
# one model end to end
# ----------------------------------------------------------------------------------------------
def state_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes and bytes, in state_dict order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def analyze_model_clustering(
    model: CNN_SSH,
    data_dir: str | Path,
    out_dir: str | Path,
    reference_W: Sequence[float],
    disordered_W: Sequence[float],
    umap_n_neighbors: int | None,
    seed: int = 0,
    layers: Sequence[str] = LAYER_NAMES,
    exclude_transition: bool = False,
    batch_size: int = 256,
    progress: bool = False,
    umap_pre_pca: int | None = None,
    reuse: bool = True,
) -> dict[str, dict[str, Projection]]:
    """Activations, PCA and (unless ``umap_n_neighbors`` is None) UMAP of every layer; saved to ``out_dir``.

    ``seed`` seeds the PCA solver and UMAP; ``umap_pre_pca`` is :func:`project_umap`'s ``pre_pca``.
    When everything is written, ``<out_dir>/clustering_settings.json`` records the settings, the
    datasets manifest and the model's :func:`state_fingerprint`; with ``reuse`` a later call with the same
    settings, data and weights loads the saved results instead of recomputing them (UMAP is slow), so the
    04a script and notebook 04 share their work. A run killed before the end leaves no record and is redone.

    Returns
    -------
    {"pca": layer -> Projection, "umap": layer -> Projection (empty without UMAP)}; the explained
    variance table is written to ``<out_dir>/pca/explained_variance.csv``.
    """
    layers = _check_layers(layers)
    overlap = set(map(float, reference_W)) & set(map(float, disordered_W))
    if overlap:
        raise ValueError(f"reference_W and disordered_W must be disjoint; both hold {sorted(overlap)}")
    out_dir = Path(out_dir)
    W_values = [*reference_W, *disordered_W]
    settings = {
        "reference_W": [float(W) for W in reference_W],
        "disordered_W": [float(W) for W in disordered_W],
        "layers": list(layers),
        "umap_n_neighbors": umap_n_neighbors,
        "umap_pre_pca": umap_pre_pca,
        "seed": int(seed),
        "exclude_transition": bool(exclude_transition),
        "datasets": read_manifest(data_dir),
        "model": state_fingerprint(model),
    }
    record = out_dir / SETTINGS_FILE
    if reuse and record.is_file():
        try:
            if load_json(record) == settings:
                return {
                    "pca": {layer: load_projection(out_dir, "pca", layer) for layer in layers},
                    "umap": {layer: load_projection(out_dir, "umap", layer) for layer in layers}
                    if umap_n_neighbors is not None else {},
                }
        except (FileNotFoundError, ValueError):
            pass  # incomplete or damaged results: recompute them
    record.unlink(missing_ok=True)
    sets = activation_sets(model, data_dir, W_values, layers, exclude_transition, batch_size, progress)
    result: dict[str, dict[str, Projection]] = {"pca": {}, "umap": {}}
    for layer in tqdm(layers, desc="PCA/UMAP per layer", disable=not progress, leave=False):
        result["pca"][layer] = project_pca(sets, layer, reference_W, seed)
        save_projection(result["pca"][layer], out_dir)
        if umap_n_neighbors is not None:
            result["umap"][layer] = project_umap(sets, layer, umap_n_neighbors, seed, umap_pre_pca)
            save_projection(result["umap"][layer], out_dir)
    table = explained_variance_table(result["pca"])
    atomic_write_bytes(out_dir / "pca" / "explained_variance.csv", table.to_csv(index=False).encode())
    save_json(record, settings)
    return result


def cluster_drift(projection: Projection, reference_W: Sequence[float]) -> pd.DataFrame:
    """How far each set's samples sit from the clean cluster of their true class, in the 2-D projection.

    For class c with clean (reference) centroid mu_c, the drift of a set is the mean distance of its class-c
    samples to mu_c divided by |mu_0 - mu_1|, the distance between the two clean centroids: 0 = on the
    clean centroid, 1 = as far as the other class's centroid. Also reported: the fraction of the set's
    samples whose nearest clean centroid is that of their true class (a nearest-centroid accuracy in the
    projection) and the network's own accuracy on the set.

    Returns
    -------
    DataFrame with columns W, class, drift, nearest_centroid_accuracy, network_accuracy, n.
    """
    reference = pd.concat([projection.points[float(W)] for W in reference_W], ignore_index=True)
    centroids = np.stack(
        [reference.loc[reference["label"] == c, ["dim1", "dim2"]].to_numpy().mean(axis=0) for c in (0, 1)]
    )
    separation = float(np.linalg.norm(centroids[0] - centroids[1]))
    if not np.isfinite(separation) or separation == 0:
        raise ValueError("cluster_drift: the reference set needs samples of both classes with distinct centroids")
    rows = []
    for W, frame in projection.points.items():
        coords = frame[["dim1", "dim2"]].to_numpy()
        distances = np.linalg.norm(coords[:, None, :] - centroids[None, :, :], axis=2)  # (N, 2)
        labels = frame["label"].to_numpy()
        for c in (0, 1):
            members = labels == c
            if not members.any():
                continue
            rows.append(
                {
                    "W": W,
                    "class": c,
                    "drift": float(distances[members, c].mean() / separation),
                    "nearest_centroid_accuracy": float((distances[members].argmin(axis=1) == c).mean()),
                    "network_accuracy": float((frame["predicted"].to_numpy()[members] == c).mean()),
                    "n": int(members.sum()),
                }
            )
    return pd.DataFrame(rows, columns=["W", "class", "drift", "nearest_centroid_accuracy", "network_accuracy", "n"])
