"""The Vision Transformer of Deep Learning Mastery, ch. 9 (Dosovitskiy et al., 2021, "An image is worth 16x16
words"): an image read as a sequence of patches by the same transformer encoder the text models use.

Also here: attention rollout (Abnar & Zuidema, 2020), which follows the class token's attention through the layers
back to the image patches, the usual picture of what a ViT looks at.

This file imports only torch, transformers, the standard library and its siblings (the configuration and the shared
``hfdl_attention.py``/``hfdl_utils.py``), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput

from .configuration_vit import ViTConfig
from .hfdl_attention import TransformerBlock, init_transformer_weights, is_tracing
from .hfdl_utils import check_choice, classification_loss, init


def check_pixel_values(pixel_values: object, config: ViTConfig, interpolate_pos_encoding: bool) -> None:
    """``pixel_values`` must be (batch, num_channels, height, width) floats, at the config's size unless positions
    are interpolated, and then with sides that are whole multiples of the patch size."""
    size = config.image_size
    expected = f"(batch_size, {config.num_channels}, {size}, {size})"
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(
            f"`pixel_values` must be a torch.Tensor of shape {expected}, got {type(pixel_values).__name__}."
        )
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"`pixel_values` must be a floating point tensor of shape {expected}, got dtype {pixel_values.dtype} "
            "(an image processor rescales uint8 pixels to floats)."
        )
    if pixel_values.dim() != 4 or pixel_values.shape[1] != config.num_channels:
        raise ValueError(f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)}.")
    height, width = pixel_values.shape[-2:]
    if (height, width) == (size, size):
        return
    if not interpolate_pos_encoding:
        raise ValueError(
            f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)}: the model was built for "
            f"{size}x{size} images. Resize the images (the image processor does), or pass "
            "`interpolate_pos_encoding=True` to resample the position embeddings to the new patch grid."
        )
    if height % config.patch_size or width % config.patch_size:
        raise ValueError(
            f"With interpolated positions the image sides must be multiples of patch_size={config.patch_size}, got "
            f"{height}x{width}."
        )


class ViTEmbeddings(nn.Module):
    """Patches to tokens: a ``patch_size``-strided convolution (one linear map per patch, applied to every patch at
    once), the class token in front, learned position embeddings added, then dropout."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_size = config.patch_size
        self.grid_size = config.image_size // config.patch_size
        self.num_prefix_tokens = 1 if config.class_token else 0
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if config.class_token else None
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + config.num_patches, config.hidden_size)
        )

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """The position table resampled (bicubic) from the trained ``grid x grid`` patches to ``height x width``
        patches; the class token keeps its own position vector. Section 3.2 of the paper: how a ViT fine-tunes at a
        higher resolution than it was pretrained at."""
        table = self.position_embeddings
        if (height, width) == (self.grid_size, self.grid_size) and not is_tracing():
            return table
        prefix, patches = table[:, : self.num_prefix_tokens], table[:, self.num_prefix_tokens :]
        grid = patches.reshape(1, self.grid_size, self.grid_size, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(height, width), mode="bicubic", align_corners=False).to(table.dtype)
        return torch.cat((prefix, grid.permute(0, 2, 3, 1).reshape(1, height * width, -1)), dim=1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        tokens = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype))  # (batch, hidden, gh, gw)
        height, width = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2)  # (batch, gh * gw, hidden), patches in row-major order
        if self.cls_token is not None:
            tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        if interpolate_pos_encoding:
            tokens = tokens + self.interpolate_pos_encoding(height, width)
        else:
            tokens = tokens + self.position_embeddings
        if self.config.hidden_dropout and self.training:
            tokens = F.dropout(tokens, self.config.hidden_dropout, True)
        return tokens


class ViTPreTrainedModel(PreTrainedModel):
    config_class = ViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    _no_split_modules = ["TransformerBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        init_transformer_weights(module, self.config, init)
        std = self.config.initializer_range
        if isinstance(module, ViTEmbeddings):
            # As the paper's code: positions from a truncated normal, the patch projection like any linear layer.
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            if module.cls_token is not None:
                init.trunc_normal_(module.cls_token, mean=0.0, std=std)
            init.trunc_normal_(module.patch_embedding.weight, mean=0.0, std=std)
            init.zeros_(module.patch_embedding.bias)


class ViTModel(ViTPreTrainedModel):
    """The encoder without a head: ``last_hidden_state`` (batch, prefix + patches, hidden), the class token first,
    then the patches row by row; ``pooler_output`` (batch, hidden), the image vector a classifier reads (the class
    token's final state, or the mean of the patch tokens, per ``config.pooling``).

    ``interpolate_pos_encoding=True`` takes images of other sizes (multiples of the patch size) by resampling the
    position embeddings; ``output_attentions=True`` returns each layer's (batch, heads, tokens, tokens) weights,
    which :func:`attention_rollout` turns into a map over the image. ``class_token_only=True`` (what the classifier
    passes) runs the last block for the class token alone when nothing else of it is returned: same pooled output,
    a fifth less work in a 4-block ViT.
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__(config)
        self.embeddings = ViTEmbeddings(config)
        self.layers = nn.ModuleList(TransformerBlock(config, index) for index in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        return self.embeddings.patch_embedding

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
        class_token_only: bool = False,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.return_dict
        interpolate_pos_encoding = bool(interpolate_pos_encoding)
        check_pixel_values(pixel_values, config, interpolate_pos_encoding)

        hidden_states = self.embeddings(pixel_values, interpolate_pos_encoding)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        # ``class_token_only`` (what the classifier asks for): a classifier reads the class token alone, so the last
        # block computes its row only (the other tokens are still its keys and values): the same logits and
        # gradients, with the last block's queries, attention output and MLP for 1 token instead of all.
        # ``last_hidden_state`` is then (batch, 1, hidden); only where nothing else of the last block is returned.
        shortcut = class_token_only and config.pooling == "cls" and not (output_attentions or output_hidden_states)
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            query_slice = slice(0, 1) if shortcut and index == last else None
            hidden_states, weights = layer(hidden_states, None, False, None, None, output_attentions, query_slice)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        if config.pooling == "cls":
            hidden_states = self.norm(hidden_states)
            pooled = hidden_states[:, 0]
        else:
            patches = hidden_states[:, self.embeddings.num_prefix_tokens :]
            if config.norm_after_pooling:
                pooled = self.norm(patches.mean(dim=1))
            else:
                hidden_states = self.norm(hidden_states)
                pooled = hidden_states[:, self.embeddings.num_prefix_tokens :].mean(dim=1)
        if not return_dict:
            return tuple(v for v in (hidden_states, pooled, all_hidden_states, all_attentions) if v is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


class ViTForImageClassification(ViTPreTrainedModel):
    """The encoder with a linear classifier on the pooled image vector: ``logits`` (batch, num_labels).

    The loss follows ``config.problem_type`` as in transformers (cross-entropy for class indices or soft targets
    from mixup/cutmix, BCE for multi-label or one-logit heads).
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__(config)
        self.vit = ViTModel(config)
        dropout = config.classifier_dropout
        self.classifier_dropout = dropout if dropout is not None else config.hidden_dropout
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.vit(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            return_dict=True,
            class_token_only=True,
        )
        pooled = F.dropout(outputs.pooler_output, self.classifier_dropout, self.training)
        logits = self.classifier(pooled)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states, outputs.attentions) if v is not None)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# --------------------------------------------------------------------------------------------- attention rollout
HEAD_FUSIONS = ("mean", "max", "min")


def attention_rollout(
    attentions: Sequence[torch.Tensor],
    head: int | None = None,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    num_layers: int | None = None,
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): how much each token's final state draws on each input token.

    Each layer's attention (batch, heads, tokens, tokens) is reduced over heads (``head_fusion``, or one ``head``),
    the residual connection is added as an identity (``0.5 * A + 0.5 * I``, rows renormalised), and the layers'
    matrices are multiplied from the first up to ``num_layers`` (default: all). The result, (batch, tokens, tokens),
    has rows summing to 1; row 0 of a class-token model is what :func:`rollout_map` draws over the image.

    ``discard_ratio`` zeroes that fraction of the weakest attention weights of each layer (never a token's weight
    to itself) before the product, which sharpens the map, as in the usual implementations.
    """
    if not attentions or any(not isinstance(a, torch.Tensor) or a.dim() != 4 for a in attentions):
        raise ValueError(
            "`attentions` must be the per-layer attention weights, each (batch, heads, tokens, tokens): run the "
            "model with output_attentions=True and pass outputs.attentions."
        )
    check_choice("head_fusion", head_fusion, HEAD_FUSIONS)
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"`discard_ratio` must be in [0, 1), got {discard_ratio}.")
    total = len(attentions)
    num_layers = total if num_layers is None else num_layers
    if not 1 <= num_layers <= total:
        raise ValueError(f"`num_layers` must be between 1 and {total} (the layers given), got {num_layers}.")
    heads = attentions[0].shape[1]
    if head is not None and not -heads <= head < heads:
        raise ValueError(f"`head` must be a head index in [0, {heads}) or None (fuse all heads), got {head}.")
    tokens = attentions[0].shape[-1]
    identity = torch.eye(tokens, device=attentions[0].device, dtype=torch.float32)
    rollout = identity.expand(attentions[0].shape[0], tokens, tokens)
    for weights in attentions[:num_layers]:
        weights = weights.float()
        if head is not None:
            fused = weights[:, head]
        elif head_fusion == "mean":
            fused = weights.mean(dim=1)
        elif head_fusion == "max":
            fused = weights.amax(dim=1)
        else:
            fused = weights.amin(dim=1)
        if discard_ratio:
            flat = fused.flatten(1)
            drop = int(flat.shape[1] * discard_ratio)
            if drop:
                lowest = flat.topk(drop, dim=1, largest=False).indices
                keep = torch.ones_like(flat, dtype=torch.bool).scatter_(1, lowest, False)
                fused = (flat * keep).view_as(fused) + fused * identity  # a token keeps its self-attention
                fused = fused.clamp_max(1.0)
        mixed = 0.5 * fused + 0.5 * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout
    return rollout


def rollout_map(rollout: torch.Tensor, grid_size: tuple[int, int] | int, num_prefix_tokens: int = 1) -> torch.Tensor:
    """The class token's row of a rollout over the patch grid: (batch, grid_height, grid_width), scaled to [0, 1]
    per image. Models without a class token (``num_prefix_tokens=0``) use the mean over all tokens' rows."""
    height, width = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    if rollout.shape[-1] != num_prefix_tokens + height * width:
        raise ValueError(
            f"A rollout over {rollout.shape[-1]} tokens does not fit a {height}x{width} patch grid with "
            f"{num_prefix_tokens} prefix token(s)."
        )
    row = rollout[:, 0] if num_prefix_tokens else rollout.mean(dim=1)
    patches = row[:, num_prefix_tokens:].reshape(-1, height, width)
    low = patches.flatten(1).amin(dim=1)[:, None, None]
    high = patches.flatten(1).amax(dim=1)[:, None, None]
    return (patches - low) / (high - low).clamp_min(1e-12)
