"""Image processor of AlexNet: RGB (or grayscale for the small variant), resized to the input side, normalised."""

from __future__ import annotations

from .hfdl_image_processing import IMAGENET_MEAN, IMAGENET_STD, HfdlImageProcessor


class AlexNetImageProcessor(HfdlImageProcessor):
    """224x224 RGB inputs with ImageNet's mean and std by default (as torchvision's AlexNet; the paper itself only
    subtracted the mean image); a grayscale model (``alexnet-small`` for MNIST) gets 0.5 / 0.5."""

    default_size = 224
    default_num_channels = 3
    rgb_mean = IMAGENET_MEAN
    rgb_std = IMAGENET_STD
