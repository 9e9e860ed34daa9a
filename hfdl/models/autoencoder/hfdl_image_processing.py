"""The image processor base of hfdl's image models: any picture in, the normalised ``pixel_values`` a model takes.

Copied byte for byte into the folder of every architecture with an image processor, as
``hfdl_image_processing.py`` (checked by ``python -m hfdl.tools.check_copies``); edit it here, in hfdl/layers/,
only. Text and sequence models do not carry it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .hfdl_utils import check_choice, check_positive_int

if TYPE_CHECKING:
    from PIL import Image


#: Per-channel mean and standard deviation of ImageNet's training images (R, G, B), which torchvision's models and
#: nearly every ImageNet model since normalise with.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class HfdlImageProcessor(BaseImageProcessor):
    """Turns PIL images, numpy arrays or tensors into the normalised ``pixel_values`` a model expects.

    transformers' pipelines convert every image to RGB; a 1-channel model needs this processor to bring it back
    to grayscale. Steps: convert to ``L`` (or ``RGB``), resize to ``size`` x ``size``, scale to [0, 1], then
    ``(x - image_mean) / image_std``. uint8 arrays are read as 0-255, float arrays as 0-1; arrays may be (H, W),
    (H, W, C) or (C, H, W) with C in {1, 3, 4}.
    """

    model_input_names = ["pixel_values"]
    #: What a bare ``Processor()`` builds; the registry always passes the config's values.
    default_size: int = 32
    default_num_channels: int = 1
    #: Per-channel statistics of RGB inputs (ImageNet's, for the ImageNet-era models); ``None`` means 0.5 / 0.5, as
    #: for grayscale inputs, where three channels' statistics do not apply.
    rgb_mean: list[float] | None = None
    rgb_std: list[float] | None = None

    def __init__(
        self,
        size: int | None = None,
        num_channels: int | None = None,
        image_mean: float | list[float] | None = None,
        image_std: float | list[float] | None = None,
        resample: int = 2,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        size = self.default_size if size is None else size
        num_channels = self.default_num_channels if num_channels is None else num_channels
        if isinstance(size, dict):  # the {"height": h, "width": w} form of other processors
            size = size.get("height", size.get("shortest_edge"))
        check_positive_int("size", size)
        check_choice("num_channels", num_channels, (1, 3))
        rgb_statistics = num_channels == 3 and self.rgb_mean is not None
        self.size = size
        self.num_channels = num_channels
        self.image_mean = image_mean if image_mean is not None else (self.rgb_mean if rgb_statistics else 0.5)
        self.image_std = image_std if image_std is not None else (self.rgb_std if rgb_statistics else 0.5)
        self.resample = resample

    def _to_pil(self, image: object) -> Image.Image:
        # Imported here: configs and models import this file too, and loading them must not need Pillow.
        from PIL import Image

        if isinstance(image, Image.Image):
            return image
        if isinstance(image, torch.Tensor):
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
        # C order: the (H, W, C) -> (C, H, W) transposes would otherwise leave a strided array for 3-channel images,
        # which safetensors and some runtimes refuse.
        pixel_values = np.ascontiguousarray(np.stack(batch), dtype=np.float32)  # (B, C, H, W)
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)
