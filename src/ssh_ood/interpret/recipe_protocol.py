"""The frozen protocol of the recipe study: which recipe, how many networks, what outcome, written before any OOD look.

``00_demonstrations_data/recipes_protocol.json`` names the main recipe and the others to validate, the
population sizes (>= 50 main, >= 20 each other), the master seed (2; the second study, whose protocol is drafted
in ``recipes_seed3_protocol_draft.json``, takes 3) and preset (paper) of the validation populations, the committee
rule (clean-data selection, or every network), and the predicted outcome, and fingerprints the recipes' settings
(:func:`recipes_fingerprint`) so that a recipe changed after freezing is refused. :func:`check_protocol` checks
the file; :func:`protocol_outcomes` scores the predictions once the populations exist (the only place their
OOD results meet the protocol).

Selection is clean-data only: :func:`committee_members` chooses networks by a column of ``diagnostics.csv``
(:mod:`ssh_ood.interpret.diagnostics`, W <= 0.05 by construction) and refuses anything else, such as an OOD
metric of ``stats.csv``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..base.validation import is_integer
from ..nets.recipes import RECIPES
from .diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS

PROTOCOL_FILE = "recipes_protocol.json"
MASTER_SEED = 2
#: master seeds of validation populations: fresh seeds, never used for development (0) or the paper recipe's
#: shipped populations (0, 1); each validation study takes the next one
VALIDATION_SEEDS = (MASTER_SEED, 3)
PRESET = "paper"
MIN_MAIN, MIN_OTHER = 50, 20
#: the outcomes a prediction may name, computed by :func:`population_outcomes` (and the committee's accuracy);
#: ``median_accuracy_W0-0.5``: the median over networks of the accuracy in the W < 0.5 band
OUTCOMES = ("median_ood_accuracy", "fraction_mae_le_0.2", "min_ood_accuracy", "median_test_accuracy",
            "committee_ood_accuracy", "spearman_probe_ood", "median_accuracy_W0-0.5")
_REQUIRED = ("frozen", "preset", "master_seed", "main_recipe", "populations", "committee", "predictions",
             "recipes_fingerprint", "comparison_populations")


def recipes_fingerprint(names: list[str] | None = None) -> str:
    """SHA-256 of the recorded settings (:meth:`Recipe.record`) of the named recipes (default: all)."""
    names = sorted(RECIPES) if names is None else sorted(names)
    text = json.dumps({name: RECIPES[name].record() for name in names}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def check_protocol(protocol: Mapping) -> None:
    """``ValueError`` naming every way ``protocol`` breaks the protocol's rules (nothing if it keeps them)."""
    problems = [f"missing field {key!r}" for key in _REQUIRED if key not in protocol]
    if problems:
        raise ValueError(f"recipes protocol: {'; '.join(problems)}")
    if protocol["preset"] != PRESET or protocol["master_seed"] not in VALIDATION_SEEDS:
        problems.append(f"validation populations use preset {PRESET!r} and master seed "
                        f"{' or '.join(map(str, VALIDATION_SEEDS))}, not {protocol['preset']!r} and {protocol['master_seed']}")
    populations = protocol["populations"]
    main = protocol["main_recipe"]
    if main not in populations:
        problems.append(f"main recipe {main!r} has no population")
    for name, population in populations.items():
        if name not in RECIPES:
            problems.append(f"unknown recipe {name!r}")
            continue
        least = MIN_MAIN if name == main else MIN_OTHER
        if not is_integer(population.get("n_models")) or population["n_models"] < least:
            problems.append(f"recipe {name!r}: n_models must be an integer >= {least}, got {population.get('n_models')!r}")
    known = [name for name in populations if name in RECIPES]
    if protocol["recipes_fingerprint"] != recipes_fingerprint(known):
        problems.append("the recipes' settings changed since the protocol was frozen (fingerprint differs)")
    committee = protocol["committee"]
    every_network = committee.get("members") == "all"  # no selection: a vote of the whole population
    if not every_network and (committee.get("diagnostic") not in DIAGNOSTIC_COLUMNS
                              or committee.get("direction") not in ("low", "high")):
        problems.append(f"committee must choose by a clean-data diagnostic, low or high, or take every network "
                        f"(members 'all'); got {committee!r}")
    for recipe, predictions in protocol["predictions"].items():
        if recipe not in populations:
            problems.append(f"prediction for recipe {recipe!r}, which has no population")
        for outcome, bound in predictions.items():
            if outcome not in OUTCOMES or bound.get("op") not in (">=", "<=") or not isinstance(bound.get("value"), (int, float)):
                problems.append(f"prediction {recipe}/{outcome}: need an outcome of {OUTCOMES} and "
                                "{'op': '>=' or '<=', 'value': number}")
    if problems:
        raise ValueError(f"recipes protocol: {'; '.join(problems)}")


def committee_members(diagnostics: pd.DataFrame, diagnostic: str, direction: str, k: int) -> list[int]:
    """``model_index`` of the k networks with the lowest (``direction="low"``) or highest value of a diagnostic.

    Only columns of ``diagnostics.csv`` (clean and perturbative data, W <= 0.05) may choose: any other
    column (an OOD metric, say) raises ``ValueError``.
    """
    if diagnostic not in DIAGNOSTIC_COLUMNS or diagnostic == "model_index":
        raise ValueError(f"selection may use clean-data diagnostics only; {diagnostic!r} is not a column of diagnostics.csv")
    if direction not in ("low", "high"):
        raise ValueError(f"direction must be 'low' or 'high', got {direction!r}")
    if not 1 <= k <= len(diagnostics):
        raise ValueError(f"k must be between 1 and {len(diagnostics)}, got {k}")
    ordered = diagnostics.sort_values(diagnostic, ascending=direction == "low", kind="stable")
    return [int(i) for i in ordered["model_index"].iloc[:k]]


def population_outcomes(stats: pd.DataFrame, diagnostics: pd.DataFrame | None = None,
                        recalls: pd.DataFrame | None = None) -> dict[str, float]:
    """Median OOD accuracy, fraction with MAE <= 0.2, lowest OOD accuracy, median clean test accuracy of a
    population's ``stats.csv``; with its diagnostics, Spearman of ``probe_mid_bulk_shift`` with OOD accuracy; with
    its band accuracies (``population_recall_by_band``), ``median_accuracy_W<band>`` for each band."""
    out = {
        "n_models": float(len(stats)),
        "median_ood_accuracy": float(stats["ood_accuracy"].median()),
        "fraction_mae_le_0.2": float((stats["mae"] <= 0.2).mean()),
        "min_ood_accuracy": float(stats["ood_accuracy"].min()),
        "median_test_accuracy": float(stats["test_accuracy"].median()),
    }
    if diagnostics is not None:
        merged = stats.merge(diagnostics[["model_index", "probe_mid_bulk_shift"]], on="model_index")
        out["spearman_probe_ood"] = float(merged["probe_mid_bulk_shift"].rank().corr(merged["ood_accuracy"].rank()))
    if recalls is not None:
        out.update({f"median_{column}": float(recalls[column].median()) for column in recalls.columns
                    if column.startswith("accuracy_W")})
    return out


def _bound_held(observed: float, op: str, value: float) -> bool | None:
    """Whether ``observed op value`` holds (``op`` is ">=" or "<="); None if ``observed`` is not measured (NaN)."""
    if not np.isfinite(observed):
        return None
    return bool(observed >= value if op == ">=" else observed <= value)


def protocol_outcomes(protocol: Mapping, outcomes: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Each prediction of the protocol against the observed ``outcomes[recipe][outcome]``: one row each, with
    ``observed`` (NaN if not yet measured) and ``held`` (None if not yet measured)."""
    check_protocol(protocol)
    rows = []
    for recipe, predictions in protocol["predictions"].items():
        for outcome, bound in predictions.items():
            observed = outcomes.get(recipe, {}).get(outcome, np.nan)
            held = _bound_held(observed, bound["op"], bound["value"])
            rows.append({"recipe": recipe, "outcome": outcome, "predicted": f"{bound['op']} {bound['value']}",
                         "observed": observed, "held": held})
    return pd.DataFrame(rows)


def goals_table(protocol: Mapping, outcomes: Mapping[str, float]) -> pd.DataFrame:
    """The issue's goals (``protocol["goals"]``, e.g. ``{"median_ood_accuracy": ">= 0.90"}``) against one
    recipe's observed ``outcomes``: one row per goal with ``goal``, ``target``, ``observed`` (NaN if not
    measured) and ``met`` (None if not measured); no rows for a protocol without goals."""
    rows = []
    for outcome, text in protocol.get("goals", {}).items():
        op, _, value = str(text).partition(" ")
        try:
            target = float(value)
        except ValueError:
            target = None
        if op not in (">=", "<=") or target is None:
            raise ValueError(f"goal {outcome!r} must read '>= x' or '<= x' with a number x, got {text!r}")
        observed = float(outcomes.get(outcome, np.nan))
        rows.append({"goal": outcome, "target": text, "observed": observed, "met": _bound_held(observed, op, target)})
    return pd.DataFrame(rows, columns=["goal", "target", "observed", "met"])
