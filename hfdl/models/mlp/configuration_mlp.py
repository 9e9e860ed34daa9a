"""Configuration of the multilayer perceptron (Deep Learning Mastery, ch. 3-4)."""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PretrainedConfig

# Copied from hfdl.layers.validation.ACTIVATION_NAMES
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")

# Copied from hfdl.layers.validation.INITIALIZER_NAMES
INITIALIZER_NAMES = ("zeros", "normal", "xavier_uniform", "kaiming_normal")


# Copied from hfdl.layers.validation.check_positive_int
def check_positive_int(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` greater than zero (bools are not sizes)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{field}` must be a positive integer, got {value!r}.")


# Copied from hfdl.layers.validation.check_positive_int_list
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


# Copied from hfdl.layers.validation.check_choice
def check_choice(field: str, value: object, allowed: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``, listing the allowed values."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"`{field}` must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}.")


# Copied from hfdl.layers.validation.check_probability
def check_probability(field: str, value: object) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (a dropout rate of 1 would zero every activation)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{field}` must be a number in [0, 1), got {value!r}.")


class MLPConfig(PretrainedConfig):
    """A stack of fully connected layers: ``input -> [Linear -> activation -> dropout] x N -> head``.

    The MLP reads flat feature vectors (``input_size`` values). For images, give ``image_size`` and
    ``num_channels`` instead: ``input_size`` is then ``num_channels * image_size**2`` and the image heads flatten
    ``pixel_values`` themselves, which is how the course feeds MNIST to its first network.

    Args:
        input_size: Number of input features. Derived from the image shape when ``image_size`` is given.
        hidden_sizes: Width of each hidden layer; its length is the depth.
        activation: One of ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``, ``gelu``.
        initializer: Weight init: ``zeros``, ``normal`` (N(0, ``initializer_range``)), ``xavier_uniform`` or
            ``kaiming_normal`` (the course's zero / random / Xavier / He comparison).
        initializer_range: Standard deviation of the ``normal`` initializer.
        dropout: Dropout rate after every hidden activation.
        num_channels: Channels of input images (image heads only).
        image_size: Side of the square input images, or ``None`` for a feature-vector MLP.
        num_labels: Classes of the classification head (1 means binary with a sigmoid), or targets of the
            regression head.
    """

    model_type = "hfdl-mlp"

    def __init__(
        self,
        input_size: int | None = None,
        hidden_sizes: list[int] | tuple[int, ...] = (128, 64),
        activation: str = "relu",
        initializer: str = "kaiming_normal",
        initializer_range: float = 0.02,
        dropout: float = 0.0,
        num_channels: int = 1,
        image_size: int | None = 8,
        **kwargs,
    ) -> None:
        self.hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_choice("initializer", initializer, INITIALIZER_NAMES)
        if isinstance(initializer_range, bool) or not isinstance(initializer_range, (int, float)):
            raise ValueError(f"`initializer_range` must be a positive number, got {initializer_range!r}.")
        if initializer_range <= 0:
            raise ValueError(f"`initializer_range` must be a positive number, got {initializer_range!r}.")
        check_probability("dropout", dropout)
        check_positive_int("num_channels", num_channels)
        if image_size is not None:
            check_positive_int("image_size", image_size)
            image_input_size = num_channels * image_size * image_size
            if input_size is None:
                input_size = image_input_size
            elif input_size != image_input_size:
                raise ValueError(
                    f"`input_size`={input_size!r} does not match the image shape: num_channels * image_size**2 = "
                    f"{num_channels} * {image_size}**2 = {image_input_size}. Give one of them, or matching values."
                )
        if input_size is None:
            raise ValueError("`input_size` is required when `image_size` is None (a feature-vector MLP).")
        check_positive_int("input_size", input_size)
        self.input_size = input_size
        self.activation = activation
        self.initializer = initializer
        self.initializer_range = float(initializer_range)
        self.dropout = float(dropout)
        self.num_channels = num_channels
        self.image_size = image_size
        super().__init__(**kwargs)
