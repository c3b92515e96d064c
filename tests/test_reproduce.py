"""The ``make reproduce`` pipeline on the smoke preset: every step, every figure, the report, resume."""

from __future__ import annotations

import subprocess
import sys

from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.commands.reproduce import NOTEBOOK_FIGURES, pipeline_steps, run_pipeline


def test_reproduce_smoke_end_to_end_and_resume(smoke_reproduction):
    out_dir, text = smoke_reproduction
    assert "preset `smoke`, seed 1" in text and f"It ran all {len(pipeline_steps())} pipeline steps" in text
    for step in pipeline_steps():
        assert step.name in text
        for path in step.outputs(_context(out_dir)):
            assert path.exists(), (step.name, path)
    expected = {name for names in NOTEBOOK_FIGURES.values() for name in names} | {"Fig_2", "Fig_4", "Fig_12", "Fig_13"}
    for name in expected:
        for ext in ("pdf", "png"):
            assert (out_dir / "figures" / f"{name}.{ext}").stat().st_size > 1000, name
        assert f"![{name}]" in text
    assert len(list((out_dir / "executed_notebooks").glob("*.ipynb"))) == len(NOTEBOOK_FIGURES)
    assert "well generalizing (RMSE <= 0.2)" in text
    assert "## Key numbers" in text and (out_dir / "report" / "report.html").stat().st_size > 1000
    # second run: every step is up to date and skipped
    again = run_pipeline("smoke", seed=1, out_dir=out_dir, progress=False).read_text()
    assert again.count("up to date, skipped") == len(pipeline_steps())
    assert f"All {len(pipeline_steps())} pipeline steps were up to date from an earlier run; none ran now." in again


def _context(out_dir):
    from ssh_ood.base.presets import get_preset
    from ssh_ood.commands.reproduce import Context

    return Context(get_preset("smoke"), 1, out_dir, progress=False)


def test_reproduce_rejects_bad_arguments():
    result = subprocess.run([sys.executable, "-m", "ssh_ood", "reproduce", "--preset", "huge"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
