"""What every hfdl model folder shares: config checks, the course's weight init, input checks and losses.

A model folder is what ``trust_remote_code`` copies to the Hub, so it may import only torch, transformers, the
standard library and its own files. This file is therefore copied byte for byte into every folder of hfdl/models/
as ``hfdl_utils.py`` (``python -m hfdl.tools.check_copies`` checks the copies, ``--fix`` rewrites them); edit it
here, in hfdl/layers/, only. What transformers already gives remote code (``ACT2FN``, output classes, init
helpers) is imported from transformers, not kept here; what only image models need is in
``hfdl_image_processing.py``, which only their folders carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

try:  # transformers >= 5: init functions that leave weights loaded from a checkpoint untouched
    from transformers import initialization as init
except ImportError:  # transformers 4.x (remote code must load there too): plain torch initialisers
    from torch.nn import init

# --------------------------------------------------------------------------------------------- config checks
#: Activation names a config accepts; each is a key of ``transformers.activations.ACT2FN`` in 4.57 and 5.x.
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")
#: The course's weight initialisation schemes (ch. 4), see :func:`initialize_weight`.
INITIALIZER_NAMES = ("zeros", "normal", "xavier_uniform", "kaiming_normal")
#: The only ``problem_type`` values transformers accepts (4.57 refuses any other one when loading a config).
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def check_positive_int(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` greater than zero (bools are not sizes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{field}` must be a positive integer, got {value!r}.")


def check_non_negative_int(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` >= 0 (a padding may be zero; bools are not sizes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{field}` must be a non-negative integer, got {value!r}.")


def check_bool(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is ``True`` or ``False`` (not 0/1 or a string, which JSON would keep)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{field}` must be True or False, got {value!r}.")


def check_list(
    field: str, values: object, check_item: Callable[[str, object], None], items: str, length: int | None = None
) -> list:
    """Validate a non-empty list (of exactly ``length`` items if given) item by item and return it as a list.

    ``check_item(f"{field}[i]", value)`` checks each item, so an error names the position; ``items`` says what the
    list holds ("positive integers", "booleans") in the error for a value that is no list or has the wrong length.
    """
    expected = f"exactly {length}" if length is not None else "at least one"
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"`{field}` must be a list of {expected} {items}, got {values!r}.")
    values = list(values)
    if not values or (length is not None and len(values) != length):
        raise ValueError(f"`{field}` must hold {expected} {items}, got {values!r}.")
    for index, value in enumerate(values):
        check_item(f"{field}[{index}]", value)
    return values


def check_positive_int_list(field: str, values: object, length: int | None = None) -> list[int]:
    """Validate a non-empty list of positive sizes (of exactly ``length`` items if given) and return it as a list."""
    return check_list(field, values, check_positive_int, "positive integers", length)


def check_choice(field: str, value: object, allowed: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``, listing the allowed values."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"`{field}` must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}.")


def check_probability(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a dropout rate of 1 would zero every activation)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{field}` must be a number in [0, 1), got {value!r}.")


def check_positive_number(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number greater than zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{field}` must be a positive number, got {value!r}.")


def check_head_kwargs(kwargs: dict[str, Any]) -> None:
    """Check the head fields every config passes on to ``PretrainedConfig`` (which would fail obscurely on them).

    ``num_labels="3"`` would otherwise end in a bare TypeError inside ``range()``, and a ``problem_type`` that
    transformers does not know saves a config that transformers 4.57 refuses to load.
    """
    if "num_labels" in kwargs:
        check_positive_int("num_labels", kwargs["num_labels"])
    if kwargs.get("problem_type") is not None:
        check_choice("problem_type", kwargs["problem_type"], PROBLEM_TYPES)
    id2label = kwargs.get("id2label")
    if id2label is not None:
        if not isinstance(id2label, dict) or not id2label:
            raise ValueError(f"`id2label` must be a non-empty dict from class index to name, got {id2label!r}.")
        if "num_labels" in kwargs and len(id2label) != kwargs["num_labels"]:
            raise ValueError(
                f"`id2label` has {len(id2label)} entries but `num_labels` is {kwargs['num_labels']}; give matching "
                "values, or only one of them."
            )


# --------------------------------------------------------------------------------------------- weight init
def initialize_weight(weight: torch.Tensor, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise a Linear/Conv weight in place with one of :data:`INITIALIZER_NAMES`.

    ``zeros`` is there to show why it fails (every unit of a layer gets the same gradient, the symmetry is never
    broken); Xavier keeps the variance of tanh/sigmoid activations constant across layers (Glorot & Bengio, 2010);
    He doubles it to make up for ReLU zeroing half the inputs (He et al., 2015).
    """
    if scheme == "zeros":
        init.zeros_(weight)
    elif scheme == "normal":
        init.normal_(weight, mean=0.0, std=std)
    elif scheme == "xavier_uniform":
        init.xavier_uniform_(weight)
    elif scheme == "kaiming_normal":
        # torch's gain table knows relu and leaky_relu; other activations get the plain sqrt(2) ReLU gain.
        init.kaiming_normal_(weight, nonlinearity=nonlinearity if nonlinearity in ("relu", "leaky_relu") else "relu")
    else:
        raise ValueError(f"Unknown initializer {scheme!r}; allowed: {', '.join(INITIALIZER_NAMES)}.")


def initialize_module(module: nn.Module, scheme: str, std: float = 0.02, nonlinearity: str = "relu") -> None:
    """Initialise Linear and Conv layers with ``scheme``, biases with zeros; leave other modules alone."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
        initialize_weight(module.weight, scheme, std=std, nonlinearity=nonlinearity)
        if module.bias is not None:
            init.zeros_(module.bias)


# --------------------------------------------------------------------------------------------- input checks
def check_float_tensor(name: str, value: object, shape: tuple[int, ...], axes: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a float tensor of shape ``(batch_size, *shape)``.

    A wrong input then fails with the shape the model expects (``axes`` spells it out, e.g. ``"1, 32, 32"``),
    not deep inside a matmul.
    """
    expected = f"(batch_size, {axes})"
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"`{name}` must be a torch.Tensor of shape {expected}, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise ValueError(
            f"`{name}` must be a floating point tensor of shape {expected}, got dtype {value.dtype} "
            "(an image processor rescales uint8 pixels to floats)."
        )
    if value.dim() != len(shape) + 1 or tuple(value.shape[1:]) != tuple(shape):
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(value.shape)}.")


def check_image_tensor(pixel_values: object, num_channels: int, image_size: int) -> None:
    """``pixel_values`` must be (batch_size, num_channels, image_size, image_size) floats."""
    shape = (num_channels, image_size, image_size)
    check_float_tensor("pixel_values", pixel_values, shape, ", ".join(map(str, shape)))


# --------------------------------------------------------------------------------------------- losses
def classification_loss(config: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of a classification head, chosen by ``config.problem_type`` as transformers' heads do.

    Cross-entropy over softmax for single-label targets; sigmoid + binary cross-entropy for multi-label targets and
    for a one-logit binary head (``num_labels=1``, which transformers' own heads would read as regression). The
    choice is stored in ``config.problem_type`` on first use, with transformers' values only, so a saved model keeps it.

    Single-label targets are class indices (integers, ``(batch_size,)``) or class probabilities (floats,
    ``(batch_size, num_labels)``, rows summing to 1), as mixup, cutmix and label smoothing make them; the loss is
    then the soft-target cross-entropy ``-sum(p * log_softmax(logits))``, equal to the usual one for one-hot rows.
    Float targets read as multi-label when ``problem_type`` is unset (as in transformers), so training on soft
    targets needs ``config.problem_type = "single_label_classification"`` first.
    """
    if config.problem_type is None:
        binary_or_multi = config.num_labels == 1 or labels.is_floating_point()
        config.problem_type = "multi_label_classification" if binary_or_multi else "single_label_classification"
    if config.problem_type == "single_label_classification":
        if labels.is_floating_point():
            if labels.shape != logits.shape:
                raise ValueError(
                    "Single-label classification takes class indices (integers, shape (batch_size,)) or class "
                    f"probabilities (floats, shape {tuple(logits.shape)}); got {labels.dtype} labels of shape "
                    f"{tuple(labels.shape)}."
                )
            return nn.functional.cross_entropy(logits, labels.to(logits.dtype))
        return nn.functional.cross_entropy(logits.view(-1, config.num_labels), labels.view(-1))
    if config.problem_type == "multi_label_classification":
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype).view_as(logits))
    if config.problem_type == "regression":
        return nn.functional.mse_loss(logits, labels.to(logits.dtype).view_as(logits))
    raise ValueError(f"Unknown `problem_type` {config.problem_type!r}; allowed: {', '.join(PROBLEM_TYPES)}.")
