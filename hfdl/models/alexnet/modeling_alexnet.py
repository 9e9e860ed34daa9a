"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep convolutional neural networks",
NeurIPS 2012), the network that made deep CNNs win ImageNet; Deep Learning Mastery, ch. 5. Torchvision's layout:

    input (3, 224, 224) -> conv1 11x11/4 (64, 55, 55) -> pool (64, 27, 27) -> conv2 5x5 (192, 27, 27)
    -> pool (192, 13, 13) -> conv3 3x3 (384, 13, 13) -> conv4 3x3 (256, 13, 13) -> conv5 3x3 (256, 13, 13)
    -> pool (256, 6, 6) -> adaptive average pool (256, 6, 6) -> flatten (9216)
    -> dropout, fc6 (4096) -> dropout, fc7 (4096) -> classifier (num_labels)

What made it work, and what each piece here stands for: ReLU instead of tanh (six times faster to train in the
paper's Figure 1), overlapping 3x3 stride-2 max pooling, dropout 0.5 in the two wide fully connected layers (which
hold 54M of the 61M parameters and overfit without it), and, optionally, local response normalisation.

This file imports only torch, transformers, the standard library and its siblings (the configuration and
hfdl_utils.py, the helpers every model folder shares), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithNoAttention, ImageClassifierOutputWithNoAttention

from .configuration_alexnet import POOL_KERNEL_SIZE, POOL_STRIDE, AlexNetConfig
from .hfdl_utils import check_image_tensor, classification_loss, initialize_module

#: The paper normalises the responses of the first two convolution layers only.
NUM_NORMALIZED_LAYERS = 2


class AlexNetConvLayer(nn.Module):
    """One convolution layer: convolution -> activation -> [local response normalisation] -> [max pooling].

    Local response normalisation (paper, section 3.3) divides each response by the summed squares of its
    neighbours across ``lrn_size`` channels, a "lateral inhibition" the paper credits with 1.2-1.4 points of top-1
    error. Later work found it adds little once networks are deeper or use batch normalisation (VGG, 2014, saw no
    gain), and torchvision's AlexNet drops it; here it is a config switch so the course can compare both.
    """

    def __init__(self, config: AlexNetConfig, index: int, in_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            config.conv_channels[index],
            kernel_size=config.conv_kernel_sizes[index],
            stride=config.conv_strides[index],
            padding=config.conv_paddings[index],
        )
        self.activation = ACT2FN[config.activation]
        self.norm = None
        if config.local_response_norm and index < NUM_NORMALIZED_LAYERS:
            # torch divides alpha by the window size (alpha / n * sum a^2); the paper writes alpha * sum a^2, so
            # the paper's alpha = 1e-4 is passed as alpha * n.
            self.norm = nn.LocalResponseNorm(
                config.lrn_size, alpha=config.lrn_alpha * config.lrn_size, beta=config.lrn_beta, k=config.lrn_k
            )
        # Overlapping pooling (3x3 windows, stride 2): the paper's section 3.4 reports 0.3-0.4 points less top-1
        # error than the non-overlapping 2x2 / stride 2 pooling, and slightly less overfitting.
        self.pool = nn.MaxPool2d(POOL_KERNEL_SIZE, stride=POOL_STRIDE) if config.pool_after[index] else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation(self.conv(hidden_states))  # conv1: (B, 64, 55, 55)
        if self.norm is not None:
            hidden_states = self.norm(hidden_states)  # same shape
        if self.pool is not None:
            hidden_states = self.pool(hidden_states)  # conv1: (B, 64, 27, 27)
        return hidden_states


class AlexNetDenseLayer(nn.Module):
    """One hidden fully connected layer: dropout -> Linear -> activation (fc6 and fc7 of the paper).

    Dropout sits before each of the two wide layers, as in the paper and torchvision; it is what kept the network
    from overfitting (paper, section 4.2: "without dropout, our network exhibits substantial overfitting").
    """

    def __init__(self, config: AlexNetConfig, in_features: int, out_features: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(in_features, out_features)
        self.activation = ACT2FN[config.activation]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(self.dropout(hidden_states)))


class AlexNetPreTrainedModel(PreTrainedModel):
    config_class = AlexNetConfig
    base_model_prefix = "alexnet"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # He init for rectifiers (He et al., 2015), Xavier for tanh/sigmoid. The paper drew every weight from
        # N(0, 0.01) and set some biases to 1 to feed ReLUs positive inputs early; with eight layers that
        # fixed scale trains slowly, while He's fan-in scaling keeps activations at a constant variance.
        relu_like = self.config.activation in ("relu", "leaky_relu", "gelu")
        scheme = "kaiming_normal" if relu_like else "xavier_uniform"
        initialize_module(module, scheme, nonlinearity=self.config.activation)


class AlexNetModel(AlexNetPreTrainedModel):
    """AlexNet without its classifier; ``last_hidden_state`` is fc7's activations (batch, hidden_sizes[-1]).

    With ``output_hidden_states`` it returns every stage's output: the five convolution layers' feature maps
    (batch, channels, height, width), the adaptively pooled maps, then fc6 and fc7 (batch, width). fc7's 4096
    features are what "AlexNet features" meant in the transfer-learning work that followed (DeCAF, 2014).
    """

    def __init__(self, config: AlexNetConfig) -> None:
        super().__init__(config)
        in_channels = [config.num_channels, *config.conv_channels[:-1]]
        self.features = nn.ModuleList(
            AlexNetConvLayer(config, index, channels) for index, channels in enumerate(in_channels)
        )
        # Pools any input's last feature maps to a fixed side, so the fully connected layers' size does not depend
        # on the input size (torchvision's addition; for a 224x224 input the maps are already 6x6).
        self.avgpool = nn.AdaptiveAvgPool2d(config.adaptive_pool_size)
        flat_size = config.conv_channels[-1] * config.adaptive_pool_size**2
        fc6_size, fc7_size = config.hidden_sizes
        self.fc6 = AlexNetDenseLayer(config, flat_size, fc6_size)
        self.fc7 = AlexNetDenseLayer(config, fc6_size, fc7_size)
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
        stages = []
        hidden_states = pixel_values
        for layer in self.features:  # (B, 3, 224, 224) -> ... -> (B, 256, 6, 6)
            hidden_states = layer(hidden_states)
            stages.append(hidden_states)
        pooled = self.avgpool(hidden_states)  # (B, 256, 6, 6)
        fc6 = self.fc6(pooled.flatten(1))  # (B, 256 * 6 * 6 = 9216) -> (B, 4096)
        fc7 = self.fc7(fc6)  # (B, 4096)
        hidden_states = (*stages, pooled, fc6, fc7) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (fc7, hidden_states) if v is not None)
        return BaseModelOutputWithNoAttention(last_hidden_state=fc7, hidden_states=hidden_states)


class AlexNetForImageClassification(AlexNetPreTrainedModel):
    """AlexNet with its classifier (fc8): ``logits`` over ``num_labels`` classes, cross-entropy ``loss`` with labels."""

    def __init__(self, config: AlexNetConfig) -> None:
        super().__init__(config)
        self.alexnet = AlexNetModel(config)
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
        outputs = self.alexnet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(outputs.last_hidden_state)  # (B, num_labels)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
