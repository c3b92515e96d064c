"""Class activation maps (CAM), Grad-CAM, averaged CAMs and a measured CAM quality score (docs/physics_and_methods.md §6).

CAM of ``CNN_SSH``. With A = output of ``cnn_layers_2`` (K = 9 channels of 26 x 26, eval mode) and the
linear layer (W_lin, b) after global average pooling, the logit of class c is

    logit_c = sum_k W_lin[c, k] * mean_ij A_k(i, j) + b_c = mean_ij cam_c(i, j) + b_c,
    cam_c(i, j) = sum_k W_lin[c, k] * A_k(i, j)                      (bias ignored),

so the raw CAM is an exact additive decomposition of the logit over the 26 x 26 positions, computed for
both classes (0 = trivial, 1 = topological) whatever the prediction. The paper's displayed maps are the
raw maps resized to the 50 x 50 input and min-max normalized per map.

Resizing: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` (half-pixel
centres, the convention of OpenCV's ``resize``). Bilinear resizing is linear, so resizing the raw maps
commutes with the weighted channel sum.

CAM quality score. A "good" topological-class CAM on a clean topological sample lights the edge-state
region (mid-gap eigenstate columns at the chain's end sites, :class:`EdgeStateRegion`, defined once
here); a "misleading" one lights the bulk. The score of one map m (the topological CAM resized to
50 x 50) is the share of its above-average part that lies inside the region,

    d = m - mean(m),    score = sum_{(j, i) in region} max(d, 0) / sum_{(j, i)} max(d, 0)

(0 for a constant map). The score of a network is the mean over the clean topological test samples.

Why the above-average part and not the positive part of the raw map. The spatial mean of the raw map is
logit_1 - b_1, the *level* of the evidence, which says which class wins, not where the network looks;
d is its redistribution over the input. On the networks of the quick preset the raw topological CAM is
positive on 84-99 % of the pixels, so the share of its positive part sits within 0.060-0.079 for every
network, i.e. at the area fraction 0.064 of the region, whatever the map shows; the share of d spreads
over 0.05-0.13 on the same networks. And since d is unchanged (up to a positive factor) by any
positive affine map, the score of the raw map equals the score of the paper's min-max normalized map:
it is a number read off exactly the picture the paper judged by eye.

Reference values: the ideal "toy model" map (1 in the region, 0 elsewhere) scores exactly 1, a map bright
only in the bulk scores 0, and a map whose excess is spread evenly (noise) scores about the region's area
fraction (:attr:`EdgeStateRegion.area_fraction`, the chance level).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from ..base.io_utils import atomic_write_bytes, save_json, save_npz
from ..base.validation import require_int
from ..nets.architecture import CNN_SSH
from ..physics.datasets import load_split

INPUT_SIZE = 50


# ----------------------------------------------------------------------------------------------
# the edge-state region and the toy-model map
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EdgeStateRegion:
    """Where a good topological-class CAM should be bright: mid-gap eigenstates at the chain's ends.

    The input image is X[j, i] = |psi_i(j)|^2 with rows j = sites and columns i = eigenstates in
    ascending energy. In the topological phase the mid-gap states (columns n - 1 and n for n cells, 24 and
    25 for the paper's chain) are localized on the end sites 0 and 2n - 1, decaying into the chain as
    v^(2m) in cell m. The region is a band of eigenstate columns around the mid-gap pair times the first
    and last sites of the chain.

    Default: columns 20-29 (10 eigenstates) x rows 0-7 and 42-49 (8 sites at each end), 160 of the 2,500
    pixels. The paper's toy-model image shows the bright region at "columns ~ 22-32, rows ~ 0-7 and 43-49";
    that window is not centred on the mid-gap pair (24, 25), so the same width is centred here, which makes
    the region invariant under the chiral mirror i -> 49 - i (an exact symmetry of X) and the chain
    inversion j -> 49 - j. The 10-column width covers the blur of the CAM (26 x 26 feature map whose
    positions have a 12-pixel receptive field, resized to 50 x 50).

    Attributes
    ----------
    columns : (first, last) eigenstate columns, inclusive.
    row_bands : ((first, last), ...) site rows, inclusive.
    size : side of the square input image.
    """

    columns: tuple[int, int] = (20, 29)
    row_bands: tuple[tuple[int, int], ...] = ((0, 7), (42, 49))
    size: int = INPUT_SIZE

    def __post_init__(self) -> None:
        bands = (self.columns, *self.row_bands)
        for first, last in bands:
            if not (0 <= first <= last < self.size):
                raise ValueError(
                    f"EdgeStateRegion: band ({first}, {last}) must satisfy 0 <= first <= last < size={self.size}"
                )
        if not self.row_bands:
            raise ValueError("EdgeStateRegion: row_bands must hold at least one (first, last) band")

    def mask(self) -> np.ndarray:
        """Boolean (size, size) mask, True inside the region (rows = sites, columns = eigenstates)."""
        rows = np.zeros(self.size, dtype=bool)
        for first, last in self.row_bands:
            rows[first : last + 1] = True
        columns = np.zeros(self.size, dtype=bool)
        columns[self.columns[0] : self.columns[1] + 1] = True
        return rows[:, None] & columns[None, :]

    @property
    def area_fraction(self) -> float:
        """Fraction of the image inside the region: the score of a spatially uniform map."""
        return float(self.mask().mean())

    def to_dict(self) -> dict:
        """JSON-serializable description (for provenance files)."""
        return {"columns": list(self.columns), "row_bands": [list(b) for b in self.row_bands], "size": self.size}


EDGE_STATE_REGION = EdgeStateRegion()


def toy_model_cam(region: EdgeStateRegion = EDGE_STATE_REGION) -> np.ndarray:
    """The ideal "toy model" topological CAM: 1 inside the edge-state region, 0 elsewhere, (size, size)."""
    return region.mask().astype(np.float32)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (dropout off, BatchNorm running statistics) and restore its mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's parameters."""
    return next(model.parameters()).device


def as_input_tensor(x: np.ndarray | torch.Tensor, model: CNN_SSH) -> torch.Tensor:
    """Network input (N, C, H, W) float32 on the model's device from (N, H, W) or (N, C, H, W) data.

    Thermometer-encoded models need already-encoded input (``C`` = their number of levels).
    """
    tensor = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if tensor.ndim == 3:
        tensor = tensor[:, None]
    if tensor.ndim != 4 or tensor.shape[1] != model.in_channels:
        raise ValueError(
            f"x must have shape (N, H, W) or (N, {model.in_channels}, H, W), got {tuple(tensor.shape)}"
        )
    return tensor.to(model_device(model))


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` as an int; ``ValueError`` unless it is a positive integer."""
    return require_int("batch_size", batch_size, minimum=1)


def upsample_maps(maps: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Bilinear resize (align_corners=False) of maps (..., h, w) to (..., size, size), float32."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim < 2:
        raise ValueError(f"maps must have at least 2 dimensions (..., h, w), got shape {maps.shape}")
    lead = maps.shape[:-2]
    flat = torch.from_numpy(np.ascontiguousarray(maps.reshape(-1, 1, *maps.shape[-2:])))
    resized = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return resized.reshape(*lead, size, size).numpy()


def minmax_normalize(maps: np.ndarray) -> np.ndarray:
    """Min-max normalize each map (last two axes) to [0, 1]; a constant map becomes all zeros."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# CAM and Grad-CAM
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def raw_class_activation_maps(model: CNN_SSH, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Raw CAMs cam_c = sum_k W_lin[c, k] A_k of both classes, one forward pass per batch, eval mode.

    Parameters
    ----------
    model : a ``CNN_SSH`` (its mode is restored afterwards; no hook is registered).
    x : (N, 50, 50) or (N, C, 50, 50) input.
    batch_size : samples per forward pass.

    Returns
    -------
    float32 array (N, 2, 26, 26); mean over the last two axes + bias_c = logit_c exactly.
    """
    batch_size = check_batch_size(batch_size)
    inputs = as_input_tensor(x, model)
    weight = model.linear_layers[0].weight  # (2, K)
    maps = []
    with eval_mode(model):
        for start in range(0, inputs.shape[0], batch_size):
            features = model.features(inputs[start : start + batch_size])  # (B, K, 26, 26)
            maps.append(torch.einsum("ck,bkhw->bchw", weight, features).cpu())
    if not maps:
        raise ValueError("x holds no samples")
    return torch.cat(maps).numpy().astype(np.float32)


def class_activation_maps(
    model: CNN_SSH, x: np.ndarray | torch.Tensor, upsample: bool = True, batch_size: int = 256
) -> np.ndarray:
    """The paper's CAMs of both classes.

    Returns
    -------
    ``upsample=True``: (N, 2, 50, 50) float32, each map resized bilinearly to the input size then min-max
    normalized to [0, 1]; ``upsample=False``: the raw (N, 2, 26, 26) maps of
    :func:`raw_class_activation_maps` (not normalized).
    """
    raw = raw_class_activation_maps(model, x, batch_size=batch_size)
    if not upsample:
        return raw
    return minmax_normalize(upsample_maps(raw))


def grad_cam(
    model: CNN_SSH,
    x: np.ndarray | torch.Tensor,
    relu_attributions: bool = True,
    upsample: bool = False,
    batch_size: int = 256,
) -> np.ndarray:
    """Grad-CAM of both classes on the logits at ``cnn_layers_2``, with captum's ``LayerGradCam``.

    Grad-CAM weighs each feature map by its spatially averaged gradient,
    alpha_k^c = mean_ij d logit_c / d A_k(i, j), and returns sum_k alpha_k^c A_k (optionally through a
    ReLU). On this network the logit is linear in the pooled features, logit_c =
    sum_k W_lin[c, k] mean_ij A_k(i, j) + b_c, so d logit_c / d A_k(i, j) = W_lin[c, k] / (h w) at every
    position, alpha_k^c = W_lin[c, k] / 676, and

        Grad-CAM_c = cam_c / 676        (before the ReLU; with the ReLU, max(cam_c, 0) / 676),

    i.e. Grad-CAM and CAM agree up to the constant 1 / (26 * 26). captum's ``relu_attributions`` defaults
    to False (no ReLU) in captum 0.9; the original Grad-CAM applies the ReLU, which is the default here.

    Parameters
    ----------
    relu_attributions : apply the ReLU of the original Grad-CAM.
    upsample : resize to (50, 50) bilinearly (no normalization).

    Returns
    -------
    float32 array (N, 2, 26, 26), or (N, 2, 50, 50) with ``upsample``.
    """
    from captum.attr import LayerGradCam  # imported here: slow, and only Grad-CAM needs it

    batch_size = check_batch_size(batch_size)
    inputs = as_input_tensor(x, model)
    explainer = LayerGradCam(model, model.cnn_layers_2)
    maps = []
    with eval_mode(model):
        for start in range(0, inputs.shape[0], batch_size):
            batch = inputs[start : start + batch_size]
            per_class = [
                explainer.attribute(batch, target=c, relu_attributions=relu_attributions).detach()
                for c in range(2)
            ]
            maps.append(torch.cat(per_class, dim=1).cpu())
    if not maps:
        raise ValueError("x holds no samples")
    result = torch.cat(maps).numpy().astype(np.float32)
    return upsample_maps(result) if upsample else result


def averaged_class_activation_maps(
    model: CNN_SSH, x: np.ndarray | torch.Tensor, normalized: bool = True, batch_size: int = 256
) -> np.ndarray:
    """CAMs of both classes averaged over the samples ``x`` (e.g. all clean topological test samples).

    Parameters
    ----------
    normalized : average the paper's per-sample min-max normalized 50 x 50 maps (every sample weighs the
        same); otherwise average the raw maps resized to 50 x 50 (samples with larger activations weigh
        more; the mean raw map plus the bias is the mean logit).

    Returns
    -------
    float32 array (2, 50, 50).
    """
    raw = raw_class_activation_maps(model, x, batch_size=batch_size)
    maps = upsample_maps(raw)
    if normalized:
        maps = minmax_normalize(maps)
    return maps.mean(axis=0)


# ----------------------------------------------------------------------------------------------
# the CAM quality score
# ----------------------------------------------------------------------------------------------
def region_share(maps: np.ndarray, region: EdgeStateRegion = EDGE_STATE_REGION) -> np.ndarray:
    """Share of the positive part of each map inside ``region`` (the building block of the score).

    Parameters
    ----------
    maps : (..., size, size) maps on the input grid.

    Returns
    -------
    float64 array (...): sum(max(map, 0) in region) / sum(max(map, 0)), in [0, 1]; 0 where the map has
    no positive value.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[-2:] != (region.size, region.size):
        raise ValueError(f"maps must end with shape ({region.size}, {region.size}), got {maps.shape}")
    positive = np.clip(maps, 0, None)
    total = positive.sum(axis=(-2, -1))
    inside = (positive * region.mask()).sum(axis=(-2, -1))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)


def map_score(maps: np.ndarray, region: EdgeStateRegion = EDGE_STATE_REGION) -> np.ndarray:
    """CAM score of maps on the input grid: :func:`region_share` of ``map - mean(map)``, (...).

    Invariant under map -> a * map + c for any a > 0 (so raw and min-max normalized maps score the same).
    """
    maps = np.asarray(maps, dtype=np.float64)
    return region_share(maps - maps.mean(axis=(-2, -1), keepdims=True), region)


def cam_scores_per_sample(
    model: CNN_SSH,
    x: np.ndarray | torch.Tensor,
    region: EdgeStateRegion = EDGE_STATE_REGION,
    batch_size: int = 256,
) -> np.ndarray:
    """CAM score of each sample: :func:`map_score` of its topological CAM resized to the input, (N,)."""
    raw = raw_class_activation_maps(model, x, batch_size=batch_size)[:, 1]
    return map_score(upsample_maps(raw, size=region.size), region)


def cam_score(
    model: CNN_SSH,
    x: np.ndarray | torch.Tensor,
    region: EdgeStateRegion = EDGE_STATE_REGION,
    batch_size: int = 256,
) -> float:
    """CAM quality score of a network: mean per-sample score over ``x`` (clean topological samples)."""
    return float(cam_scores_per_sample(model, x, region, batch_size).mean())


def clean_topological_test_set(data_dir: str | Path) -> dict[str, np.ndarray]:
    """The clean (W = 0) topological test samples of a datasets folder: ``X`` (N, 50, 50) and ``v`` (N,)."""
    data = load_split(data_dir, "test", 0.0)
    keep = data["labels"] == 1
    if not keep.any():
        raise ValueError(f"{data_dir}: the clean test set holds no topological sample")
    return {"X": data["X"][keep], "v": data["v"][keep]}


def nearest_sample(v_values: np.ndarray, v: float) -> int:
    """Index of the sample whose v is closest to ``v`` (used to pick the sample shown in Fig. 2)."""
    v_values = np.asarray(v_values, dtype=np.float64)
    if v_values.size == 0:
        raise ValueError("v_values is empty")
    return int(np.argmin(np.abs(v_values - float(v))))


def score_correlations(
    scores: Sequence[float], metrics: dict[str, Sequence[float]]
) -> dict[str, dict[str, float]]:
    """Pearson and Spearman correlations of the CAM score with each generalization metric.

    Parameters
    ----------
    scores : (n_models,) CAM scores.
    metrics : metric name -> (n_models,) values (e.g. ``rmse``, OOD accuracy). Models where either value
        is not finite are left out.

    Returns
    -------
    metric name -> {"n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p"} (NaN with fewer than 3
    models or a constant input).
    """
    scores = np.asarray(scores, dtype=np.float64)
    result = {}
    for name, values in metrics.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != scores.shape:
            raise ValueError(f"metric {name!r} has shape {values.shape}, scores have {scores.shape}")
        keep = np.isfinite(scores) & np.isfinite(values)
        a, b = scores[keep], values[keep]
        entry = {"n": int(keep.sum())}
        if keep.sum() >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
            pearson = stats.pearsonr(a, b)
            spearman = stats.spearmanr(a, b)
            entry |= {
                "pearson_r": float(pearson.statistic),
                "pearson_p": float(pearson.pvalue),
                "spearman_rho": float(spearman.statistic),
                "spearman_p": float(spearman.pvalue),
            }
        else:
            entry |= dict.fromkeys(("pearson_r", "pearson_p", "spearman_rho", "spearman_p"), float("nan"))
        result[name] = entry
    return result


# ----------------------------------------------------------------------------------------------
# one model end to end
# ----------------------------------------------------------------------------------------------
def analyze_model_cam(
    model: CNN_SSH,
    data_dir: str | Path,
    out_dir: str | Path,
    reference_W: Sequence[float] = (0.0,),
    sample_v: float = 0.5,
    region: EdgeStateRegion = EDGE_STATE_REGION,
    batch_size: int = 256,
) -> dict:
    """CAM analysis of one network, written to ``out_dir``.

    Parameters
    ----------
    reference_W : test sets whose topological samples enter the averaged CAMs (clean, optionally with
        the weak-disorder W = 0.01, 0.05 sets). The CAM score always uses the clean set alone.
    sample_v : the clean topological sample shown is the one with v nearest to this.

    Writes
    ------
    ``cam_summary.json`` (score, its spread, sample count, region, the shown sample), ``cam_scores.csv``
    (v, score per clean topological sample), ``cam_maps.npz``: ``sample_cam`` (2, 50, 50) normalized
    CAMs of the shown sample, ``sample_grad_cam`` (2, 50, 50) Grad-CAM resized, ``sample_input`` (50, 50),
    ``averaged_normalized`` and ``averaged_raw`` (2, 50, 50), ``toy_model`` (50, 50).

    Returns
    -------
    The summary dictionary.
    """
    clean = clean_topological_test_set(data_dir)
    per_sample = cam_scores_per_sample(model, clean["X"], region, batch_size)
    index = nearest_sample(clean["v"], sample_v)
    sample = clean["X"][index : index + 1]
    averaged_inputs = [clean["X"]]
    for W in reference_W:
        if float(W) != 0.0:
            data = load_split(data_dir, "test", W)
            averaged_inputs.append(data["X"][data["labels"] == 1])
    averaged_inputs = np.concatenate(averaged_inputs)
    with eval_mode(model):
        probabilities = model.predict_proba(as_input_tensor(sample, model)).cpu().numpy()[0]
    summary = {
        "cam_score": float(per_sample.mean()),
        "cam_score_std": float(per_sample.std()),
        "n_clean_topological": int(per_sample.size),
        "chance_level": region.area_fraction,
        "region": region.to_dict(),
        "sample_v": float(clean["v"][index]),
        "sample_probabilities": probabilities.tolist(),
        "averaged_over_W": [float(W) for W in reference_W],
        "n_averaged": int(averaged_inputs.shape[0]),
    }
    out_dir = Path(out_dir)
    save_npz(
        out_dir / "cam_maps.npz",
        {
            "sample_cam": class_activation_maps(model, sample)[0],
            "sample_grad_cam": grad_cam(model, sample, upsample=True)[0],
            "sample_input": sample[0],
            "averaged_normalized": averaged_class_activation_maps(model, averaged_inputs, True, batch_size),
            "averaged_raw": averaged_class_activation_maps(model, averaged_inputs, False, batch_size),
            "toy_model": toy_model_cam(region),
        },
    )
    table = pd.DataFrame({"v": clean["v"], "cam_score": per_sample})
    atomic_write_bytes(out_dir / "cam_scores.csv", table.to_csv(index=False).encode())
    save_json(out_dir / "cam_summary.json", summary)
    return summary
