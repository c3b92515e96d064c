"""The grouping that ``make test`` relies on (``tests/conftest.py``, ``pytest -n 2 --dist loadgroup``), checked on a
toy suite run by the same conftest and options: each module's tests run on one worker (its module fixtures are built
once), every test that reads the smoke reproduction runs on one worker (the reproduction is built once), and that
group, the costliest, starts first. If pytest or
pytest-xdist stop honouring the groups, the suite still passes but builds its costliest fixtures twice."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MODULES = "abcdef"


def test_groups_keep_to_one_worker_and_the_smoke_reproduction_starts_first(tmp_path):
    suite = tmp_path / "tests"
    suite.mkdir()
    (suite / "__init__.py").write_text("")
    # the real conftest, its session fixture replaced by a cheap one of the same name
    conftest = (TESTS / "conftest.py").read_text()
    assert "def smoke_reproduction(" in conftest
    (suite / "conftest.py").write_text(conftest + "\n\n@pytest.fixture(scope='session')\ndef smoke_reproduction():\n"
                                       "    return None\n")
    log = tmp_path / "workers.log"
    for module in MODULES:
        tests = [f"def test_{module}_{i}():\n    _log('{module}', 'module')\n" for i in range(3)]
        if module in MODULES[-2:]:  # the costliest group appears last in collection order
            tests += [f"def test_{module}_reads_the_reproduction(smoke_reproduction):\n    _log('{module}', 'smoke')\n"]
        (suite / f"test_{module}.py").write_text(
            "import os, time\n\n\ndef _log(module, kind):\n    time.sleep(0.2)\n"
            f"    with open({str(log)!r}, 'a') as f:\n"
            "        f.write(f\"{module} {kind} {os.environ['PYTEST_XDIST_WORKER']}\\n\")\n\n\n" + "\n\n".join(tests))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-p",
                             "no:cacheprovider", str(suite)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers, sequence = defaultdict(set), defaultdict(list)
    for line in log.read_text().splitlines():
        module, kind, worker = line.split()
        workers["smoke" if kind == "smoke" else module].add(worker)
        sequence[worker].append(kind)
    assert len(workers) == len(MODULES) + 1
    assert all(len(names) == 1 for names in workers.values()), dict(workers)
    assert len(set().union(*workers.values())) == 2  # and the work was still spread over both workers
    smoke_worker = sequence[next(iter(workers["smoke"]))]
    assert smoke_worker[:2] == ["smoke", "smoke"], smoke_worker
