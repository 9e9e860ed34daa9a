"""ViT attention: what a Vision Transformer looks at, as attention rollout over the picture it classified.

The Space of the vision part of *Deep Learning Mastery*'s chapter 9 (Dosovitskiy et al., 2021). Draw or upload an
image, pick a trained hfdl ViT, and see:

* the model's top classes;
* the **attention rollout** (Abnar & Zuidema, 2020) of the class token, blended over the image the network received:
  up to a chosen layer (how attention flows through the first L blocks, residual connections included) or that
  single layer's attention; with the heads fused by their mean, max or min, or one head alone; optionally with the
  weakest weights discarded, which sharpens the map;
* the same map on the patch grid, one square per patch;
* the class token's attention in each head of the chosen layer, one small picture per head.

Models: a folder or Hub id given with ``--model`` / ``HFDL_MODEL``, every trained hfdl ViT classifier under
``outputs/`` (where the training recipe writes), and, so that the Space works with nothing trained and no Hub, a small
ViT of the course's MNIST shape trained here on scikit-learn's 8x8 digits on first use (about a minute on 2 shared
CPU cores, 96.9 % test accuracy; kept in the cache folder, so only the first request after a fresh start pays).

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request.
Run locally::

    python spaces/vit-attention/app.py --model outputs/vit-mnist
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
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: The dropdown value of the ViT trained here on scikit-learn's digits (the default when nothing else is found).
DIGITS_CHOICE = "vit-digits (trained here)"
#: The digits ViT: the course's ``vit-mnist`` shape (28 px, 7x7 patches of 4x4 pixels, 4 blocks, 4 heads) at half
#: its width (0.2M parameters): 16 epochs take about a minute on 2 shared CPU cores (55 s measured, load ~5) and
#: reach 96.9 % on the 360 held-out digits (seed 0).
DIGITS_PRESET = "vit-mnist"
DIGITS_OVERRIDES = {"hidden_size": 64, "intermediate_size": 256}
DIGITS_EPOCHS = 16
#: Side of scikit-learn's digits: drawings for the digits ViT are made at this side first (see prepare_input).
DIGITS_SIDE = 8
#: (layers, heads) of the digits ViT, as vit-mnist's: known without importing hfdl, for the sliders.
DIGITS_SHAPE = (4, 4)
DIGITS_FOLDER = "vit-digits"
#: Written beside the digits model: how it was trained and its accuracy on the held-out digits.
TRAINING_RECORD = "training.json"
#: Where the training recipe writes, relative to the repository root and to the working directory.
OUTPUTS_FOLDER = "outputs"
VIT_MODEL_TYPE = "hfdl-vit"

TOP_K = 5
#: "rollout": the product of layers 1..L (residuals included); "layer": layer L's attention alone.
MODES = ("rollout", "layer")
HEAD_FUSIONS = ("mean", "max", "min")
#: Upper bounds of the sliders before a model is known (ViT-L has 24 layers and 16 heads).
MAX_LAYERS = 24
MAX_HEADS = 16
DEFAULT_DISCARD = 0.0
MAX_DISCARD = 0.99
#: How a drawing becomes the network's input: "digit" makes it light strokes on black, cropped to the ink and
#: centred (as digit data sets are); "as is" only resizes; "auto" is "digit" for a 1-channel model.
PREPARATIONS = ("auto", "digit", "as is")
DIGIT_MARGIN = 0.1
MIN_CONTRAST = 0.1
INK_THRESHOLD = 0.3

#: Side (pixels, at least) of the main pictures and of each head's picture.
DISPLAY = 224
HEAD_TILE = 112
#: Weight of the heat colours over the image in the blends (0: only the image, 1: only the heat map).
OVERLAY_ALPHA = 0.6
#: A dark-to-bright heat ramp (black -> purple -> red -> orange -> pale yellow, like inferno), 256 entries.
_HEAT_ANCHORS = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], np.float64)

#: Requests that may run at once: the work is in torch and zlib, which release the GIL.
CONCURRENCY_LIMIT = 2
CACHE_MAX_AGE_S = 600
MAX_CACHED_MODELS = 3
#: PyTorch threads per model call under ``python app.py``: requests already run side by side, and on shared cores
#: PyTorch's threads wait for each other at every layer (see the CNN explorer's README for the measurement).
DEFAULT_TORCH_THREADS = 1


class ExplorerInputError(ValueError):
    """The input cannot be used: no image, an empty canvas, a blank picture, a file that is not an image, or a
    setting out of range."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded or is not an hfdl ViT image classifier."""


# --------------------------------------------------------------------------------------------------------------------
# Which models: --model / HFDL_MODEL, the ViT classifiers under outputs/, the digits ViT trained here.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/vit-attention/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"model": None, "outputs": None, "cache_dir": None}


def configure(
    model: str | None = None, outputs: list[str | Path] | None = None, cache_dir: str | Path | None = None
) -> None:
    """Choose the model offered first, the folders searched for trained ViTs and where the digits ViT is kept
    (None: the environment, else the default). Takes effect for UIs built afterwards (:func:`build_demo`)."""
    _settings.update(
        {
            "model": model,
            "outputs": None if outputs is None else [Path(path) for path in outputs],
            "cache_dir": None if cache_dir is None else Path(cache_dir),
        }
    )


def outputs_folders() -> list[Path]:
    """Where to look for trained ViTs: :func:`configure`'s, else ``HFDL_OUTPUTS`` (``os.pathsep``-separated), else
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
    """Where the digits ViT is trained into: configured, else ``HFDL_SPACE_CACHE``, else the temporary folder.

    A Space's disk outlives restarts of the app (not rebuilds), so the training is paid once per build."""
    configured = _settings["cache_dir"] or os.environ.get("HFDL_SPACE_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "hfdl-vit-attention"


def _read_config(folder: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the ViT image classifier saved in ``folder`` or its ``best/`` (the recipe's layout),
    with an image processor beside it, else None. Reads JSON only: listing runs when the page loads."""
    for model_dir in (folder, folder / "best"):
        if not (model_dir / "preprocessor_config.json").is_file():
            continue
        try:
            config = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError):
            continue
        heads = config.get("architectures") or []
        if config.get("model_type") == VIT_MODEL_TYPE and any(
            str(head).endswith("ForImageClassification") for head in heads
        ):
            return config
    return None


def find_trained_models(folders: list[Path] | None = None) -> list[tuple[str, str]]:
    """(label, folder) of each trained ViT classifier in the immediate subfolders of ``folders``, sorted by name."""
    found: list[tuple[str, str]] = []
    for folder in folders if folders is not None else outputs_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(path for path in folder.iterdir() if path.is_dir()):
            config = _read_config(candidate)
            if config is not None:
                shape = f"{config.get('num_hidden_layers', '?')} layers, {config.get('num_attention_heads', '?')} heads"
                found.append((f"{candidate.name} (ViT, {shape}, {candidate})", str(candidate)))
    return found


def model_choices() -> list[tuple[str, str]]:
    """The dropdown's (label, value) choices: the configured model, the trained ViTs found, the digits ViT."""
    choices: list[tuple[str, str]] = []
    configured = _settings["model"] or os.environ.get("HFDL_MODEL")
    if configured:
        choices.append((f"{configured} (--model)", configured))
    choices += find_trained_models()
    trained = (space_cache_dir() / DIGITS_FOLDER / "config.json").is_file()
    note = "" if trained else ", trained on first use: about a minute"
    choices.append((f"ViT on scikit-learn digits{note}", DIGITS_CHOICE))
    unique: dict[str, str] = {}
    for label, value in choices:
        unique.setdefault(value, label)
    return [(label, value) for value, label in unique.items()]


def model_shape(source: str) -> tuple[int, int] | None:
    """(layers, heads) of ``source`` from its ``config.json`` alone (no torch): a local folder, or a Hub id already
    in the local Hub cache (nothing is downloaded). None when it is not at hand or not a ViT: the sliders then keep
    their bounds and the request checks the values against the model."""
    if source == DIGITS_CHOICE:
        return DIGITS_SHAPE
    if not source:
        return None
    folder = Path(source).expanduser()
    if not folder.is_dir() and source.count("/") == 1:
        from huggingface_hub import try_to_load_from_cache  # gradio imports it anyway

        try:
            cached = try_to_load_from_cache(source, "config.json")
        except ValueError:  # not a valid repo id
            cached = None
        folder = Path(cached).parent if isinstance(cached, str) else folder
    config = _read_config(folder)
    if config is None:
        return None
    return int(config["num_hidden_layers"]), int(config["num_attention_heads"])


# --------------------------------------------------------------------------------------------------------------------
# The digits ViT: trained here, once, on scikit-learn's 8x8 digits scaled to 28 px.
# --------------------------------------------------------------------------------------------------------------------


def train_digits_vit(
    folder: str | Path, epochs: int = DIGITS_EPOCHS, seed: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Train a ``vit-mnist``-shaped ViT on scikit-learn's digits and save it (with its image processor) to ``folder``.

    The 1,797 digits are split 80/20 (stratified by scikit-learn's ``train_test_split``, ``seed``); the 8x8 images
    (0-16) are scaled to 0-255 and enlarged to 28 px (bilinear), so the model has the 7x7 patch grid of an MNIST ViT.
    Training images are jittered (see :func:`_jitter`): without it the model reached 94 % on the test digits but
    misread drawings placed or sized a little differently (3 of 5 test drawings right against 4 of 5). AdamW with a
    one-cycle schedule, batch 32, one PyTorch thread recommended (see the README). Returns the record written to
    ``folder/training.json`` (epochs, seconds, test accuracy, and ``digit_side`` for :func:`prepare_input`).
    """
    import time

    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import hfdl
    from hfdl.hub import save_for_hub
    from hfdl.registry import resolve_preset

    started = time.perf_counter()
    torch.manual_seed(seed)
    settings = {**DIGITS_OVERRIDES, **overrides}
    labels = {str(index): str(index) for index in range(10)}
    model = hfdl.create_model(DIGITS_PRESET, id2label=labels, label2id=labels, **settings)
    side = model.config.image_size
    digits = load_digits()
    images = [
        Image.fromarray(np.round(image * (255.0 / 16.0)).astype(np.uint8)).resize(
            (side, side), Image.Resampling.BILINEAR
        )
        for image in digits.images
    ]
    train_index, test_index = train_test_split(
        np.arange(len(images)), test_size=0.2, random_state=seed, stratify=digits.target
    )
    spec, _ = resolve_preset(model.config.model_type)
    processor = spec.make_image_processor(model.config)
    pixels = processor(images, return_tensors="pt")["pixel_values"]  # the same preprocessing as at inference
    targets = torch.as_tensor(digits.target)
    train_index, test_index = torch.as_tensor(train_index), torch.as_tensor(test_index)
    batch_size = 32
    steps_per_epoch = len(train_index) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=2e-3, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = train_index[torch.randperm(len(train_index), generator=generator)]
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            inputs = _jitter(pixels[batch], generator)
            loss = torch.nn.functional.cross_entropy(model(pixel_values=inputs).logits, targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        predicted = model(pixel_values=pixels[test_index]).logits.argmax(-1)
    accuracy = float((predicted == targets[test_index]).float().mean())
    record = {
        "data": "scikit-learn digits (8x8 scaled to 28 px), 80/20 stratified split",
        "digit_side": DIGITS_SIDE,
        "seed": seed,
        "epochs": epochs,
        "overrides": settings,
        "test_accuracy": round(accuracy, 4),
        "test_images": len(test_index),
        "seconds": round(time.perf_counter() - started, 1),
    }
    saved = save_for_hub(model, folder, processor=processor)
    (saved / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _jitter(pixel_values: Any, generator: Any, shift: float = 0.05, scale: float = 0.05) -> Any:
    """Each image moved by up to ``shift`` of its side and scaled by up to ``scale`` (bilinear, background -1, the
    processor's black): drawings are never placed and sized quite like the training digits, and 1,437 digits are few.
    """
    import torch

    count = pixel_values.shape[0]
    zoom = 1.0 + (torch.rand(count, generator=generator) * 2.0 - 1.0) * scale
    offset = (torch.rand(count, 2, generator=generator) * 2.0 - 1.0) * (2.0 * shift)  # grid units span 2 per side
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = offset
    grid = torch.nn.functional.affine_grid(theta, list(pixel_values.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(pixel_values + 1.0, grid, align_corners=False, padding_mode="zeros")
    return moved - 1.0


_train_lock = threading.Lock()


def digits_model() -> Path:
    """The digits ViT's folder, trained now if the cache does not hold it yet (one training at a time)."""
    folder = space_cache_dir() / DIGITS_FOLDER
    with _train_lock:
        if not (folder / TRAINING_RECORD).is_file():
            try:
                train_digits_vit(folder)
            except ImportError as error:  # scikit-learn missing
                raise ModelUnavailableError(f"Training the digits ViT needs scikit-learn: {error}") from error
    return folder


# --------------------------------------------------------------------------------------------------------------------
# Reading what Gradio hands over, and preparing the network's input.
# --------------------------------------------------------------------------------------------------------------------


def _open(value: Any) -> Image.Image | None:
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
            raise ExplorerInputError(f"{Path(value).name} is not an image file; upload a PNG or JPEG.") from error
    if isinstance(value, np.ndarray):
        if value.size == 0 or value.ndim not in (2, 3) or not np.issubdtype(value.dtype, np.number):
            raise ExplorerInputError(
                f"Cannot read an array of shape {value.shape} and dtype {value.dtype} as an image; expected real "
                "numbers of shape (H, W) or (H, W, C)."
            )
        if value.dtype != np.uint8:
            value = np.clip(np.asarray(value, dtype=np.float64) * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(value[..., 0] if value.ndim == 3 and value.shape[-1] == 1 else value)
    raise ExplorerInputError(f"Expected an image (a file, a PIL image or an array), got {type(value).__name__}.")


def read_image(value: Any) -> Image.Image:
    """The drawing or upload as RGB, transparency painted white (the drawing canvas is transparent paper).

    Raises:
        ExplorerInputError: No image, an empty canvas, or a file that is not an image.
    """
    if isinstance(value, dict) and "path" not in value:  # gr.ImageEditor: {"background", "layers", "composite"}
        image = _open(value.get("composite")) or _open(value.get("background"))
    else:
        image = _open(value)
    if image is None:
        raise ExplorerInputError("No image: draw on the canvas or upload a picture first.")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][1] == 0:
            raise ExplorerInputError("The canvas is empty: draw something first (pick the brush on the left).")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def _gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def check_not_blank(image: Image.Image) -> None:
    """Raises ExplorerInputError when the lightest and darkest pixels differ by less than MIN_CONTRAST."""
    gray = _gray(image)
    if float(gray.max() - gray.min()) < MIN_CONTRAST:
        raise ExplorerInputError("The image is blank: draw or upload something with visible strokes or shapes.")


def _digit(gray: np.ndarray, size: int) -> Image.Image:
    """Light strokes on black, cropped to the ink and centred on a square with a margin, ``size`` px (mode L)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark strokes on light paper -> light on dark, like the digit data sets
        gray, border = 1.0 - gray, 1.0 - border
    difference = np.abs(gray - float(np.median(border)))
    ink = difference / max(float(difference.max()), 1e-6)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    columns = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    box = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    side = int(math.ceil(max(box.shape) / (1.0 - 2.0 * DIGIT_MARGIN)))
    canvas = np.zeros((side, side))
    top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
    canvas[top : top + box.shape[0], left : left + box.shape[1]] = box
    small = np.asarray(Image.fromarray(canvas.astype(np.float32)).resize((size, size), Image.Resampling.BOX))
    small = small / max(float(small.max()), 1e-6)  # area averaging dims thin strokes; give them full strength back
    return Image.fromarray(np.clip(small * 255.0, 0, 255).round().astype(np.uint8))


def prepare_input(
    image: Image.Image, num_channels: int, size: int, preparation: str = "auto", digit_side: int | None = None
) -> Image.Image:
    """The picture the network receives before its image processor normalises it: ``size`` px square, mode ``L``
    for a 1-channel model, ``RGB`` otherwise. See :data:`PREPARATIONS`.

    ``digit_side``: the side of the digits the model was trained on when they were enlarged to ``size`` (8 for the
    digits ViT trained here). A digit is then made at that side and enlarged the same way (bilinear), so a drawing
    is as blurred as the training digits were: at 28 px directly it is much sharper, and the model, which never saw
    a sharp stroke, misreads it.

    Raises:
        ExplorerInputError: A blank picture or an unknown ``preparation``.
    """
    if preparation not in PREPARATIONS:
        raise ExplorerInputError(f"preparation must be one of {', '.join(PREPARATIONS)}; got {preparation!r}.")
    check_not_blank(image)
    if preparation == "digit" or (preparation == "auto" and num_channels == 1):
        if digit_side and digit_side < size:
            prepared = _digit(_gray(image), digit_side).resize((size, size), Image.Resampling.BILINEAR)
        else:
            prepared = _digit(_gray(image), size)
    else:
        shrinking = max(image.size) > size
        prepared = image.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)
    return prepared.convert("L" if num_channels == 1 else "RGB")


# --------------------------------------------------------------------------------------------------------------------
# Models: hfdl.inference.load (PyTorch: attention weights are read from the forward pass), cached.
# --------------------------------------------------------------------------------------------------------------------


_models: OrderedDict[tuple[str, int], Any] = OrderedDict()
_load_lock = threading.Lock()


def _cache_key(source: str) -> tuple[str, int]:
    """A local folder by its resolved path and its config's write time (a retrained model is reloaded)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return source, 0
    configs = [folder / "config.json" for folder in (path, path / "best")]
    return str(path.resolve()), max((config.stat().st_mtime_ns for config in configs if config.is_file()), default=0)


def choose_source(model: str | None, custom_model: str | None) -> str:
    """The typed folder or Hub id when there is one, else the dropdown's choice (:data:`DIGITS_CHOICE` stays as it is:
    :func:`analyse` trains that model only once the input has passed its checks).

    Raises:
        ExplorerInputError: Neither is given.
    """
    source = (custom_model or "").strip() or (model or "").strip()
    if not source:
        raise ExplorerInputError("Choose a model in the list, or type a model folder or Hub id.")
    return source


def load_vit(source: str) -> Any:
    """Load ``source`` (a model folder, a training output folder or a Hub id) as an hfdl ViT classifier, cached.

    Returns the :class:`hfdl.inference.Predictor`.

    Raises:
        ModelUnavailableError: It cannot be loaded, is not an image classifier, not a ViT, or has no image processor.
    """
    key = _cache_key(source)
    with _load_lock:  # requests run in worker threads: load each model once
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        from hfdl.inference import load

        try:
            predictor = load(source, backend="torch")
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            raise ModelUnavailableError(f"Could not load {source!r}: {str(error).strip()}") from error
        if predictor.task != "image-classification":
            raise ModelUnavailableError(
                f"{source!r} holds a {predictor.task!r} model; the app needs an image classifier "
                "(saved from ViTForImageClassification)."
            )
        if predictor.config.model_type != VIT_MODEL_TYPE:
            raise ModelUnavailableError(
                f"{source!r} holds a {predictor.config.model_type!r} model; attention rollout needs a Vision "
                f"Transformer ({VIT_MODEL_TYPE!r}, e.g. hfdl.create_model('vit-mnist'))."
            )
        if predictor.processor is None:
            raise ModelUnavailableError(
                f"{source!r} has no preprocessor_config.json, so images cannot be prepared for it; save the image "
                "processor next to the model (hfdl.hub.save_for_hub does)."
            )
        _models[key] = predictor
        while len(_models) > MAX_CACHED_MODELS:
            _models.popitem(last=False)
        return predictor


# --------------------------------------------------------------------------------------------------------------------
# Settings, maps and pictures.
# --------------------------------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer setting from a slider or an API call (2.0 is 2), within [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not low <= number <= high:
        raise ExplorerInputError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def parse_head(head: Any, num_heads: int) -> tuple[int | None, str]:
    """The head setting -> (head index or None, fusion): "mean"/"max"/"min" fuse all heads; "1".."H" is one head.

    Raises:
        ExplorerInputError: Anything else, naming the values allowed for this model.
    """
    text = str(head).strip().lower() if head is not None else ""
    if text in HEAD_FUSIONS:
        return None, text
    allowed = f"{', '.join(HEAD_FUSIONS)} (all heads fused) or a head number from 1 to {num_heads}"
    try:
        number = float(text)
    except ValueError:
        raise ExplorerInputError(f"head must be {allowed}; got {head!r}.") from None
    if not number.is_integer() or not 1 <= number <= num_heads:
        raise ExplorerInputError(f"head must be {allowed}; got {head!r}.")
    return int(number) - 1, "mean"


def head_choices(num_heads: int) -> list[tuple[str, str]]:
    """The head dropdown: the three fusions, then each head (values "1".."H", as API callers pass them)."""
    fused = [(f"all heads: {fusion}", fusion) for fusion in HEAD_FUSIONS]
    return fused + [(f"head {index}", str(index)) for index in range(1, num_heads + 1)]


def _lookup_table(anchors: np.ndarray, steps: int = 256) -> np.ndarray:
    """``anchors`` (colours at evenly spaced stops) linearly interpolated to ``steps`` uint8 RGB rows."""
    position = np.linspace(0.0, len(anchors) - 1, steps)
    index = np.minimum(position.astype(int), len(anchors) - 2)
    fraction = (position - index)[:, None]
    return (anchors[index] * (1.0 - fraction) + anchors[index + 1] * fraction).round().astype(np.uint8)


HEAT = _lookup_table(_HEAT_ANCHORS)


def heat_colors(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB uint8 on the heat ramp (0 dark, 1 bright)."""
    return HEAT[np.clip(np.asarray(unit, dtype=np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)]


def _scale_factor(side: int, minimum: int) -> int:
    return max(1, math.ceil(minimum / side))


def grid_picture(unit_map: np.ndarray, minimum: int = DISPLAY) -> Image.Image:
    """The map on the patch grid: each patch one square (nearest, integer factor), so
    ``picture[::factor, ::factor]`` gives the colours of the values back."""
    factor = _scale_factor(max(unit_map.shape), minimum)
    colors = heat_colors(unit_map).repeat(factor, axis=0).repeat(factor, axis=1)
    return Image.fromarray(colors)


def blend(network_input: Image.Image, unit_map: np.ndarray, minimum: int = DISPLAY) -> Image.Image:
    """The map, smoothly enlarged (bilinear) to the image, in heat colours over the network's input (enlarged by
    an integer factor, nearest, so its pixels stay crisp)."""
    factor = _scale_factor(max(network_input.size), minimum)
    width, height = network_input.width * factor, network_input.height * factor
    base = np.asarray(network_input.convert("RGB").resize((width, height), Image.Resampling.NEAREST), np.float64)
    smooth = Image.fromarray(unit_map.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    heat = heat_colors(np.asarray(smooth)).astype(np.float64)
    return Image.fromarray(((1.0 - OVERLAY_ALPHA) * base + OVERLAY_ALPHA * heat).round().astype(np.uint8))


def save_png(picture: Image.Image, cache_dir: str | Path, name: str) -> str:
    """``picture`` written for Gradio to serve (lossless, and safe under concurrent identical answers)."""
    from hfdl.spaces import save_png as save

    return save(picture, cache_dir, name)


def _training_record(model_dir: Path) -> dict[str, Any] | None:
    """The ``training.json`` the digits ViT was saved with (see :func:`train_digits_vit`), else None."""
    try:
        record = json.loads((Path(model_dir) / TRAINING_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class Analysis(NamedTuple):
    """Everything one request shows, as Python values (the handler turns the pictures into files)."""

    scores: dict[str, float]
    network_input: Image.Image  # what the network received, at its own size, before normalisation
    rollout: np.ndarray  # (grid_height, grid_width) in [0, 1]: the map drawn in both pictures
    overlay: Image.Image
    grid: Image.Image
    head_maps: list[np.ndarray]  # the class token's attention in each head of the chosen layer, each in [0, 1]
    head_pictures: list[tuple[Image.Image, str]]
    caption: str


def analyse(
    image: Any,
    source: str,
    layer: Any = None,
    mode: str = "rollout",
    head: Any = "mean",
    discard_ratio: Any = DEFAULT_DISCARD,
    preparation: str = "auto",
    top_k: int = TOP_K,
) -> Analysis:
    """Classify ``image`` with the ViT at ``source`` and draw where its class token looks.

    Args:
        source: A model folder, training output folder or Hub id, or :data:`DIGITS_CHOICE` (trained on first use).
        layer: 1-based; None means the last layer. With ``mode="rollout"`` the map rolls attention out through
            layers 1..``layer``; with ``mode="layer"`` it is that layer's attention alone.
        head: "mean", "max" or "min" to fuse all heads, or a head number ("1".."H").
        discard_ratio: The fraction of each layer's weakest attention weights set to zero before the rollout.

    Raises:
        ExplorerInputError: Unusable input or settings.
        ModelUnavailableError: The model cannot be loaded or is not a ViT classifier.
    """
    picture = read_image(image)
    if mode not in MODES:
        raise ExplorerInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    if preparation not in PREPARATIONS:
        raise ExplorerInputError(f"preparation must be one of {', '.join(PREPARATIONS)}; got {preparation!r}.")
    try:
        discard = float(discard_ratio)
    except (TypeError, ValueError):
        discard = math.nan
    if not 0.0 <= discard <= MAX_DISCARD:
        raise ExplorerInputError(f"discard ratio must be a number from 0 to {MAX_DISCARD}; got {discard_ratio!r}.")
    check_not_blank(picture)  # before loading: a blank canvas needs no model (nor a minute of training)
    predictor = load_vit(str(digits_model()) if source == DIGITS_CHOICE else source)
    config = predictor.config
    num_layers, num_heads = config.num_hidden_layers, config.num_attention_heads
    layer = num_layers if layer is None else _check_int("layer", layer, 1, num_layers)
    head_index, fusion = parse_head(head, num_heads)

    import torch

    from hfdl.inference import top_classes
    from hfdl.models.vit import attention_rollout, rollout_map

    record = _training_record(predictor.model_dir)
    digit_side = record.get("digit_side") if record else None
    prepared = prepare_input(picture, config.num_channels, config.image_size, preparation, digit_side)
    pixel_values = predictor.processor(prepared, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        outputs = predictor.model(pixel_values=pixel_values, output_attentions=True)
    attentions = outputs.attentions
    scores = {entry["label"]: entry["score"] for entry in top_classes(outputs.logits, config, top_k)[0]}

    grid_side = config.image_size // config.patch_size
    prefix = 1 if config.class_token else 0
    options = {"head": head_index, "head_fusion": fusion, "discard_ratio": discard}
    if mode == "rollout":
        rolled = attention_rollout(attentions, num_layers=layer, **options)
    else:
        rolled = attention_rollout(attentions[layer - 1 : layer], **options)
    unit_map = rollout_map(rolled, grid_side, num_prefix_tokens=prefix)[0].numpy().astype(np.float64)
    # Each head's own attention in the chosen layer (no rollout): the row of the class token (or the mean row).
    per_head = attentions[layer - 1][0].float()
    head_maps = [rollout_map(per_head[index][None], grid_side, prefix)[0].numpy() for index in range(num_heads)]
    head_pictures = []
    for index, head_map in enumerate(head_maps):
        row, column = np.unravel_index(int(np.argmax(head_map)), head_map.shape)
        head_pictures.append(
            (blend(prepared, head_map, HEAD_TILE), f"layer {layer}, head {index + 1}: peak at patch ({row}, {column})")
        )

    whose = "the class token" if prefix else "the mean over all tokens (no class token)"
    heads_text = f"head {head_index + 1}" if head_index is not None else f"the {fusion} over its {num_heads} heads"
    what = (
        f"**Attention rollout through layers 1-{layer}** of {num_layers}"
        if mode == "rollout"
        else f"**Attention of layer {layer}** of {num_layers} alone"
    )
    caption = (
        f"{what}: each layer's attention is {heads_text}"
        + (f", its weakest {discard:.0%} of weights discarded" if discard else "")
        + (
            ", mixed half-and-half with the residual identity and multiplied layer by layer"
            if mode == "rollout"
            else ""
        )
        + f". The map is {whose}'s row over the {grid_side}x{grid_side} patches of {config.patch_size}x"
        f"{config.patch_size} pixels, scaled to its own range (dark: least attended, bright: most)."
    )
    if record and isinstance(record.get("test_accuracy"), (int, float)):
        caption += f" Model: trained here on scikit-learn digits, {record['test_accuracy']:.1%} test accuracy."
    return Analysis(
        scores, prepared, unit_map, blend(prepared, unit_map), grid_picture(unit_map), head_maps, head_pictures, caption
    )


# --------------------------------------------------------------------------------------------------------------------
# Gradio handlers.
# --------------------------------------------------------------------------------------------------------------------


def _user_error(error: ExplorerInputError | ModelUnavailableError) -> gr.Error:
    """The message a user sees (escaped: Gradio renders it as HTML, and folder names such as ``<dir>/best``
    would become invisible tags)."""
    if isinstance(error, ModelUnavailableError):
        return gr.Error(html.escape(str(error), quote=False), title="Model unavailable", print_exception=False)
    return gr.Error(html.escape(str(error), quote=False), title="Cannot use this input", print_exception=False)


def analyse_handler(
    image: Any,
    model: str | None,
    custom_model: str | None,
    layer: Any,
    mode: str,
    head: Any,
    discard_ratio: Any,
    preparation: str,
) -> tuple[dict[str, float], str, str, list[tuple[str, str]], str]:
    """Gradio handler: (top classes, rollout over the image, rollout on the patch grid, per-head gallery, caption).

    Wired with ``preprocess=False`` so that a file that is not an image is reported here in plain words.
    """
    try:
        result = analyse(image, choose_source(model, custom_model), layer, mode, head, discard_ratio, preparation)
    except (ExplorerInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    cache = demo.GRADIO_CACHE
    return (
        result.scores,
        save_png(result.overlay, cache, "rollout_overlay"),
        save_png(result.grid, cache, "rollout_grid"),
        [
            (save_png(picture, cache, f"head_{index + 1}"), caption)
            for index, (picture, caption) in enumerate(result.head_pictures)
        ],
        result.caption,
    )


def settings_for(model: str | None, custom_model: str | None = None) -> tuple[Any, Any]:
    """Fit the layer slider and the head list to the chosen model (read from its config.json; no torch)."""
    source = (custom_model or "").strip() or (model or "").strip()
    shape = model_shape(source)
    if shape is None:
        return gr.skip(), gr.skip()
    layers, heads = shape
    return gr.Slider(maximum=layers, value=layers), gr.Dropdown(choices=head_choices(heads), value="mean")


def refresh_models() -> Any:
    """Look for trained models again when the page loads: a model trained since the start shows up."""
    choices = model_choices()
    return gr.Dropdown(choices=choices, value=choices[0][1])


# --------------------------------------------------------------------------------------------------------------------
# UI (built at import; nothing is loaded until the first click).
# --------------------------------------------------------------------------------------------------------------------


DESCRIPTION = """\
# 👁️ ViT attention
Draw on the canvas (pick the brush in its left toolbar) or upload a picture, then see what a **Vision Transformer**
predicts and where its class token looks: the **attention rollout** (Abnar & Zuidema, 2020) blended over the image,
up to the layer you choose or for that layer alone, for all heads fused or one head, and each head's own map.
Models: [hfdl](https://github.com/hfdl/hfdl)'s ViT (Dosovitskiy et al., 2021), *Deep Learning Mastery* chapter 9.
"""


def build_demo() -> gr.Blocks:
    """The interface, with the model list as :func:`configure` and the environment say now."""
    choices = model_choices()
    layers, heads = model_shape(choices[0][1]) or (MAX_LAYERS, MAX_HEADS)
    with gr.Blocks(title="hfdl ViT attention", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.ImageEditor(
                    label="Your image (draw a digit, or upload)",
                    sources=["upload", "clipboard"],
                    image_mode="RGBA",
                    canvas_size=(280, 280),
                    brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                    layers=False,
                    transforms=(),
                )
                with gr.Row():
                    model = gr.Dropdown(choices, value=choices[0][1], label="Model")
                    custom_model = gr.Textbox(label="...or a model folder / Hub id", placeholder="outputs/vit-mnist")
                preparation = gr.Radio(
                    list(PREPARATIONS),
                    value="auto",
                    label="Input preparation",
                    info="digit: light strokes on black, centred; auto: digit for grayscale models",
                )
            with gr.Column(scale=2):
                with gr.Row():
                    mode = gr.Radio(
                        [("rollout up to the layer", "rollout"), ("this layer alone", "layer")],
                        value="rollout",
                        label="Map",
                    )
                    layer = gr.Slider(1, layers, value=layers, step=1, label="Layer")
                with gr.Row():
                    head = gr.Dropdown(head_choices(heads), value="mean", label="Heads")
                    discard = gr.Slider(
                        0.0, MAX_DISCARD, value=DEFAULT_DISCARD, step=0.01, label="Discard ratio (weakest weights)"
                    )
                button = gr.Button("Predict and show attention", variant="primary")
                with gr.Row():
                    scores = gr.Label(label="Top classes", num_top_classes=TOP_K)
                    overlay = gr.Image(label="Attention over the image", interactive=False)
                    grid = gr.Image(label="The same map, one square per patch", interactive=False)
                caption = gr.Markdown()
                heads_gallery = gr.Gallery(
                    label="Each head of the chosen layer (class token's attention)", columns=4, height="auto"
                )

        button.click(
            analyse_handler,
            inputs=[image, model, custom_model, layer, mode, head, discard, preparation],
            outputs=[scores, overlay, grid, heads_gallery, caption],
            api_name="analyse",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,
        )
        for changed in (model.change, custom_model.submit):
            changed(
                settings_for,
                inputs=[model, custom_model],
                outputs=[layer, head],
                api_visibility="private",
                queue=False,
            )
        blocks.load(refresh_models, outputs=model, api_visibility="private", queue=False)
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its model list and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id offered first (env HFDL_MODEL)")
    parser.add_argument("--outputs", nargs="+", default=None, help="folders searched for trained ViTs (HFDL_OUTPUTS)")
    parser.add_argument("--cache-dir", default=None, help="where the digits ViT is trained into (HFDL_SPACE_CACHE)")
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
    configure(model=args.model, outputs=args.outputs, cache_dir=args.cache_dir)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    offered = ", ".join(value for _, value in model_choices())
    print(f"ViT attention on {demo.local_url} (models: {offered})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
