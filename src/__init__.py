"""Companion code for "Characterizing out-of-distribution generalization of neural networks:
application to the disordered Su-Schrieffer-Heeger model" (Cybiński et al., 2024).

Modules are named after the notebooks they serve; ``python -m src --help`` lists the command line.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
