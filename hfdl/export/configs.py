"""Optimum export configs for hfdl's tasks: what an exported graph takes, returns, and how it is checked.

One class per *task*, not per architecture: a head's :class:`~hfdl.specs.TaskSpec` names its class
(``export_config="ImageClassificationExportConfig"``) and gives its inputs with their dynamic axes; the class knows
how to make dummy values of those inputs (optimum's generators) and which outputs the task returns (``logits`` or
``last_hidden_state``, then ``hidden_states.0``, ``hidden_states.1``, ... on request). A new architecture therefore
never touches this file, and a new task adds one short class.

Two exporters read these classes:

* hfdl's own exporter (:mod:`hfdl.export.onnx`), on transformers 5 with optimum *core*, which has
  ``ExporterConfig``, the normalized configs and the dummy input generators but no ONNX exporter;
* Optimum's official exporter (``optimum.exporters.onnx.main_export`` and ``ORTModel*.from_pretrained(export=True)``,
  from the ``optimum-onnx`` package), which still pins ``transformers<4.58`` and so runs in a separate venv
  (``tests/optimum_lane``) where hfdl is not installed and this file is loaded by path.

Hence the rules of this module: it imports only the standard library and optimum (never hfdl), whatever it needs
to know about a model comes in as arguments (the inputs of its task spec, the number of its hidden states), and it
picks its base class at import time: ``OnnxConfig`` where optimum-onnx is installed, ``ExporterConfig`` elsewhere
(optimum-onnx's ``OnnxConfig`` subclasses ``ExporterConfig``, and optimum 2.1 and 2.3 share the generators, so one
class body serves both).
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

from optimum.utils import (
    DEFAULT_DUMMY_SHAPES,
    DummyInputGenerator,
    DummyPastKeyValuesGenerator,
    DummyTextInputGenerator,
    DummyVisionInputGenerator,
    NormalizedConfig,
    NormalizedTextConfig,
    NormalizedVisionConfig,
)

try:  # optimum-onnx (transformers < 4.58): the official exporter's base, which main_export expects.
    from optimum.exporters.onnx import OnnxConfig as _ExporterBase
    from optimum.exporters.onnx.base import OnnxConfigWithPast as _PastBase

    HAS_OPTIMUM_ONNX = True
except ImportError:  # optimum core only (transformers 5): the exporter-neutral base.
    from optimum.exporters.base import ExporterConfig as _ExporterBase

    class _PastBase:  # noqa: D101 - stands in for optimum-onnx's OnnxConfigWithPast, which core optimum lacks
        pass

    HAS_OPTIMUM_ONNX = False

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "EXPORT_CONFIG_CLASSES",
    "HAS_OPTIMUM_ONNX",
    "DummyFeatureVectorInputGenerator",
    "FeatureVectorExportConfig",
    "HfdlExportConfig",
    "ImageClassificationExportConfig",
    "ImageFeatureExtractionExportConfig",
    "TextClassificationExportConfig",
    "TextFeatureExtractionExportConfig",
    "TextGenerationExportConfig",
    "TextGenerationWithPastExportConfig",
    "TokenClassificationExportConfig",
    "FillMaskExportConfig",
    "count_hidden_states",
    "generate_seeded_dummy_inputs",
    "get_export_config",
    "register_with_optimum_tasks_manager",
]

#: Dynamic axes: only the batch for fixed-size inputs (images, feature vectors), batch and sequence for text.
BATCH_AXES = {0: "batch_size"}
TEXT_AXES = {0: "batch_size", 1: "sequence_length"}


class DummyFeatureVectorInputGenerator(DummyInputGenerator):
    """``input_features`` of shape (batch_size, input_size): flat real-valued feature vectors.

    optimum's own ``input_features`` generator is the audio one, which makes (batch, mel bins, frames) tensors.
    """

    SUPPORTED_INPUT_NAMES = ("input_features",)

    def __init__(
        self,
        task: str,
        normalized_config: NormalizedConfig,
        batch_size: int = DEFAULT_DUMMY_SHAPES["batch_size"],
        **kwargs: Any,
    ) -> None:
        self.task = task
        self.batch_size = batch_size
        self.input_size = normalized_config.input_size

    def generate(
        self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"
    ) -> Any:  # a tensor of `framework` (torch or numpy)
        return self.random_float_tensor([self.batch_size, self.input_size], framework=framework, dtype=float_dtype)


class HfdlExportConfig(_ExporterBase):
    """What every hfdl export config shares: inputs from the task spec, outputs from the task, hidden states.

    Subclasses set the class attributes below and nothing else.

    Args:
        config: The model's config.
        task: The task of the exported head (default: the class's first of :attr:`TASKS`). Synonyms that optimum
            uses are accepted too (it calls ``image-feature-extraction`` ``feature-extraction``).
        int_dtype, float_dtype: Dummy input dtypes, as in optimum.
        preprocessors: Accepted because optimum's exporters pass them; kept as ``_preprocessors`` like optimum does.
        use_past: Export a key/value cache (``present.<i>.key``/``.value`` outputs); only classes with
            :attr:`SUPPORTS_PAST` (:class:`TextGenerationWithPastExportConfig`) accept ``True``.
        use_past_in_inputs: Also take the cache as ``past_key_values.<i>.key``/``.value`` inputs (needs
            ``use_past``); optimum's decoder export sets it.
        inputs: The head's inputs, name -> dynamic axes (``{"pixel_values": {0: "batch_size"}}``), in the model's
            argument order, as its task spec declares them; default :attr:`DEFAULT_INPUTS`. Every name must be one
            the class's dummy input generators can make.
        output_hidden_states: Also export every hidden state, as outputs ``hidden_states.0``, ``hidden_states.1``,
            ... (optimum's names for a flattened tuple). The Gradio Space reads LeNet-5's C1 feature maps this way.
        num_hidden_states: How many hidden states the model returns; required with ``output_hidden_states``.
            Architectures differ, so it is read off the model (:func:`count_hidden_states`), not declared here.
    """

    #: The tasks this config exports; the first is the default.
    TASKS: tuple[str, ...] = ()
    #: The inputs when the task spec gives none, name -> dynamic axes.
    DEFAULT_INPUTS: dict[str, dict[int, str]] = {}
    #: The output that carries the task's result, and its dynamic axes.
    MAIN_OUTPUT: str = ""
    MAIN_OUTPUT_AXES: dict[int, str] = BATCH_AXES
    #: The dynamic axes of each hidden state.
    HIDDEN_STATES_AXES: dict[int, str] = BATCH_AXES
    #: Config fields the dummy input generators read; checked up front for a clear error.
    REQUIRED_CONFIG_FIELDS: tuple[str, ...] = ()
    #: Whether the exported graph can carry a key/value cache (``use_past``).
    SUPPORTS_PAST = False
    # 18 is the opset torch's dynamo exporter is built on (lower ones go through a lossy version converter), and one
    # optimum-onnx's exporter also handles.
    DEFAULT_ONNX_OPSET = 18
    # Measured differences are ~1e-7 (float32 reordering); 1e-4 leaves room for larger presets and still flags any
    # real mismatch, which shows up as differences of 1e-2 or more.
    ATOL_FOR_VALIDATION = 1e-4

    def __init__(
        self,
        config: PretrainedConfig,
        task: str | None = None,
        int_dtype: str = "int64",
        float_dtype: str = "fp32",
        preprocessors: list[Any] | None = None,
        use_past: bool = False,
        inputs: dict[str, dict[int, str]] | None = None,
        output_hidden_states: bool = False,
        num_hidden_states: int | None = None,
        use_past_in_inputs: bool = False,
    ) -> None:
        name = type(self).__name__
        task = self.TASKS[0] if task is None else task
        if task not in self.TASKS:
            raise ValueError(f"{name} exports the {' or '.join(map(repr, self.TASKS))} task, got {task!r}.")
        if use_past and not self.SUPPORTS_PAST:
            raise ValueError(
                f"`use_past=True` is not supported: {name} exports models without a key/value cache "
                "(TextGenerationWithPastExportConfig exports a decoder with one, through optimum-onnx)."
            )
        if use_past_in_inputs and not use_past:
            raise ValueError("`use_past_in_inputs=True` needs `use_past=True`: a graph that takes a cache returns one.")
        missing = [field for field in self.REQUIRED_CONFIG_FIELDS if getattr(config, field, None) is None]
        if missing:
            raise ValueError(f"{name} needs {', '.join(f'`{f}`' for f in missing)} in the model's config.")
        if output_hidden_states:
            _check_num_hidden_states(num_hidden_states)
        if HAS_OPTIMUM_ONNX:
            super().__init__(
                config, task=task, int_dtype=int_dtype, float_dtype=float_dtype, preprocessors=preprocessors
            )
        else:
            super().__init__(config, task=task, int_dtype=int_dtype, float_dtype=float_dtype)
            self._preprocessors = preprocessors
        self.use_past = bool(use_past)
        self.use_past_in_inputs = bool(use_past_in_inputs)
        self._inputs = self._check_inputs(self.DEFAULT_INPUTS if inputs is None else inputs)
        self.output_hidden_states = bool(output_hidden_states)
        self.num_hidden_states = num_hidden_states if output_hidden_states else None

    def enable_hidden_states(self, num_hidden_states: int) -> None:
        """Also export the model's ``num_hidden_states`` hidden states (``output_hidden_states=True`` afterwards).

        For the exporters, which count them (:func:`count_hidden_states`) with this very config's dummy inputs.
        """
        _check_num_hidden_states(num_hidden_states)
        self.output_hidden_states = True
        self.num_hidden_states = num_hidden_states

    def _check_inputs(self, inputs: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
        """Check that every input has a batch axis and that the class's generators can make a dummy value of it."""
        name = type(self).__name__
        makeable = [n for generator in self.DUMMY_INPUT_GENERATOR_CLASSES for n in generator.SUPPORTED_INPUT_NAMES]
        if not inputs:
            raise ValueError(f"{name} needs at least one input.")
        checked = {}
        for input_name, axes in inputs.items():
            if input_name not in makeable:
                raise ValueError(
                    f"{name} cannot make dummy values of input {input_name!r}; its generators make: "
                    f"{', '.join(makeable)}."
                )
            axes = {int(axis): str(axis_name) for axis, axis_name in dict(axes).items()}  # JSON gives "0": ...
            if axes.get(0) != "batch_size":
                raise ValueError(
                    f"Input {input_name!r} must have a dynamic batch axis {{0: 'batch_size'}}, got {axes}."
                )
            checked[input_name] = axes
        return checked

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return {input_name: dict(axes) for input_name, axes in self._inputs.items()}

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        outputs = {self.MAIN_OUTPUT: dict(self.MAIN_OUTPUT_AXES)}
        for index in range(self.num_hidden_states or 0):
            outputs[f"hidden_states.{index}"] = dict(self.HIDDEN_STATES_AXES)
        return outputs

    @property
    def values_override(self) -> dict[str, Any] | None:
        # Optimum's exporter calls the model with only the inputs, so the config decides whether hidden states come
        # out; forcing the value either way keeps the graph's outputs equal to `outputs` whatever the checkpoint says.
        override = dict(super().values_override or {})
        override["output_hidden_states"] = self.output_hidden_states
        return override


def _check_num_hidden_states(num_hidden_states: Any) -> None:
    if isinstance(num_hidden_states, bool) or not isinstance(num_hidden_states, int) or num_hidden_states < 1:
        raise ValueError(
            "`output_hidden_states=True` needs `num_hidden_states`, the length of the model's hidden_states "
            f"tuple (count_hidden_states(model, export_config) reads it off the model), got {num_hidden_states!r}."
        )


class ImageClassificationExportConfig(HfdlExportConfig):
    """An image classifier: ``pixel_values`` (batch, channels, side, side) in, ``logits`` (batch, labels) out.

    Only the batch axis is dynamic: hfdl's image models check ``(channels, image_size, image_size)`` against their
    config, so those sides are fixed by the checkpoint, not by the caller.
    """

    TASKS = ("image-classification",)
    DEFAULT_INPUTS = {"pixel_values": BATCH_AXES}
    MAIN_OUTPUT = "logits"
    REQUIRED_CONFIG_FIELDS = ("num_channels", "image_size")
    NORMALIZED_CONFIG_CLASS = NormalizedVisionConfig.with_args(image_size="image_size", num_channels="num_channels")
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyVisionInputGenerator,)


class ImageFeatureExtractionExportConfig(ImageClassificationExportConfig):
    """A base model over images: ``pixel_values`` in, ``last_hidden_state`` out (LeNet-5's F6: (batch, 84))."""

    TASKS = ("image-feature-extraction", "feature-extraction")
    MAIN_OUTPUT = "last_hidden_state"


class FeatureVectorExportConfig(HfdlExportConfig):
    """A base model over flat feature vectors: ``input_features`` (batch, input_size) in, ``last_hidden_state`` out."""

    TASKS = ("feature-extraction",)
    DEFAULT_INPUTS = {"input_features": BATCH_AXES}
    MAIN_OUTPUT = "last_hidden_state"
    REQUIRED_CONFIG_FIELDS = ("input_size",)
    NORMALIZED_CONFIG_CLASS = NormalizedConfig.with_args(input_size="input_size", allow_new=True)
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyFeatureVectorInputGenerator,)


class TextFeatureExtractionExportConfig(HfdlExportConfig):
    """A text encoder: ``input_ids`` and ``attention_mask`` (batch, sequence) in, ``last_hidden_state``
    (batch, sequence, hidden) out; batch and sequence length are dynamic everywhere."""

    TASKS = ("feature-extraction",)
    DEFAULT_INPUTS = {"input_ids": TEXT_AXES, "attention_mask": TEXT_AXES}
    MAIN_OUTPUT = "last_hidden_state"
    MAIN_OUTPUT_AXES = TEXT_AXES
    HIDDEN_STATES_AXES = TEXT_AXES
    REQUIRED_CONFIG_FIELDS = ("vocab_size",)
    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator,)


class TextClassificationExportConfig(TextFeatureExtractionExportConfig):
    """A sequence classifier over text: ``logits`` (batch, labels) out."""

    TASKS = ("text-classification",)
    MAIN_OUTPUT = "logits"
    MAIN_OUTPUT_AXES = BATCH_AXES


class FillMaskExportConfig(TextFeatureExtractionExportConfig):
    """A masked language model: ``logits`` (batch, sequence, vocab) out, one vocabulary distribution per token."""

    TASKS = ("fill-mask",)
    MAIN_OUTPUT = "logits"


class TokenClassificationExportConfig(TextFeatureExtractionExportConfig):
    """A tagger: ``logits`` (batch, sequence, num_labels) out, one class distribution per token."""

    TASKS = ("token-classification",)
    MAIN_OUTPUT = "logits"


class TextGenerationExportConfig(TextFeatureExtractionExportConfig):
    """A causal language model without key/value cache: ``logits`` (batch, sequence, vocab) out, one step per call."""

    TASKS = ("text-generation",)
    MAIN_OUTPUT = "logits"


class TextGenerationWithPastExportConfig(TextGenerationExportConfig, _PastBase):
    """A causal language model with its key/value cache, for Optimum's ``text-generation-with-past`` export.

    With ``use_past`` the graph also returns ``present.<i>.key`` and ``present.<i>.value`` (batch, heads,
    past_sequence_length + sequence_length, head_dim), one pair per layer; with ``use_past_in_inputs`` it takes the
    previous step's as ``past_key_values.<i>.key``/``.value`` and an ``attention_mask`` that covers the cached
    tokens too. That is the graph optimum-onnx's ``ORTModelForCausalLM.generate`` drives one token at a time.

    The cache plumbing (dummy caches, flattening the model's ``DynamicCache`` into named outputs, padding the dummy
    mask to the cache) is optimum-onnx's own ``OnnxConfigWithPast``; it exists only where optimum-onnx is installed
    (transformers < 4.58). On optimum core alone the class is usable without ``use_past`` only, and hfdl's own
    exporter uses :class:`TextGenerationExportConfig` (a graph without cache) for the ``text-generation`` head.
    The model must read its positions from ``attention_mask`` (hfdl's GPT does), since no ``position_ids`` input
    is exported.
    """

    SUPPORTS_PAST = True
    PAD_ATTENTION_MASK_TO_PAST = True
    # optimum's own names for the normalized fields coincide with hfdl's config fields (num_hidden_layers,
    # num_attention_heads, hidden_size, vocab_size); spelled out because DummyPastKeyValuesGenerator reads them.
    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig.with_args(
        num_layers="num_hidden_layers", num_attention_heads="num_attention_heads", hidden_size="hidden_size"
    )
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator, DummyPastKeyValuesGenerator)
    DUMMY_PKV_GENERATOR_CLASS = DummyPastKeyValuesGenerator
    REQUIRED_CONFIG_FIELDS = ("vocab_size", "num_hidden_layers", "num_attention_heads", "hidden_size")

    def __init__(self, config: PretrainedConfig, task: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("use_past") and not HAS_OPTIMUM_ONNX:
            raise ImportError(
                "TextGenerationWithPastExportConfig(use_past=True) needs optimum-onnx (pip install optimum-onnx, "
                "which requires transformers < 4.58) for its cache handling; hfdl's own exporter exports decoders "
                "without cache (TextGenerationExportConfig)."
            )
        if kwargs.get("use_past") and kwargs.get("output_hidden_states"):
            raise ValueError("Export the hidden states without the cache (use_past=False).")
        super().__init__(config, task=task, **kwargs)
        # OnnxConfigWithPast's merged-decoder state (its __init__ sets it too; the stand-in base has none).
        self.is_merged = False
        self.use_cache_branch = None

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        inputs = super().inputs
        if self.use_past_in_inputs:
            inputs["attention_mask"] = {0: "batch_size", 1: "past_sequence_length + sequence_length"}
            self.add_past_key_values(inputs, direction="inputs")
        return inputs

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        outputs = super().outputs
        if self.use_past:
            self.add_past_key_values(outputs, direction="outputs")
        return outputs

    def generate_dummy_inputs(self, framework: str = "pt", **input_shapes: Any) -> dict[str, Any]:
        # The dummy cache is as long as the dummy tokens (optimum's default: 16 + 16); a learned position table
        # must hold both, so the length is capped at half the table.
        limit = getattr(self._config, "max_position_embeddings", None)
        if self.use_past_in_inputs and limit:
            length = input_shapes.get("sequence_length", DEFAULT_DUMMY_SHAPES["sequence_length"])
            input_shapes["sequence_length"] = max(1, min(length, limit // 2))
        return super().generate_dummy_inputs(framework=framework, **input_shapes)


#: Class name -> export config class: what a ``TaskSpec.export_config`` may name.
EXPORT_CONFIG_CLASSES: dict[str, type[HfdlExportConfig]] = {
    config_class.__name__: config_class
    for config_class in (
        ImageClassificationExportConfig,
        ImageFeatureExtractionExportConfig,
        FeatureVectorExportConfig,
        TextFeatureExtractionExportConfig,
        TextClassificationExportConfig,
        FillMaskExportConfig,
        TokenClassificationExportConfig,
        TextGenerationExportConfig,
        TextGenerationWithPastExportConfig,
    )
}


def get_export_config(config: PretrainedConfig, export_config: str, **kwargs: Any) -> HfdlExportConfig:
    """Build the export config named ``export_config`` (a task spec's ``export_config``) for a model's ``config``.

    ``kwargs`` go to the class (``task``, ``inputs``, ``output_hidden_states``, ``num_hidden_states``,
    ``preprocessors``, ...); see :class:`HfdlExportConfig`.
    """
    if export_config not in EXPORT_CONFIG_CLASSES:
        raise ValueError(
            f"No export config named {export_config!r} in hfdl.export.configs; known: "
            f"{', '.join(EXPORT_CONFIG_CLASSES)}."
        )
    return EXPORT_CONFIG_CLASSES[export_config](config, **kwargs)


def generate_seeded_dummy_inputs(export_config: HfdlExportConfig, seed: int = 0, **shapes: int) -> dict[str, Any]:
    """The export config's dummy inputs (torch tensors), seeded (reproducible) without touching the global RNGs.

    optimum's generators draw tensors from torch and attention-mask padding lengths from Python's ``random``; both
    generators are seeded here and restored afterwards, so an export leaves a caller's random streams as they were.
    ``shapes`` are the generators' sizes (``batch_size``, ``sequence_length``, ...).
    """
    import torch  # both exporters' venvs have it; importing this module needs optimum only

    python_state = random.getstate()
    try:
        random.seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return export_config.generate_dummy_inputs(framework="pt", **shapes)
    finally:
        random.setstate(python_state)


def count_hidden_states(model: Any, export_config: HfdlExportConfig) -> int:
    """The length of ``model``'s ``hidden_states`` tuple: one forward pass on the export config's dummy inputs.

    LeNet-5 returns its six layers' activations, an MLP its input and each hidden layer's: the count depends on
    the architecture and its config, so both exporters read it off the model rather than keep a table of it. The
    inputs are seeded (:func:`generate_seeded_dummy_inputs`): counting leaves the global RNGs as they were.
    """
    import torch

    inputs = generate_seeded_dummy_inputs(export_config, batch_size=1)
    with torch.no_grad():
        outputs = model(
            **{n: v.to(model.device) for n, v in inputs.items()}, output_hidden_states=True, return_dict=True
        )
    hidden_states = getattr(outputs, "hidden_states", None)
    if not hidden_states:
        raise ValueError(f"{type(model).__name__} returns no `hidden_states`; export it without hidden states.")
    return len(hidden_states)


def register_with_optimum_tasks_manager(
    model_type: str, task: str, export_config: str, inputs: dict[str, dict[int, str]] | None = None
) -> None:
    """Register an hfdl head with optimum-onnx's ``TasksManager``, so Optimum's own entry points find its config.

    Afterwards ``ORTModelForImageClassification.from_pretrained(checkpoint, export=True, trust_remote_code=True)``
    (or ``main_export`` without ``custom_onnx_configs``) exports an hfdl checkpoint like any model optimum knows.
    Registration is process-wide and replaces an earlier one for the same model type and task.

    Args:
        model_type: The checkpoint's ``model_type`` (``hfdl-lenet5``).
        task: Its task as optimum names it (optimum calls ``image-feature-extraction`` ``feature-extraction``);
            ``text-generation-with-past`` with ``TextGenerationWithPastExportConfig`` exports a decoder with cache
            (optimum then rebuilds the config from its class, so the class's default inputs are used).
        export_config: The export config class name, from the head's task spec.
        inputs: The head's inputs and dynamic axes, from its task spec (default: the class's).

    Raises:
        ImportError: Without optimum-onnx, which has the task registry's exporters (it needs transformers < 4.58).
    """
    if not HAS_OPTIMUM_ONNX:
        raise ImportError(
            "register_with_optimum_tasks_manager needs optimum-onnx (pip install optimum-onnx), whose exporter reads "
            "optimum's task registry; it requires transformers < 4.58. hfdl's own exporter needs no registration."
        )
    from optimum.exporters.tasks import TasksManager

    if export_config not in EXPORT_CONFIG_CLASSES:
        raise ValueError(f"No export config named {export_config!r}; known: {', '.join(EXPORT_CONFIG_CLASSES)}.")
    config_class = EXPORT_CONFIG_CLASSES[export_config]
    if inputs is None:
        constructor = config_class
    else:
        constructor = functools.partial(config_class, inputs=inputs)
        # optimum reads the class attribute off the constructor to accept a "-with-past" task.
        constructor.SUPPORTS_PAST = config_class.SUPPORTS_PAST
    TasksManager.create_register("onnx", overwrite_existing=True)(model_type, task)(constructor)
