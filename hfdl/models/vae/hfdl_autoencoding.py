"""What hfdl's autoencoders (plain, sparse, denoising) and its VAE share: encoder and decoder stacks, noise, losses.

Copied byte for byte, as ``hfdl_autoencoding.py``, into every model folder whose code imports it (checked by
``python -m hfdl.tools.check_copies``, ``--fix`` rewrites the copies); edit it here, in hfdl/layers/, only. Like
every file of a model folder it imports only torch, transformers, the standard library and its siblings, so a
saved model runs as Hub remote code without hfdl.

Images are in [0, 1] throughout (no mean/std normalisation): the decoder's last layer gives logits and a sigmoid
maps them back into that range, which is also what lets the binary cross-entropy be computed from the logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN

#: ``mlp``: fully connected layers on the flattened image (``hidden_sizes``); ``conv``: 3x3 convolutions of stride 2
#: (``conv_channels``), each halving the side (rounding up), mirrored by transposed convolutions in the decoder.
ENCODER_TYPES = ("mlp", "conv")
#: ``bce``: binary cross-entropy of the sigmoid output (pixels read as Bernoulli probabilities); ``mse``: squared
#: error of the sigmoid output.
RECONSTRUCTION_LOSSES = ("bce", "mse")
#: ``l1``: L1 norm of the code; ``kl``: KL divergence between a target activation rate and each code unit's mean
#: activation over the batch (Ng, 2011).
SPARSITY_TYPES = ("none", "l1", "kl")
#: How a denoising autoencoder corrupts its input (Vincent et al., 2008): see :func:`corrupt_images`.
NOISE_TYPES = ("none", "gaussian", "masking", "salt_and_pepper")


def check_non_negative_number(field: str, value: object, maximum: float | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number >= 0 (and <= ``maximum`` if given)."""
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    if not valid or (maximum is not None and value > maximum):
        allowed = f"in [0, {maximum}]" if maximum is not None else ">= 0"
        raise ValueError(f"`{field}` must be a finite number {allowed}, got {value!r}.")


def conv_feature_sizes(image_size: int, num_layers: int) -> list[int]:
    """Sides of the feature maps of a stack of 3x3, stride-2, padding-1 convolutions: 28 -> [28, 14, 7, 4].

    Each such convolution gives ``ceil(side / 2)``; the decoder's transposed convolutions give ``2 * side - 1``
    plus an output padding of 0 or 1, which is how they land on the encoder's sides exactly (7 -> 14 -> 28).
    """
    sizes = [image_size]
    for _ in range(num_layers):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class AutoencodingEncoder(nn.Module):
    """Image -> feature vector: the body of an encoder, before the layer(s) that give the code.

    ``forward`` returns the flattened features (batch, ``output_size``) and every layer's activations (the hidden
    states: (batch, width) for ``mlp``, (batch, channels, side, side) for ``conv``).
    """

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        self.is_conv = config.encoder_type == "conv"
        self.activation = ACT2FN[config.activation]
        if self.is_conv:
            channels = [config.num_channels, *config.conv_channels]
            self.layers = nn.ModuleList(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
                for in_channels, out_channels in zip(channels[:-1], channels[1:])
            )
            side = conv_feature_sizes(config.image_size, len(config.conv_channels))[-1]
            self.output_size = channels[-1] * side * side
        else:
            widths = [config.num_channels * config.image_size**2, *config.hidden_sizes]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
            self.output_size = widths[-1]

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        hidden = pixel_values if self.is_conv else pixel_values.flatten(1)  # (B, C, H, W) or (B, C*H*W)
        states = []
        for layer in self.layers:
            hidden = self.activation(layer(hidden))
            states.append(hidden)
        return hidden.flatten(1), tuple(states)


class AutoencodingDecoder(nn.Module):
    """Code (batch, latent_dim) -> image logits (batch, C, H, W): the encoder mirrored.

    ``mlp``: Linear layers through ``reversed(hidden_sizes)`` to C*H*W values. ``conv``: a Linear layer to the
    deepest feature maps, then one stride-2 transposed convolution per encoder convolution, back to C channels. The
    last layer has no activation: its output is logits (a sigmoid gives the image in [0, 1]).
    """

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        self.is_conv = config.encoder_type == "conv"
        self.activation = ACT2FN[config.activation]
        self.image_shape = (config.num_channels, config.image_size, config.image_size)
        if self.is_conv:
            sides = conv_feature_sizes(config.image_size, len(config.conv_channels))
            channels = [config.num_channels, *config.conv_channels]
            self.start_shape = (channels[-1], sides[-1], sides[-1])
            self.project = nn.Linear(config.latent_dim, channels[-1] * sides[-1] ** 2)
            layers = []
            for index in reversed(range(len(config.conv_channels))):  # deepest maps first
                output_padding = sides[index] - (2 * sides[index + 1] - 1)  # 0 or 1: hits the encoder's side
                layers.append(
                    nn.ConvTranspose2d(
                        channels[index + 1],
                        channels[index],
                        kernel_size=3,
                        stride=2,
                        padding=1,
                        output_padding=output_padding,
                    )
                )
            self.layers = nn.ModuleList(layers)
        else:
            widths = [config.latent_dim, *reversed(config.hidden_sizes), math.prod(self.image_shape)]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        states = []
        hidden = latents
        if self.is_conv:
            hidden = self.activation(self.project(latents)).view(-1, *self.start_shape)  # (B, C_last, s, s)
            states.append(hidden)
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if index < len(self.layers) - 1:
                hidden = self.activation(hidden)
            states.append(hidden)
        return hidden.view(-1, *self.image_shape), tuple(states)  # logits (B, C, H, W)


# --------------------------------------------------------------------------------------------- noise
def corrupt_images(
    pixel_values: torch.Tensor, noise_type: str, noise_level: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Corrupt images in [0, 1] as a denoising autoencoder's input (Vincent et al., 2008); the result stays in [0, 1].

    * ``gaussian``: add N(0, ``noise_level``**2) noise to every pixel, then clip to [0, 1];
    * ``masking``: set each value to 0 with probability ``noise_level`` (the paper's "masking noise");
    * ``salt_and_pepper``: set each value with probability ``noise_level`` to 0 or 1, each with equal probability;
    * ``none`` (or a level of 0): return the images unchanged.

    All random numbers come from ``generator`` (the global RNG if ``None``), drawn on the images' device, so the
    same seed gives the same corruption.
    """
    if noise_type == "none" or noise_level == 0:
        return pixel_values
    shape, device, dtype = pixel_values.shape, pixel_values.device, pixel_values.dtype
    if noise_type == "gaussian":
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return (pixel_values + noise_level * noise).clamp(0.0, 1.0)
    uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    if noise_type == "masking":
        return pixel_values.masked_fill(uniform < noise_level, 0.0)
    if noise_type == "salt_and_pepper":
        # One draw decides both whether a value is hit (u < level) and how: pepper below level/2, salt above.
        salt = (uniform >= noise_level / 2).to(dtype)
        return torch.where(uniform < noise_level, salt, pixel_values)
    raise ValueError(f"Unknown noise type {noise_type!r}; allowed: {', '.join(NOISE_TYPES)}.")


# --------------------------------------------------------------------------------------------- losses
def check_target_images(name: str, target: torch.Tensor, shape: tuple[int, ...], unit_interval: bool) -> None:
    """Raise ``ValueError`` unless ``target`` is a float tensor (batch_size, *shape), in [0, 1] if ``unit_interval``.

    Binary cross-entropy and the Bernoulli likelihood read pixels as probabilities: a target outside [0, 1] (pixels
    normalised with a mean and std, or 0-255) gives a loss that is not a cross-entropy, and no error otherwise.
    """
    expected = f"(batch_size, {', '.join(map(str, shape))})"
    if not isinstance(target, torch.Tensor) or not target.is_floating_point():
        kind = f"dtype {target.dtype}" if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"`{name}` must be a floating point tensor of shape {expected}, got {kind}.")
    if tuple(target.shape[1:]) != tuple(shape) or target.dim() != len(shape) + 1:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(target.shape)}.")
    if unit_interval and target.numel() and (target.min() < 0 or target.max() > 1):
        raise ValueError(
            f"`{name}` must hold pixel values in [0, 1] for a Bernoulli likelihood (binary cross-entropy), got values "
            f"in [{target.min().item():.4g}, {target.max().item():.4g}]; rescale them (no mean/std normalisation)."
        )


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean per-value reconstruction error: BCE from the decoder's logits, or MSE of ``sigmoid(logits)``.

    A mean over pixels (not a sum per image) keeps the loss on the same scale for any image size, so one
    ``sparsity_weight`` means the same on 28x28 and 64x64 images.
    """
    if kind == "bce":
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    if kind == "mse":
        return nn.functional.mse_loss(torch.sigmoid(logits), target)
    raise ValueError(f"Unknown reconstruction loss {kind!r}; allowed: {', '.join(RECONSTRUCTION_LOSSES)}.")


def sparsity_penalty(code: torch.Tensor, kind: str, target: float, eps: float = 1e-6) -> torch.Tensor:
    """The (unweighted) sparsity penalty of a batch of codes (batch, units).

    ``l1``: the L1 norm of each code, averaged over the batch. ``kl``: the sum over units of
    KL(rho || rho_hat_j) = rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)), where rho is the
    target rate and rho_hat_j unit j's mean activation over the batch (Ng, 2011); it needs activations in (0, 1), so
    the code of a ``kl`` autoencoder goes through a sigmoid. rho_hat is clipped to [eps, 1 - eps] to keep the
    logarithms finite.
    """
    if kind == "l1":
        return code.abs().sum(dim=1).mean()
    if kind == "kl":
        rho_hat = code.mean(dim=0).clamp(eps, 1.0 - eps)  # (units,)
        rho = target
        return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    raise ValueError(f"Unknown sparsity {kind!r}; allowed: {', '.join(SPARSITY_TYPES)}.")
