"""Config validation helpers: errors name the field, the value received and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable


def check_positive_int(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` greater than zero (bools are not sizes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{field}` must be a positive integer, got {value!r}.")


def check_positive_int_list(field: str, values: object, allow_empty: bool = False) -> list[int]:
    """Validate a list of positive sizes and return it as a JSON-friendly ``list``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"`{field}` must be a list of positive integers, got {values!r}.")
    values = list(values)
    if not values and not allow_empty:
        raise ValueError(f"`{field}` must hold at least one positive integer, got an empty list.")
    for index, value in enumerate(values):
        check_positive_int(f"{field}[{index}]", value)
    return values


def check_choice(field: str, value: object, allowed: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``, listing the allowed values."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"`{field}` must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}.")


def check_probability(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a dropout rate of 1 would zero every activation)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{field}` must be a number in [0, 1), got {value!r}.")


# Names accepted by `activation` / `initializer` config fields. Configs must not import torch, so the names live
# here and tests check them against hfdl.layers.activations.ACTIVATIONS and hfdl.layers.initialization.INITIALIZERS.
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")

INITIALIZER_NAMES = ("zeros", "normal", "xavier_uniform", "kaiming_normal")
