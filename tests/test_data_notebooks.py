"""Notebook 01/05 helpers, the ``data`` command line and the dataset files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ssh_ood.base.notebook_runner import run_notebook
from ssh_ood.base.paths import REPO_ROOT
from ssh_ood.figures.data_figures import fidelity_curves
from ssh_ood.physics import data_generation as dg
from ssh_ood.physics import winding_number as wn
from ssh_ood.physics.datasets import dataset_specs, load_dataset, load_split, read_manifest, write_datasets


@pytest.mark.parametrize("n_cells,W", [(3, 0.0), (3, 2.0), (25, 1.0), (25, 3.0)])
def test_winding_integral_equals_closed_form(n_cells, W):
    rng = np.random.default_rng(n_cells + int(10 * W))
    v_n, w_n = dg.sample_hoppings(rng.uniform(0, 2, 6), W, rng, n_cells=n_cells)
    for a, b in zip(v_n, w_n, strict=True):
        margin = abs(np.log(np.abs(b)).sum() - np.log(np.abs(a)).sum())
        if margin < 0.05:
            continue
        value = wn.winding_integral(a, b)
        assert abs(value - round(value)) < 1e-6
        assert round(value) == dg.winding_number(a, b)[0]


def test_three_cell_ring_in_chiral_basis():
    v_n, w_n = np.full(3, 0.5), np.ones(3)
    order = wn.chiral_basis(3)
    h = wn.ring_hamiltonian(v_n, w_n, 0.7)[np.ix_(order, order)]
    np.testing.assert_allclose(h[:3, :3], 0)
    np.testing.assert_allclose(h[3:, 3:], 0)
    np.testing.assert_allclose(h, h.conj().T)
    assert abs(wn.winding_integral(v_n, w_n) - 1) < 1e-10
    assert abs(wn.winding_integral(np.full(3, 1.5), w_n)) < 1e-10


def test_fidelity_bounds_and_limits():
    data = dg.generate_dataset("test", 30, 0.5, seed=0)
    fidelity = fidelity_curves(data["X"], 0)
    assert fidelity.shape == (30, 50)
    np.testing.assert_allclose(fidelity[0], 1.0, atol=1e-6)  # a sample against itself
    assert fidelity.min() >= 0 and fidelity.max() <= 1 + 1e-6  # Cauchy-Schwarz
    disjoint = np.zeros((2, 4, 4))
    disjoint[0, :2] = 0.5
    disjoint[1, 2:] = 0.5
    np.testing.assert_allclose(fidelity_curves(disjoint, 0)[1], 0.0)


def test_open_chain_hamiltonian_spectrum_is_chiral():
    v_n, w_n = dg.sample_hoppings(np.array([0.4, 1.3]), 1.0, np.random.default_rng(0))
    energies = np.linalg.eigvalsh(dg.open_chain_hamiltonian(v_n, w_n))
    np.testing.assert_allclose(energies, -energies[:, ::-1], atol=1e-12)


def test_data_command_writes_every_dataset_and_resumes(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "ssh_ood", "data", "--preset", "smoke", "--seed", "4", "--out", str(out), "--quiet"]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    specs = dataset_specs("smoke")
    manifest = read_manifest(out)
    assert manifest["seed"] == 4 and len(manifest["datasets"]) == len(specs)
    for spec in specs:
        data = load_dataset(out / spec.filename)
        assert data["X"].dtype == np.float32 and data["X"].shape == (spec.n_samples, 50, 50)
        assert float(data["W"]) == spec.W and int(data["seed"]) == 4
    stamp = (out / "test_W0.15.npz").stat().st_mtime_ns
    write_datasets("smoke", 4, out, progress=False)  # nothing to redo
    assert (out / "test_W0.15.npz").stat().st_mtime_ns == stamp
    again = subprocess.run(cmd[:-1] + ["--seed", "-1", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "seed" in again.stderr


def test_malformed_dataset_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ssh_ood data"):
        load_split(tmp_path, "test", 0.15)
    bad = tmp_path / "test_W0.npz"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="test_W0.npz"):
        load_dataset(bad)
    np.savez(tmp_path / "test_W1.npz", X=np.zeros((3, 50, 50)), labels=np.zeros(2), v=np.zeros(3), W=1.0)
    with pytest.raises(ValueError, match="labels"):
        load_dataset(tmp_path / "test_W1.npz")


@pytest.mark.parametrize(
    "notebook,figures",
    [("01_data_generation.ipynb", ["Fig_3"]), ("05_explain_windnum.ipynb", ["Fig_6", "Fig_target_diagram"])],
)
def test_data_notebooks_run_headless(tmp_path, notebook, figures):
    run_notebook(
        REPO_ROOT / notebook,
        tmp_path / notebook,
        {"PRESET": "smoke", "DATA_DIR": str(tmp_path / "data"), "FIGURES_DIR": str(tmp_path / "fig")},
    )
    for name in figures:
        for ext in ("pdf", "png"):
            assert (tmp_path / "fig" / f"{name}.{ext}").stat().st_size > 1000
