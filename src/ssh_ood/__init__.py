"""Companion code for "Characterizing out-of-distribution generalization of neural networks:
application to the disordered Su-Schrieffer-Heeger model" (Cybiński et al., 2024).

The packages follow the pipeline, each using only those below it (an import-linter contract in
``pyproject.toml`` checks it in ``make test``)::

    commands    python -m ssh_ood <command>, and reproduce
    figures     every figure, the browser, the report
    interpret   CAM, activations, diagnostics, prediction
    ood         evaluation on the disorder grid, populations
    nets        the CNN, the recipe, the engines, model folders
    physics     the SSH chain, labels, datasets, input edits
    base        files, folders, presets, provenance, notebook running

Modules are named after the notebooks they serve; ``python -m ssh_ood --help`` lists the command line.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
