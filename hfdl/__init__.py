"""hfdl: the architectures of the *Deep Learning Mastery* course as Hugging Face Hub models.

``import hfdl`` registers every architecture with the transformers Auto classes, so ``AutoModel``,
``AutoModelForImageClassification`` and ``AutoImageProcessor`` load hfdl checkpoints without ``trust_remote_code``
(and ``pipeline()`` never asks to run remote code). ``hfdl.create_model("lenet5-modern")`` builds any model in one
line; every model class is also reachable as ``hfdl.<ClassName>`` (``hfdl.LeNet5Config``, ...), resolved from the
registry rather than listed here.
"""

from __future__ import annotations

from typing import Any

from .registry import REGISTRY, create_model, get_architecture, register_auto_classes, resolve_preset
from .specs import ArchitectureSpec, InputSpec, TaskSpec

__version__ = "0.2.0.dev0"

register_auto_classes()


def _public_classes() -> dict[str, type]:
    classes: dict[str, type] = {}
    for spec in REGISTRY.values():
        for cls in (spec.config_class, spec.image_processor_class, *(task.model_class for task in spec.tasks)):
            if cls is not None:
                classes[cls.__name__] = cls
    return classes


def __getattr__(name: str) -> Any:
    classes = _public_classes()
    if name in classes:
        return classes[name]
    if name == "register_timm_models":  # timm is a training extra: imported only when asked for
        from .integrations.timm import register_timm_models

        return register_timm_models
    raise AttributeError(f"module 'hfdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_public_classes()})


__all__ = [
    "REGISTRY",
    "ArchitectureSpec",
    "InputSpec",
    "TaskSpec",
    "__version__",
    "create_model",
    "get_architecture",
    "register_auto_classes",
    "resolve_preset",
]
