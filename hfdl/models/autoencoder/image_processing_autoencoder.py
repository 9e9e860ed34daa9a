"""Image processor of the autoencoders: grayscale (or RGB), resized, scaled to [0, 1] and not normalised."""

from __future__ import annotations

from .hfdl_image_processing import HfdlImageProcessor


class AutoencoderImageProcessor(HfdlImageProcessor):
    """Pixels in [0, 1] (mean 0, std 1: no normalisation), because the decoder's sigmoid output and the binary
    cross-entropy read pixels as probabilities; ``size`` follows ``config.image_size`` (28 by default, MNIST)."""

    default_size = 28

    def __init__(
        self,
        size: int | None = None,
        num_channels: int | None = None,
        image_mean: float | list[float] | None = 0.0,
        image_std: float | list[float] | None = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(size=size, num_channels=num_channels, image_mean=image_mean, image_std=image_std, **kwargs)
