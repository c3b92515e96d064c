#!/usr/bin/env python
"""Interpretability analysis of a set of trained networks: CAMs (Fig. 2) or activation clustering
(PCA, Fig. 4; UMAP, Figs. 12-13).

By default it analyses the four highlighted networks in ``00_demonstrations_data/models/<category>/``
(chosen by ``python -m ssh_ood highlight``); any folder of model folders (each holding ``weights.pt`` and
``config.json``) works with ``--models-dir``. Per-model results go to ``--out/<model>/cam/`` or
``--out/<model>/{pca,umap}/``; figures (PDF + PNG) to ``--figures``. Clustering results already saved
for the same weights, data and settings are loaded instead of recomputed (notebook 04 reuses them too).

Examples
--------
    python 04a_figure_models_analysis.py --CAM 1 --preset quick
    python 04a_figure_models_analysis.py --CAM 0 --perturb 1 --exclude_transition 0 --preset quick

Exit status: 0 on success, 2 on bad arguments, missing models or missing/malformed files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from ssh_ood.base.paths import DEMO_DIR, FIGURES_DIR, HIGHLIGHTED_MODELS_DIR, datasets_dir
from ssh_ood.base.presets import PRESET_NAMES, get_preset

DEFAULT_OUT = DEMO_DIR / "analysis"
FIG4_ROWS = ("well_misleading", "poorly_good")  # rows of Fig. 4 and the networks of Figs. 12 and 13


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 on success, 2 on bad arguments or missing models/files.",
    )
    parser.add_argument(
        "--CAM", type=int, choices=(0, 1), default=1,
        help="1: class activation maps, CAM score and Fig. 2; 0: activations of every layer with PCA (Fig. 4) "
        "and UMAP (Figs. 12-13) (default: 1)",
    )
    parser.add_argument(
        "--perturb", type=int, choices=(0, 1), default=1,
        help="1: the reference ('clean') set is the clean test set plus the weak-disorder W = 0.01, 0.05 test "
        "sets, as in the paper; it is what PCA is fit on (--CAM 0) and what the averaged CAMs average over "
        "(--CAM 1); 0: the clean test set alone (default: 1). The CAM score always uses the clean set.",
    )
    parser.add_argument(
        "--exclude_transition", type=int, choices=(0, 1), default=0,
        help="1: leave out the transition window, the central 20%% of each v-ordered test set (v ~ 0.8-1.2), "
        "from PCA and UMAP (only with --CAM 0) (default: 0)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="samples per forward pass (default: 256)")
    parser.add_argument(
        "--models-dir", type=Path, default=HIGHLIGHTED_MODELS_DIR,
        help="folder of model folders, each with weights.pt and config.json "
        f"(default: the highlighted networks, {HIGHLIGHTED_MODELS_DIR.relative_to(DEMO_DIR.parent)})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"folder for the per-model results (default: {DEFAULT_OUT.relative_to(DEMO_DIR.parent)})",
    )
    parser.add_argument(
        "--figures", type=Path, default=FIGURES_DIR,
        help=f"folder for the figures, PDF + PNG (default: {FIGURES_DIR.relative_to(DEMO_DIR.parent)})",
    )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="seed of the datasets when they must be generated, and random_state of PCA and UMAP (default: 0)",
    )
    parser.add_argument(
        "--preset", choices=PRESET_NAMES, default="quick",
        help="run size: which datasets and the UMAP n_neighbors (default: quick)",
    )
    parser.add_argument(
        "--data", type=Path, default=None,
        help="datasets folder (default: 00_demonstrations_data/datasets/<preset>); generated if missing",
    )
    parser.add_argument(
        "--sample-v", type=float, default=0.5,
        help="Fig. 2 shows the clean topological test sample with v nearest to this (default: 0.5)",
    )
    parser.add_argument(
        "--umap", type=int, choices=(0, 1), default=1,
        help="1: with --CAM 0 also compute UMAP (the slow part, ~40 s per network for the five layers at the "
        "quick preset's sizes) for the two networks of Figs. 12-13: well_misleading and poorly_good, or the first "
        "two folders (default: 1)",
    )
    parser.add_argument(
        "--umap-pca", type=int, default=0,
        help="N > 0: run UMAP on the first N principal components of each layer (faster, approximate); "
        "0: on the activations themselves (default: 0)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming the first invalid argument."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.umap_pca < 0:
        raise ValueError(f"--umap-pca must be >= 0, got {args.umap_pca}")
    if not 0 < args.sample_v < 1:
        raise ValueError(f"--sample-v must lie in the topological window (0, 1), got {args.sample_v}")


def load_models(models_dir: Path) -> list[tuple[str, Path, object]]:
    """(name, folder, model) of every model folder under ``models_dir``, in category order."""
    from ssh_ood.interpret.highlighted_models import discover_models
    from ssh_ood.nets.model_folders import load_model

    loaded = []
    for name, folder in discover_models(models_dir):
        model = load_model(folder, which="last", device="cpu")
        if model.in_channels != 1:
            raise ValueError(f"{folder}: thermometer-encoded models are not supported by this script")
        loaded.append((name, folder, model))
    return loaded


def read_phase_diagrams(models: Sequence[tuple[str, Path, object]]):
    """(W, v, target, {name: predicted}) from each model's phase_diagram.npz, or None if any is missing."""
    from ssh_ood.base.io_utils import load_npz

    loaded = {}
    for name, folder, _ in models:
        path = folder / "phase_diagram.npz"
        if not path.is_file():
            print(f"note: {path} missing; Fig. 2 is drawn without its phase-diagram row")
            return None
        loaded[name] = load_npz(path, required=("predicted", "target", "W", "v"))
        first = next(iter(loaded.values()))
        if not (np.array_equal(loaded[name]["W"], first["W"]) and np.array_equal(loaded[name]["v"], first["v"])):
            raise ValueError(f"{path}: W-v grid differs from the other models' phase diagrams")
    return first["W"], first["v"], first["target"], {name: data["predicted"] for name, data in loaded.items()}


def run_cam(args, preset, data_dir: Path, models) -> None:
    from ssh_ood.base.figure_files import save_figure
    from ssh_ood.base.io_utils import load_npz
    from ssh_ood.figures.interpretation_figures import figure_averaged_cams, figure_cam_comparison
    from ssh_ood.interpret.cam_utils import analyze_model_cam, toy_model_cam
    from ssh_ood.interpret.highlighted_models import category_title

    reference_W = (0.0, *preset.perturbative_W) if args.perturb else (0.0,)
    summaries, maps = {}, {}
    for name, _, model in tqdm(models, desc="CAM per model", disable=args.quiet):
        folder = args.out / name / "cam"
        summaries[name] = analyze_model_cam(model, data_dir, folder, reference_W, args.sample_v, batch_size=args.batch_size)
        maps[name] = load_npz(folder / "cam_maps.npz")
        print(f"{name:20s} CAM score {summaries[name]['cam_score']:.3f} (chance {summaries[name]['chance_level']:.3f})")
    grid = read_phase_diagrams(models)
    names = [name for name, _, _ in models]
    folders = {name: folder for name, folder, _ in models}
    fig = figure_cam_comparison(
        toy_model_cam(),
        {name: maps[name]["sample_cam"][1] for name in names},
        {name: summaries[name]["cam_score"] for name in names},
        {name: category_title(name, folders[name]) for name in names},
        summaries[names[0]]["sample_v"],
        diagrams=grid[3] if grid else None,
        target=grid[2] if grid else None,
        W_values=grid[0] if grid else None,
        v_values=grid[1] if grid else None,
    )
    written = save_figure(fig, "Fig_2", args.figures)
    plt.close(fig)
    fig = figure_averaged_cams(
        {name: maps[name]["averaged_normalized"] for name in names},
        {name: summaries[name]["cam_score"] for name in names},
    )
    written += save_figure(fig, "Fig_CAM_averaged", args.figures)
    plt.close(fig)
    for path in written:
        print(f"wrote {path}")


def run_clustering(args, preset, data_dir: Path, models) -> None:
    from ssh_ood.base.figure_files import save_figure
    from ssh_ood.figures.interpretation_figures import figure_pca_gap, figure_umap_layers
    from ssh_ood.interpret.clustering_utils import analyze_model_clustering, explained_variance_table
    from ssh_ood.interpret.highlighted_models import category_title

    reference_W = (0.0, *preset.perturbative_W) if args.perturb else (0.0,)
    names = [name for name, _, _ in models]
    shown = [name for name in FIG4_ROWS if name in names]
    shown += [name for name in names if name not in shown][: max(0, 2 - len(shown))]
    titles = {name: category_title(name, folder) for name, folder, _ in models}
    results = {}
    for name, _, model in tqdm(models, desc="activations, PCA, UMAP per model", disable=args.quiet):
        results[name] = analyze_model_clustering(
            model, data_dir, args.out / name, reference_W, preset.ood_W,
            umap_n_neighbors=preset.umap_n_neighbors if args.umap and name in shown else None, seed=args.seed,
            exclude_transition=bool(args.exclude_transition), batch_size=args.batch_size, progress=not args.quiet,
            umap_pre_pca=args.umap_pca or None,
        )
        table = explained_variance_table(results[name]["pca"])
        print(f"{name}: PCA explained variance ratio (PC1 + PC2) per layer: "
              + ", ".join(f"{row.layer} {row.total:.2f}" for row in table.itertuples()))
    columns = (0.0, *preset.ood_W)
    fig = figure_pca_gap({titles[n]: results[n]["pca"]["gap"] for n in shown}, columns, reference_W)
    written = save_figure(fig, "Fig_4", args.figures)
    plt.close(fig)
    if args.umap:
        for figure_name, name in zip(("Fig_12", "Fig_13"), shown, strict=False):
            fig = figure_umap_layers(results[name]["umap"], preset.ood_W, reference_W, titles[name])
            written += save_figure(fig, figure_name, args.figures)
            plt.close(fig)
    for path in written:
        print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    from ssh_ood.physics.datasets import ensure_datasets

    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        preset = get_preset(args.preset)
        models = load_models(args.models_dir)
        data_dir = ensure_datasets(preset, args.seed, args.data or datasets_dir(preset.name), not args.quiet)
        if args.CAM:
            run_cam(args, preset, data_dir, models)
        else:
            run_clustering(args, preset, data_dir, models)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
