"""Configuration of AlexNet (Krizhevsky, Sutskever & Hinton, 2012; Deep Learning Mastery, ch. 5)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_utils import (
    ACTIVATION_NAMES,
    check_bool,
    check_choice,
    check_head_kwargs,
    check_list,
    check_non_negative_int,
    check_positive_int,
    check_positive_int_list,
    check_positive_number,
    check_probability,
)

#: AlexNet has five convolution layers; every per-layer list of the config holds one value for each.
NUM_CONV_LAYERS = 5
#: The paper's overlapping max pooling (section 3.4): 3x3 windows every 2 pixels, after conv1, conv2 and conv5.
POOL_KERNEL_SIZE = 3
POOL_STRIDE = 2


def feature_map_sizes(
    image_size: int,
    kernel_sizes: list[int],
    strides: list[int],
    paddings: list[int],
    pool_after: list[bool],
) -> list[int]:
    """Side of the feature maps after each convolution layer (and its pooling), or up to the first that vanishes.

    A convolution gives ``(side + 2 * padding - kernel) // stride + 1`` pixels, a 3x3 stride-2 pooling
    ``(side - 3) // 2 + 1``; a layer whose window no longer fits ends the list early with a size below 1.
    """
    sizes, side = [], image_size
    for kernel, stride, padding, pooled in zip(kernel_sizes, strides, paddings, pool_after):
        side = (side + 2 * padding - kernel) // stride + 1 if side + 2 * padding >= kernel else 0
        if pooled and side >= 1:
            side = (side - POOL_KERNEL_SIZE) // POOL_STRIDE + 1 if side >= POOL_KERNEL_SIZE else 0
        sizes.append(side)
        if side < 1:
            break
    return sizes


class AlexNetConfig(PretrainedConfig):
    """AlexNet: five convolution layers (max pooling after the 1st, 2nd and 5th), then two wide fully connected
    layers with dropout, then the classifier.

    The defaults are torchvision's single-GPU variant (64/192/384/256/256 channels, 11x11 stride-4 first
    convolution, no local response normalisation, 224x224 inputs, 61.1M parameters with 1000 classes). The 2012
    paper split 96/256/384/384/256 channels over two GPUs and normalised the responses of conv1 and conv2
    (``local_response_norm=True``). An adaptive average pooling to ``adaptive_pool_size`` x ``adaptive_pool_size``
    (6 in torchvision) sits between the convolutions and the first fully connected layer, so inputs of other sizes
    than the one the fully connected layers were sized for still work.

    Args:
        num_channels: Input channels (3 for RGB images).
        image_size: Side of the square input (224). Must survive the convolution and pooling stack; the error
            gives the smallest side that does.
        conv_channels: Output channels of the five convolution layers.
        conv_kernel_sizes: Kernel side of each convolution (11, 5, 3, 3, 3).
        conv_strides: Stride of each convolution (4, 1, 1, 1, 1).
        conv_paddings: Zero padding of each convolution (2, 2, 1, 1, 1).
        pool_after: Whether each convolution is followed by the paper's overlapping 3x3 stride-2 max pooling.
        adaptive_pool_size: Side the last feature maps are average-pooled to before flattening (6).
        hidden_sizes: Widths of the two hidden fully connected layers (4096, 4096).
        dropout: Dropout rate before each hidden fully connected layer (0.5, as in the paper).
        activation: ``relu`` (the paper's choice), or ``sigmoid``, ``tanh``, ``leaky_relu``, ``gelu``.
        local_response_norm: Normalise the responses of conv1 and conv2 across channels as the paper did.
        lrn_size: Channels each response is normalised over (n = 5 in the paper).
        lrn_alpha: Scale of the sum of squares (alpha = 1e-4), as the paper writes it (not divided by ``lrn_size``).
        lrn_beta: Exponent (beta = 0.75).
        lrn_k: Additive constant (k = 2).
    """

    model_type = "hfdl-alexnet"

    def __init__(
        self,
        num_channels: int = 3,
        image_size: int = 224,
        conv_channels: list[int] | tuple[int, ...] = (64, 192, 384, 256, 256),
        conv_kernel_sizes: list[int] | tuple[int, ...] = (11, 5, 3, 3, 3),
        conv_strides: list[int] | tuple[int, ...] = (4, 1, 1, 1, 1),
        conv_paddings: list[int] | tuple[int, ...] = (2, 2, 1, 1, 1),
        pool_after: list[bool] | tuple[bool, ...] = (True, True, False, False, True),
        adaptive_pool_size: int = 6,
        hidden_sizes: list[int] | tuple[int, ...] = (4096, 4096),
        dropout: float = 0.5,
        activation: str = "relu",
        local_response_norm: bool = False,
        lrn_size: int = 5,
        lrn_alpha: float = 1e-4,
        lrn_beta: float = 0.75,
        lrn_k: float = 2.0,
        **kwargs,
    ) -> None:
        check_positive_int("num_channels", num_channels)
        check_positive_int("image_size", image_size)
        conv_channels = check_positive_int_list("conv_channels", conv_channels, length=NUM_CONV_LAYERS)
        conv_kernel_sizes = check_positive_int_list("conv_kernel_sizes", conv_kernel_sizes, length=NUM_CONV_LAYERS)
        conv_strides = check_positive_int_list("conv_strides", conv_strides, length=NUM_CONV_LAYERS)
        conv_paddings = check_list(
            "conv_paddings", conv_paddings, check_non_negative_int, "non-negative integers", NUM_CONV_LAYERS
        )
        pool_after = check_list("pool_after", pool_after, check_bool, "booleans", NUM_CONV_LAYERS)
        check_positive_int("adaptive_pool_size", adaptive_pool_size)
        hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes, length=2)
        check_probability("dropout", dropout)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_bool("local_response_norm", local_response_norm)
        check_positive_int("lrn_size", lrn_size)
        check_positive_number("lrn_alpha", lrn_alpha)
        check_positive_number("lrn_beta", lrn_beta)
        check_positive_number("lrn_k", lrn_k)
        check_head_kwargs(kwargs)
        layers = (conv_kernel_sizes, conv_strides, conv_paddings, pool_after)
        if feature_map_sizes(image_size, *layers)[-1] < 1:
            # The stack only shrinks with the input, so the smallest side that survives is found by counting up.
            smallest = next(side for side in range(1, 1 << 20) if feature_map_sizes(side, *layers)[-1] >= 1)
            raise ValueError(
                f"`image_size`={image_size} is too small for the convolution and pooling stack (kernels "
                f"{conv_kernel_sizes}, strides {conv_strides}, paddings {conv_paddings}, 3x3 stride-2 pooling after "
                f"{pool_after}): the feature maps vanish. Use image_size >= {smallest}."
            )
        self.num_channels = num_channels
        self.image_size = image_size
        self.conv_channels = conv_channels
        self.conv_kernel_sizes = conv_kernel_sizes
        self.conv_strides = conv_strides
        self.conv_paddings = conv_paddings
        self.pool_after = pool_after
        self.adaptive_pool_size = adaptive_pool_size
        self.hidden_sizes = hidden_sizes
        self.dropout = float(dropout)
        self.activation = activation
        self.local_response_norm = local_response_norm
        self.lrn_size = lrn_size
        self.lrn_alpha = float(lrn_alpha)
        self.lrn_beta = float(lrn_beta)
        self.lrn_k = float(lrn_k)
        super().__init__(**kwargs)

    @property
    def feature_map_size(self) -> int:
        """Side of the last convolution stage's feature maps (6 for a 224x224 input in torchvision's layout)."""
        return feature_map_sizes(
            self.image_size, self.conv_kernel_sizes, self.conv_strides, self.conv_paddings, self.pool_after
        )[-1]
