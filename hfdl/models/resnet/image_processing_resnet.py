"""Image processor of ResNet: resized to the network's input side, normalised with ImageNet's statistics."""

from __future__ import annotations

from .hfdl_image_processing import IMAGENET_MEAN, IMAGENET_STD, HfdlImageProcessor


class ResNetImageProcessor(HfdlImageProcessor):
    """224x224 RGB inputs normalised with ImageNet's mean and std by default; a grayscale ResNet gets 0.5 / 0.5."""

    default_size = 224
    default_num_channels = 3
    rgb_mean = IMAGENET_MEAN
    rgb_std = IMAGENET_STD
