"""``python -m ssh_ood gallery``: the command line of :mod:`ssh_ood.figures.gallery`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base.paths import FIGURES_DIR
from ..base.presets import PRESET_NAMES
from ..figures import gallery
from ..figures.gallery import GALLERY_DIR, GALLERY_WIDTH, gallery_markdown, write_gallery


def add_gallery_parser(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``python -m ssh_ood gallery``."""
    parser = subparsers.add_parser("gallery", parents=parents, help="reduced copies of the figures for the README gallery",
                                   description=gallery.__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR, help="folder of the full-size PNG figures")
    parser.add_argument("--out", type=Path, default=GALLERY_DIR, help="gallery folder (default: docs/gallery)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="paper",
                        help="the preset whose pipeline drew every figure (default: paper)")
    parser.add_argument("--width", type=int, default=GALLERY_WIDTH,
                        help=f"maximum width in pixels (default {GALLERY_WIDTH})")
    parser.set_defaults(func=_run_gallery)


def _run_gallery(args: argparse.Namespace) -> int:
    for path in write_gallery(args.figures, args.out, args.width, args.preset):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    print("README gallery table:", gallery_markdown(), sep="\n")
    return 0
