"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition", 1998), the
convolutional network of Deep Learning Mastery, ch. 5.

    input (1, 32, 32) -> C1 conv5x5 (6, 28, 28) -> S2 pool (6, 14, 14) -> C3 conv5x5 (16, 10, 10)
    -> S4 pool (16, 5, 5) -> C5 (120) -> F6 (84) -> output (num_labels)

This file imports only torch, transformers, the standard library and its siblings (the configuration and
hfdl_utils.py, the helpers every model folder shares), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithNoAttention, ImageClassifierOutputWithNoAttention

from .configuration_lenet5 import LeNet5Config
from .hfdl_utils import check_image_tensor, classification_loss, initialize_module


class LeNet5ConvStage(nn.Module):
    """A convolution + activation (C1 or C3) followed by 2x2 subsampling (S2 or S4)."""

    def __init__(self, config: LeNet5Config, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=config.kernel_size)
        self.activation = ACT2FN[config.activation]
        self.pool = nn.AvgPool2d(2) if config.pooling == "average" else nn.MaxPool2d(2)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature_maps = self.activation(self.conv(hidden_states))  # (B, C_out, H - k + 1, W - k + 1)
        return feature_maps, self.pool(feature_maps)  # pooled: (B, C_out, H', W') halved


class LeNet5PreTrainedModel(PreTrainedModel):
    config_class = LeNet5Config
    base_model_prefix = "lenet5"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # He init for rectifiers, Xavier (close to LeCun's own fan-in scaling of 1998) for tanh/sigmoid.
        relu_like = self.config.activation in ("relu", "leaky_relu", "gelu")
        scheme = "kaiming_normal" if relu_like else "xavier_uniform"
        initialize_module(module, scheme, nonlinearity=self.config.activation)


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
        self.activation = ACT2FN[config.activation]
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
