"""The GPT-style decoder of Deep Learning Mastery, ch. 9: causal self-attention blocks and a language-model head
that generates with transformers' ``generate`` (greedy, sampling, beam search) over a key/value cache.

This file imports only torch, transformers, the standard library and its siblings (the configuration and the
shared ``hfdl_attention.py``/``hfdl_utils.py``), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from .configuration_gpt import GPTConfig
from .hfdl_attention import (
    TransformerBlock,
    check_token_ids,
    init_transformer_weights,
    make_attention_mask,
    rotary_cos_sin,
    sinusoidal_embeddings,
)
from .hfdl_utils import init

#: transformers 5.24 renamed the key/value cache from ``past_key_values`` to ``cache`` (the forward argument that
#: ``generate`` passes, and the output field); 4.57-5.23 use the old name. Remote code must run on all of them, so the
#: forwards take both names and the outputs are built with the field this transformers declares.
CACHE_FIELD = (
    "cache"
    if any(field.name == "cache" for field in dataclasses.fields(BaseModelOutputWithPast))
    else "past_key_values"
)


class GPTPreTrainedModel(PreTrainedModel):
    config_class = GPTConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules = ["TransformerBlock"]
    _supports_sdpa = True
    _can_compile_fullgraph = True

    def _init_weights(self, module: nn.Module) -> None:
        init_transformer_weights(module, self.config, init)


class GPTModel(GPTPreTrainedModel):
    """The decoder without a head: ``last_hidden_state`` (batch, sequence, hidden) after the final layer norm.

    Positions come from ``position_ids`` if given, else from ``attention_mask`` (so a left-padded batch gets
    positions that start at 0 on its first real token, as ``generate`` needs), else they count on from the cache.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(TransformerBlock(config, index) for index in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        config = self.config
        past_key_values = past_key_values if past_key_values is not None else cache
        output_attentions = output_attentions if output_attentions is not None else config.output_attentions
        output_hidden_states = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        use_cache = use_cache if use_cache is not None else config.use_cache
        return_dict = return_dict if return_dict is not None else config.return_dict
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache()
        past_length = past_key_values.get_seq_length() if past_key_values is not None else 0
        learned = config.position_embedding_type == "learned"
        check_token_ids(input_ids, config.vocab_size, config.max_position_embeddings if learned else None, past_length)
        batch_size, length = input_ids.shape
        mask, is_causal = make_attention_mask(attention_mask, length, past_length, True, input_ids.device)
        if position_ids is None:
            if attention_mask is not None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
            else:
                position_ids = torch.arange(past_length, past_length + length, device=input_ids.device)[None]

        hidden_states = self.embed_tokens(input_ids)
        rotary = None
        if learned:
            hidden_states = hidden_states + self.embed_positions(position_ids)
        elif config.position_embedding_type == "sinusoidal":
            hidden_states = hidden_states + sinusoidal_embeddings(position_ids, config.hidden_size)
        else:
            head_dim = config.hidden_size // config.num_attention_heads
            rotary = rotary_cos_sin(position_ids, head_dim, config.rotary_base)
        if config.hidden_dropout and self.training:
            hidden_states = F.dropout(hidden_states, config.hidden_dropout, True)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        cache = past_key_values if use_cache else None
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, mask, is_causal, rotary, cache, output_attentions)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)
        hidden_states = self.final_norm(hidden_states)
        if output_hidden_states:  # the last entry is the normed output, as in GPT-2
            all_hidden_states = all_hidden_states[:-1] + (hidden_states,)
        if not return_dict:
            return tuple(v for v in (hidden_states, cache, all_hidden_states, all_attentions) if v is not None)
        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            **{CACHE_FIELD: cache},
        )


class GPTForCausalLM(GPTPreTrainedModel, GenerationMixin):
    """The decoder with a language-model head: next-token ``logits`` (batch, sequence, vocab).

    ``labels`` are the input ids themselves (shifted inside, as in transformers): position ``t`` is trained to
    predict token ``t + 1``; label ``-100`` is ignored. ``generate`` comes from transformers' ``GenerationMixin``,
    with this model's key/value cache; ``logits_to_keep`` lets it compute the head on the last position only.
    """

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.model = GPTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        cache: Cache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        past_key_values = past_key_values if past_key_values is not None else cache
        if labels is not None:
            use_cache = False  # training needs no cache
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(
                    f"`labels` must have the shape of `input_ids` {tuple(input_ids.shape)} (the ids to predict, "
                    f"shifted inside the model), got {tuple(labels.shape)}."
                )
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        cache = getattr(outputs, CACHE_FIELD)
        if not return_dict:
            return tuple(v for v in (loss, logits, cache, outputs.hidden_states, outputs.attentions) if v is not None)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_FIELD: cache},
        )
