"""Generative adversarial networks of Deep Learning Mastery, ch. 8: one model that owns a generator G and a
discriminator D, as an MLP (Goodfellow et al., 2014) or a DCGAN (Radford et al., 2016), unconditional or
class-conditional (Mirza & Osindero, 2014).

G maps noise z ~ N(0, I) (and a class, when conditional) to an image in [-1, 1]; D maps an image in [-1, 1] (and
the class) to one logit, "real" when positive. The two are plain ``nn.Module`` attributes (``model.generator``,
``model.discriminator``) so a training loop can give each its own optimizer and ``accelerator.prepare`` both; the
model's ``forward`` runs G only (what the Hub, the exporters and the pipelines call), and has no loss: the
adversarial losses need both networks and belong to the recipe (``recipes/train_gan.py``).

How a conditional model takes the class:

* G, both bodies: a learned class embedding concatenated to the noise (Mirza & Osindero fed y beside z).
* MLP D: the same, concatenated to the flattened image (as Mirza & Osindero).
* DCGAN D: a projection term (Miyato & Koyama, 2018), ``logit = w . h(x) + b + e_y . h(x)`` with ``h(x)`` the
  flattened last feature map and ``e_y`` a learned per-class vector, i.e. a class-specific output layer. Chosen over
  concatenating one-hot label maps to the input because it follows from the form of the optimal discriminator (a
  log-likelihood ratio whose class-dependent part is linear in the features), keeps every convolution the same as
  the unconditional one, costs no extra input channels, and was found to give better class fidelity than input
  concatenation (Miyato & Koyama, 2018, Sec. 5); it also combines cleanly with spectral norm.

This file imports only torch, transformers, the standard library and its siblings, so it runs as Hub remote code
without hfdl installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_gan import GANConfig, dcgan_start_side
from .hfdl_utils import check_float_tensor, check_image_tensor, check_positive_int, init, initialize_weight


@dataclass
class GANOutput(ModelOutput):
    """Output of :class:`GANModel`: generated ``images`` in [-1, 1], (batch, num_channels, image_size, image_size),
    and with ``output_hidden_states`` the generator's activations (its input noise, each layer's output, the
    images)."""

    images: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


# --------------------------------------------------------------------------------------------- input checks
def check_class_labels(class_labels: object, num_classes: int, batch_size: int) -> None:
    """``class_labels`` must be absent for an unconditional model and, for a conditional one, an integer tensor of
    shape (batch_size,) with values in [0, num_classes); raise ``ValueError`` saying what is allowed otherwise."""
    if num_classes == 0:
        if class_labels is not None:
            raise ValueError(
                "This GAN is unconditional (`num_classes`=0) and takes no `class_labels`; pass class_labels=None, or "
                "build a conditional model with num_classes > 0."
            )
        return
    allowed = f"integers in [0, {num_classes}) of shape (batch_size,) = ({batch_size},)"
    if class_labels is None:
        raise ValueError(f"This GAN is conditional (`num_classes`={num_classes}): pass `class_labels`, {allowed}.")
    if not isinstance(class_labels, torch.Tensor):
        raise ValueError(f"`class_labels` must be a torch.Tensor of {allowed}, got {type(class_labels).__name__}.")
    if class_labels.is_floating_point() or class_labels.is_complex() or class_labels.dtype == torch.bool:
        raise ValueError(f"`class_labels` must hold {allowed}, got dtype {class_labels.dtype}.")
    if tuple(class_labels.shape) != (batch_size,):
        raise ValueError(f"`class_labels` must hold {allowed}, got shape {tuple(class_labels.shape)}.")
    # The range test reads the labels' values, which an exported graph cannot branch on (torch.export); exported
    # graphs leave it to their caller (hfdl's onnxruntime pipeline checks it).
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
    if batch_size and not exporting and (class_labels.min() < 0 or class_labels.max() >= num_classes):
        raise ValueError(
            f"`class_labels` must hold {allowed}; got values from {int(class_labels.min())} to "
            f"{int(class_labels.max())}."
        )


def check_latents(latents: object, latent_dim: int) -> None:
    """``latents`` must be floats of shape (batch_size, latent_dim)."""
    check_float_tensor("latents", latents, (latent_dim,), str(latent_dim))


class GANClassEmbedding(nn.Embedding):
    """A learned code per class, concatenated to an input (G's noise, the MLP discriminator's pixels).

    Its own type so that it is initialised N(0, 1), on the scale of the noise it sits beside, not with the small
    std of the weights; and so that spectral norm, which bounds layers, leaves it alone (it is an input, not a
    layer: the layer that reads it is normalised).
    """


def concat_class_embedding(
    inputs: torch.Tensor, embedding: GANClassEmbedding | None, class_labels: torch.Tensor | None
) -> torch.Tensor:
    """``[inputs, embedding(class_labels)]`` along the features (batch, features + class_embedding_dim); the inputs
    as they are for an unconditional network."""
    if embedding is None:
        return inputs
    return torch.cat([inputs, embedding(class_labels).to(inputs.dtype)], dim=1)


def apply_spectral_norm(discriminator: nn.Module) -> None:
    """Wrap every Linear/Conv weight of ``discriminator`` (and a projection embedding) in spectral normalisation.

    The weight used in the forward is ``W / sigma(W)``, with ``sigma`` the largest singular value of ``W`` reshaped
    to (out, in * k * k), estimated by one power iteration per training forward (Miyato et al., 2018). The
    estimate's vectors ``u`` and ``v`` are buffers saved with the weights, so a reloaded D computes bit for bit the
    same logits. Class embeddings concatenated to the input are inputs, not layers, and are left alone.
    """
    for module in list(discriminator.modules()):
        if isinstance(module, (nn.Linear, nn.Conv2d)) or (
            isinstance(module, nn.Embedding) and not isinstance(module, GANClassEmbedding)
        ):
            spectral_norm(module)


# --------------------------------------------------------------------------------------------- MLP GAN
class GANMLPGenerator(nn.Module):
    """Goodfellow et al.'s generator: ``z [+ class embedding] -> [Linear -> ReLU] x N -> Linear -> tanh``, reshaped
    to an image."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.latent_dim = config.latent_dim
        self.num_classes = config.num_classes
        self.image_shape = (config.num_channels, config.image_size, config.image_size)
        self.class_embedding = (
            GANClassEmbedding(config.num_classes, config.class_embedding_dim) if config.num_classes else None
        )
        sizes = [config.latent_dim + (config.class_embedding_dim if config.num_classes else 0)]
        sizes += config.generator_hidden_sizes
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()) for i in range(len(sizes) - 1)
        )
        self.output = nn.Linear(sizes[-1], config.num_channels * config.image_size**2)

    def activations(self, latents: torch.Tensor, class_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """``(latents, each hidden layer's output, images)``; the images are the last item."""
        check_latents(latents, self.latent_dim)
        check_class_labels(class_labels, self.num_classes, latents.shape[0])
        hidden_states = concat_class_embedding(latents, self.class_embedding, class_labels)
        all_hidden_states = [latents]
        for layer in self.layers:
            hidden_states = layer(hidden_states)  # (batch, width)
            all_hidden_states.append(hidden_states)
        images = torch.tanh(self.output(hidden_states)).view(-1, *self.image_shape)  # (batch, C, H, W)
        return (*all_hidden_states, images)

    def forward(self, latents: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1], (batch, num_channels, image_size, image_size)."""
        return self.activations(latents, class_labels)[-1]


class GANMLPDiscriminator(nn.Module):
    """Goodfellow et al.'s discriminator: ``flatten(x) [+ class embedding] -> [Linear -> LeakyReLU -> dropout] x N ->
    Linear``, one logit per image (the paper's maxout units are replaced by LeakyReLU)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.num_channels = config.num_channels
        self.image_size = config.image_size
        self.num_classes = config.num_classes
        self.class_embedding = (
            GANClassEmbedding(config.num_classes, config.class_embedding_dim) if config.num_classes else None
        )
        sizes = [config.num_channels * config.image_size**2 + (config.class_embedding_dim if config.num_classes else 0)]
        sizes += config.discriminator_hidden_sizes
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(sizes[i], sizes[i + 1]),
                nn.LeakyReLU(config.leaky_relu_slope),
                nn.Dropout(config.discriminator_dropout),
            )
            for i in range(len(sizes) - 1)
        )
        self.output = nn.Linear(sizes[-1], 1)
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, pixel_values: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Real/fake logits (batch,) for images in [-1, 1]."""
        check_image_tensor(pixel_values, self.num_channels, self.image_size)
        check_class_labels(class_labels, self.num_classes, pixel_values.shape[0])
        hidden_states = concat_class_embedding(pixel_values.flatten(1), self.class_embedding, class_labels)
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return self.output(hidden_states).squeeze(1)


# --------------------------------------------------------------------------------------------- DCGAN
def dcgan_padding(kernel_size: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make a stride-2 (transposed) convolution halve (double) the side exactly.

    Conv2d: ``floor((s + 2p - k) / 2) + 1 = s / 2`` for even ``s`` with ``p = (k - 1) // 2``; ConvTranspose2d:
    ``(s - 1) * 2 - 2p + k + output_padding = 2s`` needs ``output_padding = 2 - k + 2p`` (1 for odd k, 0 for even).
    """
    padding = (kernel_size - 1) // 2
    return padding, 2 - kernel_size + 2 * padding


class DCGANGeneratorBlock(nn.Module):
    """``ConvTranspose2d(stride 2) -> BatchNorm -> ReLU``: doubles the side. No bias: BatchNorm's shift replaces it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        padding, output_padding = dcgan_padding(kernel_size)
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=2, padding=padding, output_padding=output_padding, bias=False
        )
        self.norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(hidden_states)))


class DCGANGenerator(nn.Module):
    """Radford et al.'s generator: project z to a ``start x start`` map and reshape, then fractionally-strided
    convolutions that double the side and halve the channels, BatchNorm + ReLU after each, tanh at the output.

    At 64x64 with ``generator_channels=128`` this is the paper's Figure 1: z -> 4x4x1024 -> 8x8x512 -> 16x16x256 ->
    32x32x128 -> 64x64x3. At 28x28 (MNIST) with 64: z -> 7x7x128 -> 14x14x64 -> 28x28x1.
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.latent_dim = config.latent_dim
        self.num_classes = config.num_classes
        self.start_side, num_upsamplings = dcgan_start_side(config.image_size)
        # Widths from the projection to the last hidden map: base * 2**(n-1), ..., base * 2, base.
        widths = [config.generator_channels * 2 ** (num_upsamplings - 1 - i) for i in range(num_upsamplings)]
        self.class_embedding = (
            GANClassEmbedding(config.num_classes, config.class_embedding_dim) if config.num_classes else None
        )
        in_features = config.latent_dim + (config.class_embedding_dim if config.num_classes else 0)
        # The "project and reshape" first layer: a matrix multiplication whose result is read as a feature map.
        self.projection = nn.Linear(in_features, widths[0] * self.start_side**2, bias=False)
        self.projection_norm = nn.BatchNorm2d(widths[0])
        self.blocks = nn.ModuleList(
            DCGANGeneratorBlock(widths[i], widths[i + 1], config.kernel_size) for i in range(len(widths) - 1)
        )
        padding, output_padding = dcgan_padding(config.kernel_size)
        # The output layer keeps its bias (no BatchNorm follows it, as the paper prescribes for G's output).
        self.output = nn.ConvTranspose2d(
            widths[-1], config.num_channels, config.kernel_size, 2, padding=padding, output_padding=output_padding
        )

    def activations(self, latents: torch.Tensor, class_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """``(latents, the projected map, each block's output, images)``; the images are the last item."""
        check_latents(latents, self.latent_dim)
        check_class_labels(class_labels, self.num_classes, latents.shape[0])
        inputs = concat_class_embedding(latents, self.class_embedding, class_labels)
        side = self.start_side
        hidden_states = self.projection(inputs).view(inputs.shape[0], -1, side, side)  # (batch, width, side, side)
        hidden_states = torch.relu(self.projection_norm(hidden_states))
        all_hidden_states = [latents, hidden_states]
        for block in self.blocks:
            hidden_states = block(hidden_states)  # (batch, width / 2, 2 side, 2 side)
            all_hidden_states.append(hidden_states)
        images = torch.tanh(self.output(hidden_states))  # (batch, C, image_size, image_size)
        return (*all_hidden_states, images)

    def forward(self, latents: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1], (batch, num_channels, image_size, image_size)."""
        return self.activations(latents, class_labels)[-1]


class DCGANDiscriminatorBlock(nn.Module):
    """``Conv2d(stride 2) -> [BatchNorm] -> LeakyReLU``: halves the side; strided convolutions replace pooling so
    the network learns its own downsampling. The bias is kept only where no BatchNorm follows."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool, slope: float) -> None:
        super().__init__()
        padding, _ = dcgan_padding(kernel_size)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=2, padding=padding, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.activation = nn.LeakyReLU(slope)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(hidden_states)))


class DCGANDiscriminator(nn.Module):
    """Radford et al.'s discriminator: stride-2 convolutions doubling the channels (BatchNorm on every layer but the
    first, which sees the raw pixels; LeakyReLU(0.2)), then the last map flattened into one logit. With
    ``spectral_norm`` there is no BatchNorm at all: spectral norm already controls the scale of every layer, and
    batch statistics would make D's output for one image depend on the rest of its batch.

    A conditional D adds the projection term ``e_y . h(x)`` (see the module docstring).
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.num_channels = config.num_channels
        self.image_size = config.image_size
        self.num_classes = config.num_classes
        start_side, num_downsamplings = dcgan_start_side(config.image_size)
        widths = [config.num_channels] + [config.discriminator_channels * 2**i for i in range(num_downsamplings)]
        self.blocks = nn.ModuleList(
            DCGANDiscriminatorBlock(
                widths[i],
                widths[i + 1],
                config.kernel_size,
                batch_norm=i > 0 and not config.spectral_norm,
                slope=config.leaky_relu_slope,
            )
            for i in range(num_downsamplings)
        )
        features = widths[-1] * start_side**2
        self.output = nn.Linear(features, 1)
        self.class_projection = nn.Embedding(config.num_classes, features) if config.num_classes else None
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, pixel_values: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Real/fake logits (batch,) for images in [-1, 1]."""
        check_image_tensor(pixel_values, self.num_channels, self.image_size)
        check_class_labels(class_labels, self.num_classes, pixel_values.shape[0])
        hidden_states = pixel_values
        for block in self.blocks:
            hidden_states = block(hidden_states)  # (batch, 2 width, side / 2, side / 2)
        features = hidden_states.flatten(1)  # (batch, width * start_side**2)
        logits = self.output(features).squeeze(1)
        if self.class_projection is not None:
            logits = logits + (self.class_projection(class_labels) * features).sum(dim=1)
        return logits


# --------------------------------------------------------------------------------------------- the model
class GANPreTrainedModel(PreTrainedModel):
    config_class = GANConfig
    base_model_prefix = "gan"
    main_input_name = "latents"

    def _init_weights(self, module: nn.Module) -> None:
        # Radford et al.: "All weights were initialized from a zero-centered Normal distribution with standard
        # deviation 0.02" (the default `normal` scheme), BatchNorm scales around 1 with the same spread. The other
        # schemes of course ch. 4 are there to compare. Concatenated class codes start N(0, 1) like the noise.
        config = self.config
        if isinstance(module, GANClassEmbedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        elif isinstance(module, parametrize.ParametrizationList):
            # A spectrally normalised weight: the parameter is `original`, held here (transformers visits this module
            # on its own, and would skip a bias-free parametrized layer such as the projection embedding).
            initialize_weight(module.original, config.initializer, std=config.initializer_range)
            self._refresh_spectral_norm(module[0], module.original)
        elif isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            if not parametrize.is_parametrized(module, "weight"):
                initialize_weight(module.weight, config.initializer, std=config.initializer_range)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.normal_(module.weight, mean=1.0, std=config.initializer_range)
            init.zeros_(module.bias)
            # Buffers too: `from_pretrained` builds on the meta device, so they need real starting values.
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    @staticmethod
    def _refresh_spectral_norm(normalisation: nn.Module, weight: torch.Tensor, iterations: int = 15) -> None:
        """Re-estimate the singular vectors ``u, v`` of a freshly initialised weight (torch estimated them for the
        weight the layer had before ``_init_weights`` replaced it), so a new D is normalised from its first call.
        Written through ``init.copy_``, which leaves vectors loaded from a checkpoint untouched."""
        with torch.no_grad():
            matrix = weight.movedim(normalisation.dim, 0).flatten(1)  # (out, in * k * k)
            u, v = normalisation._u.clone(), normalisation._v.clone()
            for _ in range(iterations):
                u = nn.functional.normalize(matrix @ v, dim=0, eps=normalisation.eps)
                v = nn.functional.normalize(matrix.T @ u, dim=0, eps=normalisation.eps)
            if hasattr(init, "copy_"):
                init.copy_(normalisation._u, u)
                init.copy_(normalisation._v, v)
            else:  # transformers 4.x (torch.nn.init has no copy_): it only initialises modules it did not load
                normalisation._u.copy_(u)
                normalisation._v.copy_(v)


class GANModel(GANPreTrainedModel):
    """A GAN as one Hub model: ``generator`` (noise [+ class] -> image in [-1, 1]) and ``discriminator`` (image in
    [-1, 1] [+ class] -> logit), an MLP GAN or a DCGAN by ``config.architecture``, conditional when
    ``config.num_classes > 0``.

    ``forward`` runs the generator; ``sample`` draws images in [0, 1] from a seed; ``discriminate`` scores images.
    Training needs both networks and two optimizers, so the losses live in the recipe. With the discriminator's
    logits ``d``, the usual ones are ``D: softplus(-d_real) + softplus(d_fake)`` (binary cross-entropy) and the
    non-saturating ``G: softplus(-d_fake)`` (Goodfellow et al., 2014, Sec. 3).
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        if config.architecture == "mlp":
            self.generator = GANMLPGenerator(config)
            self.discriminator = GANMLPDiscriminator(config)
        else:
            self.generator = DCGANGenerator(config)
            self.discriminator = DCGANDiscriminator(config)
        self.post_init()

    def forward(
        self,
        latents: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> GANOutput | tuple:
        """Generate images in [-1, 1] from ``latents`` (batch, latent_dim) and, for a conditional model,
        ``class_labels`` (batch,) integers in [0, num_classes)."""
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        activations = self.generator.activations(latents, class_labels)
        images = activations[-1]
        hidden_states = activations if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (images, hidden_states) if v is not None)
        return GANOutput(images=images, hidden_states=hidden_states)

    def sample_latents(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise z ~ N(0, I), (num_samples, latent_dim) float32 on the model's device, drawn from ``generator``
        (a ``torch.Generator`` on that device; ``None`` uses the global RNG)."""
        check_positive_int("num_samples", num_samples)
        shape = (num_samples, self.config.latent_dim)
        return torch.randn(shape, generator=generator, device=self.device, dtype=torch.float32)

    def class_label_tensor(self, class_labels: int | list[int] | torch.Tensor | None, num_samples: int) -> torch.Tensor:
        """``class_labels`` as an int64 tensor (num_samples,) on the model's device: an int asks every sample for
        that class; a list or a tensor gives one class per sample. ``None`` stays ``None``."""
        if class_labels is None or isinstance(class_labels, torch.Tensor):
            labels = class_labels
        elif isinstance(class_labels, int) and not isinstance(class_labels, bool):
            labels = torch.full((num_samples,), class_labels, dtype=torch.long)
        elif isinstance(class_labels, (list, tuple)) and all(
            isinstance(label, int) and not isinstance(label, bool) for label in class_labels
        ):
            labels = torch.tensor(list(class_labels), dtype=torch.long)
        else:
            raise ValueError(
                "`class_labels` must be an int (one class for every sample), a list of ints or an integer tensor "
                f"of shape ({num_samples},), with values in [0, {self.config.num_classes}); got {class_labels!r}."
            )
        check_class_labels(labels, self.config.num_classes, num_samples)
        return None if labels is None else labels.to(self.device)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        generator: torch.Generator | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw ``num_samples`` images in [0, 1], (num_samples, num_channels, image_size, image_size) float32.

        The noise comes from ``generator``, so a seed gives the same images bit for bit. ``class_labels`` (required
        iff the model is conditional): an int for all samples, or one class per sample. The generator runs in eval
        mode (BatchNorm uses its running statistics and is not updated), then gets its previous mode back, so
        sampling in the middle of training changes nothing.
        """
        check_positive_int("num_samples", num_samples)
        labels = self.class_label_tensor(class_labels, num_samples)
        latents = self.sample_latents(num_samples, generator=generator).to(self.dtype)
        was_training = self.generator.training
        self.generator.eval()
        try:
            images = self.generator(latents, labels)
        finally:
            self.generator.train(was_training)
        return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def discriminate(self, pixel_values: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's real/fake logits (batch,) for images in [-1, 1] (``2 * x - 1`` for x in [0, 1])."""
        return self.discriminator(pixel_values, class_labels)


__all__ = ["GANModel", "GANOutput", "GANPreTrainedModel"]
