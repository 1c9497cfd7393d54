"""crosslens: look inside PyTorch classifiers from a Jupyter notebook.

The widgets live here (``crosslens.BoundaryExplorer``, ``crosslens.CounterfactualExplorer``,
``crosslens.AttributionExplorer``, ``crosslens.AdversarialExplorer``, ``crosslens.AttributeBrowser``, and
``crosslens.DrawPad``, a pad to draw an input on that every explorer can follow);
the engine that computes every explanation is :mod:`crosslens.kernel_side` (PyTorch only,
usable without Jupyter).

References:
    BoundaryExplorer: Zhuang, Dvornek, Li, Yang, Duncan. Decision explanation and feature
    importance for invertible networks. ICCV Workshops 2019. https://arxiv.org/abs/1910.00406
    CounterfactualExplorer: Dombrowski, Gerken, Mueller, Kessel. Diffeomorphic
    counterfactuals with generative models. TPAMI 2024. https://arxiv.org/abs/2206.05075
    AttributionExplorer: Eckstein, Bates, Jefferis, Funke. Discriminative attribution from
    counterfactuals. arXiv 2109.13412 (2021). https://arxiv.org/abs/2109.13412
    AdversarialExplorer: Rahnama, Tseng. An adversarial approach for explaining the
    predictions of deep neural networks. CVPR Workshops 2021. https://arxiv.org/abs/2005.10284
    AttributeBrowser: Parekh, Mozharovskyi, d'Alche-Buc. A framework to learn with
    interpretation. NeurIPS 2021. https://arxiv.org/abs/2010.09345
"""

from importlib.metadata import PackageNotFoundError, version

from . import kernel_side
from .adversarial_explorer import AdversarialExplorer
from .attribute_browser import AttributeBrowser
from .attribution_explorer import AttributionExplorer
from .boundary_explorer import BoundaryExplorer
from .counterfactual_explorer import CounterfactualExplorer
from .drawpad import DrawPad

try:
    __version__ = version("crosslens")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["AdversarialExplorer", "AttributeBrowser", "AttributionExplorer", "BoundaryExplorer", "CounterfactualExplorer", "DrawPad", "kernel_side", "__version__"]
