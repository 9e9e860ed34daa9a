"""The gan-studio Space: samples, walks and the DDPM comparison against hfdl's own pipelines, through the running
app and gradio_client.

Models are tiny seeded hfdl GANs and a tiny diffusers U-Net (untrained, a GAN with a wide weight init so that every
seed gives visibly different images), saved the way the recipes write them (``train_gan.py``: ``<run>/final/``;
``train_ddpm.py``: ``<run>/pipeline/``) and as a ``GANPipeline`` folder: the point is that the app shows what the
pipelines compute for a seed, not that the images look like digits. Clients use ``ssl_verify=False`` (plain HTTP on
loopback; see tests/test_space.py).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
from PIL import Image  # noqa: E402

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.pipelines import DDPMPipeline, GANPipeline  # noqa: E402
from hfdl.pipelines.ddpm import make_ddpm_scheduler, make_ddpm_unet  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "gan-studio"
APP_PATH = SPACE_DIR / "app.py"

#: A conditional DCGAN with 3 classes at 8 px (4 -> 8), and an unconditional MLP GAN at 10 px; a wide init.
CGAN = {
    "architecture": "dcgan",
    "image_size": 8,
    "latent_dim": 8,
    "generator_channels": 8,
    "discriminator_channels": 8,
    "kernel_size": 4,
    "num_classes": 3,
    "initializer_range": 0.5,
}
MLP_GAN = {
    "architecture": "mlp",
    "image_size": 10,
    "latent_dim": 6,
    "generator_hidden_sizes": [16],
    "discriminator_hidden_sizes": [16],
    "initializer_range": 0.5,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pixels(picture) -> np.ndarray:
    """A picture (PIL or a path) as an int array."""
    if isinstance(picture, (str, os.PathLike)):
        with Image.open(picture) as opened:
            return np.asarray(opened).astype(int)
    return np.asarray(picture).astype(int)


def tiles(app, picture, side: int) -> list[list[np.ndarray]]:
    """The images of a sheet at their own size: every pixel is enlarged by the same whole factor and the images sit
    at ``app.tile_origin``; the grey gaps between them are checked too."""
    array, factor = pixels(picture), app.scale_factor(side)
    stride = side * factor + app.GAP
    rows, columns = (array.shape[0] - app.GAP) // stride, (array.shape[1] - app.GAP) // stride
    assert array.shape[:2] == app.tile_origin(rows, columns, side)
    found, gaps = [], np.ones(array.shape[:2], dtype=bool)
    for row in range(rows):
        found.append([])
        for column in range(columns):
            top, left = app.tile_origin(row, column, side)
            block = array[top : top + side * factor, left : left + side * factor]
            small = block[::factor, ::factor]
            assert np.array_equal(block, small.repeat(factor, 0).repeat(factor, 1))  # nearest, whole factor
            found[-1].append(small)
            gaps[top : top + side * factor, left : left + side * factor] = False
    assert (array[gaps] == app.GAP_SHADE).all()
    return found


def as_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """``model.sample``'s (N, 1, H, W) in [0, 1] as the 0-255 images a picture holds."""
    return [row for row in (images[:, 0].numpy().astype(np.float64) * 255).round().astype(int)]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """``outputs/`` as the recipes leave it: a cGAN run (``final/``), an MLP GAN saved as a GANPipeline folder, a
    DDPM run (``pipeline/``) and a LeNet classifier (listed nowhere)."""
    root = tmp_path_factory.mktemp("outputs")
    torch.manual_seed(0)
    save_for_hub(hfdl.create_model("gan", **CGAN).eval(), root / "cgan-tiny" / "final")
    torch.manual_seed(1)
    GANPipeline(model=hfdl.create_model("gan", **MLP_GAN).eval()).save_pretrained(root / "gan-mlp")
    torch.manual_seed(2)
    unet = make_ddpm_unet(image_size=8, block_out_channels=(8, 16), attention=False)
    DDPMPipeline(unet=unet, scheduler=make_ddpm_scheduler()).save_pretrained(root / "ddpm-tiny" / "pipeline")
    hfdl.create_model("lenet5-modern").save_pretrained(root / "lenet5")
    return root


@pytest.fixture(scope="module")
def app(outputs, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_OUTPUTS", str(outputs))
        patch.setenv("HFDL_SPACE_CACHE", str(tmp_path_factory.mktemp("space-cache")))
        patch.delenv("HFDL_MODEL", raising=False)
        patch.delenv("HFDL_DDPM", raising=False)
        spec = importlib.util.spec_from_file_location(f"gan_studio_app_{uuid.uuid4().hex[:8]}", APP_PATH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


@pytest.fixture(scope="module")
def server(app):
    app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield client(app.demo.local_url)
    finally:
        app.demo.close()


@pytest.fixture(scope="module")
def cgan(outputs):
    return GANPipeline.from_pretrained(outputs / "cgan-tiny" / "final")


def test_import_builds_the_ui_without_loading_anything(outputs, tmp_path):
    """`import app` lists the GANs and DDPMs from their JSON files alone: no torch, no hfdl, nothing trained."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        print([value for _, value in app.model_choices()])
        print([value for _, value in app.ddpm_choices()])
        print(sorted(name for name in ("torch", "transformers", "diffusers", "hfdl") if name in sys.modules))
        """
    )
    env = {**os.environ, "HFDL_OUTPUTS": str(outputs), "HFDL_SPACE_CACHE": str(tmp_path / "cache")}
    env.pop("HFDL_MODEL", None)
    env.pop("HFDL_DDPM", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    gans, ddpms, loaded = result.stdout.strip().splitlines()[-3:]
    assert loaded == "[]"
    assert gans == repr(
        [
            str(outputs / "cgan-tiny" / "final"),
            str(outputs / "gan-mlp"),
            "cgan-digits (trained here)",
            "dcgan-digits (trained here)",
        ]
    )
    assert ddpms == repr([str(outputs / "ddpm-tiny" / "pipeline"), "ddpm-digits (trained here)"])
    assert not (tmp_path / "cache").exists()


def test_class_list_follows_the_model(app, outputs, tmp_path):
    """The class dropdown is read from config.json: "all" and each class for a cGAN, only "none" otherwise."""
    dropdown = app.settings_for(str(outputs / "cgan-tiny"))  # the run folder: its final/ is found
    assert [value for _, value in dropdown.choices] == ["all", "0", "1", "2"] and dropdown.interactive
    dropdown = app.settings_for(str(outputs / "cgan-tiny"), str(outputs / "gan-mlp"))  # the typed one wins
    assert [value for _, value in dropdown.choices] == [""] and dropdown.interactive is False
    assert app.model_classes(app.CGAN_CHOICE) == 10 and app.model_classes(app.DCGAN_CHOICE) == 0
    assert app.settings_for(str(tmp_path / "missing")) == gr.skip()
    assert app.settings_for(str(outputs / "lenet5")) == gr.skip()


def test_samples_equal_the_pipeline_and_model_sample(app, server, outputs, cgan):
    """/generate against GANPipeline and GANModel.sample for the same seed and class; other seeds differ."""
    folder = str(outputs / "cgan-tiny" / "final")
    picture, caption = server.predict(folder, "", 7, "all", 5, api_name="/generate")
    rows = [cgan(num_images=5, generator=seeded(7), class_labels=label).images for label in range(3)]
    np.testing.assert_array_equal(pixels(picture), pixels(app.image_sheet(rows)))
    factor = app.scale_factor(8)
    assert factor == 7  # 8 px images shown at 56 px
    shown = tiles(app, picture, 8)
    assert len(shown) == 3 and all(len(row) == 5 for row in shown)
    for label in range(3):
        expected = as_uint8(cgan.model.sample(5, generator=seeded(7), class_labels=label))
        for column in range(5):
            np.testing.assert_array_equal(shown[label][column], expected[column])
    assert "15 samples" in caption and "one row per class" in caption and "seed 7" in caption
    # One class is that row of "all classes" (every row has the same noise), and the class matters.
    single, _ = server.predict(folder, "", 7, "1", 5, api_name="/generate")
    np.testing.assert_array_equal(np.stack(tiles(app, single, 8)[0]), np.stack(shown[1]))
    assert not np.array_equal(shown[0][0], shown[1][0])
    other, _ = server.predict(folder, "", 8, "all", 5, api_name="/generate")
    assert not np.array_equal(pixels(other), pixels(picture))
    # An unconditional MLP GAN saved as a pipeline folder.
    mlp = GANPipeline.from_pretrained(outputs / "gan-mlp")
    picture, caption = server.predict(str(outputs / "gan-mlp"), "", 3, "", 4, api_name="/generate")
    expected = as_uint8(mlp.model.sample(4, generator=seeded(3)))
    assert [tile.tolist() for tile in tiles(app, picture, 10)[0]] == [e.tolist() for e in expected]
    assert "unconditional" in caption


def reference_path(start: np.ndarray, end: np.ndarray, frames: int, spherical: bool) -> np.ndarray:
    """The interpolation written out again in float64 (White, 2016)."""
    t = np.linspace(0.0, 1.0, frames)[:, None]
    if not spherical:
        return (1 - t) * start + t * end
    angle = np.arccos(np.dot(start, end) / (np.linalg.norm(start) * np.linalg.norm(end)))
    return (np.sin((1 - t) * angle) * start + np.sin(t * angle) * end) / np.sin(angle)


@pytest.mark.parametrize("interpolation", ["spherical", "linear"])
def test_walk_ends_are_the_two_seeds_samples(app, server, outputs, cgan, interpolation):
    """/walk: frame 0 and the last frame are the two seeds' samples; the frames between decode the path; the GIF
    holds the same frames there and back."""
    folder = str(outputs / "cgan-tiny")
    strip, gif, caption = server.predict(folder, "", 7, 9, "2", 6, interpolation, api_name="/walk")
    frames = tiles(app, strip, 8)[0]
    assert len(frames) == 6
    np.testing.assert_array_equal(frames[0], as_uint8(cgan.model.sample(1, generator=seeded(7), class_labels=2))[0])
    np.testing.assert_array_equal(frames[-1], as_uint8(cgan.model.sample(1, generator=seeded(9), class_labels=2))[0])
    assert not np.array_equal(frames[0], frames[-1])
    start = cgan.model.sample_latents(1, generator=seeded(7))[0].double().numpy()
    end = cgan.model.sample_latents(1, generator=seeded(9))[0].double().numpy()
    path = torch.as_tensor(reference_path(start, end, 6, interpolation == "spherical"), dtype=torch.float32)
    with torch.no_grad():
        images = (cgan.model(path, class_labels=torch.full((6,), 2)).images + 1) / 2
    for shown, expected in zip(frames, as_uint8(images.clamp(0, 1)), strict=True):
        assert np.abs(shown - expected).max() <= 1  # float32 vs float64 path: at most one grey level
    with Image.open(gif) as animation:
        assert animation.n_frames == 10  # 6 there, 4 back (the ends are not repeated)
        for index in range(animation.n_frames):
            animation.seek(index)
            frame = tiles(app, animation.convert("L"), 8)[0][0]
            np.testing.assert_array_equal(frame, frames[index if index < 6 else 10 - index])
    assert f"{interpolation.capitalize()} walk" in caption and "seed 7" in caption and "seed 9" in caption


def test_interpolation_keeps_the_norm_only_when_spherical(app):
    start, end = torch.randn(1, 64, generator=seeded(0)), torch.randn(1, 64, generator=seeded(1))
    spherical = app.interpolate_latents(start, end, 9, "spherical")
    linear = app.interpolate_latents(start, end, 9, "linear")
    for path in (spherical, linear):
        assert path.shape == (9, 64) and path.dtype == torch.float32
        assert torch.equal(path[0], start[0]) and torch.equal(path[-1], end[0])
    np.testing.assert_allclose(linear[4].numpy(), ((start + end) / 2)[0].numpy(), atol=1e-6)
    norms = spherical.norm(dim=1)
    low, high = sorted((float(start.norm()), float(end.norm())))
    assert (
        float(norms.min()) >= low - 1e-4 and float(norms.max()) <= high + 1e-4
    )  # random 64-d vectors are nearly orthogonal: the arc stays between the norms
    assert float(linear[4].norm()) < 0.8 * low  # the straight line cuts towards the origin
    same = app.interpolate_latents(start, start, 3, "spherical")  # no angle: falls back to the (constant) line
    assert torch.allclose(same, start.expand(3, -1))
    with pytest.raises(app.StudioInputError, match="interpolation must be one of spherical, linear; got 'cubic'"):
        app.interpolate_latents(start, end, 3, "cubic")


def test_ddpm_side_equals_the_ddpm_pipeline(app, server, outputs, cgan):
    """/compare: the GAN side is /generate's picture, the DDPM side DDPMPipeline's images for the same seed and
    steps, with either sampler; both times are shown."""
    folder, ddpm_folder = str(outputs / "cgan-tiny" / "final"), outputs / "ddpm-tiny" / "pipeline"
    gan_picture, ddpm_picture, caption = server.predict(
        folder, "", str(outputs / "ddpm-tiny"), "", 5, "0", 3, 4, "ddpm", api_name="/compare"
    )
    samples, _ = server.predict(folder, "", 5, "0", 3, api_name="/generate")
    np.testing.assert_array_equal(pixels(gan_picture), pixels(samples))
    pipeline = DDPMPipeline.from_pretrained(ddpm_folder)
    pipeline.set_progress_bar_config(disable=True)
    expected = pipeline(num_images=3, generator=seeded(5), num_inference_steps=4).images
    np.testing.assert_array_equal(pixels(ddpm_picture), pixels(app.image_sheet([expected])))
    assert re.search(r"\*\*GAN\*\*: 3 images in [\d.]+ (ms|s)", caption)
    assert re.search(
        r"\*\*DDPM\*\* \(ddpm, 4 steps = 4 U-Net passes, unconditional\): 3 images in [\d.]+ (ms|s)", caption
    )

    from diffusers import DDIMScheduler

    _, ddim_picture, caption = server.predict(
        folder, "", "", str(ddpm_folder), 5, "0", 3, 4, "ddim", api_name="/compare"
    )
    ddim = DDPMPipeline(unet=pipeline.unet, scheduler=DDIMScheduler.from_config(pipeline.scheduler.config))
    ddim.set_progress_bar_config(disable=True)
    expected = ddim(num_images=3, generator=seeded(5), num_inference_steps=4).images
    np.testing.assert_array_equal(pixels(ddim_picture), pixels(app.image_sheet([expected])))
    assert not np.array_equal(pixels(ddim_picture), pixels(ddpm_picture)) and "(ddim, 4 steps" in caption


def test_bad_settings_are_reported(app, server, outputs, tmp_path):
    cgan, mlp, ddpm = str(outputs / "cgan-tiny"), str(outputs / "gan-mlp"), str(outputs / "ddpm-tiny")
    generate = [
        ((cgan, "", 0, "3", 4), r"class must be all \(one row per class\) or a class number from 0 to 2 .*got '3'"),
        ((cgan, "", 0, "", 4), r"class must be all .* from 0 to 2 .*got ''"),
        ((cgan, "", 0, "1.5", 4), r"from 0 to 2 .*got '1.5'"),
        ((mlp, "", 0, "1", 4), r"is an unconditional GAN \(num_classes = 0\): it takes no class.*got '1'"),
        ((mlp, "", 0, "all", 4), r"unconditional GAN .*got 'all'"),
        ((cgan, "", 0, "0", 0), r"number of images must be a whole number from 1 to 16; got 0"),
        ((cgan, "", 0, "0", 17), r"number of images must be a whole number from 1 to 16; got 17"),
        ((cgan, "", -1, "0", 4), r"seed must be a whole number from 0 to 4294967295; got -1"),
        (("", "", 0, "0", 4), r"Choose a GAN in the list"),
        ((cgan, str(tmp_path / "missing"), 0, "0", 4), r"Could not load .*missing"),
        ((cgan, str(outputs / "lenet5"), 0, "0", 4), r"Could not load .* as an hfdl GAN.*hfdl-lenet5"),
        # A bad setting for a digits model is answered before any training.
        ((app.DCGAN_CHOICE, "", 0, "4", 4), r"dcgan-digits \(trained here\) is an unconditional GAN"),
    ]
    walk = [
        ((cgan, "", 0, 1, "0", 1, "spherical"), r"frames must be a whole number from 2 to 32; got 1"),
        ((cgan, "", 0, 1, "0", 33, "spherical"), r"frames must be a whole number from 2 to 32; got 33"),
        ((cgan, "", 0, 1, "0", 5, "wobbly"), r"interpolation must be one of spherical, linear; got 'wobbly'"),
        ((cgan, "", 0, -5, "0", 5, "linear"), r"second seed must be a whole number from 0 to 4294967295"),
        ((cgan, "", 0, 1, "7", 5, "linear"), r"from 0 to 2 .*got '7'"),
        ((app.CGAN_CHOICE, "", 0, 1, "all", 32, "linear"), r"10 rows x 32 frames = 320 pictures; at most 160"),
    ]
    compare = [
        ((cgan, "", ddpm, "", 0, "0", 2, 0, "ddpm"), r"inference steps must be a whole number from 1 to 1000; got 0"),
        ((cgan, "", ddpm, "", 0, "0", 2, 1001, "ddpm"), r"inference steps must be .* from 1 to 1000; got 1001"),
        ((cgan, "", ddpm, "", 0, "0", 2, 4, "euler"), r"sampler must be one of ddpm, ddim; got 'euler'"),
        ((cgan, "", "", "", 0, "0", 2, 4, "ddpm"), r"Choose a DDPM in the list"),
        ((cgan, "", cgan, "", 0, "0", 2, 4, "ddpm"), r"Could not load .* as a DDPM pipeline folder"),
        ((mlp, "", ddpm, "", 0, "2", 2, 4, "ddpm"), r"unconditional GAN"),
    ]
    for endpoint, cases in (("/generate", generate), ("/walk", walk), ("/compare", compare)):
        for inputs, message in cases:
            with pytest.raises(Exception, match=message):
                server.predict(*inputs, api_name=endpoint)
    for folder in app.DIGITS_FOLDERS.values():
        assert not (app.space_cache_dir() / folder).exists()


def test_four_concurrent_clients(app, server, outputs):
    """4 clients at once, each making 3 different requests: every answer arrives and equals the one-client one."""
    cgan, ddpm = str(outputs / "cgan-tiny"), str(outputs / "ddpm-tiny")
    requests = [
        ("/generate", (cgan, "", 11, "all", 4)),
        ("/walk", (cgan, "", 11, 12, "1", 5, "spherical")),
        ("/compare", (cgan, "", ddpm, "", 11, "2", 2, 3, "ddpm")),
    ]

    def answer(session, endpoint: str, inputs: tuple) -> list[np.ndarray]:
        result = session.predict(*inputs, api_name=endpoint)
        return [pixels(path) for path in result[:-1]]  # the pictures, not the caption (it holds timings)

    expected = [answer(server, endpoint, inputs) for endpoint, inputs in requests]

    def user(offset: int) -> list[str]:
        session, problems = client(app.demo.local_url), []
        for step in range(3):
            index = (offset + step) % 3
            got = answer(session, *requests[index])
            if len(got) != len(expected[index]) or not all(map(np.array_equal, got, expected[index])):
                problems.append(requests[index][0])
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [problem for share in pool.map(user, range(4)) for problem in share]
    assert problems == []


def test_digits_models_are_trained_saved_and_listed(app, server, tmp_path, monkeypatch):
    """The offline defaults: GANs and a DDPM trained on scikit-learn's digits, saved with a training record, found
    in an outputs folder, and trained on first use when picked in the list (here with a few steps and narrow nets).
    """
    torch.set_num_threads(1)  # as `python app.py` runs
    record = app.train_digits_gan(
        tmp_path / "cgan", conditional=True, steps=3, num_quality_samples=50, generator_channels=8
    )
    saved = json.loads((tmp_path / "cgan" / app.TRAINING_RECORD).read_text())
    assert saved == record and saved["steps"] == 3 and saved["model"] == "conditional DCGAN"
    assert 0.0 <= saved["class_accuracy"] <= 1.0 and 0.0 <= saved["class_entropy"] <= 1.0
    ddpm_record = app.train_digits_ddpm(tmp_path / "ddpm", steps=2, num_quality_samples=4, block_out_channels=(8, 16))
    assert (
        ddpm_record["steps"] == 2 and math.isfinite(ddpm_record["final_loss"]) and "class_accuracy" not in ddpm_record
    )
    gans, ddpms = app.find_trained_models([tmp_path])
    assert [value for _, value in gans] == [str(tmp_path / "cgan")] and "conditional DCGAN, 10 classes, 16 px" in gans[
        0
    ][0]
    assert [value for _, value in ddpms] == [str(tmp_path / "ddpm")]
    model = GANPipeline.from_pretrained(tmp_path / "cgan").model
    assert (model.config.image_size, model.config.num_classes, model.config.generator_channels) == (16, 10, 8)
    assert model.config.id2label[3] == "3"
    unet = DDPMPipeline.from_pretrained(tmp_path / "ddpm").unet
    assert unet.config.sample_size == 16 and tuple(unet.config.block_out_channels) == (8, 16)

    # First use through the app: the cGAN choice trains into the cache once, then the caption cites its record.
    monkeypatch.setitem(app.DIGITS_GAN_STEPS, app.CGAN_CHOICE, 2)
    monkeypatch.setitem(app.DIGITS_GAN, "generator_channels", 8)
    monkeypatch.setitem(app.DIGITS_GAN, "discriminator_channels", 8)
    picture, caption = server.predict(app.CGAN_CHOICE, "", 0, "all", 2, api_name="/generate")
    assert "conditional DCGAN trained here on scikit-learn digits (2 steps" in caption
    assert tiles(app, picture, 16)[9][1].shape == (16, 16)  # 10 rows of 2
    trained = app.space_cache_dir() / app.DIGITS_FOLDERS[app.CGAN_CHOICE]
    assert app.training_record(trained)["steps"] == 2
    assert dict((value, label) for label, value in app.model_choices())[app.CGAN_CHOICE].endswith("first use)")


def test_requirements_and_front_matter():
    requirements = [
        line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    readme = (SPACE_DIR / "README.md").read_text()
    sdk_version = re.search(r"^sdk_version: (\S+)$", readme, re.MULTILINE).group(1)
    assert requirements == [
        "hfdl[spaces] @ git+https://github.com/hfdl/hfdl",
        f"gradio=={sdk_version}",
        "diffusers>=0.30",
        "scikit-learn>=1.4",
    ]
    front_matter = readme.split("---")[1]
    assert "sdk: gradio" in front_matter and "app_file: app.py" in front_matter


@pytest.mark.slow
def test_python_app_py_serves_from_the_space_folder(outputs, tmp_path):
    port, log = free_port(), tmp_path / "space.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("HFDL_OUTPUTS", None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "app.py",
                "--outputs",
                str(outputs),
                "--ddpm",
                str(outputs / "ddpm-tiny" / "pipeline"),
                "--cache-dir",
                str(tmp_path),
                "--port",
                str(port),
            ],
            cwd=SPACE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "GAN studio on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        picture, caption = client(f"http://127.0.0.1:{port}/").predict(
            str(outputs / "gan-mlp"), "", 0, "", 3, api_name="/generate"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert pixels(picture).shape == (68, 196) and "3 samples" in caption  # 10 px x 6, 4 px gaps
    assert str(outputs / "cgan-tiny" / "final") in log.read_text()  # --outputs was searched
