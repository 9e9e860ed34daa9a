"""Optimum exporter configs for hfdl's architectures: what an exported graph takes, returns and how to check it.

Two exporters read these classes, so they are written once here:

* hfdl's own exporter (:mod:`hfdl.export.onnx`), on transformers 5 with optimum *core*, which has
  ``ExporterConfig``, the normalized configs and the dummy input generators but no ONNX exporter;
* Optimum's official exporter (``optimum.exporters.onnx.main_export``), from the ``optimum-onnx`` package, which
  still pins ``transformers<4.58`` and therefore lives in a separate venv (``tests/optimum_lane``).

That second venv has no hfdl installed: its scripts load this file by path. Hence the rules for this module: it
imports only the standard library and optimum (never ``hfdl.registry`` nor the model code), it keeps its own table
from ``model_type`` to config class, and it picks its base class at import time (``OnnxConfig`` where optimum-onnx
is installed, ``ExporterConfig`` elsewhere; optimum-onnx's ``OnnxConfig`` subclasses ``ExporterConfig`` and both
optimum 2.1 and 2.3 share the generators, so one class body serves both). ``tests/test_export.py`` checks that the
table covers every architecture and task of :data:`hfdl.registry.REGISTRY` that has an Auto class.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from optimum.utils import DummyVisionInputGenerator, NormalizedVisionConfig

try:  # optimum-onnx (transformers < 4.58): the official exporter's base, which main_export expects.
    from optimum.exporters.onnx import OnnxConfig as _ExporterBase

    HAS_OPTIMUM_ONNX = True
except ImportError:  # optimum core only (transformers 5): the exporter-neutral base.
    from optimum.exporters.base import ExporterConfig as _ExporterBase

    HAS_OPTIMUM_ONNX = False

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "EXPORT_CONFIG_CLASSES",
    "HAS_OPTIMUM_ONNX",
    "NOT_EXPORTED",
    "HfdlImageClassificationExportConfig",
    "LeNet5ExportConfig",
    "MLPExportConfig",
    "exportable_tasks",
    "get_export_config",
    "register_with_optimum_tasks_manager",
]


class HfdlImageClassificationExportConfig(_ExporterBase):
    """Export description shared by hfdl's image classifiers: ``pixel_values`` in, ``logits`` out.

    Only the batch axis is dynamic: every hfdl image model checks ``(channels, image_size, image_size)`` against
    its config, so those sides are fixed by the checkpoint, not by the caller.

    Args:
        config: The model's config (its ``model_type`` must be this class's :attr:`MODEL_TYPE`).
        task: The task of the exported head; only ``"image-classification"`` is supported.
        int_dtype, float_dtype: Dummy input dtypes, as in optimum.
        preprocessors: Accepted because optimum's exporters pass them; kept as ``_preprocessors`` like optimum does.
        use_past: Accepted because optimum's task registry may pass it; must be ``False`` (no model here has a cache).
        output_hidden_states: Also export every hidden state, as outputs ``hidden_states.0``, ``hidden_states.1``, ...
            (optimum's names for a flattened tuple). The Gradio Space reads LeNet-5's C1 feature maps this way.
    """

    #: Set by each subclass; the key of :data:`EXPORT_CONFIG_CLASSES`.
    MODEL_TYPE: str = ""
    SUPPORTED_TASKS: tuple[str, ...] = ("image-classification",)
    # 18 is the opset torch's dynamo exporter is built on (lower ones go through a lossy version converter), and one
    # optimum-onnx's legacy exporter also handles.
    DEFAULT_ONNX_OPSET = 18
    # Measured differences are ~1e-7 (float32 reordering); 1e-4 leaves room for larger presets and still flags any
    # real mismatch, which shows up as differences of 1e-2 or more.
    ATOL_FOR_VALIDATION = 1e-4
    NORMALIZED_CONFIG_CLASS = NormalizedVisionConfig.with_args(image_size="image_size", num_channels="num_channels")
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyVisionInputGenerator,)

    def __init__(
        self,
        config: PretrainedConfig,
        task: str = "image-classification",
        int_dtype: str = "int64",
        float_dtype: str = "fp32",
        preprocessors: list[Any] | None = None,
        use_past: bool = False,
        output_hidden_states: bool = False,
    ) -> None:
        model_type = getattr(config, "model_type", None)
        if model_type != self.MODEL_TYPE:
            raise ValueError(
                f"{type(self).__name__} exports {self.MODEL_TYPE!r} models, got a config of model_type {model_type!r}."
            )
        if task not in self.SUPPORTED_TASKS:
            raise ValueError(_unsupported_task_message(self.MODEL_TYPE, task, self.SUPPORTED_TASKS))
        if use_past:
            raise ValueError(f"`use_past=True` is not supported: {self.MODEL_TYPE} models have no key/value cache.")
        if HAS_OPTIMUM_ONNX:
            super().__init__(
                config, task=task, int_dtype=int_dtype, float_dtype=float_dtype, preprocessors=preprocessors
            )
        else:
            super().__init__(config, task=task, int_dtype=int_dtype, float_dtype=float_dtype)
            self._preprocessors = preprocessors
        self.use_past = False
        self.output_hidden_states = bool(output_hidden_states)

    @property
    def num_hidden_states(self) -> int:
        """How many tensors the model's ``hidden_states`` tuple holds for this config."""
        raise NotImplementedError(f"{type(self).__name__} must define `num_hidden_states`.")

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict({"pixel_values": {0: "batch_size"}})

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        outputs = OrderedDict({"logits": {0: "batch_size"}})
        if self.output_hidden_states:
            for index in range(self.num_hidden_states):
                outputs[f"hidden_states.{index}"] = {0: "batch_size"}
        return outputs

    @property
    def values_override(self) -> dict[str, Any] | None:
        # Optimum's exporter calls the model with only the inputs, so the config decides whether hidden states come
        # out; forcing the value either way keeps the graph's outputs equal to `outputs` whatever the checkpoint says.
        override = dict(super().values_override or {})
        override["output_hidden_states"] = self.output_hidden_states
        return override


class MLPExportConfig(HfdlImageClassificationExportConfig):
    """The MLP's image head. Its ``tabular-regression`` head is not exported: transformers has no Auto class for it,
    so neither exporter can load it by task (see :data:`NOT_EXPORTED`)."""

    MODEL_TYPE = "hfdl-mlp"

    @property
    def num_hidden_states(self) -> int:
        return 1 + len(self._config.hidden_sizes)  # the flattened input, then one per hidden layer


class LeNet5ExportConfig(HfdlImageClassificationExportConfig):
    """LeNet-5; with hidden states, ``hidden_states.0`` is C1's feature maps (batch, C1, H - k + 1, W - k + 1)."""

    MODEL_TYPE = "hfdl-lenet5"

    @property
    def num_hidden_states(self) -> int:
        return 6  # C1, S2, C3, S4 feature maps, then C5 and F6


#: model_type -> export config class; one entry per hfdl architecture (checked against the registry by the tests).
EXPORT_CONFIG_CLASSES: dict[str, type[HfdlImageClassificationExportConfig]] = {
    config_class.MODEL_TYPE: config_class for config_class in (MLPExportConfig, LeNet5ExportConfig)
}

#: (model_type, task) heads that exist in hfdl but are deliberately not exported, and why.
NOT_EXPORTED: dict[tuple[str, str], str] = {
    ("hfdl-mlp", "tabular-regression"): (
        "transformers has no Auto class for tabular regression, so the head cannot be loaded by task "
        "(nor by optimum's exporter); use MLPForRegression in PyTorch"
    ),
}


def _unsupported_task_message(model_type: str, task: str, supported: tuple[str, ...]) -> str:
    reason = NOT_EXPORTED.get((model_type, task))
    message = f"Cannot export the {task!r} task of {model_type!r}; exportable tasks: {', '.join(supported)}."
    return f"{message} ({reason}.)" if reason else message


def exportable_tasks() -> dict[str, tuple[str, ...]]:
    """model_type -> the tasks that can be exported, e.g. ``{"hfdl-lenet5": ("image-classification",)}``."""
    return {model_type: cls.SUPPORTED_TASKS for model_type, cls in EXPORT_CONFIG_CLASSES.items()}


def get_export_config(
    config: PretrainedConfig,
    task: str,
    *,
    output_hidden_states: bool = False,
    preprocessors: list[Any] | None = None,
) -> HfdlImageClassificationExportConfig:
    """Build the export config of a model from its config and task (the one entry point both exporters use).

    Raises:
        ValueError: If the ``model_type`` is not an hfdl architecture or the task is not exportable for it.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in EXPORT_CONFIG_CLASSES:
        raise ValueError(
            f"No hfdl export config for model_type {model_type!r}; known: {', '.join(sorted(EXPORT_CONFIG_CLASSES))}."
        )
    config_class = EXPORT_CONFIG_CLASSES[model_type]
    if task not in config_class.SUPPORTED_TASKS:
        raise ValueError(_unsupported_task_message(model_type, task, config_class.SUPPORTED_TASKS))
    return config_class(config, task=task, preprocessors=preprocessors, output_hidden_states=output_hidden_states)


def register_with_optimum_tasks_manager() -> list[tuple[str, str]]:
    """Register every config with optimum's ``TasksManager`` for the ``onnx`` backend and return what was registered.

    With optimum-onnx installed this makes ``ORTModelForImageClassification.from_pretrained(src, export=True)`` and
    ``main_export`` find hfdl's configs without ``custom_onnx_configs``. Registration is process-wide and idempotent.
    Without optimum-onnx there is no exporter that reads the registry, so nothing is registered and ``[]`` comes
    back (and optimum 2.3 core's ``optimum.exporters.tasks`` does not even import on transformers 5 without
    ``requests``, which huggingface_hub 1.x no longer pulls in).
    """
    if not HAS_OPTIMUM_ONNX:
        return []
    from optimum.exporters.tasks import TasksManager

    register = TasksManager.create_register("onnx", overwrite_existing=True)
    registered = []
    for model_type, config_class in EXPORT_CONFIG_CLASSES.items():
        register(model_type, *config_class.SUPPORTED_TASKS)(config_class)
        registered += [(model_type, task) for task in config_class.SUPPORTED_TASKS]
    return registered
