"""CNN explorer: look inside any hfdl image CNN, and work out a convolution by hand.

The Space of the CNN chapter of *Deep Learning Mastery* (LeNet-5, AlexNet, VGG, ResNet). Two tabs share one
drawing/upload canvas:

* **Explore a CNN**: pick a trained model (the folders found under ``outputs/``, where ``hfdl demo`` and the training
  recipe write, or any local folder / Hub id), draw or upload an image, and see the top classes, the image the
  network actually received, the filters of its first convolution layer and the feature maps of every stage.
* **Convolution by hand**: the same image, in grayscale and small, convolved with a 3x3 kernel (edge, blur, sharpen
  or your own) by a plain loop written to be read, with the stride and padding you choose and the output size
  formula ``floor((n + 2p - k) / s) + 1`` filled in with your numbers.

Works on any hfdl image classifier that has an ``nn.Conv2d``: the first one is "the first layer", and the stages
are the model's 4-D ``hidden_states`` (VGG's and AlexNet's last hidden states are 2-D fully connected activations
and are left out). The PyTorch weights are needed to show filters, so models load with the PyTorch backend of
:func:`hfdl.inference.load`, the loader of the ``hfdl`` command.

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request and
cached, so ``import app`` stays cheap. Run locally::

    python spaces/cnn-explorer/app.py --model outputs/lenet5-digits
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: The published LeNet-5 of ``hfdl demo``: always offered, so a Space without an ``outputs/`` folder has a model.
HUB_MODEL_ID = "hfdl/lenet5-digits"
#: Where ``hfdl demo`` and the training recipe write, relative to the repository root and to the working directory.
OUTPUTS_FOLDER = "outputs"
#: hfdl image classifiers with no convolution layer: never listed (typed in, they get a clear error on loading).
NO_CONVOLUTION_MODEL_TYPES = frozenset({"hfdl-mlp"})
#: hfdl image classifiers that are not CNNs although a convolution computes their input, with where to look
#: instead: never listed, and refused with the reason on loading.
NOT_CNN_MODEL_TYPES = {
    "hfdl-vit": "a Vision Transformer: its one convolution is the patch embedding, and its layers keep no feature "
    "maps; see what it attends to in the vit-attention Space",
}

TOP_K = 5
#: How a drawing becomes the network's input. "digit": light strokes on black, cropped to the ink and centred, as
#: digit datasets are (and as the main job's LeNet-5 was trained); "as is": only resized to the model's input;
#: "auto": "digit" for a grayscale (1-channel) model, "as is" for an RGB one.
PREPARATIONS = ("auto", "digit", "as is")
#: Fraction of the side left empty on each side around a centred digit (the 8x8 training digits fill their box).
DIGIT_MARGIN = 0.05
#: Below this spread between the lightest and darkest pixel (0-1 scale) an image is blank: nothing to look at.
MIN_CONTRAST = 0.1
#: After stretching paper to 0 and the strongest stroke to 1, pixels above this are ink (for the crop).
INK_THRESHOLD = 0.3
DEFAULT_CHANNELS = 16
MAX_CHANNELS = 64

# Convolution by hand: the ranges of the sliders, checked again for API callers.
CONV_SIZES = (16, 64)
DEFAULT_CONV_SIZE = 32
CONV_STRIDES = (1, 3)
CONV_PADDINGS = (0, 2)
KERNEL_SIZE = 3
#: The kernels offered, as the text shown in (and parsed from) the kernel box, so a preset is a starting point to
#: edit. Deep learning's "convolution" does not flip the kernel (it is a cross-correlation), and neither does this.
KERNEL_PRESETS = {
    "edge": "-1 -1 -1\n-1 8 -1\n-1 -1 -1",
    "vertical edges (Sobel)": "-1 0 1\n-2 0 2\n-1 0 1",
    "horizontal edges (Sobel)": "-1 -2 -1\n0 0 0\n1 2 1",
    "blur": "1/9 1/9 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9",
    "sharpen": "0 -1 0\n-1 5 -1\n0 -1 0",
}
CUSTOM_KERNEL = "custom"
KERNEL_CHOICES = (*KERNEL_PRESETS, CUSTOM_KERNEL)

# Pictures: tiles on a grid separated by GRID_GAP pixels of GRID_BACKGROUND. Every tile is stretched to its own
# range, so it holds at least one pixel unlike the background and an empty cell is easy to tell from a tile.
GRID_GAP = 4
GRID_BACKGROUND = (255, 255, 255)
FILTER_TILE = 64  # filters (3x3 to 11x11) are upscaled (nearest) by an integer factor to about this side
MAP_TILE = 64  # feature maps smaller than this are upscaled (nearest) by an integer factor to at least this side
INPUT_DISPLAY = 192  # the network's input and the convolution panel's pictures are shown at least this large
MAX_FILTERS = 256

#: A perceptual ramp (dark blue -> green -> yellow, like viridis) for activations, as a 256-entry lookup table.
_RAMP_ANCHORS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float64)
#: A diverging ramp for signed values (the convolution's output): blue below zero, white at zero, red above.
_DIVERGING_ANCHORS = np.array([(33, 102, 172), (247, 247, 247), (178, 24, 43)], np.float64)

#: Requests that may run at once: most of the time is spent in torch, numpy and zlib, which release the GIL.
CONCURRENCY_LIMIT = 2
#: Pictures and uploads older than this many seconds are removed from Gradio's cache, checked as often.
CACHE_MAX_AGE_S = 600
#: Models kept loaded (least recently used dropped first): an ImageNet VGG holds ~0.5 GB.
MAX_CACHED_MODELS = 3
#: PyTorch threads per model call when served by ``python app.py``. One: requests already run side by side
#: (CONCURRENCY_LIMIT), and on a shared 2-core machine PyTorch's 2 intra-op threads wait for each other at every
#: layer whenever one of them is descheduled. Measured on this project's 2 shared cores (load average ~7.5): a
#: LeNet-5 forward pass took 99-109 ms with 2 threads, 0.22-0.24 ms with 1.
DEFAULT_TORCH_THREADS = 1


class ExplorerInputError(ValueError):
    """The input cannot be used: no image, an empty canvas, a blank picture, a file that is not an image, a bad
    kernel or slider value."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded or is not an image CNN (a missing folder, an MLP, a text model)."""


# --------------------------------------------------------------------------------------------------------------------
# Which models to offer: trained folders under outputs/, the command line's --model, the published Hub model.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/cnn-explorer/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"model": None, "outputs": None}


def configure(model: str | None = None, outputs: list[str | Path] | None = None) -> None:
    """Choose the model offered first and the folders searched for trained models (None: environment/default).

    Takes effect for UIs built afterwards (:func:`build_demo`) and for :func:`model_choices`.
    """
    _settings.update({"model": model, "outputs": None if outputs is None else [Path(path) for path in outputs]})


def outputs_folders() -> list[Path]:
    """Where to look for trained models: :func:`configure`'s, else ``HFDL_OUTPUTS`` (``os.pathsep``-separated),
    else ``outputs/`` at the repository root and in the working directory (``hfdl demo`` writes relative to it)."""
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


def _saved_cnn_classifier(folder: Path) -> dict[str, Any] | None:
    """The config of the image CNN classifier saved in ``folder`` or its ``best/`` (the recipe's layout), with the
    image processor it needs, else None.

    Reads ``config.json`` only (no hfdl, no torch): listing must stay cheap, as it runs when the page loads.
    """
    for model_dir in (folder, folder / "best"):
        if not (model_dir / "preprocessor_config.json").is_file():
            continue
        try:
            config = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError):
            continue
        model_type = str(config.get("model_type", ""))
        heads = config.get("architectures") or []
        if (
            model_type.startswith("hfdl-")
            and model_type not in NO_CONVOLUTION_MODEL_TYPES
            and model_type not in NOT_CNN_MODEL_TYPES
            and any(str(head).endswith("ForImageClassification") for head in heads)
        ):
            return config
    return None


def find_trained_models(folders: list[Path] | None = None) -> list[tuple[str, str]]:
    """(label, folder) of each trained image CNN in the immediate subfolders of ``folders``, sorted by name."""
    found: list[tuple[str, str]] = []
    for folder in folders if folders is not None else outputs_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(path for path in folder.iterdir() if path.is_dir()):
            config = _saved_cnn_classifier(candidate)
            if config is not None:
                architecture = str(config["model_type"]).removeprefix("hfdl-")
                found.append((f"{candidate.name} ({architecture}, {candidate})", str(candidate)))
    return found


def model_choices() -> list[tuple[str, str]]:
    """The dropdown's (label, value) choices: the configured model, the trained folders found, the Hub model."""
    choices: list[tuple[str, str]] = []
    configured = _settings["model"] or os.environ.get("HFDL_MODEL")
    if configured:
        choices.append((f"{configured} (--model)", configured))
    choices += find_trained_models()
    choices.append((f"{HUB_MODEL_ID} (Hub)", HUB_MODEL_ID))
    unique: dict[str, str] = {}
    for label, value in choices:
        unique.setdefault(value, label)
    return [(label, value) for value, label in unique.items()]


# --------------------------------------------------------------------------------------------------------------------
# Reading what Gradio hands over: an ImageEditor value, a file, a PIL image or an array -> RGB on white paper.
# --------------------------------------------------------------------------------------------------------------------


def _open(value: Any) -> Image.Image | None:
    """Open one image value; None for "nothing there" (an editor without a background or composite)."""
    if isinstance(value, dict) and "path" in value:  # a FileData record (handlers run with preprocess=False)
        value = value["path"]
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (str, os.PathLike)):
        try:
            with Image.open(value) as opened:
                opened.load()
                return ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF
        except (UnidentifiedImageError, OSError) as error:
            raise ExplorerInputError(f"{Path(value).name} is not an image file; upload a PNG or JPEG.") from error
    if isinstance(value, np.ndarray):
        if value.size == 0 or value.ndim not in (2, 3):
            raise ExplorerInputError(f"Cannot read an array of shape {value.shape} as an image; expected (H, W[, C]).")
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool) or np.iscomplexobj(value):
            raise ExplorerInputError(f"Cannot read an array of dtype {value.dtype} as an image; expected real numbers.")
        if value.dtype != np.uint8:
            value = np.clip(np.asarray(value, dtype=np.float64) * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(value[..., 0] if value.ndim == 3 and value.shape[-1] == 1 else value)
    raise ExplorerInputError(f"Expected an image (a file, a PIL image or an array), got {type(value).__name__}.")


def read_image(value: Any) -> Image.Image:
    """The drawing or upload as an RGB image, transparency painted white (the canvas is transparent paper).

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
    """Grayscale as float (H, W) in [0, 1]."""
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _resize(image: Image.Image, size: int) -> Image.Image:
    """Square ``size`` x ``size``, as the models' image processors resize (the aspect ratio is not kept): area
    averaging when shrinking (thin strokes survive), bicubic when enlarging."""
    shrinking = max(image.size) > size
    return image.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)


def _digit(gray: np.ndarray, size: int) -> Image.Image:
    """Light strokes on black, cropped to the ink, centred on a square with a margin, at ``size`` (mode L)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark strokes on light paper -> light on dark, like the digit datasets
        gray, border = 1.0 - gray, 1.0 - border
    # Ink is whatever differs from the paper, in either direction (darker marks on a mid-gray page count too), so a
    # picture that passed the blank check always has some: its strongest mark is 1 after the stretch.
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


def check_not_blank(image: Image.Image) -> np.ndarray:
    """The image in grayscale (see :func:`_gray`), after checking that it shows something.

    Raises:
        ExplorerInputError: The lightest and darkest pixels differ by less than MIN_CONTRAST.
    """
    gray = _gray(image)
    if float(gray.max() - gray.min()) < MIN_CONTRAST:
        raise ExplorerInputError("The image is blank: draw or upload something with visible strokes or shapes.")
    return gray


def prepare_input(image: Image.Image, num_channels: int, size: int, preparation: str = "auto") -> Image.Image:
    """The picture the network receives (before its image processor normalises it): ``size`` x ``size``, mode ``L``
    for a 1-channel model and ``RGB`` for a 3-channel one. See :data:`PREPARATIONS`.

    Raises:
        ExplorerInputError: A blank picture, or an unknown ``preparation``.
    """
    if preparation not in PREPARATIONS:
        raise ExplorerInputError(f"preparation must be one of {', '.join(PREPARATIONS)}; got {preparation!r}.")
    gray = check_not_blank(image)
    if preparation == "digit" or (preparation == "auto" and num_channels == 1):
        prepared = _digit(gray, size)
    else:
        prepared = _resize(image, size)
    return prepared.convert("L" if num_channels == 1 else "RGB")


# --------------------------------------------------------------------------------------------------------------------
# Models: hfdl.inference.load (PyTorch), a first convolution layer, cached.
# --------------------------------------------------------------------------------------------------------------------


class LoadedCNN(NamedTuple):
    """A loaded classifier (:class:`hfdl.inference.Predictor`) and its first convolution layer, by module name."""

    predictor: Any
    first_conv_name: str
    first_conv: Any


_models: OrderedDict[tuple[str, int], LoadedCNN] = OrderedDict()
_load_lock = threading.Lock()


def _cache_key(source: str) -> tuple[str, int]:
    """A local folder by its resolved path and the time its config was last written (a retrained model reloads)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return source, 0
    configs = [folder / "config.json" for folder in (path, path / "best")]
    return str(path.resolve()), max((config.stat().st_mtime_ns for config in configs if config.is_file()), default=0)


def load_cnn(source: str) -> LoadedCNN:
    """Load ``source`` (a model folder, training output folder or Hub id) as an image CNN, cached.

    Raises:
        ModelUnavailableError: It cannot be loaded, is not an image classifier, or has no convolution layer.
    """
    key = _cache_key(source)
    with _load_lock:  # Gradio serves requests from worker threads: load each model once
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        import torch  # imported with the first model, not with the app

        from hfdl.inference import load

        try:
            predictor = load(source, backend="torch")
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            raise ModelUnavailableError(f"Could not load {source!r}: {str(error).strip()}") from error
        if predictor.task != "image-classification":
            raise ModelUnavailableError(
                f"{source!r} holds a {predictor.task!r} model; the explorer needs an image classifier "
                "(saved from a ...ForImageClassification head)."
            )
        modules = predictor.model.named_modules()
        convolutions = [(name, module) for name, module in modules if isinstance(module, torch.nn.Conv2d)]
        if predictor.config.model_type in NOT_CNN_MODEL_TYPES:
            raise ModelUnavailableError(
                f"{source!r} holds {NOT_CNN_MODEL_TYPES[predictor.config.model_type]}; pick an image CNN: LeNet-5, "
                "AlexNet, VGG or ResNet."
            )
        if not convolutions:
            raise ModelUnavailableError(
                f"{source!r} holds a {predictor.config.model_type} model, which has no convolution layer (nn.Conv2d); "
                "pick an image CNN: LeNet-5, AlexNet, VGG or ResNet."
            )
        if predictor.processor is None:
            raise ModelUnavailableError(
                f"{source!r} has no preprocessor_config.json, so images cannot be prepared for it; save the image "
                "processor next to the model (processor.save_pretrained or hfdl.hub.save_for_hub)."
            )
        loaded = LoadedCNN(predictor, *convolutions[0])
        _models[key] = loaded
        while len(_models) > MAX_CACHED_MODELS:
            _models.popitem(last=False)
        return loaded


# --------------------------------------------------------------------------------------------------------------------
# Pictures: filters, feature maps and convolution results as grids of tiles.
# --------------------------------------------------------------------------------------------------------------------


def _lookup_table(anchors: np.ndarray, steps: int = 256) -> np.ndarray:
    """``anchors`` (colours at evenly spaced stops) linearly interpolated to ``steps`` uint8 RGB rows."""
    position = np.linspace(0.0, len(anchors) - 1, steps)
    index = np.minimum(position.astype(int), len(anchors) - 2)
    fraction = (position - index)[:, None]
    return (anchors[index] * (1.0 - fraction) + anchors[index + 1] * fraction).round().astype(np.uint8)


_RAMP = _lookup_table(_RAMP_ANCHORS)
_DIVERGING = _lookup_table(_DIVERGING_ANCHORS)


def _stretch(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] by their own min and max (a constant array -> 0.5 everywhere)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.full(values.shape, 0.5)
    return (values - low) / (high - low)


def _levels(unit: np.ndarray) -> np.ndarray:
    """[0, 1] -> 256 integer levels, for a lookup table or as gray."""
    return np.clip(unit * 255.0 + 0.5, 0, 255).astype(np.uint8)


def colorize(values: np.ndarray) -> np.ndarray:
    """A 2-D array as RGB uint8 through the perceptual ramp, stretched to its own range: each map shows its pattern."""
    return _RAMP[_levels(_stretch(values))]


def colorize_signed(values: np.ndarray) -> np.ndarray:
    """A 2-D array as RGB uint8 on the diverging ramp, symmetric around 0 (white), so the sign reads at a glance."""
    limit = float(np.abs(values).max())
    unit = np.full(values.shape, 0.5) if limit == 0 else 0.5 + values / (2.0 * limit)
    return _DIVERGING[_levels(unit)]


def _upscale(tile: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer ``factor``: every value stays a crisp square of pixels."""
    return tile.repeat(factor, axis=0).repeat(factor, axis=1)


def tile_origins(count: int, columns: int, tile_height: int, tile_width: int) -> list[tuple[int, int]]:
    """(top, left) of each of ``count`` tiles on a grid of ``columns``, separated and framed by GRID_GAP."""
    return [
        (GRID_GAP + row * (tile_height + GRID_GAP), GRID_GAP + column * (tile_width + GRID_GAP))
        for row, column in (divmod(position, columns) for position in range(count))
    ]


def tile_grid(tiles: list[np.ndarray], columns: int | None = None) -> Image.Image:
    """Lay same-sized RGB uint8 tiles (h, w, 3) out on a grid on GRID_BACKGROUND, row by row.

    By default the grid is about square (``ceil(sqrt(count))`` columns): it then fills the square cells of a gallery
    and reads at the same scale whether it holds 6 maps or 64.
    """
    height, width = tiles[0].shape[:2]
    columns = max(1, min(columns or math.ceil(math.sqrt(len(tiles))), len(tiles)))
    rows = -(-len(tiles) // columns)
    canvas = np.empty((GRID_GAP + rows * (height + GRID_GAP), GRID_GAP + columns * (width + GRID_GAP), 3), np.uint8)
    canvas[...] = GRID_BACKGROUND
    for (top, left), tile in zip(tile_origins(len(tiles), columns, height, width), tiles):
        canvas[top : top + height, left : left + width] = tile
    return Image.fromarray(canvas)


def filter_tiles(weight: np.ndarray) -> list[np.ndarray]:
    """One RGB uint8 tile per filter of a convolution weight (out_channels, in_channels, kh, kw), unscaled.

    Each filter is stretched to its own range: absolute scales differ between filters and say little, the pattern
    is what the filter looks for. A filter over 3 input channels is shown in colour (its R, G and B weights, stretched
    together so their balance stays); any other number of inputs is shown as the mean over them, in gray.
    """
    tiles = []
    for kernel in weight[:MAX_FILTERS]:
        if kernel.shape[0] == 3:
            tiles.append(_levels(_stretch(kernel.transpose(1, 2, 0))))
        else:
            gray = _levels(_stretch(kernel.mean(axis=0)))
            tiles.append(np.repeat(gray[..., None], 3, axis=-1))
    return tiles


def render_filters(weight: np.ndarray) -> Image.Image:
    """The first layer's filters as a grid, each upscaled (nearest) to about FILTER_TILE pixels."""
    factor = max(1, FILTER_TILE // max(weight.shape[-2:]))
    return tile_grid([_upscale(tile, factor) for tile in filter_tiles(weight)])


def render_feature_maps(state: np.ndarray, channels: int = DEFAULT_CHANNELS) -> Image.Image:
    """The first ``channels`` maps of one stage's activations (C, H, W) as a grid, each stretched to its own range
    and upscaled (nearest) to at least MAP_TILE pixels."""
    factor = max(1, math.ceil(MAP_TILE / max(state.shape[-2:])))
    return tile_grid([_upscale(colorize(feature_map), factor) for feature_map in state[:channels]])


def enlarge(image: Image.Image, minimum: int = INPUT_DISPLAY) -> tuple[Image.Image, int]:
    """``image`` upscaled (nearest) by the smallest integer factor that makes it at least ``minimum`` wide, and the
    factor: every pixel stays a square, and ``picture[::factor, ::factor]`` gives the original back."""
    factor = max(1, math.ceil(minimum / max(image.size)))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST), factor


def save_png(picture: Image.Image, cache_dir: str | Path, name: str) -> str:
    """``picture`` as ``<cache_dir>/<content hash>/<name>.png``, written so concurrent readers never see part of it
    (lossless PNG rather than Gradio's WebP, which would blur the pixel grid that is the point here)."""
    from hfdl.spaces import save_png as save

    return save(picture, cache_dir, name)


# --------------------------------------------------------------------------------------------------------------------
# Explore a CNN: prediction, first-layer filters, feature maps per stage.
# --------------------------------------------------------------------------------------------------------------------


class Exploration(NamedTuple):
    """Everything the "Explore a CNN" tab shows, as Python values (the handler turns the pictures into files)."""

    scores: dict[str, float]
    network_input: Image.Image  # what the network received, at its own size (before normalisation)
    filters: Image.Image
    filters_caption: str
    stages: list[tuple[Image.Image, str]]  # one feature-map grid per 4-D hidden state, with its caption


def choose_source(model: str | None, custom_model: str | None) -> str:
    """The typed folder or Hub id when there is one, else the dropdown's choice.

    Raises:
        ExplorerInputError: Neither is given.
    """
    source = (custom_model or "").strip() or (model or "").strip()
    if not source:
        raise ExplorerInputError("Choose a model in the list, or type a model folder or Hub id.")
    return source


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer setting from a slider or an API call (2.0 is 2), within [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not low <= number <= high:
        raise ExplorerInputError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def _first(setting: Any) -> Any:
    """A Conv2d setting for the caption: ``(2, 2)`` -> 2; a string padding ("same") as it is."""
    return setting[0] if isinstance(setting, tuple) else setting


def explore(
    image: Any, source: str, preparation: str = "auto", channels: int = DEFAULT_CHANNELS, top_k: int = TOP_K
) -> Exploration:
    """Run the CNN at ``source`` on ``image`` and collect what it computed.

    The input is read and checked before the model is loaded, so a blank canvas costs no model.

    Raises:
        ExplorerInputError: Unusable input or settings.
        ModelUnavailableError: The model cannot be loaded or is not an image CNN.
    """
    picture = read_image(image)
    channels = _check_int("channels", channels, 1, MAX_CHANNELS)
    if preparation not in PREPARATIONS:
        raise ExplorerInputError(f"preparation must be one of {', '.join(PREPARATIONS)}; got {preparation!r}.")
    check_not_blank(picture)  # before loading: a blank canvas needs no model
    cnn = load_cnn(source)
    predictor, config = cnn.predictor, cnn.predictor.config
    prepared = prepare_input(picture, config.num_channels, config.image_size, preparation)
    outputs = predictor(prepared, output_hidden_states=True)

    from hfdl.inference import top_classes  # imported with the model

    scores = {entry["label"]: entry["score"] for entry in top_classes(outputs.logits, config, top_k)[0]}
    weight = cnn.first_conv.weight.detach().float().cpu().numpy()
    out_channels, in_channels, kernel_h, kernel_w = weight.shape
    conv = cnn.first_conv
    filters_caption = (
        f"First convolution layer `{cnn.first_conv_name}`: {out_channels} filters of {in_channels}x{kernel_h}x"
        f"{kernel_w} (stride {conv.stride[0]}, padding {_first(conv.padding)})"
        f"{', shown in colour' if in_channels == 3 else ''}; each is stretched to its own range (dark = its lowest "
        "weight, light = its highest)." + (f" The first {MAX_FILTERS} are shown." if out_channels > MAX_FILTERS else "")
    )
    stages = []
    states = [state[0].float().numpy() for state in outputs.hidden_states or () if state.ndim == 4]
    for index, state in enumerate(states):
        shown = min(channels, state.shape[0])
        caption = (
            f"stage {index + 1}: {state.shape[0]} maps of {state.shape[1]}x{state.shape[2]}"
            f"{f', first {shown} shown' if shown < state.shape[0] else ''}"
        )
        stages.append((render_feature_maps(state, channels), caption))
    return Exploration(scores, prepared, render_filters(weight), filters_caption, stages)


# --------------------------------------------------------------------------------------------------------------------
# Convolution by hand: a 3x3 kernel slid over a small grayscale image, one output value at a time.
# --------------------------------------------------------------------------------------------------------------------


def parse_kernel(text: str) -> np.ndarray:
    """Read a 3x3 kernel: 3 rows (lines or ``;``) of 3 numbers (spaces or commas); fractions like ``1/9`` are fine.

    Raises:
        ExplorerInputError: Not 3 rows of 3 numbers, naming the first problem.
    """
    rows = [row for row in re.split(r"[;\n]", text or "") if row.strip()]
    if len(rows) != KERNEL_SIZE:
        raise ExplorerInputError(
            f"The kernel must be {KERNEL_SIZE} rows of {KERNEL_SIZE} numbers (rows on separate lines or split by ';'); "
            f"got {len(rows)} rows."
        )
    kernel = np.empty((KERNEL_SIZE, KERNEL_SIZE))
    for row_index, row in enumerate(rows):
        tokens = [token for token in re.split(r"[\s,]+", row.strip()) if token]
        if len(tokens) != KERNEL_SIZE:
            raise ExplorerInputError(
                f"Row {row_index + 1} of the kernel has {len(tokens)} numbers ({row.strip()!r}); each row needs "
                f"{KERNEL_SIZE}."
            )
        for column, token in enumerate(tokens):
            try:
                kernel[row_index, column] = float(Fraction(token))
            except (ValueError, ZeroDivisionError):
                raise ExplorerInputError(
                    f"{token!r} in row {row_index + 1} of the kernel is not a number (write e.g. -1, 0.25 or 1/9)."
                ) from None
    return kernel


def kernel_for(preset: str, text: str | None = None) -> np.ndarray:
    """The kernel of a preset, or the typed one for "custom".

    Raises:
        ExplorerInputError: An unknown preset or a bad custom kernel.
    """
    if preset == CUSTOM_KERNEL:
        return parse_kernel(text or "")
    if preset not in KERNEL_PRESETS:
        raise ExplorerInputError(f"Unknown kernel {preset!r}; choose one of {', '.join(KERNEL_CHOICES)}.")
    return parse_kernel(KERNEL_PRESETS[preset])


def output_side(n: int, k: int, s: int, p: int) -> int:
    """The side of a convolution's output: floor((n + 2p - k) / s) + 1 for an n-pixel side, a k-pixel kernel,
    stride s and p pixels of zero padding on each side."""
    return (n + 2 * p - k) // s + 1


def convolve2d(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Convolve a 2-D ``image`` with a 2-D ``kernel`` the way a CNN layer does, one output value at a time.

    1. Pad: surround the image with ``padding`` rows and columns of zeros, so the kernel can also be centred on
       border pixels (with ``padding = (k - 1) / 2`` and stride 1 the output keeps the input's size).
    2. Slide: put the kernel's top-left corner at every ``stride``-th row and column where it still fits.
    3. Multiply and add: each output value is the sum of the patch under the kernel times the kernel, element by
       element. The kernel is not flipped: CNNs compute this cross-correlation and call it convolution.

    This is what ``torch.nn.functional.conv2d(x[None, None], w[None, None], stride=stride, padding=padding)`` does,
    for one input and one output channel; the tests check that it gives the same numbers.
    """
    height, width = image.shape
    k_h, k_w = kernel.shape
    padded = np.zeros((height + 2 * padding, width + 2 * padding))
    padded[padding : padding + height, padding : padding + width] = image
    out_h, out_w = output_side(height, k_h, stride, padding), output_side(width, k_w, stride, padding)
    if out_h < 1 or out_w < 1:
        raise ExplorerInputError(
            f"A {k_h}x{k_w} kernel does not fit in a {height}x{width} image with padding {padding}."
        )
    output = np.zeros((out_h, out_w))
    for row in range(out_h):
        for column in range(out_w):
            top, left = row * stride, column * stride
            patch = padded[top : top + k_h, left : left + k_w]
            output[row, column] = np.sum(patch * kernel)
    return output


def _number(value: float) -> str:
    """A short, readable number: integers without decimals, others with at most 3, negatives in parentheses."""
    text = str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")
    return f"({text})" if value < 0 else text


def formula_text(n: int, k: int, s: int, p: int) -> str:
    """The output size formula with the numbers filled in, step by step (Markdown)."""
    inner = n + 2 * p - k
    side = output_side(n, k, s, p)
    return (
        "**Output size** = `floor((n + 2p - k) / s) + 1`, with input side n, kernel k, padding p, stride s:\n\n"
        f"`floor(({n} + 2*{p} - {k}) / {s}) + 1 = floor({inner} / {s}) + 1 = {inner // s} + 1 = {side}`\n\n"
        f"so the {n}x{n} input gives a **{side}x{side}** output."
    )


def worked_example(image: np.ndarray, kernel: np.ndarray, padding: int) -> str:
    """How the top-left output value is computed: the patch under the kernel, times the kernel, summed (Markdown)."""
    height, width = image.shape
    padded = np.zeros((height + 2 * padding, width + 2 * padding))
    padded[padding : padding + height, padding : padding + width] = image
    patch = padded[: kernel.shape[0], : kernel.shape[1]]
    terms = " + ".join(f"{_number(a)}*{_number(b)}" for a, b in zip(patch.ravel(), kernel.ravel()))
    return (
        "**Top-left output value**: the 3x3 patch at the top-left corner (padding zeros included) times the kernel, "
        f"element by element, summed:\n\n`out[0, 0] = {terms} = {_number(float(np.sum(patch * kernel))).strip('()')}`"
    )


def grayscale_input(image: Any, size: int) -> np.ndarray:
    """The drawing or upload as a small grayscale array (size x size) in [0, 1], white paper = 1."""
    return _gray(_resize(read_image(image), size))


class Convolution(NamedTuple):
    """Everything the "Convolution by hand" tab shows."""

    image: np.ndarray  # the grayscale input, size x size, in [0, 1]
    kernel: np.ndarray
    output: np.ndarray
    input_picture: Image.Image  # the padded input, padding tinted so it shows
    output_picture: Image.Image
    explanation: str


def convolve_by_hand(
    image: Any, preset: str, kernel_text: str | None, size: Any, stride: Any, padding: Any
) -> Convolution:
    """Read, check and convolve: the work behind the "Convolution by hand" tab.

    Raises:
        ExplorerInputError: No image, a bad kernel, or a setting out of range.
    """
    size = _check_int("size", size, *CONV_SIZES)
    stride = _check_int("stride", stride, *CONV_STRIDES)
    padding = _check_int("padding", padding, *CONV_PADDINGS)
    kernel = kernel_for(preset, kernel_text)
    gray = grayscale_input(image, size)
    output = convolve2d(gray, kernel, stride, padding)

    padded = np.repeat(_levels(gray)[..., None], 3, axis=-1)
    padded = np.pad(padded, ((padding, padding), (padding, padding), (0, 0)))
    if padding:  # the zeros the kernel sees, tinted so the learner can tell them from black ink
        ring = np.ones(padded.shape[:2], bool)
        ring[padding:-padding, padding:-padding] = False
        padded[ring] = (120, 60, 160)
    input_picture, _ = enlarge(Image.fromarray(padded))
    output_picture, _ = enlarge(Image.fromarray(colorize_signed(output)))
    explanation = (
        formula_text(size, KERNEL_SIZE, stride, padding)
        + "\n\n"
        + worked_example(gray, kernel, padding)
        + "\n\nOutput colours: blue below zero, white at zero, red above (symmetric around zero). Input: white paper "
        "is 1, black ink 0" + (", purple is the zero padding." if padding else ".")
    )
    return Convolution(gray, kernel, output, input_picture, output_picture, explanation)


# --------------------------------------------------------------------------------------------------------------------
# Gradio handlers: problems become short, readable gr.Error messages.
# --------------------------------------------------------------------------------------------------------------------


def _user_error(error: ExplorerInputError | ModelUnavailableError) -> gr.Error:
    """The message a user sees for a problem they can fix (no traceback in the server log).

    Escaped for HTML: the browser renders Gradio's error messages as HTML, and hfdl's messages name folders such as
    ``<dir>/best``, which would otherwise become (invisible) tags.
    """
    if isinstance(error, ModelUnavailableError):
        message = (
            f"{error} The list offers the models trained under outputs/ (hfdl demo --no-serve trains LeNet-5 into "
            "outputs/lenet5-digits)."
        )
        return gr.Error(html.escape(message, quote=False), title="Model unavailable", print_exception=False)
    return gr.Error(html.escape(str(error), quote=False), title="Cannot use this input", print_exception=False)


def explore_handler(
    image: Any, model: str | None, custom_model: str | None, preparation: str, channels: Any
) -> tuple[dict[str, float], str, str, str, list[tuple[str, str]]]:
    """Gradio handler of "Explore": (top classes, network input picture, filter grid, its caption, stage grids).

    Wired with ``preprocess=False``: it gets the editor's file records, so a file that is not an image is reported
    here in plain words instead of failing inside Gradio's decoding.
    """
    try:
        result = explore(image, choose_source(model, custom_model), preparation, channels)
    except (ExplorerInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    cache = demo.GRADIO_CACHE  # Gradio serves files from its cache folder without copying them again
    shown, factor = enlarge(result.network_input)
    size = result.network_input.width
    return (
        result.scores,
        save_png(shown, cache, f"input_{size}px_x{factor}"),
        save_png(result.filters, cache, "filters"),
        result.filters_caption,
        [(save_png(grid, cache, f"stage_{index + 1}"), caption) for index, (grid, caption) in enumerate(result.stages)],
    )


def convolve_handler(
    image: Any, preset: str, kernel_text: str | None, size: Any, stride: Any, padding: Any
) -> tuple[str, str, str, list[list[float]]]:
    """Gradio handler of "Convolution by hand": (padded input, output picture, formula text, output values)."""
    try:
        result = convolve_by_hand(image, preset, kernel_text, size, stride, padding)
    except ExplorerInputError as error:
        raise _user_error(error) from error
    cache = demo.GRADIO_CACHE
    return (
        save_png(result.input_picture, cache, "convolution_input"),
        save_png(result.output_picture, cache, "convolution_output"),
        result.explanation,
        np.round(result.output, 4).tolist(),
    )


def preset_text(preset: str) -> str:
    """The kernel box's text for a preset (the custom kernel keeps what was typed)."""
    return KERNEL_PRESETS[preset] if preset in KERNEL_PRESETS else gr.skip()


def refresh_models() -> Any:
    """Look for trained models again when the page loads: a model trained since the start shows up."""
    choices = model_choices()
    return gr.Dropdown(choices=choices, value=choices[0][1])


# --------------------------------------------------------------------------------------------------------------------
# UI (built at import; nothing is loaded until the first click).
# --------------------------------------------------------------------------------------------------------------------


DESCRIPTION = """\
# 🔍 CNN explorer
Draw on the canvas (pick the brush in its left toolbar) or upload a picture (the upload button in the same toolbar),
then look inside a convolutional network (**Explore a CNN**): its top classes, the filters of its first convolution
layer and the feature maps each stage computes; or slide a 3x3 kernel over the image yourself (**Convolution by
hand**). Models: [hfdl](https://github.com/hfdl/hfdl)'s LeNet-5, AlexNet, VGG and ResNet,
*Deep Learning Mastery* chapter 5.
"""


def build_demo() -> gr.Blocks:
    """The interface, with the model list as :func:`configure` and the environment say now."""
    choices = model_choices()
    with gr.Blocks(title="hfdl CNN explorer", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.ImageEditor(
                    label="Your image",
                    sources=["upload", "clipboard"],
                    image_mode="RGBA",
                    canvas_size=(280, 280),
                    brush=gr.Brush(default_size=12, colors=["#000000"], color_mode="fixed"),
                    layers=False,
                    transforms=(),
                )
            with gr.Column(scale=2):
                with gr.Tab("Explore a CNN"):
                    with gr.Row():
                        model = gr.Dropdown(choices, value=choices[0][1], label="Trained model")
                        custom_model = gr.Textbox(
                            label="...or a model folder / Hub id", placeholder="outputs/my-run or org/name"
                        )
                    with gr.Row():
                        preparation = gr.Radio(
                            list(PREPARATIONS),
                            value="auto",
                            label="Input preparation",
                            info="digit: light strokes on black, centred (as digit datasets); auto: digit for "
                            "grayscale models",
                        )
                        channels = gr.Slider(1, MAX_CHANNELS, value=DEFAULT_CHANNELS, step=1, label="Maps per stage")
                    explore_button = gr.Button("Explore", variant="primary")
                    with gr.Row():
                        scores = gr.Label(label="Top classes", num_top_classes=TOP_K)
                        network_input = gr.Image(label="What the network receives", interactive=False)
                    filters = gr.Image(label="First-layer filters", interactive=False)
                    filters_caption = gr.Markdown()
                    stages = gr.Gallery(label="Feature maps per stage", columns=2, object_fit="contain", height="auto")
                with gr.Tab("Convolution by hand"):
                    with gr.Row():
                        preset = gr.Dropdown(list(KERNEL_CHOICES), value="edge", label="Kernel")
                        kernel_text = gr.Textbox(
                            KERNEL_PRESETS["edge"], lines=3, label="3x3 kernel (edit it to make your own)"
                        )
                    with gr.Row():
                        size = gr.Slider(*CONV_SIZES, value=DEFAULT_CONV_SIZE, step=1, label="Image side n (pixels)")
                        stride = gr.Slider(*CONV_STRIDES, value=1, step=1, label="Stride s")
                        padding = gr.Slider(*CONV_PADDINGS, value=1, step=1, label="Padding p")
                    convolve_button = gr.Button("Convolve", variant="primary")
                    with gr.Row():
                        conv_input = gr.Image(label="Grayscale input (padded)", interactive=False)
                        conv_output = gr.Image(label="Output", interactive=False)
                    explanation = gr.Markdown()
                    with gr.Accordion("Output values", open=False):
                        values = gr.Dataframe(label="Output values (rounded to 4 decimals)", interactive=False)

        events = {"concurrency_limit": CONCURRENCY_LIMIT, "preprocess": False}
        explore_button.click(
            explore_handler,
            inputs=[image, model, custom_model, preparation, channels],
            outputs=[scores, network_input, filters, filters_caption, stages],
            api_name="explore",
            **events,
        )
        convolve_button.click(
            convolve_handler,
            inputs=[image, preset, kernel_text, size, stride, padding],
            outputs=[conv_input, conv_output, explanation, values],
            api_name="convolve",
            **events,
        )
        preset.input(preset_text, inputs=preset, outputs=kernel_text, api_visibility="private", queue=False)
        # Typing in the kernel box makes it the custom kernel.
        kernel_text.input(lambda: CUSTOM_KERNEL, outputs=preset, api_visibility="private", queue=False)
        blocks.load(refresh_models, outputs=model, api_visibility="private", queue=False)
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its model list and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id offered first (env HFDL_MODEL)")
    parser.add_argument(
        "--outputs", nargs="+", default=None, help="folders to search for trained models (env HFDL_OUTPUTS)"
    )
    # Hugging Face Spaces say where to listen through GRADIO_SERVER_NAME/PORT; locally, stay on loopback.
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
    import torch  # the server loads it with the first model anyway; the thread count must be set before any call

    torch.set_num_threads(args.torch_threads)
    configure(model=args.model, outputs=args.outputs)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    offered = ", ".join(value for _, value in model_choices())
    print(f"CNN explorer on {demo.local_url} (models: {offered})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
