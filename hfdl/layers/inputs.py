"""Input checks: a wrong tensor fails with the shape the model expects, not deep inside a matmul."""

from __future__ import annotations

import torch


def check_image_tensor(pixel_values: object, num_channels: int, image_size: int) -> None:
    """Raise ``ValueError`` unless ``pixel_values`` is a float tensor of shape (batch, C, H, W) the model takes."""
    expected = f"(batch_size, {num_channels}, {image_size}, {image_size})"
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"`pixel_values` must be a torch.Tensor of shape {expected}, got {type(pixel_values)}.")
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"`pixel_values` must be a floating point tensor of shape {expected}, got dtype {pixel_values.dtype} "
            "(run the image processor, which rescales uint8 pixels to floats)."
        )
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (num_channels, image_size, image_size):
        raise ValueError(f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)}.")


def check_feature_tensor(input_features: object, input_size: int) -> None:
    """Raise ``ValueError`` unless ``input_features`` is a float tensor of shape (batch, input_size)."""
    expected = f"(batch_size, {input_size})"
    if not isinstance(input_features, torch.Tensor):
        raise ValueError(f"`input_features` must be a torch.Tensor of shape {expected}, got {type(input_features)}.")
    if not input_features.is_floating_point():
        raise ValueError(
            f"`input_features` must be a floating point tensor of shape {expected}, got dtype {input_features.dtype}."
        )
    if input_features.dim() != 2 or input_features.shape[1] != input_size:
        raise ValueError(f"`input_features` must have shape {expected}, got {tuple(input_features.shape)}.")
