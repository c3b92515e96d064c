"""The README's figure gallery: reduced PNG copies of the pipeline's figures, small enough to commit.

    python -m ssh_ood gallery --figures 00_demonstrations_data/figures --out docs/gallery

Each figure named in :data:`GALLERY` is copied from ``<figures>/<name>.png``, scaled down to at most
``width`` pixels wide (:data:`GALLERY_WIDTH` by default; aspect ratio kept, Lanczos filter), reduced to a 256-colour
palette and written atomically. The gallery is made from one preset's figures, the paper preset's by default
(``make reproduce PRESET=paper``): each PNG must be the very file (same SHA-256) that a step of that preset recorded
in the run's stamps (``<figures>/../report/steps/*.json``), so a gallery never mixes presets and every thumbnail shows
the networks its caption describes. The README's gallery table is :func:`gallery_markdown` (printed by the command), its captions
those of :mod:`ssh_ood.figures.figure_catalog`.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from ..base.file_records import RECORD_FILE, sha256_bytes
from ..base.io_utils import atomic_write_bytes, load_json
from ..base.paths import FIGURES_DIR, REPO_ROOT
from ..base.validation import require_int
from .figure_catalog import CAPTIONS

#: the gallery's figures, in the catalogue's order; captions from :data:`ssh_ood.figures.figure_catalog.CAPTIONS`
GALLERY = {name: CAPTIONS[name] for name in (
    "Fig_3", "Fig_6", "Fig_target_diagram", "Fig_2", "Fig_CAM_score_vs_generalization", "Fig_4", "Fig_12",
    "Fig_population_summary", "Fig_thermometer", "Fig_thermometer_generalization_precise_bn",
    "Fig_lift_curves", "Fig_recall_by_band", "Fig_probe_images", "Fig_protocol_validation",
)}
GALLERY_DIR = REPO_ROOT / "docs" / "gallery"
#: thumbnail width in pixels: the widest figures (five panels, 16 inches at 150 dpi) keep 11-pt text readable
GALLERY_WIDTH = 1200


def thumbnail(source: str | Path, destination: str | Path, width: int = GALLERY_WIDTH) -> Path:
    """Write ``source`` (a PNG) to ``destination``: at most ``width`` pixels wide, 256-colour palette."""
    width = require_int("width", width, minimum=16)
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


def figure_presets(figures_dir: str | Path) -> dict[str, str]:
    """Preset of the pipeline step that drew each PNG of ``figures_dir``, by content.

    Reads the stamps of the run (``<figures_dir>/../report/steps/*.json``, :mod:`ssh_ood.commands.reproduce`); a PNG
    belongs to the preset of a stamp that recorded its SHA-256. Returns ``{figure name: preset}`` for the PNGs some
    stamp recorded; a PNG no stamp recorded (drawn outside the pipeline, or overwritten since) is absent.
    """
    figures_dir = Path(figures_dir)
    by_digest = {}
    stamps = sorted(p for p in (figures_dir.parent / "report" / "steps").glob("*.json") if p.name != RECORD_FILE)
    for stamp in map(load_json, stamps):  # each checked against the folder's record of files
        by_digest.update({digest: stamp["preset"] for digest in stamp.get("output_sha256", {}).values() if digest})
    presets = {}
    for path in figures_dir.glob("*.png"):
        preset = by_digest.get(sha256_bytes(path.read_bytes()))
        if preset is not None:
            presets[path.stem] = preset
    return presets


def write_gallery(figures_dir: str | Path = FIGURES_DIR, out_dir: str | Path = GALLERY_DIR,
                  width: int = GALLERY_WIDTH, preset: str | None = "paper") -> list[Path]:
    """Thumbnails of every figure of :data:`GALLERY` found in ``figures_dir``; returns the written paths.

    ``preset``: every figure must have been drawn by this preset's pipeline (:func:`figure_presets`); ``None``
    skips the check (figures made outside the pipeline).
    """
    figures_dir = Path(figures_dir)
    missing = [name for name in GALLERY if not (figures_dir / f"{name}.png").is_file()]
    if missing:
        raise FileNotFoundError(f"{figures_dir} lacks {missing}; run `make reproduce` first")
    if preset is not None:
        drawn = figure_presets(figures_dir)
        other = {name: drawn.get(name, "no recorded step") for name in GALLERY if drawn.get(name) != preset}
        if other:
            raise ValueError(f"the gallery shows the {preset} preset's figures, but in {figures_dir} {other} come from "
                             f"elsewhere; run `python -m ssh_ood reproduce --preset {preset}` first")
    return [thumbnail(figures_dir / f"{name}.png", Path(out_dir) / f"{name}.png", width) for name in GALLERY]


def gallery_markdown(columns: int = 2, folder: str = "docs/gallery") -> str:
    """The README's gallery table: rows of ``columns`` thumbnails, each row followed by their captions.

    Parameters
    ----------
    columns : thumbnails per row.
    folder : the thumbnails' folder as the README links it (relative to the repository root).
    """
    names = list(GALLERY)
    lines = ["|" + " |" * columns, "|" + "---|" * columns]
    for start in range(0, len(names), columns):
        row = names[start:start + columns] + [""] * (columns - len(names[start:start + columns]))
        lines.append("| " + " | ".join(f"![{n}]({folder}/{n}.png)" if n else "" for n in row) + " |")
        lines.append("| " + " | ".join(GALLERY.get(n, "") for n in row) + " |")
    return "\n".join(lines)

