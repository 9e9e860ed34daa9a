#!/usr/bin/env python
"""Fine-tune (or train from scratch) a BERT-style text classifier with 🤗 Accelerate: one script, top to bottom.

    python recipes/train_text_classifier.py --dataset ../shared/data/rt-polarity --model bert-course
    python recipes/train_text_classifier.py --dataset ../shared/data/rt-polarity --model outputs/mlm/best
    python recipes/train_text_classifier.py --dataset cornell-movie-review-data/rotten_tomatoes --model MODEL_DIR
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_text_classifier.py ...

``--dataset`` is required (there is no offline text data set every user has): an rt-polarity folder, a
labelled-sentences folder, a CSV/JSON/parquet file with text and label columns, a ``save_to_disk`` folder or a Hub
id, read by :func:`hfdl.text_data.load_text_classification_dataset` (data without a test split: a stratified
``--test_size`` split seeded by ``--split_seed``; MR: 9,595 train / 1,067 test sentences).

``--model`` is a BERT preset (``bert-course``: trained from scratch, with a WordPiece tokenizer trained on the
training split) or a saved model folder / Hub id with its tokenizer: the output of ``train_mlm.py`` (``best/``), a
MiniLM converted into hfdl, any hfdl BERT. Its encoder weights are loaded and a new classifier is put on top, with
one output per class of the data and the class names in ``id2label``. The default learning rate follows the case:
1e-3 from scratch, 5e-5 for a pretrained model (the usual BERT fine-tuning rate).

Batches are padded to their longest sentence by transformers' ``DataCollatorWithPadding``. After every epoch the
accuracy and macro F1 over the whole test split are computed from every process's predictions
(``gather_for_metrics``); the best epoch is saved to ``best/`` with the tokenizer, so
``pipeline("text-classification", model="best")`` answers with the class names. Also written: ``all_results.json``
(``main()`` returns it), ``train_log.jsonl``, ``runs/``, ``learning_curves.png``, ``confusion_matrix.png`` and
``checkpoints/`` (``--resume_from_checkpoint latest`` continues bit for bit). The loop is the one
``train_mlm.py`` runs (:func:`hfdl.recipes.train_mlm.train_loop`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader

from hfdl.hub import save_for_hub
from hfdl.recipes.train_causal_lm import load_pretrained
from hfdl.recipes.train_mlm import check_common_args, is_preset, train_loop
from hfdl.registry import resolve_preset
from hfdl.text_data import corpus_card_name, load_text_classification_dataset
from hfdl.training import (
    LR_SCHEDULERS,
    OPTIMIZERS,
    JsonlTracker,
    classification_metrics,
    create_optimizer,
    plot_confusion_matrix,
    plot_learning_curves,
    positive_float,
    positive_int,
    predict_classes,
    prepare_checkpoint_dir,
    save_json,
)

#: Learning rates when --learning_rate is not given: from scratch, and fine-tuning a pretrained encoder.
SCRATCH_LEARNING_RATE, FINE_TUNING_LEARNING_RATE = 1e-3, 5e-5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl text classifier with accelerate.")
    parser.add_argument("--model", default="bert-course", help="A BERT preset (from scratch) or a model folder/Hub id")
    parser.add_argument("--config_overrides", help="JSON merged into the config, e.g. '{\"classifier_dropout\": 0.2}'")
    parser.add_argument("--dataset", required=True, help="rt-polarity/labelled-sentences folder, a file or a Hub id")
    parser.add_argument("--text_column", help="Default: text, sentence, content, review, document")
    parser.add_argument("--label_column", help="Default: label, labels")
    parser.add_argument("--test_size", type=float, default=0.1, help="Test fraction when the data has no test split")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--tokenizer", help="A tokenizer folder (default: the model's, or a WordPiece trained here)")
    parser.add_argument("--vocab_size", type=positive_int, help="Vocabulary of a trained WordPiece (default: preset's)")
    parser.add_argument("--lowercase", action="store_true", help="Lowercase when training a tokenizer")
    parser.add_argument("--max_seq_length", type=positive_int, default=128, help="Longer sentences are truncated")
    parser.add_argument("--num_epochs", "--num_train_epochs", type=positive_int, default=5)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", "--per_device_train_batch_size", type=positive_int, default=32,
                        help="Per process")  # fmt: skip
    parser.add_argument("--eval_batch_size", type=positive_int, default=128, help="Per process")
    parser.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    parser.add_argument("--learning_rate", type=positive_float, help="Peak rate (default: 1e-3 from scratch, 5e-5 "
                        "for a pretrained model)")  # fmt: skip
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.01, help="Not applied to biases and norm scales")
    parser.add_argument("--lr_scheduler", default="linear", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", "--warmup", type=int, help="Default: 6 %% of the steps")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/text-classifier")
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
    if args.learning_rate is None:
        args.learning_rate = SCRATCH_LEARNING_RATE if is_preset(args.model) else FINE_TUNING_LEARNING_RATE
    return args


def build_tokenizer_and_model(args: argparse.Namespace, train_texts: list[str], class_names: list[str]) -> tuple:
    """A from-scratch preset with a WordPiece trained on ``train_texts``, or a saved encoder and its tokenizer, with a
    fresh classifier of ``len(class_names)`` outputs named after the classes."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hfdl.tokenization import train_tokenizer

    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    labels = {
        "num_labels": len(class_names),
        "id2label": dict(enumerate(class_names)),
        "label2id": {name: index for index, name in enumerate(class_names)},
    }
    if is_preset(args.model):
        spec, preset = resolve_preset(args.model)
        head = spec.task("text-classification")  # a clear error for an architecture without this head
        if args.tokenizer:
            tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        else:
            vocab_size = args.vocab_size or spec.make_config(preset).vocab_size
            tokenizer = train_tokenizer(train_texts, kind="wordpiece", vocab_size=vocab_size, lowercase=args.lowercase)
        config = spec.make_config(
            preset, **{**overrides, **labels, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
        )
        model = head.model_class(config)
    else:
        # The encoder's weights are kept; a head saved with another class count (or none) is replaced.
        model = load_pretrained(
            AutoModelForSequenceClassification, args.model, **overrides, **labels, ignore_mismatched_sizes=True
        )
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
        if len(tokenizer) > model.config.vocab_size:
            raise ValueError(
                f"The tokenizer has {len(tokenizer)} tokens but {args.model} has a vocabulary of "
                f"{model.config.vocab_size}: use the model's own tokenizer."
            )
    return tokenizer, model


class IndexedDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


class PaddingCollator:
    """``DataCollatorWithPadding`` with an ``epoch`` attribute the shared loop sets (this collator draws nothing)."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorWithPadding

        self.collator = DataCollatorWithPadding(tokenizer)
        self.epoch = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return dict(self.collator(features))


def encode(tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer(list(split["text"]), truncation=True, max_length=max_length)
    keys = [key for key in ("input_ids", "token_type_ids", "attention_mask") if key in encoded]
    return [{**{key: encoded[key][i] for key in keys}, "labels": label} for i, label in enumerate(split["label"])]


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, confusion matrix and loss over the whole test split.

    Every process predicts its shard; ``gather_for_metrics`` joins them and drops the rows repeated to fill the
    last batch, so every rank computes the same numbers from the same predictions.
    """
    model.eval()
    predictions, references, losses = [], [], []
    for batch in dataloader:
        outputs = model(**batch)
        per_sample_loss = outputs.loss.detach().float().repeat(len(batch["labels"]))
        gathered = accelerator.gather_for_metrics((predict_classes(outputs.logits), batch["labels"], per_sample_loss))
        for store, tensor in zip((predictions, references, losses), gathered):
            store.append(tensor.cpu())
    model.train()
    num_classes = max(accelerator.unwrap_model(model).config.num_labels, 2)
    metrics = classification_metrics(torch.cat(references).numpy(), torch.cat(predictions).numpy(), num_classes)
    metrics.update(loss=torch.cat(losses).mean().item(), samples=sum(len(r) for r in references))
    return {f"eval_{name}": value for name, value in metrics.items()}


def save_best_model(model: Any, tokenizer: Any, metrics: dict[str, Any], args: argparse.Namespace) -> None:
    """``best/`` in Hub format with the tokenizer and a model card carrying the test metrics."""
    dataset = corpus_card_name(args.dataset)
    card_metrics = ("accuracy", "f1_macro", "precision_macro", "recall_macro")
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,
        "datasets": [dataset],
        "eval_dataset": dataset,
        "eval_results": {name: metrics[f"eval_{name}"] for name in card_metrics},
        "description": f"Trained with hfdl's `train_text_classifier` recipe ({args.model}, {args.optimizer}, lr "
        f"{args.learning_rate}, {args.lr_scheduler} schedule, batch {args.batch_size}); best test accuracy at epoch "
        f"{metrics['epoch']:.2f}.",
    }
    save_for_hub(model, Path(args.output_dir) / "best", processor=tokenizer, card_data=card_data)


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
    set_seed(args.seed)  # every process builds the same initial weights

    with accelerator.main_process_first():
        splits = load_text_classification_dataset(
            args.dataset,
            test_size=args.test_size,
            seed=args.split_seed,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
            text_column=args.text_column,
            label_column=args.label_column,
        )
    class_names = splits["train"].features["label"].names
    tokenizer, model = build_tokenizer_and_model(args, list(splits["train"]["text"]), class_names)
    max_length = min(args.max_seq_length, model.config.max_position_embeddings)
    tokenizer.model_max_length = model.config.max_position_embeddings
    collator = PaddingCollator(tokenizer)
    train_dataloader = DataLoader(
        IndexedDataset(encode(tokenizer, splits["train"], max_length)),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        IndexedDataset(encode(tokenizer, splits["test"], max_length)),
        batch_size=args.eval_batch_size,
        collate_fn=collator,
    )
    accelerator.print(
        f"{args.dataset}: {len(splits['train']):,} training and {len(splits['test']):,} test sentences, classes "
        f"{class_names}; vocabulary {len(tokenizer)}, {model.num_parameters():,} parameters."
    )
    optimizer = create_optimizer(model, args.optimizer, args.learning_rate, args.weight_decay)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    results = train_loop(
        args, accelerator, model, optimizer, train_dataloader, eval_dataloader, log_file, collator,
        save_best=lambda metrics: save_best_model(accelerator.unwrap_model(model), tokenizer, metrics, args),
        lower_is_better=False, run_name="train_text_classifier", evaluate_fn=evaluate,
    )  # fmt: skip
    results["learning_rate"] = args.learning_rate
    if accelerator.is_main_process:
        save_json(output_dir / "all_results.json", results)
        plot_learning_curves(log_file.history, output_dir / "learning_curves.png")
        plot_confusion_matrix(results["eval_confusion_matrix"], class_names, output_dir / "confusion_matrix.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
