"""The repository speaks to its users: no tracked text file refers to the project's issue tracker, tells how
its work was organized, or points at files outside the repository.

Checked: every tracked text file (documentation, code, tests, benchmarks, notebooks, configuration). Not
checked: the shipped data records (JSON, CSV and plain-text results under ``00_demonstrations_data/``), which
keep what the commands wrote at the time, and this file, which spells the patterns out.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from ssh_ood.base.paths import REPO_ROOT

#: what must not appear, each with the reason a reader would give
FORBIDDEN = {
    "an issue number": re.compile(r"\b[Ii]ssues? ?#?\d+\b"),
    "an issue or pull-request reference": re.compile(r"(?i)\b(?:PR|pull request|fix(?:es|ed)?|close[sd]?|see)\s+#\d+|\(#\d+\)"),
    "a specification outside the repository": re.compile(r"\bSPEC\b|SPEC\.md"),
    "a path outside the repository": re.compile(r"\.\./shared|(?<![\w.])/work/"),
    "who worked on it": re.compile(r"(?i)\bthe lead\b|\bmoonshot"),
    "how the work was scheduled": re.compile(
        r"(?i)\b(?:this|that|next|previous|later|earlier|across|the|several) sessions?\b|\bI broke\b|time it lacked"),
}
#: shipped records, kept as the commands wrote them
RECORDS = (".json", ".csv", ".txt", ".npz", ".npy", ".pt")


def _tracked_text_files() -> list[str]:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    names = [name for name in listing.stdout.decode().split("\0") if name]
    return [name for name in names if not (name.startswith("00_demonstrations_data/") and name.endswith(RECORDS))
            and not name.endswith((".png", ".pdf", ".npz", ".npy", ".pt")) and name != "tests/test_user_facing_text.py"]


def test_no_tracked_text_refers_to_issues_scheduling_or_outside_files():
    found = []
    for name in _tracked_text_files():
        path = REPO_ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{name}:{number}: {what}: {match.group(0)!r}"
                      for what, pattern in FORBIDDEN.items() for match in pattern.finditer(line)]
    assert not found, "\n".join(found)


def test_no_shipped_text_record_names_an_issue():
    """The shipped tables and JSON records (read back by the code, so kept as the commands wrote them) carry no
    issue numbers either: a method name or a note in them is what a user reads in a notebook's table."""
    found = []
    for name in _tracked_records():
        text = (REPO_ROOT / name).read_text()
        found += [f"{name}: {match.group(0)!r}" for match in FORBIDDEN["an issue number"].finditer(text)]
    assert not found, "\n".join(found)


def _tracked_records() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z", "00_demonstrations_data"], cwd=REPO_ROOT, capture_output=True,
                             check=False)
    if listing.returncode:
        pytest.skip("not a git checkout: the tracked files are unknown")
    names = [name for name in listing.stdout.decode().split("\0") if name.endswith((".json", ".csv", ".txt"))]
    assert names, "no shipped records found"
    return [name for name in names if (REPO_ROOT / name).is_file()]


@pytest.mark.parametrize("text", ["see issue 20", "Issue 22, trust", "fixes #12", "(#7)", "SPEC §2", "../shared/x",
                                  "/work/shared/y", "the lead merges", "a moonshot", "across sessions",
                                  "I broke that order"])
def test_the_patterns_catch_what_they_are_for(text):
    assert any(pattern.search(text) for pattern in FORBIDDEN.values()), text


@pytest.mark.parametrize("text", ["color: #444;", "DatasetSpec", "kernelspec", "start_new_session=True",
                                  "a session of its own", "the leading order", "issued", "tissue 3"])
def test_the_patterns_leave_ordinary_text_alone(text):
    assert not any(pattern.search(text) for pattern in FORBIDDEN.values()), text
