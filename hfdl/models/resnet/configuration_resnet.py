"""Configuration of ResNet (He et al., 2016; Deep Learning Mastery, ch. 5)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_backbone import StageSelectionMixin
from .hfdl_utils import (
    ACTIVATION_NAMES,
    check_bool,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_int_list,
)

BLOCK_TYPES = ("basic", "bottleneck")
#: ``imagenet``: 7x7/2 convolution + 3x3/2 max pooling (the paper); ``small``: one 3x3/1 convolution and no pooling
#: (the paper's CIFAR networks, for 28-64 px images); ``deep``: three 3x3 convolutions + max pooling (ResNet-C of He
#: et al., 2019, "Bag of Tricks", used by timm's ``resnet*d``).
STEM_TYPES = ("imagenet", "small", "deep")
#: Channels out of a bottleneck block per channel of its inner 3x3 convolution.
BOTTLENECK_EXPANSION = 4


class ResNetConfig(StageSelectionMixin, PretrainedConfig):
    """ResNet: a stem, then stages of residual blocks ``y = relu(F(x) + shortcut(x))``, global average pooling.

    The paper's ImageNet networks differ in the block and in how many blocks each of the four stages stacks
    (``stage_depths``): ResNet-18 ``[2, 2, 2, 2]`` and ResNet-34 ``[3, 4, 6, 3]`` with basic blocks (two 3x3
    convolutions); ResNet-50 ``[3, 4, 6, 3]``, ResNet-101 ``[3, 4, 23, 3]`` and ResNet-152 ``[3, 8, 36, 3]`` with
    bottleneck blocks (1x1 down to ``stage_channels[i]``, 3x3, 1x1 up to 4x that). Every stage after the first halves
    the side with a stride-2 convolution; in bottleneck blocks the stride sits on the 3x3 convolution, as in
    torchvision ("ResNet v1.5", about half a point of top-1 better than the paper's stride on the first 1x1).

    Args:
        num_channels: Input channels (3 for RGB, 1 for MNIST).
        image_size: Side of the square input the model (and its image processor) is built for.
        block_type: ``basic`` or ``bottleneck``.
        stage_depths: Blocks per stage.
        stage_channels: Width of each stage's 3x3 convolutions (a bottleneck block outputs 4x this).
        stem: ``imagenet``, ``small`` or ``deep`` (see ``STEM_TYPES``).
        stem_channels: Channels out of the stem (64; 16 for the CIFAR networks).
        avg_down: Downsample shortcuts with a 2x2 average pooling before their 1x1 convolution instead of a stride-2
            1x1 convolution, which skips three quarters of the input (ResNet-D, He et al., 2019).
        zero_init_residual: Start each block's last batch norm scale at zero, so that every block starts as the
            identity and the network trains like a shallow one at first (Goyal et al., 2017).
        activation: ``relu`` (the paper), or ``sigmoid``, ``tanh``, ``leaky_relu``, ``gelu``.
        out_indices, out_features: The stages ``ResNetBackbone`` returns, by index or name in ``stage_names``
            (``stem``, ``stage1``, ...; default: the last stage). Other heads ignore them.
    """

    model_type = "hfdl-resnet"

    def __init__(
        self,
        num_channels: int = 3,
        image_size: int = 224,
        block_type: str = "basic",
        stage_depths: list[int] | tuple[int, ...] = (2, 2, 2, 2),
        stage_channels: list[int] | tuple[int, ...] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_channels: int = 64,
        avg_down: bool = False,
        zero_init_residual: bool = False,
        activation: str = "relu",
        out_indices: list[int] | None = None,
        out_features: list[str] | None = None,
        **kwargs,
    ) -> None:
        check_positive_int("num_channels", num_channels)
        check_positive_int("image_size", image_size)
        check_choice("block_type", block_type, BLOCK_TYPES)
        stage_depths = check_positive_int_list("stage_depths", stage_depths)
        stage_channels = check_positive_int_list("stage_channels", stage_channels, length=len(stage_depths))
        check_choice("stem", stem, STEM_TYPES)
        check_positive_int("stem_channels", stem_channels)
        if stem == "deep" and stem_channels % 2:
            raise ValueError(f"The deep stem's first convolutions have stem_channels / 2; got odd {stem_channels}.")
        check_bool("avg_down", avg_down)
        check_bool("zero_init_residual", zero_init_residual)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_head_kwargs(kwargs)
        self.num_channels = num_channels
        self.image_size = image_size
        self.block_type = block_type
        self.stage_depths = stage_depths
        self.stage_channels = stage_channels
        self.stem = stem
        self.stem_channels = stem_channels
        self.avg_down = avg_down
        self.zero_init_residual = zero_init_residual
        self.activation = activation
        if self.feature_map_size < 1:
            raise ValueError(
                f"`image_size`={image_size} is too small: the {stem} stem and {len(stage_depths) - 1} stride-2 "
                f"stages need image_size >= {self.reductions[-1]}."
            )
        self.set_stage_selection(out_indices, out_features)
        super().__init__(**kwargs)

    @property
    def expansion(self) -> int:
        """Output channels of a block per channel of its 3x3 convolutions (1 basic, 4 bottleneck)."""
        return BOTTLENECK_EXPANSION if self.block_type == "bottleneck" else 1

    @property
    def stage_names(self) -> list[str]:
        """``stem``, ``stage1``, ...: the outputs ``hidden_states`` returns, in order."""
        return ["stem", *(f"stage{index + 1}" for index in range(len(self.stage_depths)))]

    @property
    def hidden_channels(self) -> list[int]:
        """Channels of the stem's and each stage's output."""
        return [self.stem_channels, *(channels * self.expansion for channels in self.stage_channels)]

    @property
    def reductions(self) -> list[int]:
        """How much smaller than the input the stem's and each stage's outputs are (4, 4, 8, 16, 32 for ImageNet)."""
        stem = 1 if self.stem == "small" else 4
        return [stem, *(stem * 2**index for index in range(len(self.stage_depths)))]

    @property
    def feature_map_size(self) -> int:
        """Side of the last stage's feature maps (7 for a 224x224 ImageNet input)."""
        side = self.image_size
        if self.stem != "small":
            side = (side + 1) // 2  # 7x7 or 3x3 convolution, stride 2, "same" padding
            side = (side + 1) // 2  # 3x3 max pooling, stride 2, padding 1
        for _ in self.stage_depths[1:]:
            side = (side + 1) // 2  # stride-2 3x3 convolution, padding 1
        return side
