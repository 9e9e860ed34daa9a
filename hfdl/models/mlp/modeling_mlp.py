"""The multilayer perceptron of Deep Learning Mastery, ch. 3-4: fully connected layers, a choice of activations and
weight initialisations, dropout, and heads for classification and regression.

This file imports only torch, transformers, the standard library and its sibling configuration, so it runs as Hub
remote code without hfdl installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutputWithNoAttention
from transformers.utils import ModelOutput

from .configuration_mlp import MLPConfig

try:  # transformers >= 5: init functions that skip weights already loaded from a checkpoint
    from transformers import initialization as init
except ImportError:  # transformers 4.x
    from torch.nn import init


# Copied from hfdl.layers.activations.ACTIVATIONS
ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


# Copied from hfdl.layers.activations.get_activation
def get_activation(name: str) -> nn.Module:
    """Build a fresh activation module by name (modules, not functions, so hooks can see them)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


# Copied from hfdl.layers.initialization.INITIALIZERS
INITIALIZERS = ("zeros", "normal", "xavier_uniform", "kaiming_normal")


# Copied from hfdl.layers.initialization.initialize_weight
def initialize_weight(weight: torch.Tensor, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise a Linear/Conv weight in place with one of :data:`INITIALIZERS`.

    ``zeros`` is there to show why it fails (every unit of a layer gets the same gradient, the symmetry is never
    broken); Xavier keeps the variance of tanh/sigmoid activations constant across layers (Glorot & Bengio, 2010);
    He doubles it to make up for ReLU zeroing half the inputs (He et al., 2015).
    """
    if scheme == "zeros":
        init.zeros_(weight)
    elif scheme == "normal":
        init.normal_(weight, mean=0.0, std=std)
    elif scheme == "xavier_uniform":
        init.xavier_uniform_(weight)
    elif scheme == "kaiming_normal":
        # torch's gain table knows relu and leaky_relu; other activations get the plain sqrt(2) ReLU gain.
        mode_nonlinearity = nonlinearity if nonlinearity in ("relu", "leaky_relu") else "relu"
        init.kaiming_normal_(weight, nonlinearity=mode_nonlinearity)
    else:
        raise ValueError(f"Unknown initializer {scheme!r}; allowed: {', '.join(INITIALIZERS)}.")


# Copied from hfdl.layers.initialization.initialize_module
def initialize_module(module: nn.Module, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise Linear and Conv layers with ``scheme``, biases with zeros; leave other modules alone."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
        initialize_weight(module.weight, scheme, std=std, nonlinearity=nonlinearity)
        if module.bias is not None:
            init.zeros_(module.bias)


# Copied from hfdl.layers.inputs.check_image_tensor
def check_image_tensor(pixel_values: object, num_channels: int, image_size: int) -> None:
    """Raise ``ValueError`` unless ``pixel_values`` is a float tensor of shape (batch, C, H, W) the model takes."""
    expected = f"(batch_size, {num_channels}, {image_size}, {image_size})"
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"`pixel_values` must be a torch.Tensor of shape {expected}, got {type(pixel_values)}.")
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"`pixel_values` must be a floating point tensor of shape {expected}, got dtype {pixel_values.dtype} "
            "(run the image processor, which rescales uint8 pixels to floats)."
        )
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (num_channels, image_size, image_size):
        raise ValueError(f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)}.")


# Copied from hfdl.layers.inputs.check_feature_tensor
def check_feature_tensor(input_features: object, input_size: int) -> None:
    """Raise ``ValueError`` unless ``input_features`` is a float tensor of shape (batch, input_size)."""
    expected = f"(batch_size, {input_size})"
    if not isinstance(input_features, torch.Tensor):
        raise ValueError(f"`input_features` must be a torch.Tensor of shape {expected}, got {type(input_features)}.")
    if not input_features.is_floating_point():
        raise ValueError(
            f"`input_features` must be a floating point tensor of shape {expected}, got dtype {input_features.dtype}."
        )
    if input_features.dim() != 2 or input_features.shape[1] != input_size:
        raise ValueError(f"`input_features` must have shape {expected}, got {tuple(input_features.shape)}.")


# Copied from hfdl.layers.model_card.render_model_card
def render_model_card(
    model_name: str,
    model_type: str,
    architecture: str,
    pipeline_tag: str,
    num_parameters: int,
    datasets: list[str] | None = None,
    eval_results: dict[str, float] | None = None,
    eval_dataset: str | None = None,
    description: str = "",
) -> str:
    """Render a model card whose YAML block the Hub reads (JSON scalars are valid YAML, and safe to quote)."""
    q = json.dumps
    lines = ["---", "library_name: transformers", f"pipeline_tag: {q(pipeline_tag)}", "tags:"]
    lines += [f"- {q(tag)}" for tag in ("hfdl", model_type, "custom_code", pipeline_tag)]
    if datasets:
        lines += ["datasets:"] + [f"- {q(name)}" for name in datasets]
    if eval_results:
        lines += ["metrics:"] + [f"- {q(metric)}" for metric in eval_results]
        dataset_name = eval_dataset or (datasets[0] if datasets else "unknown")
        lines += [
            "model-index:",
            f"- name: {q(model_name)}",
            "  results:",
            "  - task:",
            f"      type: {q(pipeline_tag)}",
            "    dataset:",
            f"      name: {q(dataset_name)}",
            f"      type: {q(dataset_name)}",
            "      split: test",
            "    metrics:",
        ]
        for metric, value in eval_results.items():
            lines += [f"    - type: {q(metric)}", f"      value: {q(float(value))}"]
    lines += ["---", "", f"# {model_name}", ""]
    lines += [
        f"A `{architecture}` ({model_type}, {num_parameters:,} parameters) from "
        "[hfdl](https://github.com/hfdl/hfdl), the *Deep Learning Mastery* course library.",
        "",
    ]
    if description:
        lines += [description, ""]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModel",
        "",
        f'model = AutoModel.from_pretrained("{model_name}", trust_remote_code=True)',
        "```",
        "",
        "The modeling code ships with the weights (remote code), so `hfdl` need not be installed; with "
        "`import hfdl` the installed classes are used instead.",
        "",
    ]
    if eval_results:
        lines += ["## Evaluation", "", f"On the test split of `{eval_dataset or 'the evaluation set'}`:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {metric} | {float(value):.4f} |" for metric, value in eval_results.items()]
        lines += [""]
    return "\n".join(lines)


# Copied from hfdl.layers.model_card.write_model_card
def write_model_card(save_directory: str | os.PathLike, card: str) -> None:
    """Write ``card`` to ``save_directory/README.md`` through a temporary file, so a crash leaves no half card."""
    path = os.path.join(os.fspath(save_directory), "README.md")
    tmp_path = path + ".tmp"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        handle.write(card)
    os.replace(tmp_path, path)


# Copied from hfdl.layers.model_card.ModelCardMixin
class ModelCardMixin:
    """Makes ``save_pretrained`` also write a model card (README.md with Hub metadata).

    ``model_card_data`` may carry ``model_name`` (default: the folder name), ``datasets`` (Hub ids), ``eval_results`` (metric -> value), ``eval_dataset`` and
    ``description``; recipes pass their test metrics so the card reports them.
    """

    pipeline_tag = "feature-extraction"

    def save_pretrained(
        self, save_directory: str | os.PathLike, *args, model_card_data: dict | None = None, **kwargs
    ) -> object:
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            data = dict(model_card_data or {})
            card = render_model_card(
                model_name=data.get("model_name") or os.path.basename(os.path.abspath(os.fspath(save_directory))),
                model_type=self.config.model_type,
                architecture=type(self).__name__,
                pipeline_tag=self.pipeline_tag,
                num_parameters=sum(parameter.numel() for parameter in self.parameters()),
                datasets=data.get("datasets"),
                eval_results=data.get("eval_results"),
                eval_dataset=data.get("eval_dataset"),
                description=data.get("description", ""),
            )
            write_model_card(save_directory, card)
        return result


@dataclass
class MLPRegressionOutput(ModelOutput):
    """Output of :class:`MLPForRegression`: ``predictions`` of shape (batch, num_labels) and the MSE ``loss``."""

    loss: torch.Tensor | None = None
    predictions: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class MLPLayer(nn.Module):
    """One hidden layer: ``Linear -> activation -> dropout``."""

    def __init__(self, config: MLPConfig, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = get_activation(config.activation)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.linear(hidden_states)))


class MLPPreTrainedModel(ModelCardMixin, PreTrainedModel):
    config_class = MLPConfig
    base_model_prefix = "mlp"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        # The scheme is a config choice because comparing them is the point of course ch. 4; the output head
        # uses the same scheme so that `zeros` really shows the symmetry problem end to end.
        initialize_module(
            module,
            self.config.initializer,
            std=self.config.initializer_range,
            nonlinearity=self.config.activation,
        )

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """A small valid batch for tests, export and tools."""
        generator = torch.Generator().manual_seed(0)
        if self.main_input_name == "pixel_values":
            shape = (2, self.config.num_channels, self.config.image_size, self.config.image_size)
        else:
            shape = (2, self.config.input_size)
        return {self.main_input_name: torch.randn(shape, generator=generator)}


class MLPModel(MLPPreTrainedModel):
    """The hidden layers without a head; ``last_hidden_state`` is the last layer's activations (batch, width)."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        sizes = [config.input_size, *config.hidden_sizes]
        self.layers = nn.ModuleList(MLPLayer(config, sizes[i], sizes[i + 1]) for i in range(len(config.hidden_sizes)))
        self.post_init()

    def forward(
        self,
        input_features: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        check_feature_tensor(input_features, self.config.input_size)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = input_features
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden_states) if v is not None)
        return BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


class MLPForImageClassification(MLPPreTrainedModel):
    """MLP on flattened images with a classification head (the course's first MNIST network).

    The loss follows ``config.problem_type`` as in transformers: cross-entropy over softmax for single-label
    classification, sigmoid + binary cross-entropy when ``num_labels == 1`` (binary) or for multi-label targets.
    """

    main_input_name = "pixel_values"
    pipeline_tag = "image-classification"

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        if config.image_size is None:
            raise ValueError("MLPForImageClassification needs `image_size` in the config (the image side length).")
        self.mlp = MLPModel(config)
        self.classifier = nn.Linear(config.hidden_sizes[-1], config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.mlp(pixel_values.flatten(1), output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(outputs.last_hidden_state)  # (batch, num_labels)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class MLPForRegression(MLPPreTrainedModel):
    """MLP on feature vectors predicting ``num_labels`` real targets, trained with mean squared error."""

    pipeline_tag = "tabular-regression"

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        self.mlp = MLPModel(config)
        self.regressor = nn.Linear(config.hidden_sizes[-1], config.num_labels)
        self.post_init()

    def forward(
        self,
        input_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MLPRegressionOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.mlp(input_features, output_hidden_states=output_hidden_states, return_dict=True)
        predictions = self.regressor(outputs.last_hidden_state)  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = nn.functional.mse_loss(predictions, labels.to(predictions.dtype).view_as(predictions))
        if not return_dict:
            return tuple(v for v in (loss, predictions, outputs.hidden_states) if v is not None)
        return MLPRegressionOutput(loss=loss, predictions=predictions, hidden_states=outputs.hidden_states)


# Copied from hfdl.layers.losses.classification_loss
def classification_loss(config: PretrainedConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for single-label targets; sigmoid + BCE for one logit (binary) or multi-label targets.

    ``config.problem_type`` is set on first use (``single_label_classification``, ``binary_classification`` or
    ``multi_label_classification``) so that saved models keep the choice.
    """
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "binary_classification"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "single_label_classification":
        if labels.dtype not in (torch.long, torch.int):
            raise ValueError(f"Single-label classification needs integer class labels, got dtype {labels.dtype}.")
        return nn.functional.cross_entropy(logits.view(-1, config.num_labels), labels.view(-1))
    if config.problem_type in ("binary_classification", "multi_label_classification"):
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype).view_as(logits))
    if config.problem_type == "regression":
        return nn.functional.mse_loss(logits, labels.to(logits.dtype).view_as(logits))
    raise ValueError(
        f"Unknown `problem_type` {config.problem_type!r}; allowed: 'single_label_classification', "
        "'binary_classification', 'multi_label_classification', 'regression'."
    )
