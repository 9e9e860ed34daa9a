"""Image processor of the MLP on images: grayscale, resized to the network's input side, normalised."""

from __future__ import annotations

import numpy as np
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature


# Copied from hfdl.layers.image_processing.HfdlImageProcessor
class HfdlImageProcessor(BaseImageProcessor):
    """Turns PIL images, numpy arrays or tensors into the normalised ``pixel_values`` a model expects.

    transformers' pipelines convert every image to RGB; a 1-channel model needs this processor to bring it back
    to grayscale. Steps: convert to ``L`` (or ``RGB``), resize to ``size`` x ``size``, scale to [0, 1], then
    ``(x - image_mean) / image_std``. uint8 arrays are read as 0-255, float arrays as 0-1; arrays may be (H, W),
    (H, W, C) or (C, H, W) with C in {1, 3, 4}.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: int = 32,
        num_channels: int = 1,
        image_mean: float | list[float] = 0.5,
        image_std: float | list[float] = 0.5,
        resample: int = 2,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(size, dict):  # the {"height": h, "width": w} form of other processors
            size = size.get("height", size.get("shortest_edge"))
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"`size` must be a positive integer, got {size!r}.")
        if num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 (grayscale) or 3 (RGB), got {num_channels!r}.")
        self.size = size
        self.num_channels = num_channels
        self.image_mean = image_mean
        self.image_std = image_std
        self.resample = resample

    def _to_pil(self, image: object) -> Image.Image:
        if isinstance(image, Image.Image):
            return image
        if hasattr(image, "detach") and hasattr(image, "cpu"):  # a torch tensor, without importing torch here
            image = image.detach().cpu().numpy()
        if not isinstance(image, np.ndarray):
            raise ValueError(
                f"Expected a PIL image, a numpy array or a torch tensor, got {type(image).__name__}. "
                "Allowed shapes: (H, W), (H, W, C) or (C, H, W) with C in {1, 3, 4}."
            )
        if image.size == 0:
            raise ValueError(f"Got an empty image array of shape {image.shape}.")
        if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            image = np.moveaxis(image, 0, -1)  # (C, H, W) -> (H, W, C)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
            raise ValueError(
                f"Cannot read an image of shape {image.shape}; allowed: (H, W), (H, W, C) or (C, H, W), C in {{1, 3, 4}}."
            )
        if image.dtype != np.uint8:
            if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
                raise ValueError(f"Image arrays must hold real numbers, got dtype {image.dtype}.")
            scale = 255.0 if np.issubdtype(image.dtype, np.floating) else 1.0
            image = np.clip(np.asarray(image, dtype=np.float64) * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(image)

    def preprocess(self, images: object, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        """Process one image or a list of images into ``{"pixel_values": (batch, C, size, size)}``."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ValueError("Got an empty list of images; pass at least one image.")
        mode = "L" if self.num_channels == 1 else "RGB"
        mean = np.asarray(self.image_mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.image_std, dtype=np.float32).reshape(-1, 1, 1)
        batch = []
        for image in images:
            image = self._to_pil(image).convert(mode).resize((self.size, self.size), resample=self.resample)
            array = np.asarray(image, dtype=np.float32) / 255.0
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
            batch.append((array - mean) / std)
        return BatchFeature({"pixel_values": np.stack(batch).astype(np.float32)}, tensor_type=return_tensors)


class MLPImageProcessor(HfdlImageProcessor):
    """Images are flattened by the model, so the processor only fixes channels and side; ``size`` follows ``config.image_size``."""
