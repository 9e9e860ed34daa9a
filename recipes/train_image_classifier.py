#!/usr/bin/env python
"""Train any hfdl image classifier with 🤗 Accelerate: one script, read from top to bottom.

The same file runs on one CPU, one GPU or several processes::

    python recipes/train_image_classifier.py --model lenet5-modern --dataset digits
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_image_classifier.py ...
    accelerate launch --multi_gpu --num_processes 8 recipes/train_image_classifier.py ...  # 8 GPUs

(``accelerate launch --cpu --num_processes 2`` starts a single process; the second line is real 2-process DDP on CPU.)

``--dataset`` is ``digits`` (scikit-learn's 8x8 digits, offline), a folder of MNIST IDX files, a folder of images or
a Hub id such as ``ylecun/mnist`` (see :func:`hfdl.data.load_image_classification_dataset`).

What lands in ``--output_dir``:

* ``best/`` — the epoch with the highest eval accuracy in Hub format (config, safetensors weights, remote code,
  image processor, and a model card carrying the eval metrics), written by :func:`hfdl.hub.save_for_hub`;
* ``all_results.json`` — the last evaluation and a summary of the training; ``main()`` returns the same dict;
* ``train_log.jsonl`` — every ``accelerator.log`` call: the training loss every ``--logging_steps`` and each
  evaluation; ``runs/`` holds the same for TensorBoard (``--report_to``);
* ``learning_curves.png``, ``confusion_matrix.png``;
* ``checkpoints/checkpoint_<i>/`` — ``accelerator.save_state`` every ``--checkpointing_steps``, the newest
  ``--checkpoints_total_limit`` kept; ``--resume_from_checkpoint latest`` continues from there, bit for bit, even
  after the run was killed in the middle of a save. A new run refuses a folder with an earlier run's checkpoints
  (they would mix) unless ``--overwrite_output_dir`` says to remove them.

Data augmentation (training split only, all off by default) takes timm's flags: ``--random_resized_crop SCALE_MIN``,
``--rotation DEG``, ``--translate FRAC``, ``--hflip P``, ``--color_jitter S``, ``--gaussian_noise STD``,
``--auto_augment {randaugment,trivialaugment}``, ``--mixup ALPHA``, ``--cutmix ALPHA``. The horizontal flip stays off
unless asked for, because a mirrored digit is another symbol or none (timm's default of 0.5 suits natural images).
Each sample is transformed afresh every epoch, reproducibly: its draws are seeded from (``--seed``, epoch, row) and
a mix from (``--seed``, step, process), so a resumed run stays bit for bit the uninterrupted one. Mixup/cutmix make
the targets class probabilities, which the model's loss takes as they are (soft-target cross-entropy). Per-sample
transforms run in the DataLoader (``--num_workers`` spreads them over cores); without them the loop reads the
preprocessed tensors as they are. See :mod:`hfdl.augment`.

Optimizers, schedules, checkpoints, the log file, metrics and plots come from :mod:`hfdl.training`.

The defaults (AdamW at 3e-3 with a one-cycle schedule, weight decay 0.01, batch 64, 15 epochs) take LeNet-5 with
dropout 0.2 to 98.5-98.8 % on an 8k/2k split of MNIST-10k in about a second per epoch on two CPU cores
(``benchmarks/bench_mnist.py``); with ``--rotation 10 --translate 0.1`` and 30 epochs, 99.15-99.20 % (3 seeds) in
about 2.5 s per epoch with ``--num_workers 2`` (``benchmarks/bench_mnist_cnn.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.augment import AugmentationConfig, MixupCutmix, add_augmentation_args, build_train_transform
from hfdl.data import TensorDictDataset, dataset_card_name, load_image_classification_dataset, preprocess_for_model
from hfdl.hub import save_for_hub
from hfdl.registry import resolve_preset
from hfdl.training import (
    LR_SCHEDULERS,
    OPTIMIZERS,
    JsonlTracker,
    TrainingState,
    classification_metrics,
    create_optimizer,
    create_scheduler,
    plot_confusion_matrix,
    plot_learning_curves,
    positive_float,
    positive_int,
    predict_classes,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl image classifier with accelerate.")
    parser.add_argument("--model", default="lenet5-modern", help="Architecture or preset: lenet5, mlp-mnist, ...")
    parser.add_argument("--config_overrides", help="JSON merged into the preset, e.g. '{\"dropout\": 0.1}'")
    parser.add_argument("--dataset", default="digits", help="'digits', an MNIST/image folder or a Hub id")
    parser.add_argument("--test_size", type=float, default=0.2, help="Test fraction when the data has no test split")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--num_epochs", type=positive_int, default=15)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="Per process")
    parser.add_argument("--eval_batch_size", type=positive_int, default=256, help="Per process")
    parser.add_argument("--learning_rate", type=positive_float, default=3e-3, help="Peak rate, for any process count")
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.01, help="Not applied to biases and norm scales")
    parser.add_argument("--lr_scheduler", default="onecycle", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/image-classifier")
    parser.add_argument("--checkpointing_steps", help="Save the state every N steps, or each 'epoch'")
    parser.add_argument("--checkpoints_total_limit", type=positive_int, default=2, help="Keep the N newest (>= 2)")
    parser.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or 'latest' (in --output_dir)")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Remove an earlier run's checkpoints")
    parser.add_argument("--logging_steps", type=positive_int, default=10, help="Log the mean train loss every N steps")
    parser.add_argument("--report_to", default="tensorboard", help="Trackers, comma-separated; 'all' or 'none'")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers (0: tensors are in memory)")
    parser.add_argument(
        "--mixed_precision", choices=("no", "fp16", "bf16"), help="Default: the accelerate config's, else no"
    )
    parser.add_argument("--cpu", action="store_true", help="Train on CPU even when a GPU is present")
    add_augmentation_args(parser)
    args = parser.parse_args(argv)
    try:
        AugmentationConfig.from_args(args)
    except ValueError as error:
        parser.error(str(error))
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
    return args


def build_config(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``--model``'s image-classification head (its ``model_class`` builds the model), config and image processor."""
    spec, preset = resolve_preset(args.model)
    head = spec.task("image-classification")  # a clear error for an architecture without this head
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    config = spec.make_config(preset, **overrides)
    image_processor = spec.make_image_processor(config)
    if image_processor is None:
        raise ValueError(f"{args.model!r} is not an image model (its config has no image_size).")
    return head, config, image_processor


def get_dataloaders(
    accelerator: Accelerator, args: argparse.Namespace, image_processor: Any
) -> tuple[DataLoader, DataLoader, list[str]]:
    """Load the data, run the image processor once, and serve ``{"pixel_values", "labels"}`` batches from memory.

    The main process goes first so that data read through ``datasets`` fills its cache once. The preprocessed
    splits are small (MNIST at 32x32: 33 MB), and indexing tensors keeps the loop as fast as a hand-written one.
    The training split's rows go through the per-sample augmentation of the flags, if any, seeded by ``--seed``.
    """
    with accelerator.main_process_first():
        splits = load_image_classification_dataset(
            args.dataset,
            test_size=args.test_size,
            seed=args.split_seed,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
        )
        processed = preprocess_for_model(splits, image_processor)
    augmentation = build_train_transform(
        AugmentationConfig.from_args(args),
        image_mean=image_processor.image_mean,
        image_std=image_processor.image_std,
        num_channels=image_processor.num_channels,
        image_size=image_processor.size,
    )
    if augmentation is not None:
        accelerator.print(f"Training-set augmentation: {augmentation}")
    transforms = None if augmentation is None else {"pixel_values": augmentation}
    train_dataset = TensorDictDataset.from_dataset(processed["train"], transforms=transforms, seed=args.seed)
    # Each DataLoader has its own generator: every pass over one draws a seed from it, and drawing from the global
    # generator would shift the dropout masks of a run resumed from a checkpoint.
    train_dataloader = DataLoader(
        train_dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        TensorDictDataset.from_dataset(processed["test"]),
        batch_size=args.eval_batch_size,
        num_workers=args.num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return train_dataloader, eval_dataloader, splits["train"].features["label"].names


def evaluate(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> dict[str, Any]:
    """Metrics over the whole eval split, with the model's own loss (cross-entropy, or BCE for a one-logit head).

    Every process predicts its shard; ``gather_for_metrics`` joins them and drops the samples repeated to give each
    process a full last batch. Each batch's mean loss is repeated once per sample, so the eval loss is a mean over
    samples, as in transformers' ``*_no_trainer`` examples.
    """
    model.eval()
    predictions, references, losses = [], [], []
    for batch in dataloader:
        with torch.no_grad():
            outputs = model(**batch)
        per_sample_loss = outputs.loss.detach().float().repeat(len(batch["labels"]))
        gathered = accelerator.gather_for_metrics((predict_classes(outputs.logits), batch["labels"], per_sample_loss))
        for store, tensor in zip((predictions, references, losses), gathered):
            store.append(tensor.cpu())
    model.train()
    num_classes = max(accelerator.unwrap_model(model).config.num_labels, 2)  # a one-logit head has two classes
    metrics = classification_metrics(torch.cat(references).numpy(), torch.cat(predictions).numpy(), num_classes)
    metrics.update(loss=torch.cat(losses).mean().item(), samples=sum(len(r) for r in references))
    return {f"eval_{name}": value for name, value in metrics.items()}


def save_best_model(model: Any, image_processor: Any, metrics: dict[str, Any], args: argparse.Namespace) -> None:
    """``best/`` in Hub format, with a model card that names the run, the data and the eval metrics."""
    dataset = dataset_card_name(args.dataset)
    flags = AugmentationConfig.from_args(args).to_dict()
    augmentation = ", augmentation " + ", ".join(f"{k} {v}" for k, v in flags.items()) if flags else ""
    card_metrics = ("accuracy", "f1_macro", "precision_macro", "recall_macro")
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,  # what a Hub repo of this run would be called
        "datasets": [dataset],
        "eval_dataset": dataset,
        "eval_results": {name: metrics[f"eval_{name}"] for name in card_metrics},
        "description": f"Trained with hfdl's `train_image_classifier` recipe ({args.model}, {args.optimizer}, lr "
        f"{args.learning_rate}, {args.lr_scheduler} schedule{augmentation}); best eval accuracy at epoch "
        f"{metrics['epoch']:.2f}.",
    }
    save_for_hub(model, Path(args.output_dir) / "best", processor=image_processor, card_data=card_data)


def training_function(args: argparse.Namespace) -> dict[str, Any]:
    output_dir = Path(args.output_dir)
    # Everything logged goes through accelerator.log: to train_log.jsonl always, and to --report_to's trackers.
    log_file = JsonlTracker(output_dir / "train_log.jsonl")
    report_to = [] if args.report_to == "none" else args.report_to.split(",")
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        log_with=[log_file, *report_to],
        # save_state() writes output_dir/checkpoints/checkpoint_<i>, and deletes the oldest past the limit.
        project_config=ProjectConfiguration(
            project_dir=str(output_dir),
            logging_dir=str(output_dir / "runs"),
            automatic_checkpoint_naming=True,
            total_limit=args.checkpoints_total_limit,
        ),
        # Each epoch's shuffle is a function of (seed, epoch), the same on every process, so a resumed run sees
        # exactly the batches the interrupted one would have.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if not args.resume_from_checkpoint:  # before any work: an earlier run's checkpoints would mix with this run's
        prepare_checkpoint_dir(accelerator, overwrite=args.overwrite_output_dir)
    set_seed(args.seed)  # every process builds the same initial weights

    head, config, image_processor = build_config(args)
    train_dataloader, eval_dataloader, class_names = get_dataloaders(accelerator, args, image_processor)
    # One output per class of the data; the config keeps their names for pipelines and the Hub.
    config.id2label = dict(enumerate(class_names))
    config.label2id = {name: index for index, name in enumerate(class_names)}
    augmentation = AugmentationConfig.from_args(args)
    mix = None
    if augmentation.mixes:
        # The labels are class indices, one per image: single-label, stated before the first batch so that the soft
        # targets of a mix are not taken for multi-label ones (see classification_loss).
        if config.problem_type not in (None, "single_label_classification"):
            raise ValueError(f"--mixup/--cutmix need single-label classification, not {config.problem_type!r}.")
        config.problem_type = "single_label_classification"
        mix = MixupCutmix(config.num_labels, mixup=augmentation.mixup, cutmix=augmentation.cutmix, seed=args.seed)
    model = head.model_class(config)
    optimizer = create_optimizer(model, args.optimizer, args.learning_rate, args.weight_decay)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # Steps are counted per process: each process takes one batch of --batch_size per step.
    steps_per_epoch = len(train_dataloader)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    # Stepped by hand once per optimizer step (prepare() would step it once per process).
    lr_scheduler = create_scheduler(optimizer, args.lr_scheduler, total_steps, args.warmup_steps)
    # A checkpoint holds what prepare() returned and these: the schedule, the loop's counters and the log so far.
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("train_image_classifier", config=vars(args))

    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    # Losses are summed on the device and read once per log: reading one every step would wait for the step.
    window_loss, window_steps = torch.zeros((), device=accelerator.device), 0
    epoch_seconds, metrics = [], None
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:  # resumed from the checkpoint of the last step
            break
        train_dataloader.set_epoch(epoch)
        train_dataloader.dataset.set_epoch(epoch)  # new augmentations (accelerate forwards it in some setups only)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        start = time.perf_counter()
        for batch in active_dataloader:
            if mix is not None:
                batch = mix(batch, step=state.completed_steps, process_index=accelerator.process_index)
            outputs = model(**batch)
            accelerator.backward(outputs.loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.completed_steps += 1
            window_loss += outputs.loss.detach()
            window_steps += 1
            progress.update(1)
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            # A checkpoint due at the end of an epoch is saved after its evaluation, so resuming from it skips none.
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0 and not end_of_epoch
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                loss = accelerator.reduce(window_loss, reduction="mean").item() / window_steps  # mean over processes
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

        metrics = {**evaluate(model, eval_dataloader, accelerator), "epoch": state.epoch}
        accelerator.log({k: v for k, v in metrics.items() if k != "eval_confusion_matrix"}, step=state.completed_steps)
        progress.set_postfix(eval_loss=f"{metrics['eval_loss']:.4f}", eval_acc=f"{metrics['eval_accuracy']:.4f}")
        if metrics["eval_accuracy"] > state.best_eval_accuracy:
            state.best_eval_accuracy, state.best_epoch = metrics["eval_accuracy"], state.epoch
            if accelerator.is_main_process:
                save_best_model(accelerator.unwrap_model(model), image_processor, metrics, args)
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from a checkpoint of the very last step: nothing left but to evaluate
        metrics = {**evaluate(model, eval_dataloader, accelerator), "epoch": state.epoch}

    results = {
        **metrics,
        "train_loss": state.train_loss_sum / state.completed_steps,
        "train_samples": len(train_dataloader.dataset),
        "train_steps": state.completed_steps,
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        "best_eval_accuracy": state.best_eval_accuracy,
        "best_epoch": state.best_epoch,
        "num_processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        save_json(output_dir / "all_results.json", results)
        plot_learning_curves(log_file.history, output_dir / "learning_curves.png")
        plot_confusion_matrix(metrics["eval_confusion_matrix"], class_names, output_dir / "confusion_matrix.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
