"""``CITATION.cff``: valid Citation File Format 1.2.0 (checked against the format's own JSON schema), citing the
paper as the preferred citation and describing the software as ``pyproject.toml`` does."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

from ssh_ood.base.paths import REPO_ROOT

#: schema.json of the format's 1.2.0 release (tests/data/README.md)
CFF_SCHEMA = Path(__file__).parent / "data" / "citation_cff_1.2.0_schema.json"


def test_citation_file_is_valid_cff_and_cites_the_paper():
    citation = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    validator = Draft7Validator(json.loads(CFF_SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(citation), key=str)
    assert not errors, [error.message for error in errors]
    broken = {**citation, "preferred-citation": {**citation["preferred-citation"], "doi": "ad9079"}}
    assert not validator.is_valid(broken) and not validator.is_valid({k: v for k, v in citation.items() if k != "authors"})
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert (citation["title"], citation["version"], citation["license"]) == (project["name"], project["version"], "MIT")
    paper = citation["preferred-citation"]
    assert paper["doi"] == "10.1088/2632-2153/ad9079" and project["urls"]["Paper"].endswith(paper["doi"])
    assert [a["family-names"] for a in paper["authors"]] == ["Cybiński", "Płodzień", "Tomza", "Lewenstein", "Dauphin",
                                                             "Dawid"]
    assert (paper["journal"], paper["volume"], paper["start"], paper["year"]) == (
        "Machine Learning: Science and Technology", 6, "015014", 2025)
