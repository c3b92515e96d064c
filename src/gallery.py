"""The README's figure gallery: reduced PNG copies of the pipeline's figures, small enough to commit.

    python -m src gallery --figures 00_demonstrations_data/figures --out docs/gallery

Each figure named in :data:`GALLERY` is copied from ``<figures>/<name>.png``, scaled down to at most
``width`` pixels wide (aspect ratio kept, Lanczos filter), reduced to a 256-colour palette and written
atomically.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from .io_utils import atomic_write_bytes
from .paths import FIGURES_DIR, REPO_ROOT

GALLERY = {
    "Fig_3": "Fig. 3: fidelity of each eigenstate against v, clean (a) and at W = 0.15 (b)",
    "Fig_6": "Fig. 6: disorder broadens the transition and moves it past v = 1",
    "Fig_target_diagram": "The target phase diagram regenerated from seeds, beside the published one",
    "Fig_2": "Fig. 2: toy-model CAM, the four highlighted networks' CAMs and their phase diagrams",
    "Fig_CAM_score_vs_generalization": "The CAM score against the RMSE and OOD accuracy of every network",
    "Fig_4": "Fig. 4: PCA of the GAP features, two networks x five disorder strengths",
    "Fig_12": "Fig. 12: UMAP of the activations, five layers x four disorder strengths",
    "Fig_population_summary": "The population: OOD accuracy and RMSE histograms, fraction well generalizing",
    "Fig_thermometer": "Thermometer encoding of one chain",
    "Fig_thermometer_generalization_precise_bn": "Real-valued vs thermometer input, same seeds",
}
GALLERY_DIR = REPO_ROOT / "docs" / "gallery"


def thumbnail(source: str | Path, destination: str | Path, width: int = 900) -> Path:
    """Write ``source`` (a PNG) to ``destination``: at most ``width`` pixels wide, 256-colour palette."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 16:
        raise ValueError(f"width must be an integer >= 16, got {width!r}")
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: figure not found; make it first (make reproduce)")
    with Image.open(source) as image:
        image.load()
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.LANCZOS)
        image = image.convert("RGB").quantize(colors=256)  # a 256-colour palette: ~3x smaller files
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return atomic_write_bytes(destination, buffer.getvalue())


def write_gallery(figures_dir: str | Path = FIGURES_DIR, out_dir: str | Path = GALLERY_DIR, width: int = 900) -> list[Path]:
    """Thumbnails of every figure of :data:`GALLERY` found in ``figures_dir``; returns the written paths."""
    figures_dir = Path(figures_dir)
    missing = [name for name in GALLERY if not (figures_dir / f"{name}.png").is_file()]
    if missing:
        raise FileNotFoundError(f"{figures_dir} lacks {missing}; run `make reproduce` first")
    return [thumbnail(figures_dir / f"{name}.png", Path(out_dir) / f"{name}.png", width) for name in GALLERY]


def add_gallery_parser(subparsers) -> None:
    """Register ``python -m src gallery``."""
    parser = subparsers.add_parser("gallery", help="reduced copies of the figures for the README gallery",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR, help="folder of the full-size PNG figures")
    parser.add_argument("--out", type=Path, default=GALLERY_DIR, help="gallery folder (default: docs/gallery)")
    parser.add_argument("--width", type=int, default=900, help="maximum width in pixels (default 900)")
    parser.set_defaults(func=_run_gallery)


def _run_gallery(args: argparse.Namespace) -> int:
    for path in write_gallery(args.figures, args.out, args.width):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0
