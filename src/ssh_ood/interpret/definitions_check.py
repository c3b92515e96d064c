"""Have the diagnostics' definitions changed since a protocol was frozen? Reference values and a tolerance.

A frozen protocol (:mod:`ssh_ood.interpret.generalization_prediction`) is only meaningful if the validation
computes the *same* diagnostics as the discovery did. The check runs every diagnostic on a fixed reference
network (a ``CNN_SSH`` initialized from ``torch.manual_seed(0)``, BatchNorm statistics from one seeded
training-mode pass) and fixed data (``REFERENCE_SAMPLES`` test chains at each W of
:data:`ssh_ood.interpret.diagnostics.DIAGNOSTIC_W`, seed 0), :func:`reference_network_values`, and compares
the values with stored reference values.

Exact comparison (the first protocol stored a SHA-256 of the values at 6 significant digits,
:func:`values_fingerprint`) measures the machine, not the definitions: the reference network is untrained,
its logit difference is almost constant (about -0.22 with a spread of 8e-5), and several diagnostics are
small differences or ratios of such numbers (``margin_median`` ~ 7e-5 is the mean of +0.22 and -0.22;
the probe shifts are divided by the spread), so float32 rounding of the BLAS/oneDNN kernel in use moves
them in the 4th to 6th digit. The comparison is therefore ``|value - reference| <= ATOL + RTOL |reference|``
per diagnostic, with the tolerance justified by ``benchmarks/definitions_reference_variation.py``, which
recomputes the values under 16 configurations (torch 1 or 2 threads, BLAS 1 or 2 threads, OPENBLAS_CORETYPE
Prescott/Sandybridge/Haswell, ATEN_CPU_CAPABILITY default/avx2, ONEDNN_MAX_CPU_ISA AVX2/SSE41, MKL AVX2,
torch's own convolution instead of oneDNN, batches of 5, a float64 forward pass). Measured 2026-12-03 on the
project's 2-core AMD EPYC (torch 2.13.0+cpu): 7 different fingerprints among the 16, so exact comparison
fails; the largest deviations are 6.4e-5 absolute (``probe_mid_zero_shift`` = 0.0633, 1.0e-3 relative) and
2.2e-4 relative on a larger value (``probe_mid_bulk_shift`` = 0.266); every fraction of chains (accuracies,
flips) and ``margin_median`` is identical in all 16; CAM and PCA values move by < 5e-6 relative. The
tolerance, :data:`ATOL` + :data:`RTOL` |reference| (5e-4 + 2e-3 |reference|), is at least 10 times these,
and a real change of one definition the tests make (the probes' decay 0.5 -> 0.6) moves four probe shifts by
0.037 to 0.16, 25 to 120 times their tolerance. Limits: ``logit_scale`` and ``margin_median`` (~7e-5, logit
units) lie below :data:`ATOL`, so their check is weak; every shift is divided by ``logit_scale``, so a change
of its definition shows in them. The reference network always runs on the CPU.

The committed protocol ``00_demonstrations_data/diagnostics_protocol.json`` holds the fingerprint only.
Its reference values were added afterwards, in the separate file :data:`REFERENCE_FILE`, keyed by the
fingerprint; :func:`reference_values` accepts them only if their 6-digit hash *is* that fingerprint, so
they are provably the values the protocol was frozen with. New protocols store the values themselves
(``definitions_reference``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

from ..base.io_utils import load_json
from ..base.paths import DEMO_DIR

REFERENCE_SAMPLES = 24
#: reference values of protocols that store only a fingerprint: {"note", "references": {fingerprint: {"values"}}}
REFERENCE_FILE = DEMO_DIR / "diagnostics_protocol_reference.json"
#: relative tolerance: about 10 x the largest relative deviation measured on a value not dominated by absolute
#: noise (2.2e-4, ``probe_mid_bulk_shift``, float32 against a float64 forward pass; all others <= 7.7e-5)
RTOL = 2e-3
#: absolute tolerance: about 8 x the largest absolute deviation measured (6.4e-5, ``probe_mid_zero_shift``, in
#: units of the logit spread, ATEN_CPU_CAPABILITY=default); far below a change of one chain in 24 (0.042) and
#: below the smallest change a real definition change makes in the tests (0.037)
ATOL = 5e-4


def reference_network_values(n_samples: int = REFERENCE_SAMPLES) -> dict[str, float]:
    """Every model-dependent diagnostic on the fixed reference network and data set (see module docstring).

    Returns name -> value, sorted by name. Deterministic for a given machine and thread setting; across
    machines it varies within :data:`RTOL` / :data:`ATOL`.
    """
    import torch

    from ..nets.architecture import CNN_SSH
    from ..physics.data_generation import generate_dataset
    from .diagnostics import DIAGNOSTIC_W, CleanData, network_diagnostics

    sets = {}
    for W in DIAGNOSTIC_W:
        data = generate_dataset("test", n_samples, W, seed=0)
        sets[W] = {"X": data["X"], "labels": data["labels"], "v": data["v"]}
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        model = CNN_SSH().train()
        model(torch.from_numpy(sets[0.0]["X"])[:, None])  # BatchNorm running statistics from the data (seeded dropout)
    values = network_diagnostics(model.eval(), CleanData(sets))
    return {name: float(values[name]) for name in sorted(values)}


def values_fingerprint(values: Mapping[str, float]) -> str:
    """SHA-256 of the values rounded to 6 significant digits (the first protocol's record of its definitions)."""
    text = json.dumps({name: float(f"{value:.6g}") for name, value in sorted(values.items())})
    return hashlib.sha256(text.encode()).hexdigest()


def reference_values(protocol: Mapping, reference_file: str | Path | None = None) -> dict[str, float]:
    """The reference values a protocol was frozen with.

    ``protocol["definitions_reference"]`` if present; otherwise the entry of ``reference_file`` (default
    :data:`REFERENCE_FILE`, ``{"note", "references": {fingerprint: {"values": {...}}}}``) under
    ``protocol["definitions_fingerprint"]``, accepted only if the values hash to that fingerprint.
    ``ValueError`` if neither exists or the hash differs.
    """
    if "definitions_reference" in protocol:
        return {name: float(value) for name, value in protocol["definitions_reference"].items()}
    fingerprint = protocol.get("definitions_fingerprint")
    path = Path(reference_file or REFERENCE_FILE)
    entry = load_json(path)["references"].get(fingerprint) if fingerprint and path.is_file() else None
    if entry is None:
        raise ValueError(f"the protocol stores neither definitions_reference nor a fingerprint with reference values "
                         f"in {path}: its definitions cannot be checked")
    values = {name: float(value) for name, value in entry["values"].items()}
    if values_fingerprint(values) != fingerprint:
        raise ValueError(f"{path}: the reference values under {fingerprint[:12]}... do not hash to that fingerprint")
    return values


def definition_changes(reference: Mapping[str, float], values: Mapping[str, float], rtol: float = RTOL,
                       atol: float = ATOL) -> list[str]:
    """One line per diagnostic outside ``|value - reference| <= atol + rtol |reference|``, or missing/new.

    Each line names the diagnostic, both values, the absolute and the relative change; empty if all agree.
    """
    moved = [f"{name} missing now (reference {reference[name]:.6g})" for name in sorted(set(reference) - set(values))]
    moved += [f"{name} is new (not in the reference)" for name in sorted(set(values) - set(reference))]
    for name in sorted(set(reference) & set(values)):
        old, new = reference[name], values[name]
        if not abs(new - old) <= atol + rtol * abs(old):  # also catches NaN
            relative = abs(new - old) / abs(old) if old else math.inf
            moved.append(f"{name}: {old:.6g} -> {new:.6g} (change {new - old:+.3g}, {relative:.2%} relative)")
    return moved


def check_definitions(protocol: Mapping, values: Mapping[str, float] | None = None) -> None:
    """``ValueError`` naming every diagnostic that moved beyond the tolerance since the protocol was frozen.

    ``values``: the current :func:`reference_network_values` (computed if None).
    """
    reference = reference_values(protocol)
    moved = definition_changes(reference, reference_network_values() if values is None else values)
    if moved:
        raise ValueError(f"the diagnostics' definitions changed since the protocol was frozen ({len(moved)} of "
                         f"{len(reference)} values on the reference network moved beyond {RTOL:g} relative + "
                         f"{ATOL:g}): " + "; ".join(moved))
