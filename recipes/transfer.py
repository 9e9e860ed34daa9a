#!/usr/bin/env python
"""Transfer a pretrained hfdl model to a new image or text classification task with 🤗 Accelerate and peft.

    python recipes/transfer.py --model outputs/mnist/best --dataset digits --mode feature-extraction
    python recipes/transfer.py --model outputs/minilm --dataset ../shared/data/rt-polarity --mode lora --merge_lora
    python recipes/transfer.py --model outputs/minilm --dataset ../shared/data/rt-polarity --mode full \\
        --layer_decay 0.8 --gradual_unfreezing
    accelerate launch --config_file recipes/accelerate_configs/multi_gpu_8.yaml recipes/transfer.py ...

``--model`` is a saved hfdl model (a folder or Hub id: the ``best/`` of ``train_image_classifier.py``, a MiniLM
converted by ``hfdl convert transformers``, any hfdl Hub folder) or an hfdl preset (random weights: a quick run). The
model's architecture says the task: image classification (``--dataset digits``, an MNIST/image folder or a Hub id,
read and preprocessed as ``train_image_classifier.py`` does, its augmentation flags included) or text
classification (an rt-polarity folder, a file or a Hub id, tokenized with the model's tokenizer as
``train_text_classifier.py`` does). The body's weights are loaded; the head is replaced by a fresh one with one
output per class of the data (``id2label`` from the data), unless ``--head keep`` keeps a saved head whose classes
are the data's.

``--mode``:

* ``feature-extraction`` — the body is frozen (its batch norms keep their statistics), only the head trains;
* ``full`` — every weight trains;
* ``lora`` — LoRA adapters (``--lora_r --lora_alpha --lora_dropout``) on every Linear/Conv layer of the body, the
  head trained in full (:func:`hfdl.lora.make_lora_config`).

``--layer_decay D`` gives the head (and what sits above the body's blocks) the learning rate, block ``i`` of ``L``
the rate times ``D ** (L - i)`` and the embeddings ``D ** (L + 1)`` (:func:`hfdl.transfer.layer_groups` finds the
blocks: ``layers.<i>`` in transformers, ``stages.<i>`` in ResNet/VGG). ``--gradual_unfreezing`` trains the top group
first and unfreezes one more group from the top every ``--unfreeze_every`` optimizer steps (default: one epoch),
ULMFiT's schedule; it is a function of the step, so ``--resume_from_checkpoint`` continues it.

Batches: ``--batch_size`` is per process. The effective batch is batch_size x processes x
``--gradient_accumulation_steps``. The learning rate is NOT rescaled for you: it is used as given whatever the
number of processes, unless ``--scale_lr`` applies the linear rule, rate x processes x accumulation (the given
rate is then the one for a single process without accumulation). ``--mixed_precision bf16`` on GPUs, ``no`` (fp32)
on CPU. Evaluation gathers every process's predictions (``gather_for_metrics``), so all ranks report the same.

What lands in ``--output_dir``: ``best/`` (the best epoch as an hfdl Hub folder), or in LoRA mode ``adapter/`` (the
best epoch's adapter: ``adapter_config.json`` + ``adapter_model.safetensors`` and the processor), ``base/`` (the
model the adapter applies to: the pretrained body with the new, untrained head; the adapter's
``base_model_name_or_path``) and with ``--merge_lora`` ``merged/`` (adapter merged into the weights, an hfdl Hub
folder)::

    model = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained("out/base"), "out/adapter")
    merged = AutoModelForSequenceClassification.from_pretrained("out/merged")

Also ``all_results.json`` (``main()`` returns it: accuracy, macro F1, trainable and total parameters, seconds per
epoch, peak memory), ``train_log.jsonl``, ``learning_curves.png``, ``confusion_matrix.png``, the trackers of
``--report_to`` (tensorboard, mlflow, trackio, wandb, all, none; local and offline by default, see
:func:`hfdl.transfer.resolve_trackers`) and ``checkpoints/`` (``--checkpointing_steps``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.augment import AugmentationConfig, add_augmentation_args
from hfdl.hub import save_for_hub
from hfdl.recipes import train_image_classifier as image_recipe
from hfdl.recipes import train_text_classifier as text_recipe
from hfdl.recipes.train_causal_lm import is_preset, load_pretrained
from hfdl.registry import get_architecture
from hfdl.text_data import load_text_classification_dataset
from hfdl.training import (
    LR_SCHEDULERS,
    JsonlTracker,
    TrainingState,
    create_scheduler,
    plot_confusion_matrix,
    plot_learning_curves,
    positive_float,
    positive_int,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)
from hfdl.transfer import (
    MODES,
    GradualUnfreezing,
    PeakMemory,
    apply_mode,
    count_parameters,
    keep_statistics,
    layer_groups,
    optimizer_parameter_groups,
    reset_head,
    resolve_trackers,
    scale_learning_rate,
)

TASKS = ("image-classification", "text-classification")
#: Default learning rates: a head alone, LoRA, and a full fine-tune of pretrained weights (of random ones: 1e-3).
DEFAULT_LEARNING_RATES = {"feature-extraction": 1e-3, "lora": 5e-4, "full": 5e-5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Transfer an hfdl model to a new classification task.")
    parser.add_argument("--model", required=True, help="A saved hfdl model (folder/Hub id) or an hfdl preset")
    parser.add_argument("--mode", default="full", choices=MODES)
    parser.add_argument("--head", default="new", choices=("new", "keep"), help="keep: reuse a saved head whose "
                        "classes are the data's")  # fmt: skip
    parser.add_argument("--config_overrides", help="JSON merged into the config, e.g. '{\"classifier_dropout\": 0.1}'")
    parser.add_argument("--dataset", required=True, help="digits / MNIST / image folder / rt-polarity / file / Hub id")
    parser.add_argument("--test_size", type=float, help="Test fraction when the data has no test split (default: "
                        "0.2 for images, 0.1 for text)")  # fmt: skip
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--text_column", help="Text data: default text, sentence, ...")
    parser.add_argument("--label_column", help="Text data: default label, labels")
    parser.add_argument("--max_seq_length", type=positive_int, default=128, help="Text data: longer ones are cut")
    parser.add_argument("--tokenizer", help="Text: a tokenizer folder (default: the model's; a preset trains one)")
    parser.add_argument("--vocab_size", type=positive_int, help="Text preset: vocabulary of the trained WordPiece")
    parser.add_argument("--lowercase", action="store_true", help="Text preset: lowercase when training a tokenizer")
    parser.add_argument("--num_workers", type=int, default=0, help="Image DataLoader workers")
    parser.add_argument("--lora_r", type=positive_int, default=8)
    parser.add_argument("--lora_alpha", type=positive_int, default=16)
    parser.add_argument("--lora_dropout", type=float, default=0.0)
    parser.add_argument("--merge_lora", action="store_true", help="LoRA: also save the merged weights in merged/")
    parser.add_argument("--layer_decay", type=positive_float, help="Layer-wise learning-rate decay, in (0, 1]")
    parser.add_argument("--gradual_unfreezing", action="store_true", help="ULMFiT: unfreeze from the top, one group "
                        "every --unfreeze_every steps")  # fmt: skip
    parser.add_argument("--unfreeze_every", type=positive_int, help="Optimizer steps per unfrozen group (default: "
                        "one epoch)")  # fmt: skip
    parser.add_argument("--num_epochs", "--num_train_epochs", type=positive_int, default=3)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", "--per_device_train_batch_size", type=positive_int, default=32,
                        help="Per process")  # fmt: skip
    parser.add_argument("--eval_batch_size", type=positive_int, default=128, help="Per process")
    parser.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    parser.add_argument("--learning_rate", type=positive_float, help="Peak rate of the head (default: 1e-3 feature "
                        "extraction, 5e-4 LoRA, 5e-5 full; 1e-3 for a preset)")  # fmt: skip
    parser.add_argument("--scale_lr", action="store_true", help="Linear rule: rate x processes x accumulation")
    parser.add_argument("--weight_decay", type=float, default=0.01, help="Not applied to biases and norm scales")
    parser.add_argument("--lr_scheduler", default="linear", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", type=int, help="Default: 6 %% of the steps")
    parser.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/transfer")
    parser.add_argument("--checkpointing_steps", help="Save the state every N steps, or each 'epoch'")
    parser.add_argument("--checkpoints_total_limit", type=positive_int, default=2, help="Keep the N newest (>= 2)")
    parser.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or 'latest' (in --output_dir)")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Remove an earlier run's checkpoints")
    parser.add_argument("--logging_steps", type=positive_int, default=10, help="Log the mean train loss every N steps")
    parser.add_argument("--report_to", default="tensorboard", help="tensorboard, mlflow, trackio, wandb (comma-"
                        "separated), all or none")  # fmt: skip
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), help="Default: the accelerate config's "
                        "(--config_file), else no; a value given here wins over the config")  # fmt: skip
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
        parser.error("--checkpoints_total_limit must be at least 2 (see train_image_classifier.py).")
    if args.overwrite_output_dir and args.resume_from_checkpoint:
        parser.error("--overwrite_output_dir starts over: it cannot be combined with --resume_from_checkpoint.")
    if args.test_size is not None and not 0.0 < args.test_size < 1.0:
        parser.error(f"--test_size must be in (0, 1), got {args.test_size}.")
    if args.layer_decay is not None and args.layer_decay > 1:
        parser.error(f"--layer_decay must be in (0, 1], got {args.layer_decay}.")
    if not 0.0 <= args.lora_dropout < 1.0:
        parser.error(f"--lora_dropout must be in [0, 1), got {args.lora_dropout}.")
    if args.merge_lora and args.mode != "lora":
        parser.error(f"--merge_lora merges LoRA adapters: it needs --mode lora, not {args.mode}.")
    if args.gradual_unfreezing and args.mode == "feature-extraction":
        parser.error("--gradual_unfreezing unfreezes the body step by step: use it with --mode full or lora.")
    if args.unfreeze_every and not args.gradual_unfreezing:
        parser.error("--unfreeze_every is the interval of --gradual_unfreezing: give both.")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        parser.error(f"--warmup_steps must be >= 0, got {args.warmup_steps}.")
    if args.learning_rate is None:
        args.learning_rate = 1e-3 if is_preset(args.model) else DEFAULT_LEARNING_RATES[args.mode]
    return args


# ---------------------------------------------------------------------------------------------------------------
# Model and data
# ---------------------------------------------------------------------------------------------------------------


def model_task(name: str) -> str:
    """``image-classification`` or ``text-classification``: the head ``--model``'s hfdl architecture has."""
    if is_preset(name):
        spec = get_architecture(name)
    else:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"--model {name!r} is neither an hfdl preset (see `hfdl list`) nor a loadable folder or Hub model: "
                f"{error}"
            ) from error
        try:
            spec = get_architecture(config.model_type)
        except ValueError:
            raise ValueError(
                f"--model {name!r} holds a {config.model_type!r} model, not an hfdl one: convert it first "
                "(hfdl convert transformers SRC OUT)."
            ) from None
    heads = [task.task for task in spec.tasks]
    for task in TASKS:
        if task in heads:
            return task
    raise ValueError(f"--model {name!r} is a {spec.name}, which has no classification head ({', '.join(heads)}).")


def check_head(model: Any, class_names: list[str], keep: bool) -> None:
    """For ``--head keep``: the saved head must name exactly the data's classes, in order."""
    if not keep:
        return
    saved = [model.config.id2label[i] for i in sorted(model.config.id2label)]
    if saved != list(class_names):
        raise ValueError(
            f"--head keep: the model's head has {len(saved)} classes {saved}, the data has {len(class_names)} "
            f"{list(class_names)}; a kept head must predict the data's classes in the same order (or use --head new)."
        )


def label_fields(class_names: list[str]) -> dict[str, Any]:
    return {
        "num_labels": len(class_names),
        "id2label": dict(enumerate(class_names)),
        "label2id": {name: index for index, name in enumerate(class_names)},
        "problem_type": "single_label_classification",
    }


def build_image_model_and_data(
    args: argparse.Namespace, accelerator: Accelerator
) -> tuple[Any, Any, DataLoader, DataLoader, list[str]]:
    """The image model (preset or folder) with a head for the data, its image processor and the dataloaders."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    if is_preset(args.model):
        head, config, image_processor = image_recipe.build_config(args)
        model_factory = head.model_class
    else:
        overrides = json.loads(args.config_overrides) if args.config_overrides else {}
        try:
            image_processor = AutoImageProcessor.from_pretrained(args.model)
        except (OSError, ValueError):  # a folder saved without its processor: the architecture's default one
            from transformers import AutoConfig

            saved = AutoConfig.from_pretrained(args.model)
            image_processor = get_architecture(saved.model_type).make_image_processor(saved)
        model_factory = None
    train_dataloader, eval_dataloader, class_names = image_recipe.get_dataloaders(accelerator, args, image_processor)
    if len(class_names) < 2:
        raise ValueError(f"{args.dataset} has {len(class_names)} class(es): classification needs at least 2.")
    if model_factory is not None:
        keep = False
        if args.head == "keep":
            raise ValueError("--head keep needs a saved model with a head; a preset has random weights.")
        for name, value in label_fields(class_names).items():
            setattr(config, name, value)
        model = model_factory(config)
    else:
        from transformers import AutoConfig

        keep = args.head == "keep"
        # The label fields are set on the loaded config (id2label decides num_labels), not passed beside the saved
        # ones, which an hfdl config would refuse as contradictory.
        config = AutoConfig.from_pretrained(args.model, **overrides)
        if not keep:
            for name, value in label_fields(class_names).items():
                setattr(config, name, value)
        model = load_pretrained(
            AutoModelForImageClassification, args.model, config=config, ignore_mismatched_sizes=not keep
        )
    check_head(model, class_names, keep)
    if not keep:
        reset_head(model)
    return model, image_processor, train_dataloader, eval_dataloader, class_names


def build_text_model_and_data(
    args: argparse.Namespace, accelerator: Accelerator
) -> tuple[Any, Any, DataLoader, DataLoader, list[str]]:
    """The text model (preset with a trained WordPiece, or folder with its tokenizer), a head for the data's
    classes, and dataloaders padded per batch (``train_text_classifier.py``'s functions)."""
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
    class_names = list(splits["train"].features["label"].names)
    if len(class_names) < 2:
        raise ValueError(f"{args.dataset} has {len(class_names)} class(es): classification needs at least 2.")
    if args.head == "keep":
        if is_preset(args.model):
            raise ValueError("--head keep needs a saved model with a head; a preset has random weights.")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = load_pretrained(AutoModelForSequenceClassification, args.model)
        check_head(model, class_names, keep=True)
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    else:
        tokenizer, model = text_recipe.build_tokenizer_and_model(args, list(splits["train"]["text"]), class_names)
        model.config.problem_type = "single_label_classification"
        reset_head(model)
    max_length = min(args.max_seq_length, model.config.max_position_embeddings)
    collator = text_recipe.PaddingCollator(tokenizer)
    train_dataloader = DataLoader(
        text_recipe.IndexedDataset(text_recipe.encode(tokenizer, splits["train"], max_length)),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        text_recipe.IndexedDataset(text_recipe.encode(tokenizer, splits["test"], max_length)),
        batch_size=args.eval_batch_size,
        collate_fn=collator,
    )
    return model, tokenizer, train_dataloader, eval_dataloader, class_names


def build_model_and_data(
    args: argparse.Namespace, accelerator: Accelerator
) -> tuple[Any, Any, DataLoader, DataLoader, list[str], str]:
    """``(model, processor, train_dataloader, eval_dataloader, class_names, task)`` for ``--model`` and ``--dataset``."""
    task = model_task(args.model)
    if args.test_size is None:
        args.test_size = 0.2 if task == "image-classification" else 0.1
    build = build_image_model_and_data if task == "image-classification" else build_text_model_and_data
    return (*build(args, accelerator), task)


# ---------------------------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------------------------


def card_data(args: argparse.Namespace, metrics: dict[str, Any], processes: int) -> dict[str, Any]:
    name = Path(str(args.dataset)).name or str(args.dataset)
    return {
        "datasets": [name],
        "eval_dataset": name,
        "eval_results": {key: metrics[f"eval_{key}"] for key in ("accuracy", "f1_macro")},
        "description": f"Transferred from `{args.model}` with hfdl's `transfer` recipe: mode {args.mode}, lr "
        f"{args.learning_rate}, layer decay {args.layer_decay}, gradual unfreezing {args.gradual_unfreezing}, batch "
        f"{args.batch_size} x {processes} processes x {args.gradient_accumulation_steps}; best eval accuracy at "
        f"epoch {metrics['epoch']:.2f}.",
    }


def save_best(model: Any, processor: Any, metrics: dict[str, Any], args: argparse.Namespace, processes: int) -> None:
    """``best/`` (full, feature extraction), or ``adapter/`` and with ``--merge_lora`` ``merged/`` (LoRA)."""
    output_dir = Path(args.output_dir)
    card = card_data(args, metrics, processes)
    if args.mode != "lora":
        save_for_hub(model, output_dir / "best", processor=processor, card_data=card)
        return
    model.peft_config["default"].base_model_name_or_path = str((output_dir / "base").resolve())
    model.save_pretrained(output_dir / "adapter")
    processor.save_pretrained(output_dir / "adapter")
    if args.merge_lora:
        merged = copy.deepcopy(model).merge_and_unload()
        save_for_hub(merged, output_dir / "merged", processor=processor, card_data=card)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def training_function(args: argparse.Namespace) -> dict[str, Any]:
    output_dir = Path(args.output_dir)
    log_file = JsonlTracker(output_dir / "train_log.jsonl")
    trackers = resolve_trackers(args.report_to, output_dir)
    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=[log_file, *trackers],
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
    set_seed(args.seed)  # every process builds the same initial weights (and the same new head)

    model, processor, train_dataloader, eval_dataloader, class_names, task = build_model_and_data(args, accelerator)
    if args.mode == "lora" and accelerator.is_main_process:
        # The model the adapter applies to: the pretrained body and the new head's shape and class names.
        save_for_hub(model, output_dir / "base", processor=processor, card_data={"description": f"Base of the LoRA "
                     f"adapter in ../adapter: `{args.model}` with a new {len(class_names)}-class head."})  # fmt: skip
    model = apply_mode(model, args.mode, args.lora_r, args.lora_alpha, args.lora_dropout)
    parameters = count_parameters(model)
    learning_rate = args.learning_rate
    if args.scale_lr:
        learning_rate = scale_learning_rate(
            learning_rate, args.batch_size, accelerator.num_processes, args.gradient_accumulation_steps
        )
    groups = layer_groups(model)
    optimizer = torch.optim.AdamW(
        optimizer_parameter_groups(model, learning_rate, args.weight_decay, args.layer_decay, groups), lr=learning_rate
    )
    accelerator.print(
        f"{args.model} -> {args.dataset} ({task}, {len(class_names)} classes), mode {args.mode}: "
        f"{parameters['trainable_parameters']:,} of {parameters['total_parameters']:,} parameters train; "
        f"lr {learning_rate:g}, effective batch {args.batch_size * accelerator.num_processes * args.gradient_accumulation_steps}."
    )
    # Gradual unfreezing holds groups still by requires_grad on one process, by dropping gradients under DDP (which
    # fixes the parameters it synchronises when it wraps the model); both give the same updates.
    unfreezing = None
    if args.gradual_unfreezing:
        method = "requires_grad" if accelerator.distributed_type == DistributedType.NO else "mask"
        unfreezing = GradualUnfreezing(model, interval=1, groups=groups, method=method)

    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )
    accumulation = args.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(train_dataloader) / accumulation)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    if unfreezing is not None:
        unfreezing.interval = args.unfreeze_every or steps_per_epoch
    warmup = args.warmup_steps if args.warmup_steps is not None else round(0.06 * total_steps)
    lr_scheduler = create_scheduler(optimizer, args.lr_scheduler, total_steps, warmup)
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("transfer", config={k: v for k, v in vars(args).items() if v is not None})

    def train_mode() -> None:
        if unfreezing is not None:
            unfreezing.apply(state.completed_steps)
            unfreezing.train_mode(model)
        else:
            model.train()
            if args.mode == "feature-extraction":
                keep_statistics(model)  # a frozen body keeps its batch-norm statistics too

    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    window_loss, window_batches = torch.zeros((), device=accelerator.device), 0
    epoch_seconds, metrics = [], None
    memory = PeakMemory(accelerator.device)
    memory.reset()
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    train_mode()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:
            break
        train_dataloader.set_epoch(epoch)
        if hasattr(train_dataloader.dataset, "set_epoch"):
            train_dataloader.dataset.set_epoch(epoch)  # new augmentations of the image data
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step * accumulation)
        start = time.perf_counter()
        for batch in active_dataloader:
            # accumulate() skips the gradient all-reduce and the optimizer step until the last micro-batch of a group
            # (or of the epoch); the loss is divided by the group size in backward().
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients:
                    if unfreezing is not None:
                        unfreezing.mask_gradients()
                    if args.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            window_loss += outputs.loss.detach()
            window_batches += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            state.completed_steps += 1
            progress.update(1)
            if unfreezing is not None and unfreezing.num_unfrozen(state.completed_steps) != unfreezing.current:
                train_mode()
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0 and not end_of_epoch
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                loss = accelerator.reduce(window_loss, reduction="mean").item() / window_batches
                window_steps = math.ceil(window_batches / accumulation)
                state.train_loss_sum += loss * window_steps
                entry = {"loss": loss, "learning_rate": lr_scheduler.get_last_lr()[-1], "epoch": state.epoch}
                if unfreezing is not None:
                    entry["unfrozen_groups"] = unfreezing.num_unfrozen(state.completed_steps - 1)
                accelerator.log(entry, step=state.completed_steps)
                window_loss.zero_()
                window_batches = 0
            if save_now:
                save_checkpoint(accelerator, state)
            if end_of_epoch:
                break
        epoch_seconds.append(time.perf_counter() - start)

        metrics = {**image_recipe.evaluate(model, eval_dataloader, accelerator), "epoch": state.epoch}
        train_mode()
        accelerator.log({k: v for k, v in metrics.items() if not isinstance(v, list)}, step=state.completed_steps)
        if metrics["eval_accuracy"] > state.best_eval_accuracy:
            state.best_eval_accuracy, state.best_epoch = metrics["eval_accuracy"], state.epoch
            if accelerator.is_main_process:
                save_best(accelerator.unwrap_model(model), processor, metrics, args, accelerator.num_processes)
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from the checkpoint of the last step: nothing left but to evaluate
        metrics = {**image_recipe.evaluate(model, eval_dataloader, accelerator), "epoch": state.epoch}

    results = {
        **metrics,
        "model": args.model,
        "task": task,
        "mode": args.mode,
        **parameters,
        "train_loss": state.train_loss_sum / max(1, state.completed_steps),
        "train_samples": len(train_dataloader.dataset),
        "train_steps": state.completed_steps,
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        "peak_memory_mb": memory.read_mb(),
        "peak_memory_kind": memory.kind,
        "best_eval_accuracy": state.best_eval_accuracy,
        "best_epoch": state.best_epoch,
        "learning_rate": learning_rate,
        "effective_batch_size": args.batch_size * accelerator.num_processes * accumulation,
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
    }
    if accelerator.is_main_process:
        save_json(output_dir / "all_results.json", results)
        plot_learning_curves(log_file.history, output_dir / "learning_curves.png")
        plot_confusion_matrix(results["eval_confusion_matrix"], class_names, output_dir / "confusion_matrix.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), transfer, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
