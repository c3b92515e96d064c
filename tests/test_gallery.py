"""The README gallery's thumbnails (src/ssh_ood/figures/gallery.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ssh_ood.base.file_records import open_folder, sha256_bytes
from ssh_ood.base.io_utils import save_json
from ssh_ood.figures.gallery import GALLERY, figure_presets, thumbnail, write_gallery


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
    assert len(write_gallery(tmp_path, tmp_path / "gallery", width=20, preset=None)) == len(GALLERY)
    with pytest.raises(ValueError, match="width"):
        thumbnail(tmp_path / "Fig_2.png", tmp_path / "x.png", width=0)
    with pytest.raises(FileNotFoundError, match="not found"):
        thumbnail(tmp_path / "nope.png", tmp_path / "x.png")


def test_the_gallery_takes_every_figure_from_one_preset_by_content(tmp_path):
    """A figure belongs to the preset of the pipeline step that recorded its very bytes; one drawn by another
    preset, or by no recorded step, stops the gallery with the names of the odd ones."""
    figures, steps = tmp_path / "run" / "figures", tmp_path / "run" / "report" / "steps"
    figures.mkdir(parents=True)
    open_folder(steps, {"kind": "stamps"})  # as the pipeline keeps them: with the folder's record of files
    digests = {}
    for index, name in enumerate(GALLERY):
        path = _png(figures / f"{name}.png", 40 + index, 30)
        digests[name] = sha256_bytes(path.read_bytes())
    names = list(GALLERY)
    save_json(steps / "paper_step.json", {"preset": "paper", "output_sha256": {
        str(figures / f"{n}.png"): digests[n] for n in names[:-1]}})
    save_json(steps / "quick_step.json", {"preset": "quick", "output_sha256": {str(figures / f"{names[-1]}.png"):
                                                                              digests[names[-1]]}})
    assert figure_presets(figures) == {**{n: "paper" for n in names[:-1]}, names[-1]: "quick"}
    with pytest.raises(ValueError, match=f"{names[-1]}.*quick"):
        write_gallery(figures, tmp_path / "gallery")
    save_json(steps / "quick_step.json", {"preset": "paper", "output_sha256": {"x": digests[names[-1]]}})
    assert len(write_gallery(figures, tmp_path / "gallery", width=20)) == len(GALLERY)
    _png(figures / f"{names[0]}.png", 41, 31)  # redrawn outside the pipeline: no step recorded these bytes
    with pytest.raises(ValueError, match="no recorded step"):
        write_gallery(figures, tmp_path / "gallery")
