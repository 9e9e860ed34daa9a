#!/usr/bin/env python
"""Train a GPT-style language model with 🤗 Accelerate, nanoGPT style: one script, read from top to bottom.

By default it trains nanoGPT's character-level Shakespeare model at its CPU configuration (``gpt-char``: 4 layers,
4 heads, 128 wide, context 64, no dropout; batch 12, 2,000 steps, AdamW at 1e-3 with betas (0.9, 0.99), weight decay
0.1, 100 warmup steps, cosine decay to 1e-4, gradient clipping at 1.0)::

    python recipes/train_causal_lm.py --dataset ../shared/data/tinyshakespeare/input.txt
    python recipes/train_causal_lm.py --dataset input.txt --tokenizer bpe --vocab_size 1024 --model gpt-mini
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_causal_lm.py ...

``--dataset`` is required (tiny-shakespeare is karpathy/char-rnn's ``input.txt``): a ``.txt`` file, a folder of
them, or a Hub dataset with a text column (see :func:`hfdl.text_data.load_text_corpus`). A text is split 90/10 by
characters, as nanoGPT splits tiny-shakespeare. ``--model`` is a preset (``gpt-char``,
``gpt-mini``, trained from scratch) or a saved folder / Hub id to fine-tune. The tokenizer is ``--tokenizer char``
or ``bpe`` (trained here with :func:`hfdl.tokenization.train_tokenizer`; a char vocabulary is read off the whole
corpus, as nanoGPT's, a BPE one off the training text), or a saved tokenizer folder; a model folder that carries a
tokenizer brings its own. The model's ``vocab_size`` is the tokenizer's.

Each step every process reads ``--batch_size`` random windows of ``--block_size`` tokens from the training text, as
nanoGPT's ``get_batch`` does, drawn from a generator seeded by (``--seed``, step, process), so a run resumed from a
checkpoint reads exactly the windows the uninterrupted run would have. Every ``--eval_steps`` the mean loss and
next-token accuracy over ``--eval_iters`` batches of the validation text (and of the training text, as nanoGPT
prints both) are logged, always on the same windows so that the curve compares like with like; every
``--sample_steps`` a text sampled from ``--sample_prompt`` is printed and logged (``model.generate``, sliding over
the context window for samples longer than it). Labels are the input ids (the model shifts them): a window of
``--block_size`` tokens gives ``block_size - 1`` predictions.

What lands in ``--output_dir``: ``best/`` (the lowest validation loss, in Hub format with its tokenizer:
``pipeline("text-generation", model="best")`` works), ``all_results.json`` (``main()`` returns the same dict),
``train_log.jsonl`` (losses, evaluations, samples), ``runs/`` (TensorBoard), ``learning_curves.png``, and
``checkpoints/`` with ``--checkpointing_steps`` (``--resume_from_checkpoint latest`` continues bit for bit).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from hfdl.augment import derive_seed
from hfdl.hub import save_for_hub
from hfdl.registry import get_architecture, resolve_preset
from hfdl.text_data import TextCorpus, corpus_card_name, load_text_corpus
from hfdl.training import (
    JsonlTracker,
    TrainingState,
    create_optimizer,
    plot_learning_curves,
    positive_float,
    positive_int,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)

#: The random streams of the recipe: training windows, evaluation windows, text samples.
TRAIN_STREAM, EVAL_STREAM, SAMPLE_STREAM = 11, 12, 13
#: Each split's key in the seeds of its evaluation windows.
SPLIT_KEYS = {"train": 0, "validation": 1}
#: The tokenizers this recipe can train; any other ``--tokenizer`` value is a saved tokenizer.
TOKENIZER_KINDS = ("char", "bpe")
LR_SCHEDULES = ("cosine", "linear", "constant")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl GPT language model with accelerate (nanoGPT-style).")
    parser.add_argument("--model", default="gpt-char", help="A preset (gpt-char, gpt-mini) or a model folder/Hub id")
    parser.add_argument("--config_overrides", help="JSON merged into the preset, e.g. '{\"hidden_dropout\": 0.1}'")
    parser.add_argument(
        "--dataset", required=True, help="A .txt file (tinyshakespeare/input.txt) or folder, or a Hub id"
    )
    parser.add_argument("--text_column", help="The text column of a Hub/saved dataset (default: text, ...)")
    parser.add_argument("--val_fraction", type=float, default=0.1, help="Validation tail of a plain text")
    parser.add_argument("--encoding", default="utf-8", help="Encoding of .txt files")
    parser.add_argument("--tokenizer", help="'char', 'bpe' (trained here) or a tokenizer folder; default: the "
                        "model folder's tokenizer, else 'char'")  # fmt: skip
    parser.add_argument("--vocab_size", type=positive_int, help="BPE vocabulary size (default 1024)")
    parser.add_argument("--block_size", type=positive_int, help="Tokens per window (default: the model's context)")
    parser.add_argument("--batch_size", "--per_device_train_batch_size", type=positive_int, default=12,
                        help="Windows per step, per process")  # fmt: skip
    parser.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    parser.add_argument("--max_steps", "--max_iters", type=positive_int, default=2000, help="Optimizer steps")
    parser.add_argument("--learning_rate", type=positive_float, default=1e-3, help="Peak rate")
    parser.add_argument("--min_learning_rate", type=float, default=1e-4, help="Where the cosine/linear decay ends")
    parser.add_argument("--lr_scheduler", default="cosine", choices=LR_SCHEDULES)
    parser.add_argument("--warmup_steps", "--warmup", type=int, default=100)
    parser.add_argument("--weight_decay", type=float, default=0.1, help="On weight matrices and embeddings only")
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.99)
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping (0: off)")
    parser.add_argument("--eval_steps", type=positive_int, default=250, help="Evaluate every N steps (and at the end)")
    parser.add_argument("--eval_iters", type=positive_int, default=20, help="Batches per split per evaluation")
    parser.add_argument("--eval_batch_size", type=positive_int, help="Per process (default: --batch_size)")
    parser.add_argument("--sample_steps", type=int, help="Log a text sample every N steps (default: --eval_steps; 0: "
                        "never)")  # fmt: skip
    parser.add_argument("--sample_prompt", default="\n", help="Prompt of the samples")
    parser.add_argument("--sample_tokens", type=positive_int, default=200, help="New tokens per sample")
    parser.add_argument("--temperature", type=float, default=0.8, help="Sampling temperature (0: greedy)")
    parser.add_argument("--top_k", type=int, default=200, help="Sample among the k likeliest tokens (0: all)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--output_dir", default="outputs/causal-lm")
    parser.add_argument("--checkpointing_steps", type=positive_int, help="Save the state every N steps")
    parser.add_argument("--checkpoints_total_limit", type=positive_int, default=2, help="Keep the N newest (>= 2)")
    parser.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or 'latest' (in --output_dir)")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Remove an earlier run's checkpoints")
    parser.add_argument("--logging_steps", type=positive_int, default=10, help="Log the mean train loss every N steps")
    parser.add_argument("--report_to", default="tensorboard", help="Trackers, comma-separated; 'all' or 'none'")
    parser.add_argument(
        "--mixed_precision", choices=("no", "fp16", "bf16"), help="Default: the accelerate config's, else no"
    )
    parser.add_argument("--cpu", action="store_true", help="Train on CPU even when a GPU is present")
    args = parser.parse_args(argv)
    if args.sample_steps is None:
        args.sample_steps = args.eval_steps
    if args.sample_steps < 0:
        parser.error(f"--sample_steps must be >= 0, got {args.sample_steps}.")
    for name in ("temperature", "min_learning_rate", "weight_decay", "max_grad_norm"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}.")
    if args.min_learning_rate > args.learning_rate:
        parser.error(f"--min_learning_rate {args.min_learning_rate} is above --learning_rate {args.learning_rate}.")
    if not 0.0 < args.val_fraction < 1.0:
        parser.error(f"--val_fraction must be in (0, 1), got {args.val_fraction}.")
    if args.checkpoints_total_limit < 2:
        parser.error("--checkpoints_total_limit must be at least 2 (see train_image_classifier.py).")
    if args.overwrite_output_dir and args.resume_from_checkpoint:
        parser.error("--overwrite_output_dir starts over: it cannot be combined with --resume_from_checkpoint.")
    return args


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer, model, data
# ---------------------------------------------------------------------------------------------------------------


def is_preset(name: str) -> bool:
    """Whether ``--model`` names an hfdl architecture or preset (trained from scratch) rather than a saved model."""
    try:
        get_architecture(name)
    except ValueError:
        return False
    return True


def has_tokenizer(name_or_path: str) -> bool:
    """Whether a local model folder carries a tokenizer (a Hub id is asked when the tokenizer is loaded)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()
    return not is_preset(name_or_path)


def build_tokenizer(args: argparse.Namespace, corpus: TextCorpus) -> Any:
    """``--tokenizer``'s tokenizer: trained here (char / bpe), loaded from a folder, or the model folder's own."""
    from transformers import AutoTokenizer

    from hfdl.tokenization import train_tokenizer

    kind = args.tokenizer
    if kind is None:
        if not is_preset(args.model) and has_tokenizer(args.model):
            return load_pretrained(AutoTokenizer, args.model)
        kind = "char"
    if kind not in TOKENIZER_KINDS:
        if not Path(kind).expanduser().is_dir():
            raise ValueError(f"--tokenizer {kind!r} is neither one of {', '.join(TOKENIZER_KINDS)} nor a folder.")
        return AutoTokenizer.from_pretrained(kind)
    if kind == "char":
        # nanoGPT reads its character vocabulary off the whole text: the validation tail may hold a character the
        # training text lacks, and a char tokenizer refuses characters it has not seen.
        return train_tokenizer([corpus.train, corpus.validation], kind="char")
    return train_tokenizer([corpus.train], kind="bpe", vocab_size=args.vocab_size)


def encode(tokenizer: Any, text: str, what: str) -> torch.Tensor:
    """The token ids of a whole text as one 1-D tensor (line by line: the Rust tokenizer batches lines fast)."""
    lines = text.splitlines(keepends=True)
    try:
        encodings = tokenizer.backend_tokenizer.encode_batch(lines, add_special_tokens=False)
    except Exception as error:  # tokenizers raises a bare Exception for a character a char vocabulary lacks
        raise ValueError(f"The tokenizer cannot encode the {what} text: {error}") from None
    return torch.tensor([token for encoding in encodings for token in encoding.ids], dtype=torch.long)


def build_model(args: argparse.Namespace, tokenizer: Any) -> Any:
    """A fresh model of a preset, its vocabulary the tokenizer's, or a saved model to fine-tune."""
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    special = {
        f"{role}_token_id": getattr(tokenizer, f"{role}_token_id")
        for role in ("bos", "eos", "pad")
        if getattr(tokenizer, f"{role}_token_id", None) is not None
    }
    if is_preset(args.model):
        spec, preset = resolve_preset(args.model)
        head = spec.task("text-generation")  # a clear error for an architecture without a language-model head
        config = spec.make_config(preset, **{**overrides, "vocab_size": len(tokenizer), **special})
        return head.model_class(config)
    from transformers import AutoModelForCausalLM

    model = load_pretrained(AutoModelForCausalLM, args.model, **overrides)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but {args.model} has a vocabulary of "
            f"{model.config.vocab_size}: fine-tune with the model's own tokenizer (leave --tokenizer out)."
        )
    return model


def load_pretrained(auto_class: Any, name: str, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained(name)`` for a ``--model`` that is not a preset, failing with a message that says
    both readings of the name: not a preset, and not a folder or Hub model that could be loaded."""
    if not Path(name).expanduser().exists() and name.startswith(("/", ".", "~")):
        raise ValueError(f"--model {name!r} is neither an hfdl preset nor an existing folder.")
    try:
        return auto_class.from_pretrained(name, **kwargs)
    except OSError as error:
        raise ValueError(
            f"--model {name!r} is neither an hfdl preset (see `hfdl list`) nor a loadable folder or Hub model: {error}"
        ) from error


def sample_windows(data: torch.Tensor, block_size: int, batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """``batch_size`` random windows of ``block_size`` tokens, as nanoGPT's ``get_batch``; labels are the inputs
    (the model shifts them). The draw depends on ``seed`` only, never on the global generator."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
    input_ids = torch.stack([data[start : start + block_size] for start in starts.tolist()])
    return {"input_ids": input_ids, "labels": input_ids}


# ---------------------------------------------------------------------------------------------------------------
# Schedule, evaluation, samples
# ---------------------------------------------------------------------------------------------------------------


def create_lr_schedule(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_steps: int, min_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """nanoGPT's ``get_lr``: linear warmup over ``warmup_steps`` (step ``s`` at ``(s + 1) / (warmup + 1)``), then a
    cosine (or linear) decay to ``min_ratio`` times the peak at the last step, or a constant rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if name == "constant" or step >= total_steps:
            return 1.0 if name == "constant" else min_ratio
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if name == "cosine" else 1.0 - progress
        return min_ratio + decay * (1.0 - min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: dict[str, torch.Tensor],
    accelerator: Accelerator,
    args: argparse.Namespace,
    block_size: int,
) -> dict[str, float]:
    """Mean loss, perplexity and next-token accuracy over ``--eval_iters`` batches of each split.

    The windows are the same at every evaluation (seeded by ``--seed``, the split and the process), so the curve
    shows the model changing, not the sample; every process scores its own batches, and ``gather_for_metrics``
    joins them, so each rank reports the same numbers.
    """
    model.eval()
    metrics = {}
    batch_size = args.eval_batch_size or args.batch_size
    for split, ids in data.items():
        losses, correct = [], []
        for index in range(args.eval_iters):
            seed = derive_seed(args.seed, EVAL_STREAM, SPLIT_KEYS[split], index, accelerator.process_index)
            batch = {k: v.to(accelerator.device) for k, v in sample_windows(ids, block_size, batch_size, seed).items()}
            outputs = model(**batch)
            losses.append(outputs.loss.detach().float())
            hits = outputs.logits[:, :-1].argmax(-1) == batch["labels"][:, 1:]
            correct.append(hits.float().mean())
        loss = accelerator.gather_for_metrics(torch.stack(losses)).mean().item()
        accuracy = accelerator.gather_for_metrics(torch.stack(correct)).mean().item()
        prefix = "eval" if split == "validation" else "eval_train"
        metrics.update({f"{prefix}_loss": loss, f"{prefix}_perplexity": math.exp(min(loss, 50.0))})
        metrics[f"{prefix}_accuracy"] = accuracy
    model.train()
    return metrics


@torch.no_grad()
def generate_text(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int, temperature: float, top_k: int, seed: int
) -> str:
    """Continue ``prompt`` by ``max_new_tokens`` tokens with ``model.generate``; greedy when ``temperature`` is 0.

    A model with learned positions reads at most ``max_position_embeddings`` tokens, fewer than a long sample: past
    that, generation goes on from the last half of the context. (nanoGPT crops to the last ``block_size`` tokens at
    every token; restarting from half a window keeps ``generate``'s key/value cache useful for the other half.) The
    draws come from a generator forked off the global one and seeded by ``seed``, so a sample changes nothing the
    training draws next (dropout), and the same step gives the same sample in a resumed run.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    context = model.config.max_position_embeddings
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
    if ids.shape[1] == 0:
        raise ValueError(f"The sample prompt {prompt!r} encodes to no tokens.")
    ids = ids[:, -(context - 1) :]
    generated = ids
    options = {"do_sample": True, "temperature": temperature, "top_k": top_k or None} if temperature > 0 else {}
    options.update(do_sample=temperature > 0, pad_token_id=tokenizer.pad_token_id or 0)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed % (1 << 63))
        while generated.shape[1] - ids.shape[1] < max_new_tokens:
            window = generated[:, -max(1, context // 2) :] if generated.shape[1] >= context else generated
            wanted = min(max_new_tokens - (generated.shape[1] - ids.shape[1]), context - window.shape[1])
            output = model.generate(
                input_ids=window, attention_mask=torch.ones_like(window), max_new_tokens=wanted, **options
            )
            generated = torch.cat([generated, output[:, window.shape[1] :]], dim=1)
    model.train(was_training)
    return tokenizer.decode(generated[0], skip_special_tokens=True)


def save_best_model(model: Any, tokenizer: Any, metrics: dict[str, Any], args: argparse.Namespace) -> None:
    """``best/`` in Hub format, with the tokenizer (so ``pipeline("text-generation")`` works on the folder)."""
    dataset = corpus_card_name(args.dataset)
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,
        "datasets": [dataset],
        "eval_dataset": dataset,
        "eval_split": "validation",
        "eval_results": {"loss": metrics["eval_loss"], "perplexity": metrics["eval_perplexity"]},
        "description": f"Trained with hfdl's `train_causal_lm` recipe ({args.model}, AdamW lr {args.learning_rate}, "
        f"{args.lr_scheduler} schedule to {args.min_learning_rate}, batch {args.batch_size}); lowest validation "
        f"loss {metrics['eval_loss']:.4f} at step {metrics['step']}.",
    }
    save_for_hub(model, Path(args.output_dir) / "best", processor=tokenizer, card_data=card_data)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def training_function(args: argparse.Namespace) -> dict[str, Any]:
    wall_start = time.perf_counter()
    output_dir = Path(args.output_dir)
    log_file = JsonlTracker(output_dir / "train_log.jsonl")
    report_to = [] if args.report_to == "none" else args.report_to.split(",")
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        log_with=[log_file, *report_to],
        project_config=ProjectConfiguration(
            project_dir=str(output_dir),
            logging_dir=str(output_dir / "runs"),
            automatic_checkpoint_naming=True,
            total_limit=args.checkpoints_total_limit,
        ),
    )
    if not args.resume_from_checkpoint:
        prepare_checkpoint_dir(accelerator, overwrite=args.overwrite_output_dir)
    set_seed(args.seed)

    with accelerator.main_process_first():
        corpus = load_text_corpus(
            args.dataset, val_fraction=args.val_fraction, text_column=args.text_column, encoding=args.encoding
        )
    # Every process trains the same tokenizer (training is deterministic) and encodes the text once.
    tokenizer = build_tokenizer(args, corpus)
    model = build_model(args, tokenizer)
    context = model.config.max_position_embeddings
    block_size = args.block_size or context
    if block_size > context:
        raise ValueError(f"--block_size {block_size} is longer than the model's context ({context} positions).")
    if block_size < 2:
        raise ValueError(f"--block_size must be at least 2 (one token to predict from another), got {block_size}.")
    tokenizer.model_max_length = context
    data = {"train": encode(tokenizer, corpus.train, "training"), "validation": encode(tokenizer, corpus.validation,
            "validation")}  # fmt: skip
    for split, ids in data.items():
        if len(ids) < block_size:
            raise ValueError(f"The {split} text has {len(ids)} tokens, fewer than --block_size {block_size}.")
    accelerator.print(
        f"{corpus.source}: {len(data['train']):,} training and {len(data['validation']):,} validation tokens, "
        f"vocabulary {len(tokenizer)}; {model.num_parameters():,} parameters."
    )

    optimizer = create_optimizer(model, "adamw", args.learning_rate, args.weight_decay)
    for group in optimizer.param_groups:
        group["betas"] = (args.beta1, args.beta2)
    model, optimizer = accelerator.prepare(model, optimizer)
    total_steps = args.max_steps
    lr_scheduler = create_lr_schedule(
        optimizer, args.lr_scheduler, total_steps, args.warmup_steps, args.min_learning_rate / args.learning_rate
    )
    # An "epoch" is one pass's worth of training tokens over all processes: what the log's epoch column counts.
    tokens_per_step = args.batch_size * block_size * args.gradient_accumulation_steps * accelerator.num_processes
    steps_per_epoch = max(1, len(data["train"]) // tokens_per_step)
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    # The lowest validation loss is kept in the state's best_eval_accuracy as its negative (the state keeps a maximum).
    state.best_eval_accuracy = -math.inf
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("train_causal_lm", config={k: v for k, v in vars(args).items() if v is not None})

    window_loss, window_steps = torch.zeros((), device=accelerator.device), 0
    train_seconds, metrics, sample, first_step = 0.0, None, None, state.completed_steps
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    while state.completed_steps < total_steps:
        step = state.completed_steps
        start = time.perf_counter()
        for micro in range(args.gradient_accumulation_steps):
            seed = derive_seed(args.seed, TRAIN_STREAM, step, micro, accelerator.process_index)
            batch = sample_windows(data["train"], block_size, args.batch_size, seed)
            batch = {key: value.to(accelerator.device) for key, value in batch.items()}
            last = micro == args.gradient_accumulation_steps - 1
            # Gradients are averaged across processes once, on the last micro-batch of the step.
            with accelerator.no_sync(model) if not last else nullcontext():
                outputs = model(**batch)
                accelerator.backward(outputs.loss / args.gradient_accumulation_steps)
            window_loss += outputs.loss.detach() / args.gradient_accumulation_steps
        if args.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.completed_steps += 1
        window_steps += 1
        progress.update(1)
        step = state.completed_steps
        last_step = step == total_steps
        if step % args.logging_steps == 0 or last_step:
            loss = accelerator.reduce(window_loss, reduction="mean").item() / window_steps
            state.train_loss_sum += loss * window_steps
            accelerator.log(
                {"loss": loss, "learning_rate": lr_scheduler.get_last_lr()[0], "epoch": state.epoch}, step=step
            )
            window_loss.zero_()
            window_steps = 0
        train_seconds += time.perf_counter() - start

        if step % args.eval_steps == 0 or last_step:
            metrics = {**evaluate(model, data, accelerator, args, block_size), "epoch": state.epoch, "step": step}
            accelerator.log({k: v for k, v in metrics.items() if k != "step"}, step=step)
            progress.set_postfix(train=f"{metrics['eval_train_loss']:.4f}", val=f"{metrics['eval_loss']:.4f}")
            if -metrics["eval_loss"] > state.best_eval_accuracy:
                state.best_eval_accuracy, state.best_epoch = -metrics["eval_loss"], state.epoch
                if accelerator.is_main_process:
                    save_best_model(accelerator.unwrap_model(model), tokenizer, metrics, args)
        if args.sample_steps and (step % args.sample_steps == 0 or last_step) and accelerator.is_main_process:
            sample = generate_text(
                accelerator.unwrap_model(model),
                tokenizer,
                args.sample_prompt,
                args.sample_tokens,
                args.temperature,
                args.top_k,
                derive_seed(args.seed, SAMPLE_STREAM, step),
            )
            accelerator.log({"sample": sample}, step=step)
            progress.write(f"--- sample at step {step} ---\n{sample}\n---")
        if args.checkpointing_steps and step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from the checkpoint of the last step: evaluate again, train nothing
        metrics = {**evaluate(model, data, accelerator, args, block_size), "epoch": state.epoch, "step": total_steps}

    results = {
        **{k: v for k, v in metrics.items() if k != "step"},
        "train_loss": state.train_loss_sum / state.completed_steps,
        "train_steps": state.completed_steps,
        "train_tokens": state.completed_steps * tokens_per_step,
        "train_seconds": train_seconds,  # this process's time in training steps (no evaluation, samples, saves)
        "ms_per_step": 1000 * train_seconds / max(1, state.completed_steps - first_step),
        "wall_seconds": time.perf_counter() - wall_start,
        "best_eval_loss": -state.best_eval_accuracy,
        "best_epoch": state.best_epoch,
        "block_size": block_size,
        "vocab_size": len(tokenizer),
        "num_parameters": accelerator.unwrap_model(model).num_parameters(),
        "num_processes": accelerator.num_processes,
    }
    if sample is not None:
        results["sample"] = sample
    if accelerator.is_main_process:
        save_json(output_dir / "all_results.json", results)
        plot_learning_curves(log_file.history, output_dir / "learning_curves.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
