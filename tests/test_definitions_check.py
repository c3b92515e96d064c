"""The frozen protocol's definitions check (src/ssh_ood/interpret/definitions_check.py): the committed protocol passes on
this machine with its own reference values, a real change of a definition is caught and named, and the
tolerance separates float noise from definition changes."""

from __future__ import annotations

import json
import math

import pytest

from ssh_ood.base.io_utils import load_json
from ssh_ood.base.paths import DEMO_DIR
from ssh_ood.interpret import definitions_check as dc

PROTOCOL = DEMO_DIR / "diagnostics_protocol.json"


def test_the_committed_reference_values_are_those_the_protocol_was_frozen_with():
    protocol = load_json(PROTOCOL)
    assert "definitions_reference" not in protocol  # the frozen file is unchanged: it holds only the fingerprint
    values = dc.reference_values(protocol)
    assert dc.values_fingerprint(values) == protocol["definitions_fingerprint"]
    assert set(protocol["expected_signs"]) - {"test_accuracy", "best_val_loss", "final_val_loss", "final_train_loss",
                                              "final_val_accuracy", "epochs_run"} <= set(values)


def test_reference_values_refuse_an_entry_that_does_not_hash_to_its_fingerprint(tmp_path):
    protocol = load_json(PROTOCOL)
    stored = load_json(dc.REFERENCE_FILE)
    entry = stored["references"][protocol["definitions_fingerprint"]]
    entry["values"]["margin_median"] *= 1.01
    (tmp_path / "reference.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="do not hash to that fingerprint"):
        dc.reference_values(protocol, tmp_path / "reference.json")
    with pytest.raises(ValueError, match="cannot be checked"):
        dc.reference_values({"definitions_fingerprint": "0" * 64})


def test_definition_changes_apply_the_tolerance_per_diagnostic():
    reference = {"a": 0.25, "b": 7e-05, "c": 0.0, "gone": 1.0}
    within = {"a": 0.25 * (1 + 0.5 * dc.RTOL), "b": 7e-05 + 0.5 * dc.ATOL, "c": 0.5 * dc.ATOL}
    assert dc.definition_changes(reference, {**within, "gone": 1.0}) == []
    moved = dc.definition_changes(reference, {"a": 0.3, "b": math.nan, "c": 1 / 24, "new": 1.0})
    assert moved == ["gone missing now (reference 1)", "new is new (not in the reference)",
                     "a: 0.25 -> 0.3 (change +0.05, 20.00% relative)", "b: 7e-05 -> nan (change +nan, nan% relative)",
                     "c: 0 -> 0.0416667 (change +0.0417, inf% relative)"]


def test_the_committed_protocol_passes_here_and_a_changed_definition_is_named(monkeypatch):
    """The real check on the real reference network (no stub): the committed protocol passes; changing the
    probes' decay (0.5 -> 0.6) moves the probe shifts by far more than the tolerance and is refused."""
    protocol = load_json(PROTOCOL)
    values = dc.reference_network_values()
    dc.check_definitions(protocol, values)
    from ssh_ood.physics import interventions

    monkeypatch.setattr(interventions, "DEFAULT_DECAY", 0.6)
    monkeypatch.setattr(interventions.probe_responses, "__defaults__", (0.6,))
    changed = dc.reference_network_values()
    moved = dc.definition_changes(dc.reference_values(protocol), changed)
    assert moved and all(line.startswith("probe_") for line in moved)
    with pytest.raises(ValueError, match=r"definitions changed since the protocol was frozen \(\d+ of 35 .*probe_"):
        dc.check_definitions(protocol, changed)
    reference = dc.reference_values(protocol)
    for name in (n for n in values if changed[n] != values[n]):  # the tolerance stays well below a real change
        assert abs(changed[name] - reference[name]) > 10 * (dc.ATOL + dc.RTOL * abs(reference[name])), name


def _planted_margin_and_scale(logits: dict, labels):
    """The margins and scale of :func:`ssh_ood.interpret.diagnostics.sensitivity_diagnostics` with three plausible
    one-line changes of their definitions: the sample standard deviation (ddof = 1), the mean margin instead of
    the median, and the 20 % instead of the 10 % quantile."""
    import numpy as np

    delta = logits[0.0][:, 1] - logits[0.0][:, 0]
    margin = delta * (2 * labels - 1)
    return {"logit_scale": float(np.std(delta, ddof=1)), "margin_median": float(np.mean(margin)),
            "margin_q10": float(np.quantile(margin, 0.2))}


def test_the_tolerance_lets_a_reference_with_spread_logits_see_the_margin_and_scale_definitions():
    """``logit_scale`` and ``margin_median`` of the frozen reference network (an untrained network, logit spread
    ~8e-5) lie below ATOL, so a change of their definitions cannot show in them there (only through the probe
    shifts, which divide by the scale). Their check is only as sensitive as the reference is spread: on logits
    with a non-degenerate spread (seeded, O(1) in logit units, both classes), every reference value lies far
    above the tolerance and each planted one-line change of the definitions is named."""
    import numpy as np

    from ssh_ood.interpret.diagnostics import sensitivity_diagnostics

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 12)
    centre = np.where(labels == 1, 1.5, -1.5)
    logits = {}
    for W, noise in ((0.0, 0.0), (0.01, 0.05), (0.05, 0.2)):
        delta = centre + rng.normal(0.0, 1.0, labels.size) + noise * rng.normal(size=labels.size)
        logits[W] = np.stack([-delta / 2, delta / 2], axis=1)
    reference = sensitivity_diagnostics(logits, labels)
    for name in ("logit_scale", "margin_median", "margin_q10"):
        assert abs(reference[name]) > 10 * (dc.ATOL + dc.RTOL * abs(reference[name])), name
    planted = {**reference, **_planted_margin_and_scale(logits, labels)}
    moved = dc.definition_changes(reference, planted)
    assert [line.partition(":")[0] for line in moved] == ["logit_scale", "margin_median", "margin_q10"]
    assert dc.definition_changes(reference, dict(reference)) == []
