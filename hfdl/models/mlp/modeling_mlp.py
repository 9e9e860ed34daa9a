"""The multilayer perceptron of Deep Learning Mastery, ch. 3-4: fully connected layers, a choice of activations and
weight initialisations, dropout, and heads for classification and regression.

This file imports only torch, transformers, the standard library and its siblings (the configuration and
hfdl_utils.py, the helpers every model folder shares), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutputWithNoAttention
from transformers.utils import ModelOutput

from .configuration_mlp import MLPConfig
from .hfdl_utils import check_float_tensor, check_image_tensor, classification_loss, initialize_module


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
        self.activation = ACT2FN[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.linear(hidden_states)))


class MLPPreTrainedModel(PreTrainedModel):
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
        check_float_tensor("input_features", input_features, (self.config.input_size,), str(self.config.input_size))
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
