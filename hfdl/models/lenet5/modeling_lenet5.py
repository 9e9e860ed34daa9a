"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition", 1998), the
convolutional network of Deep Learning Mastery, ch. 5.

    input (1, 32, 32) -> C1 conv5x5 (6, 28, 28) -> S2 pool (6, 14, 14) -> C3 conv5x5 (16, 10, 10)
    -> S4 pool (16, 5, 5) -> C5 (120) -> F6 (84) -> output (num_labels)

This file imports only torch, transformers, the standard library and its sibling configuration, so it runs as Hub
remote code without hfdl installed.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithNoAttention, ImageClassifierOutputWithNoAttention

from .configuration_lenet5 import LeNet5Config

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


class LeNet5ConvStage(nn.Module):
    """A convolution + activation (C1 or C3) followed by 2x2 subsampling (S2 or S4)."""

    def __init__(self, config: LeNet5Config, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=config.kernel_size)
        self.activation = get_activation(config.activation)
        self.pool = nn.AvgPool2d(2) if config.pooling == "average" else nn.MaxPool2d(2)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature_maps = self.activation(self.conv(hidden_states))  # (B, C_out, H - k + 1, W - k + 1)
        return feature_maps, self.pool(feature_maps)  # pooled: (B, C_out, H', W') halved


class LeNet5PreTrainedModel(ModelCardMixin, PreTrainedModel):
    config_class = LeNet5Config
    base_model_prefix = "lenet5"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # He init for rectifiers, Xavier (close to LeCun's own fan-in scaling of 1998) for tanh/sigmoid.
        relu_like = self.config.activation in ("relu", "leaky_relu", "gelu")
        scheme = "kaiming_normal" if relu_like else "xavier_uniform"
        initialize_module(module, scheme, nonlinearity=self.config.activation)

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """A small valid batch for tests, export and tools."""
        generator = torch.Generator().manual_seed(0)
        shape = (2, self.config.num_channels, self.config.image_size, self.config.image_size)
        return {"pixel_values": torch.randn(shape, generator=generator)}


class LeNet5Model(LeNet5PreTrainedModel):
    """LeNet-5 without its output layer; ``last_hidden_state`` is F6's activations (batch, 84).

    With ``output_hidden_states`` it returns the activations of every layer: C1, S2, C3, S4 feature maps
    (batch, channels, height, width), then C5 and F6 (batch, width), which is what the course plots.
    """

    def __init__(self, config: LeNet5Config) -> None:
        super().__init__(config)
        c1_channels, c3_channels = config.conv_channels
        c5_size, f6_size = config.hidden_sizes
        self.stage1 = LeNet5ConvStage(config, config.num_channels, c1_channels)
        self.stage2 = LeNet5ConvStage(config, c1_channels, c3_channels)
        # C5 is a 5x5 convolution over S4's 5x5 maps in the paper, i.e. a fully connected layer over the flattened
        # maps; as a Linear it also works for other input sizes.
        self.c5 = nn.Linear(c3_channels * config.feature_map_size**2, c5_size)
        self.f6 = nn.Linear(c5_size, f6_size)
        self.activation = get_activation(config.activation)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithNoAttention | tuple:
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        c1, s2 = self.stage1(pixel_values)
        c3, s4 = self.stage2(s2)
        c5 = self.activation(self.c5(s4.flatten(1)))  # (B, 16 * 5 * 5) -> (B, 120)
        f6 = self.activation(self.f6(c5))  # (B, 84)
        hidden_states = (c1, s2, c3, s4, c5, f6) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (f6, hidden_states) if v is not None)
        return BaseModelOutputWithNoAttention(last_hidden_state=f6, hidden_states=hidden_states)


class LeNet5ForImageClassification(LeNet5PreTrainedModel):
    """LeNet-5 with its output layer: ``logits`` over ``num_labels`` classes, cross-entropy ``loss`` with labels."""

    pipeline_tag = "image-classification"

    def __init__(self, config: LeNet5Config) -> None:
        super().__init__(config)
        self.lenet5 = LeNet5Model(config)
        self.dropout = nn.Dropout(config.dropout)
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
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.lenet5(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))  # (B, num_labels)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
