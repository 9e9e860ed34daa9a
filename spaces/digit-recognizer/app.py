"""Digit recognizer: draw or upload a digit, see LeNet-5's top-3 guesses and what its first convolution layer saw.

The Space of hfdl's LeNet-5 (Deep Learning Mastery, ch. 5). Importing this module only builds the UI (`demo`); the
model is loaded on the first prediction (through :func:`hfdl.inference.load`) and cached, so `import app` is cheap
and tests can drive `demo` with a model of their choosing (:func:`configure`).

Model and backend, in order of precedence: `configure()` (what `--model` / `--backend` call), the environment
variables ``HFDL_MODEL`` / ``HFDL_BACKEND``, then the defaults: the folder the training recipe writes
(``outputs/lenet5-digits`` at the repository root, its ONNX export under ``onnx/``) or, where that folder does not
exist (a real Hugging Face Space), the Hub model ``hfdl/lenet5-digits``. The Space installs hfdl itself
(requirements.txt), so both backends use the same loader as the ``hfdl`` command.

Run locally::

    python spaces/digit-recognizer/app.py --model outputs/lenet5-digits --backend onnx
"""

from __future__ import annotations

import argparse
import functools
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

HUB_MODEL_ID = "hfdl/lenet5-digits"
BACKENDS = ("torch", "onnx")
TOP_K = 3

# A drawing is cropped to its ink and padded by this fraction of the side on each side. The scikit-learn digits the
# default model learns from fill their box from top to bottom (NIST's normalised 32x32 bitmaps, downsampled to 8x8),
# whereas MNIST put a 20x20 digit in a 28x28 frame (4/28 ~= 0.14). Measured with a LeNet-5 trained on the digits,
# on their test split redrawn at 96 px somewhere on a larger white page: margins 0-0.06 give 96-97% accuracy (98.3% on
# the original images), 0.10 gives 91% and MNIST's 0.14 only 50%. Pass --margin 0.14 for a model trained on MNIST.
DEFAULT_MARGIN = 0.03
# Below this spread between paper and ink (on a 0-1 scale) the input is treated as blank rather than amplified noise.
MIN_CONTRAST = 0.15
# After normalising paper to 0 and the darkest stroke to 1, pixels above this are ink (anti-aliased edges are not).
INK_THRESHOLD = 0.3

# A perceptual colour ramp (dark purple -> yellow, like matplotlib's magma) so weak and strong activations differ at
# a glance without importing matplotlib into the Space.
_RAMP = np.array([(0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)], dtype=np.float64)
_TILE_PIXELS = 112  # each map is upscaled (nearest) to this side so 28x28 maps are readable in the browser
_TILE_GAP = 6
_CAPTION_HEIGHT = 16
_TITLE_HEIGHT = 22


class DigitInputError(ValueError):
    """The input cannot be read as a digit (no image, a blank canvas, a file that is not an image)."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded (no such folder or Hub id, no ONNX export, a missing runtime)."""


#: How many predictions may run at once (Gradio's default is 1 per event). The handler is thread-safe (a load lock;
#: PyTorch and onnxruntime sessions run concurrently) and most of its time is spent in PIL, numpy, zlib and the
#: runtimes, which release the GIL. Measured with benchmarks/bench_space_load.py (8 clients, 2 cores), 1, 2 and 4 give
#: the same throughput now that a prediction takes ~3 ms: the server's time goes to Gradio's HTTP work, not here. More
#: than 1 keeps one slow request (a large photo to decode and crop) from holding every other request behind it.
CONCURRENCY_LIMIT = 2
#: Pictures and uploads older than this many seconds are deleted from Gradio's cache, checked as often: a picture
#: is fetched within seconds of its prediction, so this bounds the cache without ever removing one in use.
CACHE_MAX_AGE_S = 600


# --------------------------------------------------------------------------------------------------------------------
# Settings: where the model comes from and which runtime runs it.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file sits at ``<root>/spaces/digit-recognizer/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 else None


def default_model() -> str:
    """The recipe's output folder when it exists (a checkout where training ran), else the published Hub model."""
    root = _repository_root()
    if root is not None and (root / "outputs" / "lenet5-digits").is_dir():
        return str(root / "outputs" / "lenet5-digits")
    return HUB_MODEL_ID


_overrides: dict[str, Any] = {}


def configure(model: str | None = None, backend: str | None = None, margin: float | None = None) -> None:
    """Choose the model, backend and crop margin for later predictions (None keeps the environment/default).

    Loaded models stay cached per (model, backend), so switching back and forth does not reload them.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    if margin is not None and not 0.0 <= margin < 0.5:
        raise ValueError(f"`margin` must be in [0, 0.5) (a fraction of the side on each side); got {margin!r}.")
    _overrides.update({"model": model, "backend": backend, "margin": margin})


def current_settings() -> tuple[str, str, float]:
    """Resolve (model, backend, margin) now, so environment variables set after import still count."""
    model = _overrides.get("model") or os.environ.get("HFDL_MODEL") or default_model()
    backend = _overrides.get("backend") or os.environ.get("HFDL_BACKEND") or "torch"
    if backend not in BACKENDS:
        raise ValueError(f"HFDL_BACKEND must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    margin = _overrides.get("margin")
    if margin is None:
        text = os.environ.get("HFDL_MARGIN", str(DEFAULT_MARGIN))
        try:
            margin = float(text)
        except ValueError:
            margin = -1.0  # reported just below, with the offending text
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"HFDL_MARGIN must be a number in [0, 0.5); got {text!r}.")
    return model, backend, margin


# --------------------------------------------------------------------------------------------------------------------
# Preprocessing: any drawing or photo -> a centred, light-on-dark digit like the training data.
# --------------------------------------------------------------------------------------------------------------------


def _as_pil(image: Any) -> Image.Image:
    """Read what Gradio hands over (an EditorValue dict, a PIL image, a numpy array or a file path) as PIL."""
    if image is None:
        raise DigitInputError("No image: draw a digit on the canvas or upload a picture of one.")
    if isinstance(image, dict):  # gr.Sketchpad / gr.ImageEditor in gradio 6: {"background", "layers", "composite"}
        flattened = image.get("composite")
        if flattened is None:
            flattened = image.get("background")
        if flattened is None:
            raise DigitInputError("The canvas is empty: draw a digit first.")
        return _as_pil(flattened)
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                return ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF
        except (UnidentifiedImageError, OSError) as error:
            raise DigitInputError(
                f"{Path(image).name} is not an image file; upload a PNG or JPEG of a digit."
            ) from error
    if isinstance(image, np.ndarray):
        return _array_to_pil(image)
    raise DigitInputError(f"Expected an image (PIL, numpy array or file), got {type(image).__name__}.")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    """Turn an (H, W), (H, W, 1|2|3|4) array of uint8 0-255, floats 0-1 or bools into a PIL image."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.size == 0 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (2, 3, 4)):
        raise DigitInputError(f"Cannot read an array of shape {array.shape} as an image; expected (H, W) or (H, W, C).")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise DigitInputError(f"Cannot read an array of dtype {array.dtype} as an image.")
    if array.dtype != np.uint8:
        scale = 255.0 if (array.dtype == bool or np.issubdtype(array.dtype, np.floating)) else 1.0
        array = np.clip(array.astype(np.float64) * scale, 0, 255).round().astype(np.uint8)
    return Image.fromarray(array)  # uint8 (H, W) -> L, (H, W, 2) -> LA, 3 -> RGB, 4 -> RGBA


def to_grayscale(image: Any) -> np.ndarray:
    """Flatten any input to a float grayscale array (H, W) in [0, 1], resolving transparency.

    Sketchpad returns RGBA whose background is fully transparent (RGB 0 under alpha 0) with opaque dark strokes;
    dropping alpha would turn the paper black. Transparent pixels are painted with the paper colour instead: white
    when the opaque (drawn) pixels are dark, black when they are light.
    """
    pil = _as_pil(image)
    if pil.mode in ("RGBA", "LA", "PA", "La") or "transparency" in pil.info:
        rgba = np.asarray(pil.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        gray = np.asarray(pil.convert("RGB").convert("L"), dtype=np.float32) / 255.0
        if alpha.min() < 1.0:
            drawn = alpha > 0.5
            if not drawn.any():
                raise DigitInputError("The canvas is empty: draw a digit first.")
            paper = 1.0 if gray[drawn].mean() < 0.5 else 0.0
            gray = alpha * gray + (1.0 - alpha) * paper
        return gray
    return np.asarray(pil.convert("L"), dtype=np.float32) / 255.0


def center_digit(image: Any, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Make a drawing or photo look like the training digits: light ink on black, cropped to the ink, centred.

    Steps (what MNIST's creators did to NIST's scans): read the paper colour from the border and invert when it is
    light; rescale so paper is 0 and the strongest ink 1; crop to the ink's bounding box; pad it to a square with
    ``margin`` of the side on each side, keeping the aspect ratio and centring the box. Returns a float (S, S) array
    at the input's resolution; it needs no model, so bad input is rejected before one is loaded.

    Raises:
        DigitInputError: no image, a blank canvas or an unreadable input.
    """
    gray = to_grayscale(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark digit on light paper -> light on dark, as the model was trained
        gray = 1.0 - gray
        border = 1.0 - border
    paper = float(np.median(border))
    contrast = float(gray.max()) - paper
    if contrast < MIN_CONTRAST:
        raise DigitInputError("The image is blank: draw or upload a digit with clear strokes.")
    ink = np.clip((gray - paper) / contrast, 0.0, 1.0)

    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    columns = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    digit = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]  # (h, w) bounding box of the ink

    # Square side so that the longer edge of the box takes (1 - 2 * margin) of it; centre the box in it.
    height, width = digit.shape
    side = int(np.ceil(max(height, width) / (1.0 - 2.0 * margin)))
    top, left = (side - height) // 2, (side - width) // 2
    canvas = np.zeros((side, side), dtype=np.float32)
    canvas[top : top + height, left : left + width] = digit
    return canvas


def resize_digit(digit: np.ndarray, size: int) -> Image.Image:
    """Shrink a centred digit to the network's ``size`` with area averaging, then stretch the contrast again.

    Area averaging does not alias thin strokes away, but it dims them; the stretch gives back full-strength ink.
    """
    resized = np.asarray(Image.fromarray(digit.astype(np.float32)).resize((size, size), Image.Resampling.BOX))
    resized = resized / max(float(resized.max()), 1e-6)
    return Image.fromarray(np.clip(resized * 255.0, 0, 255).round().astype(np.uint8))


def prepare_digit(image: Any, size: int, margin: float = DEFAULT_MARGIN) -> Image.Image:
    """The image the network sees: :func:`center_digit` then :func:`resize_digit` to ``size`` x ``size`` (grayscale)."""
    return resize_digit(center_digit(image, margin), size)


# --------------------------------------------------------------------------------------------------------------------
# Models: hfdl.inference.load, once per (model, backend).
# --------------------------------------------------------------------------------------------------------------------


_predictors: dict[tuple[str, str], Any] = {}
_load_lock = threading.Lock()


def get_predictor(source: str | None = None, backend: str | None = None) -> Any:
    """The cached :class:`hfdl.inference.Predictor` for (source, backend), loaded on first use.

    Settings fill what is not given. hfdl is imported here, not at the top: importing the app must stay cheap.
    """
    default_source, default_backend, _ = current_settings()
    key = (source or default_source, backend or default_backend)
    with _load_lock:  # Gradio serves requests from worker threads; load once
        if key not in _predictors:
            try:
                from hfdl.inference import load

                _predictors[key] = load(key[0], backend=key[1], task="image-classification")
            except (ImportError, OSError, RuntimeError, ValueError) as error:
                message = str(error).strip().rstrip(".")
                raise ModelUnavailableError(
                    f"Could not load {key[0]!r} with the {key[1]} backend: {message}"
                ) from error
        return _predictors[key]


# --------------------------------------------------------------------------------------------------------------------
# Rendering: feature maps (LeNet-5's C1) or hidden activations (the MLP) as one picture.
# --------------------------------------------------------------------------------------------------------------------


def _ramp_table(steps: int = 256) -> np.ndarray:
    """The colour ramp sampled at ``steps`` levels: (steps, 3) uint8, a lookup table for :func:`_colorize`."""
    position = np.linspace(0.0, len(_RAMP) - 1, steps)
    index = np.minimum(position.astype(int), len(_RAMP) - 2)
    fraction = (position - index)[:, None]
    return (_RAMP[index] * (1 - fraction) + _RAMP[index + 1] * fraction).round().astype(np.uint8)


_RAMP_TABLE = _ramp_table()


def _colorize(values: np.ndarray) -> np.ndarray:
    """Map an array to RGB uint8 through the ramp, scaled to its own min-max (each map shows its own pattern).

    256 levels looked up in a table: a picture cannot show more, and it is ~10x cheaper than interpolating each pixel.
    """
    low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    levels = np.clip((values - low) * scale + 0.5, 0, 255).astype(np.uint8)
    return _RAMP_TABLE[levels]


def _grid(count: int, columns: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(width, height, top-left corner of each tile) of a grid of ``count`` captioned tiles."""
    rows = -(-count // columns)  # ceil division
    cell_height = _TILE_PIXELS + _CAPTION_HEIGHT
    width = columns * (_TILE_PIXELS + _TILE_GAP) + _TILE_GAP
    height = _TITLE_HEIGHT + rows * (cell_height + _TILE_GAP) + _TILE_GAP
    corners = []
    for position in range(count):
        row, column = divmod(position, columns)
        corners.append(
            (_TILE_GAP + column * (_TILE_PIXELS + _TILE_GAP), _TITLE_HEIGHT + row * (cell_height + _TILE_GAP))
        )
    return width, height, corners


@functools.lru_cache(maxsize=16)
def _frame(title: str, captions: tuple[str, ...], columns: int) -> Image.Image:
    """The white page with the title and captions, drawn once per layout (text drawing is the slow part)."""
    width, height, corners = _grid(len(captions), columns)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((_TILE_GAP, 4), title, fill="black", font=font)
    for (left, top), caption in zip(corners, captions):
        draw.text((left, top + _TILE_PIXELS + 2), caption, fill="black", font=font)
    return canvas


def render_tiles(tiles: list[tuple[str, np.ndarray]], title: str, columns: int = 4) -> Image.Image:
    """Lay out named 2-D arrays on a grid with captions, each upscaled (nearest) to a readable size."""
    canvas = _frame(title, tuple(caption for caption, _ in tiles), columns).copy()
    _, _, corners = _grid(len(tiles), columns)
    for corner, (_, values) in zip(corners, tiles):
        tile = Image.fromarray(_colorize(values)).resize((_TILE_PIXELS, _TILE_PIXELS), Image.Resampling.NEAREST)
        canvas.paste(tile, corner)
    return canvas


def render_message(message: str, width: int = 4 * (_TILE_PIXELS + _TILE_GAP) + _TILE_GAP) -> Image.Image:
    """A plain picture with a note, for models whose activations cannot be shown as feature maps."""
    canvas = Image.new("RGB", (width, 60), "white")
    ImageDraw.Draw(canvas).multiline_text((_TILE_GAP, 8), message, fill="black", font=ImageFont.load_default())
    return canvas


def _square(vector: np.ndarray) -> np.ndarray:
    """Lay a 1-D activation vector out as a near-square 2-D array (padding with its minimum) so it can be tiled."""
    side = int(np.ceil(np.sqrt(vector.size)))
    padded = np.full(side * side, vector.min(), dtype=np.float64)
    padded[: vector.size] = vector
    return padded.reshape(side, side)


def render_activations(network_input: np.ndarray, hidden_states: list[np.ndarray] | None) -> Image.Image:
    """The first convolution layer's maps next to the network's input, or dense activations for the MLP.

    ``hidden_states`` are one example's activations (no batch axis). A 3-D first state (C, H, W) is LeNet-5's C1;
    1-D states (vectors) come from a network without convolutions, whose first entry is the flattened input.
    """
    if hidden_states is None:
        return render_message(
            "This ONNX graph has no hidden_states outputs, so there are no feature maps to show.\n"
            "Export it with hfdl.export.export_onnx(..., output_hidden_states=True)."
        )
    tiles: list[tuple[str, np.ndarray]] = [("input", network_input)]
    first = hidden_states[0]
    if first.ndim == 3:  # (C, H, W): convolution feature maps
        tiles += [(f"map {index + 1}", feature_map) for index, feature_map in enumerate(first)]
        channels, height, width = first.shape
        return render_tiles(tiles, f"First convolution layer (C1): {channels} feature maps of {height}x{width}")
    # A fully connected network: no convolution, so no feature maps; show each hidden layer's activations instead.
    layers = hidden_states[1:] if first.size == network_input.size else hidden_states
    tiles += [(f"hidden {index + 1} ({layer.size})", _square(layer)) for index, layer in enumerate(layers)]
    return render_tiles(tiles, "No convolution layer in this MLP: hidden-layer activations instead", columns=3)


# --------------------------------------------------------------------------------------------------------------------
# Prediction: the function behind both tabs.
# --------------------------------------------------------------------------------------------------------------------


def classify(image: Any) -> tuple[dict[str, float], Image.Image, Image.Image]:
    """Top-3 probabilities, the activation picture and the prepared input the network saw (for tests and tools).

    Raises:
        DigitInputError: unusable input (checked before any model is loaded).
        ModelUnavailableError: the model cannot be loaded.
        ValueError: an invalid setting (HFDL_BACKEND, HFDL_MARGIN).
    """
    _, _, margin = current_settings()
    digit = center_digit(image, margin)  # before loading: a blank canvas needs no model
    predictor = get_predictor()
    config = predictor.config
    prepared = resize_digit(digit, config.image_size)
    outputs = predictor(prepared, output_hidden_states=predictor.can_output_hidden_states)
    from hfdl.inference import top_classes  # hfdl is imported with the model, not with the app

    # Softmax for a single-label head, sigmoids for a binary or multi-label one, as transformers' pipelines do.
    scores = {entry["label"]: entry["score"] for entry in top_classes(outputs.logits, config, TOP_K)[0]}
    hidden = [state[0].numpy() for state in outputs.hidden_states] if outputs.hidden_states else None
    # The prepared image stands for the network's input: normalisation is affine and each tile is scaled to its own
    # min-max, so it draws exactly like the normalised pixel values.
    network_input = np.asarray(prepared, dtype=np.float32)
    return scores, render_activations(network_input, hidden), prepared


def save_picture(picture: Image.Image, cache_dir: str | Path) -> str:
    """The feature-map picture as a PNG in Gradio's cache, written so concurrent readers never see part of it."""
    from hfdl.spaces import save_png

    return save_png(picture, cache_dir, "feature_maps")


def predict(image: Any) -> tuple[dict[str, float], str]:
    """Gradio handler: (top-3 label -> probability, feature-map picture file); problems become readable gr.Error."""
    try:
        scores, activations, _ = classify(image)
    except DigitInputError as error:
        raise gr.Error(str(error), title="Cannot read the digit", print_exception=False) from error
    except ModelUnavailableError as error:
        raise gr.Error(
            f"{error}. Create outputs/lenet5-digits with `hfdl demo --no-serve` (train + ONNX export), or choose "
            "another model with --model / HFDL_MODEL.",
            title="Model unavailable",
        ) from error
    except ValueError as error:  # a bad HFDL_BACKEND / HFDL_MARGIN, or a model that rejects the input
        raise gr.Error(str(error), title="Cannot run the model") from error
    return scores, save_picture(activations, feature_maps.GRADIO_CACHE)


def predict_upload(file_data: dict[str, Any] | None) -> tuple[dict[str, float], str]:
    """Handler of the Upload tab, wired with ``preprocess=False``: it gets the uploaded file's record, not an image.

    Gradio would decode the upload before any handler runs, so a file that is not an image would fail inside Gradio
    with an unreadable message; opening it here turns that into the same readable error as a blank canvas.
    """
    return predict(file_data.get("path") if isinstance(file_data, dict) else file_data)


# --------------------------------------------------------------------------------------------------------------------
# UI (built at import; nothing is loaded until the first click).
# --------------------------------------------------------------------------------------------------------------------


DESCRIPTION = """\
# ✍️ Digit recognizer: LeNet-5
Draw a digit (0-9) or upload a picture of one. The app crops it to the ink, centres it and makes it light-on-dark
like the training digits, then shows the network's **top-3 guesses** and the **6 feature maps of its first
convolution layer** (C1): the edge and stroke detectors it learned. Model: [hfdl](https://github.com/hfdl/hfdl)'s
LeNet-5 (LeCun et al., 1998), *Deep Learning Mastery* ch. 5.
"""

with gr.Blocks(title="hfdl digit recognizer", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as demo:
    gr.Markdown(DESCRIPTION)
    with gr.Row():
        with gr.Column():
            with gr.Tab("Draw"):
                sketchpad = gr.Sketchpad(
                    label="Draw a digit (pick the brush on the left first)",
                    type="pil",
                    image_mode="RGBA",
                    canvas_size=(280, 280),
                    brush=gr.Brush(default_size=12, colors=["#000000"], color_mode="fixed"),
                )
                sketch_button = gr.Button("Recognize drawing", variant="primary")
            with gr.Tab("Upload"):
                upload = gr.Image(label="Upload a digit", type="filepath", sources=["upload"])
                upload_button = gr.Button("Recognize upload", variant="primary")
        with gr.Column():
            top3 = gr.Label(label="Top-3 guesses", num_top_classes=TOP_K)
            # The picture carries its own title; Gradio's label badge would cover it. The handler returns the path of
            # a PNG it wrote itself (see save_picture).
            feature_maps = gr.Image(label="What the first layer sees", show_label=False, interactive=False)
    events = {"outputs": [top3, feature_maps], "concurrency_limit": CONCURRENCY_LIMIT}
    sketch_button.click(predict, inputs=sketchpad, api_name="predict_sketch", **events)
    upload_button.click(predict_upload, inputs=upload, api_name="predict_upload", preprocess=False, **events)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, choose the model and launch the server (blocking)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="local model folder or Hub id (env HFDL_MODEL)")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="torch or onnx (env HFDL_BACKEND)")
    parser.add_argument("--margin", type=float, default=None, help="crop margin per side, fraction (env HFDL_MARGIN)")
    # Hugging Face Spaces say where to listen through GRADIO_SERVER_NAME/PORT; locally, stay on loopback.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    try:
        configure(model=args.model, backend=args.backend, margin=args.margin)
        model, backend, margin = current_settings()
    except ValueError as error:
        parser.error(str(error))
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    print(f"Digit recognizer on {demo.local_url} (model: {model}, backend: {backend}, margin: {margin})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
