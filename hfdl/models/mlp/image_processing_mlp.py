"""Image processor of the MLP on images: grayscale, resized to the network's input side, normalised."""

from __future__ import annotations

from .hfdl_image_processing import HfdlImageProcessor


class MLPImageProcessor(HfdlImageProcessor):
    """Images are flattened by the model, so the processor only fixes channels and side (``config.image_size``)."""
