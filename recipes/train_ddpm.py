#!/usr/bin/env python
"""Train the DDPM comparator (a small diffusers U-Net) with 🤗 Accelerate: one script, read from top to bottom.

The diffusion baseline of issue 9, trained on the same data as the GANs and VAEs::

    python recipes/train_ddpm.py --dataset ../shared/data/mnist-10k --num_epochs 30 --ema_decay 0.999
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_ddpm.py ...

Training is Ho et al. (2020), Algorithm 1: take an image x0 in [-1, 1], a step t uniform in [0, T) and noise
eps ~ N(0, I), form ``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps`` (the scheduler's ``add_noise``) and
regress the U-Net's output on eps with a mean squared error (their "simple" loss). ``--ema_decay`` keeps an
exponential moving average of the weights (the paper used 0.9999 over 800k steps; a run of a few thousand steps
needs a shorter memory, e.g. 0.999), and the EMA weights are the ones sampled and saved.

``--dataset`` takes what ``recipes/train_image_classifier.py`` takes: ``digits``, a folder of MNIST IDX files, a
folder of images, a ``save_to_disk`` folder or a Hub id. Images are scaled to [-1, 1] (``(x - 0.5) / 0.5``); the
label column is used only with ``--class_conditional``.

What lands in ``--output_dir``:

* ``pipeline/`` — the trained model as a diffusers DDPM folder (``model_index.json``, ``unet/`` with safetensors,
  ``scheduler/``): ``hfdl.pipelines.DDPMPipeline.from_pretrained`` and ``diffusers.DiffusionPipeline
  .from_pretrained`` both load it;
* ``samples.png`` — a grid of ``--num_samples`` images drawn with ``--sample_seed`` at the end;
* ``all_results.json`` — final eval loss, mean train loss, seconds per epoch; ``main()`` returns the same dict;
* ``train_log.jsonl`` (and ``runs/`` for TensorBoard) — the train loss every ``--logging_steps``, and per epoch the
  eval loss and the epoch's wall-clock seconds;
* ``checkpoints/checkpoint_<i>/`` — as in the classifier recipe: ``--checkpointing_steps``, resume with
  ``--resume_from_checkpoint latest`` (bit for bit: the noise comes from a generator that is checkpointed too).

The eval loss is the same MSE on the eval split with noise and steps drawn from a generator reseeded for every
evaluation, so its epochs are comparable: it measures denoising, not sample quality (the Frechet distance of issue 9
is computed from the saved pipeline by the benchmark).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers.training_utils import EMAModel
from diffusers.utils import make_image_grid
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.data import TensorDictDataset, load_image_classification_dataset, preprocess_for_model
from hfdl.layers.hfdl_image_processing import HfdlImageProcessor
from hfdl.pipelines.ddpm import BETA_SCHEDULES, DDPMPipeline, make_ddpm_scheduler, make_ddpm_unet
from hfdl.training import (
    LR_SCHEDULERS,
    OPTIMIZERS,
    JsonlTracker,
    TrainingState,
    create_optimizer,
    create_scheduler,
    positive_float,
    positive_int,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)


def channel_list(text: str) -> tuple[int, ...]:
    """``"32,64,64"`` -> (32, 64, 64), for ``--block_out_channels``."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if not widths or any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints like 32,64,64, got {text!r}")
    return widths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a DDPM (diffusers UNet2DModel) with accelerate.")
    parser.add_argument("--dataset", default="digits", help="'digits', an MNIST/image folder or a Hub id")
    parser.add_argument("--test_size", type=float, default=0.2, help="Test fraction when the data has no test split")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--image_size", type=positive_int, help="Default: the data's own size")
    parser.add_argument("--num_channels", type=int, choices=(1, 3), help="Default: 1 for grayscale data, else 3")
    parser.add_argument("--block_out_channels", type=channel_list, default=(32, 64, 64), help="U-Net widths per level")
    parser.add_argument("--layers_per_block", type=positive_int, default=1)
    parser.add_argument("--no_attention", action="store_true", help="No self-attention at the lowest resolution")
    parser.add_argument("--class_conditional", action="store_true", help="Condition on the labels (class embedding)")
    parser.add_argument("--num_train_timesteps", type=positive_int, default=1000)
    parser.add_argument("--beta_schedule", default="linear", choices=tuple(BETA_SCHEDULES))
    parser.add_argument("--num_epochs", type=positive_int, default=20)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="Per process")
    parser.add_argument("--eval_batch_size", type=positive_int, default=256, help="Per process")
    parser.add_argument("--learning_rate", type=positive_float, default=1e-3)
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.0, help="Not applied to biases and norm scales")
    parser.add_argument("--lr_scheduler", default="cosine", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", type=int, default=200)
    parser.add_argument("--max_grad_norm", type=positive_float, default=1.0, help="Gradient clipping")
    parser.add_argument("--ema_decay", type=float, default=0.0, help="EMA of the weights (0: off; e.g. 0.999)")
    parser.add_argument("--num_samples", type=positive_int, default=64, help="Images in samples.png")
    parser.add_argument("--num_inference_steps", type=positive_int, help="Reverse steps of samples.png (default: T)")
    parser.add_argument("--sample_seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/ddpm")
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
    args = parser.parse_args(argv)
    if not 0.0 <= args.ema_decay < 1.0:
        parser.error(f"--ema_decay must be in [0, 1) (0 turns the EMA off), got {args.ema_decay}.")
    if args.num_inference_steps and args.num_inference_steps > args.num_train_timesteps:
        parser.error(
            f"--num_inference_steps ({args.num_inference_steps}) must be at most --num_train_timesteps "
            f"({args.num_train_timesteps})."
        )
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


class NoiseSource:
    """The generator of the training noise and steps, checkpointed with the run.

    Each process draws its own stream (seeded by ``--seed`` and its rank: ranks see different images and should not
    share the noise), and ``accelerator.register_for_checkpointing`` saves its state, so a resumed run draws exactly
    what the uninterrupted one would have.
    """

    def __init__(self, seed: int, process_index: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + process_index)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def get_dataloaders(accelerator: Accelerator, args: argparse.Namespace) -> tuple[DataLoader, DataLoader, int, int, int]:
    """The splits as ``{"pixel_values" in [-1, 1], "labels"}`` tensors in memory; also the image size, channels and
    number of classes. The main process goes first so that ``datasets`` fills its cache once."""
    with accelerator.main_process_first():
        splits = load_image_classification_dataset(
            args.dataset,
            test_size=args.test_size,
            seed=args.split_seed,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
        )
        first = splits["train"][0]["image"]
        image_size = args.image_size or max(first.size)
        num_channels = args.num_channels or (1 if first.mode in ("L", "1", "I", "I;16", "F") else 3)
        # mean 0.5, std 0.5: (x - 0.5) / 0.5 maps [0, 1] onto [-1, 1], the range the diffusion process assumes.
        processor = HfdlImageProcessor(size=image_size, num_channels=num_channels, image_mean=0.5, image_std=0.5)
        processed = preprocess_for_model(splits, processor)
    train_dataloader = DataLoader(
        TensorDictDataset.from_dataset(processed["train"]),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        TensorDictDataset.from_dataset(processed["test"]), batch_size=args.eval_batch_size, num_workers=args.num_workers
    )
    num_classes = splits["train"].features["label"].num_classes
    return train_dataloader, eval_dataloader, image_size, num_channels, num_classes


def diffusion_loss(
    unet: torch.nn.Module,
    scheduler: Any,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    class_conditional: bool,
) -> torch.Tensor:
    """Ho et al.'s simple loss: ``|| eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t) ||^2``, t ~ U{0..T-1}."""
    images = batch["pixel_values"]
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (images.shape[0],), generator=generator, device=images.device
    )
    noisy = scheduler.add_noise(images, noise, timesteps)
    class_labels = batch["labels"] if class_conditional else None
    prediction = unet(noisy, timesteps, class_labels=class_labels).sample
    return F.mse_loss(prediction.float(), noise.float())


def evaluate(
    unet: torch.nn.Module, scheduler: Any, dataloader: DataLoader, accelerator: Accelerator, args: argparse.Namespace
) -> dict[str, float]:
    """Mean denoising MSE over the eval split, with noise drawn afresh from the same seed at every evaluation.

    Each batch's mean is repeated once per sample and gathered (``gather_for_metrics`` drops the samples repeated
    to fill the last batch), so the value is a mean over samples whatever the number of processes.
    """
    unet.eval()
    generator = torch.Generator(device=accelerator.device).manual_seed(args.seed + 1 + accelerator.process_index)
    losses = []
    for batch in dataloader:
        with torch.no_grad():
            loss = diffusion_loss(unet, scheduler, batch, generator, args.class_conditional)
        losses.append(accelerator.gather_for_metrics(loss.detach().float().repeat(len(batch["labels"]))).cpu())
    unet.train()
    return {"eval_loss": torch.cat(losses).mean().item()}


def save_pipeline_and_samples(unet: torch.nn.Module, scheduler: Any, args: argparse.Namespace) -> None:
    """``pipeline/`` (safetensors) and ``samples.png``, a grid drawn with ``--sample_seed``."""
    output_dir = Path(args.output_dir)
    pipeline = DDPMPipeline(unet=unet, scheduler=scheduler)
    pipeline.save_pretrained(output_dir / "pipeline")
    pipeline.set_progress_bar_config(disable=True)
    num_classes = pipeline.num_classes
    class_labels = [index % num_classes for index in range(args.num_samples)] if num_classes else None
    images = pipeline(
        num_images=args.num_samples,
        class_labels=class_labels,
        generator=torch.Generator(device=pipeline.device).manual_seed(args.sample_seed),
        num_inference_steps=args.num_inference_steps or args.num_train_timesteps,
    ).images
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    images += [images[0].point(lambda _: 0)] * (rows * columns - len(images))  # black cells fill the last row
    make_image_grid(images, rows=rows, cols=columns).save(output_dir / "samples.png")


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

    train_dataloader, eval_dataloader, image_size, num_channels, num_classes = get_dataloaders(accelerator, args)
    unet = make_ddpm_unet(
        image_size=image_size,
        num_channels=num_channels,
        block_out_channels=args.block_out_channels,
        layers_per_block=args.layers_per_block,
        attention=not args.no_attention,
        num_classes=num_classes if args.class_conditional else 0,
    )
    scheduler = make_ddpm_scheduler(args.num_train_timesteps, args.beta_schedule)
    accelerator.print(f"U-Net: {sum(p.numel() for p in unet.parameters()):,} parameters, {image_size}x{image_size}")
    # The EMA follows the unwrapped weights (created before prepare, so DDP's wrapper does not appear in it).
    ema = EMAModel(unet.parameters(), decay=args.ema_decay) if args.ema_decay else None
    optimizer = create_optimizer(unet, args.optimizer, args.learning_rate, args.weight_decay)
    unet, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        unet, optimizer, train_dataloader, eval_dataloader
    )
    if ema is not None:
        ema.to(accelerator.device)

    steps_per_epoch = len(train_dataloader)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    lr_scheduler = create_scheduler(optimizer, args.lr_scheduler, total_steps, args.warmup_steps)
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    noise = NoiseSource(args.seed, accelerator.process_index, accelerator.device)
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file, noise, *([ema] if ema else []))
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("train_ddpm", config={k: str(v) for k, v in vars(args).items()})

    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    window_loss, window_steps = torch.zeros((), device=accelerator.device), 0
    epoch_seconds, metrics = [], None
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    unet.train()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:
            break
        train_dataloader.set_epoch(epoch)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        start = time.perf_counter()
        for batch in active_dataloader:
            loss = diffusion_loss(unet, scheduler, batch, noise.generator, args.class_conditional)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(unet.parameters(), args.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(accelerator.unwrap_model(unet).parameters())
            state.completed_steps += 1
            window_loss += loss.detach()
            window_steps += 1
            progress.update(1)
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0 and not end_of_epoch
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                mean_loss = accelerator.reduce(window_loss, reduction="mean").item() / window_steps
                state.train_loss_sum += mean_loss * window_steps
                accelerator.log(
                    {"loss": mean_loss, "learning_rate": lr_scheduler.get_last_lr()[0], "epoch": state.epoch},
                    step=state.completed_steps,
                )
                window_loss.zero_()
                window_steps = 0
            if save_now:
                save_checkpoint(accelerator, state)
            if end_of_epoch:
                break
        epoch_seconds.append(time.perf_counter() - start)

        metrics = {**evaluate(unet, scheduler, eval_dataloader, accelerator, args), "epoch": state.epoch}
        accelerator.log({**metrics, "epoch_seconds": epoch_seconds[-1]}, step=state.completed_steps)
        progress.set_postfix(eval_loss=f"{metrics['eval_loss']:.4f}", s_per_epoch=f"{epoch_seconds[-1]:.1f}")
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from a checkpoint of the very last step
        metrics = {**evaluate(unet, scheduler, eval_dataloader, accelerator, args), "epoch": state.epoch}

    results = {
        **metrics,
        "train_loss": state.train_loss_sum / state.completed_steps,
        "train_samples": len(train_dataloader.dataset),
        "train_steps": state.completed_steps,
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        "ema_decay": args.ema_decay,
        "num_processes": accelerator.num_processes,
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final_unet = accelerator.unwrap_model(unet)
        if ema is not None:
            ema.copy_to(final_unet.parameters())  # the averaged weights are the ones sampled and saved
        save_pipeline_and_samples(final_unet, scheduler, args)
        save_json(output_dir / "all_results.json", results)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
