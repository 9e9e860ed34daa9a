"""ResNet (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016), the network that made
depth trainable; Deep Learning Mastery, ch. 5. ResNet-18 on a 224x224 input:

    input (3, 224, 224) -> stem: conv 7x7/2 (64, 112, 112) -> max pool 3x3/2 (64, 56, 56)
    -> stage 1: 2 basic blocks (64, 56, 56) -> stage 2: 2 blocks (128, 28, 28) -> stage 3: 2 blocks (256, 14, 14)
    -> stage 4: 2 blocks (512, 7, 7) -> global average pool (512) -> classifier (num_labels)

The paper's observation: a plain 56-layer network trains to a *higher* training error than a 20-layer one, so depth
was failing as optimisation, not as overfitting. A residual block learns ``F(x)`` and outputs ``relu(F(x) + x)``:
if the identity is what a block should do, driving ``F`` to zero is easy, and the gradient reaches early layers
through the identity paths undiminished. Where a block changes the shape (stride 2, more channels) the shortcut is a
1x1 convolution with batch norm (the paper's option B).

Module names follow torchvision's roles so that its and timm's checkpoints map one to one (``hfdl convert``):
``stem.layers[i].{conv,normalization}``, ``stages[s].blocks[b].{conv1,norm1,conv2,norm2[,conv3,norm3]}``,
``stages[s].blocks[b].shortcut.{conv,normalization}`` and ``classifier``.

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
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

from .configuration_resnet import ResNetConfig
from .hfdl_backbone import StageFeaturesMixin
from .hfdl_utils import check_image_tensor, classification_loss, init


def make_activation(config: ResNetConfig) -> nn.Module:
    """The block activation; ReLU runs in place (on a fresh batch norm output), which saves one tensor per layer."""
    return nn.ReLU(inplace=True) if config.activation == "relu" else ACT2FN[config.activation]


class ResNetConvLayer(nn.Module):
    """Convolution (no bias: the batch norm's shift replaces it) -> batch norm -> [activation]."""

    def __init__(
        self,
        config: ResNetConfig,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        )
        self.normalization = nn.BatchNorm2d(out_channels)
        self.activation = make_activation(config) if activation else nn.Identity()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.conv(hidden_states)))


class ResNetStem(nn.Module):
    """What runs before the first stage; it sets how much of the image's resolution the stages see."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        width, channels = config.stem_channels, config.num_channels
        if config.stem == "imagenet":  # one 7x7/2 convolution: 224 -> 112, then the pool: -> 56
            layers = [ResNetConvLayer(config, channels, width, kernel_size=7, stride=2)]
        elif config.stem == "deep":  # three 3x3 convolutions see as far as the 7x7 one, for less compute (ResNet-C)
            half = width // 2
            layers = [
                ResNetConvLayer(config, channels, half, stride=2),
                ResNetConvLayer(config, half, half),
                ResNetConvLayer(config, half, width),
            ]
        else:  # small images (CIFAR, MNIST): a 3x3/1 convolution and no pooling, the resolution is kept
            layers = [ResNetConvLayer(config, channels, width)]
        self.layers = nn.ModuleList(layers)
        self.pool = nn.Identity() if config.stem == "small" else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden_states = pixel_values
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return self.pool(hidden_states)


class ResNetShortcut(nn.Module):
    """The projection shortcut of a block that changes the shape: [2x2 average pool] -> 1x1 convolution -> BN.

    The plain one strides its 1x1 convolution and so reads one input pixel in four; ResNet-D (``avg_down``) averages
    the 2x2 window first and lets the convolution see all of them.
    """

    def __init__(self, config: ResNetConfig, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        avg_down = config.avg_down and stride > 1
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if avg_down else None
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=1 if avg_down else stride, bias=False)
        self.normalization = nn.BatchNorm2d(out_channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            hidden_states = self.pool(hidden_states)
        return self.normalization(self.conv(hidden_states))


class ResNetBlock(nn.Module):
    """A residual block, ``activation(F(x) + shortcut(x))``.

    ``basic``: ``F`` is two 3x3 convolutions (ResNet-18/34). ``bottleneck``: 1x1 down to ``channels``, 3x3 (with the
    stride), 1x1 up to ``4 * channels`` (ResNet-50/101/152), so the expensive 3x3 runs on a quarter of the width.
    """

    def __init__(self, config: ResNetConfig, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        out_channels = channels * config.expansion
        if config.block_type == "basic":
            self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
            self.norm1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.norm2 = nn.BatchNorm2d(channels)
            self.conv3 = self.norm3 = None
        else:
            self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
            self.norm1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
            self.norm2 = nn.BatchNorm2d(channels)
            self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
            self.norm3 = nn.BatchNorm2d(out_channels)
        self.activation = make_activation(config)
        self.shortcut = (
            ResNetShortcut(config, in_channels, out_channels, stride)
            if stride != 1 or in_channels != out_channels
            else None
        )

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The batch norm that ends ``F``; ``zero_init_residual`` starts its scale at zero."""
        return self.norm3 if self.norm3 is not None else self.norm2

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states if self.shortcut is None else self.shortcut(hidden_states)
        hidden_states = self.activation(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.norm2(self.conv2(hidden_states))
        if self.conv3 is not None:
            hidden_states = self.norm3(self.conv3(self.activation(hidden_states)))
        # In place: the sum is a fresh tensor that nothing else holds, so this saves an allocation per block.
        hidden_states += residual
        return self.activation(hidden_states)


class ResNetStage(nn.Module):
    """``depth`` blocks; the first one changes the width and (after the first stage) halves the side."""

    def __init__(self, config: ResNetConfig, in_channels: int, channels: int, depth: int, stride: int) -> None:
        super().__init__()
        out_channels = channels * config.expansion
        self.blocks = nn.ModuleList(
            ResNetBlock(config, in_channels if index == 0 else out_channels, channels, stride if index == 0 else 1)
            for index in range(depth)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            hidden_states = block(hidden_states)
        return hidden_states


class ResNetPreTrainedModel(PreTrainedModel):
    config_class = ResNetConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"
    _no_split_modules = ["ResNetBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        # He init over fan-out (He et al., 2015) keeps the variance of a ReLU network's signal constant through its
        # depth; batch norm starts as the identity; the classifier as torchvision's nn.Linear default would be
        # replaced anyway by fine-tuning, so it gets a small normal init and a zero bias.
        if isinstance(module, nn.Conv2d):
            nonlinearity = self.config.activation if self.config.activation == "leaky_relu" else "relu"
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity=nonlinearity)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            # Buffers too: `from_pretrained` builds on the meta device, so they need real starting values.
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=0.01)
            init.zeros_(module.bias)
        elif isinstance(module, ResNetBlock) and self.config.zero_init_residual:
            init.zeros_(module.last_norm.weight)


class ResNetModel(ResNetPreTrainedModel):
    """ResNet without its classifier.

    ``last_hidden_state`` is the last stage's feature maps (batch, channels, side, side), ``pooler_output`` their
    global average (batch, channels). With ``output_hidden_states`` it also returns the stem's output and every
    stage's, the maps a detection or segmentation head reads (``config.stage_names``, ``hidden_channels`` and
    ``reductions`` describe them).
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self.stem = ResNetStem(config)
        in_channels = config.stem_channels
        stages = []
        for index, (depth, channels) in enumerate(zip(config.stage_depths, config.stage_channels, strict=True)):
            stages.append(ResNetStage(config, in_channels, channels, depth, stride=1 if index == 0 else 2))
            in_channels = channels * config.expansion
        self.stages = nn.ModuleList(stages)
        self.pooler = nn.AdaptiveAvgPool2d(1)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states = self.stem(pixel_values)  # (B, stem_channels, H / 4, W / 4) (H, W for the small stem)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for stage in self.stages:
            hidden_states = stage(hidden_states)  # (B, C_s, H / r_s, W / r_s)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
        pooled = self.pooler(hidden_states).flatten(1)  # (B, C_last)
        if not return_dict:
            return tuple(v for v in (hidden_states, pooled, all_hidden_states) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden_states
        )


class ResNetForImageClassification(ResNetPreTrainedModel):
    """ResNet with a linear classifier on the pooled features: ``logits``, and a ``loss`` with labels."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self.resnet = ResNetModel(config)
        self.classifier = nn.Linear(config.hidden_channels[-1], config.num_labels)
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
        outputs = self.resnet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(outputs.pooler_output)  # (B, num_labels)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class ResNetBackbone(StageFeaturesMixin, ResNetPreTrainedModel):
    """ResNet as a feature extractor for detection and segmentation heads (transformers' ``AutoBackbone``).

    ``feature_maps`` holds the maps of the stages ``config.out_indices`` selects (``AutoBackbone.from_pretrained(
    folder, out_indices=[1, 2, 3, 4])`` for an FPN over the four stages); ``channels`` and ``strides`` describe them.
    Its weights are named as the classifier's, so a classifier checkpoint loads into it (the classifier is dropped).
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__(config)
        self.resnet = ResNetModel(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        outputs = self.resnet(pixel_values, output_hidden_states=True, return_dict=True)
        feature_maps = tuple(outputs.hidden_states[index] for index in self.config.out_indices)
        hidden_states = outputs.hidden_states if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (feature_maps, hidden_states) if v is not None)
        return BackboneOutput(feature_maps=feature_maps, hidden_states=hidden_states)
