"""recipes/train_autoencoder.py and recipes/train_gan.py: they train (the loss falls, the grids are written, the
saved model reproduces the reported numbers), anneal the KL weight as documented, resume bit for bit (in-process and
after kill -9), and keep identical weights on both ranks of a 2-process DDP run; plus the helpers of
hfdl/generative_training.py."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

pytest.importorskip("accelerate")
pytest.importorskip("datasets")
pytest.importorskip("sklearn")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoImageProcessor, AutoModel  # noqa: E402

import hfdl  # noqa: E402  (registers the Auto classes)
from hfdl.generative_training import (  # noqa: E402
    FixedNoise,
    binarize,
    discriminator_loss,
    generator_loss,
    image_grid,
    kl_weight,
    load_image_tensors,
    step_generator,
)
from hfdl.recipes import train_autoencoder as ae_recipe  # noqa: E402
from hfdl.recipes import train_gan as gan_recipe  # noqa: E402
from hfdl.training import find_last_checkpoint  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Timings differ between runs; everything else a log or a result holds must not.
TIMING_KEYS = ("epoch_seconds", "train_seconds_per_epoch", "train_epoch_seconds")

#: Tiny models on the 8x8 digits: 128 training images in batches of 16 make 8 steps per epoch.
DATA = ["--max_train_samples", "128", "--max_eval_samples", "64", "--batch_size", "16", "--report_to", "none"]
GAN_DATA = DATA[:2] + DATA[4:]  # a GAN has no evaluation split
TINY_AE = ["--config_overrides", json.dumps({"image_size": 8, "hidden_sizes": [32], "latent_dim": 8})]
TINY_VAE = ["--config_overrides", json.dumps({"image_size": 8, "hidden_sizes": [32], "latent_dim": 4, "beta": 0.5})]
#: A tiny MLP GAN; with `cgan-mnist` (a conditional DCGAN) it is Mirza & Osindero's conditional MLP, fast on a CPU.
TINY_GAN = {
    "architecture": "mlp",
    "image_size": 8,
    "latent_dim": 8,
    "generator_hidden_sizes": [32],
    "discriminator_hidden_sizes": [32],
}


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def without_timings(entries: list[dict] | dict) -> list[dict] | dict:
    if isinstance(entries, dict):
        return {k: v for k, v in entries.items() if k not in TIMING_KEYS}
    return [without_timings(entry) for entry in entries]


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------------------------------------------
# hfdl/generative_training.py
# --------------------------------------------------------------------------------------------------------------


def test_kl_weight_ramps_linearly_from_zero_to_beta():
    assert [kl_weight(step, 4, 0.5) for step in range(7)] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert kl_weight(0, 0, 2.0) == kl_weight(100, 0, 2.0) == 2.0  # no warm-up: beta from the first step
    with pytest.raises(ValueError, match="warmup_steps >= 0"):
        kl_weight(3, -1, 1.0)


def test_gan_losses_are_the_one_sided_smoothed_bce_and_the_non_saturating_loss():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    # D: -[0.9 log s(r) + 0.1 log(1 - s(r))] on real, -log(1 - s(f)) on fake; the fake side is never smoothed.
    expected_real = -(0.9 * F.logsigmoid(real) + 0.1 * F.logsigmoid(-real)).mean()
    expected_fake = -F.logsigmoid(-fake).mean()
    assert discriminator_loss(real, fake, 0.9).item() == pytest.approx((expected_real + expected_fake).item(), rel=1e-6)
    # G: -log D(G(z)) = softplus(-logit), which keeps a gradient where D rejects the sample (logit << 0).
    assert generator_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item(), rel=1e-6)
    logit = torch.tensor([-8.0], requires_grad=True)
    generator_loss(logit).backward()
    assert logit.grad.abs().item() > 0.99  # the minimax loss log(1 - s(l)) would give ~3e-4 here


def test_step_generators_differ_by_step_and_process_and_repeat_exactly():
    def draw(*keys):
        return torch.randn(5, generator=step_generator(*keys))

    assert torch.equal(draw(0, 11, 3, 1), draw(0, 11, 3, 1))
    for other in [(0, 11, 4, 1), (0, 11, 3, 0), (0, 12, 3, 1), (1, 11, 3, 1)]:
        assert not torch.equal(draw(0, 11, 3, 1), draw(*other))
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    draw(0, 11, 3, 1)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator (dropout) is left alone


def test_binarize_draws_bernoulli_pixels_and_refuses_values_outside_0_1():
    probabilities = torch.tensor([0.0, 1.0, 0.25]).repeat(20000, 1)
    binary = binarize(probabilities, torch.Generator().manual_seed(0))
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert binary[:, 0].sum() == 0 and binary[:, 1].sum() == 20000
    assert binary[:, 2].mean().item() == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(torch.tensor([-0.5, 0.5]))


def test_image_grid_tiles_images_in_order_and_enlarges_tiny_ones():
    images = torch.stack([torch.full((1, 8, 8), value) for value in (0.0, 0.5, 1.0)])
    grid = image_grid(images, nrow=2, padding=2)  # 8x8 -> 32x32 cells (x4), 2 columns, 2 rows
    assert grid.mode == "L" and grid.size == (2 + 2 * 34, 2 + 2 * 34)
    pixels = torch.tensor(list(grid.getdata())).view(grid.size[1], grid.size[0])
    assert pixels[2, 2] == 0 and pixels[2, 36] == 128 and pixels[36, 2] == 255 and pixels[0, 0] == 255
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        image_grid(torch.zeros(2, 8, 8))


def test_fixed_noise_is_seeded_cycles_classes_and_round_trips_through_its_state():
    model = hfdl.create_model("cgan-mnist", **TINY_GAN)
    noise = FixedNoise.draw(model, 25, seed=3, num_classes=10)
    again = FixedNoise.draw(model, 25, seed=3, num_classes=10)
    assert noise.latents.shape == (25, 8) and torch.equal(noise.latents, again.latents)
    assert noise.class_labels.tolist() == [i % 10 for i in range(25)]
    other = FixedNoise.draw(model, 25, seed=4)
    assert not torch.equal(other.latents, noise.latents) and other.class_labels is None
    other.load_state_dict(noise.state_dict())
    assert torch.equal(other.latents, noise.latents) and torch.equal(other.class_labels, noise.class_labels)


# --------------------------------------------------------------------------------------------------------------
# recipes/train_autoencoder.py
# --------------------------------------------------------------------------------------------------------------


def test_autoencoder_recipe_trains_and_its_saved_model_reproduces_the_eval(tmp_path):
    argv = ["--model", "denoising-ae-mnist", *TINY_AE, *DATA, "--num_epochs", "4", "--learning_rate", "3e-3"]
    results = ae_recipe.main(argv + ["--output_dir", str(tmp_path), "--logging_steps", "4"])

    log = read_log(tmp_path)
    train, evals = [e for e in log if "loss" in e], [e for e in log if "eval_mse" in e]
    assert [e["step"] for e in train] == list(range(4, 33, 4))
    assert train[-1]["loss"] < 0.9 * train[0]["loss"]  # BCE per pixel, from ~0.69
    assert [e["step"] for e in evals] == [8, 16, 24, 32] and all(e["epoch_seconds"] > 0 for e in evals)
    assert evals[-1]["eval_mse"] < evals[0]["eval_mse"]
    assert results["train_steps"] == 32 and results["eval_samples"] == 64
    assert results["eval_mse_per_pixel"] == pytest.approx(results["eval_mse"] / 64)
    assert 0 < results["eval_denoising_mse"] and results["train_seconds_per_epoch"] > 0
    assert json.loads((tmp_path / "all_results.json").read_text()) == json.loads(json.dumps(results))
    assert is_png(tmp_path / "reconstructions.png") and is_png(tmp_path / "grids" / "reconstructions_epoch_004.png")
    assert not (tmp_path / "samples.png").exists()  # an autoencoder has no prior to sample

    # final/ loads through the Auto classes; its processor scales to [0, 1]; it reproduces the reported errors.
    model = AutoModel.from_pretrained(tmp_path / "final").eval()
    processor = AutoImageProcessor.from_pretrained(tmp_path / "final")
    assert (processor.image_mean, processor.image_std, processor.size) == (0.0, 1.0, 8)
    _, test, _ = load_image_tensors("digits", processor, max_train_samples=128, max_eval_samples=64)
    images = test["pixel_values"]
    assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.9
    with torch.no_grad():
        reconstruction = model(pixel_values=images).reconstruction
    mse = (reconstruction - images).pow(2).flatten(1).sum(1).mean().item()
    bce = F.binary_cross_entropy(reconstruction, images, reduction="none").flatten(1).sum(1).mean().item()
    assert mse == pytest.approx(results["eval_mse"], rel=1e-5)
    assert bce == pytest.approx(results["eval_bce"], rel=1e-5)
    assert "mse" in (tmp_path / "final" / "README.md").read_text()


def test_vae_recipe_anneals_the_kl_weight_binarizes_and_reports_elbo_and_iwae(tmp_path):
    argv = ["--model", "vae-mnist", *TINY_VAE, *DATA, "--num_epochs", "3", "--learning_rate", "3e-3"]
    argv += ["--binarize", "dynamic", "--kl_warmup_steps", "6", "--iwae_samples", "64", "--logging_steps", "1"]
    results = ae_recipe.main(argv + ["--output_dir", str(tmp_path)])

    log = read_log(tmp_path)
    train = [e for e in log if "loss" in e]
    # The entry of step s is logged after the update that used step s - 1's weight: beta * min(1, (s - 1) / 6).
    assert [e["kl_weight"] for e in train[:8]] == [0.0, 0.5 / 6, 1 / 6, 0.25, 2 / 6, 2.5 / 6, 0.5, 0.5]
    assert [e["kl_weight"] for e in train[8:]] == [0.5] * 16
    mean = [sum(e["loss"] for e in train[i : i + 4]) / 4 for i in (8, 20)]  # after the warm-up: the same objective
    assert mean[1] < mean[0]
    evals = [e for e in log if "eval_elbo" in e]
    assert evals[-1]["eval_elbo"] > evals[0]["eval_elbo"]  # in nats per image, higher is better
    assert results["eval_elbo"] < 0 < results["eval_kl"]
    # k = 64 importance samples give a tighter bound than one-sample ELBO: -log p(x) <= -ELBO.
    assert 0 < results["eval_iwae_nll"] < -results["eval_elbo"]
    assert results["binarize"] == "dynamic"
    assert is_png(tmp_path / "samples.png") and is_png(tmp_path / "grids" / "samples_epoch_003.png")
    card = (tmp_path / "final" / "README.md").read_text()
    assert "binarisation dynamic" in card and "KL warm-up 6 steps" in card and "iwae_nll" in card


def test_binarization_static_fixes_the_training_set_and_any_mode_binarizes_the_test_split_once(tmp_path):
    import accelerate

    accelerator = accelerate.Accelerator(cpu=True)
    processor = ae_recipe.build_model(ae_recipe.parse_args(["--model", "vae-mnist", *TINY_VAE]))[1]

    def tensors(mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        args = ae_recipe.parse_args([*DATA, "--binarize", mode])
        train, test = ae_recipe.get_dataloaders(accelerator, args, processor)
        return train.dataset.tensors["pixel_values"], test.dataset.tensors["pixel_values"]

    (grey_train, grey_test), (dynamic_train, dynamic_test), (static_train, static_test) = map(
        tensors, ("none", "dynamic", "static")
    )
    assert torch.equal(dynamic_train, grey_train) and not torch.equal(dynamic_test, grey_test)
    for binary in (dynamic_test, static_train, static_test):
        assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(dynamic_test, static_test)  # the same fixed draw of the test split
    assert torch.equal(tensors("static")[0], static_train)  # a fixed draw of the training split too
    # A Bernoulli draw keeps each image's ink on average.
    assert static_train.mean().item() == pytest.approx(grey_train.mean().item(), abs=0.01)


def test_autoencoder_recipe_resumes_mid_epoch_bit_for_bit(tmp_path):
    """A VAE with dynamic binarisation and KL annealing: the global generator (z), the per-step binarisation and
    the warm-up all continue where the checkpoint left them."""
    common = ["--model", "vae-mnist", *TINY_VAE, *DATA, "--num_epochs", "3", "--binarize", "dynamic"]
    common += ["--kl_warmup_steps", "12", "--checkpointing_steps", "5", "--checkpoints_total_limit", "10"]
    common += ["--logging_steps", "3"]
    full = ae_recipe.main(common + ["--output_dir", str(tmp_path / "full")])
    checkpoint = tmp_path / "full" / "checkpoints" / "checkpoint_1"  # step 10, in the middle of epoch 2
    assert json.loads((checkpoint / "trainer_state.json").read_text())["completed_steps"] == 10
    resumed = ae_recipe.main(
        common + ["--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)]
    )
    assert without_timings(resumed) == {**without_timings(full), "model_dir": str(tmp_path / "resumed" / "final")}
    assert len(resumed["train_epoch_seconds"]) == 2
    assert without_timings(read_log(tmp_path / "resumed")) == without_timings(read_log(tmp_path / "full"))
    for relative in ("final/model.safetensors", "reconstructions.png", "samples.png"):
        assert (tmp_path / "resumed" / relative).read_bytes() == (tmp_path / "full" / relative).read_bytes()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--model", "lenet5"], "is an hfdl-lenet5 model; this recipe trains hfdl-autoencoder, hfdl-vae"),
        (["--model", "ae-mnist", "--kl_warmup_steps", "10"], "are for VAEs"),
        (["--model", "./no/such/folder"], "neither an hfdl preset nor an existing folder"),
        (["--config_overrides", "[1]"], "must be a JSON object"),
        (["--config_overrides", '{"latent_dim": 0}'], "latent_dim"),
    ],
)
def test_autoencoder_recipe_refuses_bad_arguments_clearly(tmp_path, argv, match):
    with pytest.raises(ValueError, match=match):
        ae_recipe.main(["--output_dir", str(tmp_path), "--max_steps", "1", "--report_to", "none", *argv])


@pytest.mark.parametrize(
    "module, argv, message",
    [
        (ae_recipe, ["--binarize", "sometimes"], "invalid choice: 'sometimes'"),
        (ae_recipe, ["--kl_warmup_steps", "-1"], "expected a non-negative integer, got -1"),
        (ae_recipe, ["--checkpoints_total_limit", "1"], "must be at least 2"),
        (gan_recipe, ["--label_smoothing", "1.0"], "--label_smoothing must be in [0, 1)"),
        (gan_recipe, ["--adam_beta1", "1.5"], "--adam_beta1 must be in [0, 1)"),
        (gan_recipe, ["--sample_every", "0"], "expected a positive integer, got 0"),
        (gan_recipe, ["--overwrite_output_dir", "--resume_from_checkpoint", "latest"], "cannot be combined"),
    ],
)
def test_bad_command_lines_exit_with_usage(module, argv, message, capsys):
    with pytest.raises(SystemExit):
        module.parse_args(argv)
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# recipes/train_gan.py
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_classifier(tmp_path_factory) -> Path:
    """A small MLP classifier of the 8x8 digits, trained for a few seconds by the image recipe: the monitor's."""
    from hfdl.recipes import train_image_classifier

    output_dir = tmp_path_factory.mktemp("classifier")
    argv = ["--model", "mlp-digits", "--num_epochs", "3", "--max_train_samples", "512", "--report_to", "none"]
    train_image_classifier.main(argv + ["--output_dir", str(output_dir)])
    return output_dir / "best"


def test_cgan_recipe_trains_with_smoothing_spectral_norm_grids_and_the_mode_collapse_monitor(
    tmp_path, digit_classifier
):
    from hfdl.evaluation import ClassifierFeatureExtractor, generative_report

    argv = ["--model", "cgan-mnist", "--config_overrides", json.dumps(TINY_GAN), *GAN_DATA, "--num_epochs", "2"]
    argv += ["--label_smoothing", "0.1", "--spectral_norm", "--sample_every", "3", "--logging_steps", "4"]
    argv += ["--monitor_classifier", str(digit_classifier), "--monitor_samples", "200", "--num_grid_samples", "30"]
    results = gan_recipe.main(argv + ["--output_dir", str(tmp_path)])

    log = read_log(tmp_path)
    steps = [e for e in log if "d_loss" in e]
    epochs = [e for e in log if "epoch_d_loss" in e]
    assert [e["step"] for e in steps] == [4, 8, 12, 16] and [e["step"] for e in epochs] == [8, 16]
    for entry in steps + epochs:
        values = [v for k, v in entry.items() if k.startswith(("d_", "g_", "epoch_d", "epoch_g"))]
        assert len(values) == 4 and all(math.isfinite(v) for v in values)
    for entry in epochs:
        assert 0 < entry["epoch_d_real"] < 1 and 0 < entry["epoch_d_fake"] < 1 and entry["epoch_seconds"] > 0
        assert 0 <= entry["mode_entropy"] <= math.log(10) + 1e-9 and sum(entry["mode_histogram"]) == 200
        assert entry["mode_entropy_ratio"] == pytest.approx(entry["mode_entropy"] / math.log(10))
        assert 0 <= entry["requested_class_accuracy"] <= 1
    # The epoch means are the means of the step windows (two windows of four steps per epoch).
    assert epochs[0]["epoch_g_loss"] == pytest.approx((steps[0]["g_loss"] + steps[1]["g_loss"]) / 2, rel=1e-6)

    # Grids every 3 steps and at each epoch's end; a conditional grid shows one class per column.
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        f"step_{step:06d}.png" for step in (3, 6, 8, 9, 12, 15, 16)
    ]
    assert is_png(tmp_path / "samples.png")
    assert (tmp_path / "samples.png").read_bytes() == (tmp_path / "samples" / "step_000016.png").read_bytes()

    # final/ is the GANModel, spectral norm on; its generator reproduces the monitor's last measurement.
    model = AutoModel.from_pretrained(tmp_path / "final").eval()
    assert type(model).__name__ == "GANModel" and model.config.spectral_norm and model.config.num_classes == 10
    noise = FixedNoise.draw(model, 200, seed=0, num_classes=10)
    with torch.no_grad():
        images = (model.generator(noise.latents, noise.class_labels) + 1) / 2
    report = generative_report(
        ClassifierFeatureExtractor.from_pretrained(digit_classifier), images, requested=noise.class_labels
    )
    assert report["class_histogram"] == results["mode_histogram"] == epochs[-1]["mode_histogram"]
    assert report["conditional_accuracy"] == pytest.approx(results["requested_class_accuracy"])
    assert model.sample(4, generator=torch.Generator().manual_seed(0), class_labels=3).shape == (4, 1, 8, 8)


def test_dcgan_recipe_runs_on_digits_resized_to_28(tmp_path):
    overrides = {"latent_dim": 8, "generator_channels": 4, "discriminator_channels": 4}
    argv = ["--model", "dcgan-mnist", "--config_overrides", json.dumps(overrides), *GAN_DATA, "--max_steps", "3"]
    results = gan_recipe.main(argv + ["--output_dir", str(tmp_path), "--num_grid_samples", "16"])
    assert results["train_steps"] == 3 and math.isfinite(results["epoch_d_loss"])
    assert math.isfinite(results["epoch_g_loss"]) and "mode_entropy" not in results  # no --monitor_classifier
    assert is_png(tmp_path / "samples.png")
    assert AutoModel.from_pretrained(tmp_path / "final").config.architecture == "dcgan"


def gan_weights(output_dir: Path) -> list[bytes]:
    checkpoint = find_last_checkpoint(output_dir)
    return [(checkpoint / name).read_bytes() for name in ("model.safetensors", "model_1.safetensors")]


def test_gan_recipe_resumes_mid_epoch_with_the_same_noise_and_weights(tmp_path):
    """Dropout in D (the global generator), per-step latents and classes, the fixed noise and the epoch means all
    continue from the checkpoint: the resumed run ends with the uninterrupted run's weights, log and grids."""
    overrides = {**TINY_GAN, "discriminator_dropout": 0.3}
    common = ["--model", "cgan-mnist", "--config_overrides", json.dumps(overrides), *GAN_DATA, "--num_epochs", "3"]
    common += ["--checkpointing_steps", "5", "--checkpoints_total_limit", "10", "--logging_steps", "3"]
    common += ["--label_smoothing", "0.1", "--sample_every", "4"]
    full = gan_recipe.main(common + ["--output_dir", str(tmp_path / "full")])
    checkpoint = tmp_path / "full" / "checkpoints" / "checkpoint_2"  # step 15, in the middle of epoch 2
    assert json.loads((checkpoint / "trainer_state.json").read_text())["completed_steps"] == 15
    resumed = gan_recipe.main(
        common + ["--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)]
    )
    assert len(resumed["train_epoch_seconds"]) == 2  # it did resume: epochs 2 and 3 only
    assert gan_weights(tmp_path / "resumed") == gan_weights(tmp_path / "full")
    assert (tmp_path / "resumed/final/model.safetensors").read_bytes() == (
        tmp_path / "full/final/model.safetensors"
    ).read_bytes()
    assert without_timings(read_log(tmp_path / "resumed")) == without_timings(read_log(tmp_path / "full"))
    assert without_timings(resumed) == {**without_timings(full), "model_dir": str(tmp_path / "resumed" / "final")}
    for step in (16, 20, 24):
        name = f"samples/step_{step:06d}.png"
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()


def test_a_resumed_gan_draws_its_grids_from_the_checkpoints_fixed_noise(tmp_path):
    common = ["--model", "gan-mnist", "--config_overrides", json.dumps(TINY_GAN), *GAN_DATA, "--max_steps", "4"]
    common += ["--checkpointing_steps", "2", "--num_grid_samples", "8"]
    gan_recipe.main(common + ["--output_dir", str(tmp_path / "first"), "--seed", "1"])
    checkpoint = tmp_path / "first" / "checkpoints" / "checkpoint_0"
    # Resumed with another --seed (which changes the later steps' latents, not the fixed ones): the grid is drawn
    # from the first run's fixed latents (seed 1), which came with the checkpoint, not from seed 2's.
    again = tmp_path / "again"
    gan_recipe.main(common + ["--output_dir", str(again), "--seed", "2", "--resume_from_checkpoint", str(checkpoint)])
    model = AutoModel.from_pretrained(again / "final").eval()

    def grid_bytes(seed: int) -> bytes:
        noise = FixedNoise.draw(model, 8, seed=seed)
        with torch.no_grad():
            image_grid((model.generator(noise.latents) + 1) / 2).save(tmp_path / "grid.png", format="PNG")
        return (tmp_path / "grid.png").read_bytes()

    assert (again / "samples.png").read_bytes() == grid_bytes(1) != grid_bytes(2)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--model", "vae-mnist"], "is an hfdl-vae model; this recipe trains hfdl-gan models"),
        (["--model", "cgan-mnist", "--config_overrides", '{"num_classes": 3}'], "conditioned on 3 classes"),
        (["--monitor_classifier", "/no/such/classifier"], "is not a folder"),
    ],
)
def test_gan_recipe_refuses_bad_arguments_clearly(tmp_path, argv, match):
    with pytest.raises(ValueError, match=match):
        gan_recipe.main(["--output_dir", str(tmp_path), "--max_steps", "1", *GAN_DATA, *argv])


def test_gan_recipe_trains_a_saved_folder_further_but_refuses_to_add_spectral_norm_to_it(tmp_path):
    folder = tmp_path / "saved"
    hfdl.create_model("gan-mnist", **TINY_GAN).save_pretrained(folder)
    common = ["--model", str(folder), *GAN_DATA, "--max_steps", "2", "--num_grid_samples", "4"]
    results = gan_recipe.main(common + ["--output_dir", str(tmp_path / "further")])
    assert results["train_steps"] == 2
    trained = AutoModel.from_pretrained(tmp_path / "further" / "final")
    assert trained.config.latent_dim == 8 and not trained.config.spectral_norm
    with pytest.raises(ValueError, match="trained without spectral normalisation"):
        gan_recipe.main(common + ["--output_dir", str(tmp_path / "sn"), "--spectral_norm"])


def test_autoencoder_recipe_trains_a_saved_folder_further(tmp_path):
    first = ae_recipe.main(["--model", "ae-mnist", *TINY_AE, *DATA, "--max_steps", "8", "--output_dir", str(tmp_path)])
    again = ae_recipe.main(
        ["--model", first["model_dir"], *DATA, "--max_steps", "8", "--output_dir", str(tmp_path / "again")]
    )
    assert again["eval_mse"] < first["eval_mse"]  # it went on from the trained weights
    assert AutoModel.from_pretrained(again["model_dir"]).config.hidden_sizes == [32]


# --------------------------------------------------------------------------------------------------------------
# In other processes: killed with SIGKILL, and 2-process DDP.
# --------------------------------------------------------------------------------------------------------------


def on_one_thread(recipe, argv: list[str]) -> dict:
    """``recipe.main(argv)`` on one thread, as the subprocesses run (OMP_NUM_THREADS=1): the same float sums."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return recipe.main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_gan_run_killed_with_sigkill_resumes_with_the_same_weights(tmp_path):
    overrides = {**TINY_GAN, "generator_hidden_sizes": [64, 64], "discriminator_hidden_sizes": [64, 64]}
    recipe_args = ["--model", "cgan-mnist", "--config_overrides", json.dumps(overrides), "--report_to", "none"]
    recipe_args += ["--max_train_samples", "1024", "--batch_size", "16", "--num_epochs", "1"]  # 64 steps
    recipe_args += ["--checkpointing_steps", "8", "--sample_every", "32", "--label_smoothing", "0.1"]
    reference_dir, killed_dir, console = tmp_path / "reference", tmp_path / "killed", tmp_path / "victim.txt"
    command = [sys.executable, str(REPO_ROOT / "recipes" / "train_gan.py"), *recipe_args]
    with console.open("w") as handle:
        victim = subprocess.Popen(
            command + ["--output_dir", str(killed_dir)],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    reference = on_one_thread(gan_recipe, recipe_args + ["--output_dir", str(reference_dir)])

    deadline = time.monotonic() + 120
    while find_last_checkpoint(killed_dir) is None:  # the first complete checkpoint (step 8)
        assert victim.poll() is None, console.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in 120 s"
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert not (killed_dir / "all_results.json").exists(), "the run finished before it was killed"
    last = json.loads((find_last_checkpoint(killed_dir) / "trainer_state.json").read_text())
    assert 8 <= last["completed_steps"] < 64

    resumed = on_one_thread(
        gan_recipe, recipe_args + ["--output_dir", str(killed_dir), "--resume_from_checkpoint", "latest"]
    )
    assert gan_weights(killed_dir) == gan_weights(reference_dir)
    for relative in ("final/model.safetensors", "samples/step_000064.png"):
        assert (killed_dir / relative).read_bytes() == (reference_dir / relative).read_bytes(), relative
    assert without_timings(read_log(killed_dir)) == without_timings(read_log(reference_dir))
    assert without_timings(resumed)["epoch_g_loss"] == without_timings(reference)["epoch_g_loss"]


#: Runs recipes one after the other in the same processes (one start-up: a launch costs 15-40 s on 2 busy cores):
#: ``launcher.py RECORD_DIR RECIPE ARGS... ++ RECIPE ARGS...``. For each run and rank it records a hash of the
#: prepared networks' final weights and the first per-step latents a GAN drew on that rank.
DDP_LAUNCHER = """
import hashlib, importlib, json, sys
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState

from hfdl.models.gan import GANModel

prepared, latents = [], []
prepare, sample_latents = Accelerator.prepare, GANModel.sample_latents

def recording_prepare(self, *args, **kwargs):
    objects = prepare(self, *args, **kwargs)
    prepared.extend(obj for obj in objects if isinstance(obj, torch.nn.Module))
    return objects

def recording_sample_latents(self, *args, **kwargs):
    drawn = sample_latents(self, *args, **kwargs)
    latents.append(drawn[0, :4].tolist())
    return drawn

Accelerator.prepare, GANModel.sample_latents = recording_prepare, recording_sample_latents
# A recipe's end_training() tears the process group down; the next run in these processes still needs it.
destroy_process_group = PartialState.destroy_process_group
PartialState.destroy_process_group = lambda self, group=None: None
runs, current = [], []
for argument in sys.argv[2:]:
    if argument == "++":
        runs.append(current)
        current = []
    else:
        current.append(argument)
for index, (name, *argv) in enumerate([*runs, current]):
    prepared.clear()
    latents.clear()
    importlib.import_module(f"hfdl.recipes.{name}").main(argv)
    digest = hashlib.sha256()
    for module in prepared:
        module = getattr(module, "module", module)  # DistributedDataParallel wraps the network
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    state = PartialState()
    report = {"rank": state.process_index, "num_processes": state.num_processes, "networks": len(prepared),
              "weights_sha256": digest.hexdigest(), "first_latents": latents[1] if latents else None}  # [0]: fixed
    Path(sys.argv[1], f"{name}_rank{state.process_index}.json").write_text(json.dumps(report))
destroy_process_group(PartialState())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    """A cGAN (dropout, label smoothing, spectral norm) and a VAE (dynamic binarisation, KL warm-up, IWAE), each
    trained by its recipe in one ``accelerate launch`` of 2 CPU processes (gloo); each run's records per rank."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    launcher, record_dir = tmp_path / "launcher.py", tmp_path / "record"
    launcher.write_text(textwrap.dedent(DDP_LAUNCHER))
    record_dir.mkdir()
    gan = [
        "train_gan",
        "--model",
        "cgan-mnist",
        "--config_overrides",
        json.dumps({**TINY_GAN, "discriminator_dropout": 0.3}),
    ]
    gan += [*GAN_DATA, "--num_epochs", "2", "--label_smoothing", "0.1", "--spectral_norm"]
    vae = ["train_autoencoder", "--model", "vae-mnist", *TINY_VAE, *DATA[:2], "--max_eval_samples", "61", *DATA[4:]]
    vae += ["--num_epochs", "2", "--binarize", "dynamic", "--kl_warmup_steps", "4", "--iwae_samples", "8"]
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    command += [str(launcher), str(record_dir), *gan, "--output_dir", str(tmp_path / "train_gan"), "++"]
    command += [*vae, "--output_dir", str(tmp_path / "train_autoencoder")]
    # ACCELERATE_USE_CPU with --multi_gpu is what gives two real processes on a CPU machine (see STACK.md).
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    records = {
        name: [json.loads((record_dir / f"{name}_rank{rank}.json").read_text()) for rank in (0, 1)]
        for name in ("train_gan", "train_autoencoder")
    }
    return tmp_path, records


@pytest.mark.slow
def test_two_process_ddp_gan_run_keeps_both_networks_identical_on_both_ranks(two_process_runs):
    tmp_path, records = two_process_runs
    ranks, output_dir = records["train_gan"], tmp_path / "train_gan"
    assert [(r["rank"], r["num_processes"], r["networks"]) for r in ranks] == [(0, 2, 2), (1, 2, 2)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["first_latents"] != ranks[1]["first_latents"]  # each rank draws its own noise
    results = json.loads((output_dir / "all_results.json").read_text())
    # 128 images, 2 processes x 16 per step: 4 steps per epoch.
    assert results["num_processes"] == 2 and results["train_steps"] == 8
    assert all(math.isfinite(results[f"epoch_{name}"]) for name in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert is_png(output_dir / "samples.png") and (output_dir / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_process_ddp_vae_run_keeps_weights_identical_and_evaluates_every_test_image_once(two_process_runs):
    tmp_path, records = two_process_runs
    ranks, output_dir = records["train_autoencoder"], tmp_path / "train_autoencoder"
    assert [(r["rank"], r["num_processes"], r["networks"]) for r in ranks] == [(0, 2, 1), (1, 2, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["num_processes"] == 2 and results["train_steps"] == 8
    assert results["eval_samples"] == 61  # gather_for_metrics dropped the padding of the last eval batch
    assert math.isfinite(results["eval_elbo"]) and results["eval_iwae_nll"] > 0
    assert is_png(output_dir / "samples.png") and (output_dir / "final" / "model.safetensors").is_file()
