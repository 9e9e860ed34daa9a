"""Data augmentation for image classification (course chapter 4), on the normalised tensors the recipes train on.

The recipes preprocess every image once into normalised float tensors (:func:`hfdl.data.preprocess_for_model`), so
augmentation works on those tensors, with ``torchvision.transforms.v2``, one sample at a time:

* :class:`AugmentationConfig` — what to apply, with the flags of timm's ``train.py`` (:func:`add_augmentation_args`
  adds them to a parser): random resized crop, rotation/translation, horizontal flip, colour jitter, Gaussian
  noise, RandAugment/TrivialAugment, and mixup/cutmix. Everything is off by default;
* :func:`build_train_transform` — the per-sample pipeline. Pixel values are un-normalised to [0, 1] first, because
  the transforms assume that range: colour jitter, noise and RandAugment's magnitudes are defined on it (RandAugment
  runs on uint8, its native type), and rotated-in corners are filled with black (0) rather than with whatever
  colour 0 means after normalisation (mid-grey for a 0.5/0.5 processor). The result is normalised again;
* :class:`MixupCutmix` — the batch-level mixes, which turn class indices into (batch, num_labels) probabilities;
  hfdl's classification heads take those as targets (soft-target cross-entropy);
* :func:`derive_seed` and :func:`isolated_rng` — reproducibility. torchvision's transforms draw from torch's global
  generator, which also drives dropout. Each sample is therefore augmented under the CPU generator seeded from
  ``(seed, epoch, row index)`` and restored afterwards: the augmentation of a row is the same whatever the batch
  order, the number of processes or DataLoader workers, and a run resumed from a checkpoint (which skips the
  batches already trained on) sees exactly the images the uninterrupted run saw, with the same dropout masks.
  Mixes are seeded from ``(seed, step, process index)`` in the same way.

Cost: torchvision's per-call overhead, not arithmetic, dominates on small images. On one core of the 2-core CI
machine a 32x32 image takes 0.04 ms (flip) to 0.19 ms (RandAugment); rotation + translation 0.15 ms, so 1.2 s per
epoch of 8,000 MNIST images, twice LeNet-5's own training time. ``DataLoader(num_workers=N)`` (the recipe's
``--num_workers``) runs it beside the training loop; without any transform the rows are served as stored.

The horizontal flip is off by default on purpose: mirrored digits and letters are other symbols or none (a mirrored
3 is an epsilon), so timm's default of 0.5 would teach a digit model wrong labels. Turn it on (``--hflip 0.5``) for
natural images, whose classes survive a mirror. torchvision is a training extra; it is imported where it is used.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

#: The automatic policies ``--auto_augment`` accepts: torchvision's RandAugment (2 ops, magnitude 9; Cubuk et al.,
#: 2020) and TrivialAugment (1 op, random magnitude; Müller & Hutter, 2021).
AUTO_AUGMENT_POLICIES = ("randaugment", "trivialaugment")
#: Stream tags for :func:`derive_seed`, so that per-sample and per-batch draws never share a seed.
SAMPLE_STREAM = 1
BATCH_STREAM = 2

_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------------------------
# Configuration and command-line flags
# ---------------------------------------------------------------------------------------------------------------


def _check_number(
    name: str, value: object, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number inside the interval, naming the flag and the interval."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or math.isinf(high) else ']'}"
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if valid:
        valid = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not valid:
        raise ValueError(f"`{name}` must be a number in {interval}, got {value!r}.")


@dataclass(frozen=True)
class AugmentationConfig:
    """The augmentation of the training split. Every field is off by default; the names are the recipe's flags.

    Attributes:
        random_resized_crop: The smallest crop, as a fraction of the image area (timm's ``--scale`` lower bound,
            0.08 for ImageNet; 0.6-0.9 suits digits); the crop, of aspect ratio 3/4..4/3, is resized back to the
            image size. ``None``: no crop.
        rotation: Rotate by a random angle in [-rotation, +rotation] degrees.
        translate: Shift by up to this fraction of the width and of the height, in each direction.
        hflip: Probability of a horizontal flip. Off by default: a flip changes what a digit or letter means.
        color_jitter: Strength of random brightness, contrast and (RGB only) saturation changes, each by a factor
            in [1 - s, 1 + s] (timm's ``--color-jitter``; hue is left alone, as timm does by default).
        gaussian_noise: Standard deviation of the Gaussian noise added to pixels in [0, 1] (then clipped).
        auto_augment: ``"randaugment"`` or ``"trivialaugment"`` (see :data:`AUTO_AUGMENT_POLICIES`), or ``None``.
        mixup: Mixup's alpha (Zhang et al., 2018): each batch is blended with itself shifted by one, by a weight
            drawn from Beta(alpha, alpha); 0 turns it off. Typical: 0.2 (0.8 in timm's ImageNet recipes).
        cutmix: CutMix's alpha (Yun et al., 2019): a box of the shifted batch is pasted in; 0 turns it off. With
            both on, each batch gets one of the two, chosen with equal odds (timm's ``--mixup-switch-prob`` 0.5).
    """

    random_resized_crop: float | None = None
    rotation: float = 0.0
    translate: float = 0.0
    hflip: float = 0.0
    color_jitter: float = 0.0
    gaussian_noise: float = 0.0
    auto_augment: str | None = None
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self) -> None:
        if self.random_resized_crop is not None:
            _check_number("random_resized_crop", self.random_resized_crop, 0.0, 1.0, low_open=True)
        _check_number("rotation", self.rotation, 0.0, 180.0)
        _check_number("translate", self.translate, 0.0, 1.0, high_open=True)
        _check_number("hflip", self.hflip, 0.0, 1.0)
        _check_number("color_jitter", self.color_jitter, 0.0, 1.0)
        _check_number("gaussian_noise", self.gaussian_noise, 0.0, math.inf)
        if self.auto_augment is not None and self.auto_augment not in AUTO_AUGMENT_POLICIES:
            raise ValueError(
                f"`auto_augment` must be one of {', '.join(map(repr, AUTO_AUGMENT_POLICIES))} or None; "
                f"got {self.auto_augment!r}."
            )
        _check_number("mixup", self.mixup, 0.0, math.inf)
        _check_number("cutmix", self.cutmix, 0.0, math.inf)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AugmentationConfig:
        """The config from a namespace parsed with :func:`add_augmentation_args` (other attributes are ignored)."""
        return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})

    @property
    def per_sample(self) -> bool:
        """Whether any per-sample transform is on (else the training data are served untouched, as fast as before)."""
        return bool(
            self.random_resized_crop is not None
            or self.rotation
            or self.translate
            or self.hflip
            or self.color_jitter
            or self.gaussian_noise
            or self.auto_augment
        )

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (mixup or cutmix), which makes the targets class probabilities."""
        return bool(self.mixup or self.cutmix)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are on, for logs and model cards (empty when nothing is)."""
        defaults = AugmentationConfig()
        return {name: value for name, value in asdict(self).items() if value != getattr(defaults, name)}


def add_augmentation_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the :class:`AugmentationConfig` flags to ``parser``, in their own group of ``--help``.

    The values are checked by :meth:`AugmentationConfig.from_args` (call it after ``parse_args`` and turn its
    ``ValueError`` into ``parser.error``), so the library and the command line share one set of rules.
    """
    group = parser.add_argument_group(
        "data augmentation", "Applied to the training split only, each sample afresh every epoch; all off by default."
    )
    group.add_argument(
        "--random_resized_crop",
        type=float,
        metavar="SCALE_MIN",
        help="Crop SCALE_MIN to 100 %% of the area, resized back",
    )
    group.add_argument("--rotation", type=float, default=0.0, metavar="DEG", help="Rotate by up to +-DEG degrees")
    group.add_argument("--translate", type=float, default=0.0, metavar="FRAC", help="Shift by up to FRAC of the size")
    group.add_argument(
        "--hflip", type=float, default=0.0, metavar="P", help="Flip horizontally with probability P (0: digits)"
    )
    group.add_argument("--color_jitter", type=float, default=0.0, metavar="S", help="Brightness/contrast/saturation")
    group.add_argument("--gaussian_noise", type=float, default=0.0, metavar="STD", help="Pixel noise, on a 0-1 scale")
    group.add_argument("--auto_augment", choices=AUTO_AUGMENT_POLICIES, help="An automatic augmentation policy")
    group.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA", help="Mixup's Beta(ALPHA, ALPHA); 0: off")
    group.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA", help="CutMix's Beta(ALPHA, ALPHA); 0: off")
    return parser


# ---------------------------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------------------------


def _splitmix64(value: int) -> int:
    """One step of SplitMix64 (Steele et al., 2014): a cheap, well-mixed 64-bit hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*keys: int) -> int:
    """A 64-bit seed that is a function of ``keys`` only (e.g. ``seed, stream, epoch, index``).

    Neighbouring keys give unrelated seeds, so the streams of consecutive samples or steps do not overlap, and the
    result is the same on every platform and Python version (unlike ``hash``). A few microseconds per call.
    """
    state = 0
    for key in keys:
        state = _splitmix64(state ^ (int(key) & _MASK64))
    return state


@contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded with ``seed``, and give the generator back as it was.

    Only the CPU generator is touched (``torch.manual_seed`` would also reseed every GPU's, which dropout on a GPU
    draws from). torchvision's transforms draw from the CPU generator even for GPU tensors, except Gaussian noise,
    which is drawn on the tensor's device: apply per-sample transforms to CPU tensors, as the DataLoader does.
    """
    generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


# ---------------------------------------------------------------------------------------------------------------
# Per-sample transforms
# ---------------------------------------------------------------------------------------------------------------


def _per_channel(value: float | Sequence[float], num_channels: int, name: str) -> list[float]:
    values = [float(value)] * num_channels if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) == 1:
        values *= num_channels
    if len(values) != num_channels:
        raise ValueError(f"`{name}` has {len(values)} values for {num_channels} channels: {value!r}.")
    return values


class _Unnormalize:
    """Normalised pixels back to [0, 1] (``x * std + mean``), clipped: float rounding lands just outside the range,
    which the uint8 conversion before RandAugment would otherwise wrap around."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean, self.std = mean, std
        self._mean = torch.tensor(mean).view(-1, 1, 1)
        self._std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return (image * self._std.to(image.device) + self._mean.to(image.device)).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        return f"Unnormalize(mean={self.mean}, std={self.std}, clamp=(0, 1))"


class _ToUint8:
    """[0, 1] floats to 0-255 bytes, to the nearest level (the images were 8-bit before preprocessing), for the
    automatic policies, whose magnitudes (posterize bits, solarize thresholds) are defined on bytes."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.mul(255.0).round_().to(torch.uint8)

    def __repr__(self) -> str:
        return "ToUint8()"


class _ToUnitFloat:
    """0-255 bytes back to [0, 1] floats."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(torch.float32).div_(255.0)

    def __repr__(self) -> str:
        return "ToUnitFloat()"


def build_train_transform(
    config: AugmentationConfig,
    image_mean: float | Sequence[float],
    image_std: float | Sequence[float],
    num_channels: int,
    image_size: int | tuple[int, int],
) -> Any | None:
    """The per-sample pipeline of ``config``, for one normalised (C, H, W) float tensor; ``None`` if there is none.

    ``image_mean``, ``image_std``, ``num_channels`` and ``image_size`` are the image processor's (``image_mean``,
    ``image_std``, ``num_channels``, ``size``): the tensors were normalised with them, and a crop is resized back
    to ``image_size``. The steps, in timm's order: un-normalise to [0, 1]; random resized crop, rotation +
    translation (one interpolation), horizontal flip; RandAugment/TrivialAugment (on uint8); colour jitter;
    Gaussian noise; normalise again. Geometric transforms fill what they uncover with black and interpolate
    bilinearly; the output has the input's shape and dtype.

    Returns:
        A ``torchvision.transforms.v2.Compose`` (its ``repr`` lists the steps) or ``None``.
    """
    if not config.per_sample:
        return None
    if num_channels not in (1, 3):
        raise ValueError(f"Augmentation handles 1 (grayscale) or 3 (RGB) channels, got num_channels={num_channels}.")
    try:
        from torchvision.transforms import v2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Data augmentation needs torchvision: pip install 'hfdl[train]'") from error

    mean = _per_channel(image_mean, num_channels, "image_mean")
    std = _per_channel(image_std, num_channels, "image_std")
    if any(s <= 0 for s in std):
        raise ValueError(f"`image_std` must be positive, got {image_std!r}.")
    bilinear = v2.InterpolationMode.BILINEAR
    steps: list[Any] = [_Unnormalize(mean, std)]
    if config.random_resized_crop is not None:
        crop_scale = (config.random_resized_crop, 1.0)
        steps.append(v2.RandomResizedCrop(image_size, scale=crop_scale, interpolation=bilinear, antialias=True))
    if config.rotation or config.translate:
        translate = (config.translate, config.translate) if config.translate else None
        steps.append(v2.RandomAffine(degrees=config.rotation, translate=translate, interpolation=bilinear, fill=0))
    if config.hflip:
        steps.append(v2.RandomHorizontalFlip(p=config.hflip))
    if config.auto_augment:
        policy = v2.RandAugment() if config.auto_augment == "randaugment" else v2.TrivialAugmentWide()
        steps += [_ToUint8(), policy, _ToUnitFloat()]
    if config.color_jitter:
        strength = config.color_jitter
        saturation = strength if num_channels == 3 else None  # a grayscale image has no saturation to change
        steps.append(v2.ColorJitter(brightness=strength, contrast=strength, saturation=saturation))
    if config.gaussian_noise:
        steps.append(v2.GaussianNoise(mean=0.0, sigma=config.gaussian_noise, clip=True))
    steps.append(v2.Normalize(mean=mean, std=std))
    return v2.Compose(steps)


# ---------------------------------------------------------------------------------------------------------------
# Batch mixes
# ---------------------------------------------------------------------------------------------------------------


class MixupCutmix:
    """Mixup and/or CutMix over a batch ``{"pixel_values", "labels", ...}``, reproducibly.

    Each call draws under :func:`isolated_rng` seeded from ``(seed, step, process_index)``, so a resumed run mixes
    its batches as the interrupted one did, and every process mixes its own shard differently. Labels (class
    indices) come back as (batch, num_classes) float probabilities that sum to 1; a classification head whose
    ``config.problem_type`` is ``"single_label_classification"`` trains on them with soft-target cross-entropy.
    Batches are mixed with themselves shifted by one (torchvision's ``MixUp``/``CutMix``), which is random enough
    because the DataLoader shuffles.
    """

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0, seed: int = 0) -> None:
        AugmentationConfig(mixup=mixup, cutmix=cutmix)  # the same checks as the flags
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"Mixup and CutMix blend the probabilities of two or more classes; got num_classes={num_classes!r}."
            )
        if not (mixup or cutmix):
            raise ValueError("MixupCutmix needs mixup > 0 or cutmix > 0 (both 0 would leave batches untouched).")
        from torchvision.transforms import v2

        self.num_classes, self.mixup, self.cutmix, self.seed = num_classes, mixup, cutmix, seed
        mixes = [v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup else []
        mixes += [v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix else []
        self.transform = mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)

    def __call__(self, batch: dict[str, torch.Tensor], step: int, process_index: int = 0) -> dict[str, torch.Tensor]:
        """A new batch with mixed ``pixel_values`` and soft ``labels``; ``step`` counts the optimizer steps so far."""
        labels = batch["labels"]
        if labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                f"MixupCutmix takes class indices of shape (batch_size,), got {labels.dtype} labels of shape "
                f"{tuple(labels.shape)}."
            )
        with isolated_rng(derive_seed(self.seed, BATCH_STREAM, step, process_index)):
            pixel_values, soft_labels = self.transform(batch["pixel_values"], labels)
        return {**batch, "pixel_values": pixel_values, "labels": soft_labels}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes}, mixup={self.mixup}, cutmix={self.cutmix})"


__all__ = [
    "AUTO_AUGMENT_POLICIES",
    "AugmentationConfig",
    "MixupCutmix",
    "add_augmentation_args",
    "build_train_transform",
    "derive_seed",
    "isolated_rng",
]
