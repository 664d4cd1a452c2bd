"""Attribution methods behind one contract, a registry, and a whole-dataset runner.

Public API::

    from ecgjax import attribution as attr
    attr.available()                                   # registered names
    m = attr.get("integrated_gradients", steps=64)     # a hashable, jittable value
    maps = attr.attribute(m, fns, x, target, key)      # f32[B, T, L], signed; batched within the memory budget
    attr.attribute_dataset(fns, x, "pred", m, out_dir=...)  # whole dataset, per-class npz

Importing this package registers the built-ins (saliency, gradient_x_input,
integrated_gradients, noise_tunnel (with its presets smoothgrad and vargrad), grad_cam, occlusion,
jones2020_layer_saliency, guided_backprop, deeplift, lrp, random, expected_gradients, kernel_shap). Sanity checks: ``ecgjax.attribution.sanity``.
Adding a method: docs/adding_an_attribution_method.md.
"""

from ecgjax.attribution.base import (
    KINDS, AttributionMethod, attribute_all_classes, check_supported, refusal, row_keys, target_grad,
)
from ecgjax.attribution.registry import available, get, get_class, register
from ecgjax.attribution.gradients import GradientXInput, IntegratedGradients, Saliency
from ecgjax.attribution.layer import GradCAM, Jones2020LayerSaliency, jones2020_paper_map, upsample_to_input
from ecgjax.attribution.noise_tunnel import NoiseTunnel, SmoothGrad, VarGrad
from ecgjax.attribution.perturbation import Occlusion
from ecgjax.attribution.rules import LRP, DeepLift, GuidedBackprop
from ecgjax.attribution.control import RandomAttribution
from ecgjax.attribution.shapley import ExpectedGradients, FrozenArray, KernelShap, background_sample
from ecgjax.attribution.attributions import Attributions, load_class_npz
from ecgjax.attribution.runner import AttributionResult, attribute, attribute_dataset
from ecgjax.attribution.explain import explain_run

__all__ = [
    "KINDS", "AttributionMethod", "AttributionResult", "Attributions", "DeepLift", "ExpectedGradients", "FrozenArray", "GradCAM",
    "GradientXInput", "GuidedBackprop", "IntegratedGradients", "Jones2020LayerSaliency", "KernelShap", "LRP", "NoiseTunnel", "check_supported", "refusal",
    "Occlusion", "RandomAttribution", "Saliency", "SmoothGrad", "VarGrad", "attribute", "attribute_all_classes",
    "attribute_dataset", "available", "background_sample", "explain_run", "get", "get_class", "jones2020_paper_map",
    "load_class_npz", "register",
    "row_keys", "target_grad", "upsample_to_input",
]
