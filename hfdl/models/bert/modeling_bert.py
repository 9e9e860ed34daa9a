"""The BERT-style encoder of Deep Learning Mastery, ch. 9: bidirectional self-attention over a whole sentence, and
heads for masked-word prediction (``fill-mask``), sentence classification and token classification.

This file imports only torch, transformers, the standard library and its siblings (the configuration and the
shared ``hfdl_attention.py``/``hfdl_utils.py``), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from .configuration_bert import BertConfig
from .hfdl_attention import (
    TransformerBlock,
    check_token_ids,
    init_transformer_weights,
    make_attention_mask,
    rotary_cos_sin,
    sinusoidal_embeddings,
)
from .hfdl_utils import classification_loss, init


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then layer norm and dropout (BERT's input representation)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        if config.position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        if config.type_vocab_size:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, position_ids: torch.Tensor
    ) -> torch.Tensor:
        config = self.config
        embeddings = self.word_embeddings(input_ids)
        if config.position_embedding_type == "learned":
            embeddings = embeddings + self.position_embeddings(position_ids)
        elif config.position_embedding_type == "sinusoidal":
            embeddings = embeddings + sinusoidal_embeddings(position_ids, config.hidden_size)
        if config.type_vocab_size:
            if token_type_ids is None:
                embeddings = embeddings + self.token_type_embeddings.weight[0]
            else:
                embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        embeddings = self.norm(embeddings)
        if config.hidden_dropout and self.training:
            embeddings = F.dropout(embeddings, config.hidden_dropout, True)
        return embeddings


class BertPooler(nn.Module):
    """BERT's sentence vector: ``tanh(Linear(hidden of the first token, [CLS]))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    main_input_name = "input_ids"
    _no_split_modules = ["TransformerBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        init_transformer_weights(module, self.config, init)
        if isinstance(module, BertEmbeddings) and self.config.pad_token_id is not None:
            # BERT keeps the padding token's embedding at zero (nn.Embedding's padding_idx only stops its gradient).
            if not getattr(module.word_embeddings.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.word_embeddings.weight[self.config.pad_token_id].zero_()
        elif isinstance(module, BertMLMHead):
            init.zeros_(module.bias)


class BertModel(BertPreTrainedModel):
    """The encoder without a head: ``last_hidden_state`` (batch, sequence, hidden) and, with the pooler,
    ``pooler_output`` (batch, hidden), the [CLS] vector the sequence classifier reads.

    ``attention_mask`` (1 for tokens, 0 for padding) keeps padding out of every token's attention;
    ``token_type_ids`` mark the first (0) and second (1) sentence of a pair.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(TransformerBlock(config, index) for index in range(config.num_hidden_layers))
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        config = self.config
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        return_dict = return_dict if return_dict is not None else config.return_dict
        learned = config.position_embedding_type == "learned"
        check_token_ids(input_ids, config.vocab_size, config.max_position_embeddings if learned else None)
        if token_type_ids is not None and config.type_vocab_size:
            check_token_ids(token_type_ids, config.type_vocab_size, name="token_type_ids")
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"`token_type_ids` must have the shape of `input_ids` {tuple(input_ids.shape)}, got "
                    f"{tuple(token_type_ids.shape)}."
                )
        length = input_ids.shape[1]
        mask, _ = make_attention_mask(attention_mask, length, 0, False, input_ids.device)
        if position_ids is None:
            position_ids = torch.arange(length, device=input_ids.device)[None]
        rotary = None
        if config.position_embedding_type == "rotary":
            rotary = rotary_cos_sin(position_ids, config.hidden_size // config.num_attention_heads, config.rotary_base)

        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids)
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, mask, False, rotary, None, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        pooled = self.pooler(hidden_states) if self.pooler is not None else None
        if not return_dict:
            return tuple(v for v in (hidden_states, pooled, all_hidden_states, all_attentions) if v is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )


class BertMLMHead(nn.Module):
    """Masked-word prediction: ``Linear -> activation -> LayerNorm``, then a decoder onto the vocabulary whose
    weight is the word-embedding matrix (tied) plus a bias of its own."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.activation(self.dense(hidden_states)))) + self.bias


def _token_loss(logits: torch.Tensor, labels: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every token whose label is not -100 (padding, and in MLM the unmasked tokens)."""
    if labels.shape != input_ids.shape:
        raise ValueError(
            f"`labels` must hold one id per token, shape {tuple(input_ids.shape)} (-100 where no loss is wanted), "
            f"got {tuple(labels.shape)}."
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def _classifier_dropout(config: BertConfig) -> float:
    """The dropout rate before a classification head: ``classifier_dropout``, else ``hidden_dropout``."""
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout


class BertForMaskedLM(BertPreTrainedModel):
    """The encoder with the masked-language-model head: ``logits`` (batch, sequence, vocab) for every position.

    Trained as BERT was: ``labels`` hold the original id at the masked positions and -100 elsewhere, as
    transformers' ``DataCollatorForLanguageModeling`` makes them. ``pipeline("fill-mask")`` reads the logits at
    the ``[MASK]`` token.
    """

    _tied_weights_keys = {"mlm_head.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm_head = BertMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.mlm_head.decoder = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.mlm_head(outputs.last_hidden_state)
        loss = None if labels is None else _token_loss(logits, labels, input_ids)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states, outputs.attentions) if v is not None)
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class BertForSequenceClassification(BertPreTrainedModel):
    """The encoder with a classifier on the pooled [CLS] vector: ``logits`` (batch, num_labels).

    The loss follows ``config.problem_type`` as in transformers (cross-entropy for class indices, BCE for
    multi-label or one-logit heads).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.classifier_dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        pooled = F.dropout(outputs.pooler_output, self.classifier_dropout, self.training)
        logits = self.classifier(pooled)
        loss = None if labels is None else classification_loss(self.config, logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states, outputs.attentions) if v is not None)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class BertForTokenClassification(BertPreTrainedModel):
    """The encoder with a classifier on every token: ``logits`` (batch, sequence, num_labels), for tagging
    (named entities, parts of speech); label -100 marks tokens without a target (padding, word pieces)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier_dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        sequence = F.dropout(outputs.last_hidden_state, self.classifier_dropout, self.training)
        logits = self.classifier(sequence)
        loss = None if labels is None else _token_loss(logits, labels, input_ids)
        if not return_dict:
            return tuple(v for v in (loss, logits, outputs.hidden_states, outputs.attentions) if v is not None)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
