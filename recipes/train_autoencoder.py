#!/usr/bin/env python
"""Train an hfdl autoencoder or VAE with 🤗 Accelerate: one script, read from top to bottom.

    python recipes/train_autoencoder.py --model ae-mnist --dataset ../shared/data/mnist-10k
    python recipes/train_autoencoder.py --model vae-mnist --dataset ../shared/data/mnist-10k --binarize dynamic \\
        --kl_warmup_steps 2000
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_autoencoder.py ...

``--model`` is any preset of ``hfdl-autoencoder`` (``ae-mnist``, ``conv-ae-mnist``, ``sparse-ae-mnist``,
``denoising-ae-mnist``) or ``hfdl-vae`` (``vae-mnist``, ``vae-mnist-2d``, ``conv-vae-mnist``), with
``--config_overrides``, or a saved folder of one (trained further). ``--dataset`` is anything the image-classification
recipe takes: ``digits`` (offline), a folder of MNIST IDX files, a ``save_to_disk`` folder or a Hub id; the labels
are ignored. Images are scaled to [0, 1] by the model's image processor (mean 0, std 1): the decoder's sigmoid output
is compared with them.

The target of the reconstruction is the clean image; a denoising autoencoder corrupts its own input in training mode
(its config's noise). ``--binarize dynamic`` draws a binary image ``x ~ Bernoulli(pixel)`` afresh at every step (the
usual setting for a Bernoulli VAE on MNIST; Burda et al. 2016), ``static`` draws one binary copy of the training set
and keeps it; with either, the test split is binarised once, with a fixed seed, so that every evaluation sees the
same binary images. ``--kl_warmup_steps N`` anneals the VAE's KL weight linearly from 0 to ``config.beta`` over the
first N steps (:func:`hfdl.generative_training.kl_weight`).

Each epoch the test split is evaluated (:func:`evaluate`): the reconstruction error per image (squared error and
binary cross-entropy, summed over pixels; the reconstruction of an image is the decoder's mean, from the posterior
mean for a VAE), the model's own loss, for a VAE the ELBO in nats (one z per image) and its KL term, and for a
denoising autoencoder the error of reconstructing a corrupted test image. ``--iwae_samples K`` adds the IWAE bound
on log p(x) with K importance samples (Burda et al. 2016) after training.

What lands in ``--output_dir``: ``final/`` (the trained model and its image processor in Hub format, with a model card
carrying the last evaluation), ``all_results.json`` (``main()`` returns the same dict), ``train_log.jsonl`` (the
training loss every ``--logging_steps``, each evaluation and the epoch's seconds), ``runs/`` (TensorBoard),
``reconstructions.png`` (test images above their reconstructions; with the corrupted inputs between them for a
denoising autoencoder) and, for a VAE, ``samples.png`` (decoded prior samples, fixed seed), both rewritten every epoch
with a copy in ``grids/``, and ``checkpoints/`` with ``--checkpointing_steps`` (``--resume_from_checkpoint latest``
continues bit for bit, as in the image-classification recipe).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.data import TensorDictDataset, dataset_card_name
from hfdl.generative_training import (
    BINARIZATIONS,
    BINARIZE_STREAM,
    EVAL_STREAM,
    STATIC_BINARIZE_STREAM,
    binarize,
    build_generative_model,
    image_processor_for_range,
    kl_weight,
    load_image_tensors,
    save_image_grid,
    step_generator,
)
from hfdl.hub import save_for_hub
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

#: The model types this recipe trains.
MODEL_TYPES = ("hfdl-autoencoder", "hfdl-vae")
#: How many test images the reconstruction grid shows, and prior samples the VAE's sample grid.
GRID_IMAGES, GRID_SAMPLES = 8, 64


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 0, or a usage error that names the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl autoencoder or VAE with accelerate.")
    parser.add_argument("--model", default="ae-mnist", help="A preset (ae-mnist, vae-mnist, ...) or a model folder")
    parser.add_argument("--config_overrides", help="JSON merged into the preset, e.g. '{\"latent_dim\": 8}'")
    parser.add_argument("--dataset", default="digits", help="'digits', an MNIST/image folder or a Hub id")
    parser.add_argument("--test_size", type=float, default=0.2, help="Test fraction when the data has no test split")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--max_eval_samples", type=positive_int)
    parser.add_argument("--binarize", default="none", choices=BINARIZATIONS, help="Binary images for a Bernoulli model")
    parser.add_argument("--kl_warmup_steps", type=non_negative_int, default=0, help="VAE: KL weight 0 -> beta")
    parser.add_argument("--iwae_samples", type=non_negative_int, default=0, help="VAE: IWAE bound with K samples")
    parser.add_argument("--num_epochs", type=positive_int, default=20)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many optimizer steps")
    parser.add_argument("--batch_size", type=positive_int, default=128, help="Per process")
    parser.add_argument("--eval_batch_size", type=positive_int, default=500, help="Per process")
    parser.add_argument("--learning_rate", type=positive_float, default=1e-3)
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.add_argument("--lr_scheduler", default="constant", choices=LR_SCHEDULERS, help="See create_scheduler")
    parser.add_argument("--warmup_steps", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/autoencoder")
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


def build_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """``--model`` (preset with ``--config_overrides``, or folder) and an image processor that scales to [0, 1]."""
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    model, spec = build_generative_model(args.model, MODEL_TYPES, overrides)
    is_vae = model.config.model_type == "hfdl-vae"
    if not is_vae and (args.kl_warmup_steps or args.iwae_samples):
        raise ValueError(
            f"--kl_warmup_steps and --iwae_samples are for VAEs; {args.model!r} is an autoencoder (no KL term, no "
            "likelihood). Leave them out, or pick a VAE preset (vae-mnist, ...)."
        )
    return model, image_processor_for_range(spec, model.config, low=0.0)


def get_dataloaders(
    accelerator: Accelerator, args: argparse.Namespace, image_processor: Any
) -> tuple[DataLoader, DataLoader]:
    """The data in [0, 1], preprocessed once and served from memory as ``{"pixel_values"}`` batches.

    With ``--binarize`` the test split is binarised here, once, from ``--seed`` (the same images at every
    evaluation and on every process); ``static`` binarises the training split once too, ``dynamic`` leaves it grey
    for the loop to draw from at every step. The class labels are dropped: an autoencoder's target is its input.
    """
    with accelerator.main_process_first():
        train, test, _ = load_image_tensors(
            args.dataset,
            image_processor,
            test_size=args.test_size,
            split_seed=args.split_seed,
            max_train_samples=args.max_train_samples,
            max_eval_samples=args.max_eval_samples,
        )
    train_images, test_images = train["pixel_values"], test["pixel_values"]
    if args.binarize != "none":
        test_images = binarize(test_images, step_generator(args.seed, STATIC_BINARIZE_STREAM, 1))
    if args.binarize == "static":
        train_images = binarize(train_images, step_generator(args.seed, STATIC_BINARIZE_STREAM, 0))
    # Each DataLoader has its own generator, so that its shuffles never draw from the global one (dropout, z).
    train_dataloader = DataLoader(
        TensorDictDataset({"pixel_values": train_images}),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(TensorDictDataset({"pixel_values": test_images}), batch_size=args.eval_batch_size)
    return train_dataloader, eval_dataloader


def evaluate(model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator, seed: int) -> dict[str, float]:
    """Per-image metrics over the whole test split, averaged over images (every process takes its shard).

    * ``eval_mse`` / ``eval_bce``: squared error and binary cross-entropy (nats) between an image and its
      reconstruction, summed over pixels; ``eval_mse_per_pixel`` is the mean squared error per pixel;
    * ``eval_loss``: the model's own loss (a VAE's with its configured beta);
    * VAE: ``eval_elbo`` (nats per image, one sampled z; higher is better) and ``eval_kl`` (nats);
    * denoising autoencoder: ``eval_denoising_mse``, the squared error of reconstructing a clean image from its
      corrupted copy (the model's own noise).

    The noise of an evaluation (a VAE's z, a corruption) comes from generators seeded by (``seed``, batch, process),
    never from the global generator: evaluations repeat exactly and leave the training draws where they were.
    """
    unwrapped = accelerator.unwrap_model(model)
    is_vae = unwrapped.config.model_type == "hfdl-vae"
    denoising = getattr(unwrapped.config, "noise_type", "none") != "none"
    model.eval()
    columns: dict[str, list[torch.Tensor]] = {}
    for index, batch in enumerate(dataloader):
        images = batch["pixel_values"]
        generator = step_generator(seed, EVAL_STREAM, index, accelerator.process_index, images.device)
        with torch.no_grad():
            outputs = model(pixel_values=images, labels=images, generator=generator)
            reconstruction = outputs.reconstruction.float()
            per_image = {
                "mse": (reconstruction - images).pow(2).flatten(1).sum(1),
                "bce": F.binary_cross_entropy(reconstruction, images, reduction="none").flatten(1).sum(1),
                "loss": outputs.loss.detach().float().repeat(len(images)),  # a batch mean, once per image
            }
            if is_vae:
                per_image["elbo"] = unwrapped.elbo(images, generator=generator).float()
                per_image["kl"] = outputs.kl.detach().float().repeat(len(images))
            if denoising:
                noisy = unwrapped.corrupt(images, generator=generator)
                denoised = model(pixel_values=noisy).reconstruction.float()
                per_image["denoising_mse"] = (denoised - images).pow(2).flatten(1).sum(1)
        # gather_for_metrics drops the rows repeated to give every process a full last batch.
        gathered = accelerator.gather_for_metrics(per_image)
        for name, values in gathered.items():
            columns.setdefault(name, []).append(values.cpu())
    model.train()
    metrics = {f"eval_{name}": torch.cat(values).mean().item() for name, values in columns.items()}
    num_pixels = math.prod(dataloader.dataset.tensors["pixel_values"].shape[1:])
    metrics["eval_mse_per_pixel"] = metrics["eval_mse"] / num_pixels
    metrics["eval_samples"] = len(torch.cat(columns["mse"]))
    return metrics


def iwae_nll(
    model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator, args: argparse.Namespace
) -> float:
    """The test split's mean negative IWAE bound, -log p(x) estimated with ``--iwae_samples`` samples (nats)."""
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    bounds = []
    for index, batch in enumerate(dataloader):
        images = batch["pixel_values"]
        generator = step_generator(args.seed, EVAL_STREAM, 1_000_000 + index, accelerator.process_index, images.device)
        with torch.no_grad():
            bound = unwrapped.iwae_bound(images, num_samples=args.iwae_samples, generator=generator)
        bounds.append(accelerator.gather_for_metrics(bound.float()).cpu())
    unwrapped.train()
    return -torch.cat(bounds).mean().item()


def save_grids(model: Any, test_images: torch.Tensor, output_dir: Path, epoch: int, seed: int) -> None:
    """``reconstructions.png`` (test images; their corrupted copies for a denoising autoencoder; reconstructions)
    and, for a VAE, ``samples.png`` (prior samples from a fixed seed), with copies per epoch in ``grids/``."""
    model.eval()
    device = next(model.parameters()).device
    images = test_images[:GRID_IMAGES].to(device)
    generator = step_generator(seed, EVAL_STREAM, -1, 0, device)
    with torch.no_grad():
        rows = [images]
        if getattr(model.config, "noise_type", "none") != "none":
            images = model.corrupt(images, generator=generator)
            rows.append(images)
        rows.append(model(pixel_values=images).reconstruction)
        grids = {"reconstructions": (torch.cat(rows), len(rows[0]))}
        if model.config.model_type == "hfdl-vae":
            grids["samples"] = (model.sample(GRID_SAMPLES, generator=generator), 8)
    model.train()
    for name, (grid, nrow) in grids.items():
        path = save_image_grid(grid, output_dir / "grids" / f"{name}_epoch_{epoch:03d}.png", nrow=nrow)
        shutil.copyfile(path, output_dir / f"{name}.png")


def save_final_model(model: Any, image_processor: Any, metrics: dict[str, Any], args: argparse.Namespace) -> Path:
    """``final/`` in Hub format, with a model card that names the run, the data and the last evaluation."""
    dataset = dataset_card_name(args.dataset)
    names = ["eval_mse", "eval_bce", "eval_elbo", "eval_kl", "eval_denoising_mse", "eval_iwae_nll"]
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,
        "datasets": [dataset],
        "eval_dataset": dataset,
        "eval_results": {name.removeprefix("eval_"): metrics[name] for name in names if name in metrics},
        "description": f"Trained with hfdl's `train_autoencoder` recipe ({args.model}, {args.optimizer}, lr "
        f"{args.learning_rate}, {metrics['epoch']:.2f} epochs, binarisation {args.binarize}"
        + (f", KL warm-up {args.kl_warmup_steps} steps" if args.kl_warmup_steps else "")
        + "). Reconstruction errors are per image, summed over pixels; ELBO and IWAE NLL in nats.",
    }
    return save_for_hub(model, Path(args.output_dir) / "final", processor=image_processor, card_data=card_data)


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
        # Each epoch's shuffle is a function of (seed, epoch): a resumed run sees the batches of the full one.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if not args.resume_from_checkpoint:  # before any work: an earlier run's checkpoints would mix with this run's
        prepare_checkpoint_dir(accelerator, overwrite=args.overwrite_output_dir)
    set_seed(args.seed)  # every process builds the same initial weights

    model, image_processor = build_model(args)
    is_vae = model.config.model_type == "hfdl-vae"
    beta = float(getattr(model.config, "beta", 1.0))  # the KL weight the warm-up ramps up to
    train_dataloader, eval_dataloader = get_dataloaders(accelerator, args, image_processor)
    test_images = eval_dataloader.dataset.tensors["pixel_values"]
    optimizer = create_optimizer(model, args.optimizer, args.learning_rate, args.weight_decay)
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    steps_per_epoch = len(train_dataloader)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    lr_scheduler = create_scheduler(optimizer, args.lr_scheduler, total_steps, args.warmup_steps)
    state = TrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    accelerator.register_for_checkpointing(lr_scheduler, state, log_file)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("train_autoencoder", config=vars(args))

    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    window_loss, window_steps = torch.zeros((), device=accelerator.device), 0
    epoch_seconds, metrics = [], None
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    model.train()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:  # resumed from the checkpoint of the last step
            break
        train_dataloader.set_epoch(epoch)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        start = time.perf_counter()
        for batch in active_dataloader:
            images = batch["pixel_values"]
            if args.binarize == "dynamic":  # a new binary image every step, different on every process
                generator = step_generator(
                    args.seed, BINARIZE_STREAM, state.completed_steps, accelerator.process_index, images.device
                )
                images = binarize(images, generator)
            outputs = model(pixel_values=images, labels=images)
            loss = outputs.loss
            weight = None
            if is_vae and args.kl_warmup_steps:
                # The model's loss weighs the KL term by config.beta; during the warm-up the recipe weighs it less.
                weight = kl_weight(state.completed_steps, args.kl_warmup_steps, beta)
                loss = outputs.reconstruction_loss + weight * outputs.kl
            accelerator.backward(loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.completed_steps += 1
            window_loss += loss.detach()
            window_steps += 1
            progress.update(1)
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0 and not end_of_epoch
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                mean_loss = accelerator.reduce(window_loss, reduction="mean").item() / window_steps
                state.train_loss_sum += mean_loss * window_steps
                entry = {"loss": mean_loss, "learning_rate": lr_scheduler.get_last_lr()[0], "epoch": state.epoch}
                if weight is not None:
                    entry["kl_weight"] = weight
                accelerator.log(entry, step=state.completed_steps)
                window_loss.zero_()
                window_steps = 0
            if save_now:
                save_checkpoint(accelerator, state)
            if end_of_epoch:
                break
        epoch_seconds.append(time.perf_counter() - start)

        metrics = {**evaluate(model, eval_dataloader, accelerator, args.seed), "epoch": state.epoch}
        accelerator.log({**metrics, "epoch_seconds": epoch_seconds[-1]}, step=state.completed_steps)
        progress.set_postfix(eval_loss=f"{metrics['eval_loss']:.2f}", eval_mse=f"{metrics['eval_mse']:.2f}")
        if accelerator.is_main_process:
            save_grids(accelerator.unwrap_model(model), test_images, output_dir, math.ceil(state.epoch), args.seed)
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()
    if metrics is None:  # resumed from a checkpoint of the very last step: nothing left but to evaluate
        metrics = {**evaluate(model, eval_dataloader, accelerator, args.seed), "epoch": state.epoch}
    if args.iwae_samples:
        metrics["eval_iwae_nll"] = iwae_nll(model, eval_dataloader, accelerator, args)
        accelerator.log({"eval_iwae_nll": metrics["eval_iwae_nll"]}, step=state.completed_steps)

    results = {
        **metrics,
        "train_loss": state.train_loss_sum / state.completed_steps,
        "train_samples": len(train_dataloader.dataset),
        "train_steps": state.completed_steps,
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        "binarize": args.binarize,
        "num_processes": accelerator.num_processes,
        "model_dir": str(output_dir / "final"),
    }
    if accelerator.is_main_process:
        save_final_model(accelerator.unwrap_model(model), image_processor, results, args)
        save_json(output_dir / "all_results.json", results)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the final metrics (``all_results.json``)."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
