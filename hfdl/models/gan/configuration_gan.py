"""Configuration of the generative adversarial networks of Deep Learning Mastery, ch. 8: the MLP GAN (Goodfellow et
al., 2014), DCGAN (Radford et al., 2016) and their class-conditional versions (Mirza & Osindero, 2014)."""

from __future__ import annotations

from transformers import PretrainedConfig

from .hfdl_utils import (
    INITIALIZER_NAMES,
    check_bool,
    check_choice,
    check_head_kwargs,
    check_non_negative_int,
    check_positive_int,
    check_positive_int_list,
    check_positive_number,
    check_probability,
)

GAN_ARCHITECTURES = ("mlp", "dcgan")
#: DCGAN's generator starts from a feature map of this many pixels a side (4 in the paper) and doubles it.
DCGAN_START_SIDES = (4, 5, 6, 7)


def dcgan_start_side(image_size: int) -> tuple[int, int]:
    """``(start_side, num_upsamplings)`` with ``image_size == start_side * 2**num_upsamplings``.

    Every DCGAN layer changes the side by exactly a factor of two (stride 2, no pooling), so the image side must be a
    4-7 pixel start doubled at least once: 8, 10, 12, 14, 16, 20, 24, 28 (7 -> 14 -> 28), 32, ..., 64 (4 -> 8 -> 16
    -> 32 -> 64). Raises ``ValueError`` naming ``image_size`` for any other side.
    """
    side, num_upsamplings, path = image_size, 0, [image_size]
    while side > DCGAN_START_SIDES[-1] and side % 2 == 0:
        side, num_upsamplings = side // 2, num_upsamplings + 1
        path.append(side)
    if side not in DCGAN_START_SIDES or num_upsamplings == 0:
        allowed = sorted({start * 2**k for start in DCGAN_START_SIDES for k in range(1, 5)})
        raise ValueError(
            f"`image_size`={image_size!r} does not fit the DCGAN body: its stride-2 layers halve the side exactly, "
            f"so it must be 4, 5, 6 or 7 times a power of two, at least 8 ({', '.join(map(str, allowed[:12]))}, ...); "
            f"halving {image_size} gives {' -> '.join(map(str, path))}. Use architecture='mlp' for other sizes."
        )
    return side, num_upsamplings


class GANConfig(PretrainedConfig):
    """A generator G (noise -> image in [-1, 1]) and a discriminator D (image -> one real/fake logit), in one model.

    ``architecture="mlp"`` is the network of Goodfellow et al. (2014): fully connected G with ReLU and a tanh output;
    fully connected D with LeakyReLU and dropout (the paper's D used maxout units, which LeakyReLU replaces here as in
    most later MLP GANs). ``architecture="dcgan"`` follows Radford et al. (2016): G projects the noise to a small
    ``start_side x start_side`` map with many channels, then fractionally-strided convolutions double the side and
    halve the channels (BatchNorm + ReLU, tanh at the output); D mirrors it with stride-2 convolutions (BatchNorm on
    every layer but the first, LeakyReLU(0.2), no pooling) and one linear logit on the flattened last map.

    ``num_classes > 0`` makes both networks conditional (Mirza & Osindero, 2014); see :mod:`.modeling_gan` for how
    each body takes the class.

    Args:
        image_size: Side of the square images. Any size for ``mlp``; for ``dcgan`` 4-7 times a power of two, at least 8
            (28 for MNIST: 7 -> 14 -> 28; 64 for the paper's faces and bedrooms: 4 -> 8 -> 16 -> 32 -> 64).
        num_channels: Image channels (1 for MNIST, 3 for RGB).
        latent_dim: Size of the noise vector z, drawn from N(0, I) (the DCGAN paper drew it uniformly; a Gaussian is
            what nearly every later GAN uses and what the other generative models of hfdl use).
        architecture: ``mlp`` or ``dcgan``.
        generator_hidden_sizes: Widths of the MLP generator's hidden layers (``mlp`` only).
        discriminator_hidden_sizes: Widths of the MLP discriminator's hidden layers (``mlp`` only).
        generator_channels: DCGAN base width: channels of G's last hidden map; each earlier map doubles it (128 gives
            the paper's 1024 -> 512 -> 256 -> 128 at 64x64).
        discriminator_channels: DCGAN base width of D: channels of its first map, doubling at each stride-2 layer.
        kernel_size: Side of the DCGAN kernels (5 in the paper's Figure 1; 4 in many later implementations). Padding
            ``(kernel_size - 1) // 2`` (and an output padding for odd kernels) keeps every layer an exact factor 2.
        num_classes: 0 for an unconditional GAN; the number of classes of a conditional one.
        class_embedding_dim: Size of the learned class embedding concatenated to G's noise (and, in the MLP, to D's
            flattened image). Unused when ``num_classes == 0``.
        spectral_norm: Wrap every weight of D in spectral normalisation (Miyato et al., 2018), which bounds D's
            Lipschitz constant; D's BatchNorm layers are then dropped, as is usual with spectral norm.
        discriminator_dropout: Dropout after each hidden layer of the MLP discriminator (Goodfellow et al. used
            dropout in D); DCGAN's D has none, as in the paper.
        leaky_relu_slope: Negative slope of D's LeakyReLU (0.2 in the DCGAN paper).
        initializer: Weight init of Linear/Conv layers: ``normal`` N(0, ``initializer_range``) as in the DCGAN paper,
            or ``zeros``, ``xavier_uniform``, ``kaiming_normal`` (the course's ch. 4 schemes). BatchNorm scales are
            always N(1, ``initializer_range``), their shifts zero.
        initializer_range: Standard deviation of the ``normal`` initializer (0.02).
    """

    model_type = "hfdl-gan"

    def __init__(
        self,
        image_size: int = 28,
        num_channels: int = 1,
        latent_dim: int = 64,
        architecture: str = "mlp",
        generator_hidden_sizes: list[int] | tuple[int, ...] = (256, 512, 1024),
        discriminator_hidden_sizes: list[int] | tuple[int, ...] = (1024, 512, 256),
        generator_channels: int = 64,
        discriminator_channels: int = 64,
        kernel_size: int = 5,
        num_classes: int = 0,
        class_embedding_dim: int = 16,
        spectral_norm: bool = False,
        discriminator_dropout: float = 0.3,
        leaky_relu_slope: float = 0.2,
        initializer: str = "normal",
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        check_positive_int("image_size", image_size)
        check_positive_int("num_channels", num_channels)
        check_positive_int("latent_dim", latent_dim)
        check_choice("architecture", architecture, GAN_ARCHITECTURES)
        generator_hidden_sizes = check_positive_int_list("generator_hidden_sizes", generator_hidden_sizes)
        discriminator_hidden_sizes = check_positive_int_list("discriminator_hidden_sizes", discriminator_hidden_sizes)
        check_positive_int("generator_channels", generator_channels)
        check_positive_int("discriminator_channels", discriminator_channels)
        check_positive_int("kernel_size", kernel_size)
        if kernel_size < 2:
            raise ValueError(f"`kernel_size` must be at least 2 (a 1x1 kernel cannot upsample), got {kernel_size!r}.")
        check_non_negative_int("num_classes", num_classes)
        check_positive_int("class_embedding_dim", class_embedding_dim)
        check_bool("spectral_norm", spectral_norm)
        check_probability("discriminator_dropout", discriminator_dropout)
        if isinstance(leaky_relu_slope, bool) or not isinstance(leaky_relu_slope, (int, float)):
            raise ValueError(f"`leaky_relu_slope` must be a number in [0, 1), got {leaky_relu_slope!r}.")
        check_probability("leaky_relu_slope", leaky_relu_slope)
        check_choice("initializer", initializer, INITIALIZER_NAMES)
        check_positive_number("initializer_range", initializer_range)
        check_head_kwargs(kwargs)
        if architecture == "dcgan":
            dcgan_start_side(image_size)  # raises for a side the stride-2 stack cannot reach
        self.image_size = image_size
        self.num_channels = num_channels
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.generator_hidden_sizes = generator_hidden_sizes
        self.discriminator_hidden_sizes = discriminator_hidden_sizes
        self.generator_channels = generator_channels
        self.discriminator_channels = discriminator_channels
        self.kernel_size = kernel_size
        self.num_classes = num_classes
        self.class_embedding_dim = class_embedding_dim
        self.spectral_norm = spectral_norm
        self.discriminator_dropout = float(discriminator_dropout)
        self.leaky_relu_slope = float(leaky_relu_slope)
        self.initializer = initializer
        self.initializer_range = float(initializer_range)
        super().__init__(**kwargs)

    @property
    def is_conditional(self) -> bool:
        """Whether G and D take ``class_labels`` (Mirza & Osindero's conditional GAN)."""
        return self.num_classes > 0
