"""crosslens' engine: explanations computed with PyTorch, batched, on the model's device.

No widget machinery is imported here: every function takes tensors and returns tensors or
frozen dataclasses, so the engine works in scripts and tests as well as behind the widgets.

Layout: ``models/`` (what is explained or generates), ``training/`` (how models are fit),
``methods/`` (how explanations are computed, one module per paper), ``metrics.py`` (scores
for any result), ``data.py`` and ``pretrained.py`` (the embedded data and shipped models).
Every explanation function is called ``fn(model, [generator,] x, target=None, *, options)``.
"""

from .data import (
    DIGITS_CLASS_NAMES,
    MOONS_CLASS_NAMES,
    SHAPES_CLASS_NAMES,
    LiftedMoons,
    ShapeScenes,
    load_digits_split,
    load_lifted_moons_split,
    load_moons_split,
    load_shapes_split,
)
from .methods.boundary import (
    BoundaryCurve,
    BoundaryPath,
    BoundaryProjection,
    BoundarySweep,
    DecisionRegions,
    boundary_curves,
    boundary_directions,
    boundary_path,
    boundary_sweep,
    decision_regions,
    nearest_facet,
    padded_bounds,
    project_to_boundary,
)
from .methods.axai import AdversarialExplanation, adversarial_explanation, segment_images
from .methods.dac import DAC_METHODS, DACResult, dac_attributions, discriminative_attribution
from .methods.dac_ranking import Comparison, DACRanking, dac_ranking
from .methods.flint import (
    FlintInterpretation,
    FlintReport,
    MaxActivatingSamples,
    activation_maximisation,
    flint_interpretation,
    flint_metrics,
    global_relevance,
    maximum_activating_samples,
)
from .methods.faithfulness import Faithfulness, compare_faithfulness, explanation_consistency, key_share
from .methods.pairs import CounterfactualPairs, counterfactual_pairs
from .methods.counterfactuals import (
    BoundaryCrossing,
    CounterfactualResult,
    boundary_crossing,
    latent_counterfactual,
    pixel_counterfactual,
)
from .metrics import CounterfactualReport, aopc, bits_per_dim, evaluate, fit_oracle, fit_oracles
from .models.classifiers import ConvClassifier, MLPClassifier
from .models.flint import FLINT, FlintClassifier
from .models.flows import ActNorm, AffineCoupling, ConvAffineCoupling, Flow, Permutation, Squeeze
from .models.generators import VAE, Generator, NormalizingFlow, dequantize
from .models.invertible import InvertibleClassifier
from .pretrained import PRETRAINED, load_pretrained, train_pretrained
from .training.classifiers import fit, random_shifts
from .training.flint import fit_flint
from .training.generators import fit_flow, fit_vae
from .training.loop import FitReport

GenerativeFitReport = FitReport  # the generators' report before there was one report type; kept working

__all__ = [
    "ActNorm", "AdversarialExplanation", "AffineCoupling", "BoundaryCrossing", "BoundaryCurve", "BoundaryPath",
    "BoundaryProjection", "BoundarySweep", "Comparison", "ConvAffineCoupling", "ConvClassifier", "CounterfactualPairs",
    "CounterfactualReport", "CounterfactualResult", "DACRanking", "DACResult", "DAC_METHODS", "DIGITS_CLASS_NAMES",
    "DecisionRegions", "FLINT", "Faithfulness", "FitReport", "FlintClassifier", "FlintInterpretation", "FlintReport",
    "Flow", "GenerativeFitReport", "Generator", "InvertibleClassifier", "LiftedMoons", "MLPClassifier",
    "MOONS_CLASS_NAMES", "MaxActivatingSamples", "NormalizingFlow", "PRETRAINED", "Permutation", "SHAPES_CLASS_NAMES",
    "ShapeScenes", "Squeeze", "VAE", "activation_maximisation", "adversarial_explanation", "aopc", "bits_per_dim",
    "boundary_crossing", "boundary_curves", "boundary_directions", "boundary_path", "boundary_sweep",
    "compare_faithfulness", "counterfactual_pairs", "dac_attributions", "dac_ranking", "decision_regions", "dequantize",
    "discriminative_attribution", "evaluate", "explanation_consistency", "fit", "fit_flint", "fit_flow", "fit_oracle",
    "fit_oracles", "fit_vae", "flint_interpretation", "flint_metrics", "global_relevance", "key_share",
    "latent_counterfactual", "load_digits_split", "load_lifted_moons_split", "load_moons_split", "load_pretrained",
    "load_shapes_split", "maximum_activating_samples", "nearest_facet", "padded_bounds", "pixel_counterfactual",
    "project_to_boundary", "random_shifts", "segment_images", "train_pretrained",
]
