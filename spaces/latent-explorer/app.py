"""Latent explorer: walk the latent space of a variational autoencoder, and watch a denoising autoencoder clean up.

The Space of *Deep Learning Mastery*'s chapters 7 and 8 (Kingma & Welling, 2014; Vincent et al., 2008). Two tabs:

* **VAE latent space**: the decoder's images over a grid of latent codes (for a 2-D VAE, the whole plane over
  [-3, 3]^2, where the prior puts 99.7 % of its mass per axis; for a larger VAE, two chosen dimensions with the others
  at 0 or at a drawn digit's code); the straight line between the codes of two drawn or uploaded digits, decoded step
  by step; one slider per latent dimension, decoded as you move it; random samples from the prior with a seed.
* **Denoising autoencoder**: draw or upload a digit, choose the noise (Gaussian, masking, salt and pepper) and its
  level, and see the clean input, the noisy input and the network's reconstruction side by side, with their errors.

Models: folders or Hub ids given with ``--vae`` / ``HFDL_VAE_MODEL`` and ``--autoencoder`` / ``HFDL_AE_MODEL``, every
hfdl VAE and autoencoder under ``outputs/`` (where the training recipe writes), and, so that the Space works with
nothing trained and no Hub, a 2-D VAE and a denoising autoencoder trained here on scikit-learn's 8x8 digits on first
use (each well under a minute on 2 shared CPU cores; kept in the cache folder, so only the first request pays).

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request.
Run locally::

    python spaces/latent-explorer/app.py --vae outputs/vae-mnist-2d --autoencoder outputs/denoising-ae-mnist
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

VAE_MODEL_TYPE = "hfdl-vae"
AE_MODEL_TYPE = "hfdl-autoencoder"
#: The two kinds of model the Space shows, by the tab that lists them.
KINDS = {"vae": (VAE_MODEL_TYPE,), "autoencoder": (AE_MODEL_TYPE,)}
KIND_NAMES = {"vae": "variational autoencoder", "autoencoder": "autoencoder"}

#: The dropdown values of the models trained here on scikit-learn's digits (the defaults when nothing else is found).
DIGITS_VAE_CHOICE = "vae-digits-2d (trained here)"
DIGITS_AE_CHOICE = "denoising-ae-digits (trained here)"
#: The digits VAE: ``vae-mnist-2d`` (28 px, MLP, a 2-D code, Bernoulli decoder) with narrower layers, so that it
#: trains in well under a minute on 2 shared CPU cores. See the README for the time and the test ELBO measured.
DIGITS_VAE_PRESET = "vae-mnist-2d"
DIGITS_VAE_OVERRIDES: dict[str, Any] = {"hidden_sizes": [256, 128]}
DIGITS_VAE_EPOCHS = 60
#: The digits denoising autoencoder: ``denoising-ae-mnist`` with narrower layers and a 16-unit code.
DIGITS_AE_PRESET = "denoising-ae-mnist"
DIGITS_AE_OVERRIDES: dict[str, Any] = {"hidden_sizes": [256, 128], "latent_dim": 16}
DIGITS_AE_EPOCHS = 40
#: The code size of the digits VAE, known without importing hfdl (for the sliders).
DIGITS_VAE_LATENT_DIM = 2
#: Side of scikit-learn's digits: drawings for the digits models are made at this side first (see prepare_input).
DIGITS_SIDE = 8
DIGITS_FOLDERS = {"vae": "vae-digits-2d", "autoencoder": "denoising-ae-digits"}
DIGITS_CHOICES = {"vae": DIGITS_VAE_CHOICE, "autoencoder": DIGITS_AE_CHOICE}
#: Written beside each digits model: how it was trained and how well it does on the held-out digits.
TRAINING_RECORD = "training.json"
#: Where the training recipe writes, relative to the repository root and to the working directory.
OUTPUTS_FOLDER = "outputs"

#: Sliders shown at most; a VAE with a larger code gets sliders for its first MAX_SLIDERS dimensions (the rest at 0).
MAX_SLIDERS = 16
#: The sliders' range: +-3 prior standard deviations.
SLIDER_RANGE = 3.0
#: Latent values accepted from the API: decoding is defined everywhere, but far outside the prior it shows nothing.
MAX_ABS_LATENT = 10.0
GRID_SIZE = (2, 25, 15)  # (min, max, default) tiles per side
GRID_EXTENT = (0.5, 6.0, 3.0)  # (min, max, default): the grid spans [-extent, extent] on both axes
GRID_BASES = ("zeros", "digit A")
STEPS = (2, 24, 10)  # interpolation points, both ends included
SAMPLES = (1, 64, 16)
MAX_SEED = 2**31 - 1
NOISE_TYPES = ("gaussian", "masking", "salt_and_pepper", "none")
#: Gaussian noise takes a standard deviation, the others a probability; both up to 1 here.
MAX_NOISE_LEVEL = 1.0

#: MNIST's digits fill a 20x20 box centred in 28x28 pixels; drawings and the digits trained on here are framed alike.
MNIST_BOX = 20 / 28
MIN_CONTRAST = 0.1
INK_THRESHOLD = 0.3
#: Width (pixels, at least) of the pictures; each is enlarged by a whole factor, nearest, so pixels stay crisp.
DISPLAY = 280
STRIP_DISPLAY = 560
GRID_DISPLAY = 560

#: Requests that may run at once: the work is in torch and zlib, which release the GIL.
CONCURRENCY_LIMIT = 2
CACHE_MAX_AGE_S = 600
MAX_CACHED_MODELS = 4
#: PyTorch threads per model call under ``python app.py``: requests already run side by side, and on shared cores
#: PyTorch's threads wait for each other at every layer (see the CNN explorer's README for the measurement).
DEFAULT_TORCH_THREADS = 1


class ExplorerInputError(ValueError):
    """The input cannot be used: no image, an empty canvas, a blank picture, a file that is not an image, or a
    setting out of range."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded or is not of the kind the tab needs."""


# --------------------------------------------------------------------------------------------------------------------
# Which models: --vae / --autoencoder, the models under outputs/, the digits models trained here.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/latent-explorer/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"vae": None, "autoencoder": None, "outputs": None, "cache_dir": None}
_ENVIRONMENT = {"vae": "HFDL_VAE_MODEL", "autoencoder": "HFDL_AE_MODEL"}


def configure(
    vae: str | None = None,
    autoencoder: str | None = None,
    outputs: list[str | Path] | None = None,
    cache_dir: str | Path | None = None,
) -> None:
    """Choose the models offered first, the folders searched for trained models and where the digits models are kept
    (None: the environment, else the default). Takes effect for UIs built afterwards (:func:`build_demo`)."""
    _settings.update(
        {
            "vae": vae,
            "autoencoder": autoencoder,
            "outputs": None if outputs is None else [Path(path) for path in outputs],
            "cache_dir": None if cache_dir is None else Path(cache_dir),
        }
    )


def outputs_folders() -> list[Path]:
    """Where to look for trained models: :func:`configure`'s, else ``HFDL_OUTPUTS`` (``os.pathsep``-separated), else
    ``outputs/`` at the repository root and in the working directory."""
    if _settings["outputs"] is not None:
        return list(_settings["outputs"])
    if os.environ.get("HFDL_OUTPUTS"):
        return [Path(part) for part in os.environ["HFDL_OUTPUTS"].split(os.pathsep) if part]
    root = _repository_root()
    candidates = ([root / OUTPUTS_FOLDER] if root is not None else []) + [Path.cwd() / OUTPUTS_FOLDER]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate.resolve() not in [path.resolve() for path in unique]:
            unique.append(candidate)
    return unique


def space_cache_dir() -> Path:
    """Where the digits models are trained into: configured, else ``HFDL_SPACE_CACHE``, else the temporary folder.

    A Space's disk outlives restarts of the app (not rebuilds), so the training is paid once per build."""
    configured = _settings["cache_dir"] or os.environ.get("HFDL_SPACE_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "hfdl-latent-explorer"


def _model_folders(folder: Path) -> list[Path]:
    """Where a model may sit in ``folder``: the folder itself, ``best/`` (the recipe's layout) and the component
    folders of a diffusers-style pipeline folder (``model_index.json``, as ``VAEPipeline.save_pretrained`` writes)."""
    candidates = [folder, folder / "best"]
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        index = {}
    if isinstance(index, dict):
        candidates += [folder / name for name in index if not name.startswith("_")]
    return candidates


def _read_config(folder: Path, model_types: Sequence[str]) -> tuple[Path, dict[str, Any]] | None:
    """(model folder, ``config.json``) of the first model of one of ``model_types`` saved in ``folder`` (see
    :func:`_model_folders`), else None. Reads JSON only: listing runs when the page loads."""
    for model_dir in _model_folders(folder):
        try:
            config = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("model_type") in model_types:
            return model_dir, config
    return None


def find_trained_models(kind: str, folders: list[Path] | None = None) -> list[tuple[str, str]]:
    """(label, folder) of each trained model of ``kind`` ("vae" or "autoencoder") in the immediate subfolders of
    ``folders``, sorted by name."""
    found: list[tuple[str, str]] = []
    for folder in folders if folders is not None else outputs_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(path for path in folder.iterdir() if path.is_dir()):
            read = _read_config(candidate, KINDS[kind])
            if read is not None:
                config = read[1]
                noise = config.get("noise_type", "none")
                extra = f", {noise} noise" if kind == "autoencoder" and noise != "none" else ""
                found.append(
                    (f"{candidate.name} ({config.get('latent_dim', '?')}-D code{extra}, {candidate})", str(candidate))
                )
    return found


def model_choices(kind: str) -> list[tuple[str, str]]:
    """A tab's (label, value) choices: the configured model, the trained models found, the digits model."""
    choices: list[tuple[str, str]] = []
    configured = _settings[kind] or os.environ.get(_ENVIRONMENT[kind])
    if configured:
        choices.append((f"{configured} (--{kind})", configured))
    choices += find_trained_models(kind)
    trained = (space_cache_dir() / DIGITS_FOLDERS[kind] / TRAINING_RECORD).is_file()
    note = "" if trained else ", trained on first use: under a minute"
    name = "2-D VAE" if kind == "vae" else "denoising autoencoder"
    choices.append((f"{name} on scikit-learn digits{note}", DIGITS_CHOICES[kind]))
    unique: dict[str, str] = {}
    for label, value in choices:
        unique.setdefault(value, label)
    return [(label, value) for value, label in unique.items()]


def latent_dim_of(source: str) -> int | None:
    """The code size of the VAE or autoencoder at ``source`` from its ``config.json`` alone (no torch): a local
    folder, or a Hub id already in the local Hub cache (nothing is downloaded). None when it is not at hand: the
    controls then keep their bounds and the request checks the values against the model."""
    if source == DIGITS_VAE_CHOICE:
        return DIGITS_VAE_LATENT_DIM
    if source == DIGITS_AE_CHOICE or not source:
        return None
    folder = Path(source).expanduser()
    if not folder.is_dir() and source.count("/") == 1:
        from huggingface_hub import try_to_load_from_cache  # gradio imports it anyway

        try:
            cached = try_to_load_from_cache(source, "config.json")
        except ValueError:  # not a valid repo id
            cached = None
        folder = Path(cached).parent if isinstance(cached, str) else folder
    read = _read_config(folder, (VAE_MODEL_TYPE, AE_MODEL_TYPE))
    if read is None or not isinstance(read[1].get("latent_dim"), int):
        return None
    return int(read[1]["latent_dim"])


# --------------------------------------------------------------------------------------------------------------------
# The digits models: trained here, once, on scikit-learn's 8x8 digits scaled to the model's side.
# --------------------------------------------------------------------------------------------------------------------


def _digits_data(side: int, seed: int) -> tuple[Any, Any, Any]:
    """scikit-learn's 1,797 digits as (pixel_values (N, 1, side, side) in [0, 1], train index, test index).

    The 8x8 images (0-16, light strokes on black, as MNIST) are scaled to 0-255, enlarged (bilinear) to the box MNIST
    digits fill (20 of 28 px, :func:`digit_box`) and centred on a black square of ``side``: a model of the course's
    MNIST shape takes them, and a decoded grid shows digits apart, not touching. The split is 80/20, stratified by
    digit (``seed``).
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    box = digit_box(side)
    images = [
        _frame(Image.fromarray(np.round(image * (255.0 / 16.0)).astype(np.uint8)), box, side) for image in digits.images
    ]
    train_index, test_index = train_test_split(
        np.arange(len(images)), test_size=0.2, random_state=seed, stratify=digits.target
    )
    pixels = np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in images])[:, None]
    return torch.from_numpy(pixels), torch.as_tensor(train_index), torch.as_tensor(test_index)


def _train(model: Any, pixels: Any, train_index: Any, epochs: int, seed: int, learning_rate: float) -> None:
    """Adam, batch 64, ``epochs`` passes over ``pixels[train_index]`` with the model's own loss against the clean
    images (its training-mode forward adds a denoising autoencoder's noise, and samples a VAE's code)."""
    import torch

    batch_size = 64
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = train_index[torch.randperm(len(train_index), generator=generator)]
        for start in range(0, len(order), batch_size):
            batch = pixels[order[start : start + batch_size]]
            loss = model(pixel_values=batch, labels=batch, generator=generator).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def _save(model: Any, folder: str | Path, record: dict[str, Any]) -> None:
    from hfdl.hub import save_for_hub
    from hfdl.registry import resolve_preset

    spec, _ = resolve_preset(model.config.model_type)
    saved = save_for_hub(model, folder, processor=spec.make_image_processor(model.config))
    (saved / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def train_digits_vae(
    folder: str | Path, epochs: int = DIGITS_VAE_EPOCHS, seed: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Train a ``vae-mnist-2d``-shaped VAE on scikit-learn's digits and save it (with its image processor) to
    ``folder``; see :func:`_digits_data` for the data and the split. Adam (lr 2e-3), batch 64, the model's own loss
    (negative ELBO, Bernoulli decoder on the grey levels). Returns the record written to ``folder/training.json``:
    epochs, seconds, the mean test ELBO in nats per image (one sampled code per image, seed 0) and ``digit_side``.
    """
    import time

    import torch

    import hfdl

    started = time.perf_counter()
    torch.manual_seed(seed)
    settings = {**DIGITS_VAE_OVERRIDES, **overrides}
    model = hfdl.create_model(DIGITS_VAE_PRESET, **settings)
    pixels, train_index, test_index = _digits_data(model.config.image_size, seed)
    _train(model, pixels, train_index, epochs, seed, learning_rate=2e-3)
    with torch.no_grad():
        elbo = model.elbo(pixels[test_index], generator=torch.Generator().manual_seed(0))
    record = {
        "data": f"scikit-learn digits (8x8 scaled to {model.config.image_size} px), 80/20 stratified split",
        "digit_side": DIGITS_SIDE,
        "digit_box": digit_box(model.config.image_size),
        "preset": DIGITS_VAE_PRESET,
        "overrides": settings,
        "seed": seed,
        "epochs": epochs,
        "test_elbo_nats": round(float(elbo.mean()), 2),
        "test_images": len(test_index),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _save(model, folder, record)
    return record


def train_digits_denoiser(
    folder: str | Path, epochs: int = DIGITS_AE_EPOCHS, seed: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Train a ``denoising-ae-mnist``-shaped autoencoder on scikit-learn's digits and save it to ``folder``.

    Its configured noise corrupts every training batch (drawn from a seeded generator) and the loss compares the
    reconstruction with the clean digit. Returns the record written to ``folder/training.json``, with the mean
    squared error per pixel on the test digits of the noisy input and of the reconstruction (same noise, seed 0):
    the second below the first is what denoising means.
    """
    import time

    import torch

    import hfdl

    started = time.perf_counter()
    torch.manual_seed(seed)
    settings = {**DIGITS_AE_OVERRIDES, **overrides}
    model = hfdl.create_model(DIGITS_AE_PRESET, **settings)
    pixels, train_index, test_index = _digits_data(model.config.image_size, seed)
    _train(model, pixels, train_index, epochs, seed, learning_rate=2e-3)
    clean = pixels[test_index]
    with torch.no_grad():
        noisy = model.corrupt(clean, generator=torch.Generator().manual_seed(0))
        reconstruction = model.decode(model.encode(noisy))
    record = {
        "data": f"scikit-learn digits (8x8 scaled to {model.config.image_size} px), 80/20 stratified split",
        "digit_side": DIGITS_SIDE,
        "digit_box": digit_box(model.config.image_size),
        "preset": DIGITS_AE_PRESET,
        "overrides": settings,
        "noise": f"{model.config.noise_type} {model.config.noise_level}",
        "seed": seed,
        "epochs": epochs,
        "test_mse_noisy": round(float((noisy - clean).pow(2).mean()), 5),
        "test_mse_reconstruction": round(float((reconstruction - clean).pow(2).mean()), 5),
        "test_images": len(test_index),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _save(model, folder, record)
    return record


TRAINERS = {"vae": train_digits_vae, "autoencoder": train_digits_denoiser}
_train_lock = threading.Lock()


def digits_model(kind: str) -> Path:
    """The folder of the digits model of ``kind``, trained now if the cache does not hold it yet (one training at a
    time: a second request waits for the first one's model instead of training its own)."""
    folder = space_cache_dir() / DIGITS_FOLDERS[kind]
    with _train_lock:
        if not (folder / TRAINING_RECORD).is_file():
            try:
                TRAINERS[kind](folder)
            except ImportError as error:  # scikit-learn missing
                raise ModelUnavailableError(
                    f"Training the digits {KIND_NAMES[kind]} needs scikit-learn: {error}"
                ) from error
    return folder


# --------------------------------------------------------------------------------------------------------------------
# Reading what Gradio hands over, and preparing the network's input.
# --------------------------------------------------------------------------------------------------------------------


def _open(value: Any, what: str) -> Image.Image | None:
    """One image value (a FileData record, a path, a PIL image, an array) as PIL; None for "nothing there"."""
    if isinstance(value, dict) and "path" in value:  # handlers run with preprocess=False: FileData records
        value = value["path"]
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (str, os.PathLike)):
        try:
            with Image.open(value) as opened:
                opened.load()
                return ImageOps.exif_transpose(opened)
        except (UnidentifiedImageError, OSError) as error:
            raise ExplorerInputError(
                f"{what}: {Path(value).name} is not an image file; upload a PNG or JPEG."
            ) from error
    if isinstance(value, np.ndarray):
        if value.size == 0 or value.ndim not in (2, 3) or not np.issubdtype(value.dtype, np.number):
            raise ExplorerInputError(
                f"{what}: cannot read an array of shape {value.shape} and dtype {value.dtype} as an image; expected "
                "real numbers of shape (H, W) or (H, W, C)."
            )
        if value.dtype != np.uint8:
            value = np.clip(np.asarray(value, dtype=np.float64) * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(value[..., 0] if value.ndim == 3 and value.shape[-1] == 1 else value)
    raise ExplorerInputError(
        f"{what}: expected an image (a file, a PIL image or an array), got {type(value).__name__}."
    )


def read_image(value: Any, what: str = "Digit") -> Image.Image:
    """The drawing or upload as RGB, transparency painted white (the drawing canvas is transparent paper), checked
    not to be blank. ``what`` names the input in messages ("Digit A").

    Raises:
        ExplorerInputError: No image, an empty canvas, a file that is not an image, or a blank picture.
    """
    if isinstance(value, dict) and "path" not in value:  # gr.ImageEditor: {"background", "layers", "composite"}
        image = _open(value.get("composite"), what) or _open(value.get("background"), what)
    else:
        image = _open(value, what)
    if image is None:
        raise ExplorerInputError(f"{what}: no image; draw a digit on the canvas or upload a picture first.")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][1] == 0:
            raise ExplorerInputError(f"{what}: the canvas is empty; draw a digit first (pick the brush on the left).")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    image = image.convert("RGB")
    gray = _gray(image)
    if float(gray.max() - gray.min()) < MIN_CONTRAST:
        raise ExplorerInputError(f"{what}: the image is blank; draw or upload a digit with visible strokes.")
    return image


def _gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def digit_box(side: int) -> int:
    """The side of the box a digit fills in a ``side`` px image: MNIST's 20 of 28 px (a 4 px margin)."""
    return max(1, round(side * MNIST_BOX))


def _frame(digit: Image.Image, box: int, side: int) -> Image.Image:
    """``digit`` (mode L) enlarged to ``box`` px (bilinear) and centred on a black square of ``side`` px."""
    canvas = Image.new("L", (side, side))
    offset = (side - box) // 2
    canvas.paste(digit.resize((box, box), Image.Resampling.BILINEAR), (offset, offset))
    return canvas


def _digit(gray: np.ndarray, size: int) -> Image.Image:
    """Light strokes on black, cropped to the ink and centred on a square as tall or wide as the ink, ``size`` px
    (mode L; :func:`_frame` adds the margin)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark strokes on light paper -> light on dark, like the digit data sets
        gray, border = 1.0 - gray, 1.0 - border
    difference = np.abs(gray - float(np.median(border)))
    ink = difference / max(float(difference.max()), 1e-6)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    columns = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    box = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    side = max(box.shape)
    canvas = np.zeros((side, side))
    top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
    canvas[top : top + box.shape[0], left : left + box.shape[1]] = box
    small = np.asarray(Image.fromarray(canvas.astype(np.float32)).resize((size, size), Image.Resampling.BOX))
    small = small / max(float(small.max()), 1e-6)  # area averaging dims thin strokes; give them full strength back
    return Image.fromarray(np.clip(small * 255.0, 0, 255).round().astype(np.uint8))


def prepare_input(
    image: Image.Image, num_channels: int, size: int, digit_side: int | None = None, box: int | None = None
) -> Image.Image:
    """The picture the network receives, ``size`` px square: for a 1-channel model a digit as the digit data sets
    have them (light strokes on black, cropped to the ink and centred in MNIST's 20-of-28 px box), whatever the size
    and colours of the upload; for an RGB model the picture resized. Mode ``L`` or ``RGB``.

    ``digit_side`` and ``box``: for a model trained on small digits enlarged to ``box`` px (the digits models
    trained here: 8 px, tight to the ink, enlarged to 20 of 28 px). The drawing is then made at ``digit_side`` and
    enlarged and framed the same way, so it is as blurred as the training digits were.
    """
    if num_channels != 1:
        shrinking = max(image.size) > size
        return image.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)
    box = box or digit_box(size)
    if digit_side and digit_side < box:
        return _frame(_digit(_gray(image), digit_side), box, size)
    return _frame(_digit(_gray(image), box), box, size)


# --------------------------------------------------------------------------------------------------------------------
# Models: hfdl.inference.load, cached.
# --------------------------------------------------------------------------------------------------------------------


class LoadedModel(NamedTuple):
    """A loaded VAE or autoencoder with what the requests need beside it."""

    model: Any  # the PreTrainedModel, in eval mode
    processor: Any  # its image processor (images to [0, 1] pixel_values), or None
    model_dir: Path
    record: dict[str, Any] | None  # training.json of a digits model trained here

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def is_vae(self) -> bool:
        return self.model.config.model_type == VAE_MODEL_TYPE


_models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
_load_lock = threading.Lock()


def _resolve_folder(source: str) -> str:
    """A local pipeline folder (``model_index.json``) becomes its model's folder; anything else stays as it is."""
    folder = Path(source).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        read = _read_config(folder, (VAE_MODEL_TYPE, AE_MODEL_TYPE))
        if read is not None:
            return str(read[0])
    return source


def _cache_key(source: str) -> tuple[str, int]:
    """A local folder by its resolved path and its config's write time (a retrained model is reloaded)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return source, 0
    configs = [folder / "config.json" for folder in (path, path / "best")]
    return str(path.resolve()), max((config.stat().st_mtime_ns for config in configs if config.is_file()), default=0)


def _training_record(model_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((Path(model_dir) / TRAINING_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def choose_source(model: str | None, custom_model: str | None) -> str:
    """The typed folder or Hub id when there is one, else the dropdown's choice.

    Raises:
        ExplorerInputError: Neither is given.
    """
    source = (custom_model or "").strip() or (model or "").strip()
    if not source:
        raise ExplorerInputError("Choose a model in the list, or type a model folder or Hub id.")
    return source


def load_model(source: str, kinds: Sequence[str]) -> LoadedModel:
    """Load ``source`` as one of ``kinds`` ("vae", "autoencoder"), cached. A digits choice is trained first if needed.

    ``source``: a model folder, a training output folder (``best/``), a pipeline folder, a Hub id, or one of the
    digits choices (:data:`DIGITS_VAE_CHOICE`, :data:`DIGITS_AE_CHOICE`).

    Raises:
        ModelUnavailableError: It cannot be loaded or is not of one of ``kinds``.
    """
    for kind, choice in DIGITS_CHOICES.items():
        if source == choice:
            source = str(digits_model(kind))
    source = _resolve_folder(source)
    key = _cache_key(source)
    with _load_lock:  # requests run in worker threads: load each model once
        if key in _models:
            _models.move_to_end(key)
            loaded = _models[key]
        else:
            from hfdl.inference import load

            try:
                predictor = load(source, backend="torch")
            except (ImportError, OSError, RuntimeError, ValueError) as error:
                raise ModelUnavailableError(f"Could not load {source!r}: {str(error).strip()}") from error
            loaded = LoadedModel(
                predictor.model, predictor.processor, predictor.model_dir, _training_record(predictor.model_dir)
            )
            _models[key] = loaded
            while len(_models) > MAX_CACHED_MODELS:
                _models.popitem(last=False)
    # Checked on every request: one model may be cached by one tab and asked for by the other.
    model_type = loaded.config.model_type
    if model_type not in [allowed for kind in kinds for allowed in KINDS[kind]]:
        wanted = " or ".join(f"an hfdl {KIND_NAMES[kind]} ({KINDS[kind][0]!r})" for kind in kinds)
        raise ModelUnavailableError(f"{source!r} holds a {model_type!r} model; this tab needs {wanted}.")
    return loaded


def pixel_values_of(loaded: LoadedModel, prepared: Image.Image) -> Any:
    """The model's input for the prepared picture: its own image processor when saved with one, else 0-255 -> [0, 1]
    (hfdl's autoencoders and VAEs take [0, 1] pixels, no mean or std)."""
    import torch

    if loaded.processor is not None:
        return torch.as_tensor(loaded.processor(prepared, return_tensors="pt")["pixel_values"])
    array = np.asarray(prepared, dtype=np.float32) / 255.0
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))[None]


def _digit_framing(loaded: LoadedModel) -> tuple[int | None, int | None]:
    """(digit_side, digit_box) from the training record of a digits model trained here, else (None, None)."""
    record = loaded.record or {}
    return record.get("digit_side"), record.get("digit_box")


def encode_digit(loaded: LoadedModel, image: Any, what: str = "Digit") -> tuple[Image.Image, Any]:
    """(the prepared picture, its code (latent_dim,)): a VAE's posterior mean, an autoencoder's code."""
    import torch

    picture = read_image(image, what)
    config = loaded.config
    prepared = prepare_input(picture, config.num_channels, config.image_size, *_digit_framing(loaded))
    with torch.inference_mode():
        code = loaded.model.encode(pixel_values_of(loaded, prepared))
    mean = code[0] if isinstance(code, tuple) else code
    return prepared, mean[0]


def decode(loaded: LoadedModel, latents: Any) -> Any:
    """Images in [0, 1] (N, C, H, W) for codes (N, latent_dim)."""
    import torch

    with torch.inference_mode():
        return loaded.model.decode(torch.as_tensor(latents, dtype=torch.float32))


# --------------------------------------------------------------------------------------------------------------------
# Checking settings.
# --------------------------------------------------------------------------------------------------------------------


def _number(name: str, value: Any, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not low <= number <= high:  # also refuses NaN
        raise ExplorerInputError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.")
    return number


def _whole(name: str, value: Any, low: int, high: int) -> int:
    """An integer setting from a slider or an API call (2.0 is 2), within [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not low <= number <= high:
        raise ExplorerInputError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def _vae(source: str) -> LoadedModel:
    return load_model(source, ("vae",))


def _record_note(loaded: LoadedModel) -> str:
    record = loaded.record or {}
    if isinstance(record.get("test_elbo_nats"), (int, float)):
        return f" Model: trained here on scikit-learn digits, test ELBO {record['test_elbo_nats']:.1f} nats per digit."
    if isinstance(record.get("test_mse_reconstruction"), (int, float)):
        return (
            f" Model: trained here on scikit-learn digits with {record.get('noise', '?')} noise; on the test digits "
            f"the noisy input's error is {record['test_mse_noisy']:.4f} and the reconstruction's "
            f"{record['test_mse_reconstruction']:.4f} (mean squared, per pixel)."
        )
    return ""


def _code_text(code: Any) -> str:
    values = [f"{float(value):+.2f}" for value in code[:MAX_SLIDERS]]
    more = f", ... ({len(code)} dims)" if len(code) > MAX_SLIDERS else ""
    return "(" + ", ".join(values) + more + ")"


# --------------------------------------------------------------------------------------------------------------------
# What each request computes (Python values; the handlers turn pictures into files).
# --------------------------------------------------------------------------------------------------------------------


class Decoded(NamedTuple):
    """Decoded images with the codes they came from, the picture shown and its caption."""

    latents: np.ndarray | None  # (N, latent_dim); None for samples (model.sample draws its own codes)
    images: np.ndarray  # (N, C, H, W) in [0, 1]
    picture: Image.Image
    caption: str


def grid_latents(latent_dim: int, size: int, dim_x: int, dim_y: int, extent: float, base: Any = None) -> np.ndarray:
    """(size * size, latent_dim) codes, row by row from the top: dimension ``dim_x`` (0-based) runs from -extent
    (left) to +extent (right), ``dim_y`` from +extent (top) to -extent (bottom), as on a plot; the other
    dimensions hold ``base`` (zeros by default)."""
    values = np.linspace(-extent, extent, size)
    latents = np.tile(np.zeros(latent_dim) if base is None else np.asarray(base, dtype=np.float64), (size * size, 1))
    latents[:, dim_x] = np.tile(values, size)
    latents[:, dim_y] = np.repeat(values[::-1], size)
    return latents.astype(np.float32)


def latent_grid(
    source: str,
    size: Any = GRID_SIZE[2],
    dim_x: Any = 1,
    dim_y: Any = 2,
    extent: Any = GRID_EXTENT[2],
    base: str = "zeros",
    digit: Any = None,
) -> Decoded:
    """The VAE's decoded images over a ``size`` x ``size`` grid of codes spanning dimensions ``dim_x`` and
    ``dim_y`` (1-based) over [-extent, extent]; the other dimensions at 0 (``base="zeros"``) or at ``digit``'s
    posterior mean (``base="digit A"``).

    Raises:
        ExplorerInputError: A setting out of range, or no usable digit for ``base="digit A"``.
        ModelUnavailableError: The model cannot be loaded or is not a VAE.
    """
    size = _whole("grid size", size, GRID_SIZE[0], GRID_SIZE[1])
    extent = _number("extent", extent, GRID_EXTENT[0], GRID_EXTENT[1])
    if base not in GRID_BASES:
        raise ExplorerInputError(f"base must be one of {', '.join(GRID_BASES)}; got {base!r}.")
    loaded = _vae(source)
    latent_dim = loaded.config.latent_dim
    if latent_dim < 2:
        raise ExplorerInputError(f"The grid needs a code of at least 2 dimensions; this VAE's has {latent_dim}.")
    dim_x = _whole("x dimension", dim_x, 1, latent_dim)
    dim_y = _whole("y dimension", dim_y, 1, latent_dim)
    if dim_x == dim_y:
        raise ExplorerInputError(f"The x and y dimensions must differ; both are {dim_x}.")
    code = None
    if base == "digit A" and latent_dim > 2:
        code = encode_digit(loaded, digit, "Digit A")[1].numpy()
    latents = grid_latents(latent_dim, size, dim_x - 1, dim_y - 1, extent, code)
    images = decode(loaded, latents).numpy()
    from hfdl.spaces import image_grid

    others = ""
    if latent_dim > 2:
        others = f" The other {latent_dim - 2} dimensions are " + (
            f"at digit A's code {_code_text(code)}." if code is not None else "at 0."
        )
    caption = (
        f"**{size}x{size} decoded codes**: z{dim_x} from {-extent:g} (left) to {extent:g} (right), z{dim_y} from "
        f"{extent:g} (top) to {-extent:g} (bottom).{others} The prior N(0, I) puts 99.7 % of each dimension within "
        f"+-3.{_record_note(loaded)}"
    )
    return Decoded(latents, images, image_grid(images, size, GRID_DISPLAY), caption)


def interpolate(source: str, digit_a: Any, digit_b: Any, steps: Any = STEPS[2]) -> Decoded:
    """Encode both digits (posterior means) and decode ``steps`` codes evenly spaced on the line between them, ends
    included: what the VAE makes of the way from one digit to the other.

    Raises:
        ExplorerInputError: A missing or unusable digit, or ``steps`` out of range.
        ModelUnavailableError: The model cannot be loaded or is not a VAE.
    """
    steps = _whole("steps", steps, STEPS[0], STEPS[1])
    read_image(digit_a, "Digit A")  # both checked before loading anything
    read_image(digit_b, "Digit B")
    loaded = _vae(source)
    _, start = encode_digit(loaded, digit_a, "Digit A")
    _, end = encode_digit(loaded, digit_b, "Digit B")
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    latents = (1.0 - weights) * start.numpy()[None] + weights * end.numpy()[None]
    images = decode(loaded, latents).numpy()
    from hfdl.spaces import image_grid

    caption = (
        f"**{steps} codes on the line from digit A's code {_code_text(start)} to digit B's {_code_text(end)}**, "
        f"decoded (left to right, both ends included).{_record_note(loaded)}"
    )
    return Decoded(latents, images, image_grid(images, steps, STRIP_DISPLAY), caption)


def slider_latents(values: Sequence[Any], latent_dim: int) -> np.ndarray:
    """The (1, latent_dim) code the sliders set: the first ``min(latent_dim, MAX_SLIDERS)`` values (the sliders
    beyond the model's code are hidden and ignored); dimensions past MAX_SLIDERS stay at 0.

    Raises:
        ExplorerInputError: A value that is not a number within +-MAX_ABS_LATENT.
    """
    used = min(latent_dim, MAX_SLIDERS)
    if len(values) < used:
        raise ExplorerInputError(f"Expected {used} slider values for a {latent_dim}-D code; got {len(values)}.")
    latents = np.zeros((1, latent_dim), dtype=np.float32)
    for index in range(used):
        latents[0, index] = _number(f"z{index + 1}", values[index], -MAX_ABS_LATENT, MAX_ABS_LATENT)
    return latents


def decode_sliders(source: str, values: Sequence[Any]) -> Decoded:
    """Decode the code the sliders set (see :func:`slider_latents`).

    Raises:
        ExplorerInputError: A value out of range.
        ModelUnavailableError: The model cannot be loaded or is not a VAE.
    """
    loaded = _vae(source)
    latents = slider_latents(values, loaded.config.latent_dim)
    images = decode(loaded, latents).numpy()
    from hfdl.spaces import image_grid

    rest = f"; z{MAX_SLIDERS + 1}-z{loaded.config.latent_dim} at 0" if loaded.config.latent_dim > MAX_SLIDERS else ""
    caption = f"**Decoded z = {_code_text(latents[0])}**{rest}.{_record_note(loaded)}"
    return Decoded(latents, images, image_grid(images, 1, DISPLAY), caption)


def digit_code(source: str, digit: Any) -> tuple[list[float], str]:
    """Digit A's posterior mean as slider values (MAX_SLIDERS of them, zeros past the code), and a caption.

    Raises:
        ExplorerInputError: A missing or unusable digit.
        ModelUnavailableError: The model cannot be loaded or is not a VAE.
    """
    read_image(digit, "Digit A")
    loaded = _vae(source)
    _, code = encode_digit(loaded, digit, "Digit A")
    values = [0.0] * MAX_SLIDERS
    for index, value in enumerate(code.tolist()[:MAX_SLIDERS]):
        values[index] = round(float(value), 2)  # the sliders' step
    outside = [index + 1 for index, value in enumerate(values) if abs(value) > SLIDER_RANGE]
    note = f" z{', z'.join(map(str, outside))} lie outside the sliders' +-{SLIDER_RANGE:g}." if outside else ""
    return values, f"Digit A's code {_code_text(code)} is set on the sliders.{note}"


def random_samples(source: str, count: Any = SAMPLES[2], seed: Any = 0) -> Decoded:
    """``count`` images the VAE samples from its prior, from ``torch.Generator().manual_seed(seed)``: the same seed
    gives the same images (``model.sample``).

    Raises:
        ExplorerInputError: ``count`` or ``seed`` out of range.
        ModelUnavailableError: The model cannot be loaded or is not a VAE.
    """
    import torch

    count = _whole("number of samples", count, SAMPLES[0], SAMPLES[1])
    seed = _whole("seed", seed, 0, MAX_SEED)
    loaded = _vae(source)
    with torch.inference_mode():
        images = loaded.model.sample(count, generator=torch.Generator().manual_seed(seed)).numpy()
    from hfdl.spaces import image_grid

    columns = min(count, 8)
    caption = f"**{count} samples** (z ~ N(0, I), seed {seed}), decoded.{_record_note(loaded)}"
    return Decoded(None, images, image_grid(images, columns, DISPLAY * 2), caption)


class Denoised(NamedTuple):
    """The denoising tab's answer: the three images (each (C, H, W) in [0, 1]), their pictures and a caption."""

    clean: np.ndarray
    noisy: np.ndarray
    reconstruction: np.ndarray
    pictures: tuple[Image.Image, Image.Image, Image.Image]
    caption: str


def denoise(source: str, digit: Any, noise_type: str = "gaussian", noise_level: Any = 0.3, seed: Any = 0) -> Denoised:
    """Corrupt the digit with ``noise_type`` at ``noise_level`` (hfdl's ``corrupt_images``, what a denoising
    autoencoder is trained on; seeded) and reconstruct it with the model (an autoencoder's ``decode(encode(x))``, a
    VAE's decoding of its posterior mean). ``noise_level`` is a standard deviation for ``gaussian`` and a
    probability per pixel for ``masking`` and ``salt_and_pepper``.

    Raises:
        ExplorerInputError: A missing or unusable digit, or a setting out of range.
        ModelUnavailableError: The model cannot be loaded or is neither an autoencoder nor a VAE.
    """
    if noise_type not in NOISE_TYPES:
        raise ExplorerInputError(f"noise type must be one of {', '.join(NOISE_TYPES)}; got {noise_type!r}.")
    level = _number("noise level", noise_level, 0.0, MAX_NOISE_LEVEL)
    seed = _whole("seed", seed, 0, MAX_SEED)
    picture = read_image(digit)
    loaded = load_model(source, ("autoencoder", "vae"))

    import torch

    from hfdl.layers.hfdl_autoencoding import corrupt_images
    from hfdl.spaces import image_grid

    config = loaded.config
    prepared = prepare_input(picture, config.num_channels, config.image_size, *_digit_framing(loaded))
    clean = pixel_values_of(loaded, prepared)
    noisy = corrupt_images(clean, noise_type, level, torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        code = loaded.model.encode(noisy)
        reconstruction = loaded.model.decode(code[0] if isinstance(code, tuple) else code)
    noisy_error = float((noisy - clean).pow(2).mean())
    reconstruction_error = float((reconstruction - clean).pow(2).mean())
    what = "standard deviation" if noise_type == "gaussian" else "probability per pixel"
    noise = "no noise" if noise_type == "none" else f"{noise_type} noise ({what} {level:g}, seed {seed})"
    caption = (
        f"**{noise}.** Mean squared error per pixel against the clean input: noisy input {noisy_error:.4f}, "
        f"reconstruction {reconstruction_error:.4f}.{_record_note(loaded)}"
    )
    images = [tensor[0].numpy() for tensor in (clean, noisy, reconstruction)]
    pictures = tuple(image_grid(image[None], 1, DISPLAY) for image in images)
    return Denoised(*images, pictures, caption)


# --------------------------------------------------------------------------------------------------------------------
# Gradio handlers.
# --------------------------------------------------------------------------------------------------------------------


def _user_error(error: ExplorerInputError | ModelUnavailableError) -> gr.Error:
    """The message a user sees (escaped: Gradio renders it as HTML, and folder names such as ``<dir>/best``
    would become invisible tags)."""
    if isinstance(error, ModelUnavailableError):
        return gr.Error(html.escape(str(error), quote=False), title="Model unavailable", print_exception=False)
    return gr.Error(html.escape(str(error), quote=False), title="Cannot use this input", print_exception=False)


def _run(function: Any) -> Any:
    """``function()``, with the app's own errors turned into the message the user sees."""
    try:
        return function()
    except (ExplorerInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error


def save_png(picture: Image.Image, name: str) -> str:
    """``picture`` written for Gradio to serve (lossless, and safe under concurrent identical answers)."""
    from hfdl.spaces import save_png as save

    return save(picture, demo.GRADIO_CACHE, name)


def grid_handler(
    model: str | None, custom_model: str | None, size: Any, dim_x: Any, dim_y: Any, extent: Any, base: str, digit: Any
) -> tuple[str, str]:
    """Gradio handler: (the grid picture, caption). Image inputs come with ``preprocess=False`` (FileData records),
    so that a file that is not an image is reported here in plain words."""
    result = _run(lambda: latent_grid(choose_source(model, custom_model), size, dim_x, dim_y, extent, base, digit))
    return save_png(result.picture, "latent_grid"), result.caption


def interpolate_handler(
    model: str | None, custom_model: str | None, digit_a: Any, digit_b: Any, steps: Any
) -> tuple[str, str]:
    """Gradio handler: (the strip of decoded codes from digit A to digit B, caption)."""
    result = _run(lambda: interpolate(choose_source(model, custom_model), digit_a, digit_b, steps))
    return save_png(result.picture, "interpolation"), result.caption


def decode_handler(model: str | None, custom_model: str | None, *values: Any) -> tuple[str, str]:
    """Gradio handler: (the decoded picture of the sliders' code, caption); runs as a slider is released."""
    result = _run(lambda: decode_sliders(choose_source(model, custom_model), values))
    return save_png(result.picture, "decoded"), result.caption


def encode_handler(model: str | None, custom_model: str | None, digit: Any) -> tuple[Any, ...]:
    """Gradio handler: digit A's code set on the sliders (MAX_SLIDERS values), and a caption."""
    values, caption = _run(lambda: digit_code(choose_source(model, custom_model), digit))
    return (*values, caption)


def sample_handler(model: str | None, custom_model: str | None, count: Any, seed: Any) -> tuple[str, str]:
    """Gradio handler: (the sampled images, caption)."""
    result = _run(lambda: random_samples(choose_source(model, custom_model), count, seed))
    return save_png(result.picture, "samples"), result.caption


def denoise_handler(
    model: str | None, custom_model: str | None, digit: Any, noise_type: str, noise_level: Any, seed: Any
) -> tuple[str, str, str, str]:
    """Gradio handler: (clean input, noisy input, reconstruction, caption)."""
    result = _run(lambda: denoise(choose_source(model, custom_model), digit, noise_type, noise_level, seed))
    names = ("clean", "noisy", "reconstruction")
    return (*(save_png(picture, name) for picture, name in zip(result.pictures, names)), result.caption)


def settings_for(model: str | None, custom_model: str | None = None) -> tuple[Any, ...]:
    """Fit the controls to the chosen VAE (read from its config.json; no torch): one visible slider per latent
    dimension (up to MAX_SLIDERS), and the grid's dimension lists."""
    source = (custom_model or "").strip() or (model or "").strip()
    latent_dim = latent_dim_of(source)
    if latent_dim is None:
        return tuple(gr.skip() for _ in range(MAX_SLIDERS + 2))
    sliders = [gr.Slider(visible=index < latent_dim) for index in range(MAX_SLIDERS)]
    dims = list(range(1, latent_dim + 1))
    return (*sliders, gr.Dropdown(choices=dims, value=1), gr.Dropdown(choices=dims, value=min(2, latent_dim)))


def refresh_models() -> tuple[Any, Any]:
    """Look for trained models again when the page loads: a model trained since the start shows up."""
    vae_choices, ae_choices = model_choices("vae"), model_choices("autoencoder")
    return (
        gr.Dropdown(choices=vae_choices, value=vae_choices[0][1]),
        gr.Dropdown(choices=ae_choices, value=ae_choices[0][1]),
    )


# --------------------------------------------------------------------------------------------------------------------
# UI (built at import; nothing is loaded until the first click).
# --------------------------------------------------------------------------------------------------------------------


DESCRIPTION = """\
# 🧭 Latent explorer
**VAE latent space**: the decoder's images over a grid of codes, on the way from one digit to another, and under
your sliders; samples from the prior. **Denoising autoencoder**: add noise to a digit and see what the network gives
back. Models: [hfdl](https://github.com/hfdl/hfdl)'s VAE (Kingma & Welling, 2014) and autoencoders (Vincent et al.,
2008), *Deep Learning Mastery* chapters 7 and 8. Draw with the brush in the canvas's left toolbar, or upload.
"""


def _canvas(label: str) -> gr.ImageEditor:
    return gr.ImageEditor(
        label=label,
        sources=["upload", "clipboard"],
        image_mode="RGBA",
        canvas_size=(280, 280),
        brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
        layers=False,
        transforms=(),
        height=340,
    )


def build_demo() -> gr.Blocks:
    """The interface, with the model lists as :func:`configure` and the environment say now."""
    vae_choices, ae_choices = model_choices("vae"), model_choices("autoencoder")
    latent_dim = latent_dim_of(vae_choices[0][1]) or MAX_SLIDERS
    dims = list(range(1, latent_dim + 1))
    with gr.Blocks(title="hfdl latent explorer", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Tab("VAE latent space"):
            with gr.Row():
                vae_model = gr.Dropdown(vae_choices, value=vae_choices[0][1], label="VAE")
                vae_custom = gr.Textbox(label="...or a model folder / Hub id", placeholder="outputs/vae-mnist-2d")
            with gr.Row():
                digit_a = _canvas("Digit A (draw or upload)")
                digit_b = _canvas("Digit B (for the interpolation)")
            with gr.Tab("Latent grid"):
                with gr.Row():
                    size = gr.Slider(GRID_SIZE[0], GRID_SIZE[1], value=GRID_SIZE[2], step=1, label="Tiles per side")
                    extent = gr.Slider(
                        GRID_EXTENT[0], GRID_EXTENT[1], value=GRID_EXTENT[2], step=0.5, label="Extent (+-)"
                    )
                    dim_x = gr.Dropdown(dims, value=1, label="x dimension")
                    dim_y = gr.Dropdown(dims, value=min(2, latent_dim), label="y dimension")
                    base = gr.Radio(
                        [("0", "zeros"), ("digit A's code", "digit A")],
                        value="zeros",
                        label="Other dimensions at",
                        info="for a code of more than 2 dimensions",
                    )
                grid_button = gr.Button("Decode the grid", variant="primary")
                grid_picture = gr.Image(label="Decoded grid", interactive=False)
                grid_caption = gr.Markdown()
            with gr.Tab("Interpolation"):
                steps = gr.Slider(STEPS[0], STEPS[1], value=STEPS[2], step=1, label="Steps (ends included)")
                strip_button = gr.Button("Interpolate from digit A to digit B", variant="primary")
                strip_picture = gr.Image(label="From A's code to B's, decoded", interactive=False)
                strip_caption = gr.Markdown()
            with gr.Tab("Sliders"):
                encode_button = gr.Button("Set the sliders to digit A's code")
                sliders = []
                for row in range(MAX_SLIDERS // 4):
                    with gr.Row():
                        for column in range(4):
                            index = row * 4 + column
                            sliders.append(
                                gr.Slider(
                                    -SLIDER_RANGE,
                                    SLIDER_RANGE,
                                    value=0.0,
                                    step=0.01,
                                    label=f"z{index + 1}",
                                    visible=index < latent_dim,
                                )
                            )
                slider_picture = gr.Image(label="Decoded", interactive=False)
                slider_caption = gr.Markdown()
            with gr.Tab("Random samples"):
                with gr.Row():
                    count = gr.Slider(SAMPLES[0], SAMPLES[1], value=SAMPLES[2], step=1, label="Number of samples")
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
                sample_button = gr.Button("Sample from the prior", variant="primary")
                sample_picture = gr.Image(label="Samples", interactive=False)
                sample_caption = gr.Markdown()
        with gr.Tab("Denoising autoencoder"):
            with gr.Row():
                ae_model = gr.Dropdown(ae_choices, value=ae_choices[0][1], label="Autoencoder")
                ae_custom = gr.Textbox(
                    label="...or a model folder / Hub id (an autoencoder or a VAE)",
                    placeholder="outputs/denoising-ae-mnist",
                )
            with gr.Row():
                with gr.Column(scale=1):
                    noisy_digit = _canvas("Your digit (draw or upload)")
                with gr.Column(scale=1):
                    noise_type = gr.Radio(
                        [
                            ("Gaussian", "gaussian"),
                            ("masking", "masking"),
                            ("salt and pepper", "salt_and_pepper"),
                            ("none", "none"),
                        ],
                        value="gaussian",
                        label="Noise",
                    )
                    noise_level = gr.Slider(
                        0.0,
                        MAX_NOISE_LEVEL,
                        value=0.3,
                        step=0.05,
                        label="Level",
                        info="Gaussian: standard deviation; masking, salt and pepper: probability per pixel",
                    )
                    noise_seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Noise seed")
                    denoise_button = gr.Button("Add noise and reconstruct", variant="primary")
            with gr.Row():
                clean_picture = gr.Image(label="Clean input (as the network sees it)", interactive=False)
                noisy_picture = gr.Image(label="Noisy input", interactive=False)
                reconstruction_picture = gr.Image(label="Reconstruction", interactive=False)
            denoise_caption = gr.Markdown()

        vae_source = [vae_model, vae_custom]
        common = {"concurrency_limit": CONCURRENCY_LIMIT, "preprocess": False}
        grid_button.click(
            grid_handler,
            inputs=[*vae_source, size, dim_x, dim_y, extent, base, digit_a],
            outputs=[grid_picture, grid_caption],
            api_name="grid",
            **common,
        )
        strip_button.click(
            interpolate_handler,
            inputs=[*vae_source, digit_a, digit_b, steps],
            outputs=[strip_picture, strip_caption],
            api_name="interpolate",
            **common,
        )
        decode_event = {
            "fn": decode_handler,
            "inputs": [*vae_source, *sliders],
            "outputs": [slider_picture, slider_caption],
            "trigger_mode": "always_last",
            **common,
        }
        gr.on([slider.release for slider in sliders], api_name="decode", **decode_event)
        encode_button.click(
            encode_handler,
            inputs=[*vae_source, digit_a],
            outputs=[*sliders, slider_caption],
            api_name="encode",
            **common,
        ).success(api_visibility="private", **decode_event)
        sample_button.click(
            sample_handler,
            inputs=[*vae_source, count, seed],
            outputs=[sample_picture, sample_caption],
            api_name="sample",
            **common,
        )
        denoise_button.click(
            denoise_handler,
            inputs=[ae_model, ae_custom, noisy_digit, noise_type, noise_level, noise_seed],
            outputs=[clean_picture, noisy_picture, reconstruction_picture, denoise_caption],
            api_name="denoise",
            **common,
        )
        for changed in (vae_model.change, vae_custom.submit):
            changed(
                settings_for,
                inputs=vae_source,
                outputs=[*sliders, dim_x, dim_y],
                api_visibility="private",
                queue=False,
            )
        blocks.load(refresh_models, outputs=[vae_model, ae_model], api_visibility="private", queue=False)
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its model lists and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", default=None, help="VAE folder or Hub id offered first (env HFDL_VAE_MODEL)")
    parser.add_argument(
        "--autoencoder", default=None, help="autoencoder folder or Hub id offered first (env HFDL_AE_MODEL)"
    )
    parser.add_argument("--outputs", nargs="+", default=None, help="folders searched for trained models (HFDL_OUTPUTS)")
    parser.add_argument("--cache-dir", default=None, help="where the digits models are trained into (HFDL_SPACE_CACHE)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=int(os.environ.get("HFDL_TORCH_THREADS", DEFAULT_TORCH_THREADS)),
        help=f"PyTorch threads per model call (env HFDL_TORCH_THREADS; default {DEFAULT_TORCH_THREADS})",
    )
    args = parser.parse_args(argv)
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be a positive integer; got {args.torch_threads}.")
    import torch

    torch.set_num_threads(args.torch_threads)
    configure(vae=args.vae, autoencoder=args.autoencoder, outputs=args.outputs, cache_dir=args.cache_dir)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    offered = ", ".join(value for kind in KINDS for _, value in model_choices(kind))
    print(f"Latent explorer on {demo.local_url} (models: {offered})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
