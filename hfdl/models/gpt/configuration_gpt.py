"""Configuration of the GPT-style decoder (Deep Learning Mastery, ch. 9)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_attention import check_transformer_config
from .hfdl_utils import check_head_kwargs


class GPTConfig(PretrainedConfig):
    """A decoder-only transformer language model (Radford et al., 2018-2019): token and position embeddings, a stack
    of causal self-attention blocks, a final layer norm and a language-model head.

    The defaults are GPT-2 small (124M parameters); ``hfdl.create_model("gpt-char")`` gives the 0.8M-parameter
    character model of nanoGPT's CPU configuration.

    Args:
        vocab_size: Number of token ids.
        max_position_embeddings: Longest sequence (cached tokens included) the model reads; with learned positions
            it is the size of the position table.
        hidden_size: Width of the residual stream (GPT-2's ``n_embd``).
        num_hidden_layers: Number of transformer blocks.
        num_attention_heads: Heads per attention layer; must divide ``hidden_size``.
        intermediate_size: Width of the feed-forward sublayer; default ``4 * hidden_size``.
        hidden_act: Feed-forward activation, one of ``gelu``, ``gelu_new``, ``gelu_pytorch_tanh``, ``relu``,
            ``silu``.
        hidden_dropout: Dropout on embeddings and on each sublayer's output.
        attention_dropout: Dropout on the attention weights.
        layer_norm_eps: Layer norm epsilon.
        initializer_range: Standard deviation of the normal weight init.
        position_embedding_type: ``learned`` (GPT-2), ``sinusoidal`` or ``rotary``.
        rotary_base: Base of the rotary angles (10,000 as in RoFormer and LLaMA).
        norm_position: ``pre`` (GPT-2) or ``post`` norm blocks.
        bias: Biases in linear layers and layer norms (nanoGPT's ``bias=False`` drops them).
        tie_word_embeddings: Share the LM head's weight with the token embeddings (GPT-2 does).
        use_cache: Return key/value caches from the forward, for fast ``generate``.
    """

    model_type = "hfdl-gpt"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size: int = 50257,
        max_position_embeddings: int = 1024,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu_pytorch_tanh",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        position_embedding_type: str = "learned",
        rotary_base: float = 10000.0,
        norm_position: str = "pre",
        bias: bool = True,
        tie_word_embeddings: bool = True,
        use_cache: bool = True,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        **kwargs,
    ) -> None:
        intermediate_size = (
            4 * hidden_size if intermediate_size is None and isinstance(hidden_size, int) else intermediate_size
        )
        check_transformer_config(
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings,
            hidden_act,
            hidden_dropout,
            attention_dropout,
            layer_norm_eps,
            initializer_range,
            position_embedding_type,
            rotary_base,
            norm_position,
            bias,
        )
        check_head_kwargs(kwargs)
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = float(hidden_dropout)
        self.attention_dropout = float(attention_dropout)
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.position_embedding_type = position_embedding_type
        self.rotary_base = float(rotary_base)
        self.norm_position = norm_position
        self.bias = bias
        self.use_cache = use_cache
        super().__init__(
            tie_word_embeddings=tie_word_embeddings,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            **kwargs,
        )
