"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015), the
deep plain convolutional network of Deep Learning Mastery, ch. 5. VGG-16:

    input (3, 224, 224) -> stage 1: 2 x conv3x3 (64, 224, 224) -> pool (64, 112, 112)
    -> stage 2: 2 x conv3x3 (128, 112, 112) -> pool (128, 56, 56) -> stage 3: 3 x conv3x3 (256) -> pool (256, 28, 28)
    -> stage 4: 3 x conv3x3 (512) -> pool (512, 14, 14) -> stage 5: 3 x conv3x3 (512) -> pool (512, 7, 7)
    -> adaptive average pool (512, 7, 7) -> FC (4096) -> FC (4096) -> output (num_labels)

The paper's point: a stack of 3x3 convolutions sees as far as one larger kernel (two 3x3 layers see 5x5, three see
7x7) with fewer parameters (3 * 9 C^2 = 27 C^2 weights against 49 C^2 for one 7x7 layer) and a non-linearity after
each layer instead of one, which makes the decision function more discriminative. Depth, not kernel size, is what
grows.

This file imports only torch, transformers, the standard library and its siblings (the configuration and
hfdl_utils.py, the helpers every model folder shares), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithNoAttention,
    ImageClassifierOutputWithNoAttention,
)

from .configuration_vgg import VGGConfig
from .hfdl_backbone import StageFeaturesMixin
from .hfdl_utils import check_image_tensor, classification_loss, init


class VGGConvLayer(nn.Module):
    """A 3x3 convolution with padding 1 (the side is kept), optional batch normalisation, then the activation."""

    def __init__(self, config: VGGConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # The convolution keeps its bias under batch normalisation, as torchvision's `_bn` models (and their
        # parameter counts) have it, although the normalisation's shift makes it redundant.
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.normalization = nn.BatchNorm2d(out_channels) if config.batch_norm else nn.Identity()
        self.activation = ACT2FN[config.activation]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.conv(hidden_states)))  # (B, C_out, H, W)


class VGGStage(nn.Module):
    """``depth`` 3x3 convolution layers, then 2x2 max pooling that halves the side."""

    def __init__(self, config: VGGConfig, in_channels: int, out_channels: int, depth: int) -> None:
        super().__init__()
        channels = [in_channels] + [out_channels] * depth
        self.layers = nn.ModuleList(VGGConvLayer(config, channels[i], channels[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states)  # (B, C_out, H, W)
        return self.pool(hidden_states)  # (B, C_out, H // 2, W // 2)


class VGGFullyConnectedLayer(nn.Module):
    """One hidden layer of the classifier: ``Linear -> activation -> dropout``."""

    def __init__(self, config: VGGConfig, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = ACT2FN[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.linear(hidden_states)))


class VGGPreTrainedModel(PreTrainedModel):
    config_class = VGGConfig
    base_model_prefix = "vgg"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # The paper trained the shallow configuration A from N(0, 0.01) and started the deeper ones from A's
        # weights, because 16-19 plain layers stall from a naive random start; it notes that Glorot's init works
        # without that pre-training. As torchvision, convolutions get He init over fan-out (He et al., 2015: the
        # variance of a ReLU network's gradients stays constant through its depth), fully connected layers the
        # paper's N(0, 0.01), biases zero. With batch normalisation the scale of the init matters much less: each
        # layer's input is re-normalised, which is why the `_bn` variants train from scratch without care.
        if isinstance(module, nn.Conv2d):
            nonlinearity = self.config.activation if self.config.activation == "leaky_relu" else "relu"
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity=nonlinearity)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=0.01)
            init.zeros_(module.bias)


class VGGModel(VGGPreTrainedModel):
    """VGG without its output layer; ``last_hidden_state`` is the second hidden FC layer's activations (batch, 4096).

    With ``output_hidden_states`` it returns every stage's pooled output (batch, channels, height, width), then the
    two hidden FC layers' activations (batch, width).
    """

    def __init__(self, config: VGGConfig) -> None:
        super().__init__(config)
        channels = [config.num_channels, *config.stage_channels]
        self.stages = nn.ModuleList(
            VGGStage(config, channels[i], channels[i + 1], depth) for i, depth in enumerate(config.stage_depths)
        )
        self.pool = nn.AdaptiveAvgPool2d(config.pooled_size)
        sizes = [config.stage_channels[-1] * config.pooled_size**2, *config.hidden_sizes]
        self.fully_connected = nn.ModuleList(
            VGGFullyConnectedLayer(config, sizes[i], sizes[i + 1]) for i in range(len(config.hidden_sizes))
        )
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
        all_hidden_states = () if output_hidden_states else None
        hidden_states = pixel_values
        for stage in self.stages:
            hidden_states = stage(hidden_states)  # (B, C_stage, H / 2**s, W / 2**s)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
        hidden_states = self.pool(hidden_states).flatten(1)  # (B, 512, 7, 7) -> (B, 512 * 7 * 7)
        for layer in self.fully_connected:
            hidden_states = layer(hidden_states)  # (B, 4096)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
        if not return_dict:
            return tuple(v for v in (hidden_states, all_hidden_states) if v is not None)
        return BaseModelOutputWithNoAttention(last_hidden_state=hidden_states, hidden_states=all_hidden_states)


class VGGForImageClassification(VGGPreTrainedModel):
    """VGG with its output layer: ``logits`` over ``num_labels`` classes, cross-entropy ``loss`` with labels."""

    def __init__(self, config: VGGConfig) -> None:
        super().__init__(config)
        self.vgg = VGGModel(config)
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
        outputs = self.vgg(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(outputs.last_hidden_state)  # (B, num_labels)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class VGGStages(nn.Module):
    """The convolution stages alone: what a backbone keeps of VGG (the fully connected layers hold 90 % of VGG-16's
    weights and see a fixed 7x7 grid, which dense prediction heads do not want)."""

    def __init__(self, config: VGGConfig) -> None:
        super().__init__()
        channels = [config.num_channels, *config.stage_channels]
        self.stages = nn.ModuleList(
            VGGStage(config, channels[i], channels[i + 1], depth) for i, depth in enumerate(config.stage_depths)
        )


class VGGBackbone(StageFeaturesMixin, VGGPreTrainedModel):
    """VGG as a feature extractor for detection and segmentation heads (transformers' ``AutoBackbone``).

    ``feature_maps`` holds the pooled outputs of the stages ``config.out_indices`` selects; ``channels`` and
    ``strides`` describe them. The weights are named as the classifier's stages (``vgg.stages...``), so a classifier
    checkpoint loads into it; its fully connected layers are left out.
    """

    def __init__(self, config: VGGConfig) -> None:
        super().__init__(config)
        self.vgg = VGGStages(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        all_hidden_states = ()
        hidden_states = pixel_values
        for index, stage in enumerate(self.vgg.stages):
            hidden_states = stage(hidden_states)  # (B, C_stage, H / 2**(s+1), W / 2**(s+1))
            all_hidden_states = all_hidden_states + (hidden_states,)
            if index == self.config.out_indices[-1] and not output_hidden_states:
                break  # later stages are not returned: skip their compute
        feature_maps = tuple(all_hidden_states[index] for index in self.config.out_indices)
        hidden_states = all_hidden_states if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (feature_maps, hidden_states) if v is not None)
        return BackboneOutput(feature_maps=feature_maps, hidden_states=hidden_states)
