"""Image processor of the ViT: resized to the network's input side, scaled to [-1, 1] (mean 0.5, std 0.5)."""

from __future__ import annotations

from .hfdl_image_processing import HfdlImageProcessor


class ViTImageProcessor(HfdlImageProcessor):
    """224x224 RGB inputs normalised with mean 0.5 and std 0.5 per channel, as the paper's released ViTs (and
    transformers' ``google/vit-*`` and timm's ``augreg`` checkpoints) were trained."""

    default_size = 224
    default_num_channels = 3
