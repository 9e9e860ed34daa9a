"""Configuration of the autoencoders of Deep Learning Mastery, ch. 7: plain, sparse and denoising, MLP or conv."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_autoencoding import (
    ENCODER_TYPES,
    NOISE_TYPES,
    RECONSTRUCTION_LOSSES,
    SPARSITY_TYPES,
    check_non_negative_number,
)
from .hfdl_utils import (
    ACTIVATION_NAMES,
    INITIALIZER_NAMES,
    check_choice,
    check_head_kwargs,
    check_positive_int,
    check_positive_int_list,
    check_positive_number,
)


class AutoencoderConfig(PretrainedConfig):
    """An encoder to a ``latent_dim`` code and a mirrored decoder back to the image (Hinton & Salakhutdinov, 2006).

    The three autoencoders of the chapter are this one config: a *sparse* autoencoder adds a penalty on the code
    (``sparsity``), a *denoising* one corrupts its input while training (``noise_type``) and learns to give back the
    clean image. Images are in [0, 1], and so is the reconstruction (a sigmoid on the decoder's logits).

    The code layer's activation follows from ``sparsity``: linear for ``none`` (the usual bottleneck, which a
    linear autoencoder would make PCA's subspace); ``activation`` for ``l1`` (with ReLU the L1 penalty drives units
    to exactly 0); a sigmoid for ``kl``, whose penalty reads each unit's mean activation as a firing rate in (0, 1).

    Args:
        image_size: Side of the square input images.
        num_channels: Channels of the input images.
        encoder_type: ``mlp`` (fully connected, widths ``hidden_sizes``) or ``conv`` (3x3 stride-2 convolutions with
            ``conv_channels`` maps; the decoder mirrors them with transposed convolutions).
        hidden_sizes: Widths of the MLP encoder's layers; the decoder uses them reversed. Unused for ``conv``.
        conv_channels: Feature maps of each convolution of the conv encoder. Unused for ``mlp``.
        latent_dim: Size of the code.
        activation: Hidden activation: ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu`` or ``gelu``.
        reconstruction_loss: ``bce`` (binary cross-entropy, pixels as probabilities) or ``mse``; a mean per pixel.
        sparsity: ``none``, ``l1`` (L1 norm of the code) or ``kl`` (KL divergence to ``sparsity_target``).
        sparsity_weight: Weight of the sparsity penalty in the loss.
        sparsity_target: Target mean activation rho of each code unit for ``kl``, in (0, 1).
        noise_type: Input corruption while training: ``none``, ``gaussian`` (std ``noise_level``), ``masking``
            (each value zeroed with probability ``noise_level``) or ``salt_and_pepper`` (each value set to 0 or 1
            with probability ``noise_level``).
        noise_level: Standard deviation (``gaussian``) or probability (``masking``, ``salt_and_pepper``, at most 1).
        initializer: ``zeros``, ``normal`` (N(0, ``initializer_range``)), ``xavier_uniform`` or ``kaiming_normal``.
        initializer_range: Standard deviation of the ``normal`` initializer.
    """

    model_type = "hfdl-autoencoder"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        encoder_type: str = "mlp",
        hidden_sizes: list[int] | tuple[int, ...] = (512, 256),
        conv_channels: list[int] | tuple[int, ...] = (32, 64),
        latent_dim: int = 32,
        activation: str = "relu",
        reconstruction_loss: str = "bce",
        sparsity: str = "none",
        sparsity_weight: float = 1e-3,
        sparsity_target: float = 0.05,
        noise_type: str = "none",
        noise_level: float = 0.0,
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
        check_choice("reconstruction_loss", reconstruction_loss, RECONSTRUCTION_LOSSES)
        check_choice("sparsity", sparsity, SPARSITY_TYPES)
        check_non_negative_number("sparsity_weight", sparsity_weight)
        if not (isinstance(sparsity_target, (int, float)) and not isinstance(sparsity_target, bool)) or not (
            0.0 < sparsity_target < 1.0
        ):
            raise ValueError(f"`sparsity_target` must be a number in (0, 1) (a firing rate), got {sparsity_target!r}.")
        check_choice("noise_type", noise_type, NOISE_TYPES)
        # A probability for masking and salt-and-pepper noise, a standard deviation for Gaussian noise.
        check_non_negative_number("noise_level", noise_level, maximum=None if noise_type == "gaussian" else 1.0)
        check_choice("initializer", initializer, INITIALIZER_NAMES)
        check_positive_number("initializer_range", initializer_range)
        check_head_kwargs(kwargs)
        self.image_size = image_size
        self.num_channels = num_channels
        self.encoder_type = encoder_type
        self.latent_dim = latent_dim
        self.activation = activation
        self.reconstruction_loss = reconstruction_loss
        self.sparsity = sparsity
        self.sparsity_weight = float(sparsity_weight)
        self.sparsity_target = float(sparsity_target)
        self.noise_type = noise_type
        self.noise_level = float(noise_level)
        self.initializer = initializer
        self.initializer_range = float(initializer_range)
        super().__init__(**kwargs)
