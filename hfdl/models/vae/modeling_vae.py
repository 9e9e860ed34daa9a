"""The variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes", 2014) of Deep Learning Mastery,
ch. 8, with the importance-weighted bound of Burda, Grosse & Salakhutdinov (2016) as its likelihood estimate.

    pixel_values (B, C, H, W) in [0, 1] -> encoder -> mean, logvar (B, D) -> z = mean + exp(logvar / 2) * eps
    -> decoder -> logits (B, C, H, W) -> p(x|z): Bernoulli(sigmoid(logits)) or N(sigmoid(logits), decoder_std**2)

Every quantity is in nats per image: log-likelihoods are summed over pixels, KL divergences over latent dimensions.
This file imports only torch, transformers, the standard library and its siblings, so it runs as Hub remote code
without hfdl installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_vae import VAEConfig
from .hfdl_autoencoding import AutoencodingDecoder, AutoencodingEncoder, check_target_images
from .hfdl_utils import check_float_tensor, check_image_tensor, check_positive_int, initialize_module

LOG_2PI = math.log(2 * math.pi)
#: Decoder output values per chunk of :meth:`VAEModel.iwae_bound` (64 MiB of float32 logits): k importance samples
#: of a whole test batch would not fit in memory at once.
IWAE_CHUNK_VALUES = 2**24


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) per example, in closed form (Kingma & Welling, appendix B):
    ``0.5 * sum(mean**2 + exp(logvar) - 1 - logvar)`` over the latent dimensions; shape (batch,)."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)


@dataclass
class VAEOutput(ModelOutput):
    """What a VAE's forward returns (losses in nats per image, averaged over the batch).

    Args:
        loss: ``reconstruction_loss + beta * kl`` (with ``labels`` only).
        reconstruction: The decoder's mean (batch, C, H, W) in [0, 1], for a sampled z in training mode and for the
            posterior mean in eval mode (deterministic).
        latent_mean: The posterior's mean (batch, latent_dim).
        latent_logvar: The posterior's log-variance (batch, latent_dim).
        latents: z: a sample of the posterior in training mode or with ``labels``, else its mean.
        reconstruction_loss: ``-log p(labels | z)``, summed over pixels, averaged over the batch (with ``labels``).
        kl: ``KL(q(z|x) || p(z))`` summed over latent dimensions, averaged over the batch.
        hidden_states: Each encoder layer's activations, z, then each decoder layer's activations, ending with the
            logits (with ``output_hidden_states``).
    """

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    latent_mean: torch.Tensor | None = None
    latent_logvar: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class VAEPreTrainedModel(PreTrainedModel):
    config_class = VAEConfig
    base_model_prefix = "vae"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        initialize_module(
            module, self.config.initializer, std=self.config.initializer_range, nonlinearity=self.config.activation
        )


class VAEModel(VAEPreTrainedModel):
    """A VAE: ``encode`` to a posterior, ``decode`` z to an image, ``sample`` from the prior, and ``elbo`` /
    ``iwae_bound`` to measure log p(x) in nats.

    Random methods take ``generator`` (a ``torch.Generator``; ``None`` uses the global RNG) and draw all their noise
    from it on the model's device, so the same seed gives the same result, bit for bit, on CPU.
    """

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        self.encoder = AutoencodingEncoder(config)
        self.latent_mean = nn.Linear(self.encoder.output_size, config.latent_dim)
        self.latent_logvar = nn.Linear(self.encoder.output_size, config.latent_dim)
        self.decoder = AutoencodingDecoder(config)
        self.post_init()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.num_channels, self.config.image_size, self.config.image_size)

    # ----------------------------------------------------------------------------------------- building blocks
    def _check_images(self, pixel_values: torch.Tensor) -> None:
        check_image_tensor(pixel_values, self.config.num_channels, self.config.image_size)

    def _check_targets(self, name: str, target: torch.Tensor) -> None:
        check_target_images(name, target, self.image_shape, self.config.decoder_distribution == "bernoulli")

    def _encode(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        features, states = self.encoder(pixel_values)  # (B, features)
        return self.latent_mean(features), self.latent_logvar(features), states  # (B, D) each

    def _standard_normal(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype)

    def _reparameterize(
        self, mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """z = mean + std * eps, eps ~ N(0, I): a sample of q(z|x) that gradients flow through to mean and logvar."""
        return mean + torch.exp(0.5 * logvar) * self._standard_normal(tuple(mean.shape), generator)

    def _log_likelihood(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log p(target | z) from the decoder's logits, summed over pixels: shape (batch,)."""
        if self.config.decoder_distribution == "bernoulli":
            per_pixel = -nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            std = self.config.decoder_std
            per_pixel = -0.5 * ((target - torch.sigmoid(logits)) / std).square() - math.log(std) - 0.5 * LOG_2PI
        return per_pixel.flatten(1).sum(dim=1)

    # ----------------------------------------------------------------------------------------- public API
    def encode(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z|x) of images in [0, 1]: ``(mean, logvar)``, each (batch, latent_dim)."""
        self._check_images(pixel_values)
        mean, logvar, _ = self._encode(pixel_values)
        return mean, logvar

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's mean for latents (batch, latent_dim): images (batch, C, H, W) in [0, 1]."""
        check_float_tensor("latents", latents, (self.config.latent_dim,), str(self.config.latent_dim))
        return torch.sigmoid(self.decoder(latents)[0])

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num_samples`` images in [0, 1] (num_samples, C, H, W): the decoder's mean at z ~ N(0, I)."""
        check_positive_int("num_samples", num_samples)
        return self.decode(self._standard_normal((num_samples, self.config.latent_dim), generator))

    def elbo(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound of each image, in nats: ``log p(x|z) - KL(q(z|x) || p(z))`` with one z ~ q(z|x)
        (the KL in closed form, and with weight 1 whatever ``beta``); shape (batch,). Differentiable."""
        self._check_images(pixel_values)
        self._check_targets("pixel_values", pixel_values)
        mean, logvar, _ = self._encode(pixel_values)
        logits = self.decoder(self._reparameterize(mean, logvar, generator))[0]
        return self._log_likelihood(logits, pixel_values) - gaussian_kl(mean, logvar)

    @torch.no_grad()
    def iwae_bound(
        self,
        pixel_values: torch.Tensor,
        num_samples: int = 1000,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        """An estimate of log p(x) per image, in nats (Burda et al., 2016): the log-mean-exp of ``num_samples``
        importance weights ``p(x|z_i) p(z_i) / q(z_i|x)``, z_i ~ q(z|x); shape (batch,).

        It is a lower bound in expectation that tightens as ``num_samples`` (k) grows; k = 1 is the ELBO in
        expectation (with a sampled rather than closed-form KL). The test NLL of a VAE is ``-iwae_bound(x, 1000)``.

        The k samples are decoded ``chunk_size`` at a time (default: as many as keep a chunk's logits within
        ``IWAE_CHUNK_VALUES`` values), so memory stays bounded. The noise is drawn one importance sample at a time,
        in order, so the chunk size changes how the work is split, not which z's are drawn: the same generator state
        gives the same estimate for any ``chunk_size`` (up to float rounding).
        """
        self._check_images(pixel_values)
        self._check_targets("pixel_values", pixel_values)
        check_positive_int("num_samples", num_samples)
        batch_size = pixel_values.shape[0]
        if chunk_size is None:
            chunk_size = max(1, IWAE_CHUNK_VALUES // max(1, batch_size * math.prod(self.image_shape)))
        check_positive_int("chunk_size", chunk_size)
        mean, logvar, _ = self._encode(pixel_values)  # (B, D)
        std = torch.exp(0.5 * logvar)
        log_weights = []
        for start in range(0, num_samples, chunk_size):
            count = min(chunk_size, num_samples - start)
            eps = torch.stack([self._standard_normal(tuple(mean.shape), generator) for _ in range(count)])  # (k, B, D)
            z = mean + std * eps  # (k, B, D)
            logits = self.decoder(z.flatten(0, 1))[0]  # (k * B, C, H, W)
            target = pixel_values.expand(count, *pixel_values.shape).flatten(0, 1)  # (k * B, C, H, W)
            log_p_x_given_z = self._log_likelihood(logits, target).view(count, batch_size)
            log_p_z = -0.5 * (z.square() + LOG_2PI).sum(dim=-1)  # (k, B)
            log_q_z = -0.5 * (eps.square() + logvar + LOG_2PI).sum(dim=-1)  # log N(z; mean, std**2), (k, B)
            log_weights.append(log_p_x_given_z + log_p_z - log_q_z)
        return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(num_samples)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> VAEOutput | tuple:
        """Encode, sample z, decode; with ``labels`` (the target images, usually ``pixel_values``) also the loss
        ``mean over the batch of (-log p(labels|z) + beta * KL)``, in nats per image.

        In eval mode ``reconstruction`` decodes the posterior mean (deterministic), while the loss still uses a
        sampled z (it is the training objective, not a reconstruction error). ``generator`` seeds z.
        """
        self._check_images(pixel_values)
        if labels is not None:
            self._check_targets("labels", labels)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        mean, logvar, encoder_states = self._encode(pixel_values)
        sampled = self.training or labels is not None
        latents = self._reparameterize(mean, logvar, generator) if sampled else mean
        sample_logits, decoder_states = self.decoder(latents)
        logits = sample_logits
        if not self.training and sampled:  # eval with labels: the loss's z, the posterior mean's reconstruction
            logits, decoder_states = self.decoder(mean)
        reconstruction = torch.sigmoid(logits)

        kl = gaussian_kl(mean, logvar).mean()
        loss = recon_loss = None
        if labels is not None:
            recon_loss = -self._log_likelihood(sample_logits, labels.to(sample_logits.dtype)).mean()
            loss = recon_loss + self.config.beta * kl
        hidden_states = (*encoder_states, latents, *decoder_states) if output_hidden_states else None
        output = VAEOutput(
            loss=loss,
            reconstruction=reconstruction,
            latent_mean=mean,
            latent_logvar=logvar,
            latents=latents,
            reconstruction_loss=recon_loss,
            kl=kl,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()
