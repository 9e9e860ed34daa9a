"""What hfdl knows about an architecture and each of its heads, as plain data the whole library reads.

An :class:`ArchitectureSpec` is declared once, in its model folder's ``__init__.py`` (``ARCHITECTURE = ...``); the
registry collects them. Each head is a :class:`TaskSpec` that says what the contract tests, the exporter, the CLI
and the recipes need to drive it without knowing the architecture: its inputs (names, dtypes, dynamic axes), how
to make labels, its main output, its processor, its Auto class and Hub pipeline tag, its export config and its
recipe. The task templates at the bottom (:func:`image_classification`, ...) build the usual ones, so a new head
of a known kind is one line in its folder and no test has to change.

This module imports nothing from hfdl, so model folders can import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import PretrainedConfig, PreTrainedModel

InputKind = Literal["float", "token_ids", "attention_mask", "class_index"]
LabelKind = Literal["class_index", "regression", "token_class_index", "token_ids", "pixel_values"]
ProcessorKind = Literal["image", "tokenizer"]


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, what it holds and its shape for a given config.

    ``shape`` gives one example's shape (no batch axis) for a config; for inputs with a free axis (a sequence) it
    gives a small example length. ``dynamic_axes`` names the axes that may change between calls (the batch axis
    always), as exported graphs declare them. ``vocab_size`` bounds the values of token ids and class indices
    (``class_index``: one class per example, e.g. a conditional GAN's ``class_labels``). ``present`` says whether a
    config takes the input at all (a GAN takes ``class_labels`` only when it is conditional); ``None`` means always.
    """

    name: str
    kind: InputKind
    shape: Callable[[PretrainedConfig], tuple[int, ...]]
    dynamic_axes: dict[int, str] = field(default_factory=lambda: {0: "batch_size"})
    vocab_size: Callable[[PretrainedConfig], int] | None = None
    present: Callable[[PretrainedConfig], bool] | None = None

    def is_present(self, config: PretrainedConfig) -> bool:
        """Whether a model built from ``config`` takes this input."""
        return self.present is None or bool(self.present(config))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.kind == "float" else torch.int64

    def make(self, config: PretrainedConfig, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """A valid random value of this input for ``config`` (standard normal floats, uniform token ids, ones)."""
        shape = (batch_size, *self.shape(config))
        if self.kind == "float":
            return torch.randn(shape, generator=generator)
        if self.kind in ("token_ids", "class_index"):
            return torch.randint(0, self.vocab_size(config), shape, generator=generator)
        return torch.ones(shape, dtype=torch.int64)


@dataclass(frozen=True)
class TaskSpec:
    """One head of an architecture and everything the library's generic code needs to drive it.

    Attributes:
        task: The Hub pipeline tag (``image-classification``, ``feature-extraction``, ...); unique per architecture.
        model_class: The ``PreTrainedModel`` subclass of the head.
        auto_class: Its transformers Auto class, or ``None`` where transformers has none (tabular regression);
            such heads load through their own class and cannot be Hub remote code.
        inputs: The inputs the head takes, in order.
        main_output: The ``ModelOutput`` field that carries the head's result.
        labels: How to make training targets (``class_index``: ints in ``[0, num_labels)``; ``regression``: floats
            of shape (batch, num_labels); ``token_class_index``: one class per token, (batch, sequence);
            ``token_ids``: one vocabulary id per token, (batch, sequence), for language models; ``pixel_values``: the
            target image, in [0, 1] and of the input's shape, for autoencoders), or ``None`` for heads without a loss.
        processor: What turns raw data into the inputs (``image`` processor, ``tokenizer``) or ``None``.
        export_config: The name of its export config class in :mod:`hfdl.export.configs`, or ``None``.
        not_exported: Why the head is not exported, when ``export_config`` is ``None``.
        recipe: The recipe in ``recipes/`` that trains it, if any.
    """

    task: str
    model_class: type[PreTrainedModel]
    auto_class: type | None
    inputs: tuple[InputSpec, ...]
    main_output: str
    labels: LabelKind | None = None
    processor: ProcessorKind | None = None
    export_config: str | None = None
    not_exported: str | None = None
    recipe: str | None = None

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def make_inputs(self, config: PretrainedConfig, batch_size: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
        """Seeded, valid inputs for a model of this head built from ``config`` (tests, export, tools)."""
        generator = torch.Generator().manual_seed(seed)
        return {spec.name: spec.make(config, batch_size, generator) for spec in self.inputs if spec.is_present(config)}

    def make_labels(self, config: PretrainedConfig, batch_size: int = 2, seed: int = 0) -> torch.Tensor | None:
        """Seeded, valid training targets for this head (``None`` for heads without a loss)."""
        generator = torch.Generator().manual_seed(seed)
        if self.labels == "class_index":
            return torch.randint(0, config.num_labels, (batch_size,), generator=generator)
        if self.labels == "regression":
            return torch.randn((batch_size, config.num_labels), generator=generator)
        if self.labels == "pixel_values":
            return torch.rand((batch_size, *self.inputs[0].shape(config)), generator=generator)
        per_token = (batch_size, *self.inputs[0].shape(config))
        if self.labels == "token_class_index":
            return torch.randint(0, config.num_labels, per_token, generator=generator)
        if self.labels == "token_ids":
            return torch.randint(0, config.vocab_size, per_token, generator=generator)
        return None

    def output_shape(self, config: PretrainedConfig, batch_size: int) -> tuple[int, ...] | None:
        """The main output's shape for a batch of example inputs, for heads with labels (``None`` otherwise)."""
        if self.labels in ("class_index", "regression"):
            return (batch_size, config.num_labels)
        if self.labels == "pixel_values":
            return (batch_size, *self.inputs[0].shape(config))
        per_token = (batch_size, *self.inputs[0].shape(config))
        if self.labels == "token_class_index":
            return (*per_token, config.num_labels)
        if self.labels == "token_ids":
            return (*per_token, config.vocab_size)
        return None


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture: its config, heads, presets, and what tests and tools feed it.

    ``tasks[0]`` is the default head of :func:`hfdl.create_model`; a ``feature-extraction`` (or
    ``image-feature-extraction``) task, if any, is the base model that ``AutoModel`` loads. Preset names are unique
    across the registry and never equal an architecture name: a bare architecture name means ``default_preset``.
    """

    name: str
    model_type: str
    chapter: str
    paper: str
    config_class: type[PretrainedConfig]
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

    def __post_init__(self) -> None:
        if self.default_preset not in self.presets:
            raise ValueError(f"{self.name}: default preset {self.default_preset!r} is not one of its presets.")
        tasks = [task.task for task in self.tasks]
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"{self.name}: tasks must be non-empty and unique, got {tasks}.")

    def task(self, task: str | None = None) -> TaskSpec:
        """The head for ``task`` (default: the architecture's first, main head)."""
        if task is None:
            return self.tasks[0]
        for spec in self.tasks:
            if spec.task == task:
                return spec
        raise ValueError(f"{self.name} has no {task!r} head; available: {', '.join(t.task for t in self.tasks)}.")

    @property
    def base_task(self) -> TaskSpec | None:
        """The base model's task (what ``AutoModel`` loads), if the architecture has one."""
        return next((t for t in self.tasks if t.task in BASE_MODEL_TASKS), None)

    def make_config(self, preset: str | None = None, **overrides: Any) -> PretrainedConfig:
        """Build a config from a preset (default: the architecture's default preset) and overrides."""
        preset = preset or self.default_preset
        if preset not in self.presets:
            raise ValueError(f"Unknown preset {preset!r} for {self.name}; available: {', '.join(self.presets)}.")
        return self.config_class(**{**self.presets[preset], **overrides})

    def make_image_processor(self, config: PretrainedConfig) -> Any:
        """The image processor matching ``config``'s input size and channels, or ``None`` for non-image models."""
        if self.image_processor_class is None or getattr(config, "image_size", None) is None:
            return None
        return self.image_processor_class(size=config.image_size, num_channels=config.num_channels)


#: Tasks of base models (no head): what ``AutoModel`` loads and what a backbone exports. Generative models (an
#: autoencoder's reconstruction, a GAN's generation) are whole models with no head to swap, so AutoModel loads them.
BASE_MODEL_TASKS = (
    "feature-extraction",
    "image-feature-extraction",
    "image-to-image",
    "unconditional-image-generation",
)


# --------------------------------------------------------------------------------------------- inputs
def image_input() -> InputSpec:
    """``pixel_values`` (batch, num_channels, image_size, image_size), fixed by the config."""
    return InputSpec(
        "pixel_values", "float", lambda config: (config.num_channels, config.image_size, config.image_size)
    )


def feature_vector_input() -> InputSpec:
    """``input_features`` (batch, input_size): a flat vector of real features."""
    return InputSpec("input_features", "float", lambda config: (config.input_size,))


def text_inputs(example_length: int = 8) -> tuple[InputSpec, InputSpec]:
    """``input_ids`` and ``attention_mask`` (batch, sequence_length), both axes dynamic."""
    axes = {0: "batch_size", 1: "sequence_length"}
    return (
        InputSpec("input_ids", "token_ids", lambda config: (example_length,), dict(axes), lambda c: c.vocab_size),
        InputSpec("attention_mask", "attention_mask", lambda config: (example_length,), dict(axes)),
    )


def latent_input() -> InputSpec:
    """``latents`` (batch, latent_dim): the noise vector a generator or decoder maps to an image."""
    return InputSpec("latents", "float", lambda config: (config.latent_dim,))


def class_labels_input() -> InputSpec:
    """``class_labels`` (batch,): the class a conditional generator is asked for, present only when
    ``config.num_classes > 0``."""
    return InputSpec(
        "class_labels",
        "class_index",
        lambda config: (),
        vocab_size=lambda config: config.num_classes,
        present=lambda config: getattr(config, "num_classes", 0) > 0,
    )


# --------------------------------------------------------------------------------------------- task templates
def image_classification(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A classifier over images: ``pixel_values`` in, ``logits`` out, cross-entropy (or BCE) with class labels."""
    from transformers import AutoModelForImageClassification

    return TaskSpec(
        task="image-classification",
        model_class=model_class,
        auto_class=AutoModelForImageClassification,
        inputs=(image_input(),),
        main_output="logits",
        labels="class_index",
        processor="image",
        export_config="ImageClassificationExportConfig",
        recipe="train_image_classifier",
    )


def image_feature_extraction(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A base model over images: ``pixel_values`` in, ``last_hidden_state`` (and hidden states) out."""
    from transformers import AutoModel

    return TaskSpec(
        task="image-feature-extraction",
        model_class=model_class,
        auto_class=AutoModel,
        inputs=(image_input(),),
        main_output="last_hidden_state",
        processor="image",
        export_config="ImageFeatureExtractionExportConfig",
    )


def backbone(model_class: type[PreTrainedModel]) -> TaskSpec:
    """Per-stage feature maps for detection and segmentation heads (transformers' ``AutoBackbone``): ``pixel_values``
    in, ``feature_maps`` (a tuple of (batch, channels, height, width), one per ``config.out_indices``) out."""
    from transformers import AutoBackbone

    return TaskSpec(
        task="backbone",
        model_class=model_class,
        auto_class=AutoBackbone,
        inputs=(image_input(),),
        main_output="feature_maps",
        processor="image",
        not_exported=(
            "neither transformers nor optimum has an ONNX task for backbones; export the base model "
            "(image-feature-extraction) with `hfdl export onnx --hidden-states`, whose outputs are every stage's maps"
        ),
    )


def feature_extraction(model_class: type[PreTrainedModel], inputs: tuple[InputSpec, ...]) -> TaskSpec:
    """A base model over vectors or text: ``inputs`` in, ``last_hidden_state`` out."""
    from transformers import AutoModel

    is_text = inputs and inputs[0].name == "input_ids"
    return TaskSpec(
        task="feature-extraction",
        model_class=model_class,
        auto_class=AutoModel,
        inputs=inputs,
        main_output="last_hidden_state",
        processor="tokenizer" if is_text else None,
        export_config="TextFeatureExtractionExportConfig" if is_text else "FeatureVectorExportConfig",
    )


def tabular_regression(model_class: type[PreTrainedModel]) -> TaskSpec:
    """Real-valued targets from a feature vector, trained with mean squared error."""
    return TaskSpec(
        task="tabular-regression",
        model_class=model_class,
        auto_class=None,
        inputs=(feature_vector_input(),),
        main_output="predictions",
        labels="regression",
        not_exported=(
            "transformers has no Auto class for tabular regression, so the head cannot be loaded by task "
            "(nor by optimum's exporter); use its class in PyTorch"
        ),
    )


# --------------------------------------------------------------------------------------------- text task templates
def fill_mask(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A masked language model: token ids in, a vocabulary distribution per position (``logits``) out."""
    from transformers import AutoModelForMaskedLM

    return TaskSpec(
        task="fill-mask",
        model_class=model_class,
        auto_class=AutoModelForMaskedLM,
        inputs=text_inputs(),
        main_output="logits",
        labels="token_ids",
        processor="tokenizer",
        export_config="FillMaskExportConfig",
        recipe="train_mlm",
    )


def text_classification(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A sequence classifier: token ids in, ``logits`` (batch, num_labels) out, trained on class indices."""
    from transformers import AutoModelForSequenceClassification

    return TaskSpec(
        task="text-classification",
        model_class=model_class,
        auto_class=AutoModelForSequenceClassification,
        inputs=text_inputs(),
        main_output="logits",
        labels="class_index",
        processor="tokenizer",
        export_config="TextClassificationExportConfig",
        recipe="train_text_classifier",
    )


def token_classification(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A tagger (named entities, parts of speech): one class per token, ``logits`` (batch, sequence, num_labels)."""
    from transformers import AutoModelForTokenClassification

    return TaskSpec(
        task="token-classification",
        model_class=model_class,
        auto_class=AutoModelForTokenClassification,
        inputs=text_inputs(),
        main_output="logits",
        labels="token_class_index",
        processor="tokenizer",
        export_config="TokenClassificationExportConfig",
    )


def text_generation(model_class: type[PreTrainedModel]) -> TaskSpec:
    """A causal language model: next-token ``logits`` (batch, sequence, vocab), trained on the ids themselves."""
    from transformers import AutoModelForCausalLM

    return TaskSpec(
        task="text-generation",
        model_class=model_class,
        auto_class=AutoModelForCausalLM,
        inputs=text_inputs(),
        main_output="logits",
        labels="token_ids",
        processor="tokenizer",
        export_config="TextGenerationExportConfig",
        recipe="train_causal_lm",
    )


# --------------------------------------------------------------------------------------------- generative templates
def image_reconstruction(model_class: type[PreTrainedModel], not_exported: str) -> TaskSpec:
    """An autoencoder: ``pixel_values`` in, their ``reconstruction`` (in [0, 1]) out, trained against target images.

    The whole model is what ``AutoModel`` loads (its encoder and decoder are its parts, not a body and a head). The
    single-graph exporter does not serve it: its parts are exported one graph each (``not_exported`` says how).
    """
    from transformers import AutoModel

    return TaskSpec(
        task="image-to-image",
        model_class=model_class,
        auto_class=AutoModel,
        inputs=(image_input(),),
        main_output="reconstruction",
        labels="pixel_values",
        processor="image",
        not_exported=not_exported,
        recipe="train_autoencoder",
    )


def image_generation(model_class: type[PreTrainedModel], not_exported: str) -> TaskSpec:
    """A generator: ``latents`` (and ``class_labels`` for a conditional one) in, ``images`` out; trained
    adversarially by its recipe, so the forward has no loss."""
    from transformers import AutoModel

    return TaskSpec(
        task="unconditional-image-generation",
        model_class=model_class,
        auto_class=AutoModel,
        inputs=(latent_input(), class_labels_input()),
        main_output="images",
        not_exported=not_exported,
        recipe="train_gan",
    )
