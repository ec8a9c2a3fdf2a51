"""The classic networks as ``NetworkSpec`` values, one file per family, behind a registry.

``create(name, num_classes, resolution)`` gives the spec (``spec.cost()`` analytic, ``spec.build()`` the module);
``model_info(name)`` the published ImageNet top-1 and MACs with their sources; ``@register_model`` adds a family.
The table and plot of ``nasforge zoo`` are in ``_summary``.
"""

from __future__ import annotations

from nasforge.zoo import _alexnet, _mobilenet, _resnet, _shufflenet, _squeezenet, _vgg  # noqa: F401  (register)
from nasforge.zoo._registry import create, list_models, model_info, register_model

__all__ = ["create", "list_models", "model_info", "register_model"]
