"""What the generative recipes (``recipes/train_autoencoder.py``, ``recipes/train_gan.py``) share and a reader of
them should not have to wade through: data as tensors in the range a model wants, seeded per-step randomness that
survives a resume, the KL-annealing schedule, the GAN losses, the fixed noise of the sample grids, and image grids.

Randomness. A recipe resumed from a checkpoint must draw what the uninterrupted run would have drawn. accelerate's
``save_state`` restores the global generators, which is enough for one process; but under DDP every process starts
from the same seed, so latents drawn from the global generator would be the same on every rank (half the batch
wasted). :func:`step_generator` gives each (purpose, step, process) its own generator instead, seeded from
``(seed, stream, step, process_index)`` with :func:`hfdl.augment.derive_seed`: different on every rank, the same
after a resume, and independent of how many dropout masks were drawn before.

Like :mod:`hfdl.training`, this module imports accelerate, datasets and Pillow only inside the functions that use
them, so ``import hfdl.generative_training`` works with the core dependencies.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .augment import derive_seed

if TYPE_CHECKING:  # for type hints only
    from PIL import Image

#: Streams of :func:`step_generator`, apart from :mod:`hfdl.augment`'s (1: per-sample augmentation, 2: mixes).
LATENT_STREAM = 11  # a GAN's per-step latents and requested classes
BINARIZE_STREAM = 12  # a VAE's dynamic binarisation, per step
FIXED_NOISE_STREAM = 13  # the fixed latents of the sample grids and the mode-collapse monitor
EVAL_STREAM = 14  # the noise of an evaluation (a VAE's sampled z, a denoising AE's corruption)
STATIC_BINARIZE_STREAM = 15  # the one draw of static binarisation

#: ``--binarize`` choices of the autoencoder recipe.
BINARIZATIONS = ("none", "dynamic", "static")


# ---------------------------------------------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------------------------------------------


def step_generator(
    seed: int, stream: int, step: int, process_index: int = 0, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``(seed, stream, step, process_index)`` only.

    Use one per draw site and step (``step_generator(args.seed, LATENT_STREAM, step, rank, device)``): the draws
    then differ between ranks and steps, repeat exactly after a resume, and leave the global generator (dropout)
    untouched. The generator lives on ``device`` because ``torch.randn(..., device=d, generator=g)`` needs ``g``
    on ``d``.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, stream, step, process_index))
    return generator


def binarize(pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Bernoulli draw per pixel, ``x ~ Bernoulli(pixel)``: grey levels in [0, 1] become a binary image.

    A Bernoulli decoder models binary pixels; MNIST is grey. Drawing a new binary image at every step (*dynamic*
    binarisation, as in Burda et al. 2016) is a free data augmentation; drawing once (*static*) fixes the data set.
    """
    if pixel_values.numel() and (pixel_values.min() < 0 or pixel_values.max() > 1):
        raise ValueError(
            f"binarize needs pixel values in [0, 1] (probabilities), got values in [{pixel_values.min().item():.3f}, "
            f"{pixel_values.max().item():.3f}]."
        )
    return torch.bernoulli(pixel_values, generator=generator)


# ---------------------------------------------------------------------------------------------------------------
# Schedules and losses
# ---------------------------------------------------------------------------------------------------------------


def kl_weight(step: int, warmup_steps: int, beta: float) -> float:
    """The weight of the KL term at optimizer step ``step`` (0 for the first step): ``beta * min(1, step /
    warmup_steps)``, a linear ramp from 0 to ``beta`` reached at step ``warmup_steps`` (``warmup_steps=0``: ``beta``
    throughout).

    KL annealing (Bowman et al. 2016; Sønderby et al. 2016) lets the decoder learn to use the latents before the KL
    term pulls every posterior onto the prior; with the full weight from the start, a strong decoder can settle for
    ignoring ``z`` (posterior collapse).
    """
    if warmup_steps < 0 or step < 0:
        raise ValueError(
            f"kl_weight needs step >= 0 and warmup_steps >= 0, got step={step}, warmup_steps={warmup_steps}."
        )
    if warmup_steps == 0:
        return float(beta)
    return float(beta) * min(1.0, step / warmup_steps)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """The discriminator's binary cross-entropy: real images toward ``real_target``, generated ones toward 0.

    ``real_target`` < 1 is one-sided label smoothing (Salimans et al. 2016, "Improved techniques for training
    GANs"): it keeps the discriminator from growing over-confident on real data, which would leave the generator
    with vanishing gradients. Only the real side is smoothed: smoothing the fake side would reward the generator for
    samples the discriminator already half-accepts. The two halves are averaged (each is a mean over its batch).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss, ``-log D(G(z))`` (Goodfellow et al. 2014, section 3).

    Minimising ``log(1 - D(G(z)))`` (the minimax objective) saturates early in training, when the discriminator
    rejects every sample and the gradient vanishes; ``-log D(G(z))`` has the same fixed point and strong gradients
    exactly there. With logits, ``-log sigmoid(l) = softplus(-l)``, computed stably by BCE with target 1.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# ---------------------------------------------------------------------------------------------------------------
# Fixed noise of the sample grids
# ---------------------------------------------------------------------------------------------------------------


class FixedNoise:
    """The latents (and, for a conditional GAN, the requested classes) that every sample grid and every
    mode-collapse measurement of a run reuses, so that grids over training show the same ``z`` evolving.

    Checkpointable (``accelerator.register_for_checkpointing(fixed_noise)``): a resumed run loads them from the
    checkpoint instead of drawing them again, so its grids continue the interrupted run's even if the draw would
    come out differently (another seed, device or count). Classes cycle ``0, 1, ..., num_classes - 1`` so that a
    grid ``num_classes`` wide shows one class per column.
    """

    def __init__(self, latents: torch.Tensor, class_labels: torch.Tensor | None = None) -> None:
        if class_labels is not None and len(class_labels) != len(latents):
            raise ValueError(f"FixedNoise got {len(latents)} latents but {len(class_labels)} class labels.")
        self.latents = latents
        self.class_labels = class_labels

    @classmethod
    def draw(cls, model: Any, num_samples: int, seed: int, num_classes: int = 0) -> FixedNoise:
        """``num_samples`` latents from ``model.sample_latents`` (the model's prior), seeded by ``seed`` alone, on
        the CPU (the same on every device and process); classes cycle when ``num_classes > 0``."""
        generator = step_generator(seed, FIXED_NOISE_STREAM, 0, 0, device="cpu")
        latents = model.sample_latents(num_samples, generator=generator).detach().cpu()
        labels = torch.arange(num_samples) % num_classes if num_classes > 0 else None
        return cls(latents, labels)

    def __len__(self) -> int:
        return len(self.latents)

    def state_dict(self) -> dict[str, Any]:
        return {"latents": self.latents, "class_labels": self.class_labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.latents = state["latents"]
        self.class_labels = state["class_labels"]


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_image_tensors(
    dataset: str,
    image_processor: Any,
    test_size: float = 0.2,
    split_seed: int = 0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Any data set the image-classification recipe takes, run once through ``image_processor``, as tensors.

    Returns the train and test splits as ``{"pixel_values", "labels"}`` dicts (what
    :class:`hfdl.data.TensorDictDataset` takes) and the class names. The processor fixes the range: an
    autoencoder's (mean 0, std 1) gives [0, 1], a GAN's (mean 0.5, std 0.5) gives [-1, 1].
    """
    from .data import load_image_classification_dataset, preprocess_for_model

    splits = load_image_classification_dataset(
        dataset,
        test_size=test_size,
        seed=split_seed,
        max_train_samples=max_train_samples,
        max_eval_samples=max_eval_samples,
    )
    processed = preprocess_for_model(splits, image_processor)
    train = dict(processed["train"].with_format("torch")[:])
    test = dict(processed["test"].with_format("torch")[:])
    return train, test, list(splits["train"].features["label"].names)


def image_processor_for_range(spec: Any, config: Any, low: float) -> Any:
    """An image processor that maps pixels to ``[low, 1]`` (``low`` 0 or -1), of ``config``'s size and channels.

    The architecture's own processor class when it has one (so a saved folder names it), else hfdl's shared
    ``HfdlImageProcessor``; its mean and std are set here because they *are* the model's input range: mean 0 and
    std 1 leave [0, 1] (autoencoders, whose sigmoid outputs are compared with the input), mean 0.5 and std 0.5 give
    [-1, 1] (a GAN, whose generator ends in tanh).
    """
    if low not in (0.0, -1.0):
        raise ValueError(f"image_processor_for_range supports the ranges [0, 1] and [-1, 1], got low={low!r}.")
    processor = spec.make_image_processor(config) if spec is not None else None
    if processor is None:
        from .layers.hfdl_image_processing import HfdlImageProcessor

        processor = HfdlImageProcessor(size=config.image_size, num_channels=config.num_channels)
    processor.image_mean, processor.image_std = (0.0, 1.0) if low == 0.0 else (0.5, 0.5)
    return processor


def build_generative_model(
    name: str, model_types: tuple[str, ...], overrides: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The model ``--model`` names, and its architecture spec: a fresh one for a preset or architecture name
    (``vae-mnist``), or a saved folder / Hub id loaded to train further. Either way its ``model_type`` must be one
    of ``model_types``, the models the calling recipe knows how to train.

    ``overrides`` are config fields: they change the preset's, or are passed to ``from_pretrained`` for a folder
    (where only fields that leave the weights' shapes unchanged can work).
    """
    from transformers import AutoConfig, AutoModel

    from .registry import get_architecture

    if not isinstance(overrides, (dict, type(None))):
        raise ValueError(f"Config overrides must be a JSON object, got {overrides!r}.")
    overrides = dict(overrides or {})
    try:
        spec = get_architecture(name)
    except ValueError:
        spec = None
    allowed = ", ".join(model_types)
    if spec is not None:
        if spec.model_type not in model_types:
            raise ValueError(f"--model {name!r} is an {spec.model_type} model; this recipe trains {allowed} models.")
        preset = name if name in spec.presets else spec.default_preset
        config = spec.make_config(preset, **overrides)
        return spec.base_task.model_class(config), spec
    path = Path(name).expanduser()
    if not path.exists() and name.startswith(("/", ".", "~")):
        raise ValueError(f"--model {name!r} is neither an hfdl preset nor an existing folder.")
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"--model {name!r} is neither an hfdl preset (see `hfdl list`) nor a loadable folder or Hub model: {error}"
        ) from error
    if config.model_type not in model_types:
        raise ValueError(f"--model {name!r} holds an {config.model_type!r} model; this recipe trains {allowed} models.")
    return AutoModel.from_pretrained(name, **overrides), get_architecture(config.model_type)


# ---------------------------------------------------------------------------------------------------------------
# Image grids
# ---------------------------------------------------------------------------------------------------------------


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, min_cell: int = 28) -> Image.Image:
    """Tile images (N, C, H, W) with values in [0, 1] into one PIL image, ``nrow`` per row, on a white background.

    Images smaller than ``min_cell`` pixels (the 8x8 digits) are enlarged by a whole factor, nearest neighbour, so
    that a grid of them can be looked at.
    """
    from PIL import Image

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid needs images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}.")
    if nrow <= 0:
        raise ValueError(f"image_grid needs nrow > 0, got {nrow}.")
    images = images.detach().float().cpu().clamp(0, 1)
    count, channels, height, width = images.shape
    scale = max(1, math.ceil(min_cell / max(height, width)))
    if scale > 1:
        images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        height, width = height * scale, width * scale
    columns = min(nrow, max(count, 1))
    rows = max(1, math.ceil(count / columns))
    grid = torch.ones(channels, rows * (height + padding) + padding, columns * (width + padding) + padding)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[:, top : top + height, left : left + width] = images[index]
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode="L" if channels == 1 else "RGB")


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8) -> Path:
    """:func:`image_grid` written as a PNG at ``path`` (folders created; written whole, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    image_grid(images, nrow=nrow).save(temporary, format="PNG")
    os.replace(temporary, path)
    return path


__all__ = [
    "BINARIZATIONS",
    "BINARIZE_STREAM",
    "EVAL_STREAM",
    "FIXED_NOISE_STREAM",
    "LATENT_STREAM",
    "STATIC_BINARIZE_STREAM",
    "FixedNoise",
    "binarize",
    "build_generative_model",
    "discriminator_loss",
    "generator_loss",
    "image_grid",
    "image_processor_for_range",
    "kl_weight",
    "load_image_tensors",
    "save_image_grid",
    "step_generator",
]
