"""Benchmark of the SSH data generator against plain numpy baselines, measured side by side.

Prints (medians of several repetitions, one run):
  * samples/s of ``observables`` + ``winding_number`` on 5,000 disordered chains (numba kernels,
    all cores), of a numpy batched SVD of the chiral block + numpy log-sum labels (one BLAS thread),
    and of bare ``numpy.linalg.eigh`` on the same 5,000 dense 50x50 Hamiltonians with one BLAS thread
    (the LAPACK floor), with the ratios;
  * the time to regenerate the published target diagram (501 W x 200 v x 25 realizations = 2.5 M
    labels, disorder draws included);
  * the numba JIT warm-up: compile time with an empty cache and load time from the on-disk cache.

Usage: ``.venv/bin/python benchmarks/bench_data_generation.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ssh_ood.physics import data_generation as dg  # noqa: E402


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def numpy_observables_and_labels(v_n: np.ndarray, w_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same result as the numba path, written with batched numpy (the alternative to justify numba)."""
    n_samples, n = v_n.shape
    c = np.zeros((n_samples, n, n))
    cells = np.arange(n)
    c[:, cells, cells] = v_n
    c[:, cells[1:], cells[:-1]] = w_n[:, :-1]
    u, _, vt = np.linalg.svd(c)
    x = np.empty((n_samples, 2 * n, 2 * n))
    x[:, 0::2, :n] = 0.5 * u**2
    x[:, 1::2, :n] = 0.5 * (vt**2).transpose(0, 2, 1)
    x[:, :, n:] = x[:, :, :n][:, :, ::-1]
    return x, dg.winding_number(v_n, w_n)


def jit_times() -> tuple[float, float]:
    code = "import time; t=time.perf_counter(); from ssh_ood.physics import data_generation as dg; import numpy as np; " \
           "dg.observables(np.ones((2, 5)), np.ones((2, 5))); dg.winding_number(np.ones((2, 5)), np.ones((2, 5))); " \
           "print(time.perf_counter()-t)"
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = float(subprocess.check_output([sys.executable, "-c", code], cwd=root, env=env))
        warm = float(subprocess.check_output([sys.executable, "-c", code], cwd=root, env=env))
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    v = rng.uniform(0.0, 2.0, args.samples)
    v_n, w_n = dg.sample_hoppings(v, 1.0, rng)
    hamiltonians = dg.open_chain_hamiltonian(v_n, w_n)
    dg.observables(v_n[:4], w_n[:4])  # JIT / cache load outside the timings
    dg.winding_number(v_n[:4], w_n[:4])

    x_ref, labels_ref = numpy_observables_and_labels(v_n, w_n)
    assert np.allclose(x_ref, dg.observables(v_n, w_n), atol=1e-9)
    assert np.array_equal(labels_ref, dg.winding_number(v_n, w_n))

    t_ours = median_time(lambda: (dg.observables(v_n, w_n), dg.winding_number(v_n, w_n)), args.repeats)
    with threadpool_limits(1):
        t_numpy = median_time(lambda: numpy_observables_and_labels(v_n, w_n), args.repeats)
        t_eigh = median_time(lambda: np.linalg.eigh(hamiltonians), args.repeats)

    n = args.samples
    print(f"observables + labels, {n} disordered chains (M = 50), median of {args.repeats}:")
    print(f"  ours (numba SVD of chiral block, {dg.nb.get_num_threads()} threads): {n / t_ours:10.0f} samples/s")
    print(f"  numpy batched SVD of chiral block (1 BLAS thread):       {n / t_numpy:10.0f} samples/s")
    print(f"  numpy.linalg.eigh of dense 50x50 (1 BLAS thread, floor): {n / t_eigh:10.0f} samples/s")
    print(f"  ratio ours / eigh floor: {t_eigh / t_ours:.2f}x   ours / numpy SVD: {t_numpy / t_ours:.2f}x")

    W_values, v_values = np.linspace(0, 5, 501), np.linspace(0, 2, 200)
    dg.target_diagram(W_values[:2], v_values, 25, 0)
    t_target = median_time(lambda: dg.target_diagram(W_values, v_values, 25, 0), max(1, args.repeats // 2))
    print(f"target diagram, 501 x 200 x 25 = 2.5 M labels (draws included): {t_target:.2f} s")

    cold, warm = jit_times()
    print(f"numba warm-up in a fresh process: {cold:.2f} s compiling (empty cache), {warm:.2f} s from cache")


if __name__ == "__main__":
    main()
