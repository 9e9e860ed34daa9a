"""Import transformers checkpoints of BERT, GPT-2 and ViT, of any size, into hfdl's encoder, decoder and ViT.

The course builds its BERT-style encoder and GPT-style decoder from one shared transformer block; this module shows
that the published models *are* those blocks: it renames (and for attention, fuses or transposes) every tensor of a
transformers ``BertModel``/``BertFor...``, ``GPT2Model``/``GPT2LMHeadModel`` or ``ViTModel``/
``ViTForImageClassification`` checkpoint onto the hfdl class of the same head, reading the size off the checkpoint's
``config.json`` (no preset needed), and saves a Hub folder (config, safetensors, remote code, the source's tokenizer
or image processor, a model card) whose outputs equal the source's.

What changes on the way:

- BERT's three query/key/value ``nn.Linear`` layers become hfdl's one fused ``attention.qkv`` (weight rows
  ``[q; k; v]``): one matrix product instead of three.
- GPT-2 stores its projections as ``Conv1D`` weights of shape (in, out), the transpose of ``nn.Linear``'s; its
  ``c_attn`` is already fused along the output axis in q, k, v order, so a transpose is all it needs.
- ViT's query/key/value layers are fused like BERT's; its ``layer_norm_eps`` (1e-12) carries over. ``ViTModel``'s
  pooler (a dense layer and tanh over the class token, which ``ViTForImageClassification`` does not use) has no hfdl
  counterpart: it is left out with a warning, and hfdl's ``pooler_output`` is the normed class token itself. The
  mask token of masked-image-modelling checkpoints is left out too. A ``preprocessor_config.json`` becomes hfdl's
  ``ViTImageProcessor`` with the same size, mean and std.
- GPT-2's ``gelu_new`` becomes ``gelu_pytorch_tanh``: the same tanh approximation (equal to ~1e-7) run as one
  fused kernel instead of five elementwise ones.

Every source tensor must land somewhere or be one of the buffers listed in :data:`IGNORED_BUFFERS` (causal masks,
position-id ranges that the models rebuild); every hfdl tensor must be filled; a tensor whose shape differs is an
error that names it. Two exceptions, both logged: a head the source does not have (``task=`` asks for a
classifier on a base checkpoint, say) starts from hfdl's initialisation, as transformers does when it loads a base
checkpoint into a head; and a head of the source that the chosen ``task`` has no place for (the NSP head of
``BertForPreTraining``, a classifier when converting to ``feature-extraction``) is left out.

Weights are read as safetensors, or as PyTorch pickles with ``torch.load(weights_only=True)`` (see
:func:`hfdl.convert.load_checkpoint`): a downloaded checkpoint can never run code here.

    hfdl convert transformers sentence-transformers/all-MiniLM-L6-v2 minilm-hfdl/
    hfdl convert transformers ./my-bert-checkpoint bert-hfdl/ --task text-classification
    hfdl convert transformers google/vit-base-patch16-224 vit-b16-hfdl/
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from .convert import load_checkpoint
from .registry import REGISTRY

logger = logging.getLogger(__name__)

#: transformers architecture -> (its model_type, the hfdl task whose head has the same weights).
SUPPORTED_ARCHITECTURES: dict[str, tuple[str, str]] = {
    "BertModel": ("bert", "feature-extraction"),
    "BertForMaskedLM": ("bert", "fill-mask"),
    # BERT as Google released it: the masked-LM head plus the next-sentence head, which hfdl has no place for.
    "BertForPreTraining": ("bert", "fill-mask"),
    "BertForSequenceClassification": ("bert", "text-classification"),
    "BertForTokenClassification": ("bert", "token-classification"),
    "GPT2Model": ("gpt2", "feature-extraction"),
    "GPT2LMHeadModel": ("gpt2", "text-generation"),
    "ViTModel": ("vit", "image-feature-extraction"),
    "ViTForImageClassification": ("vit", "image-classification"),
}
#: transformers model_type -> the hfdl architecture (registry name) it converts into.
HFDL_ARCHITECTURES = {"bert": "bert", "gpt2": "gpt", "vit": "vit"}
#: Buffers of transformers checkpoints that hold no learned value (ranges, causal masks) and are not carried over.
IGNORED_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids", "attn.bias", "attn.masked_bias")
#: Source tensors of heads hfdl does not have: dropped with a log line, never an error.
DROPPED_HEADS = ("cls.seq_relationship.",)
#: transformers activation names -> hfdl's (``TRANSFORMER_ACTIVATIONS`` in hfdl/layers/hfdl_attention.py).
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_pytorch_tanh",
    "gelu_pytorch_tanh": "gelu_pytorch_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}
#: Weight files of a checkpoint folder, in the order they are looked for.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Files of a tokenizer: a folder with any of them has a tokenizer to carry over.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")
#: The image processor of a vision checkpoint.
IMAGE_PROCESSOR_FILE = "preprocessor_config.json"


def _supported_list() -> str:
    return ", ".join(SUPPORTED_ARCHITECTURES)


# --------------------------------------------------------------------------------------------- configs
def _activation(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(
            f"The checkpoint's `{field}` is {value!r}; hfdl's transformer supports {', '.join(ACTIVATIONS)}."
        )
    return ACTIVATIONS[value]


def _label_fields(config: PretrainedConfig) -> dict[str, Any]:
    """The classification fields every head config carries (names of classes, loss)."""
    fields: dict[str, Any] = {
        "id2label": {int(index): label for index, label in config.id2label.items()},
        "label2id": {label: int(index) for label, index in config.label2id.items()},
    }
    if getattr(config, "problem_type", None) is not None:
        fields["problem_type"] = config.problem_type
    return fields


def _bert_config(config: PretrainedConfig) -> dict[str, Any]:
    """hfdl ``BertConfig`` arguments for a transformers ``BertConfig``."""
    position_type = getattr(config, "position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(
            f"The checkpoint's position_embedding_type is {position_type!r}; hfdl converts BERT with 'absolute' "
            "(learned) positions only (the relative-position variants have no counterpart in hfdl's attention)."
        )
    for flag in ("is_decoder", "add_cross_attention"):
        if getattr(config, flag, False):
            raise ValueError(
                f"The checkpoint's `{flag}` is True (a BERT decoder); hfdl's BertModel is a bidirectional encoder."
            )
    return {
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": _activation(config.hidden_act, "hidden_act"),
        "hidden_dropout": config.hidden_dropout_prob,
        "attention_dropout": config.attention_probs_dropout_prob,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps,
        "initializer_range": config.initializer_range,
        "classifier_dropout": getattr(config, "classifier_dropout", None),
        "pad_token_id": config.pad_token_id,
        "tie_word_embeddings": getattr(config, "tie_word_embeddings", True),
        "position_embedding_type": "learned",
        "norm_position": "post",
        "bias": True,
        **_label_fields(config),
    }


def _gpt2_config(config: PretrainedConfig) -> dict[str, Any]:
    """hfdl ``GPTConfig`` arguments for a transformers ``GPT2Config``."""
    # Variants of GPT-2's attention that hfdl's shared attention does not implement: refused rather than approximated.
    for flag, allowed in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("reorder_and_upcast_attn", False),
        ("add_cross_attention", False),
    ):
        value = getattr(config, flag, allowed)
        if value != allowed:
            raise ValueError(
                f"The checkpoint's `{flag}` is {value!r}; hfdl's attention matches GPT-2 only with {flag}={allowed}."
            )
    if config.embd_pdrop != config.resid_pdrop:
        logger.warning(
            "GPT-2's embd_pdrop (%s) differs from resid_pdrop (%s); hfdl uses one rate (hidden_dropout=%s) for both. "
            "Outputs in eval mode are unaffected.",
            config.embd_pdrop,
            config.resid_pdrop,
            config.resid_pdrop,
        )
    return {
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.n_positions,
        "hidden_size": config.n_embd,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "intermediate_size": config.n_inner if config.n_inner is not None else 4 * config.n_embd,
        "hidden_act": _activation(config.activation_function, "activation_function"),
        "hidden_dropout": config.resid_pdrop,
        "attention_dropout": config.attn_pdrop,
        "layer_norm_eps": config.layer_norm_epsilon,
        "initializer_range": config.initializer_range,
        "position_embedding_type": "learned",
        "norm_position": "pre",
        "bias": True,
        "tie_word_embeddings": getattr(config, "tie_word_embeddings", True),
        "use_cache": getattr(config, "use_cache", True),
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        **_label_fields(config),
    }


def _square(config: PretrainedConfig, field: str) -> int:
    """One side of transformers' ``image_size``/``patch_size``, which may be an int or a (height, width) pair."""
    value = getattr(config, field)
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(
                f"The checkpoint's `{field}` is {list(value)}; hfdl's ViT takes square images and patches (one side)."
            )
        value = value[0]
    return int(value)


def _vit_config(config: PretrainedConfig) -> dict[str, Any]:
    """hfdl ``ViTConfig`` arguments for a transformers ``ViTConfig``.

    ``encoder_stride`` and the mask token serve masked image modelling only and are not carried over;
    ``pooler_output_size``/``pooler_act`` describe the pooler, which hfdl does not have (see the module docstring).
    """
    if not getattr(config, "qkv_bias", True):
        raise ValueError(
            "The checkpoint's `qkv_bias` is False; hfdl's ViT has one `bias` switch for every linear layer and layer "
            "norm, and transformers' ViT keeps the other biases, so query/key/value layers without bias cannot be "
            "represented."
        )
    return {
        "image_size": _square(config, "image_size"),
        "patch_size": _square(config, "patch_size"),
        "num_channels": config.num_channels,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": _activation(config.hidden_act, "hidden_act"),
        "hidden_dropout": config.hidden_dropout_prob,
        "attention_dropout": config.attention_probs_dropout_prob,
        "layer_norm_eps": config.layer_norm_eps,
        "initializer_range": config.initializer_range,
        "norm_position": "pre",
        "bias": True,
        "class_token": True,
        "pooling": "cls",
        "norm_after_pooling": False,
        # transformers' classifier reads the class token without dropout.
        "classifier_dropout": 0.0,
        **_label_fields(config),
    }


CONFIG_CONVERTERS: dict[str, Callable[[PretrainedConfig], dict[str, Any]]] = {
    "bert": _bert_config,
    "gpt2": _gpt2_config,
    "vit": _vit_config,
}


# --------------------------------------------------------------------------------------------- weight tables
def _single(tensors: list[torch.Tensor]) -> torch.Tensor:
    return tensors[0]


def _concatenate_rows(tensors: list[torch.Tensor]) -> torch.Tensor:
    # [q; k; v] along the output axis: hfdl's qkv output is viewed as (..., 3, heads, head_dim).
    return torch.cat(tensors, dim=0)


def _transpose(tensors: list[torch.Tensor]) -> torch.Tensor:
    # GPT-2's Conv1D computes x @ W with W (in, out); nn.Linear computes x @ W.T with W (out, in).
    return tensors[0].t().contiguous()


@dataclass(frozen=True)
class Rule:
    """One hfdl tensor and how it is made from source tensors.

    ``aliases`` are source keys that hold the same tensor under another name (a tied decoder saved beside the
    embeddings): they are checked equal to the result and then counted as used.
    """

    target: str
    sources: tuple[str, ...]
    combine: Callable[[list[torch.Tensor]], torch.Tensor] = _single
    aliases: tuple[str, ...] = ()


def _linear(target: str, source: str, combine: Callable = _single) -> Iterator[Rule]:
    for name in ("weight", "bias"):
        yield Rule(f"{target}.{name}", (f"{source}.{name}",), combine if name == "weight" else _single)


def _bert_rules(config: Any, source_prefix: str, target_prefix: str) -> Iterator[Rule]:
    s, t = source_prefix, target_prefix
    tied = config.tie_word_embeddings
    decoder = ("cls.predictions.decoder.weight",)
    yield Rule(
        f"{t}embeddings.word_embeddings.weight",
        (f"{s}embeddings.word_embeddings.weight",),
        aliases=decoder if tied else (),
    )
    yield Rule(f"{t}embeddings.position_embeddings.weight", (f"{s}embeddings.position_embeddings.weight",))
    if config.type_vocab_size:
        yield Rule(f"{t}embeddings.token_type_embeddings.weight", (f"{s}embeddings.token_type_embeddings.weight",))
    yield from _linear(f"{t}embeddings.norm", f"{s}embeddings.LayerNorm")
    for index in range(config.num_hidden_layers):
        source, target = f"{s}encoder.layer.{index}", f"{t}layers.{index}"
        for name in ("weight", "bias"):
            parts = tuple(f"{source}.attention.self.{part}.{name}" for part in ("query", "key", "value"))
            yield Rule(f"{target}.attention.qkv.{name}", parts, _concatenate_rows)
        yield from _linear(f"{target}.attention.out", f"{source}.attention.output.dense")
        yield from _linear(f"{target}.attention_norm", f"{source}.attention.output.LayerNorm")
        yield from _linear(f"{target}.mlp.fc_in", f"{source}.intermediate.dense")
        yield from _linear(f"{target}.mlp.fc_out", f"{source}.output.dense")
        yield from _linear(f"{target}.mlp_norm", f"{source}.output.LayerNorm")
    yield from _linear(f"{t}pooler.dense", f"{s}pooler.dense")
    # Heads: the masked-LM transform, its bias (transformers ties decoder.bias to it), the classifiers.
    yield from _linear("mlm_head.dense", "cls.predictions.transform.dense")
    yield from _linear("mlm_head.norm", "cls.predictions.transform.LayerNorm")
    yield Rule("mlm_head.bias", ("cls.predictions.bias",), aliases=("cls.predictions.decoder.bias",))
    if not tied:
        yield Rule("mlm_head.decoder.weight", decoder)
    yield from _linear("classifier", "classifier")


def _gpt2_rules(config: Any, source_prefix: str, target_prefix: str) -> Iterator[Rule]:
    s, t = source_prefix, target_prefix
    tied = config.tie_word_embeddings
    yield Rule(f"{t}embed_tokens.weight", (f"{s}wte.weight",), aliases=("lm_head.weight",) if tied else ())
    yield Rule(f"{t}embed_positions.weight", (f"{s}wpe.weight",))
    for index in range(config.num_hidden_layers):
        source, target = f"{s}h.{index}", f"{t}layers.{index}"
        yield from _linear(f"{target}.attention_norm", f"{source}.ln_1")
        yield from _linear(f"{target}.attention.qkv", f"{source}.attn.c_attn", _transpose)
        yield from _linear(f"{target}.attention.out", f"{source}.attn.c_proj", _transpose)
        yield from _linear(f"{target}.mlp_norm", f"{source}.ln_2")
        yield from _linear(f"{target}.mlp.fc_in", f"{source}.mlp.c_fc", _transpose)
        yield from _linear(f"{target}.mlp.fc_out", f"{source}.mlp.c_proj", _transpose)
    yield from _linear(f"{t}final_norm", f"{s}ln_f")
    if not tied:
        yield Rule("lm_head.weight", ("lm_head.weight",))


def _vit_rules(config: Any, source_prefix: str, target_prefix: str) -> Iterator[Rule]:
    # Source names as transformers 5 has them in memory; _vit_key rewrites the saved (v4) names to these.
    s, t = source_prefix, target_prefix
    yield Rule(f"{t}embeddings.cls_token", (f"{s}embeddings.cls_token",))
    yield Rule(f"{t}embeddings.position_embeddings", (f"{s}embeddings.position_embeddings",))
    yield from _linear(f"{t}embeddings.patch_embedding", f"{s}embeddings.patch_embeddings.projection")
    # Masked image modelling's mask token: no hfdl tensor, so it is left out with a warning.
    yield Rule(f"{t}embeddings.mask_token", (f"{s}embeddings.mask_token",))
    for index in range(config.num_hidden_layers):
        source, target = f"{s}layers.{index}", f"{t}layers.{index}"
        yield from _linear(f"{target}.attention_norm", f"{source}.layernorm_before")
        for name in ("weight", "bias"):
            parts = tuple(f"{source}.attention.{part}.{name}" for part in ("q_proj", "k_proj", "v_proj"))
            yield Rule(f"{target}.attention.qkv.{name}", parts, _concatenate_rows)
        yield from _linear(f"{target}.attention.out", f"{source}.attention.o_proj")
        yield from _linear(f"{target}.mlp_norm", f"{source}.layernorm_after")
        yield from _linear(f"{target}.mlp.fc_in", f"{source}.mlp.fc1")
        yield from _linear(f"{target}.mlp.fc_out", f"{source}.mlp.fc2")
    yield from _linear(f"{t}norm", f"{s}layernorm")
    yield from _linear(f"{t}pooler.dense", f"{s}pooler.dense")  # no hfdl tensor: left out with a warning
    yield from _linear("classifier", "classifier")


RULES: dict[str, Callable[[Any, str, str], Iterator[Rule]]] = {
    "bert": _bert_rules,
    "gpt2": _gpt2_rules,
    "vit": _vit_rules,
}
#: The base model's key prefix in head checkpoints of transformers (``bert.embeddings...``, ``transformer.h.0...``).
SOURCE_BASE_PREFIXES = {"bert": "bert.", "gpt2": "transformer.", "vit": "vit."}
#: Why a source tensor with this part in its name has no place in hfdl, for the warning that lists it.
DROPPED_REASONS = {
    "pooler.dense.": (
        "transformers' ViT pooler (dense + tanh over the class token) has no hfdl counterpart; hfdl's "
        "pooler_output is the normed class token itself"
    ),
    "embeddings.mask_token": "the mask token serves masked image modelling only",
}


_VIT_QKV = {"query": "q_proj", "key": "k_proj", "value": "v_proj"}


def _vit_key(key: str) -> str:
    """transformers 5 renames ViT's modules when it loads a checkpoint (``encoder.layer.0.attention.attention.query``
    -> ``layers.0.attention.q_proj``) and back when it saves one: files on the Hub and from ``save_pretrained``
    carry the old names, a model in memory the new ones. Old names become new, so one table serves both."""
    key = re.sub(r"(^|\.)encoder\.layer\.(\d+)\.", r"\1layers.\2.", key)
    key = re.sub(
        r"(layers\.\d+\.)attention\.attention\.(query|key|value)\.",
        lambda match: f"{match[1]}attention.{_VIT_QKV[match[2]]}.",
        key,
    )
    key = re.sub(r"(layers\.\d+\.)attention\.output\.dense\.", r"\1attention.o_proj.", key)
    key = re.sub(r"(layers\.\d+\.)intermediate\.dense\.", r"\1mlp.fc1.", key)
    return re.sub(r"(layers\.\d+\.)output\.dense\.", r"\1mlp.fc2.", key)  # the MLP's; attention's is renamed


def _normalise_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the LayerNorm ``gamma``/``beta`` of checkpoints from the TensorFlow era to ``weight``/``bias``."""
    renamed = {}
    for key, value in state_dict.items():
        if key.endswith("LayerNorm.gamma"):
            key = key.removesuffix("gamma") + "weight"
        elif key.endswith("LayerNorm.beta"):
            key = key.removesuffix("beta") + "bias"
        renamed[key] = value
    return renamed


def _shown(items: list[str]) -> str:
    return ", ".join(items[:6]) + (f", ... ({len(items)} in all)" if len(items) > 6 else "")


# --------------------------------------------------------------------------------------------- conversion
def _source_architecture(
    config: PretrainedConfig, state_dict: Mapping[str, torch.Tensor], task: str | None, where: str
) -> str:
    """The transformers architecture a checkpoint holds: from ``config.architectures``, else from its keys."""
    model_type = getattr(config, "model_type", None)
    architectures = list(getattr(config, "architectures", None) or [])
    if model_type not in HFDL_ARCHITECTURES:
        raise ValueError(
            f"{where} is a {model_type!r} model ({', '.join(architectures) or 'no architectures'}); hfdl converts "
            f"transformers BERT, GPT-2 and ViT checkpoints: {_supported_list()}."
        )
    for name in architectures:
        if name in SUPPORTED_ARCHITECTURES:
            return name
    if architectures:
        raise ValueError(
            f"{where} holds {', '.join(architectures)}, which hfdl does not convert; supported: {_supported_list()}."
        )
    # No `architectures` (a config written by hand or by an old script): the head shows in the keys.
    if model_type == "vit":
        return "ViTForImageClassification" if any(key.startswith("classifier.") for key in state_dict) else "ViTModel"
    if model_type == "gpt2":
        head = any(key.startswith(("transformer.", "lm_head.")) for key in state_dict)
        return "GPT2LMHeadModel" if head else "GPT2Model"
    if any(key.startswith("cls.predictions.") for key in state_dict):
        return "BertForMaskedLM"
    if any(key.startswith("classifier.") for key in state_dict):
        if task is None:
            raise ValueError(
                f"{where} has a classifier but its config names no architecture, so the head is ambiguous; pass "
                "task='text-classification' or 'token-classification' (--task)."
            )
        return "BertForTokenClassification" if task == "token-classification" else "BertForSequenceClassification"
    return "BertModel"


def _convert(
    config: PretrainedConfig,
    state_dict: Mapping[str, torch.Tensor],
    architecture: str,
    task: str | None,
    where: str,
) -> PreTrainedModel:
    """Build the hfdl model of ``task`` (default: the source's head) holding the source's weights."""
    model_type, source_task = SUPPORTED_ARCHITECTURES[architecture]
    spec = REGISTRY[HFDL_ARCHITECTURES[model_type]]
    task_spec = spec.task(task if task is not None else source_task)  # "bert has no 'x' head; available: ..."
    hfdl_config = spec.config_class(**CONFIG_CONVERTERS[model_type](config))
    model = task_spec.model_class(hfdl_config)
    target = model.state_dict()
    base_is_model = model.base_model is model
    target_prefix = "" if base_is_model else f"{model.base_model_prefix}."

    state_dict = _normalise_keys(state_dict)
    if model_type == "vit":
        state_dict = {_vit_key(key): value for key, value in state_dict.items()}
    source_base = SOURCE_BASE_PREFIXES[model_type]
    source_prefix = source_base if any(key.startswith(source_base) for key in state_dict) else ""

    converted: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing_sources: list[str] = []  # source keys the checkpoint lacks, in the order of the model
    sources_of: dict[str, tuple[str, ...]] = {}
    mismatched: list[str] = []
    unequal_aliases: list[str] = []
    dropped: list[str] = []  # source tensors of a head the target has no place for
    for rule in RULES[model_type](hfdl_config, source_prefix, target_prefix):
        sources_of[rule.target] = rule.sources
        present = [key for key in rule.sources if key in state_dict]
        if not present and rule.aliases and all(alias in state_dict for alias in rule.aliases):
            rule = Rule(rule.target, rule.aliases[:1], rule.combine, rule.aliases[1:])  # only the tied copy was saved
            present = list(rule.sources)
        if rule.target not in target:
            dropped += present + [alias for alias in rule.aliases if alias in state_dict]
            continue
        if not present:
            continue  # reported below as a missing hfdl tensor (or a new head)
        if len(present) < len(rule.sources):
            missing_sources += [key for key in rule.sources if key not in state_dict]
            continue
        tensor = rule.combine([state_dict[key] for key in rule.sources])
        expected = target[rule.target].shape
        if tensor.shape != expected:
            mismatched.append(f"{'+'.join(rule.sources)} {tuple(tensor.shape)} -> {rule.target} {tuple(expected)}")
            continue
        for alias in rule.aliases:
            if alias in state_dict:
                if state_dict[alias].shape != tensor.shape or not torch.equal(state_dict[alias].to(tensor), tensor):
                    unequal_aliases.append(f"{alias} != {rule.sources[0]}")
                used.add(alias)
        converted[rule.target] = tensor.to(target[rule.target].dtype)
        used.update(rule.sources)

    tied_targets = set()
    if getattr(hfdl_config, "tie_word_embeddings", False):  # text models; a ViT has no word embeddings
        tied_targets = set((getattr(model, "_tied_weights_keys", None) or {}).keys())
    not_filled = [key for key in target if key not in converted and key not in tied_targets]
    # A head the source does not have starts from hfdl's init, as in transformers: a classifier asked for with task=
    # on a checkpoint of another head, or a pooler that a base checkpoint was saved without. The encoder itself, and
    # the source's own head, must be whole.
    pooler = f"{target_prefix}pooler."
    source_has_pooler = any(key.startswith(f"{source_prefix}pooler.") for key in state_dict)
    new_head, missing = [], []
    for key in not_filled:
        if key.startswith(pooler):
            (missing if source_has_pooler else new_head).append(key)
        elif base_is_model or key.startswith(target_prefix) or task_spec.task == source_task:
            missing.append(key)
        else:
            new_head.append(key)

    unexpected = []
    for key in state_dict:
        if key in used or key in dropped:
            continue
        if key.endswith(IGNORED_BUFFERS):
            continue
        if key.startswith(DROPPED_HEADS):
            dropped.append(key)
            continue
        unexpected.append(key)

    problems = []
    for label, items in (
        ("missing in the checkpoint", [*missing_sources, *(key for t in missing for key in sources_of.get(t, (t,)))]),
        ("unexpected", unexpected),
        ("mismatched", mismatched),
        ("tied tensors that differ", unequal_aliases),
    ):
        if items:
            problems.append(f"{label}: {_shown(items)}")
    if problems:
        raise ValueError(
            f"{where} does not match a transformers {architecture} of its config.json "
            f"({hfdl_config.num_hidden_layers} layers, hidden size {hfdl_config.hidden_size}): "
            + "; ".join(problems)
            + "."
        )
    if dropped:
        logger.warning(
            "Converting %s into %s (%s) leaves out %d tensors the source's head had: %s.",
            architecture,
            type(model).__name__,
            task_spec.task,
            len(dropped),
            _shown(sorted(dropped)),
        )
        for part, reason in DROPPED_REASONS.items():
            if any(part in key for key in dropped):
                logger.warning("Left out %s: %s.", part.rstrip("."), reason)
    if new_head:
        logger.warning(
            "%s has no weights for %s, which keep hfdl's initialisation: train them before use.",
            where,
            _shown(new_head),
        )
    model.load_state_dict(converted, strict=False)
    return model


def convert_transformers_model(hf_model: PreTrainedModel, task: str | None = None) -> PreTrainedModel:
    """The hfdl model equal to a transformers BERT, GPT-2 or ViT model in memory (notebooks, recipes).

    Args:
        hf_model: A transformers ``BertModel``, ``BertForMaskedLM``, ``BertForPreTraining``,
            ``BertForSequenceClassification``, ``BertForTokenClassification``, ``GPT2Model``, ``GPT2LMHeadModel``,
            ``ViTModel`` or ``ViTForImageClassification``.
        task: The hfdl head to build (``feature-extraction``, ``fill-mask``, ``text-classification``,
            ``token-classification``, ``text-generation``, ``image-feature-extraction``, ``image-classification``);
            default: the head ``hf_model`` has.

    Returns:
        The hfdl model (``BertForMaskedLM``, ``GPTForCausalLM``, ...), in float32 and in the training mode of
        ``hf_model``; its outputs equal ``hf_model``'s (to float rounding).

    Raises:
        ValueError: For another architecture (listing the supported ones), a config variant hfdl's transformer does
            not implement, or weights that do not match the config (naming the tensors).
    """
    if not isinstance(hf_model, PreTrainedModel):
        raise ValueError(
            f"convert_transformers_model takes a transformers PreTrainedModel, got {type(hf_model).__name__}."
        )
    architecture = type(hf_model).__name__
    where = f"The {architecture}"
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValueError(f"hfdl does not convert {architecture}; supported: {_supported_list()}.")
    model = _convert(hf_model.config, hf_model.state_dict(), architecture, task, where)
    return model.train(hf_model.training)


# --------------------------------------------------------------------------------------------- reading a source
def _resolve_source(src: str | os.PathLike) -> Path:
    """A local folder as it is; anything else is taken as a Hub repo id and downloaded (config, weights, tokenizer)."""
    path = Path(src)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(
                f"{str(src)!r} is a file; SRC must be a folder with config.json and the weights, or a Hub repo id."
            )
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(str(src))
    except HFValidationError:
        raise FileNotFoundError(
            f"{str(src)!r} does not exist; SRC must be a folder with config.json and the weights, or a Hub repo id."
        ) from None
    patterns = ["config.json", "tokenizer*", "vocab*", "merges.txt", "special_tokens_map.json", "added_tokens.json"]
    patterns.append(IMAGE_PROCESSOR_FILE)
    try:
        # safetensors if the repo has them; the PyTorch pickles (read with weights_only=True) only otherwise.
        safetensors = ["model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"]
        folder = Path(snapshot_download(str(src), allow_patterns=[*patterns, *safetensors]))
        if not any((folder / name).is_file() for name in WEIGHT_FILES):
            pickles = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"]
            folder = Path(snapshot_download(str(src), allow_patterns=[*patterns, *pickles]))
    except Exception as error:  # noqa: BLE001 - hub errors come in many types (offline, 404, gated, network)
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
        raise OSError(
            f"{str(src)!r} is not a local folder, and downloading it from the Hub as a repo id failed{offline}: "
            f"{type(error).__name__}: {' '.join(str(error).split())}"
        ) from error
    return folder


def _read_config(folder: Path) -> PretrainedConfig:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no config.json; it is not a transformers checkpoint folder.")
    raw = json.loads(config_file.read_text(encoding="utf-8"))
    model_type = raw.get("model_type")
    if model_type not in HFDL_ARCHITECTURES:
        architectures = ", ".join(raw.get("architectures") or []) or "no architectures"
        raise ValueError(
            f"{str(folder)!r} holds a {model_type!r} model ({architectures}); hfdl converts transformers BERT, "
            f"GPT-2 and ViT checkpoints: {_supported_list()}."
        )
    from transformers import AutoConfig

    return AutoConfig.for_model(**raw)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint folder: one safetensors or PyTorch file, or the shards an index lists."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return load_checkpoint(path)
        shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
        state_dict: dict[str, torch.Tensor] = {}
        for shard in shards:
            state_dict.update(load_checkpoint(folder / shard))
        return state_dict
    raise FileNotFoundError(
        f"{str(folder)!r} has no weights; looked for {', '.join(WEIGHT_FILES)} (TensorFlow and Flax weights are "
        "not read: load them in transformers and save_pretrained them first)."
    )


def _read_tokenizer(folder: Path) -> Any:
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        logger.warning("%s has no tokenizer files; the converted folder is saved without a tokenizer.", folder)
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _read_image_processor(folder: Path, config: Any) -> Any:
    """hfdl's ``ViTImageProcessor`` with the size, mean, std and resampling of the source's
    ``preprocessor_config.json``; without that file, transformers' ``ViTImageProcessor`` defaults (mean and std 0.5)
    at the model's input size, with a warning."""
    from .models.vit import ViTImageProcessor

    path = folder / IMAGE_PROCESSOR_FILE
    if not path.is_file():
        logger.warning(
            "%s has no %s; the converted folder gets hfdl's ViTImageProcessor at %d px with mean and std 0.5 "
            "(transformers' ViTImageProcessor defaults): check that they match how the model was trained.",
            folder,
            IMAGE_PROCESSOR_FILE,
            config.image_size,
        )
        return ViTImageProcessor(size=config.image_size, num_channels=config.num_channels)
    raw = json.loads(path.read_text(encoding="utf-8"))
    size = raw.get("size", config.image_size)
    if isinstance(size, dict):
        sides = {size[key] for key in ("height", "width", "shortest_edge") if key in size}
        if len(sides) != 1:
            raise ValueError(f"{str(path)!r} resizes to {size}; hfdl's ViTImageProcessor resizes to a square.")
        size = sides.pop()
    for flag, expected in (("do_resize", True), ("do_rescale", True), ("rescale_factor", 1 / 255)):
        if flag in raw and raw[flag] != expected:
            logger.warning(
                "%s sets %s=%r; hfdl's ViTImageProcessor always resizes and scales pixels to [0, 1].",
                path,
                flag,
                raw[flag],
            )
    normalize = raw.get("do_normalize", True)
    return ViTImageProcessor(
        size=int(size),
        num_channels=config.num_channels,
        image_mean=raw.get("image_mean", 0.5) if normalize else 0.0,
        image_std=raw.get("image_std", 0.5) if normalize else 1.0,
        resample=int(raw.get("resample", 2)),
    )


def convert_transformers(
    src: str | os.PathLike,
    output_dir: str | os.PathLike,
    task: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a transformers BERT, GPT-2 or ViT checkpoint (a folder or a Hub repo id) into an hfdl Hub folder.

    The folder holds hfdl's config (sizes, labels and token ids from the source's ``config.json``), safetensors
    weights, the modeling code (so it loads with ``trust_remote_code=True`` where hfdl is not installed), the
    source's tokenizer (so ``AutoTokenizer`` and ``pipeline(...)`` work on it) or, for a ViT, hfdl's image processor
    with the source's size, mean and std, and a model card. It is written
    beside ``output_dir`` and renamed into place once complete, so a failed conversion leaves nothing behind.

    Args:
        src: A folder with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``, read with
            ``weights_only=True``; sharded checkpoints too), or a Hub repo id such as ``"gpt2"``.
        output_dir: The folder to write.
        task: The hfdl head (see :func:`convert_transformers_model`); default: the source's.
        overwrite: Replace an existing non-empty ``output_dir``.

    Returns:
        ``output_dir``.
    """
    from .hub import save_for_hub

    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{str(output_dir)!r} exists and is not empty; pass overwrite=True (--overwrite).")
    folder = _resolve_source(src)
    if output_dir.exists() and output_dir.resolve() == folder.resolve():
        raise ValueError(f"OUTPUT_DIR {str(output_dir)!r} is SRC itself; write the converted model elsewhere.")
    config = _read_config(folder)
    state_dict = _read_weights(folder)
    architecture = _source_architecture(config, state_dict, task, repr(str(src)))
    model = _convert(config, state_dict, architecture, task, repr(str(src))).eval()
    if config.model_type == "vit":
        processor = _read_image_processor(folder, model.config)
    else:
        processor = _read_tokenizer(folder)
    card = {
        "model_name": output_dir.name,
        "tags": ["converted-from-transformers", config.model_type],
        "description": (
            f"Converted from `{src}` (transformers `{architecture}`) with `hfdl convert transformers`: the same "
            "weights in hfdl's shared transformer block, with outputs equal to the source's."
        ),
    }
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.with_name(f".{output_dir.name}.{uuid.uuid4().hex[:8]}.convert")
    try:
        save_for_hub(model, staging, processor=processor, card_data=card)
        if output_dir.exists():
            shutil.rmtree(output_dir) if output_dir.is_dir() else output_dir.unlink()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


__all__ = ["SUPPORTED_ARCHITECTURES", "convert_transformers", "convert_transformers_model"]
