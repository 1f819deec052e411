"""dfsweep: Ray Tune + Optuna + MLflow sweeps for from-scratch deepfake face detectors.

Submodules are imported on demand so that `dfsweep --help` stays fast; see README.md for the tour.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
