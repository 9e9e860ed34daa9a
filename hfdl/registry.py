"""The one table of hfdl's architectures, collected from the model folders, and the ways to look into it.

Everything that needs to know which models exist reads :data:`REGISTRY`: ``import hfdl`` registers the Auto
classes from it, the contract tests are parametrized from it, ``hfdl list`` prints it, the CLI, recipes and
exporter resolve names through it and the README table is rendered from it. Each model folder declares its own
``ARCHITECTURE`` (see :mod:`hfdl.models`); nothing keeps a parallel list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from typing import Any

from transformers import AutoConfig, AutoImageProcessor, PretrainedConfig, PreTrainedModel

from .models import discover_architectures
from .specs import ArchitectureSpec, TaskSpec


def _build_registry(specs: list[ArchitectureSpec]) -> dict[str, ArchitectureSpec]:
    """Index the architectures by name, refusing any name a user could not resolve unambiguously."""
    owners: dict[str, str] = {}
    for spec in specs:
        if not spec.model_type.startswith("hfdl-"):
            raise ValueError(f"{spec.name}: model_type must start with 'hfdl-' (transformers owns the plain names).")
        for name in (spec.name, spec.model_type, *spec.presets):
            if name in owners:
                raise ValueError(f"The name {name!r} is used by both {owners[name]} and {spec.name}; names are unique.")
            owners[name] = spec.name
    return {spec.name: spec for spec in specs}


REGISTRY: dict[str, ArchitectureSpec] = _build_registry(discover_architectures())


def get_architecture(name: str) -> ArchitectureSpec:
    """Find an architecture by name (``lenet5``), preset (``lenet5-modern``) or model_type (``hfdl-lenet5``)."""
    for spec in REGISTRY.values():
        if name in (spec.name, spec.model_type) or name in spec.presets:
            return spec
    known = sorted(n for spec in REGISTRY.values() for n in (spec.name, *spec.presets))
    raise ValueError(f"Unknown architecture or preset {name!r}; available: {', '.join(known)}.")


def resolve_preset(name: str) -> tuple[ArchitectureSpec, str]:
    """The architecture and the preset a name designates; a bare architecture name means its default preset."""
    spec = get_architecture(name)
    return spec, name if name in spec.presets else spec.default_preset


def create_model(name: str, task: str | None = None, **overrides: Any) -> PreTrainedModel:
    """Build any hfdl model in one line, like ``timm.create_model``: a preset, a head, config overrides.

    Args:
        name: A preset (``lenet5-1998``), an architecture (``lenet5``: its default preset) or a model_type.
        task: The head (``image-classification``, ``feature-extraction``, ...); default: the architecture's main head.
        **overrides: Config fields that replace the preset's (``num_labels=2``, ``dropout=0.1``).

    Returns:
        A freshly initialised model (in training mode, as ``PreTrainedModel`` constructors leave it).
    """
    spec, preset = resolve_preset(name)
    return spec.task(task).model_class(spec.make_config(preset, **overrides))


def _hfdl_architecture(model_type: Any, where: str) -> ArchitectureSpec:
    """The architecture of an hfdl ``model_type``; any other one (``bert``, none) is refused by name."""
    for spec in REGISTRY.values():
        if spec.model_type == model_type:
            return spec
    known = ", ".join(spec.model_type for spec in REGISTRY.values())
    raise ValueError(f"{where} holds a {model_type!r} model, not an hfdl one; hfdl model types: {known}.")


def find_task(model: PreTrainedModel) -> tuple[ArchitectureSpec, TaskSpec]:
    """The architecture and head of a model instance (what a model card or an export of it needs to say)."""
    spec = _hfdl_architecture(model.config.model_type, f"A {type(model).__name__}")
    for task in spec.tasks:
        if isinstance(model, task.model_class):
            return spec, task
    raise ValueError(f"{type(model).__name__} is not a registered head of {spec.name}.")


def find_task_for_config(
    config: PretrainedConfig | Mapping[str, Any],
    task: str | None = None,
    source: Any = None,
    fallback: Collection[str] = (),
) -> tuple[ArchitectureSpec, TaskSpec]:
    """The architecture and head a saved config holds: the one answer the loaders and exporters share.

    Args:
        config: The saved config, as a ``PretrainedConfig`` or the dict of its ``config.json``.
        task: The head asked for; ``None`` means the head the config's ``architectures`` names.
        source: Where the config came from (a folder, a Hub id), for the error messages.
        fallback: Heads to take when ``architectures`` names none, if exactly one of the architecture's heads is
            among them (an ONNX model class that serves one head of the architecture).

    Raises:
        ValueError: For a ``model_type`` that is not hfdl's (naming it and hfdl's), a ``task`` the architecture has
            no head for (listing its heads), or a config whose ``architectures`` names none of its heads (listing
            them and saying to pass ``task=``).
    """
    get = config.get if isinstance(config, Mapping) else lambda name: getattr(config, name, None)
    where = str(source) if source is not None else "The config"
    model_type = get("model_type")
    spec = _hfdl_architecture(model_type, where)
    if task is not None:
        return spec, spec.task(task)  # "lenet5 has no 'x' head; available: ..."
    architectures = list(get("architectures") or [])
    saved = [head for head in spec.tasks if head.model_class.__name__ in architectures]
    if not saved:
        saved = [head for head in spec.tasks if head.task in fallback]
        saved = saved if len(saved) == 1 else []
    if not saved:
        raise ValueError(
            f"{where} holds {architectures or 'no architectures'} ({model_type}), none of them a head of "
            f"{spec.name}; pass task= one of {', '.join(head.task for head in spec.tasks)}."
        )
    return spec, saved[0]


def register_auto_classes() -> None:
    """Register every architecture with the transformers Auto classes and for remote-code saving.

    ``register_for_auto_class`` makes ``save_pretrained`` copy the modeling files next to the weights and write
    ``auto_map``, so the saved folder loads with ``trust_remote_code=True`` where hfdl is not installed.
    """
    from transformers import AutoVideoProcessor

    for spec in REGISTRY.values():
        AutoConfig.register(spec.model_type, spec.config_class, exist_ok=True)
        spec.config_class.register_for_auto_class()
        for task in spec.tasks:
            if task.auto_class is not None:
                task.auto_class.register(spec.config_class, task.model_class, exist_ok=True)
                task.model_class.register_for_auto_class(task.auto_class.__name__)
        if spec.image_processor_class is not None:
            # One processor (PIL + numpy) serves every backend; registered for "torchvision" too, the backend
            # transformers asks for first, it is found without a "falling back to pil" warning on every load.
            processor = spec.image_processor_class
            AutoImageProcessor.register(
                spec.config_class, image_processor_classes={"pil": processor, "torchvision": processor}, exist_ok=True
            )
            spec.image_processor_class.register_for_auto_class("AutoImageProcessor")
            # pipeline() also looks for a *video* processor for vision tasks, reading the image processor's
            # auto_map as remote code; with no local entry it would ask "Do you wish to run the custom code?" and
            # block a terminal, although hfdl's own classes are used. An empty local entry says "no video processor".
            # Without torchvision, AutoVideoProcessor is a placeholder that raises ImportError on any use, the
            # pipeline's lookup included, so there is nothing to register and no prompt to prevent.
            with contextlib.suppress(ImportError):
                AutoVideoProcessor.register(spec.config_class, video_processor_classes={}, exist_ok=True)


def registry_as_dicts() -> list[dict[str, Any]]:
    """A JSON-serialisable view of the registry (``hfdl list --json``)."""
    return [
        {
            "name": spec.name,
            "model_type": spec.model_type,
            "chapter": spec.chapter,
            "paper": spec.paper,
            "config_class": spec.config_class.__name__,
            "tasks": {
                task.task: {
                    "model_class": task.model_class.__name__,
                    "auto_class": task.auto_class.__name__ if task.auto_class else None,
                    "inputs": task.input_names,
                    "main_output": task.main_output,
                    "processor": task.processor,
                    "export_config": task.export_config,
                    "recipe": task.recipe,
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
