#!/usr/bin/env python
"""Train any hfdl image classifier with 🤗 Accelerate: one script, read from top to bottom.

The same file runs on one CPU, one GPU or several processes::

    python recipes/train_image_classifier.py --model lenet5-modern --dataset digits
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_image_classifier.py ...

(``accelerate launch --cpu --num_processes 2`` starts a single process; the line above is real 2-process DDP on CPU.)

``--dataset`` is ``digits`` (scikit-learn's 8x8 digits, offline), a folder of MNIST IDX files, a folder of images or
a Hub id such as ``ylecun/mnist`` (see :func:`hfdl.data.load_image_classification_dataset`).

What lands in ``--output_dir``:

* ``best/`` — the checkpoint with the highest eval accuracy, in Hub format: config, safetensors weights, modeling
  code (remote code), the image processor and a model card whose YAML carries the eval metrics. Load it with
  ``AutoModelForImageClassification.from_pretrained(output_dir / "best")`` after ``import hfdl``.
* ``all_results.json`` — the last evaluation (``eval_accuracy``, ``eval_f1_macro``, ...), the training summary
  (``train_loss``, ``epoch``, ``train_seconds_per_epoch``, ...) and the best epoch, as transformers' example scripts
  write it. ``main()`` returns the same dict.
* ``train_log.jsonl`` — one line per optimizer step (``loss``, ``learning_rate``) and per evaluation.
* ``learning_curves.png``, ``confusion_matrix.png``.
* ``epoch_N/`` (after epoch N) or ``step_N/`` — ``accelerator.save_state`` checkpoints (``--checkpointing_steps``)
  plus the loop's counters and log (``trainer_state.json``), which ``--resume_from_checkpoint`` (a path, or
  ``latest``) continues from, step for step.

Files are written by the main process (``save_state`` also stores each process's random state), each to a temporary
name first and then renamed, so an interrupted run never leaves a half-written checkpoint or results file.
``--log_sample_ids DIR`` makes every process write the train indices it saw (``DIR/rank<N>.json``), which is how the
tests check that DDP ranks train on disjoint shards.

The defaults (AdamW at 3e-3 with a one-cycle schedule, weight decay 0.01, batch 64, 15 epochs) take LeNet-5 with
dropout 0.2 to 98.5-98.8 % on an 8k/2k split of MNIST-10k in about a second per epoch on two CPU cores
(``benchmarks/bench_mnist.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.data import TensorDictDataset, load_image_classification_dataset, preprocess_for_model
from hfdl.registry import resolve_preset

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adagrad", "adam", "adamw")
LR_SCHEDULERS = ("none", "constant", "linear", "cosine", "step", "onecycle")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl image classifier with accelerate.")
    parser.add_argument("--model", default="lenet5-modern", help="Architecture or preset: lenet5, mlp-mnist, ...")
    parser.add_argument(
        "--config_overrides", default=None, help="JSON merged into the preset, e.g. '{\"dropout\": 0.1}'"
    )
    parser.add_argument(
        "--dataset", default="digits", help="'digits', an MNIST IDX folder, an image folder or a Hub id"
    )
    parser.add_argument("--test_size", type=float, default=0.2, help="Test fraction when the data has no test split")
    parser.add_argument(
        "--split_seed",
        type=int,
        default=0,
        help="Seed of the train/test split (kept apart from --seed, so runs with "
        "different seeds are evaluated on the same test set)",
    )
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--num_epochs", type=int, default=15)
    parser.add_argument("--max_steps", type=int, default=None, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", type=int, default=64, help="Per process")
    parser.add_argument("--eval_batch_size", type=int, default=256, help="Per process")
    parser.add_argument(
        "--learning_rate", type=float, default=3e-3, help="Peak learning rate (not rescaled per process)"
    )
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.01, help="Not applied to biases")
    parser.add_argument(
        "--lr_scheduler",
        default="onecycle",
        choices=LR_SCHEDULERS,
        help="none/constant: fixed; linear/cosine: decay after warmup; step: x0.1 at 50%% and 75%%; onecycle: "
        "ramp up over the warmup (or 25%%) then cosine down",
    )
    parser.add_argument("--warmup_steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/image-classifier")
    parser.add_argument("--checkpointing_steps", default=None, help="'epoch', or save every N steps")
    parser.add_argument("--resume_from_checkpoint", default=None, help="A checkpoint folder, or 'latest'")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers (0: tensors are in memory)")
    parser.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"))
    parser.add_argument("--cpu", action="store_true", help="Train on CPU even when a GPU is present")
    parser.add_argument(
        "--log_sample_ids",
        default=None,
        help="Debug: folder where each process writes the indices of the samples it trained on (rank<N>.json)",
    )
    args = parser.parse_args(argv)
    for name in ("num_epochs", "batch_size", "eval_batch_size", "max_steps", "max_train_samples", "max_eval_samples"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be a positive integer, got {value}.")
    if args.learning_rate <= 0:
        parser.error(f"--learning_rate must be positive, got {args.learning_rate}.")
    steps = args.checkpointing_steps
    if steps not in (None, "epoch") and not (str(steps).isdigit() and int(steps) > 0):
        parser.error(f"--checkpointing_steps must be 'epoch' or a positive integer, got {args.checkpointing_steps!r}.")
    return args


# ---------------------------------------------------------------------------------------------------------------
# Data, model, optimizer, schedule
# ---------------------------------------------------------------------------------------------------------------


def get_dataloaders(
    accelerator: Accelerator, args: argparse.Namespace, image_processor: Any
) -> tuple[DataLoader, DataLoader, list[str]]:
    """Load the data, run the image processor once, and wrap the tensors in DataLoaders.

    The main process goes first so that a data set read through ``datasets`` fills its cache once; the others
    then read that cache. The preprocessed splits are held in memory as tensors (MNIST at 32x32: 33 MB), which is
    what keeps the loop as fast as a hand-written one; each process's sampler then picks its own shard.
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
    class_names = splits["train"].features["label"].names
    train_dataloader = DataLoader(
        TensorDictDataset.from_dataset(processed["train"]),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
    )
    eval_dataloader = DataLoader(
        TensorDictDataset.from_dataset(processed["test"]),
        batch_size=args.eval_batch_size,
        num_workers=args.num_workers,
    )
    return train_dataloader, eval_dataloader, class_names


def build_config(args: argparse.Namespace) -> tuple[Any, Any]:
    """The registry's config for ``--model`` (a preset, with ``--config_overrides``) and its image processor."""
    spec, preset = resolve_preset(args.model)
    spec.task("image-classification")  # a clear error for an architecture without an image-classification head
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    config = spec.make_config(preset, **overrides)
    image_processor = spec.make_image_processor(config)
    if image_processor is None:
        raise ValueError(
            f"{args.model!r} is not an image model (its config has no image_size); pick an image classifier."
        )
    return config, image_processor


def build_optimizer(args: argparse.Namespace, model: torch.nn.Module) -> torch.optim.Optimizer:
    """One of the course's optimizers; weight decay skips biases (decaying them only shifts activations)."""
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    lr = args.learning_rate
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if args.optimizer == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if args.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr)
    if args.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if args.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if args.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"Unknown optimizer {args.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}.")


def build_scheduler(
    args: argparse.Namespace, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A learning-rate schedule stepped once per optimizer step, over ``total_steps`` steps."""
    from transformers import get_scheduler

    warmup = min(args.warmup_steps, total_steps)
    if args.lr_scheduler in ("none", "constant"):
        name = "constant_with_warmup" if warmup else "constant"
        return get_scheduler(name, optimizer, num_warmup_steps=warmup)
    if args.lr_scheduler in ("linear", "cosine"):
        return get_scheduler(args.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    if args.lr_scheduler == "step":
        milestones = [total_steps // 2, (3 * total_steps) // 4]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if args.lr_scheduler == "onecycle":
        # Smith & Topin (2017): the ramp up acts as warmup, the long cosine descent anneals into a flat minimum.
        if total_steps < 4:  # too short for a step up and a step down: keep the rate constant
            return get_scheduler("constant", optimizer)
        ramp_steps = min(max(warmup or round(0.25 * total_steps), 2), total_steps - 2)
        # Momentum is cycled against the rate only where the optimizer has one (Adam's beta1, SGD's momentum).
        has_momentum = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=args.learning_rate,
            total_steps=total_steps,
            pct_start=ramp_steps / total_steps,
            cycle_momentum=has_momentum,
        )
    raise ValueError(f"Unknown --lr_scheduler {args.lr_scheduler!r}; allowed: {', '.join(LR_SCHEDULERS)}.")


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and reports
# ---------------------------------------------------------------------------------------------------------------


def classification_metrics(references: np.ndarray, predictions: np.ndarray, num_labels: int) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 (every class weighs the same) and the confusion matrix, by scikit-learn."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        references, predictions, labels=list(range(num_labels)), average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "confusion_matrix": confusion_matrix(references, predictions, labels=list(range(num_labels))).tolist(),
    }


def evaluate(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator) -> dict[str, Any]:
    """Metrics over the whole eval split: every process predicts its shard, ``gather_for_metrics`` joins them (and
    drops the samples repeated to give every process a full last batch)."""
    model.eval()
    predictions, references, losses = [], [], []
    with torch.no_grad():
        for batch in dataloader:
            logits = model(pixel_values=batch["pixel_values"]).logits  # (B, num_labels)
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"], reduction="none")
            gathered = accelerator.gather_for_metrics((logits.argmax(dim=-1), batch["label"], loss))
            for store, tensor in zip((predictions, references, losses), gathered):
                store.append(tensor.cpu())
    model.train()
    num_labels = accelerator.unwrap_model(model).config.num_labels
    metrics = classification_metrics(torch.cat(references).numpy(), torch.cat(predictions).numpy(), num_labels)
    metrics["loss"] = float(torch.cat(losses).mean())
    metrics["samples"] = int(sum(len(r) for r in references))
    return {f"eval_{name}": value for name, value in metrics.items()}


def write_atomically(path: Path, write: Any) -> None:
    """Call ``write(temporary_path)`` and rename the result onto ``path``, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def write_json(path: Path, data: Any) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def write_log(path: Path, log: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(entry) + "\n" for entry in log)
    write_atomically(path, lambda tmp: tmp.write_text(lines, encoding="utf-8"))


def plot_learning_curves(log: list[dict[str, Any]], path: Path) -> None:
    """Training loss per step and eval accuracy per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [entry for entry in log if "loss" in entry]
    evals = [entry for entry in log if "eval_accuracy" in entry]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot([e["step"] for e in train], [e["loss"] for e in train], linewidth=0.8, label="train")
    loss_axis.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="eval")
    loss_axis.set(xlabel="step", ylabel="cross-entropy", title="Loss", yscale="log")
    loss_axis.legend()
    accuracy_axis.plot([e["epoch"] for e in evals], [e["eval_accuracy"] for e in evals], "o-")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="Eval accuracy")
    figure.tight_layout()
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)


def plot_confusion_matrix(matrix: list[list[int]], class_names: list[str], path: Path) -> None:
    """Counts of (true class, predicted class); the off-diagonal cells are the mistakes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    axis.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (eval)")
    if len(class_names) <= 20:
        for (row, column), count in np.ndenumerate(matrix):
            color = "white" if count > matrix.max() / 2 else "black"
            axis.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)


def dataset_card_name(dataset: str) -> str:
    """How the model card names the data: a Hub id as it is, a local folder by its own name."""
    if dataset == "digits":
        return "sklearn-digits"
    path = Path(dataset).expanduser()
    return path.resolve().name if path.exists() else dataset


def save_best_model(
    model: torch.nn.Module, image_processor: Any, metrics: dict[str, Any], args: argparse.Namespace, path: Path
) -> None:
    """Save a Hub-format checkpoint beside the old one, then swap them, so ``path`` never holds half a model."""
    dataset_name = dataset_card_name(args.dataset)
    card_metrics = {
        name: metrics[f"eval_{name}"] for name in ("accuracy", "f1_macro", "precision_macro", "recall_macro")
    }
    # The model card names the model after its folder: stage it as <output_dir name>/ so the card shows the run's
    # name (what a Hub repo would be called), not "best".
    staging = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    temporary = staging / Path(args.output_dir).resolve().name
    model.save_pretrained(
        temporary,
        model_card_data={
            "datasets": [dataset_name],
            "eval_results": card_metrics,
            "eval_dataset": dataset_name,
            "description": (
                f"Trained with hfdl's `train_image_classifier` recipe ({args.model}, {args.optimizer}, "
                f"lr {args.learning_rate}, {args.lr_scheduler} schedule); best eval accuracy at epoch "
                f"{metrics['epoch']:.2f}."
            ),
        },
    )
    image_processor.save_pretrained(temporary)
    previous = path.with_name(f".{path.name}.old")
    if path.exists():
        os.replace(path, previous)
    os.replace(temporary, path)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------------


def find_latest_checkpoint(output_dir: Path) -> Path:
    folders = [*output_dir.glob("epoch_*"), *output_dir.glob("step_*")]
    candidates = [folder for folder in folders if (folder / "trainer_state.json").is_file()]
    if not candidates:
        raise ValueError(f"--resume_from_checkpoint latest: no epoch_N/ or step_N/ checkpoint in {output_dir}.")
    return max(candidates, key=lambda p: json.loads((p / "trainer_state.json").read_text())["completed_steps"])


def save_checkpoint(accelerator: Accelerator, output_dir: Path, name: str, trainer_state: dict[str, Any]) -> None:
    """``save_state`` (model, optimizer, scheduler, RNG of every process) plus the loop's own counters and log.

    Every process writes into a temporary folder; the main process renames it once all have finished.
    """
    final = output_dir / name
    temporary = output_dir / f".{name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(temporary / "trainer_state.json", trainer_state)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
    accelerator.wait_for_everyone()


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def log_losses(
    accelerator: Accelerator,
    pending: list[tuple[int, torch.Tensor, float]],
    log: list[dict[str, Any]],
    steps_per_epoch: int,
) -> None:
    """Average the pending step losses over processes (one collective call) and append them to ``log``."""
    if not pending:
        return
    losses = accelerator.reduce(torch.stack([loss for _, loss, _ in pending]), reduction="mean").tolist()
    for (step, _, learning_rate), loss in zip(pending, losses):
        log.append(
            {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": loss, "learning_rate": learning_rate}
        )
    pending.clear()


def training_function(args: argparse.Namespace) -> dict[str, Any]:
    # The seedable sampler makes each epoch's shuffle a function of (seed, epoch), the same on every process, so a
    # resumed run sees exactly the batches the interrupted one would have.
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    config, image_processor = build_config(args)
    train_dataloader, eval_dataloader, class_names = get_dataloaders(accelerator, args, image_processor)
    # The head gets one output per class of the data, and the config keeps their names for pipelines and the Hub.
    config.id2label = dict(enumerate(class_names))
    config.label2id = {name: index for index, name in enumerate(class_names)}
    set_seed(args.seed)  # every process builds the same initial weights
    model = resolve_preset(args.model)[0].task("image-classification").model_class(config)
    optimizer = build_optimizer(args, model)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # Steps are counted per process: each process takes one batch of --batch_size per step.
    steps_per_epoch = len(train_dataloader)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    # The scheduler is stepped by hand, once per optimizer step, rather than passed to prepare() (which would step
    # it once per process); registering it puts it in the checkpoints.
    lr_scheduler = build_scheduler(args, optimizer, total_steps)
    accelerator.register_for_checkpointing(lr_scheduler)
    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None

    # State the loop carries across epochs, and into checkpoints.
    completed_steps, log, best = 0, [], {"eval_accuracy": -1.0, "epoch": None}
    if args.resume_from_checkpoint:
        checkpoint = (
            find_latest_checkpoint(output_dir)
            if args.resume_from_checkpoint == "latest"
            else Path(args.resume_from_checkpoint)
        )
        state_file = checkpoint / "trainer_state.json"
        if not state_file.is_file():
            raise ValueError(f"{checkpoint} is not a checkpoint of this recipe (no trainer_state.json).")
        accelerator.load_state(str(checkpoint))
        state = json.loads(state_file.read_text())
        if state["steps_per_epoch"] != steps_per_epoch:
            raise ValueError(
                f"{checkpoint} was saved with {state['steps_per_epoch']} steps per epoch, this run has "
                f"{steps_per_epoch}: resume with the same data, --batch_size and number of processes."
            )
        completed_steps, log, best = state["completed_steps"], state["log"], state["best"]
        accelerator.print(f"Resumed from {checkpoint} at step {completed_steps}.")
    starting_epoch, resume_step = divmod(completed_steps, steps_per_epoch)

    def trainer_state() -> dict[str, Any]:
        return {"completed_steps": completed_steps, "steps_per_epoch": steps_per_epoch, "log": log, "best": best}

    # Losses stay on the device until they are logged: reading a value each step would stall the loop.
    pending: list[tuple[int, torch.Tensor, float]] = []  # (step, loss, learning rate)
    sample_ids: dict[str, list[int]] = {}
    epoch_train_seconds: list[float] = []
    metrics = None
    progress = tqdm(total=total_steps, initial=completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    for epoch in range(starting_epoch, num_epochs):
        train_dataloader.set_epoch(epoch)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        seen: list[torch.Tensor] = []  # --log_sample_ids: the batches' row indices
        start = time.perf_counter()
        for batch in active_dataloader:
            outputs = model(pixel_values=batch["pixel_values"], labels=batch["label"])
            accelerator.backward(outputs.loss)
            optimizer.step()
            learning_rate = lr_scheduler.get_last_lr()[0]
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            completed_steps += 1
            pending.append((completed_steps, outputs.loss.detach(), learning_rate))
            if args.log_sample_ids:
                seen.append(batch["index"])
            progress.update(1)
            if checkpoint_every and completed_steps % checkpoint_every == 0:
                log_losses(accelerator, pending, log, steps_per_epoch)
                save_checkpoint(accelerator, output_dir, f"step_{completed_steps}", trainer_state())
            if completed_steps >= total_steps:
                break
        epoch_train_seconds.append(time.perf_counter() - start)
        log_losses(accelerator, pending, log, steps_per_epoch)
        if args.log_sample_ids:
            sample_ids[str(epoch)] = torch.cat(seen).tolist() if seen else []

        metrics = evaluate(model, eval_dataloader, accelerator)
        metrics.update(step=completed_steps, epoch=round(completed_steps / steps_per_epoch, 4))
        log.append({key: value for key, value in metrics.items() if key != "eval_confusion_matrix"})
        progress.set_postfix(eval_loss=f"{metrics['eval_loss']:.4f}", eval_acc=f"{metrics['eval_accuracy']:.4f}")
        if metrics["eval_accuracy"] > best["eval_accuracy"]:
            best = {"eval_accuracy": metrics["eval_accuracy"], "epoch": metrics["epoch"]}
            if accelerator.is_main_process:
                save_best_model(accelerator.unwrap_model(model), image_processor, metrics, args, output_dir / "best")
        if accelerator.is_main_process:
            write_log(output_dir / "train_log.jsonl", log)
        if args.checkpointing_steps == "epoch":
            save_checkpoint(accelerator, output_dir, f"epoch_{epoch + 1}", trainer_state())  # after epoch N
        if completed_steps >= total_steps:
            break
    progress.close()
    if metrics is None:  # resumed from a checkpoint taken at the very last step
        metrics = evaluate(model, eval_dataloader, accelerator)
        metrics.update(step=completed_steps, epoch=round(completed_steps / steps_per_epoch, 4))

    train_losses = [entry["loss"] for entry in log if "loss" in entry]
    results = {
        **metrics,
        "train_loss": float(np.mean(train_losses)) if train_losses else None,
        "train_samples": len(train_dataloader.dataset),
        "train_steps": completed_steps,
        "train_seconds_per_epoch": float(np.median(epoch_train_seconds)) if epoch_train_seconds else None,
        "train_epoch_seconds": epoch_train_seconds,
        "best_eval_accuracy": best["eval_accuracy"],
        "best_epoch": best["epoch"],
        "num_processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        write_json(output_dir / "all_results.json", results)
        plot_learning_curves(log, output_dir / "learning_curves.png")
        plot_confusion_matrix(metrics["eval_confusion_matrix"], class_names, output_dir / "confusion_matrix.png")
    if args.log_sample_ids:
        write_sample_ids(args.log_sample_ids, accelerator, sample_ids, accelerator.unwrap_model(model))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def write_sample_ids(folder: str, accelerator: Accelerator, sample_ids: dict[str, list[int]], model: Any) -> None:
    """Debug output: the train-split indices this process trained on, per epoch, and a digest of its final weights
    (identical on every process when DDP keeps them in sync)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_json(
        Path(folder) / f"rank{accelerator.process_index}.json",
        {
            "process_index": accelerator.process_index,
            "num_processes": accelerator.num_processes,
            "epochs": sample_ids,
            "weights_sha256": digest.hexdigest(),
        },
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
