"""Configuration of the multilayer perceptron (Deep Learning Mastery, ch. 3-4)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_utils import (
    ACTIVATION_NAMES,
    INITIALIZER_NAMES,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_int_list,
    check_positive_number,
    check_probability,
)


class MLPConfig(PretrainedConfig):
    """A stack of fully connected layers: ``input -> [Linear -> activation -> dropout] x N -> head``.

    The MLP reads flat feature vectors (``input_size`` values). For images, give ``image_size`` and
    ``num_channels`` instead: ``input_size`` is then ``num_channels * image_size**2`` and the image heads flatten
    ``pixel_values`` themselves, which is how the course feeds MNIST to its first network.

    Args:
        input_size: Number of input features. Derived from the image shape when ``image_size`` is given.
        hidden_sizes: Width of each hidden layer; its length is the depth.
        activation: One of ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``, ``gelu``.
        initializer: Weight init: ``zeros``, ``normal`` (N(0, ``initializer_range``)), ``xavier_uniform`` or
            ``kaiming_normal`` (the course's zero / random / Xavier / He comparison).
        initializer_range: Standard deviation of the ``normal`` initializer.
        dropout: Dropout rate after every hidden activation.
        num_channels: Channels of input images (image heads only).
        image_size: Side of the square input images, or ``None`` for a feature-vector MLP.
        num_labels: Classes of the classification head (1 means binary with a sigmoid), or targets of the
            regression head.
    """

    model_type = "hfdl-mlp"

    def __init__(
        self,
        input_size: int | None = None,
        hidden_sizes: list[int] | tuple[int, ...] = (128, 64),
        activation: str = "relu",
        initializer: str = "kaiming_normal",
        initializer_range: float = 0.02,
        dropout: float = 0.0,
        num_channels: int = 1,
        image_size: int | None = 8,
        **kwargs,
    ) -> None:
        self.hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_choice("initializer", initializer, INITIALIZER_NAMES)
        check_positive_number("initializer_range", initializer_range)
        check_probability("dropout", dropout)
        check_head_kwargs(kwargs)
        check_positive_int("num_channels", num_channels)
        if image_size is not None:
            check_positive_int("image_size", image_size)
            image_input_size = num_channels * image_size * image_size
            if input_size is None:
                input_size = image_input_size
            elif input_size != image_input_size:
                raise ValueError(
                    f"`input_size`={input_size!r} does not match the image shape: num_channels * image_size**2 = "
                    f"{num_channels} * {image_size}**2 = {image_input_size}. Give one of them, or matching values."
                )
        if input_size is None:
            raise ValueError("`input_size` is required when `image_size` is None (a feature-vector MLP).")
        check_positive_int("input_size", input_size)
        self.input_size = input_size
        self.activation = activation
        self.initializer = initializer
        self.initializer_range = float(initializer_range)
        self.dropout = float(dropout)
        self.num_channels = num_channels
        self.image_size = image_size
        super().__init__(**kwargs)
