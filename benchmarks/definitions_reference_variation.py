"""How much do the diagnostics of the reference network vary with the machine's arithmetic? (the tolerance of
:mod:`ssh_ood.interpret.definitions_check`)

    .venv/bin/python benchmarks/definitions_reference_variation.py [--json OUT]

Computes :func:`ssh_ood.interpret.definitions_check.reference_network_values` once per configuration, each in
its own process (environment variables must be set before torch and numpy load):

- ``default``: torch's and OpenBLAS's default thread counts;
- ``torch-1-thread`` / ``torch-2-threads``: ``torch.set_num_threads``;
- ``blas-1-thread`` / ``blas-2-threads``: ``threadpoolctl.threadpool_limits`` on numpy's/scipy's BLAS (PCA);
- ``openblas-<core>``: ``OPENBLAS_CORETYPE`` = Prescott, Sandybridge, Haswell (numpy's BLAS kernels);
- ``aten-default`` / ``aten-avx2``: ``ATEN_CPU_CAPABILITY`` (torch's vectorized kernels);
- ``onednn-avx2`` / ``onednn-sse41``: ``ONEDNN_MAX_CPU_ISA`` (the convolution kernels);
- ``mkl-avx2``: ``MKL_ENABLE_INSTRUCTIONS`` (torch's matrix products);
- ``no-mkldnn``: ``torch.backends.mkldnn.enabled = False`` (torch's own convolution, another summation order);
- ``batch-5``: the forward passes in batches of 5 instead of one batch (other GEMM shapes and blocking);
- ``float64``: network and input in float64 (outputs still stored as float32): the deviation of the float32
  computation from exact arithmetic, which bounds how far any two float32 kernels can drift apart.

It prints, per diagnostic, the reference (``default``) value and the largest absolute and relative deviation
over all configurations, and the 6-digit fingerprints seen.

Measured on the project's 2-core AMD EPYC (torch 2.13.0+cpu, MKL 2024.2, oneDNN 3.12; numpy 2.4.6 with
OpenBLAS 0.3.31), 2026-12-03, about 15 min. The 6-digit fingerprint is the committed protocol's (bf5b007c...)
for default, torch 1 and 2 threads, BLAS 1 and 2 threads, openblas-Haswell, aten-avx2, onednn-avx2, mkl-avx2
and batch-5, and differs for openblas-Prescott (67bd112a), openblas-Sandybridge (7f19fcd5), aten-default
(e1c8cf2e), onednn-sse41 (b17d80c0), no-mkldnn (bbea2ccd) and float64 (94dde953). Largest deviations from
``default``::

    diagnostic                       default    max |dev|  max rel  worst configuration
    probe_mid_zero_shift             0.0632684  6.4e-05    0.001    aten-default
    probe_mid_bulk_shift             0.265554   6e-05      0.00022  float64
    probe_end_zero_shift             0.693077   5.3e-05    7.7e-05  no-mkldnn
    probe_end_bulk_shift             0.798589   2.2e-05    2.7e-05  no-mkldnn
    probe_remove_zero_modes_shift   -1.03051    2.6e-05    2.5e-05  aten-default
    logit_shift_W0.05                0.780101   2.1e-05    2.7e-05  aten-default
    pca_separation_gap               5.03956    2.2e-05    4.4e-06  aten-default
    logit_scale                      7.73104e-05 1.3e-09   1.7e-05  float64
    pca_drift_gap_W0.05              0.995176   3.8e-06    3.8e-06  aten-default
    other PCA values                            <= 1.7e-06 <= 2.6e-06
    CAM values                                  <= 5.3e-08 <= 2.5e-07
    accuracies, flips, margin_median            0          0

The tolerance of :mod:`ssh_ood.interpret.definitions_check` (5e-4 + 2e-3 |reference|) is derived from these.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS: dict[str, dict] = {
    "default": {},
    "torch-1-thread": {"torch_threads": 1},
    "torch-2-threads": {"torch_threads": 2},
    "blas-1-thread": {"blas_threads": 1},
    "blas-2-threads": {"blas_threads": 2},
    "openblas-Prescott": {"env": {"OPENBLAS_CORETYPE": "Prescott"}},
    "openblas-Sandybridge": {"env": {"OPENBLAS_CORETYPE": "Sandybridge"}},
    "openblas-Haswell": {"env": {"OPENBLAS_CORETYPE": "Haswell"}},
    "aten-default": {"env": {"ATEN_CPU_CAPABILITY": "default"}},
    "aten-avx2": {"env": {"ATEN_CPU_CAPABILITY": "avx2"}},
    "onednn-avx2": {"env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}},
    "onednn-sse41": {"env": {"ONEDNN_MAX_CPU_ISA": "SSE41"}},
    "mkl-avx2": {"env": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}},
    "no-mkldnn": {"mkldnn": False},
    "batch-5": {"batch_size": 5},
    "float64": {"float64": True},
}


def child(config: dict) -> dict[str, float]:
    """The reference values under one configuration (run in a fresh process)."""
    import functools

    import torch
    from threadpoolctl import threadpool_limits

    from ssh_ood.interpret import clustering_utils, diagnostics
    from ssh_ood.interpret.definitions_check import reference_network_values

    if "torch_threads" in config:
        torch.set_num_threads(config["torch_threads"])
    if config.get("mkldnn") is False:
        torch.backends.mkldnn.enabled = False
    if "batch_size" in config:
        diagnostics.network_diagnostics = functools.partial(diagnostics.network_diagnostics,
                                                            batch_size=config["batch_size"])
        clustering_utils.check_batch_size = lambda _size, size=config["batch_size"]: size
    if config.get("float64"):
        from ssh_ood.interpret import cam_utils

        original = cam_utils.as_input_tensor

        def as_float64(x, model):
            model.double()
            return original(x, model).double()

        cam_utils.as_input_tensor = clustering_utils.as_input_tensor = as_float64
    with threadpool_limits(limits=config.get("blas_threads")):
        return reference_network_values()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="also write every configuration's values here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        json.dump(child(CONFIGS[args.child]), sys.stdout)
        return 0
    from ssh_ood.interpret.definitions_check import values_fingerprint

    results = {}
    for name, config in CONFIGS.items():
        env = {**os.environ, **config.get("env", {})}
        done = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True, text=True,
                              check=True)
        results[name] = json.loads(done.stdout)
        print(f"{name:22s} fingerprint {values_fingerprint(results[name])[:12]}", flush=True)
    reference = results["default"]
    print(f"\n{'diagnostic':32s} {'default':>13s} {'max |dev|':>10s} {'max rel':>9s}  worst configuration")
    worst_relative = 0.0
    for diagnostic, value in reference.items():
        deviations = {name: abs(values[diagnostic] - value) for name, values in results.items()}
        worst = max(deviations, key=deviations.get)
        relative = deviations[worst] / abs(value) if value else 0.0
        worst_relative = max(worst_relative, relative if abs(value) > 1e-3 else 0.0)
        print(f"{diagnostic:32s} {value:13.6g} {deviations[worst]:10.2g} {relative:9.2g}  {worst}")
    print(f"\nlargest relative deviation of values above 1e-3 in size: {worst_relative:.2g}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
