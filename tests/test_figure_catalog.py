"""The figure catalogue (src/ssh_ood/figures/figure_catalog.py) and the gallery captions taken from it."""

from __future__ import annotations

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.commands.reproduce import NOTEBOOK_FIGURES
from ssh_ood.figures.figure_catalog import CAPTIONS, OTHER_SECTION, SECTIONS, present_sections
from ssh_ood.figures.gallery import GALLERY, gallery_markdown


def test_every_figure_of_the_pipeline_is_catalogued_once_with_a_one_line_caption():
    names = [entry.name for section in SECTIONS for entry in section.figures]
    assert len(names) == len(set(names))
    drawn = {name for figures in NOTEBOOK_FIGURES.values() for name in figures}
    assert drawn <= set(names), drawn - set(names)
    captions = list(CAPTIONS.values())
    assert len(captions) == len(set(captions))
    assert all(caption.strip() and "\n" not in caption for caption in captions)
    assert [s.heading for s in SECTIONS][:2] == ["The data (notebook 01)", "The label: winding number (notebook 05, App. B)"]


def test_present_sections_skips_missing_figures_and_lists_unknown_ones_last(tmp_path):
    for name in ("Fig_population_summary", "Fig_3", "Fig_zz_new", "Fig_aa_new"):
        (tmp_path / f"{name}.png").write_bytes(b"png")
    (tmp_path / "Fig_6.pdf").write_bytes(b"pdf")  # a PDF alone is not a drawn PNG
    sections = present_sections(tmp_path)
    assert [s.heading for s in sections] == ["The data (notebook 01)", "The population (notebook 06)", OTHER_SECTION]
    assert [[e.name for e in s.figures] for s in sections] == [["Fig_3"], ["Fig_population_summary"],
                                                              ["Fig_aa_new", "Fig_zz_new"]]
    assert sections[0].figures[0].caption == CAPTIONS["Fig_3"]
    assert present_sections(tmp_path / "absent") == []


def test_gallery_captions_come_from_the_catalogue_and_the_gallery_page_shows_them():
    assert GALLERY == {name: CAPTIONS[name] for name in GALLERY}
    table = gallery_markdown(folder="gallery")
    assert table.count("![") == len(GALLERY) and all(caption in table for caption in GALLERY.values())
    assert table in (REPO_ROOT / "docs" / "gallery.md").read_text()
