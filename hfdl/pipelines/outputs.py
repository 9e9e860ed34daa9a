"""Generated images in diffusers' output forms, shared by hfdl's pipelines and the onnxruntime pipeline of
:mod:`hfdl.export.generative` (which must work without diffusers, so nothing here imports it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: The values ``output_type`` accepts, as in diffusers' own pipelines.
OUTPUT_TYPES = ("pil", "np", "pt")


def check_output_type(output_type: Any) -> None:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")


def to_output(images: torch.Tensor, output_type: str) -> Any:
    """``(N, C, H, W)`` images in [0, 1] as ``"pt"`` (unchanged, on their device, as in diffusers), ``"np"`` (a float
    array ``(N, H, W, C)``) or ``"pil"`` (a list: mode ``L`` for one channel, ``RGB`` for three, ``RGBA`` for four;
    ``255 * x`` rounded after clipping to [0, 1], as diffusers does)."""
    check_output_type(output_type)
    if output_type == "pt":
        return images
    array = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    if output_type == "np":
        return array
    from PIL import Image

    pixels = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return [Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in pixels]
