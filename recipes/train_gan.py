#!/usr/bin/env python
"""Train an hfdl GAN (MLP GAN, DCGAN or conditional GAN) with 🤗 Accelerate: one script, read from top to bottom.

    python recipes/train_gan.py --model dcgan-mnist --dataset ../shared/data/mnist-10k --sample_every 200
    python recipes/train_gan.py --model cgan-mnist --dataset ../shared/data/mnist-10k \\
        --monitor_classifier outputs/lenet5/best
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 recipes/train_gan.py ...

``--model`` is a preset of ``hfdl-gan`` (``gan-mnist``: Goodfellow et al.'s MLP GAN; ``dcgan-mnist``: Radford et
al.'s convolutional one at 28x28; ``cgan-mnist``: a class-conditional DCGAN, Mirza & Osindero's conditioning with a
projection discriminator; their MLP is ``gan-mnist`` with ``num_classes=10``), with
``--config_overrides``, or a saved folder of one (trained further). ``--dataset`` is anything the image-classification
recipe takes (``digits``, an MNIST IDX folder, a ``save_to_disk`` folder, a Hub id). Real images are scaled to
[-1, 1] (mean 0.5, std 0.5), the range of the generator's tanh.

One ``Accelerator`` prepares both networks, both optimizers and the data:
``accelerator.prepare(model.generator, model.discriminator, opt_g, opt_d, loader)``. Each step (Goodfellow et al.'s
algorithm 1 with k = 1):

1. the discriminator takes a step on a real batch and a generated one: binary cross-entropy with real targets 1, or
   ``1 - --label_smoothing`` (one-sided label smoothing, Salimans et al. 2016), fake targets 0;
2. the generator takes a step on the non-saturating loss ``-log D(G(z))`` through the updated discriminator's view
   of the same fakes.

Both optimizers are Adam with DCGAN's betas (0.5, 0.999) and rate 2e-4 by default. ``--spectral_norm`` builds the
discriminator with spectral normalisation (Miyato et al. 2018). A conditional model's discriminator sees the real
images' labels, and its generator is asked for uniformly random classes. The latents and requested classes of a
step come from a generator seeded by (``--seed``, step, process), so processes draw different noise and a resumed
run draws what the uninterrupted one did.

What lands in ``--output_dir``: ``final/`` (the ``GANModel`` in Hub format, with a model card), ``samples/``
(``step_<N>.png``: the generator's images for a fixed set of latents, and classes, every ``--sample_every`` steps
and at the end of each epoch; ``samples.png`` at the top is the last), ``train_log.jsonl`` (every
``--logging_steps``: the discriminator's and the generator's loss, D(x) and D(G(z)); every epoch: their epoch means,
the seconds it took and, with ``--monitor_classifier``, the mode-collapse monitor), ``all_results.json`` (what
``main()`` returns), ``runs/`` (TensorBoard) and ``checkpoints/`` with ``--checkpointing_steps``: both networks, both
optimizers, the random states, the loop's counters and the fixed noise, so ``--resume_from_checkpoint latest``
continues the same run, bit for bit, with the same sample grids.

The mode-collapse monitor (``--monitor_classifier``, a folder of an hfdl image classifier trained on the same
classes, e.g. by ``train_image_classifier.py``): the classes that classifier assigns to ``--monitor_samples`` images
generated from fixed latents, and the entropy of their histogram in nats (``log(10)`` = 2.303 for ten classes
equally often; a generator that collapses onto a few modes drives it down). For a conditional GAN it also logs the
fraction of samples classified as the class they were asked for.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hfdl.data import TensorDictDataset, dataset_card_name
from hfdl.generative_training import (
    LATENT_STREAM,
    FixedNoise,
    build_generative_model,
    discriminator_loss,
    generator_loss,
    image_processor_for_range,
    load_image_tensors,
    save_image_grid,
    step_generator,
)
from hfdl.hub import save_for_hub
from hfdl.registry import get_architecture
from hfdl.training import (
    JsonlTracker,
    TrainingState,
    positive_float,
    positive_int,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)

#: What the loop measures each step, in this order (means over the batch): the two losses, and the discriminator's
#: mean probability that a real image is real, D(x), and that a generated one is, D(G(z)) (before the G step).
STEP_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass
class GANTrainingState(TrainingState):
    """:class:`hfdl.training.TrainingState` plus the sums of the epoch so far (``STEP_METRICS`` x steps), so that a
    run resumed in the middle of an epoch logs the same epoch means as the uninterrupted run, and the last epoch's
    log entry (what a run resumed from its final checkpoint reports)."""

    epoch_sums: dict[str, float] = field(default_factory=dict)
    last_epoch: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an hfdl GAN, DCGAN or conditional GAN with accelerate.")
    parser.add_argument(
        "--model", default="dcgan-mnist", help="A preset (gan-mnist, dcgan-mnist, cgan-mnist) or folder"
    )
    parser.add_argument("--config_overrides", help="JSON merged into the preset, e.g. '{\"latent_dim\": 32}'")
    parser.add_argument("--dataset", default="digits", help="'digits', an MNIST/image folder or a Hub id")
    parser.add_argument("--test_size", type=float, default=0.2, help="Test fraction when the data has no test split")
    parser.add_argument("--split_seed", type=int, default=0, help="Seed of the train/test split (not --seed's)")
    parser.add_argument("--max_train_samples", type=positive_int)
    parser.add_argument("--num_epochs", type=positive_int, default=20)
    parser.add_argument("--max_steps", type=positive_int, help="Stop after this many steps (one D and one G update)")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="Per process")
    parser.add_argument("--learning_rate", type=positive_float, default=2e-4, help="The generator's Adam rate")
    parser.add_argument("--discriminator_learning_rate", type=positive_float, help="Default: --learning_rate")
    parser.add_argument("--adam_beta1", type=float, default=0.5, help="DCGAN's 0.5 (Adam's default 0.9 oscillates)")
    parser.add_argument("--adam_beta2", type=float, default=0.999)
    parser.add_argument("--label_smoothing", type=float, default=0.0, help="One-sided: real targets 1 - this")
    parser.add_argument("--spectral_norm", action="store_true", help="Spectral normalisation in the discriminator")
    parser.add_argument("--sample_every", type=positive_int, help="Save a fixed-noise grid every N steps")
    parser.add_argument("--num_grid_samples", type=positive_int, default=64, help="Images in a sample grid")
    parser.add_argument("--monitor_classifier", help="An hfdl image classifier folder: the mode-collapse monitor")
    parser.add_argument("--monitor_samples", type=positive_int, default=1000, help="Fixed samples the monitor sorts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="outputs/gan")
    parser.add_argument("--checkpointing_steps", help="Save the state every N steps, or each 'epoch'")
    parser.add_argument("--checkpoints_total_limit", type=positive_int, default=2, help="Keep the N newest (>= 2)")
    parser.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or 'latest' (in --output_dir)")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="Remove an earlier run's checkpoints")
    parser.add_argument("--logging_steps", type=positive_int, default=10, help="Log the mean losses every N steps")
    parser.add_argument("--report_to", default="tensorboard", help="Trackers, comma-separated; 'all' or 'none'")
    parser.add_argument(
        "--mixed_precision", choices=("no", "fp16", "bf16"), help="Default: the accelerate config's, else no"
    )
    parser.add_argument("--cpu", action="store_true", help="Train on CPU even when a GPU is present")
    args = parser.parse_args(argv)
    if not 0.0 <= args.label_smoothing < 1.0:
        parser.error(f"--label_smoothing must be in [0, 1) (real targets 1 - it), got {args.label_smoothing}.")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0.0 <= getattr(args, name) < 1.0:
            parser.error(f"--{name} must be in [0, 1), got {getattr(args, name)}.")
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
    """``--model`` with ``--config_overrides`` (and ``--spectral_norm``, which must be set before the discriminator
    is built), and an image processor that scales real images to [-1, 1]."""
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--config_overrides must be a JSON object, got {args.config_overrides!r}.")
    if args.spectral_norm:
        overrides["spectral_norm"] = True
    model, spec = build_generative_model(args.model, ("hfdl-gan",), overrides)
    if args.spectral_norm and not is_preset(args.model):
        # Spectral normalisation re-parametrises every weight of D: a folder saved without it has none of those
        # parameters, and from_pretrained would start D from scratch with a warning only.
        from transformers import AutoConfig

        if not AutoConfig.from_pretrained(args.model).spectral_norm:
            raise ValueError(
                f"--spectral_norm: {args.model!r} was trained without spectral normalisation, which changes the "
                "discriminator's parameters; train that model further without the flag, or start from a preset."
            )
    return model, image_processor_for_range(spec, model.config, low=-1.0)


def is_preset(name: str) -> bool:
    """Whether ``--model`` names an hfdl architecture or preset (a new model) rather than a saved one."""
    try:
        get_architecture(name)
    except ValueError:
        return False
    return True


def get_dataloader(
    accelerator: Accelerator, args: argparse.Namespace, image_processor: Any, num_classes: int
) -> DataLoader:
    """The training split in [-1, 1], preprocessed once, as ``{"pixel_values", "labels"}`` batches from memory.

    The last incomplete batch is dropped: batch normalisation in the DCGAN networks needs more than one image, and
    an odd-sized last batch would tilt the balance between the two networks' steps. A conditional model needs the
    data's classes to be its classes.
    """
    with accelerator.main_process_first():
        train, _, class_names = load_image_tensors(
            args.dataset,
            image_processor,
            test_size=args.test_size,
            split_seed=args.split_seed,
            max_train_samples=args.max_train_samples,
        )
    if num_classes and len(class_names) != num_classes:
        raise ValueError(
            f"{args.model!r} is conditioned on {num_classes} classes but {args.dataset!r} has {len(class_names)} "
            f"({', '.join(class_names[:12])}); set num_classes through --config_overrides."
        )
    if len(train["pixel_values"]) < args.batch_size * accelerator.num_processes:
        raise ValueError(
            f"The training split has {len(train['pixel_values'])} images, fewer than one batch of --batch_size "
            f"{args.batch_size} per process ({accelerator.num_processes} processes)."
        )
    return DataLoader(
        TensorDictDataset(train),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )


def build_monitor(args: argparse.Namespace, device: torch.device) -> Any:
    """The classifier of the mode-collapse monitor (``--monitor_classifier``), or ``None``."""
    if not args.monitor_classifier:
        return None
    from hfdl.evaluation import ClassifierFeatureExtractor

    if not Path(args.monitor_classifier).expanduser().is_dir():
        raise ValueError(f"--monitor_classifier {args.monitor_classifier!r} is not a folder (a saved hfdl classifier).")
    return ClassifierFeatureExtractor.from_pretrained(args.monitor_classifier, device=device)


@torch.no_grad()
def generate_fixed(model: Any, fixed_noise: FixedNoise, count: int) -> torch.Tensor:
    """The generator's images in [0, 1] for the first ``count`` fixed latents (eval mode: batch norm uses its
    running statistics, so an image depends on its own latent only)."""
    generator = model.generator
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    images = []
    for start in range(0, count, 500):
        latents = fixed_noise.latents[start : min(count, start + 500)].to(device)
        labels = None
        if fixed_noise.class_labels is not None:
            labels = fixed_noise.class_labels[start : min(count, start + 500)].to(device)
        images.append((generator(latents, labels).float() + 1) / 2)
    generator.train(was_training)
    return torch.cat(images).clamp(0, 1)


def monitor_mode_collapse(model: Any, fixed_noise: FixedNoise, classifier: Any, args: argparse.Namespace) -> dict:
    """The mode-collapse monitor on ``--monitor_samples`` fixed-noise images: the monitor classifier's class
    histogram (``mode_histogram``), its entropy in nats (``mode_entropy``) and its ratio to ``log K``
    (``mode_entropy_ratio``, 1.0 when every class is drawn equally often); for a conditional model also the fraction
    of images classified as the class they were asked for (``requested_class_accuracy``)."""
    from hfdl.evaluation import generative_report

    images = generate_fixed(model, fixed_noise, args.monitor_samples)
    requested = None if fixed_noise.class_labels is None else fixed_noise.class_labels[: args.monitor_samples]
    report = generative_report(classifier, images, requested=requested)
    result = {
        "mode_entropy": report["entropy"],
        "mode_entropy_ratio": report["entropy_ratio"],
        "mode_histogram": report["class_histogram"],
    }
    if requested is not None:
        result["requested_class_accuracy"] = report["conditional_accuracy"]
    return result


def save_samples(model: Any, fixed_noise: FixedNoise, args: argparse.Namespace, step: int) -> None:
    """``samples/step_<N>.png`` and ``samples.png``: the grid of the fixed latents (main process only). A
    conditional grid is ``num_classes`` wide: one class per column."""
    output_dir = Path(args.output_dir)
    num_classes = model.config.num_classes
    images = generate_fixed(model, fixed_noise, min(args.num_grid_samples, len(fixed_noise)))
    path = save_image_grid(images, output_dir / "samples" / f"step_{step:06d}.png", nrow=num_classes or 8)
    shutil.copyfile(path, output_dir / "samples.png")


def save_final_model(model: Any, results: dict[str, Any], args: argparse.Namespace) -> Path:
    """``final/``: the ``GANModel`` (generator and discriminator) in Hub format with a model card."""
    dataset = dataset_card_name(args.dataset)
    monitored = {k: results[k] for k in ("mode_entropy", "requested_class_accuracy") if k in results}
    options = [f"label smoothing {args.label_smoothing}"] if args.label_smoothing else []
    options += ["spectral norm"] if model.config.spectral_norm else []
    card_data = {
        "model_name": Path(args.output_dir).resolve().name,
        "datasets": [dataset],
        "description": f"Trained with hfdl's `train_gan` recipe ({args.model}, Adam lr {args.learning_rate} betas "
        f"({args.adam_beta1}, {args.adam_beta2}), non-saturating loss{', ' if options else ''}{', '.join(options)}; "
        f"{results['train_steps']} steps of batch {args.batch_size} x {results['num_processes']} processes)."
        + (f" Mode-collapse monitor at the end: {json.dumps(monitored)}." if monitored else ""),
    }
    return save_for_hub(model, Path(args.output_dir) / "final", card_data=card_data)


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
    if not args.resume_from_checkpoint:  # before any work: an earlier run's checkpoints would mix with this run's
        prepare_checkpoint_dir(accelerator, overwrite=args.overwrite_output_dir)
    set_seed(args.seed)  # every process builds the same initial weights

    model, image_processor = build_model(args)
    num_classes = model.config.num_classes
    train_dataloader = get_dataloader(accelerator, args, image_processor, num_classes)
    classifier = build_monitor(args, accelerator.device) if accelerator.is_main_process else None
    # Fixed latents (and classes) for the grids and the monitor, drawn on the CPU from --seed alone.
    monitored = args.monitor_samples if args.monitor_classifier else 0
    fixed_noise = FixedNoise.draw(model, max(args.num_grid_samples, monitored), args.seed, num_classes)

    betas = (args.adam_beta1, args.adam_beta2)
    optimizer_g = torch.optim.Adam(model.generator.parameters(), lr=args.learning_rate, betas=betas)
    optimizer_d = torch.optim.Adam(
        model.discriminator.parameters(), lr=args.discriminator_learning_rate or args.learning_rate, betas=betas
    )
    # Both networks and both optimizers through one Accelerator: each network is wrapped (DDP) on its own, and the
    # GANModel keeps the same modules, so it is what gets saved.
    generator, discriminator, optimizer_g, optimizer_d, train_dataloader = accelerator.prepare(
        model.generator, model.discriminator, optimizer_g, optimizer_d, train_dataloader
    )

    steps_per_epoch = len(train_dataloader)
    total_steps = args.max_steps or steps_per_epoch * args.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    state = GANTrainingState(steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    accelerator.register_for_checkpointing(state, log_file, fixed_noise)
    if args.resume_from_checkpoint:
        checkpoint = resume_from_checkpoint(accelerator, args.resume_from_checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {state.completed_steps}.")
    accelerator.init_trackers("train_gan", config=vars(args))

    real_target = 1.0 - args.label_smoothing
    checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
    starting_epoch, resume_step = divmod(state.completed_steps, steps_per_epoch)
    # The step's measures are summed on the device and read once per log (a read waits for the step to finish).
    window, window_steps = torch.zeros(len(STEP_METRICS), device=accelerator.device), 0
    epoch_seconds = []
    progress = tqdm(total=total_steps, initial=state.completed_steps, disable=not accelerator.is_local_main_process)
    generator.train()
    discriminator.train()
    for epoch in range(starting_epoch, num_epochs):
        if state.completed_steps >= total_steps:  # resumed from the checkpoint of the last step
            break
        train_dataloader.set_epoch(epoch)
        active_dataloader = train_dataloader
        if epoch == starting_epoch and resume_step:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        start = time.perf_counter()
        for batch in active_dataloader:
            real = batch["pixel_values"]
            real_labels = batch["labels"] if num_classes else None
            batch_size = len(real)
            noise = step_generator(
                args.seed, LATENT_STREAM, state.completed_steps, accelerator.process_index, accelerator.device
            )
            latents = model.sample_latents(batch_size, generator=noise)
            requested = None
            if num_classes:  # the classes the generator is asked for: uniform, independent of the real batch
                requested = torch.randint(0, num_classes, (batch_size,), generator=noise, device=accelerator.device)
            fake = generator(latents, requested)

            # 1. Discriminator: real toward real_target, fake toward 0 (the fakes detached: G is not updated here).
            real_logits = discriminator(real, real_labels)
            fake_logits = discriminator(fake.detach(), requested)
            d_loss = discriminator_loss(real_logits, fake_logits, real_target)
            optimizer_d.zero_grad(set_to_none=True)
            accelerator.backward(d_loss)
            optimizer_d.step()

            # 2. Generator: the non-saturating loss through the updated discriminator. D's gradients from this pass
            # are discarded by its zero_grad at the next step.
            g_loss = generator_loss(discriminator(fake, requested))
            optimizer_g.zero_grad(set_to_none=True)
            accelerator.backward(g_loss)
            optimizer_g.step()

            state.completed_steps += 1
            window += torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    torch.sigmoid(real_logits.detach()).mean(),
                    torch.sigmoid(fake_logits.detach()).mean(),
                ]
            ).float()
            window_steps += 1
            progress.update(1)
            end_of_epoch = state.completed_steps % steps_per_epoch == 0 or state.completed_steps == total_steps
            save_now = checkpoint_every and state.completed_steps % checkpoint_every == 0
            if end_of_epoch or save_now or state.completed_steps % args.logging_steps == 0:
                means = (accelerator.reduce(window, reduction="mean") / window_steps).tolist()  # over processes
                for name, value in zip(STEP_METRICS, means):
                    state.epoch_sums[name] = state.epoch_sums.get(name, 0.0) + value * window_steps
                state.epoch_sums["steps"] = state.epoch_sums.get("steps", 0) + window_steps
                accelerator.log({**dict(zip(STEP_METRICS, means)), "epoch": state.epoch}, step=state.completed_steps)
                window.zero_()
                window_steps = 0
            if args.sample_every and state.completed_steps % args.sample_every == 0 and accelerator.is_main_process:
                save_samples(model, fixed_noise, args, state.completed_steps)
            if end_of_epoch:
                break
            if save_now:
                save_checkpoint(accelerator, state)
        epoch_seconds.append(time.perf_counter() - start)

        # The epoch's means, the monitor, the grid; then its checkpoint, so that a resume from it repeats none.
        steps = state.epoch_sums.pop("steps")
        epoch_entry = {f"epoch_{name}": state.epoch_sums[name] / steps for name in STEP_METRICS}
        state.epoch_sums = {}
        epoch_entry.update(epoch=state.epoch, epoch_seconds=epoch_seconds[-1])
        if accelerator.is_main_process:
            if classifier is not None:
                epoch_entry.update(monitor_mode_collapse(model, fixed_noise, classifier, args))
            save_samples(model, fixed_noise, args, state.completed_steps)
        accelerator.log(epoch_entry, step=state.completed_steps)
        state.last_epoch = epoch_entry
        progress.set_postfix(d_loss=f"{epoch_entry['epoch_d_loss']:.3f}", g_loss=f"{epoch_entry['epoch_g_loss']:.3f}")
        if args.checkpointing_steps == "epoch" or (checkpoint_every and state.completed_steps % checkpoint_every == 0):
            save_checkpoint(accelerator, state)
    progress.close()

    results = {
        **{name: value for name, value in state.last_epoch.items() if name != "epoch_seconds"},
        "train_steps": state.completed_steps,
        "train_samples": len(train_dataloader.dataset),
        "train_seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else None,
        "train_epoch_seconds": epoch_seconds,
        "epoch": state.epoch,
        "num_processes": accelerator.num_processes,
        "model_dir": str(output_dir / "final"),
    }
    if accelerator.is_main_process:
        save_final_model(model, results, args)
        save_json(output_dir / "all_results.json", results)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (default: the command line), train, and return the last epoch's measures."""
    return training_function(parse_args(argv))


if __name__ == "__main__":
    main()
