"""Generalization measures of a trained network computed from clean chains only.

Each measure is a candidate predictor of out-of-distribution accuracy taken from the generalization
literature; :func:`clean_data_measures` computes them all for one network from clean test chains
(X, y), in eval mode (BatchNorm with its running statistics, Dropout off), on CPU with one thread.

Keys of :func:`clean_data_measures` and the sign of their correlation with test accuracy that the
literature leads one to expect (+: larger value, better generalization):

``frobenius_log_product`` (-)   sum_l log ||W_l||_F^2, BatchNorm folded in (Jiang et al. 2020).
``path_norm`` (-)               f_{w^2}(1), the squared-weight network on an all-ones input (Jiang et al. 2020).
``margin_q10`` (+)              10 % quantile of the output margin (Jiang et al. 2020, 'margin').
``normalized_margin`` (+)       margin_q10 / sqrt(prod_l ||W_l||_F^2) (Bartlett-style normalization).
``mag_flatness_sigma`` (+)      largest multiplicative weight-noise scale with mean loss increase <= 0.1.
``mag_sharpness`` (-)           1 / mag_flatness_sigma^2 (Jiang et al. 2020, 'pacbayes.mag.flatness').
``effective_invariance`` (+)    Deng, Zheng & Gould 2022, under chain reversal plus weak pixel noise.
``local_ensemble_score`` (-)    Madras, Atwood & D'Amour 2019: gradient norm off the top curvature.

Jiang et al. 2020 ("Fantastic generalization measures and where to find them", ICLR) report
empirically that Frobenius products correlate with the generalization gap with the sign opposite to
theory, while path norm and magnitude-aware flatness agree with theory; the signs above are the
theoretical ones.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from threadpoolctl import threadpool_limits
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

MARGIN_QUANTILE = 0.1
FLATNESS_LOSS_INCREASE = 0.1
FLATNESS_SAMPLES = 256
FLATNESS_DRAWS = 2
FLATNESS_STEPS = 8
EI_NOISE_FRACTION = 0.01
CURVATURE_SAMPLES = 128
SCORE_SAMPLES = 64
TOP_EIGENVECTORS = 10

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


# ----------------------------------------------------------------------------------------------
# norms
# ----------------------------------------------------------------------------------------------
def _batchnorm_scale_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as the affine map x -> s x + t, s = gamma / sqrt(var + eps), t = beta - s mu."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - scale * bn.running_mean


@torch.no_grad()
def folded_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weight tensors of the convolutional and linear layers, in registration order, with every eval-mode
    BatchNorm folded into the layer before it: W[c] <- s_c W[c] (output channel c, s of
    :func:`_batchnorm_scale_shift`). Without the fold a convolution followed by BatchNorm has a weight
    norm that the network's function does not depend on."""
    weights: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            weights.append(module.weight.detach().clone())
        elif isinstance(module, _BATCHNORM) and weights:
            scale, _ = _batchnorm_scale_shift(module)
            weights[-1] = weights[-1] * scale.reshape(-1, *([1] * (weights[-1].ndim - 1)))
    return weights


def frobenius_log_product(model: nn.Module) -> float:
    """'log.prod.of.fro' of Jiang et al. 2020 (eq. 40): sum over layers l of log ||W_l||_F^2.

    W_l are the convolution and linear weights with eval-mode BatchNorm folded in
    (:func:`folded_weights`); biases are not part of the measure.
    """
    return float(sum(math.log(float((w.double() ** 2).sum())) for w in folded_weights(model)))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """'path.norm' of Jiang et al. 2020 (eq. 44): sum of the outputs of f_{w^2}(1), the network whose every
    parameter is squared, evaluated on an all-ones input of ``input_shape`` (C, H, W) in eval mode.

    An eval-mode BatchNorm is the affine map x -> s x + t (:func:`_batchnorm_scale_shift`) and becomes
    x -> s^2 x + t^2. Parameter-free maps (LeakyReLU, identity on the non-negative signals of f_{w^2};
    Dropout, identity in eval; average pooling) are kept as they are.
    """
    squared = copy.deepcopy(model).eval()
    for module in squared.modules():
        if isinstance(module, _BATCHNORM):
            scale, shift = _batchnorm_scale_shift(module)
            module.weight.copy_(scale**2)
            module.bias.copy_(shift**2)
            module.running_mean.zero_()
            module.running_var.fill_(1.0 - module.eps)
        else:
            for parameter in module.parameters(recurse=False):
                parameter.copy_(parameter**2)
    return float(squared(torch.ones(1, *input_shape)).sum())


# ----------------------------------------------------------------------------------------------
# margins
# ----------------------------------------------------------------------------------------------
def output_margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Margin per sample, (N,): correct-class logit minus the largest other logit."""
    correct = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], float("-inf"))
    return correct - others.max(dim=1).values


def margin_q10(logits: torch.Tensor, y: torch.Tensor) -> float:
    """'margin' of Jiang et al. 2020 (Section 3, eq. 11 uses 1/gamma^2): the 10th percentile gamma of the
    output margins (:func:`output_margins`), in logit units; negative if over 10 % are misclassified."""
    return float(torch.quantile(output_margins(logits, y).double(), MARGIN_QUANTILE))


def normalized_margin(margin: float, log_frobenius_product: float) -> float:
    """gamma / sqrt(prod_l ||W_l||_F^2) = gamma exp(-log_prod / 2): the margin in units of the Frobenius
    product, the quantity whose inverse square enters Jiang et al. 2020's 'log.prod.of.fro/margin'
    (eq. 42, up to the log); reported as the margin itself, so larger is better."""
    return float(margin * math.exp(-0.5 * log_frobenius_product))


# ----------------------------------------------------------------------------------------------
# magnitude-aware flatness
# ----------------------------------------------------------------------------------------------
def magnitude_aware_flatness(
    loss: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    params: dict[str, torch.Tensor],
    *,
    seed: int = 0,
    draws: int = FLATNESS_DRAWS,
    steps: int = FLATNESS_STEPS,
    tolerance: float = FLATNESS_LOSS_INCREASE,
    sigma_max: float = 1.0,
) -> float:
    """Largest sigma with mean_d [L(w (1 + sigma eps_d))] - L(w) <= ``tolerance``, by bisection on
    [0, ``sigma_max``] (``steps`` halvings); 'pacbayes.mag.flatness' of Jiang et al. 2020 (eq. 52-53,
    Appendix C.2), which reports 1/sigma^2 (:func:`clean_data_measures` gives both).

    eps_d ~ N(0, 1) per parameter, the same ``draws`` draws (seeded by ``seed``) at every sigma so that the
    mean increase is a deterministic function of sigma. Jiang et al. add a floor eps = 1e-3 to the noise
    standard deviation, sigma |w| -> sqrt(sigma^2 w^2 + 1e-6); it is left out here (no parameter of a
    trained CNN_SSH is that small in effect). Returns ``sigma_max`` if the bound is never reached.

    With the defaults of :func:`clean_data_measures` (256 chains, 2 draws) sigma varies by 30-70 % between
    seeds for a shipped network (models 0-2, seeds 0-4; antithetic pairs +-eps did not help): the loss
    increase is dominated by the few draws that hit sharp directions, so a ranking of networks needs many
    more draws than the 2 s budget allows.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = [{k: torch.randn(v.shape, generator=generator, dtype=v.dtype) for k, v in params.items()} for _ in range(draws)]
    base = float(loss(params))

    def increase(sigma: float) -> float:
        return float(np.mean([float(loss({k: v * (1 + sigma * e[k]) for k, v in params.items()})) for e in noise])) - base

    if increase(sigma_max) <= tolerance:
        return sigma_max
    low, high = 0.0, sigma_max
    for _ in range(steps):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if increase(mid) <= tolerance else (low, mid)
    return low


# ----------------------------------------------------------------------------------------------
# effective invariance
# ----------------------------------------------------------------------------------------------
def chain_reversal(X: np.ndarray) -> np.ndarray:
    """Reverse the chain, site j -> 2n - 1 - j: flips the image's site axis (axis -2), (..., 2n, 2n).

    The reversed open chain has hoppings v'_m = v_{n-1-m}, w'_m = w_{n-2-m} (again intracell bonds at both
    ends) and the same products prod |v_m|, prod |w_m|, hence the same winding number; its image is the
    site-flipped image. Exact for every W (tests/test_clean_measures.py checks it on disordered chains with
    the project's generator). On a clean chain the reversal is a symmetry, so the flip is the identity
    to float precision; the column flip i -> 2n - 1 - i is the identity exactly (chiral partners).
    """
    return np.ascontiguousarray(X[..., ::-1, :])


def label_preserving_transform(X: np.ndarray, seed: int, noise_fraction: float = EI_NOISE_FRACTION) -> np.ndarray:
    """Chain reversal (:func:`chain_reversal`) plus Gaussian pixel noise of standard deviation
    ``noise_fraction`` x max |X| (the zero-mode peak, ~0.5 for clean chains), drawn from ``seed``.

    Clean images have no non-trivial exact symmetry left (see :func:`chain_reversal`), and a redrawn
    disorder realization is another sample, not a transform of this one; the weak noise is the
    perturbation that does the work, label-preserving by assumption (its size, 0.005, is about a fifth of
    the mean pixel 1/2n).
    """
    rng = np.random.default_rng(seed)
    scale = noise_fraction * float(np.abs(X).max())
    return (chain_reversal(X) + rng.normal(0.0, scale, size=X.shape)).astype(X.dtype)


def effective_invariance(probs: np.ndarray, probs_transformed: np.ndarray) -> float:
    """EI of Deng, Zheng & Gould (NeurIPS 2022, eq. 1): mean over samples of sqrt(p_t p) if the predicted
    class is unchanged by the transform, else 0; p, p_t are the top softmax probabilities of the original
    and transformed input. ``probs``, ``probs_transformed``: (N, K)."""
    same = probs.argmax(axis=1) == probs_transformed.argmax(axis=1)
    return float(np.mean(np.where(same, np.sqrt(probs.max(axis=1) * probs_transformed.max(axis=1)), 0.0)))


# ----------------------------------------------------------------------------------------------
# local ensembles
# ----------------------------------------------------------------------------------------------
def logit_jacobians(model: nn.Module, params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians of the logits with respect to the flattened parameters, (N, K, P)."""

    def logits(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x[None],))[0]

    jac = vmap(jacrev(logits), in_dims=(None, 0))(params, X)
    return torch.cat([jac[k].reshape(len(X), jac[k].shape[1], -1) for k in params], dim=2)


def gauss_newton_hessian(jacobians: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Generalized Gauss-Newton matrix of the mean cross-entropy, (P, P): mean_n J_n^T (diag p_n - p_n p_n^T) J_n.

    It is the exact Hessian when the logits are linear in the parameters, and otherwise the Hessian less
    the term sum_k (p_nk - [y_n = k]) d^2 z_nk. Its rank is at most N (K = 2). On shipped CNN_SSH networks
    (models 0, 1; 128 chains) it matches the Hessian's top two eigenvalues within 1-20 % but misses the
    next ones (GGN 7, 4 vs Hessian 53, 48 for model 0), and the local-ensemble score drops ~7-12x with it.
    """
    p = torch.softmax(logits.double(), dim=1)
    curvature = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    J = jacobians.double()
    return torch.einsum("nkp,nkl,nlq->pq", J, curvature, J) / len(J)


def hessian_top_eigenvectors(
    loss: Callable[[dict[str, torch.Tensor]], torch.Tensor], params: dict[str, torch.Tensor], top: int, seed: int = 0
) -> torch.Tensor:
    """The ``top`` eigenvectors of largest eigenvalue of the exact Hessian of ``loss`` at ``params``, (P, top)
    float64 (parameters flattened in ``params`` order), by Lanczos (``scipy.sparse.linalg.eigsh``, relative
    tolerance 1e-4, start vector from ``seed``) on Hessian-vector products (forward-over-reverse, torch.func).
    About 70-90 products for CNN_SSH, ~12 s per network with 128 chains on one CPU thread."""
    names = list(params)
    sizes = [params[k].numel() for k in names]
    gradient = grad(loss)

    def hvp(vector: np.ndarray) -> np.ndarray:
        pieces = torch.from_numpy(np.asarray(vector).ravel()).split(sizes)
        tangent = {k: t.reshape(params[k].shape).to(params[k].dtype) for k, t in zip(names, pieces, strict=True)}
        _, product = jvp(gradient, (params,), (tangent,))
        return torch.cat([product[k].reshape(-1) for k in names]).double().numpy()

    total = sum(sizes)
    start = np.random.default_rng(seed).normal(size=total)
    _, vectors = eigsh(LinearOperator((total, total), matvec=hvp, dtype=np.float64), k=top, which="LA", tol=1e-4, v0=start)
    return torch.from_numpy(vectors)


def top_eigenvectors(matrix: torch.Tensor, top: int = TOP_EIGENVECTORS) -> torch.Tensor:
    """Eigenvectors of the ``top`` largest eigenvalues of a symmetric (P, P) matrix, (P, top) float64."""
    return torch.linalg.eigh(matrix.double())[1][:, -top:]


def local_ensemble_score(eigenvectors: torch.Tensor, gradients: torch.Tensor) -> float:
    """Extrapolation score of Madras, Atwood & D'Amour (ICLR 2019, 'Detecting extrapolation with local
    ensembles', eq. 5): the norm of each prediction gradient g_n projected onto the complement of the
    m leading eigenvectors U of the loss Hessian (m = 10 here), ||g - U U^T g||, averaged over samples.

    ``eigenvectors``: U, (P, m) orthonormal columns; ``gradients`` (N, P).
    """
    U = eigenvectors.double()
    g = gradients.double()
    residual = g - (g @ U) @ U.T
    return float(residual.norm(dim=1).mean())


# ----------------------------------------------------------------------------------------------
# one network
# ----------------------------------------------------------------------------------------------
def clean_data_measures(
    model: nn.Module, X: np.ndarray, y: np.ndarray, *, seed: int = 0, exact_hessian: bool = False
) -> dict[str, float]:
    """Every measure of this module for one network from clean chains, in eval mode, on one CPU thread.

    Parameters
    ----------
    model : a trained network (e.g. ``CNN_SSH``) returning logits (N, K); moved to the CPU and put in eval
        mode (its parameters are not changed).
    X : (N, C, H, W) float32 clean images (the caller passes ~1,000 clean test chains).
    y : (N,) int labels.
    seed : every random draw (subsets, weight noise, pixel noise, Lanczos start) comes from it.
    exact_hessian : local ensembles from the exact loss Hessian (:func:`hessian_top_eigenvectors`, ~12 s per
        CNN_SSH) instead of the Gauss-Newton matrix (default, ~0.2 s). The two differ on the trained networks
        (training loss ~0.15 with weight decay, so the Hessian's residual term is not negligible).

    Returns
    -------
    dict with the keys listed in the module docstring. Sample counts: margins and effective invariance on
    all N chains; flatness on a seeded subset of :data:`FLATNESS_SAMPLES` chains with
    :data:`FLATNESS_DRAWS` noise draws and :data:`FLATNESS_STEPS` bisection steps; local ensembles with
    the Gauss-Newton or exact Hessian of the loss on :data:`CURVATURE_SAMPLES` chains and the
    logit-difference gradients of :data:`SCORE_SAMPLES` other chains, top-:data:`TOP_EIGENVECTORS`
    eigenvectors removed.
    """
    model = model.cpu().eval()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    params = {k: v.detach() for k, v in model.named_parameters()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1), torch.no_grad():
            logits = model(Xt)
            transformed = torch.as_tensor(label_preserving_transform(np.asarray(X, dtype=np.float32), seed))
            probs_t = torch.softmax(model(transformed), dim=1).numpy()
            flat = order[:FLATNESS_SAMPLES]

            def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
                return nn.functional.cross_entropy(functional_call(model, p, (Xt[flat],)), yt[flat])

            sigma = magnitude_aware_flatness(loss, params, seed=seed)
        with threadpool_limits(limits=1):
            chosen = order[: CURVATURE_SAMPLES + SCORE_SAMPLES]
            jac = logit_jacobians(model, params, Xt[chosen]).detach()
            curvature_chains = chosen[:CURVATURE_SAMPLES]
            if exact_hessian:

                def curvature_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
                    logits_c = functional_call(model, p, (Xt[curvature_chains],))
                    return nn.functional.cross_entropy(logits_c, yt[curvature_chains])

                curvature = hessian_top_eigenvectors(curvature_loss, params, TOP_EIGENVECTORS, seed)
            else:
                curvature = top_eigenvectors(gauss_newton_hessian(jac[:CURVATURE_SAMPLES], logits[curvature_chains]))
            score = local_ensemble_score(curvature, jac[CURVATURE_SAMPLES:, 1] - jac[CURVATURE_SAMPLES:, 0])
    finally:
        torch.set_num_threads(threads)
    log_fro = frobenius_log_product(model)
    margin = margin_q10(logits, yt)
    return {
        "frobenius_log_product": log_fro,
        "path_norm": path_norm(model, tuple(X.shape[1:])),
        "margin_q10": margin,
        "normalized_margin": normalized_margin(margin, log_fro),
        "mag_flatness_sigma": sigma,
        "mag_sharpness": 1.0 / sigma**2 if sigma > 0 else math.inf,
        "effective_invariance": effective_invariance(torch.softmax(logits, dim=1).numpy(), probs_t),
        "local_ensemble_score": score,
    }
