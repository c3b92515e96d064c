"""The README gallery's thumbnails (src/ssh_ood/figures/gallery.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ssh_ood.figures.gallery import GALLERY, thumbnail, write_gallery


def _png(path, width, height):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_thumbnail_keeps_the_aspect_ratio_and_never_enlarges(tmp_path):
    wide = _png(tmp_path / "wide.png", 2000, 700)
    with Image.open(thumbnail(wide, tmp_path / "out" / "wide.png", width=500)) as image:
        assert image.size == (500, 175)
    small = _png(tmp_path / "small.png", 300, 200)
    with Image.open(thumbnail(small, tmp_path / "out" / "small.png", width=500)) as image:
        assert image.size == (300, 200)


def test_gallery_needs_every_figure_and_a_sane_width(tmp_path):
    for name in list(GALLERY)[:-1]:
        _png(tmp_path / f"{name}.png", 40, 30)
    with pytest.raises(FileNotFoundError, match=list(GALLERY)[-1]):
        write_gallery(tmp_path, tmp_path / "gallery")
    _png(tmp_path / f"{list(GALLERY)[-1]}.png", 40, 30)
    assert len(write_gallery(tmp_path, tmp_path / "gallery", width=20)) == len(GALLERY)
    with pytest.raises(ValueError, match="width"):
        thumbnail(tmp_path / "Fig_2.png", tmp_path / "x.png", width=0)
    with pytest.raises(FileNotFoundError, match="not found"):
        thumbnail(tmp_path / "nope.png", tmp_path / "x.png")
