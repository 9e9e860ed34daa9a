"""hfdl.pipelines: the GAN, VAE and DDPM pipelines, their folders, diffusers interop and recipes/train_ddpm.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

diffusers = pytest.importorskip("diffusers")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from hfdl.models.gan import GANConfig, GANModel  # noqa: E402
from hfdl.models.vae import VAEConfig, VAEModel  # noqa: E402
from hfdl.pipelines import DDPMPipeline, GANPipeline, VAEPipeline  # noqa: E402
from hfdl.pipelines.ddpm import make_ddpm_scheduler, make_ddpm_unet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_gan(num_classes: int = 0, architecture: str = "dcgan") -> GANModel:
    torch.manual_seed(0)
    config = GANConfig(
        image_size=8,
        latent_dim=4,
        architecture=architecture,
        num_classes=num_classes,
        generator_channels=8,
        discriminator_channels=8,
        generator_hidden_sizes=[16],
        discriminator_hidden_sizes=[16],
    )
    return GANModel(config).eval()


def tiny_vae() -> VAEModel:
    torch.manual_seed(0)
    return VAEModel(VAEConfig(image_size=8, latent_dim=2, hidden_sizes=[16])).eval()


def tiny_ddpm(num_classes: int = 0, num_train_timesteps: int = 50) -> DDPMPipeline:
    torch.manual_seed(0)
    unet = make_ddpm_unet(
        image_size=8, block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=8, num_classes=num_classes
    )
    pipe = DDPMPipeline(unet, make_ddpm_scheduler(num_train_timesteps))
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------------------------
# GAN and VAE pipelines
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_gan_pipeline_returns_model_sample_as_pil_np_and_pt(architecture):
    model = tiny_gan(architecture=architecture)
    pipe = GANPipeline(model)
    expected = model.sample(5, generator=seeded(3))  # (5, 1, 8, 8) in [0, 1]
    images = pipe(num_images=5, generator=seeded(3), output_type="pt").images
    assert torch.equal(images, expected)
    array = pipe(num_images=5, generator=seeded(3), output_type="np").images
    assert array.shape == (5, 8, 8, 1) and array.dtype == np.float32
    np.testing.assert_array_equal(array, expected.permute(0, 2, 3, 1).numpy())
    pil = pipe(num_images=5, generator=seeded(3)).images
    assert [(image.mode, image.size) for image in pil] == [("L", (8, 8))] * 5
    np.testing.assert_array_equal(np.asarray(pil[2]), (expected[2, 0].numpy() * 255).round().astype(np.uint8))


def test_same_seed_same_images_and_another_seed_other_images():
    pipe = GANPipeline(tiny_gan())
    first = pipe(num_images=4, generator=seeded(7), output_type="pt").images
    assert torch.equal(first, pipe(num_images=4, generator=seeded(7), output_type="pt").images)
    assert not torch.allclose(first, pipe(num_images=4, generator=seeded(8), output_type="pt").images)
    torch.manual_seed(11)  # generator=None draws from torch's global generator
    global_draw = pipe(num_images=4, output_type="pt").images
    torch.manual_seed(11)
    assert torch.equal(global_draw, pipe(num_images=4, output_type="pt").images)


def test_conditional_gan_honours_class_labels_as_int_list_and_tensor():
    model = tiny_gan(num_classes=3)
    pipe = GANPipeline(model)
    labels = [2, 0, 1, 1]
    expected = model.sample(4, generator=seeded(0), class_labels=labels)
    assert torch.equal(pipe(class_labels=labels, generator=seeded(0), output_type="pt").images, expected)  # n = 4
    as_tensor = pipe(num_images=4, class_labels=torch.tensor(labels), generator=seeded(0), output_type="pt").images
    assert torch.equal(as_tensor, expected)
    one_class = pipe(num_images=3, class_labels=2, generator=seeded(0), output_type="pt").images
    assert torch.equal(one_class, model.sample(3, generator=seeded(0), class_labels=[2, 2, 2]))
    # The label reaches the generator: same noise, another class, other images.
    other = pipe(num_images=3, class_labels=0, generator=seeded(0), output_type="pt").images
    assert not torch.allclose(one_class, other)


def test_batches_bound_memory_and_stay_reproducible():
    model = tiny_gan(num_classes=3)
    pipe = GANPipeline(model)
    labels = [0, 1, 2, 0, 1]
    chunked = pipe(class_labels=labels, generator=seeded(0), batch_size=2, output_type="pt").images
    assert chunked.shape == (5, 1, 8, 8)
    assert torch.equal(chunked, pipe(class_labels=labels, generator=seeded(0), batch_size=2, output_type="pt").images)
    # Chunk by chunk, each is model.sample on the next draws of the same generator.
    generator = seeded(0)
    by_hand = torch.cat([model.sample(len(part), generator, part) for part in ([0, 1], [2, 0], [1])])
    assert torch.equal(chunked, by_hand)


def test_sampling_uses_eval_mode_and_restores_training_mode():
    model = tiny_gan().train()  # DCGAN: BatchNorm in the generator
    pipe = GANPipeline(model)
    images = pipe(num_images=3, generator=seeded(0), output_type="pt").images
    assert model.training and model.generator.training
    assert torch.equal(images, model.eval().sample(3, generator=seeded(0)))


def test_vae_pipeline_equals_model_sample_and_refuses_class_labels():
    model = tiny_vae()
    pipe = VAEPipeline(model)
    images = pipe(num_images=6, generator=seeded(5), output_type="pt").images
    assert torch.equal(images, model.sample(6, generator=seeded(5)))
    pil = pipe(generator=seeded(5)).images
    assert len(pil) == 1 and pil[0].mode == "L" and pil[0].size == (8, 8)
    with pytest.raises(ValueError, match="unconditional"):
        pipe(num_images=2, class_labels=1)


def test_rgb_model_gives_rgb_images():
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(image_size=8, num_channels=3, latent_dim=2, hidden_sizes=[16])).eval()
    images = VAEPipeline(model)(num_images=2, generator=seeded(0)).images
    assert [(image.mode, image.size) for image in images] == [("RGB", (8, 8))] * 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_images": 0}, r"`num_images` must be a positive integer or None, got 0"),
        ({"num_images": 2.0}, r"`num_images` must be a positive integer"),
        ({"num_images": True}, r"`num_images` must be a positive integer"),
        ({"output_type": "tensor"}, r"`output_type` must be 'pil', 'np' or 'pt', got 'tensor'"),
        ({"batch_size": -1}, r"`batch_size` must be a positive integer or None, got -1"),
        ({"generator": 0}, r"`generator` must be a torch.Generator or None, got int"),
        ({}, r"class-conditional \(3 classes\): pass `class_labels`"),
        ({"class_labels": 3}, r"must lie in \[0, 2\], got \[3\]"),
        ({"class_labels": [0, -1]}, r"must lie in \[0, 2\], got \[-1\]"),
        ({"class_labels": [0, 1], "num_images": 3}, r"has 2 entries but `num_images` is 3"),
        ({"class_labels": [0.5]}, r"must hold ints"),
        ({"class_labels": torch.zeros(2, 2, dtype=torch.long)}, r"1-D"),
        ({"class_labels": torch.tensor([0.0, 1.0])}, r"integer tensor, got shape \(2,\) and dtype torch.float32"),
        ({"class_labels": torch.tensor([True, False])}, r"dtype torch.bool"),
        ({"class_labels": "0"}, r"got str"),
    ],
)
def test_bad_arguments_name_the_value_and_what_is_allowed(kwargs, match):
    pipe = GANPipeline(tiny_gan(num_classes=3))
    with pytest.raises(ValueError, match=match):
        pipe(**kwargs)


def test_unconditional_gan_refuses_class_labels_and_wrong_model_is_refused():
    with pytest.raises(ValueError, match=r"unconditional \(num_classes=0\): it takes no `class_labels`, got 1"):
        GANPipeline(tiny_gan())(class_labels=1)
    with pytest.raises(ValueError, match="GANPipeline needs a GANModel, got VAEModel"):
        GANPipeline(tiny_vae())


# ---------------------------------------------------------------------------------------------------------------
# Folders: save/load round trips, plain model folders, diffusers.DiffusionPipeline
# ---------------------------------------------------------------------------------------------------------------


def test_gan_pipeline_folder_round_trip_is_safetensors_only(tmp_path):
    pipe = GANPipeline(tiny_gan(num_classes=3))
    expected = pipe(class_labels=[0, 1, 2], generator=seeded(1), output_type="pt").images
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_hfdl", "GANPipeline"]
    assert index["model"] == ["hfdl.pipelines.gan", "GANModel"]
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not [path for path in tmp_path.rglob("*") if path.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    loaded = GANPipeline.from_pretrained(tmp_path)
    assert torch.equal(loaded(class_labels=[0, 1, 2], generator=seeded(1), output_type="pt").images, expected)


def test_pipelines_load_plain_model_folders_and_refuse_other_models(tmp_path):
    gan, vae = tiny_gan(), tiny_vae()
    gan.save_pretrained(tmp_path / "gan")
    vae.save_pretrained(tmp_path / "vae")
    images = GANPipeline.from_pretrained(tmp_path / "gan")(num_images=2, generator=seeded(0), output_type="pt").images
    assert torch.equal(images, gan.sample(2, generator=seeded(0)))
    images = VAEPipeline.from_pretrained(tmp_path / "vae")(num_images=2, generator=seeded(0), output_type="pt").images
    assert torch.equal(images, vae.sample(2, generator=seeded(0)))
    with pytest.raises(ValueError, match=r"holds a 'hfdl-vae' model; GANPipeline loads 'hfdl-gan' models"):
        GANPipeline.from_pretrained(tmp_path / "vae")
    VAEPipeline(vae).save_pretrained(tmp_path / "vae-pipe")
    with pytest.raises(ValueError, match="holds a VAEPipeline, not a GANPipeline"):
        GANPipeline.from_pretrained(tmp_path / "vae-pipe")
    with pytest.raises(ValueError, match="neither a pipeline folder"):
        VAEPipeline.from_pretrained(tmp_path)  # holds only subfolders


def test_a_pickled_model_folder_is_refused_not_unpickled(tmp_path):
    model = tiny_vae()
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(Exception, match="safetensors|model.safetensors"):
        VAEPipeline.from_pretrained(tmp_path)


def test_diffusion_pipeline_loads_a_saved_vae_pipeline_with_trust_remote_code(tmp_path):
    """diffusers resolves a pipeline class by name inside diffusers only; the folder's one-line pipeline_hfdl.py is
    its documented way to name one from elsewhere, and diffusers runs such a file only with trust_remote_code."""
    pipe = VAEPipeline(tiny_vae())
    pipe.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        diffusers.DiffusionPipeline.from_pretrained(tmp_path)
    loaded = diffusers.DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(loaded) is VAEPipeline
    expected = pipe(num_images=3, generator=seeded(2), output_type="pt").images
    assert torch.equal(loaded(num_images=3, generator=seeded(2), output_type="pt").images, expected)


@pytest.mark.slow  # a fresh interpreter imports torch, diffusers and hfdl: 10-15 s on two busy cores
def test_diffusion_pipeline_loads_a_gan_pipeline_in_a_fresh_process(tmp_path):
    """Nothing imported beforehand: the folder's pipeline_hfdl.py imports hfdl, which diffusers then loads from."""
    pipe = GANPipeline(tiny_gan(num_classes=3))
    pipe.save_pretrained(tmp_path / "pipe")
    expected = pipe(class_labels=[2, 1], generator=seeded(4), output_type="np").images
    script = (
        "import sys, numpy, torch, diffusers\n"
        "assert 'hfdl' not in sys.modules\n"
        f"pipe = diffusers.DiffusionPipeline.from_pretrained({str(tmp_path / 'pipe')!r}, trust_remote_code=True)\n"
        "pipe.set_progress_bar_config(disable=True)\n"
        "images = pipe(class_labels=[2, 1], generator=torch.Generator().manual_seed(4), output_type='np').images\n"
        f"numpy.save({str(tmp_path / 'images.npy')!r}, images)\n"
        "print(type(pipe).__module__, type(pipe).__name__)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["hfdl.pipelines.gan", "GANPipeline"]
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), expected)


# ---------------------------------------------------------------------------------------------------------------
# DDPM comparator
# ---------------------------------------------------------------------------------------------------------------


def test_make_ddpm_unet_defaults_fit_28x28_mnist_and_bad_shapes_are_refused():
    unet = make_ddpm_unet()
    assert unet.config.sample_size == 28 and unet.config.in_channels == unet.config.out_channels == 1
    assert unet.config.down_block_types == ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert unet(x, torch.tensor([0, 999])).sample.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"`image_size`=28 must be divisible by 8"):
        make_ddpm_unet(block_out_channels=(32, 64, 64, 64))
    with pytest.raises(ValueError, match=r"`norm_num_groups`=8 must divide every block width; \[12\]"):
        make_ddpm_unet(block_out_channels=(16, 12))
    with pytest.raises(ValueError, match=r"`beta_schedule` must be one of \('linear', 'cosine'\), got 'quadratic'"):
        make_ddpm_scheduler(beta_schedule="quadratic")


def test_ddpm_folder_is_a_plain_diffusers_folder_with_the_same_images(tmp_path):
    pipe = tiny_ddpm()
    images = pipe(num_images=3, generator=seeded(0), num_inference_steps=10, output_type="np").images
    assert images.shape == (3, 8, 8, 1) and 0.0 <= images.min() and images.max() <= 1.0
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline" and index["unet"] == ["diffusers", "UNet2DModel"]
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    # diffusers' own DDPMPipeline (batch_size = number of images there) draws the same noise in the same order.
    native = diffusers.DiffusionPipeline.from_pretrained(tmp_path)
    assert type(native) is diffusers.DDPMPipeline
    native.set_progress_bar_config(disable=True)
    same = native(batch_size=3, generator=seeded(0), num_inference_steps=10, output_type="np").images
    np.testing.assert_array_equal(same, images)
    loaded = DDPMPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    pil = loaded(num_images=3, generator=seeded(0), num_inference_steps=10).images
    assert [(image.mode, image.size) for image in pil] == [("L", (8, 8))] * 3
    np.testing.assert_array_equal(np.stack([np.asarray(image) for image in pil]), (images[..., 0] * 255).round())


def test_ddpm_seeded_reproducibility_and_scheduler_swap():
    pipe = tiny_ddpm()
    first = pipe(num_images=2, generator=seeded(1), num_inference_steps=5, output_type="pt").images
    assert torch.equal(first, pipe(num_images=2, generator=seeded(1), num_inference_steps=5, output_type="pt").images)
    assert not torch.allclose(
        first, pipe(num_images=2, generator=seeded(2), num_inference_steps=5, output_type="pt").images
    )
    ddim = DDPMPipeline(pipe.unet, diffusers.DDIMScheduler.from_config(pipe.scheduler.config))
    ddim.set_progress_bar_config(disable=True)
    assert ddim(num_images=2, generator=seeded(1), num_inference_steps=4, output_type="pt").images.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"at most the scheduler's num_train_timesteps \(50\), got 51"):
        pipe(num_inference_steps=51)
    with pytest.raises(ValueError, match="unconditional"):
        pipe(class_labels=[0])


def test_class_conditional_ddpm_takes_labels():
    pipe = tiny_ddpm(num_classes=3)
    with pytest.raises(ValueError, match=r"class-conditional \(3 classes\)"):
        pipe(num_inference_steps=2)
    zero = pipe(class_labels=[0, 0], generator=seeded(0), num_inference_steps=3, output_type="pt").images
    two = pipe(class_labels=2, num_images=2, generator=seeded(0), num_inference_steps=3, output_type="pt").images
    assert zero.shape == two.shape == (2, 1, 8, 8) and not torch.allclose(zero, two)


def test_ddpm_from_pretrained_refuses_other_folders(tmp_path):
    GANPipeline(tiny_gan()).save_pretrained(tmp_path / "gan")
    with pytest.raises(ValueError, match="holds a .*GANPipeline.*, not a DDPMPipeline folder"):
        DDPMPipeline.from_pretrained(tmp_path / "gan")
    with pytest.raises(ValueError, match="no model_index.json"):
        DDPMPipeline.from_pretrained(tmp_path / "gan" / "model")


# ---------------------------------------------------------------------------------------------------------------
# recipes/train_ddpm.py
# ---------------------------------------------------------------------------------------------------------------

RECIPE_ARGS = [
    "--dataset", "digits", "--max_train_samples", "256", "--max_eval_samples", "64", "--block_out_channels", "8,16",
    "--batch_size", "32", "--num_train_timesteps", "50", "--num_samples", "4", "--num_inference_steps", "5",
    "--report_to", "none", "--learning_rate", "3e-3", "--warmup_steps", "0", "--lr_scheduler", "constant",
]  # fmt: skip


def run_recipe(tmp_path: Path, *extra: str) -> dict:
    from hfdl.recipes import train_ddpm

    return train_ddpm.main([*RECIPE_ARGS, *extra])


def test_recipe_lowers_the_loss_and_saves_a_pipeline_both_libraries_load(tmp_path):
    output_dir = tmp_path / "run"
    results = run_recipe(tmp_path, "--output_dir", str(output_dir), "--max_steps", "40", "--ema_decay", "0.9")
    log = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    train_losses = [entry["loss"] for entry in log if "loss" in entry]
    assert train_losses[-1] < 0.8 * train_losses[0]  # eps-MSE starts near 1 (the noise's variance)
    eval_losses = [entry["eval_loss"] for entry in log if "eval_loss" in entry]
    assert eval_losses[-1] < eval_losses[0] and all(entry["epoch_seconds"] > 0 for entry in log if "eval_loss" in entry)
    assert results["train_steps"] == 40 and results["train_seconds_per_epoch"] > 0
    assert json.loads((output_dir / "all_results.json").read_text())["eval_loss"] == results["eval_loss"]
    grid = Image.open(output_dir / "samples.png")
    assert grid.size == (16, 16)  # 4 samples of 8x8 in a 2x2 grid
    folder = output_dir / "pipeline"
    ours, theirs = DDPMPipeline.from_pretrained(folder), diffusers.DiffusionPipeline.from_pretrained(folder)
    for pipe in (ours, theirs):
        pipe.set_progress_bar_config(disable=True)
    images = ours(num_images=2, generator=seeded(0), num_inference_steps=5, output_type="np").images
    np.testing.assert_array_equal(
        images, theirs(batch_size=2, generator=seeded(0), num_inference_steps=5, output_type="np").images
    )


def test_recipe_resumes_bit_for_bit_with_ema(tmp_path):
    common = ("--max_steps", "12", "--checkpointing_steps", "5", "--ema_decay", "0.9")
    run_recipe(tmp_path, "--output_dir", str(tmp_path / "full"), *common)
    shutil.copytree(tmp_path / "full", tmp_path / "resumed", ignore=shutil.ignore_patterns("pipeline"))
    checkpoint = tmp_path / "resumed" / "checkpoints" / "checkpoint_0"  # step 5 (the newest kept is step 10)
    assert json.loads((checkpoint / "trainer_state.json").read_text())["completed_steps"] == 5
    run_recipe(
        tmp_path, "--output_dir", str(tmp_path / "resumed"), *common, "--resume_from_checkpoint", str(checkpoint)
    )
    weights = "pipeline/unet/diffusion_pytorch_model.safetensors"
    full, resumed = load_file(tmp_path / "full" / weights), load_file(tmp_path / "resumed" / weights)
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[name], resumed[name]) for name in full)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ema_decay", "1.0"], "--ema_decay must be in [0, 1)"),
        (["--num_inference_steps", "2000"], "must be at most --num_train_timesteps (1000)"),
        (["--block_out_channels", "32,x"], "expected comma-separated positive ints"),
        (["--checkpoints_total_limit", "1"], "--checkpoints_total_limit must be at least 2"),
    ],
)
def test_recipe_bad_command_lines_exit_with_usage(argv, message, capsys):
    from hfdl.recipes import train_ddpm

    with pytest.raises(SystemExit):
        train_ddpm.parse_args(argv)
    assert message in capsys.readouterr().err


def put_in_hub_cache(cache_dir: Path, repo_id: str, save) -> None:
    """Lay a saved folder out as the Hub cache holds a download, so that a repo id resolves offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    save(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_pipelines_load_hub_ids_offline_from_the_cache(tmp_path):
    gan, ddpm = GANPipeline(tiny_gan(num_classes=3)), tiny_ddpm()
    put_in_hub_cache(tmp_path, "hfdl/tiny-cgan", gan.save_pretrained)
    put_in_hub_cache(tmp_path, "hfdl/tiny-gan-model", gan.model.save_pretrained)
    put_in_hub_cache(tmp_path, "hfdl/tiny-ddpm", ddpm.save_pretrained)
    expected = gan(class_labels=[1, 2], generator=seeded(0), output_type="pt").images
    for repo_id in ("hfdl/tiny-cgan", "hfdl/tiny-gan-model"):
        loaded = GANPipeline.from_pretrained(repo_id, cache_dir=tmp_path)
        assert torch.equal(loaded(class_labels=[1, 2], generator=seeded(0), output_type="pt").images, expected)
    loaded = DDPMPipeline.from_pretrained("hfdl/tiny-ddpm", cache_dir=tmp_path)
    loaded.set_progress_bar_config(disable=True)
    images = loaded(num_images=2, generator=seeded(0), num_inference_steps=3, output_type="pt").images
    assert torch.equal(images, ddpm(num_images=2, generator=seeded(0), num_inference_steps=3, output_type="pt").images)
    with pytest.raises(ValueError, match="is not a folder"):
        GANPipeline.from_pretrained("./no/such/folder")


@pytest.mark.slow  # a fresh interpreter
def test_without_diffusers_the_error_names_the_extra():
    script = (
        "import sys\n"
        "sys.modules['diffusers'] = None  # as if diffusers were not installed\n"
        "import hfdl.pipelines\n"
        "try:\n"
        "    hfdl.pipelines.GANPipeline\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "hfdl.pipelines.GANPipeline needs diffusers: pip install 'hfdl[train]'."


def test_readme_generative_snippet_runs_as_written():
    """The README's generative example, pasted as written: posterior shapes, a finite NLL estimate, seeded samples
    and one PIL digit per class from the conditional GAN's pipeline."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Generative models", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["mean"].shape == namespace["logvar"].shape == (4, 16)
    nll = namespace["nll"]
    assert nll.shape == (4,) and torch.isfinite(nll).all() and (nll > 0).all()
    samples = namespace["samples"]
    assert samples.shape == (8, 1, 28, 28) and 0.0 <= samples.min() and samples.max() <= 1.0
    expected = namespace["vae"].sample(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, expected)
    digits = namespace["digits"]
    assert len(digits) == 10 and all(d.size == (28, 28) and d.mode == "L" for d in digits)
