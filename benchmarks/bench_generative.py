"""MNIST-10k benchmark of the generative family: measured samples and representations, not just pictures.

    nice python benchmarks/bench_generative.py                                # every section: one to two hours on 2 cores
    nice python benchmarks/bench_generative.py --only classifier,ae --threads 1

Data: as the other MNIST benchmarks, the 10,000 MNIST *test* images (the 60k training set is not available offline),
split by :func:`hfdl.data.load_image_classification_dataset` into a stratified 8,000 train / 2,000 test split with
seed 0; the numbers are not comparable with results on the official 60k/10k split.

Sections (``--only``, comma-separated; the classifier is trained whenever a later section needs it):

* ``classifier`` — the held-out feature classifier: ``recipes/train_image_classifier.py`` trains LeNet-5
  (``lenet5-modern``, dropout 0.2, 15 epochs) on the 8k train split; its test accuracy is reported. The recipe keeps
  the epoch with the best test accuracy (``best/``), which picks on the test split: the accuracy is slightly
  optimistic, the features are unaffected. Then the measures that need no generative model: the Frechet distance
  (FD) floor, i.e. real test images against the train split in that classifier's feature space, and K-Means
  (10 clusters) NMI/ARI on raw pixels and on a PCA of them.
* ``ae``, ``vae``, ``vae2d`` — ``recipes/train_autoencoder.py`` with ``ae-mnist``, ``vae-mnist``, ``vae-mnist-2d``:
  test reconstruction error, K-Means on the latents (the VAE's posterior means); for the VAEs the ELBO and the IWAE
  bound (``model.iwae_bound``, k = ``--iwae_samples``) of the test log-likelihood in nats, and FD / class entropy of
  ``--num_samples`` samples. **Binarisation**: the Bernoulli VAEs train with dynamic binarisation (``--binarize
  dynamic``: every batch draws x ~ Bernoulli(pixel intensity) afresh) and are scored on one fixed binarisation of the
  test split drawn with seed 0 (``torch.bernoulli`` with a seeded generator), the usual protocol for MNIST NLLs.
* ``gan``, ``dcgan``, ``cgan`` — ``recipes/train_gan.py`` with ``gan-mnist``, ``dcgan-mnist``, ``cgan-mnist``
  (the recipe's mode-collapse monitor uses the classifier): FD, class histogram and its entropy (target for DCGAN:
  >= 0.95 log 10), and for the cGAN the fraction of samples classified as the requested class (100 per class;
  target >= 90 %).
* ``ddpm`` — ``recipes/train_ddpm.py`` (EMA 0.999), sampled through ``hfdl.pipelines.DDPMPipeline``: FD and
  entropy. Sampling runs the U-Net once per image and reverse step: on one loaded CPU thread 200 images x 20 steps
  took 38 s, so 1,000 images with the full 1,000-step chain would take hours. The default samples with 100 evenly
  spaced steps of the 1,000 (``--ddpm_num_inference_steps``, recorded in the results; 0 = the pipeline's own).

Every FD compares ``--num_samples`` images with the statistics of the 8k train split; FD is biased upwards for small
sample sizes, so the floor is computed with the same number of real test images (and with all 2,000 for reference).
Recipes run as subprocesses (``python recipes/...``, one process: on two cores a second process only competes), with
``--threads`` torch threads; their seconds per epoch come from the recipe's own ``all_results.json``. The trained
models stay in ``--work_dir`` (``--reuse`` scores them again without training). Also writes
``docs/representations.png`` when the ``ae`` section runs: PCA and t-SNE of the test pixels beside the autoencoder's
latents (t-SNE of them) and, when ``vae2d`` ran, the 2-D VAE's latent means as they are.

Writes ``benchmarks/results/generative.json`` (sections run now replace those of an earlier run; the others are
kept) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # MNIST comes from --data_dir; nothing may reach the Hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]

import hfdl  # noqa: E402  (registers the hfdl classes with the Auto classes)
from hfdl.data import load_image_classification_dataset  # noqa: E402
from hfdl.evaluation import (  # noqa: E402
    ClassifierFeatureExtractor,
    embed_2d,
    frechet_distance,
    generative_report,
    kmeans_scores,
    plot_embeddings,
)

#: Each section: the recipe that trains it, the preset, and the recipe flags beyond the common ones (dataset, seed,
#: epochs, output folder). ``--section_args NAME="..."`` replaces the extra flags, ``--epochs NAME=N`` the epochs.
VAE_ARGS = ["--binarize", "dynamic", "--kl_warmup_steps", "2000"]
SECTIONS: dict[str, dict[str, Any]] = {
    "classifier": {
        "recipe": "train_image_classifier.py",
        "model": "lenet5-modern",
        "epochs": 15,
        "args": ["--config_overrides", '{"dropout": 0.2}'],
    },
    "ae": {"recipe": "train_autoencoder.py", "model": "ae-mnist", "epochs": 20, "args": []},
    "vae": {"recipe": "train_autoencoder.py", "model": "vae-mnist", "epochs": 40, "args": VAE_ARGS},
    "vae2d": {"recipe": "train_autoencoder.py", "model": "vae-mnist-2d", "epochs": 40, "args": VAE_ARGS},
    "gan": {"recipe": "train_gan.py", "model": "gan-mnist", "epochs": 50, "args": []},
    # The same MLP GAN with a spectrally normalised discriminator (Miyato et al., 2018): the plain one collapses.
    "gan_sn": {
        "recipe": "train_gan.py",
        "model": "gan-mnist",
        "label": "gan-mnist + spectral norm",
        "epochs": 50,
        "args": ["--spectral_norm"],
    },
    "dcgan": {"recipe": "train_gan.py", "model": "dcgan-mnist", "epochs": 20, "args": []},
    "cgan": {"recipe": "train_gan.py", "model": "cgan-mnist", "epochs": 30, "args": []},
    "ddpm": {"recipe": "train_ddpm.py", "model": None, "epochs": 20, "args": ["--ema_decay", "0.999"]},
}
GAN_SECTIONS = ("gan", "gan_sn", "dcgan", "cgan")
VAE_SECTIONS = ("vae", "vae2d")
CGAN_ACCURACY_TARGET = 0.90
DCGAN_ENTROPY_TARGET = 0.95  # x log(10)
NUM_CLASSES = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(REPO_ROOT.parent / "shared" / "data" / "mnist-10k"))
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"Sections, comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument(
        "--epochs", action="append", default=[], metavar="SECTION=N", help="Override a section's epochs"
    )
    parser.add_argument(
        "--section_args", action="append", default=[], metavar='SECTION="FLAGS"', help="Replace a section's extra flags"
    )
    parser.add_argument("--seed", type=int, default=0, help="Training, sampling and binarisation seed")
    parser.add_argument("--num_samples", type=int, default=1000, help="Generated images per model (and real floor)")
    parser.add_argument("--ddpm_num_samples", type=int, help="Fewer DDPM samples (slow on CPU); default --num_samples")
    parser.add_argument(
        "--ddpm_num_inference_steps",
        type=int,
        default=100,
        help="Reverse steps per DDPM sample (0: the pipeline's own)",
    )
    parser.add_argument("--iwae_samples", type=int, default=1000, help="k of the IWAE bound")
    parser.add_argument("--nll_batch_size", type=int, default=25, help="Test images per iwae_bound call")
    parser.add_argument("--threads", type=int, default=2, help="torch threads here and in the recipes (2 cores)")
    parser.add_argument("--work_dir", default=str(REPO_ROOT / "outputs" / "bench_generative"))
    parser.add_argument("--reuse", action="store_true", help="Score models already trained in --work_dir")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "generative.json"))
    parser.add_argument("--figure", default=str(REPO_ROOT / "docs" / "representations.png"))
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        parser.error(f"--only: unknown section(s) {unknown or args.only!r}; allowed: {', '.join(SECTIONS)}.")
    args.epoch_overrides = {}
    for item in args.epochs:
        name, _, value = item.partition("=")
        if name not in SECTIONS or not value.isdigit() or int(value) < 1:
            parser.error(f"--epochs expects SECTION=N with SECTION in {', '.join(SECTIONS)} and N >= 1, got {item!r}.")
        args.epoch_overrides[name] = int(value)
    args.extra_args = {}
    for item in args.section_args:
        name, _, value = item.partition("=")
        if name not in SECTIONS:
            parser.error(f'--section_args expects SECTION="FLAGS" with SECTION in {", ".join(SECTIONS)}, got {item!r}.')
        args.extra_args[name] = shlex.split(value)
    if args.num_samples < 2 or args.iwae_samples < 1 or args.threads < 1:
        parser.error("--num_samples must be >= 2, --iwae_samples and --threads >= 1.")
    return args


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_mnist(data_dir: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The 8k/2k split as ``{"train": (images, labels), "test": ...}``: float (N, 1, 28, 28) in [0, 1], int64."""
    splits = load_image_classification_dataset(data_dir, test_size=0.2, seed=0)
    tensors = {}
    for name, split in splits.items():
        images = np.stack([np.asarray(image.convert("L"), dtype=np.float32) for image in split["image"]]) / 255.0
        tensors[name] = (torch.from_numpy(images)[:, None], torch.tensor(split["label"], dtype=torch.int64))
    return tensors


# ---------------------------------------------------------------------------------------------------------------
# Recipe runs
# ---------------------------------------------------------------------------------------------------------------


def recipe_argv(args: argparse.Namespace, name: str, output_dir: Path, classifier_dir: Path | None) -> list[str]:
    """The command line of one section's recipe run (also what the report quotes)."""
    section = SECTIONS[name]
    argv = [sys.executable, str(REPO_ROOT / "recipes" / section["recipe"])]
    if section["model"]:
        argv += ["--model", section["model"]]
    argv += [
        "--dataset", args.data_dir, "--num_epochs", str(args.epoch_overrides.get(name, section["epochs"])),
        "--seed", str(args.seed), "--report_to", "none", "--output_dir", str(output_dir),
    ]  # fmt: skip
    argv += args.extra_args.get(name, section["args"])
    if name in GAN_SECTIONS and classifier_dir is not None:
        argv += ["--monitor_classifier", str(classifier_dir)]
    return argv


def run_recipe(args: argparse.Namespace, name: str, classifier_dir: Path | None) -> dict[str, Any]:
    """Train one section's model by its recipe (or reuse the run in --work_dir); its folder and timings."""
    output_dir = Path(args.work_dir) / name
    argv = recipe_argv(args, name, output_dir, classifier_dir)
    reused = args.reuse and find_saved_model(output_dir) is not None
    wall = None
    if not reused:
        # The section's folder belongs to this benchmark: an earlier run's checkpoints must not mix with this one.
        shutil.rmtree(output_dir, ignore_errors=True)
        output_dir.mkdir(parents=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        log_path = output_dir.parent / f"{name}.log"
        print(f"[{name}] {shlex.join(argv)}  (output: {log_path})", flush=True)
        start = time.perf_counter()
        with log_path.open("w") as log:
            completed = subprocess.run(argv, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - start
        if completed.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"[{name}] the recipe failed (exit {completed.returncode}): {shlex.join(argv)}\n{tail}")
    model_dir = find_saved_model(output_dir)
    if model_dir is None:
        raise RuntimeError(f"[{name}] no saved model (config.json or model_index.json) under {output_dir}.")
    results_file = output_dir / "all_results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    epoch_seconds = results.get("train_epoch_seconds") or []
    per_epoch = results.get("train_seconds_per_epoch") or (statistics.median(epoch_seconds) if epoch_seconds else None)
    return {
        "command": shlex.join(
            ["python", *(os.path.relpath(a, REPO_ROOT) if os.path.isabs(a) else a for a in argv[1:])]
        ),
        "model_dir": str(model_dir),
        "reused_earlier_run": reused,
        "wall_seconds": wall,
        "train_seconds_per_epoch": per_epoch,
        "train_seconds_per_epoch_fastest": min(epoch_seconds) if epoch_seconds else None,
        "recipe_results": {k: v for k, v in results.items() if not isinstance(v, (list, dict))},
    }


def find_saved_model(output_dir: Path) -> Path | None:
    """Where a recipe saved its model: the first of final/, model/, pipeline/, the folder itself, best/."""
    for candidate in ("final", "model", "pipeline", ".", "best"):
        folder = output_dir / candidate
        if (folder / "config.json").is_file() or (folder / "model_index.json").is_file():
            return folder.resolve()
    return None


def load_model(model_dir: str) -> torch.nn.Module:
    from transformers import AutoModel

    return AutoModel.from_pretrained(model_dir).eval()


def file_digest(folder: str) -> str | None:
    weights = Path(folder) / "model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None


# ---------------------------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------------------------


class Context:
    """What every section's scoring shares: the data, the classifier, the reference statistics, the floors."""

    def __init__(self, args: argparse.Namespace, data: dict, extractor: ClassifierFeatureExtractor) -> None:
        self.args = args
        self.data = data
        self.extractor = extractor
        self.reference = extractor.statistics(data["train"][0])
        self._floors: dict[int, float] = {}

    def floor(self, num_samples: int) -> float:
        """FD of ``num_samples`` real test images (a seeded subset) against the train statistics."""
        if num_samples not in self._floors:
            images = self.data["test"][0]
            count = min(num_samples, images.shape[0])
            rows = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(self.args.seed))[:count]
            self._floors[num_samples] = frechet_distance(self.extractor.features(images[rows]), self.reference)
        return self._floors[num_samples]

    def sample_report(self, samples: torch.Tensor, requested: torch.Tensor | None = None) -> dict[str, Any]:
        report = generative_report(self.extractor, samples, self.reference, requested=requested)
        report["frechet_distance_real_floor"] = self.floor(samples.shape[0])
        return report


def latent_clustering(latents: torch.Tensor, labels: torch.Tensor, seed: int) -> dict[str, float]:
    return kmeans_scores(latents, labels, n_clusters=NUM_CLASSES, seed=seed)


def score_classifier(context: Context, run: dict[str, Any]) -> dict[str, Any]:
    args, (train_images, _), (test_images, test_labels) = context.args, context.data["train"], context.data["test"]
    predictions = context.extractor.predict(test_images)
    pixels_test = test_images.flatten(1).numpy()
    from sklearn.decomposition import PCA

    pca = PCA(n_components=32, random_state=args.seed).fit(train_images.flatten(1).numpy())
    return {
        **run,
        "test_accuracy": float((predictions == test_labels).float().mean()),
        "feature_dim": int(context.reference.dim),
        "frechet_distance_test_2000_vs_train": frechet_distance(
            context.extractor.features(test_images), context.reference
        ),
        f"frechet_distance_test_{args.num_samples}_vs_train": context.floor(args.num_samples),
        "kmeans_test_pixels": latent_clustering(torch.from_numpy(pixels_test), test_labels, args.seed),
        "kmeans_test_pca32": latent_clustering(torch.from_numpy(pca.transform(pixels_test)), test_labels, args.seed),
    }


def score_autoencoder(context: Context, name: str, run: dict[str, Any]) -> dict[str, Any]:
    args, (test_images, test_labels) = context.args, context.data["test"]
    model = load_model(run["model_dir"])
    result: dict[str, Any] = {**run, "parameters": sum(p.numel() for p in model.parameters())}
    with torch.no_grad():
        if name == "ae":
            latents = model.encode(test_images)
            reconstruction = model.decode(latents)
        else:
            latents, _ = model.encode(test_images)  # posterior means
            reconstruction = model.decode(latents)
        clipped = reconstruction.clamp(1e-6, 1 - 1e-6)
        bce = -(test_images * clipped.log() + (1 - test_images) * (1 - clipped).log()).flatten(1).sum(1)
        result["test_reconstruction_mse_per_pixel"] = float(((reconstruction - test_images) ** 2).mean())
        result["test_reconstruction_bce_nats_per_image"] = float(bce.mean())
        result["latent_dim"] = int(latents.shape[1])
        result["kmeans_test_latents"] = latent_clustering(latents, test_labels, args.seed)
        if name in VAE_SECTIONS:
            result.update(score_vae(context, model))
    result["latents"] = latents  # for the figure; dropped before the JSON
    return result


def score_vae(context: Context, model: torch.nn.Module) -> dict[str, Any]:
    """ELBO and IWAE bound on one seeded binarisation of the test split, and the measures of generated samples."""
    args, (test_images, _) = context.args, context.data["test"]
    binarized = torch.bernoulli(test_images, generator=torch.Generator().manual_seed(args.seed))
    generator = torch.Generator().manual_seed(args.seed)
    elbo = torch.cat([model.elbo(batch, generator=generator) for batch in binarized.split(500)])
    accepts_chunk = "chunk_size" in inspect.signature(model.iwae_bound).parameters
    chunk = {"chunk_size": 250} if accepts_chunk else {}
    start = time.perf_counter()
    bounds = []
    for batch in binarized.split(args.nll_batch_size):
        bounds.append(model.iwae_bound(batch, num_samples=args.iwae_samples, generator=generator, **chunk))
    iwae_seconds = time.perf_counter() - start
    samples = model.sample(args.num_samples, generator=torch.Generator().manual_seed(args.seed))
    return {
        "binarisation": f"train: dynamic (x ~ Bernoulli(intensity) per batch); test: one fixed draw, seed {args.seed}",
        "test_elbo_nats": float(elbo.mean()),  # a lower bound on log p(x): negative
        "test_negative_elbo_nats": float(-elbo.mean()),  # an upper bound on the NLL, beside the IWAE one
        "test_nll_iwae_nats": float(-torch.cat(bounds).mean()),
        "iwae_samples": args.iwae_samples,
        "iwae_seconds": iwae_seconds,
        "samples": context.sample_report(samples),
    }


def score_gan(context: Context, name: str, run: dict[str, Any]) -> dict[str, Any]:
    args = context.args
    model = load_model(run["model_dir"])
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        if getattr(model.config, "num_classes", 0) > 0:
            requested = torch.arange(args.num_samples) % model.config.num_classes  # 100 of each class for 1,000
            samples = model.sample(args.num_samples, generator=generator, class_labels=requested)
        else:
            requested = None
            samples = model.sample(args.num_samples, generator=generator)
    report = context.sample_report(samples, requested=requested)
    result = {
        **run,
        "generator_parameters": sum(p.numel() for p in model.generator.parameters()),
        "discriminator_parameters": sum(p.numel() for p in model.discriminator.parameters()),
        "samples": report,
    }
    if name == "cgan":
        result["meets_accuracy_target"] = report["conditional_accuracy"] >= CGAN_ACCURACY_TARGET
    if name == "dcgan":
        result["meets_entropy_target"] = report["entropy_ratio"] >= DCGAN_ENTROPY_TARGET
    return result


def to_image_tensor(images: Any) -> torch.Tensor:
    """A pipeline's ``output_type="pt"``/``"np"`` images as float (N, C, H, W) in [0, 1]."""
    tensor = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if tensor.ndim == 3:
        tensor = tensor[:, None]
    if tensor.shape[1] not in (1, 3) and tensor.shape[-1] in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return tensor.float()


def score_ddpm(context: Context, run: dict[str, Any]) -> dict[str, Any]:
    from hfdl.pipelines import DDPMPipeline

    args = context.args
    pipeline = DDPMPipeline.from_pretrained(run["model_dir"])
    num_samples = args.ddpm_num_samples or args.num_samples
    steps = {"num_inference_steps": args.ddpm_num_inference_steps} if args.ddpm_num_inference_steps else {}
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    batches = []
    for count in [250] * (num_samples // 250) + ([num_samples % 250] if num_samples % 250 else []):
        output = pipeline(num_images=count, generator=generator, output_type="pt", **steps)
        batches.append(to_image_tensor(output.images))
    return {
        **run,
        "num_inference_steps": args.ddpm_num_inference_steps or "pipeline default",
        "sampling_seconds": time.perf_counter() - start,
        "samples": context.sample_report(torch.cat(batches)),
    }


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def representation_figure(context: Context, results: dict[str, Any], path: str) -> dict[str, Any]:
    """PCA and t-SNE of the test pixels, t-SNE of the AE latents, the 2-D VAE's latent means: one PNG."""
    seed, (test_images, test_labels) = context.args.seed, context.data["test"]
    pixels = test_images.flatten(1)
    panels = {
        "PCA of pixels": (embed_2d(pixels, "pca", seed=seed), test_labels),
        "t-SNE of pixels": (embed_2d(pixels, "tsne", seed=seed), test_labels),
        f"t-SNE of AE latents ({results['ae']['latent_dim']}-d)": (
            embed_2d(results["ae"]["latents"], "tsne", seed=seed),
            test_labels,
        ),
    }
    if "latents" in results.get("vae2d", {}):
        panels["2-D VAE latent means (no projection)"] = (results["vae2d"]["latents"], test_labels)
    plot_embeddings(panels, path, title="MNIST-10k test split (2,000 digits)")
    return {"path": os.path.relpath(path, REPO_ROOT), "panels": list(panels)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not Path(args.data_dir).is_dir():
        raise SystemExit(f"MNIST-10k not found at {args.data_dir}; pass --data_dir (folder of t10k-*-ubyte.gz files).")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = load_mnist(args.data_dir)

    # The classifier comes first: every other section measures in its feature space, and the GAN recipes monitor
    # mode collapse with it. Reused from --work_dir when only other sections are asked for.
    needs_training = "classifier" in args.sections or find_saved_model(Path(args.work_dir) / "classifier") is None
    classifier_args = argparse.Namespace(**{**vars(args), "reuse": args.reuse or not needs_training})
    classifier_run = run_recipe(classifier_args, "classifier", None)
    extractor = ClassifierFeatureExtractor.from_pretrained(classifier_run["model_dir"], batch_size=500)
    context = Context(args, data, extractor)
    classifier_dir = Path(classifier_run["model_dir"])

    results: dict[str, Any] = {}
    if "classifier" in args.sections:
        results["classifier"] = score_classifier(context, classifier_run)
    for name in args.sections:
        if name == "classifier":
            continue
        run = run_recipe(args, name, classifier_dir)
        if name in ("ae", *VAE_SECTIONS):
            results[name] = score_autoencoder(context, name, run)
        elif name in GAN_SECTIONS:
            results[name] = score_gan(context, name, run)
        else:
            results[name] = score_ddpm(context, run)
        results[name]["classifier_weights_sha256"] = file_digest(classifier_run["model_dir"])
        print(f"[{name}] scored", flush=True)
    if "ae" in results:
        results["representations_figure"] = representation_figure(context, results, args.figure)
    for section in results.values():
        section.pop("latents", None)

    output = Path(args.output)
    earlier = json.loads(output.read_text()) if output.is_file() else {}
    report = {
        "data": "MNIST t10k (10,000 images), stratified 8,000 train / 2,000 test, seed 0",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_end": os.getloadavg(),
        },
        "versions": {"torch": torch.__version__, "python": platform.python_version(), "hfdl": hfdl.__version__},
        "command": "python benchmarks/bench_generative.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "feature_classifier": {
            "model_dir": classifier_run["model_dir"],
            "weights_sha256": file_digest(classifier_run["model_dir"]),
            "feature_layer": f"input of model.classifier ({context.reference.dim} features), via a forward pre-hook",
        },
        "num_samples": args.num_samples,
        "sections": {**earlier.get("sections", {}), **results},
        "total_seconds": time.perf_counter() - started,
    }
    report["markdown"] = markdown_table(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report["markdown"])
    print(f"\nWrote {output}")
    return report


def _fmt(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    return "—" if value is None else f"{scale * value:.{digits}f}"


def markdown_table(report: dict[str, Any]) -> str:
    sections = report["sections"]
    lines = []
    classifier = sections.get("classifier")
    if classifier:
        n = report["num_samples"]
        lines += [
            f"Feature classifier: `{classifier['command']}` -> test accuracy "
            f"{100 * classifier['test_accuracy']:.2f} % (the recipe keeps its best epoch on the test split: epoch "
            f"{classifier['recipe_results'].get('best_epoch', 0):g} of {classifier['recipe_results'].get('epoch', 0):g}), "
            f"{classifier['feature_dim']} features. FD floor (real test "
            f"images vs train): {classifier[f'frechet_distance_test_{n}_vs_train']:.2f} ({n} images), "
            f"{classifier['frechet_distance_test_2000_vs_train']:.2f} (2,000).",
            "",
        ]
    lines += [
        "| model | FD (floor) | entropy / log 10 | cGAN accuracy % | test -ELBO / IWAE NLL, nats | recon. MSE | "
        "K-Means NMI / ARI | train s/epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if classifier:
        for key, label in (("kmeans_test_pixels", "raw pixels"), ("kmeans_test_pca32", "PCA (32 dims) of pixels")):
            scores = classifier[key]
            lines.append(f"| {label} | | | | | | {scores['nmi']:.3f} / {scores['ari']:.3f} | |")
    for name in SECTIONS:
        if name == "classifier" or name not in sections:
            continue
        section = sections[name]
        samples = section.get("samples", {})
        fd = (
            f"{_fmt(samples.get('frechet_distance'))} ({_fmt(samples.get('frechet_distance_real_floor'))})"
            if samples
            else ""
        )
        entropy = _fmt(samples.get("entropy_ratio"), 3) if samples else ""
        accuracy = _fmt(samples.get("conditional_accuracy"), 1, 100) if samples else ""
        nll = ""
        if "test_elbo_nats" in section:
            nll = f"{section['test_negative_elbo_nats']:.1f} / {section['test_nll_iwae_nats']:.1f}"
            nll += f" (k={section['iwae_samples']})"
        mse = _fmt(section.get("test_reconstruction_mse_per_pixel"), 4)
        kmeans = section.get("kmeans_test_latents")
        clustering = f"{kmeans['nmi']:.3f} / {kmeans['ari']:.3f}" if kmeans else ""
        seconds = _fmt(section.get("train_seconds_per_epoch"))
        model = SECTIONS[name].get("label") or SECTIONS[name]["model"] or name
        lines.append(f"| {model} | {fd} | {entropy} | {accuracy} | {nll} | {mse} | {clustering} | {seconds} |")
    targets = []
    if "cgan" in sections:
        ok = sections["cgan"]["meets_accuracy_target"]
        targets.append(f"cGAN accuracy >= {100 * CGAN_ACCURACY_TARGET:.0f} %: {'met' if ok else 'MISSED'}")
    if "dcgan" in sections:
        ok = sections["dcgan"]["meets_entropy_target"]
        targets.append(f"DCGAN entropy >= {DCGAN_ENTROPY_TARGET} log 10: {'met' if ok else 'MISSED'}")
    if targets:
        lines += ["", "; ".join(targets) + "."]
    if any(name in sections for name in VAE_SECTIONS):
        lines += [
            "",
            "VAE NLLs: Bernoulli decoder trained with dynamic binarisation, scored on one fixed binarisation of the "
            "test split (seed 0). For scale only (full 60k MNIST): Burda et al. report about 86.8 nats (k=1 VAE).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
