"""crosslens' engine: explanations computed with PyTorch, batched, on the model's device.

No widget machinery is imported here: every function takes tensors and returns tensors or
frozen dataclasses, so the engine works in scripts and tests as well as behind the widgets.
"""

from .boundary import BoundaryProjection, nearest_facet, project_to_boundary
from .classifier import InvertibleClassifier
from .classifiers import ConvClassifier, MLPClassifier
from .counterfactuals import (
    BoundaryCrossing, CounterfactualResult, boundary_crossing, latent_counterfactual, pixel_counterfactual,
)
from .data import (
    DIGITS_CLASS_NAMES, MOONS_CLASS_NAMES, LiftedMoons, load_digits_split, load_lifted_moons_split, load_moons_split,
)
from .evaluation import CounterfactualReport, evaluate, fit_oracle
from .flows import ActNorm, AffineCoupling, Flow, Permutation
from .generative_training import GenerativeFitReport, fit_flow, fit_vae
from .generators import VAE, Generator, NormalizingFlow, bits_per_dim, dequantize
from .paths import BoundaryPath, BoundarySweep, boundary_directions, boundary_path, boundary_sweep
from .planar import BoundaryCurve, DecisionRegions, boundary_curves, decision_regions, padded_bounds
from .pretrained import PRETRAINED, load_pretrained, train_pretrained
from .training import FitReport, fit, random_shifts

__all__ = [
    "ActNorm", "AffineCoupling", "BoundaryCrossing", "BoundaryCurve", "BoundaryPath", "BoundaryProjection",
    "BoundarySweep", "ConvClassifier", "CounterfactualReport", "CounterfactualResult", "DIGITS_CLASS_NAMES",
    "DecisionRegions", "FitReport", "Flow", "GenerativeFitReport", "Generator", "InvertibleClassifier",
    "LiftedMoons", "MLPClassifier", "MOONS_CLASS_NAMES", "NormalizingFlow", "PRETRAINED", "Permutation", "VAE",
    "bits_per_dim", "boundary_crossing", "boundary_curves", "boundary_directions", "boundary_path",
    "boundary_sweep", "decision_regions", "dequantize", "evaluate", "fit", "fit_flow", "fit_oracle", "fit_vae",
    "latent_counterfactual", "load_digits_split", "load_lifted_moons_split", "load_moons_split",
    "load_pretrained", "nearest_facet", "padded_bounds", "pixel_counterfactual", "project_to_boundary",
    "random_shifts", "train_pretrained",
]
