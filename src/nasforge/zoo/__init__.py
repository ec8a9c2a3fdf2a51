"""The classic networks as ``NetworkSpec`` values, one file per family, behind a registry.

``create(name, num_classes, resolution)`` gives the spec (``spec.cost()`` analytic, ``spec.build()`` the module);
``model_info(name)`` the published ImageNet top-1 and MACs with their sources.
"""

from __future__ import annotations

from nasforge.zoo import _alexnet, _mobilenet, _resnet, _shufflenet, _squeezenet, _vgg  # noqa: F401  (register)
from nasforge.zoo._registry import ModelInfo, create, list_models, min_resolution, model_info, register_model
from nasforge.zoo._summary import plot_accuracy_vs_macs, summary

__all__ = [
    "ModelInfo",
    "create",
    "list_models",
    "min_resolution",
    "model_info",
    "plot_accuracy_vs_macs",
    "register_model",
    "summary",
]
