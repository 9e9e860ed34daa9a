"""Classification losses chosen by ``config.problem_type``, as transformers' heads do."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig


def classification_loss(config: PretrainedConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for single-label targets; sigmoid + BCE for one logit (binary) or multi-label targets.

    ``config.problem_type`` is set on first use (``single_label_classification``, ``binary_classification`` or
    ``multi_label_classification``) so that saved models keep the choice.
    """
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "binary_classification"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "single_label_classification":
        if labels.dtype not in (torch.long, torch.int):
            raise ValueError(f"Single-label classification needs integer class labels, got dtype {labels.dtype}.")
        return nn.functional.cross_entropy(logits.view(-1, config.num_labels), labels.view(-1))
    if config.problem_type in ("binary_classification", "multi_label_classification"):
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype).view_as(logits))
    if config.problem_type == "regression":
        return nn.functional.mse_loss(logits, labels.to(logits.dtype).view_as(logits))
    raise ValueError(
        f"Unknown `problem_type` {config.problem_type!r}; allowed: 'single_label_classification', "
        "'binary_classification', 'multi_label_classification', 'regression'."
    )
