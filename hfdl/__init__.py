"""hfdl: the architectures of the *Deep Learning Mastery* course as Hugging Face Hub models.

``import hfdl`` registers every architecture with the transformers Auto classes, so ``AutoModel``,
``AutoModelForImageClassification`` and ``AutoImageProcessor`` load hfdl checkpoints without ``trust_remote_code``.
"""

from __future__ import annotations

from .models.lenet5 import (
    LeNet5Config,
    LeNet5ForImageClassification,
    LeNet5ImageProcessor,
    LeNet5Model,
)
from .models.mlp import MLPConfig, MLPForImageClassification, MLPForRegression, MLPImageProcessor, MLPModel
from .registry import REGISTRY, ArchitectureSpec, TaskSpec, get_architecture, register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "REGISTRY",
    "ArchitectureSpec",
    "LeNet5Config",
    "LeNet5ForImageClassification",
    "LeNet5ImageProcessor",
    "LeNet5Model",
    "MLPConfig",
    "MLPForImageClassification",
    "MLPForRegression",
    "MLPImageProcessor",
    "MLPModel",
    "TaskSpec",
    "__version__",
    "get_architecture",
    "register_auto_classes",
]
