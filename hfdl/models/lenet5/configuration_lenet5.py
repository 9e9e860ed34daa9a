"""Configuration of LeNet-5 (LeCun et al., 1998; Deep Learning Mastery, ch. 5)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_utils import (
    ACTIVATION_NAMES,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_int_list,
    check_probability,
)

POOLING_TYPES = ("average", "max")


class LeNet5Config(PretrainedConfig):
    """LeNet-5: two convolution + subsampling stages, then three fully connected layers (C5, F6, output).

    The 1998 network is ``activation="tanh", pooling="average"``; the modern variant most courses teach is
    ``activation="relu", pooling="max"``. What the paper had and this omits on purpose: the scaled tanh
    (1.7159 tanh(2x/3)), trainable subsampling coefficients, the sparse C3 connection table and the RBF output
    layer; all of them are replaced by their now-standard equivalents, as in the course.

    Args:
        num_channels: Input channels (1 for MNIST).
        image_size: Side of the square input; 32 as in the paper (MNIST's 28x28 digits are resized). At least 16.
        conv_channels: Feature maps of C1 and C3 (6 and 16 in the paper).
        kernel_size: Side of the convolution kernels (5).
        hidden_sizes: Widths of C5 and F6 (120 and 84).
        activation: ``tanh`` (1998), ``relu`` (modern), or ``sigmoid``, ``leaky_relu``, ``gelu``.
        pooling: ``average`` (1998 subsampling) or ``max`` (modern).
        dropout: Dropout rate before the output layer (0 in the paper).
    """

    model_type = "hfdl-lenet5"

    def __init__(
        self,
        num_channels: int = 1,
        image_size: int = 32,
        conv_channels: list[int] | tuple[int, ...] = (6, 16),
        kernel_size: int = 5,
        hidden_sizes: list[int] | tuple[int, ...] = (120, 84),
        activation: str = "tanh",
        pooling: str = "average",
        dropout: float = 0.0,
        **kwargs,
    ) -> None:
        check_positive_int("num_channels", num_channels)
        check_positive_int("image_size", image_size)
        check_positive_int("kernel_size", kernel_size)
        conv_channels = check_positive_int_list("conv_channels", conv_channels, length=2)  # C1, C3
        hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes, length=2)  # C5, F6
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_choice("pooling", pooling, POOLING_TYPES)
        check_probability("dropout", dropout)
        check_head_kwargs(kwargs)
        # Two (conv without padding -> 2x2 pooling) stages must leave at least one pixel.
        feature_size = ((image_size - kernel_size + 1) // 2 - kernel_size + 1) // 2
        if feature_size < 1:
            smallest = 3 * kernel_size + 1
            raise ValueError(
                f"`image_size`={image_size} is too small for two {kernel_size}x{kernel_size} convolution + pooling "
                f"stages; use image_size >= {smallest}."
            )
        self.num_channels = num_channels
        self.image_size = image_size
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.pooling = pooling
        self.dropout = float(dropout)
        super().__init__(**kwargs)

    @property
    def feature_map_size(self) -> int:
        """Side of S4's feature maps (5 for a 32x32 input), which C5 flattens."""
        return ((self.image_size - self.kernel_size + 1) // 2 - self.kernel_size + 1) // 2
