"""Attention and the transformer block that every hfdl transformer shares (Deep Learning Mastery, ch. 9).

One implementation serves the BERT-style encoder and the GPT-style decoder (and, later, ViT): multi-head
self-attention with PyTorch's fused ``F.scaled_dot_product_attention`` by default and an eager path that computes
the softmax weights by hand, for ``output_attentions`` and for ``attn_implementation="eager"``; causal and padding
masks; learned, sinusoidal (Vaswani et al., 2017) and rotary (Su et al., 2021) positions; pre- or post-norm blocks.

Like ``hfdl_utils.py``, this file is copied byte for byte into the model folders that use it, because a folder is
what ``trust_remote_code`` uploads; edit it in hfdl/layers/ only (``python -m hfdl.tools.check_copies --fix``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers.activations import ACT2FN

from .hfdl_utils import (
    check_bool,
    check_choice,
    check_positive_int,
    check_positive_number,
    check_probability,
)

#: How positions enter the model: a learned table added to the token embeddings (BERT, GPT-2), the fixed sines and
#: cosines of "Attention is all you need" added likewise, or rotary embeddings that rotate queries and keys by their
#: position inside every attention layer (RoFormer; LLaMA and most recent decoders).
POSITION_EMBEDDING_TYPES = ("learned", "sinusoidal", "rotary")
#: Where the layer norm sits: after each residual sum (the original Transformer and BERT) or before each sublayer
#: (GPT-2 and later; it trains deep stacks without warm-up tricks, Xiong et al. 2020).
NORM_POSITIONS = ("post", "pre")
#: Activations of the feed-forward sublayer, keys of ``transformers.activations.ACT2FN`` in 4.57 and 5.x.
#: ``gelu_new`` is GPT-2's tanh approximation written out op by op; ``gelu_pytorch_tanh`` is the same function as
#: one fused kernel, so it is what hfdl's GPT presets use.
TRANSFORMER_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu")


# --------------------------------------------------------------------------------------------- config checks
def check_transformer_config(
    vocab_size: object,
    hidden_size: object,
    num_hidden_layers: object,
    num_attention_heads: object,
    intermediate_size: object,
    max_position_embeddings: object,
    hidden_act: object,
    hidden_dropout: object,
    attention_dropout: object,
    layer_norm_eps: object,
    initializer_range: object,
    position_embedding_type: object,
    rotary_base: object,
    norm_position: object,
    bias: object,
) -> None:
    """Validate the fields every hfdl transformer config has, naming the field and what it may be."""
    for field, value in (
        ("vocab_size", vocab_size),
        ("hidden_size", hidden_size),
        ("num_hidden_layers", num_hidden_layers),
        ("num_attention_heads", num_attention_heads),
        ("intermediate_size", intermediate_size),
        ("max_position_embeddings", max_position_embeddings),
    ):
        check_positive_int(field, value)
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"`hidden_size` ({hidden_size}) must be a multiple of `num_attention_heads` ({num_attention_heads}): "
            "each head attends over hidden_size / num_attention_heads dimensions."
        )
    check_choice("hidden_act", hidden_act, TRANSFORMER_ACTIVATIONS)
    check_probability("hidden_dropout", hidden_dropout)
    check_probability("attention_dropout", attention_dropout)
    check_positive_number("layer_norm_eps", layer_norm_eps)
    check_positive_number("initializer_range", initializer_range)
    check_choice("position_embedding_type", position_embedding_type, POSITION_EMBEDDING_TYPES)
    check_positive_number("rotary_base", rotary_base)
    check_choice("norm_position", norm_position, NORM_POSITIONS)
    check_bool("bias", bias)
    if position_embedding_type == "sinusoidal" and hidden_size % 2:
        raise ValueError(
            f"Sinusoidal positions pair a sine with a cosine: `hidden_size` must be even, got {hidden_size}."
        )
    if position_embedding_type == "rotary" and (hidden_size // num_attention_heads) % 2:
        raise ValueError(
            "Rotary positions rotate pairs of dimensions: the head size `hidden_size / num_attention_heads` must be "
            f"even, got {hidden_size // num_attention_heads}."
        )


# --------------------------------------------------------------------------------------------- input checks
def is_tracing() -> bool:
    """Whether the forward is being traced (ONNX export, ``torch.compile``, ``torch.export``).

    Value checks and the "no padding, take the fast causal kernel" shortcut read tensor values, which a traced graph
    cannot branch on; traced graphs therefore always build the full mask, which is correct for any input.
    """
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or exporting()


def check_token_ids(
    input_ids: object, vocab_size: int, max_length: int | None = None, past_length: int = 0, name: str = "input_ids"
) -> None:
    """``input_ids`` must be integer token ids of shape (batch_size, sequence_length), each in ``[0, vocab_size)``.

    A float tensor, a missing batch axis, ids from a tokenizer with a larger vocabulary or a text longer than a
    learned position table (``max_length``, counting ``past_length`` cached tokens) then fail with what was wrong,
    not with an index error deep inside an embedding.
    """
    expected = "(batch_size, sequence_length)"
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor of shape {expected}, got {type(input_ids).__name__}.")
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise ValueError(
            f"`{name}` must be an integer tensor of shape {expected} (token ids, as a tokenizer returns them), got "
            f"dtype {input_ids.dtype}."
        )
    if input_ids.dim() != 2:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(input_ids.shape)}.")
    if max_length is not None and past_length + input_ids.shape[1] > max_length:
        raise ValueError(
            f"`{name}` reaches position {past_length + input_ids.shape[1]} ({past_length} cached + "
            f"{input_ids.shape[1]} new tokens) but the model's learned position table has "
            f"max_position_embeddings={max_length} entries; truncate the text (tokenizer(..., truncation=True)) "
            "or generate fewer tokens."
        )
    if not is_tracing() and input_ids.numel():
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"`{name}` holds token ids from {low} to {high}, but the model's vocabulary has vocab_size={vocab_size} "
                f"ids (0 to {vocab_size - 1}); was the text encoded with this model's tokenizer?"
            )


# --------------------------------------------------------------------------------------------- masks
def make_attention_mask(
    attention_mask: torch.Tensor | None,
    query_length: int,
    past_length: int,
    causal: bool,
    device: torch.device,
) -> tuple[torch.Tensor | None, bool]:
    """The mask every attention layer of one forward applies, built once: ``(mask, is_causal)``.

    ``mask`` is boolean, (batch or 1, 1, query_length, key_length), ``True`` where a query may attend to a key; a
    causal model lets the query at absolute position ``i`` see keys ``0..i``, and ``attention_mask`` (batch,
    key_length) with 0 on padding hides padded keys. Where no mask is needed (no padding; a causal model without a
    cache, or a single new token) ``mask`` is ``None`` and ``is_causal`` says whether the kernel should apply its
    own causal pattern: PyTorch's fused kernels are fastest that way.
    """
    key_length = past_length + query_length
    padded = False
    if attention_mask is not None:
        if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
            shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)
            raise ValueError(
                f"`attention_mask` must be a tensor of shape (batch_size, {key_length}) with 1 for tokens and 0 for "
                f"padding, got {shape}."
            )
        if attention_mask.shape[1] != key_length:
            raise ValueError(
                f"`attention_mask` covers {attention_mask.shape[1]} positions, but the model sees {key_length} "
                f"({past_length} cached + {query_length} new tokens); give one entry per token."
            )
        padded = is_tracing() or not bool(attention_mask.all())
    if not padded:
        if not causal or query_length == 1:
            return None, False
        if past_length == 0:
            return None, True
    mask = None
    if causal:
        keys = torch.arange(key_length, device=device)
        queries = torch.arange(past_length, key_length, device=device)
        mask = (keys[None, :] <= queries[:, None])[None, None]
    if padded:
        keep = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]
        mask = keep if mask is None else mask & keep
    # A query that may see no key at all (a left-padding position of a batch being generated) would get a softmax of
    # nothing, i.e. NaN, which then spreads through the cache; let it see every key instead. Its output belongs to a
    # padding token and is never read.
    mask = mask | ~mask.any(dim=-1, keepdim=True)
    return mask, False


# --------------------------------------------------------------------------------------------- positions
def default_position_ids(batch_size: int, past_length: int, length: int, device: torch.device) -> torch.Tensor:
    """Positions ``past_length .. past_length + length - 1`` for every row, (batch_size, length)."""
    return torch.arange(past_length, past_length + length, device=device).unsqueeze(0).expand(batch_size, -1)


def sinusoidal_embeddings(position_ids: torch.Tensor, dim: int) -> torch.Tensor:
    """The fixed position code of Vaswani et al. (2017): ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos``.

    Computed from the positions at each call instead of stored: it costs a few hundred multiplications, needs no
    buffer that loading on the meta device would leave empty, and works at any length.
    """
    frequencies = torch.exp(
        torch.arange(0, dim, 2, device=position_ids.device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    angles = position_ids.to(torch.float32)[..., None] * frequencies  # (batch, length, dim / 2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # sin, cos interleaved


def rotary_cos_sin(position_ids: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotary angles, (batch, 1, length, head_dim), for :func:`apply_rotary`.

    Dimension pair ``(j, j + head_dim/2)`` turns by ``position * base^(-2j/head_dim)``: the dot product of a rotated
    query and key then depends only on their distance, which is how rotary embeddings encode relative position.
    """
    inverse = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim))
    angles = position_ids.to(torch.float32)[..., None] * inverse  # (batch, length, head_dim / 2)
    angles = torch.cat((angles, angles), dim=-1)[:, None]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (j, j + d/2) pair of ``x`` (batch, heads, length, head_dim) by its position's angle."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


# --------------------------------------------------------------------------------------------- layers
class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: ``softmax(Q K^T / sqrt(d)) V`` in ``num_attention_heads`` subspaces at once.

    Queries, keys and values come from one fused projection (``qkv``): one matrix product instead of three, which
    is what keeps small models fast on a CPU. With ``config._attn_implementation == "sdpa"`` (the default) the
    attention runs in PyTorch's fused kernel; ``"eager"``, or ``output_attentions=True``, computes the weights
    explicitly and returns them (batch, heads, query_length, key_length), for inspection and the course's plots.
    """

    def __init__(self, config, layer_idx: int) -> None:  # noqa: ANN001 - any hfdl transformer config
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.bias)
        self.out = nn.Linear(config.hidden_size, config.hidden_size, bias=config.bias)
        self.out.is_residual_projection = True  # read by init_transformer_weights

    def forward(
        self,
        hidden_states: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_key_values=None,  # noqa: ANN001 - a transformers Cache
        output_attentions: bool = False,
        query_slice: slice | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, length, hidden_size = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch_size, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        if rotary is not None:
            query, key = apply_rotary(query, *rotary), apply_rotary(key, *rotary)
        if query_slice is not None:  # only these positions' outputs are wanted; every position stays a key/value
            query = query[:, :, query_slice]
        if past_key_values is not None:  # append this step's keys and values, attend over all of them
            key, value = past_key_values.update(key, value, self.layer_idx)
        dropout = self.config.attention_dropout if self.training else 0.0
        if output_attentions or self.config._attn_implementation == "eager":
            scores = query @ key.transpose(-2, -1) / math.sqrt(self.head_dim)
            if mask is None and is_causal:
                mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            weights = scores.softmax(dim=-1)
            context = F.dropout(weights, dropout, self.training) @ value
        else:
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=mask, dropout_p=dropout, is_causal=is_causal
            )
            weights = None
        context = context.transpose(1, 2).reshape(batch_size, query.shape[2], hidden_size)
        return self.out(context), weights


class FeedForward(nn.Module):
    """The position-wise MLP: ``Linear(hidden, intermediate) -> activation -> Linear(intermediate, hidden)``."""

    def __init__(self, config) -> None:  # noqa: ANN001
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.bias)
        self.activation = ACT2FN[config.hidden_act]
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.bias)
        self.fc_out.is_residual_projection = True  # read by init_transformer_weights

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.activation(self.fc_in(hidden_states)))


class TransformerBlock(nn.Module):
    """Self-attention and feed-forward sublayers, each in a residual connection with a layer norm.

    ``config.norm_position`` places the norms: ``post`` (``x = norm(x + sublayer(x))``, BERT) or ``pre``
    (``x = x + sublayer(norm(x))``, GPT-2). Dropout (``hidden_dropout``) and, where the config has
    ``drop_path_rate``, stochastic depth hit each sublayer's output before the sum; at rate 0 they are skipped, not
    run as no-ops, since small models on a CPU pay for every kernel launch.
    """

    def __init__(self, config, layer_idx: int) -> None:  # noqa: ANN001
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.hidden_dropout = config.hidden_dropout
        # Stochastic depth (Huang et al., 2016), as DeiT trains ViTs: each residual branch of block i is dropped for
        # a whole sample with probability drop_path_rate * i / (num_hidden_layers - 1), rising linearly with depth.
        depth = max(config.num_hidden_layers - 1, 1)
        self.drop_path = getattr(config, "drop_path_rate", 0.0) * layer_idx / depth
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.attention = MultiHeadSelfAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = FeedForward(config)

    def _dropout(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.hidden_dropout and self.training:
            hidden_states = F.dropout(hidden_states, self.hidden_dropout, True)
        if self.drop_path and self.training:
            keep = 1.0 - self.drop_path
            shape = (hidden_states.shape[0],) + (1,) * (hidden_states.dim() - 1)
            hidden_states = hidden_states * hidden_states.new_empty(shape).bernoulli_(keep).div_(keep)
        return hidden_states

    def forward(
        self,
        hidden_states: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_key_values=None,  # noqa: ANN001
        output_attentions: bool = False,
        query_slice: slice | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``query_slice`` computes the block's output for those positions only (a ViT classifier's last block needs
        the class token's alone): every position is still attended to, and the result equals the full block's rows."""
        attend = self.attention
        residual = hidden_states if query_slice is None else hidden_states[:, query_slice]
        if self.pre_norm:
            attended, weights = attend(
                self.attention_norm(hidden_states),
                mask,
                is_causal,
                rotary,
                past_key_values,
                output_attentions,
                query_slice,
            )
            hidden_states = residual + self._dropout(attended)
            hidden_states = hidden_states + self._dropout(self.mlp(self.mlp_norm(hidden_states)))
        else:
            attended, weights = attend(
                hidden_states, mask, is_causal, rotary, past_key_values, output_attentions, query_slice
            )
            hidden_states = self.attention_norm(residual + self._dropout(attended))
            hidden_states = self.mlp_norm(hidden_states + self._dropout(self.mlp(hidden_states)))
        return hidden_states, weights


def init_transformer_weights(module: nn.Module, config, init) -> None:  # noqa: ANN001
    """The GPT-2/BERT initialisation: N(0, ``initializer_range``) for linear and embedding weights, zero biases,
    unit layer norms; the residual projections (``out``, ``fc_out``) of pre-norm stacks are scaled down by
    ``sqrt(2 * num_hidden_layers)`` (GPT-2, Radford et al. 2019) so the residual stream does not grow with depth.

    ``init`` is transformers' ``initialization`` module where it exists: its functions leave weights that were
    loaded from a checkpoint alone.
    """
    std = config.initializer_range
    if isinstance(module, nn.Linear):
        if config.norm_position == "pre" and getattr(module, "is_residual_projection", False):
            std = std / math.sqrt(2 * config.num_hidden_layers)
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)
