"""Configuration of the variational autoencoder (Kingma & Welling, 2014; Deep Learning Mastery, ch. 8)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_autoencoding import ENCODER_TYPES, check_non_negative_number
from .hfdl_utils import (
    ACTIVATION_NAMES,
    INITIALIZER_NAMES,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_int_list,
    check_positive_number,
)

#: p(x|z): ``bernoulli`` (pixels as probabilities, the paper's MNIST model) or ``gaussian`` with a fixed std.
DECODER_DISTRIBUTIONS = ("bernoulli", "gaussian")


class VAEConfig(PretrainedConfig):
    """A Gaussian encoder q(z|x) = N(mean, diag(exp(logvar))), a standard normal prior p(z) and a decoder p(x|z).

    The encoder and decoder bodies are those of hfdl's autoencoders (an MLP or stride-2 convolutions, mirrored);
    two Linear layers on the encoder's features give the posterior's mean and log-variance. Training minimises
    ``-log p(x|z) + beta * KL(q(z|x) || p(z))`` per image, in nats; ``beta=1`` is the VAE's negative ELBO and
    ``beta > 1`` the beta-VAE (Higgins et al., 2017).

    Args:
        image_size: Side of the square input images.
        num_channels: Channels of the input images.
        encoder_type: ``mlp`` (widths ``hidden_sizes``) or ``conv`` (3x3 stride-2 convolutions, ``conv_channels``).
        hidden_sizes: Widths of the MLP encoder's layers; the decoder uses them reversed. Unused for ``conv``.
        conv_channels: Feature maps of each convolution of the conv encoder. Unused for ``mlp``.
        latent_dim: Size of z.
        activation: Hidden activation: ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu`` or ``gelu``.
        decoder_distribution: ``bernoulli`` (the decoder gives each pixel's probability; log-likelihood = minus the
            binary cross-entropy) or ``gaussian`` (the decoder gives each pixel's mean; a density, so its "nats"
            are not comparable with the Bernoulli ones).
        decoder_std: The Gaussian decoder's standard deviation, **fixed** (not learned), the same for every pixel;
            smaller values weigh the reconstruction more against the KL term. Unused for ``bernoulli``.
        beta: Weight of the KL term in the training loss (``elbo`` and ``iwae_bound`` always use 1).
        initializer: ``zeros``, ``normal`` (N(0, ``initializer_range``)), ``xavier_uniform`` or ``kaiming_normal``.
        initializer_range: Standard deviation of the ``normal`` initializer.
    """

    model_type = "hfdl-vae"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        encoder_type: str = "mlp",
        hidden_sizes: list[int] | tuple[int, ...] = (512, 256),
        conv_channels: list[int] | tuple[int, ...] = (32, 64),
        latent_dim: int = 16,
        activation: str = "relu",
        decoder_distribution: str = "bernoulli",
        decoder_std: float = 0.1,
        beta: float = 1.0,
        initializer: str = "kaiming_normal",
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        check_positive_int("image_size", image_size)
        check_positive_int("num_channels", num_channels)
        check_choice("encoder_type", encoder_type, ENCODER_TYPES)
        self.hidden_sizes = check_positive_int_list("hidden_sizes", hidden_sizes)
        self.conv_channels = check_positive_int_list("conv_channels", conv_channels)
        check_positive_int("latent_dim", latent_dim)
        check_choice("activation", activation, ACTIVATION_NAMES)
        check_choice("decoder_distribution", decoder_distribution, DECODER_DISTRIBUTIONS)
        check_positive_number("decoder_std", decoder_std)
        check_non_negative_number("beta", beta)
        check_choice("initializer", initializer, INITIALIZER_NAMES)
        check_positive_number("initializer_range", initializer_range)
        check_head_kwargs(kwargs)
        self.image_size = image_size
        self.num_channels = num_channels
        self.encoder_type = encoder_type
        self.latent_dim = latent_dim
        self.activation = activation
        self.decoder_distribution = decoder_distribution
        self.decoder_std = float(decoder_std)
        self.beta = float(beta)
        self.initializer = initializer
        self.initializer_range = float(initializer_range)
        super().__init__(**kwargs)
