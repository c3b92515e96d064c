"""Wall time and peak memory of the whole pipeline (``python -m ssh_ood reproduce``), step by step.

Runs the pipeline in a child process on a fresh output folder and samples, every ``--interval``
seconds, the resident memory of the child and all its descendants (notebook kernels, training
workers). The peak of that sum is reported: shared pages are counted once per process, so it is an
upper bound of the memory the pipeline needs. Step times come from the pipeline's own stamps
(``report/steps/*.json``).

    python benchmarks/measure_reproduce.py                       # quick preset, ~15 min on 2 cores
    python benchmarks/measure_reproduce.py --preset smoke
    python benchmarks/measure_reproduce.py --out /tmp/repro --keep

Run it on a quiet machine: other jobs on the same cores slow every step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (processes that vanish are skipped)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", help="pipeline preset (default: quick)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    parser.add_argument("--out", type=Path, default=None, help="output root (default: a temporary folder)")
    parser.add_argument("--interval", type=float, default=0.5, help="memory sampling period in s (default 0.5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary output folder")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")

    out = args.out or Path(tempfile.mkdtemp(prefix=f"reproduce_{args.preset}_"))
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty: the measurement needs a fresh folder (every step must run)")
    command = [sys.executable, "-m", "ssh_ood", "reproduce", "--preset", args.preset, "--seed", str(args.seed),
               "--out", str(out), "--quiet"]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT)
    watched = psutil.Process(child.pid)
    peak = {"bytes": 0, "at_s": 0.0}

    def sample() -> None:
        while child.poll() is None:
            try:
                current = tree_rss(watched)
            except psutil.NoSuchProcess:
                break
            if current > peak["bytes"]:
                peak.update(bytes=current, at_s=time.perf_counter() - start)
            time.sleep(args.interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    wall = time.perf_counter() - start
    sampler.join()

    stamps = sorted((out / "report" / "steps").glob("*.json"), key=lambda p: p.stat().st_mtime)
    print(f"\n{'step':40s} {'s':>8s}")
    for path in stamps:
        stamp = json.loads(path.read_text())
        print(f"{stamp['step']:40s} {stamp['seconds']:8.1f}")
    print(f"\nexit code {code}; wall {wall:.1f} s ({wall / 60:.1f} min); "
          f"peak resident memory of the process tree {peak['bytes'] / 2**30:.2f} GiB at t = {peak['at_s']:.0f} s")
    if args.out is None and not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    else:
        print(f"outputs kept in {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
