"""Configuration of the BERT-style encoder (Deep Learning Mastery, ch. 9)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_attention import check_transformer_config
from .hfdl_utils import check_head_kwargs, check_non_negative_int, check_probability


class BertConfig(PretrainedConfig):
    """A bidirectional transformer encoder (Devlin et al., 2019): token, position and segment embeddings, a stack
    of self-attention blocks that see the whole sequence, and heads for masked-word prediction, sequence
    classification and token classification.

    The defaults are BERT-base (110M parameters); ``hfdl.create_model("bert-mini")`` and the other presets give
    the smaller published sizes (Turc et al., 2019) and ``minilm-l6-h384`` the MiniLM sentence encoder.

    Args:
        vocab_size: Number of token ids (30,522 for BERT's uncased WordPiece vocabulary).
        hidden_size: Width of every token's vector.
        num_hidden_layers: Number of transformer blocks.
        num_attention_heads: Heads per attention layer; must divide ``hidden_size``.
        intermediate_size: Width of the feed-forward sublayer; default ``4 * hidden_size``.
        hidden_act: Feed-forward activation, one of ``gelu``, ``gelu_new``, ``gelu_pytorch_tanh``, ``relu``,
            ``silu``.
        hidden_dropout: Dropout on embeddings and on each sublayer's output.
        attention_dropout: Dropout on the attention weights.
        max_position_embeddings: Longest sequence; with learned positions, the size of the position table.
        type_vocab_size: Number of segment ids (2 for sentence pairs; 0 drops the segment embedding).
        layer_norm_eps: Layer norm epsilon (1e-12 in BERT).
        initializer_range: Standard deviation of the normal weight init.
        position_embedding_type: ``learned`` (BERT), ``sinusoidal`` or ``rotary``.
        rotary_base: Base of the rotary angles.
        norm_position: ``post`` (BERT) or ``pre`` norm blocks.
        bias: Biases in linear layers and layer norms.
        classifier_dropout: Dropout before the classification heads; default ``hidden_dropout``.
        pad_token_id: Id of the padding token.
        tie_word_embeddings: Share the masked-LM decoder's weight with the word embeddings (BERT does).
    """

    model_type = "hfdl-bert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        position_embedding_type: str = "learned",
        rotary_base: float = 10000.0,
        norm_position: str = "post",
        bias: bool = True,
        classifier_dropout: float | None = None,
        pad_token_id: int | None = 0,
        tie_word_embeddings: bool = True,
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
        check_non_negative_int("type_vocab_size", type_vocab_size)
        if classifier_dropout is not None:
            check_probability("classifier_dropout", classifier_dropout)
        check_head_kwargs(kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = float(hidden_dropout)
        self.attention_dropout = float(attention_dropout)
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = float(layer_norm_eps)
        self.initializer_range = float(initializer_range)
        self.position_embedding_type = position_embedding_type
        self.rotary_base = float(rotary_base)
        self.norm_position = norm_position
        self.bias = bias
        self.classifier_dropout = None if classifier_dropout is None else float(classifier_dropout)
        super().__init__(pad_token_id=pad_token_id, tie_word_embeddings=tie_word_embeddings, **kwargs)
