"""Configuration of VGG (Simonyan & Zisserman, 2015; Deep Learning Mastery, ch. 5)."""

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
    check_probability,
)


class VGGConfig(StageSelectionMixin, PretrainedConfig):
    """VGG: stages of 3x3 convolutions, each ending in 2x2 max pooling, then three fully connected layers.

    The paper's networks differ only in how many convolutions each of the five stages stacks (``stage_depths``):
    VGG-11 (configuration A) ``[1, 1, 2, 2, 2]``, VGG-13 (B) ``[2, 2, 2, 2, 2]``, VGG-16 (D) ``[2, 2, 3, 3, 3]`` and
    VGG-19 (E) ``[2, 2, 4, 4, 4]``, all with ``stage_channels=[64, 128, 256, 512, 512]``. ``batch_norm=True`` adds
    batch normalisation after every convolution (Ioffe & Szegedy, 2015; not in the paper, torchvision's ``_bn``
    variants). As in torchvision, an adaptive average pool brings the last feature maps to ``pooled_size`` x
    ``pooled_size`` (7, what a 224x224 input gives anyway), so other input sizes reuse the same classifier.

    Args:
        num_channels: Input channels (3 for RGB).
        image_size: Side of the square input (224 in the paper). Every stage halves it, so it must be at least
            ``2 ** len(stage_channels)``.
        stage_channels: Output channels of each stage's convolutions (64, 128, 256, 512, 512).
        stage_depths: Number of 3x3 convolutions in each stage; as many entries as ``stage_channels``.
        batch_norm: Batch normalisation after every convolution.
        activation: ``relu`` (the paper), or ``sigmoid``, ``tanh``, ``leaky_relu``, ``gelu``.
        pooled_size: Side of the adaptive average pool's output, which the first fully connected layer flattens
            (7). ONNX exporters need it to divide the side of the last stage's maps.
        hidden_sizes: Widths of the two hidden fully connected layers (4096 and 4096).
        dropout: Dropout rate after each hidden fully connected layer (0.5 in the paper).
        out_indices, out_features: The stages ``VGGBackbone`` returns, by index or name in ``stage_names``
            (``stage1`` ... ``stage5``; default: the last). Other heads ignore them.
    """

    model_type = "hfdl-vgg"

    def __init__(
        self,
        num_channels: int = 3,
        image_size: int = 224,
        stage_channels: list[int] | tuple[int, ...] = (64, 128, 256, 512, 512),
        stage_depths: list[int] | tuple[int, ...] = (2, 2, 3, 3, 3),
        batch_norm: bool = False,
        activation: str = "relu",
        pooled_size: int = 7,
        hidden_sizes: list[int] | tuple[int, ...] = (4096, 4096),
        dropout: float = 0.5,
        out_indices: list[int] | None = None,
        out_features: list[str] | None = None,
        **kwargs,
    ) -> None:
        check_positive_int("num_channels", num_channels)
        check_positive_int("image_size", image_size)
        stage_channels = check_positive_int_list("stage_channels", stage_channels)
        stage_depths = check_positive_int_list("stage_depths", stage_depths, length=len(stage_channels))
        check_bool("batch_norm", batch_norm)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_positive_int("pooled_size", pooled_size)
        hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes, length=2)  # the two hidden FC layers
        check_probability("dropout", dropout)
        check_head_kwargs(kwargs)
        # Each stage's 2x2 max pooling halves the side (rounding down); the last stage must keep one pixel.
        smallest = 2 ** len(stage_channels)
        if image_size < smallest:
            raise ValueError(
                f"`image_size`={image_size} is too small for {len(stage_channels)} stages that each halve it with 2x2 "
                f"max pooling; use image_size >= {smallest}."
            )
        self.num_channels = num_channels
        self.image_size = image_size
        self.stage_channels = stage_channels
        self.stage_depths = stage_depths
        self.batch_norm = batch_norm
        self.activation = activation
        self.pooled_size = pooled_size
        self.hidden_sizes = hidden_sizes
        self.dropout = float(dropout)
        self.set_stage_selection(out_indices, out_features)
        super().__init__(**kwargs)

    @property
    def stage_names(self) -> list[str]:
        """``stage1``, ``stage2``, ...: the pooled outputs of the convolution stages."""
        return [f"stage{index + 1}" for index in range(len(self.stage_channels))]

    @property
    def hidden_channels(self) -> list[int]:
        """Channels of each stage's output (what a backbone returns per stage)."""
        return list(self.stage_channels)

    @property
    def reductions(self) -> list[int]:
        """How much smaller than the input each stage's output is (2, 4, 8, 16, 32)."""
        return [2 ** (index + 1) for index in range(len(self.stage_channels))]

    @property
    def feature_map_size(self) -> int:
        """Side of the last stage's feature maps (7 for a 224x224 input and five stages)."""
        return self.image_size // 2 ** len(self.stage_channels)
