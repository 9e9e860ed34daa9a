#!/usr/bin/env python
"""Pretrain a BERT-style encoder with masked language modelling and 🤗 Accelerate: one script, top to bottom.

    python recipes/train_mlm.py --dataset ../shared/data/rt-polarity --model bert-course
    python recipes/train_mlm.py --dataset ../shared/data/tinyshakespeare/input.txt --max_seq_length 128
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_mlm.py ...

``--dataset`` is a text corpus (a ``.txt`` file or folder, read by :func:`hfdl.text_data.load_text_corpus`, or a
Hub dataset's text column) or labelled sentences (an rt-polarity or labelled-sentences folder, a CSV/JSON/parquet
file; read by :func:`hfdl.text_data.load_text_classification_dataset` with the same stratified split as
``train_text_classifier.py``, so pretraining on the ``train`` split never sees the classifier's test sentences).
Sentences are one example each (``--line_by_line``, the default for labelled data); a corpus's tokens are
concatenated and cut into blocks of ``--max_seq_length`` (``[CLS] ... [SEP]``), as transformers' ``run_mlm.py``
groups texts.

``--model`` is a BERT preset (``bert-course``, from scratch) or a saved folder / Hub id (continued pretraining). The
tokenizer is a WordPiece trained on the training texts (``--vocab_size``, default the preset's), a tokenizer folder
(``--tokenizer PATH``), or the model folder's own.

Masking is BERT's, by transformers' ``DataCollatorForLanguageModeling``: 15 % of the tokens (``--mlm_probability``)
are chosen, 80 % of those become ``[MASK]``, 10 % a random token, 10 % stay. The draws of a batch are seeded by
(``--seed``, epoch, the batch's row indices), away from the global generator, so a resumed run masks exactly as the
uninterrupted one would; the evaluation split is masked the same way at every evaluation. Evaluation reports the
masked-token loss (``eval_loss``, and its perplexity) and the masked-token accuracy (``eval_accuracy``).

What lands in ``--output_dir``: ``best/`` (the lowest eval loss, in Hub format with the tokenizer:
``pipeline("fill-mask", model="best")`` works, and ``train_text_classifier.py --model best`` fine-tunes it),
``all_results.json``, ``train_log.jsonl``, ``runs/``, ``learning_curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.augment import derive_seed, isolated_rng
from hfdl.hub import save_for_hub
from hfdl.recipes.train_causal_lm import load_pretrained
from hfdl.registry import get_architecture, resolve_preset
from hfdl.text_data import (
    corpus_card_name,
    is_text_classification_source,
    load_text_classification_dataset,
    load_text_corpus,
)
from hfdl.training import (
    LR_SCHEDULERS,
    OPTIMIZERS,
    JsonlTracker,
    TrainingState,
    create_optimizer,
    create_scheduler,
    plot_learning_curves,
    positive_float,
    positive_int,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)

#: Random streams: the training batches' masks, the evaluation split's masks.
TRAIN_MASK_STREAM, EVAL_MASK_STREAM = 21, 22


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Masked-LM pretraining of an hfdl BERT with accelerate.")
    parser.add_argument("--model", default="bert-course", help="A BERT preset (bert-course, ...) or a model folder")
    parser.add_argument("--config_overrides", help="JSON merged into the preset, e.g. '{\"hidden_dropout\": 0.1}'")
    parser.add_argument("--dataset", required=True, help="A .txt corpus, labelled sentences, or a Hub id")
    parser.add_argument("--text_column", help="The text column of a dataset (default: text, sentence, ...)")
    parser.add_argument("--test_size", type=float, default=0.1, help="Test fraction of labelled data")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--val_fraction", type=float, default=0.1, help="Validation tail of a plain text")
    parser.add_argument("--encoding", default="utf-8", help="Encoding of .txt files")
    parser.add_argument("--line_by_line", default="auto", choices=("auto", "yes", "no"),
                        help="One example per line/sentence (auto: yes for labelled data, no for a corpus)")  # fmt: skip
    parser.add_argument("--tokenizer", help="'wordpiece' (trained here) or a tokenizer folder; default: the model "
                        "folder's, else wordpiece")  # fmt: skip
    parser.add_argument("--vocab_size", type=positive_int, help="WordPiece vocabulary (default: the preset's)")
    parser.add_argument("--lowercase", action="store_true", help="Lowercase (and strip accents) when training one")
    parser.add_argument("--max_seq_length", type=positive_int, default=128, help="Tokens per example, at most")
    parser.add_argument("--mlm_probability", type=float, default=0.15)
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--num_epochs", "--num_train_epochs", type=positive_int, default=10)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", "--per_device_train_batch_size", type=positive_int, default=32,
                        help="Per process")  # fmt: skip
    parser.add_argument("--eval_batch_size", type=positive_int, default=128, help="Per process")
    parser.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    parser.add_argument("--learning_rate", type=positive_float, default=1e-3, help="Peak rate")
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.01, help="Not applied to biases and norm scales")
    parser.add_argument("--lr_scheduler", default="linear", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", "--warmup", type=int, help="Default: 6 %% of the steps (RoBERTa)")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/mlm")
    parser.add_argument("--checkpointing_steps", help="Save the state every N steps, or each 'epoch'")
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
    check_common_args(parser, args)
    if not 0.0 < args.mlm_probability < 1.0:
        parser.error(f"--mlm_probability must be in (0, 1), got {args.mlm_probability}.")
    return args


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks the encoder recipes share (this one and ``train_text_classifier.py``)."""
    steps = args.checkpointing_steps
    if steps not in (None, "epoch") and not (steps.isdigit() and int(steps) > 0):
        parser.error(f"--checkpointing_steps must be 'epoch' or a positive integer, got {steps!r}.")
    if args.checkpoints_total_limit < 2:
        parser.error(
            "--checkpoints_total_limit must be at least 2: accelerate deletes the oldest checkpoint before it writes "
            "the next, so with 1 a run killed while saving would have no complete checkpoint to resume from."
        )
    if args.overwrite_output_dir and args.resume_from_checkpoint:
        parser.error("--overwrite_output_dir starts over: it cannot be combined with --resume_from_checkpoint.")
    if not 0.0 < args.test_size < 1.0:
        parser.error(f"--test_size must be in (0, 1), got {args.test_size}.")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        parser.error(f"--warmup_steps must be >= 0, got {args.warmup_steps}.")
    if args.max_grad_norm < 0:
        parser.error(f"--max_grad_norm must be >= 0, got {args.max_grad_norm}.")


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_texts(args: argparse.Namespace) -> tuple[dict[str, list[str]], bool]:
    """The training and evaluation texts, and whether they are sentences (labelled data) rather than a corpus."""
    if is_text_classification_source(args.dataset):
        splits = load_text_classification_dataset(
            args.dataset,
            test_size=args.test_size,
            seed=args.split_seed,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
            text_column=args.text_column,
        )
        return {"train": list(splits["train"]["text"]), "test": list(splits["test"]["text"])}, True
    corpus = load_text_corpus(
        args.dataset, val_fraction=args.val_fraction, text_column=args.text_column, encoding=args.encoding
    )
    texts = {
        "train": [line for line in corpus.train.splitlines() if line.strip()],
        "test": [line for line in corpus.validation.splitlines() if line.strip()],
    }
    texts["train"] = texts["train"][: args.max_train_samples]
    texts["test"] = texts["test"][: args.max_eval_samples]
    return texts, False


def is_preset(name: str) -> bool:
    try:
        get_architecture(name)
    except ValueError:
        return False
    return True


def load_or_train_tokenizer(args: argparse.Namespace, train_texts: list[str], default_vocab_size: int | None) -> Any:
    """``--tokenizer``'s tokenizer, the model folder's own, or a WordPiece trained on ``train_texts``."""
    from transformers import AutoTokenizer

    from hfdl.tokenization import train_tokenizer

    if args.tokenizer not in (None, "wordpiece"):
        if not Path(args.tokenizer).expanduser().is_dir():
            raise ValueError(f"--tokenizer {args.tokenizer!r} is neither 'wordpiece' nor a tokenizer folder.")
        return AutoTokenizer.from_pretrained(args.tokenizer)
    if args.tokenizer is None and not is_preset(args.model):
        return load_pretrained(AutoTokenizer, args.model)
    vocab_size = args.vocab_size or default_vocab_size
    return train_tokenizer(
        train_texts, kind="wordpiece", vocab_size=vocab_size, lowercase=args.lowercase, model_max_length=512
    )


def tokenize(tokenizer: Any, texts: list[str], max_length: int, line_by_line: bool) -> list[dict[str, list[int]]]:
    """Examples of ``input_ids`` (with ``[CLS]``/``[SEP]``): one per text, or blocks of ``max_length`` cut from all
    texts' tokens joined (run_mlm's ``group_texts``; the last partial block is kept if it has 8 tokens or more)."""
    if line_by_line:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        return [{"input_ids": ids} for ids in encoded if len(ids) > 2]
    pieces = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = [token for ids in pieces for token in ids]
    body = max_length - 2
    blocks = [stream[start : start + body] for start in range(0, len(stream), body)]
    wrap = [tokenizer.cls_token_id], [tokenizer.sep_token_id]
    return [{"input_ids": wrap[0] + block + wrap[1]} for block in blocks if len(block) >= 8]


class IndexedExamples(torch.utils.data.Dataset):
    """Tokenized examples that also hand out their row index, which seeds their masks (see :class:`SeededMasking`)."""

    def __init__(self, examples: list[dict[str, list[int]]]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.examples[index], "row": index}


class SeededMasking:
    """``DataCollatorForLanguageModeling`` with its draws seeded by (seed, stream, epoch, the batch's rows).

    The collator draws from torch's global generator; run in the DataLoader, which fetches a batch ahead of the
    loop, those draws would interleave with dropout's and a resumed run would mask differently. Seeding each batch
    from what it holds makes the masks a function of the data and the epoch only.
    """

    def __init__(self, tokenizer: Any, mlm_probability: float, seed: int, stream: int) -> None:
        from transformers import DataCollatorForLanguageModeling

        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        self.seed, self.stream, self.epoch = seed, stream, 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = [feature["row"] for feature in features]
        features = [{key: value for key, value in feature.items() if key != "row"} for feature in features]
        with isolated_rng(derive_seed(self.seed, self.stream, self.epoch, *rows)):
            return dict(self.collator(features))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and saving
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> dict[str, float]:
    """Loss and accuracy over every masked token of the evaluation split, on every process alike.

    Each example contributes its masked tokens' summed loss, hits and count; ``gather_for_metrics`` joins the
    processes' examples (dropping the repeats that fill the last batch), and the means are taken over tokens.
    """
    model.eval()
    sums = []
    for batch in dataloader:
        logits = model(**batch).logits
        labels = batch["labels"]
        masked = labels != -100
        token_loss = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=-100, reduction="none")
        hits = (logits.argmax(-1) == labels) & masked
        per_example = torch.stack([token_loss.sum(1), hits.sum(1).float(), masked.sum(1).float()], dim=1)
        sums.append(accelerator.gather_for_metrics(per_example).cpu())
    model.train()
    total = torch.cat(sums)
    loss_sum, hits_sum, count = total.sum(0).tolist()
    loss = loss_sum / max(count, 1.0)
    return {
        "eval_loss": loss,
        "eval_perplexity": math.exp(min(loss, 50.0)),
        "eval_accuracy": hits_sum / max(count, 1.0),
        "eval_masked_tokens": int(count),
        "eval_samples": len(total),
    }


def save_best_model(model: Any, tokenizer: Any, metrics: dict[str, Any], args: argparse.Namespace) -> None:
    """``best/`` in Hub format with the tokenizer, so ``pipeline("fill-mask", model=...)`` works on it."""
    dataset = corpus_card_name(args.dataset)
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,
        "datasets": [dataset],
        "eval_dataset": dataset,
        "eval_results": {"loss": metrics["eval_loss"], "accuracy": metrics["eval_accuracy"]},
        "description": f"Masked-LM pretraining with hfdl's `train_mlm` recipe ({args.model}, {args.optimizer}, lr "
        f"{args.learning_rate}, {args.lr_scheduler} schedule, {args.mlm_probability:.0%} masking); lowest eval "
        f"masked-token loss at epoch {metrics['epoch']:.2f}. `accuracy` is the masked-token accuracy.",
    }
    save_for_hub(model, Path(args.output_dir) / "best", processor=tokenizer, card_data=card_data)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def build_model(args: argparse.Namespace, tokenizer: Any, config_overrides: dict[str, Any]) -> Any:
    if is_preset(args.model):
        spec, preset = resolve_preset(args.model)
        head = spec.task("fill-mask")
        config = spec.make_config(
            preset, **{**config_overrides, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
        )
        return head.model_class(config)
    from transformers import AutoModelForMaskedLM

    model = load_pretrained(AutoModelForMaskedLM, args.model, **config_overrides)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but {args.model} has a vocabulary of "
            f"{model.config.vocab_size}: use the model's own tokenizer (leave --tokenizer out)."
        )
    return model


def training_function(args: argparse.Namespace) -> dict[str, Any]:
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
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if not args.resume_from_checkpoint:
        prepare_checkpoint_dir(accelerator, overwrite=args.overwrite_output_dir)
    set_seed(args.seed)

    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    default_vocab = None
    if is_preset(args.model):
        spec, preset = resolve_preset(args.model)
        spec.task("fill-mask")  # before any data is read: an architecture without a masked-LM head fails here
        default_vocab = spec.presets[preset].get("vocab_size", spec.make_config(preset).vocab_size)
    with accelerator.main_process_first():
        texts, sentences = load_texts(args)
    tokenizer = load_or_train_tokenizer(args, texts["train"], default_vocab)
    if tokenizer.mask_token is None:
        raise ValueError("The tokenizer has no mask token; masked-LM training needs one (e.g. a 'bert' WordPiece).")
    model = build_model(args, tokenizer, overrides)
    max_length = min(args.max_seq_length, model.config.max_position_embeddings)
    tokenizer.model_max_length = model.config.max_position_embeddings
    line_by_line = {"auto": sentences, "yes": True, "no": False}[args.line_by_line]
    examples = {
        split: tokenize(tokenizer, split_texts, max_length, line_by_line) for split, split_texts in texts.items()
    }
    for split, split_examples in examples.items():
        if not split_examples:
            raise ValueError(f"The {split} split of {args.dataset} gives no examples after tokenization.")
    accelerator.print(
        f"{args.dataset}: {len(examples['train']):,} training and {len(examples['test']):,} eval examples "
        f"({'one per line' if line_by_line else f'blocks of {max_length} tokens'}), vocabulary {len(tokenizer)}; "
        f"{model.num_parameters():,} parameters."
    )

    train_masking = SeededMasking(tokenizer, args.mlm_probability, args.seed, TRAIN_MASK_STREAM)
    eval_masking = SeededMasking(tokenizer, args.mlm_probability, args.seed, EVAL_MASK_STREAM)
    train_dataloader = DataLoader(
        IndexedExamples(examples["train"]),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=train_masking,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        IndexedExamples(examples["test"]), batch_size=args.eval_batch_size, collate_fn=eval_masking
    )
    optimizer = create_optimizer(model, args.optimizer, args.learning_rate, args.weight_decay)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    results = train_loop(
        args, accelerator, model, optimizer, train_dataloader, eval_dataloader, log_file, train_masking,
        save_best=lambda metrics: save_best_model(accelerator.unwrap_model(model), tokenizer, metrics, args),
        lower_is_better=True, run_name="train_mlm",
    )  # fmt: skip
    results["vocab_size"] = len(tokenizer)
    if accelerator.is_main_process:
        save_json(output_dir / "all_results.json", results)
        plot_learning_curves(log_file.history, output_dir / "learning_curves.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def train_loop(
    args: argparse.Namespace,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_dataloader: DataLoader,
    eval_dataloader: DataLoader,
    log_file: JsonlTracker,
    epoch_aware: Any,
    save_best: Any,
    lower_is_better: bool,
    run_name: str,
    evaluate_fn: Any = None,
) -> dict[str, Any]:
    """The epoch loop the encoder recipes share: steps with gradient accumulation and clipping, a log of the train
    loss every ``--logging_steps``, an evaluation at the end of every epoch (the best saved with ``save_best``),
    checkpoints every ``--checkpointing_steps``, and an exact resume.

    ``epoch_aware`` (the collator) has its ``epoch`` set before each epoch; ``lower_is_better`` says whether the best
    evaluation has the lowest ``eval_loss`` (pretraining) or the highest ``eval_accuracy`` (classification).
    """
    evaluate_fn = evaluate_fn or evaluate
    accumulation = args.gradient_accumulation_steps
    batches_per_epoch = len(train_dataloader)
    steps_per_epoch = math.ceil(batches_per_epoch / accumulation)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    warmup = args.warmup_steps if args.warmup_steps is not None else round(0.06 * total_steps)
    lr_scheduler = create_scheduler(optimizer, args.lr_scheduler, total_steps, warmup)
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    if lower_is_better:  # the state keeps a maximum: the lowest loss is kept as its negative
        state.best_eval_accuracy = -math.inf
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers(run_name, config={k: v for k, v in vars(args).items() if v is not None})

    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    window_loss, window_steps = torch.zeros((), device=accelerator.device), 0
    epoch_seconds, metrics = [], None
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:
            break
        train_dataloader.set_epoch(epoch)
        epoch_aware.epoch = epoch
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step * accumulation)
        start = time.perf_counter()
        micro, step_loss = 0, torch.zeros((), device=accelerator.device)
        batch_index = resume_step * accumulation if epoch == starting_epoch else 0
        for batch in active_dataloader:
            batch_index += 1
            micro += 1
            # The last step of an epoch may gather fewer micro-batches; its loss is their mean all the same.
            group = min(accumulation, batches_per_epoch - (batch_index - micro))
            sync = micro == group
            with accelerator.no_sync(model) if not sync else nullcontext():
                outputs = model(**batch)
                accelerator.backward(outputs.loss / group)
            step_loss += outputs.loss.detach() / group
            if not sync:
                continue
            if args.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            micro = 0
            state.completed_steps += 1
            window_loss += step_loss
            step_loss = torch.zeros((), device=accelerator.device)
            window_steps += 1
            progress.update(1)
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0 and not end_of_epoch
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                loss = accelerator.reduce(window_loss, reduction="mean").item() / window_steps
                state.train_loss_sum += loss * window_steps
                accelerator.log(
                    {"loss": loss, "learning_rate": lr_scheduler.get_last_lr()[0], "epoch": state.epoch},
                    step=state.completed_steps,
                )
                window_loss.zero_()
                window_steps = 0
            if save_now:
                save_checkpoint(accelerator, state)
            if end_of_epoch:
                break
        epoch_seconds.append(time.perf_counter() - start)

        metrics = {**evaluate_fn(model, eval_dataloader, accelerator), "epoch": state.epoch}
        accelerator.log(
            {k: v for k, v in metrics.items() if not isinstance(v, list)}, step=state.completed_steps
        )  # a confusion matrix stays out of the log
        progress.set_postfix(eval_loss=f"{metrics['eval_loss']:.4f}", eval_acc=f"{metrics['eval_accuracy']:.4f}")
        score = -metrics["eval_loss"] if lower_is_better else metrics["eval_accuracy"]
        if score > state.best_eval_accuracy:
            state.best_eval_accuracy, state.best_epoch = score, state.epoch
            if accelerator.is_main_process:
                save_best(metrics)
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from a checkpoint of the very last step: nothing left but to evaluate
        metrics = {**evaluate_fn(model, eval_dataloader, accelerator), "epoch": state.epoch}

    best_key = "best_eval_loss" if lower_is_better else "best_eval_accuracy"
    return {
        **metrics,
        "train_loss": state.train_loss_sum / max(1, state.completed_steps),
        "train_samples": len(train_dataloader.dataset),
        "train_steps": state.completed_steps,
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        best_key: -state.best_eval_accuracy if lower_is_better else state.best_eval_accuracy,
        "best_epoch": state.best_epoch,
        "num_parameters": accelerator.unwrap_model(model).num_parameters(),
        "num_processes": accelerator.num_processes,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
