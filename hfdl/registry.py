"""The one table of hfdl's architectures.

Everything that needs to know which models exist reads :data:`REGISTRY`: ``import hfdl`` registers the Auto
classes from it, the contract tests are parametrized from it, ``hfdl list`` prints it, the CLI and recipes resolve
presets through it and the README tables are checked against it. Adding an architecture means adding one
:class:`ArchitectureSpec` here (and its folder); nothing else keeps a parallel list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.image_processing_utils import BaseImageProcessor

from .models.lenet5 import (
    LeNet5Config,
    LeNet5ForImageClassification,
    LeNet5ImageProcessor,
    LeNet5Model,
)
from .models.mlp import MLPConfig, MLPForImageClassification, MLPForRegression, MLPImageProcessor, MLPModel


@dataclass(frozen=True)
class TaskSpec:
    """One head of an architecture: the task name (a Hub pipeline tag), its class and its Auto class.

    ``auto_class`` is ``None`` when transformers has no Auto class for the task (tabular regression); such heads load
    through their own class and cannot be Hub remote code.
    """

    task: str
    model_class: type[PreTrainedModel]
    auto_class: type | None


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture: its config, base model, heads, presets and what the tests and tools feed it."""

    name: str
    model_type: str
    chapter: str
    paper: str
    config_class: type[PretrainedConfig]
    base_model_class: type[PreTrainedModel]
    tasks: tuple[TaskSpec, ...]
    presets: dict[str, dict[str, Any]]
    default_preset: str
    #: Small config arguments that keep the contract tests fast.
    test_config: dict[str, Any] = field(default_factory=dict)
    image_processor_class: type | None = None
    #: Spaces (folders of spaces/) and notebooks (stems in notebooks/) that use this architecture, as shown by
    #: their tests; the README feature table is rendered from these fields.
    spaces: tuple[str, ...] = ()
    notebooks: tuple[str, ...] = ()

    def task(self, task: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.task == task:
                return spec
        raise ValueError(f"{self.name} has no {task!r} head; available: {', '.join(t.task for t in self.tasks)}.")

    def make_config(self, preset: str | None = None, **overrides: Any) -> PretrainedConfig:
        """Build a config from a preset (default: the architecture's default preset) and overrides."""
        preset = preset or self.default_preset
        if preset not in self.presets:
            raise ValueError(f"Unknown preset {preset!r} for {self.name}; available: {', '.join(self.presets)}.")
        return self.config_class(**{**self.presets[preset], **overrides})

    def make_image_processor(self, config: PretrainedConfig) -> BaseImageProcessor | None:
        """The image processor matching ``config``'s input size and channels, or ``None`` for non-image models."""
        if self.image_processor_class is None or getattr(config, "image_size", None) is None:
            return None
        return self.image_processor_class(size=config.image_size, num_channels=config.num_channels)


REGISTRY: dict[str, ArchitectureSpec] = {
    spec.name: spec
    for spec in (
        ArchitectureSpec(
            name="mlp",
            model_type=MLPConfig.model_type,
            chapter="3-4 Neural networks, training",
            paper="Rumelhart, Hinton & Williams, 1986",
            config_class=MLPConfig,
            base_model_class=MLPModel,
            tasks=(
                TaskSpec("image-classification", MLPForImageClassification, AutoModelForImageClassification),
                TaskSpec("tabular-regression", MLPForRegression, None),
            ),
            presets={
                "mlp-digits": {"image_size": 8, "hidden_sizes": [128, 64], "num_labels": 10},
                "mlp-mnist": {"image_size": 28, "hidden_sizes": [256, 128], "dropout": 0.1, "num_labels": 10},
            },
            default_preset="mlp-digits",
            test_config={"image_size": 8, "hidden_sizes": [16, 8], "num_labels": 3},
            image_processor_class=MLPImageProcessor,
            notebooks=("01_foundations_mlp_lenet5",),
        ),
        ArchitectureSpec(
            name="lenet5",
            model_type=LeNet5Config.model_type,
            chapter="5 CNNs",
            paper="LeCun et al., 1998",
            config_class=LeNet5Config,
            base_model_class=LeNet5Model,
            tasks=(TaskSpec("image-classification", LeNet5ForImageClassification, AutoModelForImageClassification),),
            presets={
                "lenet5": {"activation": "tanh", "pooling": "average", "num_labels": 10},
                "lenet5-modern": {"activation": "relu", "pooling": "max", "num_labels": 10},
            },
            default_preset="lenet5-modern",
            test_config={"image_size": 16, "conv_channels": [2, 4], "hidden_sizes": [8, 6], "num_labels": 3},
            image_processor_class=LeNet5ImageProcessor,
            spaces=("digit-recognizer",),
            notebooks=("01_foundations_mlp_lenet5",),
        ),
    )
}


def get_architecture(name_or_preset: str) -> ArchitectureSpec:
    """Find an architecture by name (``lenet5``), preset (``lenet5-modern``) or model_type (``hfdl-lenet5``)."""
    for spec in REGISTRY.values():
        if name_or_preset in (spec.name, spec.model_type) or name_or_preset in spec.presets:
            return spec
    known = sorted(n for spec in REGISTRY.values() for n in (spec.name, *spec.presets))
    raise ValueError(f"Unknown architecture or preset {name_or_preset!r}; available: {', '.join(known)}.")


def resolve_preset(name_or_preset: str) -> tuple[ArchitectureSpec, str]:
    """Return the architecture and the preset a name designates (an architecture name means its default)."""
    spec = get_architecture(name_or_preset)
    return spec, name_or_preset if name_or_preset in spec.presets else spec.default_preset


def register_auto_classes() -> None:
    """Register every architecture with the transformers Auto classes and for remote-code saving.

    ``register_for_auto_class`` makes ``save_pretrained`` copy the modeling files next to the weights and write
    ``auto_map``, so the saved folder loads with ``trust_remote_code=True`` where hfdl is not installed.
    """
    for spec in REGISTRY.values():
        AutoConfig.register(spec.model_type, spec.config_class, exist_ok=True)
        spec.config_class.register_for_auto_class()
        AutoModel.register(spec.config_class, spec.base_model_class, exist_ok=True)
        spec.base_model_class.register_for_auto_class("AutoModel")
        for task in spec.tasks:
            if task.auto_class is not None:
                task.auto_class.register(spec.config_class, task.model_class, exist_ok=True)
                task.model_class.register_for_auto_class(task.auto_class.__name__)
        if spec.image_processor_class is not None:
            AutoImageProcessor.register(
                spec.config_class, slow_image_processor_class=spec.image_processor_class, exist_ok=True
            )
            spec.image_processor_class.register_for_auto_class("AutoImageProcessor")


def registry_as_dicts() -> list[dict[str, Any]]:
    """A JSON-serialisable view of the registry (``hfdl list --json``)."""
    return [
        {
            "name": spec.name,
            "model_type": spec.model_type,
            "chapter": spec.chapter,
            "paper": spec.paper,
            "config_class": spec.config_class.__name__,
            "base_model_class": spec.base_model_class.__name__,
            "tasks": {
                task.task: {
                    "model_class": task.model_class.__name__,
                    "auto_class": task.auto_class.__name__ if task.auto_class else None,
                }
                for task in spec.tasks
            },
            "presets": spec.presets,
            "default_preset": spec.default_preset,
            "image_processor_class": spec.image_processor_class.__name__ if spec.image_processor_class else None,
            "spaces": list(spec.spaces),
            "notebooks": list(spec.notebooks),
        }
        for spec in REGISTRY.values()
    ]
