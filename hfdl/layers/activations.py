"""Activation functions of the course (ch. 3): one table, so every model accepts the same names."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


def get_activation(name: str) -> nn.Module:
    """Build a fresh activation module by name (modules, not functions, so hooks can see them)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()
