"""LoRA for hfdl models with peft: which layers take adapters, and which new heads are trained in full.

Transfer learning in the course (ch. 5 and 8) freezes a pretrained body and trains a new head; LoRA adds small
low-rank updates to the body's Linear/Conv layers as well (Hu et al., 2021). This module picks those layers from the
model itself, so every registered architecture works without a hand-kept list of module names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn
from transformers import PreTrainedModel

if TYPE_CHECKING:
    from peft import LoraConfig

#: Layer types peft can wrap with LoRA (recurrent nn.LSTM/nn.GRU cannot: see STACK.md).
LORA_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)


def lora_target_modules(model: PreTrainedModel) -> tuple[list[str], list[str]]:
    """Return ``(target_modules, modules_to_save)`` for ``model``.

    Targets are the full names of the LoRA-able layers inside the base model (the body); the head modules (the
    direct children that are not the body, e.g. ``classifier``) are listed in ``modules_to_save`` because a new task
    needs its head trained in full and saved with the adapter.
    """
    prefix = model.base_model_prefix
    body = getattr(model, prefix, None)
    if body is None:  # a base model: everything is body, there is no head
        body, prefix = model, ""
    layers = [(name, module) for name, module in body.named_modules() if name and isinstance(module, LORA_LAYER_TYPES)]
    # Transformers adapt their projections, not their token tables (Hu et al. adapt W_q, W_v; adapting an embedding
    # that an LM head shares would also change the head): embeddings are targets only in a body without other layers.
    if any(not isinstance(module, nn.Embedding) for _, module in layers):
        layers = [(name, module) for name, module in layers if not isinstance(module, nn.Embedding)]
    targets = [f"{prefix}.{name}" if prefix else name for name, _ in layers]
    # A base model is all body: it has no head to train in full. A language-model head (the one holding the output
    # embeddings, often tied to the input ones) was pretrained with the body; only new heads are trained in full.
    output_embeddings = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    heads = [
        name
        for name, module in model.named_children()
        if prefix
        and name != prefix
        and any(parameter.requires_grad for parameter in module.parameters())
        and not (output_embeddings is not None and any(m is output_embeddings for m in module.modules()))
    ]
    if not targets:
        raise ValueError(
            f"{type(model).__name__} has no layer LoRA can adapt ({', '.join(t.__name__ for t in LORA_LAYER_TYPES)})."
        )
    return targets, heads


def make_lora_config(
    model: PreTrainedModel, r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0, **kwargs: Any
) -> LoraConfig:
    """A ``peft.LoraConfig`` adapting every Linear/Conv layer of ``model``'s body and training its head in full."""
    try:
        from peft import LoraConfig
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("LoRA needs peft: pip install 'hfdl[train]'") from error
    targets, heads = lora_target_modules(model)
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=targets,
        modules_to_save=heads or None,
        **kwargs,
    )
