"""Autoencoders of Deep Learning Mastery, ch. 7: plain (Hinton & Salakhutdinov, 2006), sparse (Ng, 2011) and
denoising (Vincent et al., 2008), with an MLP or a convolutional encoder.

    pixel_values (B, C, H, W) in [0, 1] -> [corrupt, training only] -> encoder -> code (B, latent_dim)
    -> decoder -> logits (B, C, H, W) -> sigmoid -> reconstruction in [0, 1]

This file imports only torch, transformers, the standard library and its siblings (the configuration and the
shared hfdl_utils.py / hfdl_autoencoding.py), so it runs as Hub remote code without hfdl installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .configuration_autoencoder import AutoencoderConfig
from .hfdl_autoencoding import (
    AutoencodingDecoder,
    AutoencodingEncoder,
    check_target_images,
    corrupt_images,
    reconstruction_loss,
    sparsity_penalty,
)
from .hfdl_utils import check_float_tensor, check_image_tensor, initialize_module


@dataclass
class AutoencoderOutput(ModelOutput):
    """What an autoencoder's forward returns.

    Args:
        loss: ``reconstruction_loss + sparsity_loss`` (with ``labels`` only).
        reconstruction: The decoded images (batch, C, H, W), in [0, 1].
        latents: The code (batch, latent_dim).
        reconstruction_loss: Mean per-pixel BCE or MSE against ``labels`` (with ``labels`` only).
        sparsity_loss: The sparsity penalty already multiplied by ``sparsity_weight`` (sparse autoencoders only).
        hidden_states: The (possibly corrupted) input, each encoder layer's activations, the code, then each
            decoder layer's activations, ending with the logits (with ``output_hidden_states``).
    """

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    sparsity_loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class AutoencoderPreTrainedModel(PreTrainedModel):
    config_class = AutoencoderConfig
    base_model_prefix = "autoencoder"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        initialize_module(
            module, self.config.initializer, std=self.config.initializer_range, nonlinearity=self.config.activation
        )


class AutoencoderModel(AutoencoderPreTrainedModel):
    """An autoencoder: ``encode`` to a code, ``decode`` back to an image, trained to give back its (clean) input.

    In training mode the configured noise corrupts the input first (a denoising autoencoder); ``labels`` are the
    clean target images, usually the ``pixel_values`` themselves. In eval mode the forward is deterministic.
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        self.encoder = AutoencodingEncoder(config)
        self.to_latent = nn.Linear(self.encoder.output_size, config.latent_dim)
        # The code's activation (see AutoencoderConfig): KL sparsity reads it as a firing rate in (0, 1).
        if config.sparsity == "kl":
            self.latent_activation = nn.Sigmoid()
        elif config.sparsity == "l1":
            self.latent_activation = ACT2FN[config.activation]
        else:
            self.latent_activation = nn.Identity()
        self.decoder = AutoencodingDecoder(config)
        self.post_init()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.num_channels, self.config.image_size, self.config.image_size)

    def corrupt(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The configured noise applied to images in [0, 1] (what training feeds the encoder), in any mode.

        Useful to show what a denoising autoencoder undoes: ``model.decode(model.encode(model.corrupt(x)))``.
        """
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        return corrupt_images(pixel_values, self.config.noise_type, self.config.noise_level, generator)

    def _encode(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        features, states = self.encoder(pixel_values)  # (B, features)
        return self.latent_activation(self.to_latent(features)), states  # (B, latent_dim)

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The code of images in [0, 1]: (batch, latent_dim). No noise is added."""
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        return self._encode(pixel_values)[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (batch, C, H, W) from codes (batch, latent_dim)."""
        check_float_tensor("latents", latents, (self.config.latent_dim,), str(self.config.latent_dim))
        return torch.sigmoid(self.decoder(latents)[0])

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AutoencoderOutput | tuple:
        """Reconstruct ``pixel_values`` (in [0, 1]); with ``labels`` (the clean targets, in [0, 1] for BCE) also
        the loss. ``generator`` seeds the training-mode corruption."""
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)
        if labels is not None:
            check_target_images("labels", labels, self.image_shape, self.config.reconstruction_loss == "bce")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        inputs = pixel_values
        if self.training:
            inputs = corrupt_images(pixel_values, self.config.noise_type, self.config.noise_level, generator)
        latents, encoder_states = self._encode(inputs)
        logits, decoder_states = self.decoder(latents)  # (B, C, H, W)
        reconstruction = torch.sigmoid(logits)

        sparsity_loss = None
        if self.config.sparsity != "none":
            penalty = sparsity_penalty(latents, self.config.sparsity, self.config.sparsity_target)
            sparsity_loss = self.config.sparsity_weight * penalty
        loss = recon_loss = None
        if labels is not None:
            recon_loss = reconstruction_loss(logits, labels.to(logits.dtype), self.config.reconstruction_loss)
            loss = recon_loss if sparsity_loss is None else recon_loss + sparsity_loss
        hidden_states = (inputs, *encoder_states, latents, *decoder_states) if output_hidden_states else None
        output = AutoencoderOutput(
            loss=loss,
            reconstruction=reconstruction,
            latents=latents,
            reconstruction_loss=recon_loss,
            sparsity_loss=sparsity_loss,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()
