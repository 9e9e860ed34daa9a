"""Image processor of LeNet-5: grayscale, resized to the network's input side, normalised."""

from __future__ import annotations

from .hfdl_image_processing import HfdlImageProcessor


class LeNet5ImageProcessor(HfdlImageProcessor):
    """Grayscale 32x32 inputs by default, as LeNet-5 expects; ``size`` follows ``config.image_size``."""
