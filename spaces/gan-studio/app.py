"""GAN studio: samples from a DCGAN or a conditional GAN, a walk through its noise, and a DDPM beside it.

The Space of *Deep Learning Mastery*'s chapter 8 (Goodfellow et al., 2014; Radford et al., 2016; Mirza & Osindero,
2014; Ho et al., 2020). Pick a trained hfdl GAN and:

* **Samples**: a seed, a class (for a conditional GAN; "all classes" gives one row per class, every row from the same
  noise, so a column keeps one style across the classes) and a number of images;
* **Fixed-noise walk**: the noise of two seeds joined by a spherical or straight path, decoded frame by frame, as a
  strip and as a looping GIF;
* **GAN vs DDPM**: the same seed through the GAN and through a denoising diffusion model (``hfdl.pipelines
  .DDPMPipeline``), side by side, with the seconds each took: one generator pass against one U-Net pass per step.

Models: a folder or Hub id given with ``--model`` / ``HFDL_MODEL`` (and ``--ddpm`` / ``HFDL_DDPM``), every trained
hfdl GAN and DDPM pipeline under ``outputs/`` (where the recipes write), and, so that the Space works with nothing
trained and no Hub, a DCGAN, a conditional DCGAN and a small DDPM trained here on scikit-learn's 8x8 digits (enlarged
to 16 px) on first use, each in about a minute on 2 shared CPU cores, kept in the cache folder.

Importing this module only builds the UI (``demo``); hfdl, torch and the models are loaded on the first request.
Run locally::

    python spaces/gan-studio/app.py --model outputs/cgan-mnist/final --ddpm outputs/ddpm-mnist/pipeline
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

#: The dropdown values of the models trained here on scikit-learn's digits (the defaults when nothing is found).
CGAN_CHOICE = "cgan-digits (trained here)"
DCGAN_CHOICE = "dcgan-digits (trained here)"
DDPM_CHOICE = "ddpm-digits (trained here)"
DIGITS_FOLDERS = {CGAN_CHOICE: "cgan-digits", DCGAN_CHOICE: "dcgan-digits", DDPM_CHOICE: "ddpm-digits"}
#: Side the 8x8 digits are enlarged to (bilinear) for the default models: the smallest DCGAN side with two
#: upsamplings (4 -> 8 -> 16), and at 28 px one training step costs about three times as much for no new detail.
DIGITS_IMAGE_SIZE = 16
#: Both default GANs are this DCGAN (the cGAN adds ``num_classes=10`` and a 4-dimensional class embedding): G z(32)
#: -> 4x4x64 -> 8x8x32 -> 16x16x1, D 16x16x1 -> 8x8x32 -> 4x4x64 -> logit, 4x4 kernels.
DIGITS_GAN = {
    "image_size": DIGITS_IMAGE_SIZE,
    "latent_dim": 32,
    "generator_channels": 32,
    "discriminator_channels": 32,
    "kernel_size": 4,
}
#: The cGAN's class embedding is 4-dimensional rather than 16: with 16, its generator learnt to draw one digit per
#: class and all but ignore the noise (the within-class pixel spread of its samples fell to 0.54 of the real digits'
#: by step 1200, and a walk between two seeds hardly moved); with 4 it kept about 0.8 at step 600 (same seed).
DIGITS_CGAN = {"num_classes": 10, "class_embedding_dim": 4}
#: Adam steps of batch 64 (Radford et al.'s rate and betas). Measured on 2 shared CPU cores, one PyTorch thread: see
#: the README for the seconds and the quality each reached. The cGAN stops early for the same reason as above.
DIGITS_GAN_STEPS = {CGAN_CHOICE: 800, DCGAN_CHOICE: 1500}
#: The default DDPM: ``make_ddpm_unet`` with two levels (16 -> 8), 16 and 32 channels, no attention (0.16M
#: parameters); 1000-step cosine schedule; AdamW steps of batch 64.
DIGITS_DDPM = {"image_size": DIGITS_IMAGE_SIZE, "block_out_channels": (16, 32), "attention": False}
DIGITS_DDPM_STEPS = 600
#: Classes of each default GAN, known without importing hfdl (for the class list before the first request).
DIGITS_CLASSES = {CGAN_CHOICE: 10, DCGAN_CHOICE: 0}
#: Written beside each default model: how it was trained, how long it took and how good its samples are.
TRAINING_RECORD = "training.json"
OUTPUTS_FOLDER = "outputs"
GAN_MODEL_TYPE = "hfdl-gan"
GAN_PIPELINE = "GANPipeline"
DDPM_PIPELINE = "DDPMPipeline"
#: Where the recipes put a model inside their output folder: train_gan.py writes ``final/``, train_ddpm.py
#: ``pipeline/``; a ``save_pretrained`` folder is the folder itself.
MODEL_SUBFOLDERS = ("", "final", "best", "pipeline")

#: The class setting: "all" (one row per class), "" (no class: unconditional models), or a class index.
ALL_CLASSES = "all"
NO_CLASS = ""
MAX_IMAGES = 16
#: At most this many pictures in one answer ("all classes" times the number of images, or frames times rows).
MAX_PICTURES = 160
MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 2, 32, 10
MAX_SEED = 2**32 - 1
#: "spherical": along the great circle between the two noise vectors (White, 2016), which keeps the norm a Gaussian
#: vector of this size has; "linear": the straight line, whose middle is shorter than either end.
INTERPOLATIONS = ("spherical", "linear")
#: DDPM samplers: "ddpm" is ancestral sampling as trained (Ho et al.), over fewer, evenly spaced steps when asked;
#: "ddim" is Song et al.'s (2021) deterministic sampler on the same U-Net, which stays good with far fewer steps.
SAMPLERS = ("ddpm", "ddim")
DEFAULT_INFERENCE_STEPS = 50
MAX_INFERENCE_STEPS = 1000

#: Each generated image is enlarged by a whole factor (nearest) to at least this side, so ``picture[::f, ::f]``
#: gives its pixels back.
MIN_TILE = 56
#: Grey pixels between (and around) the images of a picture, and their shade.
GAP, GAP_SHADE = 4, 96
GIF_FRAME_MS = 120

#: Requests that may run at once: the work is in torch, which releases the GIL.
CONCURRENCY_LIMIT = 2
CACHE_MAX_AGE_S = 600
MAX_CACHED_MODELS = 4
#: PyTorch threads per model call under ``python app.py`` (requests already run side by side; see the README).
DEFAULT_TORCH_THREADS = 1


class StudioInputError(ValueError):
    """A setting cannot be used: a seed, class, number of images, frames or steps out of range, or no model."""


class ModelUnavailableError(RuntimeError):
    """The model could not be loaded, or is not an hfdl GAN (or DDPM pipeline)."""


# --------------------------------------------------------------------------------------------------------------------
# Which models: --model / --ddpm, the GANs and DDPMs under outputs/, the digits models trained here.
# --------------------------------------------------------------------------------------------------------------------


def _repository_root() -> Path | None:
    """The repository root when this file is ``<root>/spaces/gan-studio/app.py``; None on a real Space."""
    parents = Path(__file__).resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "hfdl").is_dir() else None


_settings: dict[str, Any] = {"model": None, "ddpm": None, "outputs": None, "cache_dir": None}


def configure(
    model: str | None = None,
    ddpm: str | None = None,
    outputs: list[str | Path] | None = None,
    cache_dir: str | Path | None = None,
) -> None:
    """Choose the GAN and DDPM offered first, the folders searched for trained models and where the digits models
    are kept (None: the environment, else the default). Takes effect for UIs built afterwards (:func:`build_demo`)."""
    _settings.update(
        {
            "model": model,
            "ddpm": ddpm,
            "outputs": None if outputs is None else [Path(path) for path in outputs],
            "cache_dir": None if cache_dir is None else Path(cache_dir),
        }
    )


def outputs_folders() -> list[Path]:
    """Where to look for trained models: :func:`configure`'s, else ``HFDL_OUTPUTS`` (``os.pathsep``-separated),
    else ``outputs/`` at the repository root and in the working directory."""
    if _settings["outputs"] is not None:
        return list(_settings["outputs"])
    if os.environ.get("HFDL_OUTPUTS"):
        return [Path(part) for part in os.environ["HFDL_OUTPUTS"].split(os.pathsep) if part]
    root = _repository_root()
    candidates = ([root / OUTPUTS_FOLDER] if root is not None else []) + [Path.cwd() / OUTPUTS_FOLDER]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate.resolve() not in [path.resolve() for path in unique]:
            unique.append(candidate)
    return unique


def space_cache_dir() -> Path:
    """Where the digits models are trained into: configured, else ``HFDL_SPACE_CACHE``, else the temporary folder.

    A Space's disk outlives restarts of the app (not rebuilds), so the training is paid once per build."""
    configured = _settings["cache_dir"] or os.environ.get("HFDL_SPACE_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "hfdl-gan-studio"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _pipeline_class(folder: Path) -> str | None:
    """``_class_name`` of a diffusers pipeline folder (hfdl writes ``["pipeline_hfdl", "GANPipeline"]``), else None."""
    index = _read_json(folder / "model_index.json")
    if index is None:
        return None
    name = index.get("_class_name")
    return str(name[-1]) if isinstance(name, list) and name else (str(name) if name else None)


def read_gan_config(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """(folder, ``config.json``) of the hfdl GAN saved in ``folder`` or in a recipe subfolder of it (a plain model
    folder, or a GAN pipeline folder), else None. Reads JSON only: listing runs when the page loads."""
    for subfolder in MODEL_SUBFOLDERS:
        candidate = folder / subfolder if subfolder else folder
        if _pipeline_class(candidate) == GAN_PIPELINE:
            config = _read_json(candidate / "model" / "config.json")
        else:
            config = _read_json(candidate / "config.json")
        if config is not None and config.get("model_type") == GAN_MODEL_TYPE:
            return candidate, config
    return None


def find_ddpm_folder(folder: Path) -> Path | None:
    """The DDPM pipeline folder in ``folder`` or its ``pipeline/`` (what ``train_ddpm.py`` writes), else None."""
    for subfolder in MODEL_SUBFOLDERS:
        candidate = folder / subfolder if subfolder else folder
        if _pipeline_class(candidate) == DDPM_PIPELINE:
            return candidate
    return None


def _gan_description(config: dict[str, Any]) -> str:
    body = "DCGAN" if config.get("architecture") == "dcgan" else "MLP GAN"
    classes = int(config.get("num_classes") or 0)
    side = config.get("image_size", "?")
    return f"{'conditional ' + body + f', {classes} classes' if classes else body}, {side} px"


def find_trained_models(folders: list[Path] | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(GANs, DDPMs) found in the immediate subfolders of ``folders``: (label, folder) pairs sorted by name."""
    gans: list[tuple[str, str]] = []
    ddpms: list[tuple[str, str]] = []
    for folder in folders if folders is not None else outputs_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(path for path in folder.iterdir() if path.is_dir()):
            found = read_gan_config(candidate)
            if found is not None:
                gans.append((f"{candidate.name} ({_gan_description(found[1])}, {found[0]})", str(found[0])))
            ddpm = find_ddpm_folder(candidate)
            if ddpm is not None:
                ddpms.append((f"{candidate.name} (DDPM, {ddpm})", str(ddpm)))
    return gans, ddpms


def _unique(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    unique: dict[str, str] = {}
    for label, value in choices:
        unique.setdefault(value, label)
    return [(label, value) for value, label in unique.items()]


def _trained_note(choice: str) -> str:
    return "" if (space_cache_dir() / DIGITS_FOLDERS[choice] / TRAINING_RECORD).is_file() else ", about a minute"


def model_choices() -> list[tuple[str, str]]:
    """The GAN dropdown: the configured model, the trained GANs found, then the two digits GANs."""
    choices: list[tuple[str, str]] = []
    configured = _settings["model"] or os.environ.get("HFDL_MODEL")
    if configured:
        choices.append((f"{configured} (--model)", configured))
    choices += find_trained_models()[0]
    choices.append(
        (f"conditional DCGAN on scikit-learn digits (trained on first use{_trained_note(CGAN_CHOICE)})", CGAN_CHOICE)
    )
    choices.append((f"DCGAN on scikit-learn digits (trained on first use{_trained_note(DCGAN_CHOICE)})", DCGAN_CHOICE))
    return _unique(choices)


def ddpm_choices() -> list[tuple[str, str]]:
    """The DDPM dropdown: the configured pipeline, the DDPM pipelines found, then the digits DDPM."""
    choices: list[tuple[str, str]] = []
    configured = _settings["ddpm"] or os.environ.get("HFDL_DDPM")
    if configured:
        choices.append((f"{configured} (--ddpm)", configured))
    choices += find_trained_models()[1]
    choices.append((f"DDPM on scikit-learn digits (trained on first use{_trained_note(DDPM_CHOICE)})", DDPM_CHOICE))
    return _unique(choices)


def _local_folder(source: str) -> Path:
    """``source`` as a folder: itself, or its snapshot in the local Hub cache for a Hub id (nothing downloaded)."""
    folder = Path(source).expanduser()
    if not folder.is_dir() and source.count("/") == 1:
        from huggingface_hub import try_to_load_from_cache  # gradio imports it anyway

        for name in ("config.json", "model_index.json"):
            try:
                cached = try_to_load_from_cache(source, name)
            except ValueError:  # not a valid repo id
                break
            if isinstance(cached, str):
                return Path(cached).parent
    return folder


def model_classes(source: str) -> int | None:
    """The number of classes of the GAN at ``source`` from its ``config.json`` alone (no torch), 0 when it is
    unconditional; None when it is not at hand (the request then checks against the loaded model)."""
    if source in DIGITS_CLASSES:
        return DIGITS_CLASSES[source]
    if not source:
        return None
    found = read_gan_config(_local_folder(source))
    return None if found is None else int(found[1].get("num_classes") or 0)


def class_choices(num_classes: int) -> list[tuple[str, str]]:
    """The class dropdown: "all classes" then each class for a conditional model; only "none" otherwise."""
    if num_classes == 0:
        return [("none (unconditional model)", NO_CLASS)]
    return [("all classes, one row each", ALL_CLASSES)] + [
        (f"class {index}", str(index)) for index in range(num_classes)
    ]


# --------------------------------------------------------------------------------------------------------------------
# The digits models: trained here, once, on scikit-learn's 8x8 digits enlarged to 16 px.
# --------------------------------------------------------------------------------------------------------------------


def digits_data(image_size: int = DIGITS_IMAGE_SIZE) -> tuple[Any, Any]:
    """scikit-learn's 1,797 digits as (images (N, 1, size, size) in [-1, 1], labels (N,)): 0-16 scaled to [0, 1],
    enlarged with bilinear interpolation, then mapped to the generator's tanh range."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = torch.nn.functional.interpolate(
        images, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    return images.clamp(0.0, 1.0) * 2.0 - 1.0, torch.as_tensor(digits.target)


def sample_quality(images: Any, requested: Any | None = None) -> dict[str, float]:
    """How digit-like generated images are, by a logistic regression fitted on the 8x8 digits (the images are
    averaged down to 8x8 first): the entropy of its class histogram over the samples divided by log(10) (1: all ten
    digits equally often; a collapsed GAN draws a few), and, for requested classes, the fraction it reads as them.

    A yardstick for the training record only, not the benchmark's measure (that is the Frechet distance in an MNIST
    classifier's feature space): the classifier has seen these very digits.
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    classifier = LogisticRegression(max_iter=2000).fit(digits.images.reshape(-1, 64) / 16.0, digits.target)
    small = torch.nn.functional.adaptive_avg_pool2d(images.float().mean(dim=1, keepdim=True), 8)
    predicted = classifier.predict(small.reshape(len(small), 64).numpy())
    histogram = np.bincount(predicted, minlength=10) / len(predicted)
    nonzero = histogram[histogram > 0]
    quality = {"class_entropy": round(float(-(nonzero * np.log(nonzero)).sum() / np.log(10)), 4) + 0.0}  # no -0.0
    if requested is not None:
        quality["class_accuracy"] = round(float((predicted == np.asarray(requested)).mean()), 4)
    return quality


def train_digits_gan(
    folder: str | Path,
    conditional: bool,
    steps: int | None = None,
    seed: int = 0,
    num_quality_samples: int = 1000,
    **overrides: Any,
) -> dict[str, Any]:
    """Train a small DCGAN (conditional with ``conditional``) on scikit-learn's digits and save it to ``folder``.

    Radford et al.'s recipe: Adam (rate 2e-4, betas 0.5/0.999), batch 64, binary cross-entropy for D on a real and a
    generated batch, the non-saturating loss for G. A conditional D sees the real digits' labels and G is asked for
    uniformly random classes. All randomness comes from ``seed``. Returns the record written to
    ``folder/training.json`` (steps, wall-clock and CPU seconds, and :func:`sample_quality` of
    ``num_quality_samples`` samples, the classes asked for in turn).
    """
    import torch
    import torch.nn.functional as functional

    import hfdl
    from hfdl.hub import save_for_hub

    choice = CGAN_CHOICE if conditional else DCGAN_CHOICE
    steps = DIGITS_GAN_STEPS[choice] if steps is None else steps
    started, started_cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    settings = {**DIGITS_GAN, **(DIGITS_CGAN if conditional else {}), **overrides}
    if conditional:
        settings.setdefault("id2label", {index: str(index) for index in range(settings["num_classes"])})
    model = hfdl.create_model("dcgan-mnist", **settings)
    images, labels = digits_data(model.config.image_size)
    num_classes = model.config.num_classes
    optimizers = [
        torch.optim.Adam(network.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for network in (model.generator, model.discriminator)
    ]
    generator = torch.Generator().manual_seed(seed)
    batch_size = 64
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        real_labels = labels[index] if num_classes else None
        fake_labels = torch.randint(0, num_classes, (batch_size,), generator=generator) if num_classes else None
        fakes = model.generator(model.sample_latents(batch_size, generator=generator), fake_labels)
        # D: real -> 1, generated -> 0 (softplus(-d) = -log sigmoid(d)).
        d_loss = (
            functional.softplus(-model.discriminate(images[index], real_labels)).mean()
            + functional.softplus(model.discriminate(fakes.detach(), fake_labels)).mean()
        )
        optimizers[1].zero_grad()
        d_loss.backward()
        optimizers[1].step()
        # G: the non-saturating loss -log D(G(z)) (Goodfellow et al., Sec. 3), through the updated D.
        g_loss = functional.softplus(-model.discriminate(fakes, fake_labels)).mean()
        optimizers[0].zero_grad()
        g_loss.backward()
        optimizers[0].step()
    model.eval()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    requested = torch.arange(num_quality_samples) % 10 if num_classes == 10 else None
    samples = model.sample(
        num_quality_samples, generator=torch.Generator().manual_seed(seed + 1), class_labels=requested
    )
    record = {
        "data": f"scikit-learn digits (1,797 images, 8x8 enlarged to {model.config.image_size} px)",
        "model": "conditional DCGAN" if num_classes else "DCGAN",
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "overrides": {key: value for key, value in settings.items() if key != "id2label"},
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "final_losses": {"discriminator": round(d_loss.item(), 4), "generator": round(g_loss.item(), 4)},
        **sample_quality(samples, requested if num_classes == 10 else None),
    }
    saved = save_for_hub(model, folder)
    (saved / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def train_digits_ddpm(
    folder: str | Path,
    steps: int = DIGITS_DDPM_STEPS,
    seed: int = 0,
    num_quality_samples: int = 100,
    **overrides: Any,
) -> dict[str, Any]:
    """Train a small DDPM (Ho et al., 2020) on scikit-learn's digits and save the pipeline folder to ``folder``.

    ``make_ddpm_unet`` with :data:`DIGITS_DDPM` (and ``overrides``), a 1000-step cosine schedule, epsilon-prediction
    MSE, AdamW at 2e-3, batch 64. Returns the record written to ``folder/training.json`` (steps, seconds, final loss
    and :func:`sample_quality` of ``num_quality_samples`` samples drawn with 50 DDPM steps).
    """
    import torch
    import torch.nn.functional as functional

    from hfdl.pipelines import DDPMPipeline
    from hfdl.pipelines.ddpm import make_ddpm_scheduler, make_ddpm_unet

    started, started_cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    settings = {**DIGITS_DDPM, **overrides}
    unet = make_ddpm_unet(**settings)
    scheduler = make_ddpm_scheduler(beta_schedule="cosine")
    images, _ = digits_data(settings["image_size"])
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    batch_size, total = 64, scheduler.config.num_train_timesteps
    unet.train()
    for _ in range(steps):
        batch = images[torch.randint(0, len(images), (batch_size,), generator=generator)]
        noise = torch.randn(batch.shape, generator=generator)
        timesteps = torch.randint(0, total, (batch_size,), generator=generator)
        loss = functional.mse_loss(unet(scheduler.add_noise(batch, noise, timesteps), timesteps).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    unet.eval()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    pipeline = DDPMPipeline(unet=unet, scheduler=scheduler)
    pipeline.set_progress_bar_config(disable=True)
    samples = pipeline(
        num_images=num_quality_samples,
        generator=torch.Generator().manual_seed(seed + 1),
        num_inference_steps=50,
        output_type="pt",
    ).images
    record = {
        "data": f"scikit-learn digits (1,797 images, 8x8 enlarged to {settings['image_size']} px)",
        "model": "DDPM (diffusers UNet2DModel + DDPMScheduler, cosine betas, 1000 steps)",
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "overrides": {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "final_loss": round(loss.item(), 4),
        **sample_quality(samples),
    }
    pipeline.save_pretrained(folder)
    (Path(folder) / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


_train_lock = threading.Lock()


def digits_model(choice: str) -> Path:
    """The folder of a digits model (:data:`CGAN_CHOICE`, :data:`DCGAN_CHOICE` or :data:`DDPM_CHOICE`), trained now
    if the cache does not hold it yet (one training at a time)."""
    folder = space_cache_dir() / DIGITS_FOLDERS[choice]
    with _train_lock:
        if not (folder / TRAINING_RECORD).is_file():
            try:
                if choice == DDPM_CHOICE:
                    train_digits_ddpm(folder)
                else:
                    train_digits_gan(folder, conditional=choice == CGAN_CHOICE)
            except ImportError as error:  # scikit-learn or diffusers missing
                raise ModelUnavailableError(f"Training the {choice} model needs {error.name}: {error}") from error
    return folder


def training_record(folder: str | Path) -> dict[str, Any] | None:
    """The ``training.json`` a digits model was saved with, else None."""
    return _read_json(Path(folder) / TRAINING_RECORD)


# --------------------------------------------------------------------------------------------------------------------
# Models: hfdl.pipelines.GANPipeline / DDPMPipeline, cached.
# --------------------------------------------------------------------------------------------------------------------


_pipelines: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
_load_lock = threading.Lock()


def _cache_key(kind: str, source: str) -> tuple[str, str, int]:
    """A local folder by its resolved path and its newest config's write time (a retrained model is reloaded)."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return kind, source, 0
    configs = [path / name for name in ("config.json", "model_index.json", "model/config.json", "unet/config.json")]
    return kind, str(path.resolve()), max((file.stat().st_mtime_ns for file in configs if file.is_file()), default=0)


def _resolve(source: str, kind: str) -> str:
    """A dropdown value or typed text -> what ``from_pretrained`` takes: the digits models are trained first; a
    recipe output folder becomes its ``final/`` or ``pipeline/``."""
    if source in DIGITS_FOLDERS:
        return str(digits_model(source))
    folder = Path(source).expanduser()
    if folder.is_dir():
        found = read_gan_config(folder) if kind == "gan" else None
        ddpm = find_ddpm_folder(folder) if kind == "ddpm" else None
        return str(found[0] if found else ddpm or folder)
    return source


def _load(kind: str, source: str) -> Any:
    resolved = _resolve(source, kind)
    key = _cache_key(kind, resolved)
    with _load_lock:  # requests run in worker threads: load each model once
        if key in _pipelines:
            _pipelines.move_to_end(key)
            return _pipelines[key]
        try:
            from hfdl.pipelines import DDPMPipeline, GANPipeline

            pipeline_class = GANPipeline if kind == "gan" else DDPMPipeline
            pipeline = pipeline_class.from_pretrained(resolved)
        except (ImportError, OSError, RuntimeError, ValueError) as error:
            what = "an hfdl GAN (a saved GANModel or GANPipeline folder)" if kind == "gan" else "a DDPM pipeline folder"
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelUnavailableError(f"Could not load {source!r} as {what}: {message}") from error
        pipeline.set_progress_bar_config(disable=True)
        _pipelines[key] = pipeline
        while len(_pipelines) > MAX_CACHED_MODELS:
            _pipelines.popitem(last=False)
        return pipeline


def load_gan(source: str) -> Any:
    """The :class:`hfdl.pipelines.GANPipeline` of ``source`` (a folder, a recipe output folder, a Hub id or a digits
    choice), cached. Raises ModelUnavailableError when it cannot be loaded or is not an hfdl GAN."""
    return _load("gan", source)


def load_ddpm(source: str) -> Any:
    """The :class:`hfdl.pipelines.DDPMPipeline` of ``source``, cached; see :func:`load_gan`."""
    return _load("ddpm", source)


def choose_source(model: str | None, custom_model: str | None, what: str = "GAN") -> str:
    """The typed folder or Hub id when there is one, else the dropdown's choice.

    Raises:
        StudioInputError: Neither is given.
    """
    source = (custom_model or "").strip() or (model or "").strip()
    if not source:
        raise StudioInputError(f"Choose a {what} in the list, or type a model folder or Hub id.")
    return source


# --------------------------------------------------------------------------------------------------------------------
# Settings.
# --------------------------------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer setting from a slider, a number box or an API call (2.0 is 2), within [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or not low <= number <= high:
        raise StudioInputError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


def parse_seed(value: Any, name: str = "seed") -> int:
    return _check_int(name, value, 0, MAX_SEED)


def parse_class(value: Any, num_classes: int, source: str) -> list[int | None]:
    """The class setting -> the class of each row: ``[None]`` for an unconditional model, ``[c]`` for one class,
    ``[0, ..., K-1]`` for "all".

    Raises:
        StudioInputError: A class for an unconditional model, none for a conditional one, or one out of range.
    """
    text = "" if value is None else str(value).strip().lower()
    if num_classes == 0:
        if text in (NO_CLASS, "none"):
            return [None]
        raise StudioInputError(
            f"{source} is an unconditional GAN (num_classes = 0): it takes no class; leave the class empty "
            f"(none); got {value!r}."
        )
    allowed = f"{ALL_CLASSES} (one row per class) or a class number from 0 to {num_classes - 1}"
    if text in (ALL_CLASSES, "all classes"):
        return list(range(num_classes))
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer() or not 0 <= number < num_classes:
        raise StudioInputError(f"class must be {allowed} for {source} ({num_classes} classes); got {value!r}.")
    return [int(number)]


def check_picture_count(rows: int, columns: int, what: str) -> None:
    if rows * columns > MAX_PICTURES:
        raise StudioInputError(
            f"{rows} rows x {columns} {what} = {rows * columns} pictures; at most {MAX_PICTURES} at once: ask for "
            f"fewer {what} or one class."
        )


def _check_before_loading(source: str, class_choice: Any, columns: int, what: str) -> None:
    """Check the class setting and the picture count against ``config.json`` before the model is loaded, so that a
    bad setting is answered at once rather than after loading (or a minute of training, for the digits models)."""
    known = model_classes(source)
    if known is not None:
        check_picture_count(len(parse_class(class_choice, known, source)), columns, what)


# --------------------------------------------------------------------------------------------------------------------
# Latents, pictures and the three requests.
# --------------------------------------------------------------------------------------------------------------------


def interpolate_latents(start: Any, end: Any, frames: int, interpolation: str = "spherical") -> Any:
    """``frames`` latents from ``start`` to ``end`` (each of shape (latent_dim,) or (1, latent_dim)), ends included.

    ``spherical`` (White, 2016, "Sampling generative networks"): ``sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b`` with
    ``w`` the angle between them. A latent z ~ N(0, I) of dimension d has a norm near sqrt(d), where the generator
    was trained; the straight line between two such vectors passes closer to the origin (at t=0.5 about
    sqrt(d/2) for independent ones), through noise the generator rarely saw. The first and last rows are ``start``
    and ``end`` exactly.

    Raises:
        StudioInputError: An unknown ``interpolation`` or fewer than 2 frames.
    """
    import torch

    if interpolation not in INTERPOLATIONS:
        raise StudioInputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {interpolation!r}.")
    if frames < 2:
        raise StudioInputError(f"a walk needs at least 2 frames; got {frames}.")
    a, b = start.reshape(-1).double(), end.reshape(-1).double()
    t = torch.linspace(0.0, 1.0, frames, dtype=torch.float64)[:, None]  # (frames, 1)
    cosine = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    angle = torch.arccos(cosine.clamp(-1.0, 1.0))
    if interpolation == "linear" or float(torch.sin(angle)) < 1e-6:  # (anti)parallel: no unique great circle
        path = (1.0 - t) * a + t * b
    else:
        path = (torch.sin((1.0 - t) * angle) * a + torch.sin(t * angle) * b) / torch.sin(angle)
    path = path.to(start.dtype)
    path[0], path[-1] = start.reshape(-1), end.reshape(-1)
    return path  # (frames, latent_dim)


def scale_factor(image_side: int) -> int:
    """The whole factor each image is enlarged by in the pictures (at least :data:`MIN_TILE` pixels a side)."""
    return max(1, math.ceil(MIN_TILE / image_side))


def tile_origin(row: int, column: int, image_side: int) -> tuple[int, int]:
    """(top, left) pixel of the image at (``row``, ``column``) in a picture made by :func:`image_sheet`."""
    stride = image_side * scale_factor(image_side) + GAP
    return GAP + row * stride, GAP + column * stride


def image_sheet(rows: list[list[Any]]) -> Any:
    """Rows of square PIL images (all the same size and mode) as one picture: each pixel enlarged by
    :func:`scale_factor` (nearest, so ``picture[top::f, left::f]`` from :func:`tile_origin` gives an image's own
    pixels back), with :data:`GAP` grey pixels around every image. Without the gaps, digits that fill their frame
    (as these do) run into their neighbours above and below, and a sheet reads as columns of squiggles."""
    from PIL import Image

    arrays = [[np.asarray(image) for image in row] for row in rows]
    side = arrays[0][0].shape[0]
    factor = scale_factor(side)
    height, width = tile_origin(len(arrays), max(map(len, arrays)), side)
    sheet = np.full((height, width, *arrays[0][0].shape[2:]), GAP_SHADE, dtype=np.uint8)
    for row_index, row in enumerate(arrays):
        for column_index, array in enumerate(row):
            top, left = tile_origin(row_index, column_index, side)
            sheet[top : top + side * factor, left : left + side * factor] = array.repeat(factor, 0).repeat(factor, 1)
    return Image.fromarray(sheet)


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _describe_source(source: str, folder: Path | None) -> str:
    record = training_record(folder) if folder is not None else None
    if not record:
        return f"`{source}`"
    quality = []
    if "class_accuracy" in record:
        quality.append(f"{record['class_accuracy']:.0%} of its samples read as the class asked for")
    if "class_entropy" in record:
        quality.append(f"class histogram entropy {record['class_entropy']:.2f} x log 10")
    return (
        f"{record['model']} trained here on scikit-learn digits ({record['steps']} steps, {record['seconds']:.0f} s"
        + (f"; {', '.join(quality)} by a logistic regression on the digits" if quality else "")
        + ")"
    )


def _record_folder(source: str, kind: str = "gan") -> Path | None:
    """Where a ``training.json`` of ``source`` would be: the cache for the digits models, else the model folder."""
    if source in DIGITS_FOLDERS:
        return space_cache_dir() / DIGITS_FOLDERS[source]
    folder = Path(source).expanduser()
    return Path(_resolve(source, kind)) if folder.is_dir() else None


class Samples(NamedTuple):
    """What the Samples tab shows, as Python values (the handler turns the picture into a file)."""

    rows: list[list[Any]]  # PIL images, one row per class (one row for an unconditional model)
    classes: list[int | None]
    picture: Any
    seconds: float
    caption: str


def generate(source: str, seed: Any = 0, class_choice: Any = NO_CLASS, num_images: Any = 8) -> Samples:
    """``num_images`` samples of the GAN at ``source`` from ``seed``, one row per requested class.

    Every row is ``GANPipeline(num_images, torch.Generator().manual_seed(seed), class_labels=c)``: the same noise in
    each row, so a column shows one latent drawn as each class.

    Raises:
        StudioInputError: A setting out of range (checked before anything is loaded or trained).
        ModelUnavailableError: The model cannot be loaded.
    """
    seed = parse_seed(seed)
    count = _check_int("number of images", num_images, 1, MAX_IMAGES)
    _check_before_loading(source, class_choice, count, "images")
    pipeline = load_gan(source)
    classes = parse_class(class_choice, pipeline.num_classes, source)
    check_picture_count(len(classes), count, "images")

    import torch

    started = time.perf_counter()
    rows = [
        pipeline(
            num_images=count, generator=torch.Generator(pipeline.device).manual_seed(seed), class_labels=label
        ).images
        for label in classes
    ]
    seconds = time.perf_counter() - started
    what = (
        "unconditional" if classes == [None] else ("one row per class" if len(classes) > 1 else f"class {classes[0]}")
    )
    caption = (
        f"**{len(classes) * count} samples** ({what}), seed {seed}, generated in {_seconds(seconds)} by "
        f"{_describe_source(source, _record_folder(source))}."
    )
    return Samples(rows, classes, image_sheet(rows), seconds, caption)


class Walk(NamedTuple):
    rows: list[list[Any]]  # one row of frames per class
    latents: Any  # (frames, latent_dim)
    strip: Any
    gif_frames: list[Any]  # forward then back, so the loop has no jump
    caption: str


def walk(
    source: str,
    seed: Any = 0,
    end_seed: Any = 1,
    class_choice: Any = NO_CLASS,
    frames: Any = DEFAULT_FRAMES,
    interpolation: str = "spherical",
) -> Walk:
    """Decode the path from the noise of ``seed`` to that of ``end_seed`` (each the latent ``sample`` draws for the
    seed, so the end frames are the two seeds' first samples), one row per requested class.

    Raises:
        StudioInputError: A setting out of range.
        ModelUnavailableError: The model cannot be loaded.
    """
    seed, end_seed = parse_seed(seed), parse_seed(end_seed, "second seed")
    count = _check_int("frames", frames, MIN_FRAMES, MAX_FRAMES)
    if interpolation not in INTERPOLATIONS:
        raise StudioInputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {interpolation!r}.")
    _check_before_loading(source, class_choice, count, "frames")
    pipeline = load_gan(source)
    classes = parse_class(class_choice, pipeline.num_classes, source)
    check_picture_count(len(classes), count, "frames")

    import torch

    from hfdl.pipelines.base import to_output

    model = pipeline.model
    start = model.sample_latents(1, generator=torch.Generator(model.device).manual_seed(seed))
    end = model.sample_latents(1, generator=torch.Generator(model.device).manual_seed(end_seed))
    latents = interpolate_latents(start, end, count, interpolation)
    rows = []
    with torch.inference_mode():
        for label in classes:
            labels = None if label is None else torch.full((count,), label, dtype=torch.long, device=model.device)
            images = model(latents, class_labels=labels).images  # [-1, 1], as model.sample maps it below
            rows.append(to_output(((images.float() + 1.0) / 2.0).clamp(0.0, 1.0), "pil"))
    gif_frames = [image_sheet([[row[index]] for row in rows]) for index in range(count)]
    gif_frames += gif_frames[-2:0:-1]
    what = "" if classes == [None] else (", one row per class" if len(classes) > 1 else f", class {classes[0]}")
    caption = (
        f"**{interpolation.capitalize()} walk** over {count} frames from the noise of seed {seed} to that of seed "
        f"{end_seed}{what}: the first and last frames are those seeds' first samples. Norm of the noise along the "
        f"path: {', '.join(f'{float(norm):.2f}' for norm in latents.norm(dim=1)[:: max(1, count // 5)])} "
        f"(sqrt of {model.config.latent_dim} dimensions = {math.sqrt(model.config.latent_dim):.2f})."
    )
    return Walk(rows, latents, image_sheet(rows), gif_frames, caption)


class Comparison(NamedTuple):
    gan_rows: list[list[Any]]
    ddpm_rows: list[list[Any]]
    gan_picture: Any
    ddpm_picture: Any
    gan_seconds: float
    ddpm_seconds: float
    caption: str


def ddpm_for_request(pipeline: Any, sampler: str) -> Any:
    """A DDPMPipeline that shares ``pipeline``'s U-Net with a scheduler of its own.

    ``set_timesteps`` writes the number of steps into the scheduler, so two requests sharing one scheduler would
    step each other's chains; the U-Net is only read (eval mode, no grad) and is shared.
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    from hfdl.pipelines import DDPMPipeline

    scheduler_class = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    fresh = DDPMPipeline(unet=pipeline.unet, scheduler=scheduler_class.from_config(pipeline.scheduler.config))
    fresh.set_progress_bar_config(disable=True)
    return fresh


def compare(
    source: str,
    ddpm_source: str,
    seed: Any = 0,
    class_choice: Any = NO_CLASS,
    num_images: Any = 8,
    inference_steps: Any = DEFAULT_INFERENCE_STEPS,
    sampler: str = "ddpm",
) -> Comparison:
    """The GAN's samples (as :func:`generate`) and the DDPM's from the same seed, each timed.

    The DDPM rows are ``DDPMPipeline(num_images, torch.Generator().manual_seed(seed),
    num_inference_steps=inference_steps)`` with the chosen sampler (one row, or one per class for a class-conditional
    U-Net). The same seed does not mean the same noise: the GAN draws a latent vector, the DDPM a noise image and
    fresh noise at every step.

    Raises:
        StudioInputError: A setting out of range.
        ModelUnavailableError: A model cannot be loaded.
    """
    seed = parse_seed(seed)
    count = _check_int("number of images", num_images, 1, MAX_IMAGES)
    steps = _check_int("inference steps", inference_steps, 1, MAX_INFERENCE_STEPS)
    if sampler not in SAMPLERS:
        raise StudioInputError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}.")
    samples = generate(source, seed, class_choice, count)
    pipeline = load_ddpm(ddpm_source)
    total = pipeline.scheduler.config.num_train_timesteps
    if steps > total:
        raise StudioInputError(f"inference steps must be a whole number from 1 to {total} for this DDPM; got {steps}.")
    ddpm_classes = parse_class(class_choice, pipeline.num_classes, ddpm_source) if pipeline.num_classes else [None]

    import torch

    request = ddpm_for_request(pipeline, sampler)
    started = time.perf_counter()
    ddpm_rows = [
        request(
            num_images=count,
            generator=torch.Generator(request.device).manual_seed(seed),
            class_labels=label,
            num_inference_steps=steps,
        ).images
        for label in ddpm_classes
    ]
    ddpm_seconds = time.perf_counter() - started
    ratio = ddpm_seconds / max(samples.seconds, 1e-9)
    conditional = (
        "one row per class"
        if len(ddpm_classes) > 1
        else ("unconditional" if ddpm_classes == [None] else f"class {ddpm_classes[0]}")
    )
    caption = (
        f"Seed {seed}. **GAN**: {sum(map(len, samples.rows))} images in {_seconds(samples.seconds)} (one generator "
        f"pass). **DDPM** ({sampler}, {steps} steps = {steps} U-Net passes, {conditional}): "
        f"{sum(map(len, ddpm_rows))} images in {_seconds(ddpm_seconds)}, {ratio:,.0f}x the GAN's time. DDPM: "
        f"{_describe_source(ddpm_source, _record_folder(ddpm_source, 'ddpm'))}. Times are wall-clock on this machine, "
        "shared with other requests."
    )
    return Comparison(
        samples.rows,
        ddpm_rows,
        samples.picture,
        image_sheet(ddpm_rows),
        samples.seconds,
        ddpm_seconds,
        caption,
    )


# --------------------------------------------------------------------------------------------------------------------
# Gradio handlers.
# --------------------------------------------------------------------------------------------------------------------


def _user_error(error: StudioInputError | ModelUnavailableError) -> gr.Error:
    """The message a user sees (escaped: Gradio renders it as HTML, and ``<dir>`` would become an invisible tag)."""
    if isinstance(error, ModelUnavailableError):
        return gr.Error(html.escape(str(error), quote=False), title="Model unavailable", print_exception=False)
    return gr.Error(html.escape(str(error), quote=False), title="Cannot use these settings", print_exception=False)


def save_png(picture: Any, name: str) -> str:
    """``picture`` written for Gradio to serve (lossless, and safe under concurrent identical answers)."""
    from hfdl.spaces import save_png as save

    return save(picture, demo.GRADIO_CACHE, name)


def generate_handler(
    model: str | None, custom_model: str | None, seed: Any, class_choice: Any, num_images: Any
) -> tuple[str, str]:
    """Gradio handler: (the samples picture, caption)."""
    try:
        result = generate(choose_source(model, custom_model), seed, class_choice, num_images)
    except (StudioInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    return save_png(result.picture, "samples"), result.caption


def walk_handler(
    model: str | None,
    custom_model: str | None,
    seed: Any,
    end_seed: Any,
    class_choice: Any,
    frames: Any,
    interpolation: str,
) -> tuple[str, str, str]:
    """Gradio handler: (the strip, the GIF, caption)."""
    from hfdl.spaces import save_gif

    try:
        result = walk(choose_source(model, custom_model), seed, end_seed, class_choice, frames, interpolation)
    except (StudioInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    gif = save_gif(result.gif_frames, demo.GRADIO_CACHE, "walk", duration_ms=GIF_FRAME_MS)
    return save_png(result.strip, "walk_strip"), gif, result.caption


def compare_handler(
    model: str | None,
    custom_model: str | None,
    ddpm: str | None,
    custom_ddpm: str | None,
    seed: Any,
    class_choice: Any,
    num_images: Any,
    inference_steps: Any,
    sampler: str,
) -> tuple[str, str, str]:
    """Gradio handler: (the GAN's picture, the DDPM's picture, caption with both times)."""
    try:
        result = compare(
            choose_source(model, custom_model),
            choose_source(ddpm, custom_ddpm, "DDPM"),
            seed,
            class_choice,
            num_images,
            inference_steps,
            sampler,
        )
    except (StudioInputError, ModelUnavailableError) as error:
        raise _user_error(error) from error
    return save_png(result.gan_picture, "gan_samples"), save_png(result.ddpm_picture, "ddpm_samples"), result.caption


def settings_for(model: str | None, custom_model: str | None = None) -> Any:
    """Fit the class list to the chosen GAN (read from its config.json; no torch)."""
    source = (custom_model or "").strip() or (model or "").strip()
    classes = model_classes(source)
    if classes is None:
        return gr.skip()
    return gr.Dropdown(choices=class_choices(classes), value=class_choices(classes)[0][1], interactive=classes > 0)


def refresh_models() -> tuple[Any, Any]:
    """Look for trained models again when the page loads: a model trained since the start shows up."""
    gans, ddpms = model_choices(), ddpm_choices()
    return gr.Dropdown(choices=gans, value=gans[0][1]), gr.Dropdown(choices=ddpms, value=ddpms[0][1])


# --------------------------------------------------------------------------------------------------------------------
# UI (built at import; nothing is loaded until the first click).
# --------------------------------------------------------------------------------------------------------------------


DESCRIPTION = """\
# 🎲 GAN studio
Draw samples from a **DCGAN** or a **conditional GAN** (pick a seed, a class or all of them, how many), walk through
its noise from one seed to another, and set it beside a **denoising diffusion model** (DDPM) from the same seed, with
the time each took. Models: [hfdl](https://github.com/hfdl/hfdl)'s GAN (Goodfellow et al., 2014; Radford et al.,
2016; Mirza & Osindero, 2014) and diffusers' DDPM (Ho et al., 2020), *Deep Learning Mastery* chapter 8.
"""


def build_demo() -> gr.Blocks:
    """The interface, with the model lists as :func:`configure` and the environment say now."""
    gans, ddpms = model_choices(), ddpm_choices()
    classes = model_classes(gans[0][1])
    first_classes = class_choices(classes if classes is not None else 0)
    with gr.Blocks(title="hfdl GAN studio", delete_cache=(CACHE_MAX_AGE_S, CACHE_MAX_AGE_S)) as blocks:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            model = gr.Dropdown(gans, value=gans[0][1], label="GAN", scale=2)
            custom_model = gr.Textbox(label="...or a GAN folder / Hub id", placeholder="outputs/cgan-mnist/final")
        with gr.Row():
            seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
            class_choice = gr.Dropdown(
                first_classes, value=first_classes[0][1], label="Class", interactive=bool(classes)
            )
            num_images = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Number of images (per class)")
        with gr.Tabs():
            with gr.Tab("Samples"):
                generate_button = gr.Button("Generate", variant="primary")
                samples = gr.Image(label="Samples (one row per class)", interactive=False)
                samples_caption = gr.Markdown()
            with gr.Tab("Fixed-noise walk"):
                with gr.Row():
                    end_seed = gr.Number(value=1, precision=0, minimum=0, maximum=MAX_SEED, label="Second seed")
                    frames = gr.Slider(MIN_FRAMES, MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="Frames")
                    interpolation = gr.Radio(list(INTERPOLATIONS), value="spherical", label="Path")
                walk_button = gr.Button("Walk", variant="primary")
                strip = gr.Image(label="Frames, first seed to second", interactive=False)
                animation = gr.Image(label="The walk as a GIF (there and back)", interactive=False)
                walk_caption = gr.Markdown()
            with gr.Tab("GAN vs DDPM"):
                with gr.Row():
                    ddpm = gr.Dropdown(ddpms, value=ddpms[0][1], label="DDPM", scale=2)
                    custom_ddpm = gr.Textbox(label="...or a DDPM pipeline folder", placeholder="outputs/ddpm/pipeline")
                with gr.Row():
                    inference_steps = gr.Slider(
                        1, MAX_INFERENCE_STEPS, value=DEFAULT_INFERENCE_STEPS, step=1, label="DDPM inference steps"
                    )
                    sampler = gr.Radio(list(SAMPLERS), value="ddpm", label="DDPM sampler")
                compare_button = gr.Button("Generate both", variant="primary")
                with gr.Row():
                    gan_picture = gr.Image(label="GAN", interactive=False)
                    ddpm_picture = gr.Image(label="DDPM", interactive=False)
                compare_caption = gr.Markdown()

        # preprocess=False: the handlers get the values as sent and check them themselves, so that a class, a count
        # or a seed out of range is answered with the setting's name and what this model allows (Gradio's own
        # checks say only "Value 0 is less than minimum value 1", or refuse a class the list does not show yet).
        generate_button.click(
            generate_handler,
            inputs=[model, custom_model, seed, class_choice, num_images],
            outputs=[samples, samples_caption],
            api_name="generate",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,
        )
        walk_button.click(
            walk_handler,
            inputs=[model, custom_model, seed, end_seed, class_choice, frames, interpolation],
            outputs=[strip, animation, walk_caption],
            api_name="walk",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,
        )
        compare_button.click(
            compare_handler,
            inputs=[model, custom_model, ddpm, custom_ddpm, seed, class_choice, num_images, inference_steps, sampler],
            outputs=[gan_picture, ddpm_picture, compare_caption],
            api_name="compare",
            concurrency_limit=CONCURRENCY_LIMIT,
            preprocess=False,
        )
        for changed in (model.change, custom_model.submit):
            changed(
                settings_for,
                inputs=[model, custom_model],
                outputs=class_choice,
                api_visibility="private",
                queue=False,
            )
        blocks.load(refresh_models, outputs=[model, ddpm], api_visibility="private", queue=False)
    return blocks


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, rebuild the UI with its model lists and launch the server (blocking)."""
    global demo
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="GAN folder or Hub id offered first (env HFDL_MODEL)")
    parser.add_argument("--ddpm", default=None, help="DDPM pipeline folder or Hub id offered first (env HFDL_DDPM)")
    parser.add_argument("--outputs", nargs="+", default=None, help="folders searched for trained models (HFDL_OUTPUTS)")
    parser.add_argument("--cache-dir", default=None, help="where the digits models are trained into (HFDL_SPACE_CACHE)")
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
    configure(model=args.model, ddpm=args.ddpm, outputs=args.outputs, cache_dir=args.cache_dir)
    demo = build_demo()
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True)
    offered = ", ".join(value for _, value in model_choices() + ddpm_choices())
    print(f"GAN studio on {demo.local_url} (models: {offered})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
