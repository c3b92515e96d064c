"""The four highlighted networks, chosen by numbers instead of by eye (docs/physics_and_methods.md §6).

The paper picked four networks from its 100-CNN population: well/poorly generalizing x good/misleading
CAM. Here the two axes are measured:

- generalization: a diagram error between predicted and target phase diagrams; well generalizing iff it
  is <= the cut's threshold (:class:`ssh_ood.ood.generalization.GeneralizationCut`; default MAE <= 0.2, the
  paper's cut on the metric its "RMSE" column behaves like);
- CAM quality: the CAM score of :mod:`ssh_ood.interpret.cam_utils` (share of the above-average topological CAM in the
  edge-state region, mean over clean topological test samples); good iff score >= ``score_cut``. The
  default cut is the population median of the score (no absolute scale exists for "good"; the median
  splits the population into halves and keeps every class populated when the axes are independent). An
  absolute cut can be given instead.

In each of the four classes the most typical model is the one closest to the class's component-wise
median in the plane (error / sd(error), score / sd(score)) (standard deviations over the whole population,
so both axes weigh the same). When a class is empty this is reported and the model nearest to the
class (smallest scaled distance to its quadrant, preferring models not chosen for another class) is
taken instead. The chosen model folders are copied to ``<out>/<category>/`` (by default
``00_demonstrations_data/runs/highlighted``; the paper networks shipped in ``00_demonstrations_data/models``
are replaced only with ``--allow-shipped``) together with a ``provenance.json`` (source folder, index,
error, score, the rule).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..base.file_records import folder_problems, open_folder
from ..base.io_utils import atomic_write_bytes, load_json, save_json
from ..base.paths import HIGHLIGHTED_MODELS_DIR, REPO_ROOT, RUNS_DIR
from ..base.run_folders import hold_folder
from ..nets.model_folders import load_model
from ..ood.generalization_metrics import GeneralizationCut
from ..ood.population_tables import Population
from .cam_utils import (
    EDGE_STATE_REGION,
    EdgeStateRegion,
    cam_scores_per_sample,
    clean_topological_test_set,
    score_correlations,
)

CATEGORIES = ("poorly_misleading", "well_good", "poorly_good", "well_misleading")
CATEGORY_TITLES = {
    "poorly_misleading": "(a) poorly generalizing, misleading CAM",
    "well_good": "(b) well generalizing, good CAM",
    "poorly_good": "(c) poorly generalizing, good CAM",
    "well_misleading": "(d) well generalizing, misleading CAM",
}
MODEL_WEIGHTS_FILE = "weights.pt"
PROVENANCE_FILE = "provenance.json"
#: where highlighted networks go by default (the shipped ones, 00_demonstrations_data/models, need --allow-shipped)
DEFAULT_HIGHLIGHT_DIR = RUNS_DIR / "highlighted"


@dataclass(frozen=True)
class SelectionRule:
    """Cuts that define the four classes.

    Attributes
    ----------
    cut : well generalizing iff the cut's diagram error (default MAE) <= its threshold (default 0.2).
    score_cut : good CAM iff score >= score_cut; None = the population median of the score.
    """

    cut: GeneralizationCut = GeneralizationCut()
    score_cut: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cut, GeneralizationCut):
            raise ValueError(f"cut must be a GeneralizationCut, got {self.cut!r}")
        if self.score_cut is not None and not 0 <= self.score_cut <= 1:
            raise ValueError(f"score_cut must be in [0, 1] or None (population median), got {self.score_cut}")

    def resolved_score_cut(self, scores: np.ndarray) -> float:
        """The score cut used for this population (the median when ``score_cut`` is None)."""
        return float(np.median(scores)) if self.score_cut is None else float(self.score_cut)

    def describe(self, scores: np.ndarray) -> dict:
        """JSON-serializable statement of the rule as applied to ``scores``."""
        metric = self.cut.metric
        return {
            "well_generalizing": f"{metric} <= {self.cut.threshold:g}",
            "good_cam": f"cam_score >= {self.resolved_score_cut(scores):.6g}",
            "score_cut_source": "population median" if self.score_cut is None else "given",
            "typical": f"closest to the class median in ({metric}/sd({metric}), score/sd(score))",
            "empty_class": "nearest model to the class quadrant in the same scaled plane",
            "generalization_cut": self.cut.to_dict(),
            "score_cut": self.resolved_score_cut(scores),
        }


@dataclass(frozen=True)
class HighlightedChoice:
    """The model chosen for one category.

    Attributes
    ----------
    category : one of :data:`CATEGORIES`.
    position : row of the model in the input arrays.
    model_index : the model's index in the population.
    error, score : its diagram error (the rule's cut metric, MAE by default) and CAM score.
    class_size : models of the population in this category (0 = empty class).
    note : how it was chosen.
    """

    category: str
    position: int
    model_index: int
    error: float
    score: float
    class_size: int
    note: str


def _check_arrays(error: Sequence[float], score: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    error = np.asarray(error, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if error.ndim != 1 or error.shape != score.shape or error.size == 0:
        raise ValueError(f"error and score must be non-empty 1-D arrays of equal length, got {error.shape}, {score.shape}")
    if not (np.isfinite(error).all() and np.isfinite(score).all()):
        raise ValueError("error and score must be finite for every model")
    return error, score


def categorize(error: Sequence[float], score: Sequence[float], error_cut: float, score_cut: float) -> np.ndarray:
    """Category name of each model, (n_models,) array of strings from :data:`CATEGORIES`."""
    error, score = _check_arrays(error, score)
    well = np.where(error <= error_cut, "well", "poorly")
    good = np.where(score >= score_cut, "good", "misleading")
    return np.char.add(np.char.add(well, "_"), good)


def _scale(values: np.ndarray) -> float:
    spread = float(np.std(values))
    return spread if spread > 0 else 1.0


def _distance_to_quadrant(category: str, error: np.ndarray, score: np.ndarray, error_cut: float, score_cut: float):
    well, good = category.split("_")
    error_gap = np.clip(error - error_cut, 0, None) if well == "well" else np.clip(error_cut - error, 0, None)
    score_gap = np.clip(score_cut - score, 0, None) if good == "good" else np.clip(score - score_cut, 0, None)
    return np.hypot(error_gap / _scale(error), score_gap / _scale(score))


def select_highlighted(
    error: Sequence[float],
    score: Sequence[float],
    model_indices: Sequence[int] | None = None,
    rule: SelectionRule = SelectionRule(),
) -> dict[str, HighlightedChoice]:
    """Choose the most typical model of each of the four categories.

    Parameters
    ----------
    error, score : (n_models,) diagram error (the rule's cut metric) and CAM score of each model.
    model_indices : population index of each model (default 0..n-1).
    rule : the cuts.

    Returns
    -------
    category -> :class:`HighlightedChoice`, in the order of :data:`CATEGORIES`.
    """
    error, score = _check_arrays(error, score)
    indices = np.arange(error.size) if model_indices is None else np.asarray(model_indices, dtype=np.int64)
    if indices.shape != error.shape:
        raise ValueError(f"model_indices must have {error.size} entries, got {indices.shape}")
    score_cut = rule.resolved_score_cut(score)
    categories = categorize(error, score, rule.cut.threshold, score_cut)
    scaled = np.stack([error / _scale(error), score / _scale(score)], axis=1)
    choices: dict[str, HighlightedChoice] = {}
    taken: set[int] = set()
    populated = [c for c in CATEGORIES if (categories == c).any()]
    for category in populated:
        members = np.flatnonzero(categories == category)
        centre = np.median(scaled[members], axis=0)
        position = int(members[np.argmin(np.linalg.norm(scaled[members] - centre, axis=1))])
        taken.add(position)
        choices[category] = HighlightedChoice(
            category, position, int(indices[position]), float(error[position]), float(score[position]),
            int(members.size), f"most typical of {members.size} models in the class",
        )
    for category in CATEGORIES:
        if category in choices:
            continue
        distance = _distance_to_quadrant(category, error, score, rule.cut.threshold, score_cut)
        free = [p for p in range(error.size) if p not in taken] or list(range(error.size))
        position = int(min(free, key=lambda p: (distance[p], p)))
        taken.add(position)
        choices[category] = HighlightedChoice(
            category, position, int(indices[position]), float(error[position]), float(score[position]), 0,
            f"empty class: no model has {category.replace('_', ' generalizing, ')} CAM; nearest model taken "
            f"(scaled distance {distance[position]:.3g} from the class)",
        )
    return {c: choices[c] for c in CATEGORIES}


def write_highlighted(
    choices: Mapping[str, HighlightedChoice],
    model_dirs: Mapping[int, str | Path],
    out_dir: str | Path,
    rule_description: Mapping,
    extra: Mapping | None = None,
) -> list[Path]:
    """Copy each chosen model folder to ``out_dir/<category>/`` with a ``provenance.json``.

    Parameters
    ----------
    choices : output of :func:`select_highlighted`.
    model_dirs : model index -> its folder in the population.
    out_dir : destination (``00_demonstrations_data/models`` by default in the callers).
    rule_description : the rule as applied (:meth:`SelectionRule.describe`).
    extra : more provenance fields (e.g. the CAM region, the population folder).

    Returns
    -------
    The category folders. Each is first assembled in a temporary folder and then swapped in, so an
    interrupted run never leaves a half-copied category.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for category, choice in choices.items():
        if choice.model_index not in model_dirs:
            raise ValueError(f"write_highlighted: no folder given for model index {choice.model_index}")
        source = Path(model_dirs[choice.model_index])
        if not (source / MODEL_WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{source / MODEL_WEIGHTS_FILE}: no such file (model {choice.model_index})")
        problems = folder_problems(source)  # every file copied verifies against the source's record (copied too)
        if problems:
            raise ValueError(problems[0])
        staging = out_dir / f".{category}.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(source, staging)
        save_json(
            staging / PROVENANCE_FILE,
            {
                **asdict(choice),
                "source_folder": str(source.resolve()),
                "rule": dict(rule_description),
                **(dict(extra) if extra else {}),
            },
        )
        final = out_dir / category
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        written.append(final)
    return written


def discover_models(models_dir: str | Path) -> list[tuple[str, Path]]:
    """Model folders (holding ``weights.pt``) directly under ``models_dir``, as (name, path).

    The four categories come first in the order of :data:`CATEGORIES`, then any other folder by name.
    Raises ``FileNotFoundError`` when the folder is missing or holds no model.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise FileNotFoundError(f"{models_dir}: models folder not found")
    found = {p.name: p for p in models_dir.iterdir() if p.is_dir() and (p / MODEL_WEIGHTS_FILE).is_file()}
    if not found:
        raise FileNotFoundError(f"{models_dir}: no model folder (a subfolder holding {MODEL_WEIGHTS_FILE})")
    order = [c for c in CATEGORIES if c in found] + sorted(set(found) - set(CATEGORIES))
    return [(name, found[name]) for name in order]


def population_cam_scores(
    model_dirs: Mapping[int, str | Path],
    data_dir: str | Path,
    region: EdgeStateRegion = EDGE_STATE_REGION,
    batch_size: int = 256,
    progress: bool = True,
) -> pd.DataFrame:
    """CAM score of every model (last-epoch weights) on the clean topological test samples.

    Returns
    -------
    DataFrame with columns ``model_index``, ``cam_score`` (mean over samples), ``cam_score_std``.
    """
    clean = clean_topological_test_set(data_dir)
    rows = []
    for index, folder in tqdm(sorted(model_dirs.items()), desc="CAM scores", disable=not progress):
        per_sample = cam_scores_per_sample(load_model(folder), clean["X"], region, batch_size)
        rows.append({"model_index": int(index), "cam_score": float(per_sample.mean()), "cam_score_std": float(per_sample.std())})
    return pd.DataFrame(rows, columns=["model_index", "cam_score", "cam_score_std"])


@dataclass
class HighlightResult:
    """Outcome of a selection over a population.

    Attributes
    ----------
    table : one row per model: ``model_index``, the generalization metrics, ``cam_score``,
        ``cam_score_std`` and ``category``.
    correlations : metric -> Pearson/Spearman of the CAM score with it (:func:`score_correlations`).
    choices : category -> :class:`HighlightedChoice`.
    score_cut : the score cut used.
    rule : the rule as applied (:meth:`SelectionRule.describe`).
    """

    table: pd.DataFrame
    correlations: dict
    choices: dict[str, HighlightedChoice]
    score_cut: float
    rule: dict


def highlight_models(
    metrics: pd.DataFrame,
    model_dirs: Mapping[int, str | Path],
    data_dir: str | Path,
    out_dir: str | Path = DEFAULT_HIGHLIGHT_DIR,
    rule: SelectionRule = SelectionRule(),
    metric_columns: Sequence[str] = ("mae", "rmse", "ood_accuracy"),
    region: EdgeStateRegion = EDGE_STATE_REGION,
    batch_size: int = 256,
    progress: bool = True,
    source: str = "",
) -> HighlightResult:
    """Score every model's CAM, relate the score to generalization, choose and write the four networks.

    Parameters
    ----------
    metrics : one row per model with a ``model_index`` column, the rule's cut metric and the other
        ``metric_columns``.
    model_dirs : model index -> model folder (weights.pt, config.json, phase_diagram.npz, ...).
    data_dir : datasets folder (the clean test set gives the CAM score).
    out_dir : where ``<category>/`` folders, ``cam_scores.csv`` and ``selection.json`` are written.
    source : description of the population (stored in the provenance).
    """
    error = rule.cut.metric
    columns = list(dict.fromkeys((error, *metric_columns)))
    missing = [c for c in ("model_index", *columns) if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics table lacks columns {missing}; has {list(metrics.columns)}")
    with hold_folder(out_dir):  # before the CAM scores: a busy, unwritable or shipped folder fails at once
        open_folder(out_dir, {"kind": "highlighted"})
        return _highlight_models(metrics, model_dirs, data_dir, Path(out_dir), rule, columns, region, batch_size,
                                 progress, source)


def _highlight_models(metrics, model_dirs, data_dir, out_dir, rule, columns, region, batch_size, progress,
                      source) -> HighlightResult:
    error = rule.cut.metric
    scores = population_cam_scores(model_dirs, data_dir, region, batch_size, progress)
    table = metrics[["model_index", *columns]].merge(scores, on="model_index")
    if len(table) != len(scores):
        raise ValueError("metrics table and model folders do not cover the same model indices")
    score_cut = rule.resolved_score_cut(table["cam_score"].to_numpy())
    table["category"] = categorize(table[error], table["cam_score"], rule.cut.threshold, score_cut)
    correlations = score_correlations(table["cam_score"], {c: table[c] for c in columns})
    choices = select_highlighted(table[error], table["cam_score"], table["model_index"], rule)
    described = rule.describe(table["cam_score"].to_numpy())
    extra = {"region": region.to_dict(), "population": source, "data_dir": str(data_dir)}
    write_highlighted(choices, model_dirs, out_dir, described, extra)
    out_dir = Path(out_dir)
    atomic_write_bytes(out_dir / "cam_scores.csv", table.to_csv(index=False).encode())
    quantiles = table["cam_score"].quantile([0, 0.25, 0.5, 0.75, 1]).to_numpy()
    save_json(
        out_dir / "selection.json",
        {
            "rule": described,
            **extra,
            "n_models": len(table),
            "class_sizes": {c: int((table["category"] == c).sum()) for c in CATEGORIES},
            "cam_score_quantiles": dict(zip(("min", "q25", "median", "q75", "max"), quantiles.tolist(), strict=True)),
            "chance_level": region.area_fraction,
            "correlations": correlations,
            "choices": {c: asdict(choice) for c, choice in choices.items()},
        },
    )
    return HighlightResult(table, correlations, choices, score_cut, described)


def highlight_population(
    population: Population,
    data_dir: str | Path,
    out_dir: str | Path = DEFAULT_HIGHLIGHT_DIR,
    rule: SelectionRule = SelectionRule(),
    batch_size: int = 256,
    progress: bool = True,
) -> HighlightResult:
    """:func:`highlight_models` on a loaded population (:func:`ssh_ood.ood.population_tables.load_population`), with the
    RMSE and the out-of-distribution accuracy of its stats table."""
    model_dirs = {index: population.model_dir(index) for index in population.indices}
    return highlight_models(
        population.stats, model_dirs, data_dir, out_dir, rule, ("mae", "rmse", "ood_accuracy"),
        batch_size=batch_size, progress=progress, source=str(population.folder),
    )


def category_title(name: str, folder: str | Path | None = None) -> str:
    """Panel title of a model folder: the category's title (or the folder name), marked when its
    ``provenance.json`` says the class was empty and the nearest model stands in for it."""
    title = CATEGORY_TITLES.get(name, name)
    provenance = Path(folder) / PROVENANCE_FILE if folder is not None else None
    if provenance is not None and provenance.is_file() and load_json(provenance).get("class_size") == 0:
        title += " [class empty: nearest model]"
    return title


def chosen_models_dir(models_dir: str | Path, population_dir: str | Path) -> Path | None:
    """Where the four networks notebook 03 chose are, for notebook 04 (and anything after it) to read.

    ``models_dir`` if it holds networks (notebook 03 writes its choice there); otherwise the shipped paper networks
    (:data:`ssh_ood.base.paths.HIGHLIGHTED_MODELS_DIR`) if their ``selection.json`` says they were chosen from
    ``population_dir`` (the shipped 100-CNN population of the paper preset); otherwise ``None``: the selection has
    to run (:func:`highlight_population`).
    """
    if any(Path(models_dir).glob(f"*/{MODEL_WEIGHTS_FILE}")):
        return Path(models_dir)
    selection = HIGHLIGHTED_MODELS_DIR / "selection.json"
    if selection.is_file() and (REPO_ROOT / load_json(selection)["population"]).resolve() == Path(population_dir).resolve():
        return HIGHLIGHTED_MODELS_DIR
    return None
