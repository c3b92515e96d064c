"""Per-module counts of ``mutmut results --all true`` (read from stdin), as a Markdown table.

Usage (what ``make mutation`` runs): ``mutmut results --all true | python benchmarks/mutation_summary.py``.
Each input line reads ``    <module>.<function>__mutmut_<n>: <status>``; the score is killed / (killed +
survived), timeouts counted apart (a mutant that hangs a test is caught, but not by an assertion).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

STATUSES = ("killed", "survived", "timeout", "no tests", "suspicious", "segfault", "skipped", "not checked")


def summarize(lines: list[str]) -> dict[str, Counter]:
    """module -> Counter of statuses, from the lines of ``mutmut results --all true``."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for line in lines:
        name, separator, status = line.strip().rpartition(": ")
        if not separator or "__mutmut_" not in name:
            continue
        module = name.partition("__mutmut_")[0].rpartition(".")[0]
        counts[module][status] += 1
    return counts


def table(counts: dict[str, Counter]) -> str:
    rows = ["| module | mutants | " + " | ".join(STATUSES) + " | killed / (killed + survived) |",
            "|---|---:|" + "---:|" * len(STATUSES) + "---:|"]
    for module in sorted(counts):
        c = counts[module]
        tested = c["killed"] + c["survived"]
        score = f"{100 * c['killed'] / tested:.1f} %" if tested else "n/a"
        rows.append(f"| `{module}` | {sum(c.values())} | " + " | ".join(str(c[s]) for s in STATUSES) + f" | {score} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(summarize(sys.stdin.read().splitlines())))
