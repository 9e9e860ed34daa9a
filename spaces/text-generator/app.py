"""Text generator: sample from a GPT trained with hfdl, streamed token by token, with its speed.

The Space of the GPT chapter of *Deep Learning Mastery*. By default it serves the character-level Shakespeare GPT
that ``recipes/train_causal_lm.py --output_dir outputs/gpt-char-shakespeare`` trains (the model and its tokenizer
are saved in ``best/``), else the published ``hfdl/gpt-char-shakespeare``; any hfdl causal-LM folder or Hub id can
be typed in. Settings: temperature, top-k, top-p, the number of new tokens, a seed, and greedy decoding.

How generation works: transformers' ``model.generate`` runs in a thread and feeds a ``TextIteratorStreamer``; the
handler is a generator that yields the text as it grows, and the last update adds the number of tokens generated
and the speed in tokens per second.

The context window: a model with *learned* positions has no embedding for a position past
``max_position_embeddings``. A prompt longer than that keeps only its last tokens (the model could not read more),
and a generation that would go past it *slides the window*: it goes on from the last tokens, half a context at a
time, as nanoGPT's ``generate`` crops its input (and as the training recipe samples). Within one window the result
is exactly ``model.generate``'s; the UI says when the window slid.

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request
and cached, so ``import app`` stays cheap. Run locally::

    python spaces/text-generator/app.py --model outputs/gpt-char-shakespeare
"""

from __future__ import annotations

import argparse
import html
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

#: The published character-level Shakespeare GPT: used when no local folder is found.
HUB_MODEL_ID = "hfdl/gpt-char-shakespeare"
#: What ``recipes/train_causal_lm.py --output_dir outputs/gpt-char-shakespeare`` writes (the model is in ``best/``).
DEFAULT_LOCAL_FOLDER = "outputs/gpt-char-shakespeare"
DEFAULT_PROMPT = "ROMEO:"

# The sliders' ranges, checked again for API callers.
MAX_NEW_TOKENS = (1, 1000)
DEFAULT_NEW_TOKENS = 200
TEMPERATURE = (0.05, 2.0)
TOP_K = (0, 200)  # 0: no top-k filtering
TOP_P = (0.05, 1.0)
SEED = (0, 2**31 - 1)
MAX_PROMPT_CHARACTERS = 5000

#: Requests that may stream at once. Sampling holds a lock (see :func:`generate_stream`), greedy decoding does not.
CONCURRENCY_LIMIT = 4
MAX_CACHED_MODELS = 3
#: PyTorch threads when served by ``python app.py`` (see spaces/cnn-explorer/README.md for the measurements).
DEFAULT_TORCH_THREADS = 1


class GeneratorInputError(ValueError):
    """A prompt or setting the model cannot take: unknown characters, an out-of-range slider."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded, is not a causal language model, or has no tokenizer."""


# --------------------------------------------------------------------------------------------------------------------
# Which model: configure() / --model / HFDL_MODEL, else the local training output, else the Hub model.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/text-generator/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"model": None}


def configure(model: str | None = None) -> None:
    """Choose the model offered by default (None: ``HFDL_MODEL``, else :func:`default_model`)."""
    _settings["model"] = model


def default_model() -> str:
    """The configured model, else ``HFDL_MODEL``, else ``outputs/gpt-char-shakespeare`` (in the working directory
    or at the repository root) if it holds a model, else the Hub id."""
    configured = _settings["model"] or os.environ.get("HFDL_MODEL")
    if configured:
        return configured
    root = _repository_root()
    for base in [Path.cwd()] + ([root] if root is not None else []):
        folder = base / DEFAULT_LOCAL_FOLDER
        if (folder / "config.json").is_file() or (folder / "best" / "config.json").is_file():
            return str(folder)
    return HUB_MODEL_ID


# --------------------------------------------------------------------------------------------------------------------
# Loading: hfdl.inference.load (folder, training output's best/, or Hub id) plus the tokenizer saved beside it.
# --------------------------------------------------------------------------------------------------------------------


class LoadedLM(NamedTuple):
    model: Any
    tokenizer: Any
    model_dir: Path
    sampling_lock: threading.Lock  # torch's global generator is shared: one seeded sampler at a time per model


_models: OrderedDict[tuple[str, int], LoadedLM] = OrderedDict()
_load_lock = threading.Lock()


def _cache_key(source: str) -> tuple[str, int]:
    """A local folder by its resolved path and its config's mtime (a retrained model is reloaded)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return source, 0
    configs = [folder / "config.json" for folder in (path, path / "best")]
    return str(path.resolve()), max((config.stat().st_mtime_ns for config in configs if config.is_file()), default=0)


def load_lm(source: str) -> LoadedLM:
    """Load ``source`` as a causal LM with its tokenizer, cached.

    Raises:
        ModelUnavailableError: It cannot be loaded, is not a ``text-generation`` model, or has no tokenizer.
    """
    source = (source or "").strip()
    if not source:
        raise ModelUnavailableError("Type a model folder or Hub id.")
    key = _cache_key(source)
    with _load_lock:  # Gradio serves requests from worker threads: load each model once
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        from transformers import AutoTokenizer

        from hfdl.inference import load

        try:
            predictor = load(source, backend="torch")
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            raise ModelUnavailableError(f"Could not load {source!r}: {str(error).strip()}") from error
        if predictor.task != "text-generation":
            raise ModelUnavailableError(
                f"{source!r} holds a {predictor.task!r} model; the generator needs a causal language model "
                "(saved from a ...ForCausalLM head, e.g. by recipes/train_causal_lm.py)."
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(predictor.model_dir)
        except (OSError, ValueError, TypeError) as error:
            raise ModelUnavailableError(
                f"{source!r} has no usable tokenizer in {predictor.model_dir} ({str(error).strip()[:200]}); save it "
                "next to the model (the training recipe does)."
            ) from error
        loaded = LoadedLM(predictor.model.eval(), tokenizer, predictor.model_dir, threading.Lock())
        _models[key] = loaded
        while len(_models) > MAX_CACHED_MODELS:
            _models.popitem(last=False)
        return loaded


# --------------------------------------------------------------------------------------------------------------------
# Checking the inputs
# --------------------------------------------------------------------------------------------------------------------


def _number(name: str, value: Any, low: float, high: float, integer: bool = False) -> float | int:
    """A slider value from the UI or an API call, within [low, high] (and whole when ``integer``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high or (integer and not number.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise GeneratorInputError(f"{name} must be {kind} from {low} to {high}; got {value!r}.")
    return int(number) if integer else number


def unknown_characters(tokenizer: Any, text: str) -> list[str]:
    """The distinct characters of ``text`` the tokenizer cannot encode (a char vocabulary without ``unk`` refuses
    them) or encodes as its unknown token, in order of appearance."""
    unknown: list[str] = []
    unk_id = tokenizer.unk_token_id
    for character in dict.fromkeys(text):
        try:
            ids = tokenizer(character, add_special_tokens=False)["input_ids"]
        except Exception:  # noqa: BLE001 - tokenizers raises a bare Exception ("WordLevel error: Missing [UNK]")
            unknown.append(character)
            continue
        if unk_id is not None and unk_id in ids:
            unknown.append(character)
    return unknown


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's token ids; an empty prompt starts from the tokenizer's BOS token, else from a newline.

    Why a newline: a character model has no start token, and in its corpus (tiny-shakespeare) every speech starts on
    a new line, so "\\n" is the natural beginning of a text.

    Raises:
        GeneratorInputError: Characters the vocabulary lacks (named), a prompt too long, or nothing to start from.
    """
    if not isinstance(prompt, str):
        raise GeneratorInputError(f"The prompt must be text; got {type(prompt).__name__}.")
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        raise GeneratorInputError(f"The prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARACTERS}.")
    if prompt == "":
        if tokenizer.bos_token_id is not None:
            return [tokenizer.bos_token_id]
        if not unknown_characters(tokenizer, "\n"):
            prompt = "\n"
        else:
            raise GeneratorInputError("Type a prompt: this model has no start token and no newline to start from.")
    unknown = unknown_characters(tokenizer, prompt)
    if unknown:
        shown = ", ".join(repr(character) for character in unknown)
        raise GeneratorInputError(
            f"The prompt has characters this model's vocabulary does not contain: {shown}. Remove or replace them "
            f"(a character-level model only knows the {len(tokenizer)} tokens of its training text)."
        )
    ids = tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
    if not ids:
        raise GeneratorInputError(f"The prompt {prompt!r} gives no tokens; type some text.")
    return ids


# --------------------------------------------------------------------------------------------------------------------
# Generating: model.generate in a thread, TextIteratorStreamer, a window that slides past the context.
# --------------------------------------------------------------------------------------------------------------------


class Settings(NamedTuple):
    max_new_tokens: int = DEFAULT_NEW_TOKENS
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 1.0
    seed: int = 0
    greedy: bool = False

    def checked(self) -> Settings:
        """These settings after range checks (API callers are not held to the sliders)."""
        return Settings(
            _number("max_new_tokens", self.max_new_tokens, *MAX_NEW_TOKENS, integer=True),
            _number("temperature", self.temperature, *TEMPERATURE),
            _number("top_k", self.top_k, *TOP_K, integer=True),
            _number("top_p", self.top_p, *TOP_P),
            _number("seed", self.seed, *SEED, integer=True),
            bool(self.greedy),
        )

    def generate_kwargs(self) -> dict[str, Any]:
        """``model.generate``'s decoding arguments (the same a caller would pass to reproduce a result)."""
        if self.greedy:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


class Progress(NamedTuple):
    """One update of a generation: the whole text so far, and once done the statistics."""

    text: str
    new_tokens: int
    seconds: float
    done: bool
    windows: int  # how many generate calls (1 unless the window slid)
    prompt_truncated: int  # prompt tokens dropped from the left to fit the context


def context_length(model: Any) -> int | None:
    """The longest sequence the model can read, or None when its positions do not limit it (sinusoidal, rotary)."""
    config = model.config
    if getattr(config, "position_embedding_type", "learned") == "learned":
        return int(config.max_position_embeddings)
    return None


def _generate_into(
    model: Any,
    inputs: Any,
    max_new_tokens: int,
    streamer: Any,
    decoding: dict[str, Any],
    result: dict[str, Any],
    errors: list[Exception],
) -> None:
    """``model.generate`` for the worker thread: the ids go to ``result["ids"]``, a failure to ``errors`` (and the
    streamer is closed, so the request thread stops waiting)."""
    import torch

    try:
        with torch.no_grad():
            result["ids"] = model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_new_tokens,
                streamer=streamer,
                **decoding,
            )
    except Exception as error:  # noqa: BLE001 - handed to the request thread
        errors.append(error)
        streamer.end()


def generate_stream(source: str, prompt: str, settings: Settings) -> Iterator[Progress]:
    """Generate from ``prompt`` with the model at ``source``, yielding the text as it grows.

    The prompt's text is the start of every yielded text (as typed, not re-decoded); the last update has
    ``done=True`` and the token count and time of the generation itself (the model's own work, from the first
    ``generate`` call to the last token).

    Raises:
        GeneratorInputError: Bad prompt or settings (checked before the model is loaded where possible).
        ModelUnavailableError: The model cannot be loaded or used.
    """
    settings = settings.checked()
    loaded = load_lm(source)
    import torch
    from transformers import TextIteratorStreamer

    model, tokenizer = loaded.model, loaded.tokenizer
    ids = encode_prompt(tokenizer, prompt)
    shown_prompt = prompt if prompt else tokenizer.decode(ids, skip_special_tokens=True)
    context = context_length(model)
    truncated = 0
    if context is not None:
        # Keep room for the new tokens, up to half a context (more would leave too little prompt to go on from).
        keep = context - min(settings.max_new_tokens, max(1, context // 2))
        if len(ids) > keep:
            truncated = len(ids) - keep
            ids = ids[truncated:]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    decoding = {**settings.generate_kwargs(), "pad_token_id": pad_id if pad_id is not None else 0}

    tokens = list(ids)
    produced, windows, errors = 0, 0, []
    text = shown_prompt
    lock = loaded.sampling_lock if not settings.greedy else None
    if lock is not None:
        lock.acquire()
    try:
        if not settings.greedy:
            torch.manual_seed(settings.seed)  # once: the same seed and settings give the same text
        start = time.perf_counter()
        while produced < settings.max_new_tokens:
            window = tokens if context is None else tokens[-(context - 1) :]
            room = settings.max_new_tokens - produced
            if context is not None:
                # The first call keeps the whole prompt; later calls go on from the last half context.
                if windows > 0:
                    window = tokens[-max(1, context // 2) :]
                room = min(room, context - len(window))
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
            inputs = torch.tensor([window])
            result: dict[str, Any] = {}

            thread = threading.Thread(
                target=_generate_into, args=(model, inputs, room, streamer, decoding, result, errors), daemon=True
            )
            thread.start()
            piece_start = text
            for piece in streamer:
                text += piece
                yield Progress(text, produced, time.perf_counter() - start, False, windows + 1, truncated)
            thread.join()
            if errors:
                raise ModelUnavailableError(f"Generation failed: {errors[0]}") from errors[0]
            new = result["ids"][0, len(window) :].tolist()
            windows += 1
            produced += len(new)
            tokens += new
            # The streamer holds back an incomplete word until the end; make the text exactly the decoded tokens.
            text = piece_start + tokenizer.decode(new, skip_special_tokens=True)
            if not new or (tokenizer.eos_token_id is not None and new[-1] == tokenizer.eos_token_id):
                break
        seconds = time.perf_counter() - start
    finally:
        if lock is not None:
            lock.release()
    yield Progress(text, produced, seconds, True, windows, truncated)


def stats_text(progress: Progress, context: int | None) -> str:
    """The line under the output: tokens generated, time, tokens/s, and whether the window slid."""
    if not progress.done:
        return "Generating..."
    speed = progress.new_tokens / progress.seconds if progress.seconds > 0 else 0.0
    line = f"**{progress.new_tokens} tokens** in {progress.seconds:.2f} s: **{speed:.1f} tokens/s**"
    if progress.prompt_truncated:
        line += (
            f"; the prompt's first {progress.prompt_truncated} tokens were dropped to fit the {context}-token context"
        )
    if progress.windows > 1:
        line += f"; the {context}-token context window slid {progress.windows - 1} time(s)"
    return line


def generate_handler(
    model: str,
    prompt: str,
    max_new_tokens: float,
    temperature: float,
    top_k: float,
    top_p: float,
    seed: float,
    greedy: bool,
) -> Iterator[tuple[str, str]]:
    """The Gradio handler: (text so far, statistics), errors as gr.Error."""
    settings = Settings(max_new_tokens, temperature, top_k, top_p, seed, greedy)
    try:
        context = None
        for progress in generate_stream(model or default_model(), prompt, settings):
            if progress.done:
                context = context_length(load_lm(model or default_model()).model)
            yield progress.text, stats_text(progress, context)
    except (GeneratorInputError, ModelUnavailableError) as error:
        title = "Model unavailable" if isinstance(error, ModelUnavailableError) else "Cannot use this input"
        raise gr.Error(html.escape(str(error), quote=False), title=title, print_exception=False) from error


# --------------------------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------------------------

DESCRIPTION = """\
# ✍️ Text generator
Type the start of a text and let a GPT trained with [hfdl](https://github.com/hfdl/hfdl) go on, one token at a time
(*Deep Learning Mastery*, the GPT chapter). The default model is the character-level Shakespeare GPT (nanoGPT's CPU
configuration). **Greedy** always picks the most likely token; otherwise tokens are sampled with the **temperature**,
**top-k** (0: off) and **top-p** you choose, from the **seed** you choose (same seed, same text).
Context: the model reads at most its context length (64 characters for the Shakespeare GPT); a longer prompt keeps
its end, and a longer generation slides the window over the text, going on from the last half context.
"""


def build_demo() -> gr.Blocks:
    """The interface, with the default model as :func:`configure` and the environment say now."""
    with gr.Blocks(title="hfdl text generator") as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Textbox(default_model(), label="Model folder or Hub id")
                prompt = gr.Textbox(DEFAULT_PROMPT, lines=4, label="Prompt (empty: start from a new line)")
                max_new_tokens = gr.Slider(
                    *MAX_NEW_TOKENS, value=DEFAULT_NEW_TOKENS, step=1, label="New tokens (max_new_tokens)"
                )
                with gr.Row():
                    temperature = gr.Slider(*TEMPERATURE, value=0.8, step=0.05, label="Temperature")
                    top_k = gr.Slider(*TOP_K, value=50, step=1, label="Top-k (0: off)")
                    top_p = gr.Slider(*TOP_P, value=1.0, step=0.05, label="Top-p")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=SEED[0], maximum=SEED[1], label="Seed")
                    greedy = gr.Checkbox(False, label="Greedy (no sampling)")
                button = gr.Button("Generate", variant="primary")
            with gr.Column(scale=1):
                output = gr.Textbox(label="Text", lines=18, interactive=False)
                stats = gr.Markdown()
        button.click(
            generate_handler,
            inputs=[model, prompt, max_new_tokens, temperature, top_k, top_p, seed, greedy],
            outputs=[output, stats],
            api_name="generate",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,  # the handler checks the values itself, with messages that name them
        )
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its default model and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id offered first (env HFDL_MODEL)")
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
    configure(model=args.model)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    print(f"Text generator on {demo.local_url} (model: {default_model()})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
