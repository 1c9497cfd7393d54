"""crosslens: look inside PyTorch classifiers from a Jupyter notebook.

The widgets live here (``crosslens.BoundaryExplorer``); the engine that computes every
explanation is :mod:`crosslens.kernel_side` (PyTorch only, usable without Jupyter).

References:
    BoundaryExplorer: Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature
    importance for invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406
"""

from importlib.metadata import PackageNotFoundError, version

from . import kernel_side
from .boundary_explorer import BoundaryExplorer

try:
    __version__ = version("crosslens")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["BoundaryExplorer", "kernel_side", "__version__"]
