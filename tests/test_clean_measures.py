"""Clean-data generalization measures against closed forms on tiny models (src/ssh_ood/interpret/clean_measures.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ssh_ood.interpret import clean_measures as cm
from ssh_ood.nets.architecture import CNN_SSH
from ssh_ood.physics.data_generation import generate_dataset, observables, sample_hoppings, winding_number


def _linear_bn_linear(seed: int = 0, shifted: bool = True) -> nn.Sequential:
    """Linear(3 -> 4, no bias) -> BatchNorm1d(4) -> LeakyReLU -> Linear(4 -> 2), eval, random parameters."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.LeakyReLU(0.01), nn.Linear(4, 2))
    bn = model[1]
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -2.0, 1.5, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
        if shifted:
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
            bn.running_mean.copy_(torch.tensor([1.0, 0.5, -1.0, 2.0]))
        else:
            bn.bias.zero_()
            bn.running_mean.zero_()
    return model.eval()


def _bn_scale(bn: nn.BatchNorm1d) -> np.ndarray:
    return (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy().astype(np.float64)


# ----------------------------------------------------------------------------------------------
# norms
# ----------------------------------------------------------------------------------------------
def test_frobenius_log_product_folds_batchnorm_into_the_layer_before():
    model = _linear_bn_linear()
    W1 = model[0].weight.detach().numpy().astype(np.float64)
    W2 = model[3].weight.detach().numpy().astype(np.float64)
    s = _bn_scale(model[1])
    expected = math.log(((s[:, None] * W1) ** 2).sum()) + math.log((W2**2).sum())
    assert cm.frobenius_log_product(model) == pytest.approx(expected, rel=1e-6)
    # rescaling the first layer by 10 and its BatchNorm's gamma by 1/10 changes nothing
    with torch.no_grad():
        model[0].weight.mul_(10)
        model[1].weight.div_(10)
    assert cm.frobenius_log_product(model) == pytest.approx(expected, rel=1e-5)


def test_path_norm_is_the_sum_over_paths_of_squared_weights():
    # bias-free paths: sum_{i,j,k} W2[i,j]^2 s_j^2 W1[j,k]^2 plus the output biases squared
    model = _linear_bn_linear(shifted=False)
    W1 = model[0].weight.detach().numpy().astype(np.float64)
    W2 = model[3].weight.detach().numpy().astype(np.float64)
    b2 = model[3].bias.detach().numpy().astype(np.float64)
    s = _bn_scale(model[1])
    paths = sum(W2[i, j] ** 2 * s[j] ** 2 * W1[j, k] ** 2 for i in range(2) for j in range(4) for k in range(3))
    assert cm.path_norm(model, (3,)) == pytest.approx(paths + (b2**2).sum(), rel=1e-5)


def test_path_norm_squares_the_batchnorm_shift():
    model = _linear_bn_linear(shifted=True)
    bn = model[1]
    s = _bn_scale(bn)
    t = bn.bias.detach().numpy() - s * bn.running_mean.detach().numpy()
    hidden = s**2 * (model[0].weight.detach().numpy() ** 2).sum(axis=1) + t**2
    expected = (model[3].weight.detach().numpy() ** 2 @ hidden + model[3].bias.detach().numpy() ** 2).sum()
    assert cm.path_norm(model, (3,)) == pytest.approx(expected, rel=1e-5)
    # the model itself is left unchanged
    assert cm.path_norm(model, (3,)) == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------------------------
# margins
# ----------------------------------------------------------------------------------------------
def test_margin_q10_is_the_tenth_percentile_of_correct_minus_best_other_logit():
    rng = np.random.default_rng(0)
    margins = rng.permutation(np.arange(11.0))  # quantile 0.1 of 0..10 is 1
    y = rng.integers(0, 3, size=11)
    logits = rng.normal(size=(11, 3))
    others = [c for c in range(3)]
    for n in range(11):  # put the correct logit at margin above the best other one
        best_other = max(logits[n, c] for c in others if c != y[n])
        logits[n, y[n]] = best_other + margins[n]
    logits_t, y_t = torch.tensor(logits), torch.tensor(y)
    np.testing.assert_allclose(cm.output_margins(logits_t, y_t).numpy(), margins, atol=1e-12)
    assert cm.margin_q10(logits_t, y_t) == pytest.approx(1.0)
    assert cm.normalized_margin(2.0, math.log(16.0)) == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------
# flatness
# ----------------------------------------------------------------------------------------------
def test_magnitude_aware_flatness_matches_the_quadratic_closed_form():
    # L(w) = c/2 sum w^2 at w = 1: E[L(w(1 + sigma eps))] - L(w) = c sigma^2 P / 2 -> sigma* = sqrt(2 tol / (c P))
    P, target = 1_000_000, 0.1
    c = 2 * cm.FLATNESS_LOSS_INCREASE / (target**2 * P)
    params = {"w": torch.ones(P, dtype=torch.float64)}
    sigma = cm.magnitude_aware_flatness(lambda p: 0.5 * c * (p["w"] ** 2).sum(), params, seed=3, steps=12)
    assert sigma == pytest.approx(target, rel=0.03)


def test_magnitude_aware_flatness_ignores_zero_weights_and_is_seeded():
    # multiplicative noise leaves w = 0 in place: a loss of those weights alone never increases
    params = {"w": torch.zeros(5), "u": torch.ones(5)}
    assert cm.magnitude_aware_flatness(lambda p: ((p["w"] - 1) ** 2).sum(), params, sigma_max=0.7) == 0.7
    sharp = lambda p: 100 * ((p["u"] - 1) ** 2).sum()  # noqa: E731
    a = cm.magnitude_aware_flatness(sharp, params, seed=1)
    assert 0 < a < 0.1 and a == cm.magnitude_aware_flatness(sharp, params, seed=1)


# ----------------------------------------------------------------------------------------------
# effective invariance
# ----------------------------------------------------------------------------------------------
def test_chain_reversal_is_the_image_of_the_reversed_chain_with_the_same_winding_number():
    v_n, w_n = sample_hoppings(np.linspace(0.2, 1.8, 40), 1.0, np.random.default_rng(5))
    v_rev = v_n[:, ::-1].copy()
    w_rev = np.concatenate([w_n[:, -2::-1], w_n[:, -1:]], axis=1)  # open-chain bonds reversed, closing bond kept
    X = observables(v_n, w_n)
    np.testing.assert_allclose(cm.chain_reversal(X), observables(v_rev, w_rev), atol=1e-10)
    np.testing.assert_array_equal(winding_number(v_n, w_n), winding_number(v_rev, w_rev))
    assert np.abs(cm.chain_reversal(X) - X).max() > 1e-2  # not the identity on disordered chains


class _EndSiteClassifier(nn.Module):
    """Logits from the mid-gap state's weight on site 0 minus site 49 (``end``="first", antisymmetric under
    reversal) or on both ends (``"both"``, symmetric); every row of X sums to 1, so one column is read."""

    def __init__(self, end: str) -> None:
        super().__init__()
        self.end = end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, last = x[:, 0, 0, 24], x[:, 0, -1, 24]
        z = 5 * (first - last) if self.end == "first" else 5 * (first + last - 0.2)
        return torch.stack([-z, z], dim=1)


def test_effective_invariance_is_the_mean_confidence_for_an_invariant_classifier_and_zero_if_all_flip():
    v_n, w_n = sample_hoppings(np.linspace(0.2, 1.8, 60), 1.0, np.random.default_rng(2))
    X = observables(v_n, w_n).astype(np.float32)[:, None]
    X_t = cm.chain_reversal(X)
    with torch.no_grad():
        for end in ("both", "first"):
            model = _EndSiteClassifier(end)
            p = torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()
            p_t = torch.softmax(model(torch.from_numpy(X_t)), dim=1).numpy()
            ei = cm.effective_invariance(p, p_t)
            if end == "both":  # reversal-invariant: EI = mean top probability
                assert ei == pytest.approx(p.max(axis=1).mean(), rel=1e-6)
            else:  # antisymmetric: every prediction with first != last flips
                assert np.all(np.abs(X[:, 0, 0, 24] - X[:, 0, -1, 24]) > 1e-6)
                assert ei == pytest.approx(0.0, abs=1e-6)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    probs_t = np.array([[0.6, 0.4], [0.7, 0.3], [0.6, 0.4]])
    assert cm.effective_invariance(probs, probs_t) == pytest.approx((math.sqrt(0.54) + 0 + 0.6) / 3)


def test_label_preserving_transform_is_reversal_plus_seeded_noise_of_the_stated_size():
    X = generate_dataset("test", 50, 0.0, seed=0)["X"][:, None]
    a, b = cm.label_preserving_transform(X, seed=4), cm.label_preserving_transform(X, seed=4)
    np.testing.assert_array_equal(a, b)
    noise = a - cm.chain_reversal(X)
    assert np.std(noise) == pytest.approx(cm.EI_NOISE_FRACTION * np.abs(X).max(), rel=0.02)


# ----------------------------------------------------------------------------------------------
# local ensembles
# ----------------------------------------------------------------------------------------------
def test_gauss_newton_is_the_exact_hessian_of_a_logistic_model():
    torch.manual_seed(0)
    model = nn.Linear(4, 2).double()
    X = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (30,))
    params = {k: v.detach() for k, v in model.named_parameters()}
    J = cm.logit_jacobians(model, params, X)
    # logits are linear: dz_k/dW[k', j] = delta_kk' x_j, dz_k/db[k'] = delta_kk'
    np.testing.assert_allclose(J[:, 0, :4].numpy(), X.numpy())
    np.testing.assert_allclose(J[:, 1, 4:8].numpy(), X.numpy())
    np.testing.assert_allclose(J[:, :, 8:].numpy(), np.broadcast_to(np.eye(2), (30, 2, 2)))
    hessian = cm.gauss_newton_hessian(J, model(X).detach())
    flat = torch.cat([p.reshape(-1) for p in params.values()])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(X @ theta[:8].reshape(2, 4).T + theta[8:], y)

    exact = torch.autograd.functional.hessian(loss, flat)
    np.testing.assert_allclose(hessian.numpy(), exact.numpy(), atol=1e-12)


def test_local_ensemble_score_removes_the_top_curvature_directions():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eigenvalues = np.array([0.01, 0.02, 0.5, 3.0, 7.0, 11.0])  # top 3: columns 3, 4, 5 of Q
    hessian = torch.tensor(Q @ np.diag(eigenvalues) @ Q.T)
    coefficients = rng.normal(size=(5, 6))
    gradients = torch.tensor(coefficients @ Q.T)
    expected = np.linalg.norm(coefficients[:, :3], axis=1).mean()
    assert cm.local_ensemble_score(cm.top_eigenvectors(hessian, top=3), gradients) == pytest.approx(expected, rel=1e-10)


def test_lanczos_finds_the_top_eigenvectors_of_a_quadratic_loss():
    # L(theta) = theta^T A theta / 2 over two parameter tensors: Hessian A, top-3 eigenvectors = Q[:, -3:]
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    A = torch.tensor(Q @ np.diag(np.r_[np.linspace(0.0, 1.0, 37), 5.0, 8.0, 13.0]) @ Q.T)
    params = {"a": torch.zeros(4, 5, dtype=torch.float64), "b": torch.zeros(20, dtype=torch.float64)}

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        theta = torch.cat([p["a"].reshape(-1), p["b"]])
        return 0.5 * theta @ A @ theta

    U = cm.hessian_top_eigenvectors(loss, params, top=3, seed=0).numpy()
    np.testing.assert_allclose(U @ U.T, Q[:, -3:] @ Q[:, -3:].T, atol=1e-6)  # same subspace


# ----------------------------------------------------------------------------------------------
# one network
# ----------------------------------------------------------------------------------------------
def test_clean_data_measures_on_a_cnn_is_seeded_and_restores_threads():
    data = generate_dataset("test", 200, 0.0, seed=1)
    X, y = data["X"][:, None], data["labels"]
    torch.manual_seed(0)
    model = CNN_SSH().eval()
    threads = torch.get_num_threads()
    first = cm.clean_data_measures(model, X, y, seed=7)
    assert torch.get_num_threads() == threads and not model.training
    assert first == cm.clean_data_measures(model, X, y, seed=7)
    assert set(first) == {"frobenius_log_product", "path_norm", "margin_q10", "normalized_margin",
                          "mag_flatness_sigma", "mag_sharpness", "effective_invariance", "local_ensemble_score"}
    assert all(math.isfinite(value) for value in first.values())
    assert first["mag_sharpness"] == pytest.approx(first["mag_flatness_sigma"] ** -2)
    assert 0 <= first["effective_invariance"] <= 1
    exact = cm.clean_data_measures(model, X, y, seed=7, exact_hessian=True)
    assert {k: v for k, v in exact.items() if k != "local_ensemble_score"} == {
        k: v for k, v in first.items() if k != "local_ensemble_score"}
    assert math.isfinite(exact["local_ensemble_score"])
