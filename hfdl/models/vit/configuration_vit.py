"""Configuration of the Vision Transformer (Dosovitskiy et al., 2021; Deep Learning Mastery, ch. 9)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_attention import TRANSFORMER_ACTIVATIONS
from .hfdl_utils import (
    check_bool,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_number,
    check_probability,
)

#: How one vector stands for the whole image: the final state of the class token (the paper, BERT's [CLS]) or the
#: mean of the patch tokens (global average pooling, which the paper's appendix D.3 finds as good with a tuned
#: learning rate, and which timm's ``global_pool="avg"`` models use).
POOLING_TYPES = ("cls", "mean")


class ViTConfig(PretrainedConfig):
    """A Vision Transformer: the image cut into ``patch_size`` x ``patch_size`` patches, each flattened and projected
    to a token; a learned class token and learned position embeddings added; a stack of pre-norm transformer
    encoder blocks; a classifier on the class token.

    The defaults are ViT-B/16 at 224 px (86.6M parameters with a 1,000-class head, as transformers' and timm's);
    ``hfdl.create_model("vit-mnist")`` is the course's 0.8M-parameter ViT for 28 px digits.

    Args:
        image_size: Side of the square input; with learned positions, the grid the position table is built for
            (other sizes need ``interpolate_pos_encoding=True`` in the forward).
        patch_size: Side of a patch; must divide ``image_size``.
        num_channels: Input channels (3 for RGB, 1 for MNIST).
        hidden_size: Width of every token.
        num_hidden_layers: Number of transformer blocks.
        num_attention_heads: Heads per attention layer; must divide ``hidden_size``.
        intermediate_size: Width of the MLP sublayer; default ``4 * hidden_size``.
        hidden_act: MLP activation (``gelu``, exact, in the paper).
        hidden_dropout: Dropout on the embeddings and on each sublayer's output.
        attention_dropout: Dropout on the attention weights.
        drop_path_rate: Stochastic depth of the deepest block (DeiT trains ViT-B with 0.1); rises linearly from 0.
        layer_norm_eps: Layer norm epsilon (1e-6 in the paper's code and timm; 1e-12 in transformers' ViT).
        initializer_range: Standard deviation of the normal weight init.
        norm_position: ``pre`` (the paper) or ``post`` norm blocks.
        bias: Biases in the linear layers and layer norms (``qkv_bias`` in timm).
        class_token: Prepend a learned class token.
        pooling: ``cls`` or ``mean`` (see ``POOLING_TYPES``); ``cls`` needs ``class_token``.
        norm_after_pooling: Apply the final layer norm to the pooled vector instead of to every token (timm's
            ``fc_norm`` of mean-pooled models such as MAE's); ``last_hidden_state`` is then un-normalised.
        classifier_dropout: Dropout before the classification head; default ``hidden_dropout``.
    """

    model_type = "hfdl-vit"

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        norm_position: str = "pre",
        bias: bool = True,
        class_token: bool = True,
        pooling: str = "cls",
        norm_after_pooling: bool = False,
        classifier_dropout: float | None = None,
        **kwargs,
    ) -> None:
        intermediate_size = (
            4 * hidden_size if intermediate_size is None and isinstance(hidden_size, int) else intermediate_size
        )
        for field, value in (
            ("image_size", image_size),
            ("patch_size", patch_size),
            ("num_channels", num_channels),
            ("hidden_size", hidden_size),
            ("num_hidden_layers", num_hidden_layers),
            ("num_attention_heads", num_attention_heads),
            ("intermediate_size", intermediate_size),
        ):
            check_positive_int(field, value)
        if image_size % patch_size:
            raise ValueError(
                f"`patch_size` ({patch_size}) must divide `image_size` ({image_size}): the image is cut into a whole "
                "grid of patches."
            )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be a multiple of `num_attention_heads` ({num_attention_heads})."
            )
        check_choice("hidden_act", hidden_act, TRANSFORMER_ACTIVATIONS)
        for field, value in (
            ("hidden_dropout", hidden_dropout),
            ("attention_dropout", attention_dropout),
            ("drop_path_rate", drop_path_rate),
        ):
            check_probability(field, value)
        if classifier_dropout is not None:
            check_probability("classifier_dropout", classifier_dropout)
        check_positive_number("layer_norm_eps", layer_norm_eps)
        check_positive_number("initializer_range", initializer_range)
        check_choice("norm_position", norm_position, ("pre", "post"))
        check_choice("pooling", pooling, POOLING_TYPES)
        for field, value in (("bias", bias), ("class_token", class_token), ("norm_after_pooling", norm_after_pooling)):
            check_bool(field, value)
        if pooling == "cls" and not class_token:
            raise ValueError("`pooling='cls'` reads the class token, so it needs `class_token=True`; or use 'mean'.")
        check_head_kwargs(kwargs)
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = float(hidden_dropout)
        self.attention_dropout = float(attention_dropout)
        self.drop_path_rate = float(drop_path_rate)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.norm_position = norm_position
        self.bias = bias
        self.class_token = class_token
        self.pooling = pooling
        self.norm_after_pooling = norm_after_pooling
        self.classifier_dropout = None if classifier_dropout is None else float(classifier_dropout)
        super().__init__(**kwargs)

    @property
    def num_patches(self) -> int:
        """Patches of an ``image_size`` image: ``(image_size / patch_size) ** 2``."""
        return (self.image_size // self.patch_size) ** 2
