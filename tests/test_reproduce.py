"""The ``make reproduce`` pipeline on the smoke preset: steps, figures, report, resume."""

from __future__ import annotations

import subprocess
import sys

from src.paths import REPO_ROOT
from src.reproduce import pipeline_steps, run_pipeline


def test_reproduce_smoke_end_to_end_and_resume(tmp_path):
    report = run_pipeline("smoke", seed=1, out_dir=tmp_path, progress=False)
    text = report.read_text()
    assert "preset `smoke`, seed 1" in text
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*"))
    for step in pipeline_steps():
        assert step.name in text
    for name in ("Fig_3", "Fig_6", "Fig_target_diagram"):
        assert f"{name}.pdf" in figures and f"{name}.png" in figures
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 1000
        assert f"![{name}]" in text
    executed = list((tmp_path / "executed_notebooks").glob("*.ipynb"))
    assert len(executed) >= 2
    # second run: every step is up to date and skipped
    again = run_pipeline("smoke", seed=1, out_dir=tmp_path, progress=False).read_text()
    assert again.count("up to date, skipped") == len(pipeline_steps())


def test_reproduce_rejects_bad_arguments():
    result = subprocess.run([sys.executable, "-m", "src", "reproduce", "--preset", "huge"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
