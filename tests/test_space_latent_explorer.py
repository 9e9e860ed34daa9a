"""The latent-explorer Space: decoded grids, interpolation strips, slider decodes, samples and denoising against the
models' own ``encode`` / ``decode`` / ``sample``, through the running app and gradio_client.

Models are tiny seeded hfdl VAEs and autoencoders (untrained: the point is that the app shows what the model itself
computes, not that the pictures look like digits), saved the way the recipe and ``hfdl.hub.save_for_hub`` write
them. Pictures come back as PNGs enlarged by a whole factor (``hfdl.spaces.image_grid``), so ``picture[::f, ::f]``
gives each tile's ``round(255 * x)``: values are compared to within one grey level. Clients use ``ssl_verify=False``
(plain HTTP on loopback; see tests/test_space.py).
"""

from __future__ import annotations

import importlib.util
import json
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
pytest.importorskip("sklearn")
from PIL import Image, ImageDraw  # noqa: E402

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.layers.hfdl_autoencoding import corrupt_images  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402
from hfdl.spaces import image_grid  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "latent-explorer"
APP_PATH = SPACE_DIR / "app.py"

#: Tiny MLP models of the course's MNIST shape (28 px, 1 channel).
TINY = {"hidden_sizes": [32]}
#: One grey level, the rounding of a [0, 1] value to a PNG's 0-255 (plus float noise).
LEVEL = 1.0 / 255 + 1e-6


def save_model(directory: Path, preset: str, **overrides) -> Path:
    torch.manual_seed(0)
    model = hfdl.create_model(preset, **{**TINY, **overrides}).eval()
    spec, _ = resolve_preset(model.config.model_type)
    return save_for_hub(model, directory, processor=spec.make_image_processor(model.config))


def load(folder: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder).eval()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


def draw(path: Path, points, size=(200, 160), width=10) -> Path:
    """Black strokes on a white page, off-centre (the app crops and centres them)."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).line(points, fill="black", width=width)
    image.save(path)
    return path


def editor_value(path: Path | None) -> dict:
    """What gr.ImageEditor sends: the flattened picture as ``composite`` (an upload is also the ``background``)."""
    file = gradio_client.handle_file(str(path)) if path is not None else None
    return {"background": file, "layers": [], "composite": file}


def tiles(path: str, count: int, columns: int, side: int = 28) -> np.ndarray:
    """The tiles of an image_grid picture as (count, side, side) values in [0, 1]."""
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        pixels = np.asarray(picture.convert("L"), dtype=np.float64) / 255.0
    factor = pixels.shape[1] // (columns * side)
    rows = -(-count // columns)
    assert pixels.shape == (rows * side * factor, columns * side * factor)
    small = pixels[::factor, ::factor].reshape(rows, side, columns, side).transpose(0, 2, 1, 3)
    return small.reshape(rows * columns, side, side)[:count]


def prepared_pixels(app, picture_path: Path, model) -> torch.Tensor:
    """The pixel values the app feeds the model for this picture (models saved here carry no training record)."""
    prepared = app.prepare_input(app.read_image(str(picture_path)), 1, model.config.image_size)
    return torch.from_numpy(np.asarray(prepared, dtype=np.float32) / 255.0)[None, None]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """``outputs/`` with a 2-D VAE, a 5-D VAE in the recipe's layout (``best/``), a denoising autoencoder, and a
    classifier (listed in neither tab)."""
    root = tmp_path_factory.mktemp("outputs")
    save_model(root / "vae-2d", "vae-mnist-2d")
    save_model(root / "vae-5d" / "best", "vae-mnist", latent_dim=5)
    save_model(root / "dae", "denoising-ae-mnist", latent_dim=8)
    torch.manual_seed(0)
    save_for_hub(hfdl.create_model("mlp-digits"), root / "mlp")
    return root


@pytest.fixture(scope="module")
def app(outputs, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_OUTPUTS", str(outputs))
        patch.setenv("HFDL_SPACE_CACHE", str(tmp_path_factory.mktemp("space-cache")))
        patch.delenv("HFDL_VAE_MODEL", raising=False)
        patch.delenv("HFDL_AE_MODEL", raising=False)
        spec = importlib.util.spec_from_file_location(f"latent_explorer_app_{uuid.uuid4().hex[:8]}", APP_PATH)
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
def digits(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pictures")
    return {
        "seven": draw(folder / "seven.png", [(40, 30), (120, 30), (70, 140)]),
        "one": draw(folder / "one.png", [(100, 20), (100, 140)], size=(300, 160)),  # wide upload: any size is fine
    }


# ---------------------------------------------------------------------------------------------------------------------
# Without the server
# ---------------------------------------------------------------------------------------------------------------------


def test_import_builds_the_ui_without_loading_anything(outputs, tmp_path):
    """`import app` lists the models from their config.json alone: no torch, no hfdl, nothing trained or written."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        print([value for _, value in app.model_choices("vae")])
        print([value for _, value in app.model_choices("autoencoder")])
        print(sorted(name for name in ("torch", "transformers", "hfdl") if name in sys.modules))
        """
    )
    env = {**os.environ, "HFDL_OUTPUTS": str(outputs), "HFDL_SPACE_CACHE": str(tmp_path / "cache")}
    env.pop("HFDL_VAE_MODEL", None)
    env.pop("HFDL_AE_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    vaes, autoencoders, loaded = result.stdout.strip().splitlines()[-3:]
    assert loaded == "[]"
    assert vaes == repr([str(outputs / "vae-2d"), str(outputs / "vae-5d"), "vae-digits-2d (trained here)"])
    assert autoencoders == repr([str(outputs / "dae"), "denoising-ae-digits (trained here)"])
    assert not (tmp_path / "cache").exists()


def test_digits_models_are_trained_framed_and_listed(app, tmp_path, digits):
    """The offline defaults, at one epoch and a tiny width: saved with their processor and a training record, the
    digits framed as MNIST's (20 of 28 px), and a drawing prepared the same way (made at 8 px, enlarged, framed)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vae_record = app.train_digits_vae(tmp_path / "vae", epochs=1, hidden_sizes=[16])
        ae_record = app.train_digits_denoiser(tmp_path / "ae", epochs=1, hidden_sizes=[16])
    finally:
        torch.set_num_threads(threads)
    for folder, record in ((tmp_path / "vae", vae_record), (tmp_path / "ae", ae_record)):
        assert json.loads((folder / app.TRAINING_RECORD).read_text()) == record
        assert (record["epochs"], record["test_images"], record["digit_side"], record["digit_box"]) == (1, 360, 8, 20)
        assert (folder / "preprocessor_config.json").is_file() and (folder / "model.safetensors").is_file()
    assert vae_record["test_elbo_nats"] < 0
    assert 0 < ae_record["test_mse_reconstruction"] and 0 < ae_record["test_mse_noisy"]
    assert load(tmp_path / "vae").config.latent_dim == app.DIGITS_VAE_LATENT_DIM
    assert load(tmp_path / "ae").config.noise_type != "none"
    assert [value for _, value in app.find_trained_models("vae", [tmp_path])] == [str(tmp_path / "vae")]
    assert [value for _, value in app.find_trained_models("autoencoder", [tmp_path])] == [str(tmp_path / "ae")]

    pixels, train_index, test_index = app._digits_data(28, 0)
    assert pixels.shape == (1797, 1, 28, 28) and len(train_index) == 1437 and len(test_index) == 360
    assert float(pixels[:, :, :4].max()) == 0.0 and float(pixels[:, :, -4:].max()) == 0.0  # a 4 px black frame
    assert float(pixels.max()) > 0.9

    prepared = np.asarray(app.prepare_input(app.read_image(str(digits["seven"])), 1, 28, digit_side=8, box=20))
    assert prepared.shape == (28, 28) and prepared[:4].max() == 0 and prepared[:, -4:].max() == 0
    rows = np.flatnonzero(prepared.max(axis=1) > 64)
    assert rows[0] <= 5 and rows[-1] >= 22  # the 7 is taller than wide: it spans the 20 px box


def test_image_grid_keeps_values_and_layout():
    images = np.random.default_rng(0).random((5, 1, 4, 3))
    picture = image_grid(images, columns=2, min_width=13)
    assert picture.mode == "L" and picture.size == (2 * 3 * 3, 3 * 4 * 3)  # factor 3: 18 px >= 13
    small = np.asarray(picture)[::3, ::3] / 255.0
    np.testing.assert_allclose(small[8:12, 0:3], images[4, 0], atol=LEVEL)
    assert small[8:12, 3:6].max() == 0  # the empty cell
    assert image_grid(torch.rand(2, 3, 4, 4)).mode == "RGB"
    with pytest.raises(ValueError, match="shape"):
        image_grid(np.zeros((2, 2, 4, 4)))


def test_grid_latents_are_laid_out_as_a_plot(app):
    latents = app.grid_latents(3, 3, 0, 2, 2.0, base=[9.0, 8.0, 7.0])
    assert latents.shape == (9, 3)
    np.testing.assert_array_equal(latents[:3, 0], [-2, 0, 2])  # left to right
    np.testing.assert_array_equal(latents[::3, 2], [2, 0, -2])  # top to bottom
    np.testing.assert_array_equal(latents[:, 1], 8.0)


def test_controls_follow_the_model(app, outputs, tmp_path):
    """Choosing a VAE shows one slider per latent dimension and lists its dimensions for the grid (config.json only)."""
    updates = app.settings_for(str(outputs / "vae-5d"))
    assert [update.visible for update in updates[: app.MAX_SLIDERS]] == [True] * 5 + [False] * 11
    assert [value for _, value in updates[-2].choices] == [1, 2, 3, 4, 5] and updates[-1].value == 2
    assert sum(update.visible for update in app.settings_for(app.DIGITS_VAE_CHOICE)[: app.MAX_SLIDERS]) == 2
    typed = app.settings_for(str(outputs / "vae-5d"), str(outputs / "vae-2d"))  # the typed one wins
    assert sum(update.visible for update in typed[: app.MAX_SLIDERS]) == 2
    assert app.settings_for(str(tmp_path / "missing")) == tuple(gr.skip() for _ in range(app.MAX_SLIDERS + 2))


def test_sliders_decode_live_and_the_encode_button_decodes_too(app):
    """The UI wiring that gradio_client cannot click: releasing any of the 16 sliders runs /decode, and setting the
    sliders from digit A's code decodes them once it succeeded; choosing a VAE refits the controls."""
    dependencies = {
        (dependency.get("api_name"), tuple(target[1] for target in dependency["targets"])): dependency
        for dependency in app.demo.get_config_file()["dependencies"]
    }
    decode = dependencies["decode", ("release",) * app.MAX_SLIDERS]
    assert len(decode["inputs"]) == 2 + app.MAX_SLIDERS and decode["trigger_mode"] == "always_last"
    encode = dependencies["encode", ("click",)]
    after_encode = dependencies["decode_handler", ("success",)]
    assert after_encode["inputs"] == decode["inputs"] and after_encode["outputs"] == decode["outputs"]
    assert after_encode["trigger_after"] == list(dependencies).index(("encode", ("click",))) and encode["outputs"]
    assert len(dependencies["settings_for", ("change",)]["outputs"]) == app.MAX_SLIDERS + 2


def test_pipeline_folder_loads(app, outputs, tmp_path):
    pipelines = pytest.importorskip("hfdl.pipelines")
    pipe = pipelines.VAEPipeline(load(outputs / "vae-2d"))
    pipe.save_pretrained(tmp_path / "pipe")
    assert app.latent_dim_of(str(tmp_path / "pipe")) == 2
    result = app.decode_sliders(str(tmp_path / "pipe"), [0.5, -1.0])
    expected = pipe.model.decode(torch.tensor([[0.5, -1.0]]))
    np.testing.assert_allclose(result.images, expected.detach().numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# Through the running app
# ---------------------------------------------------------------------------------------------------------------------


def test_grid_of_a_2d_vae_equals_its_decode(server, outputs):
    folder = outputs / "vae-2d"
    path, caption = server.predict(str(folder), "", 5, 1, 2, 3.0, "zeros", None, api_name="/grid")
    values = np.linspace(-3, 3, 5)
    latents = torch.tensor([[x, y] for y in values[::-1] for x in values], dtype=torch.float32)
    with torch.no_grad():
        expected = load(folder).decode(latents)[:, 0].numpy()
    np.testing.assert_allclose(tiles(path, 25, 5), expected, atol=LEVEL)
    assert "5x5 decoded codes" in caption and "z1 from -3 (left) to 3 (right)" in caption


def test_grid_of_a_larger_vae_spans_two_dimensions_around_a_digit(app, server, outputs, digits):
    """5-D VAE: z2 across, z4 down, the other three at digit A's posterior mean (from the model's own encode)."""
    folder = outputs / "vae-5d"
    path, caption = server.predict(
        str(folder), "", 4, 2, 4, 2.0, "digit A", editor_value(digits["seven"]), api_name="/grid"
    )
    model = load(folder / "best")
    with torch.no_grad():
        code = model.encode(prepared_pixels(app, digits["seven"], model))[0][0]
        values = torch.linspace(-2, 2, 4)
        latents = code.repeat(16, 1)
        latents[:, 1] = values.repeat(4)
        latents[:, 3] = values.flip(0).repeat_interleave(4)
        expected = model.decode(latents)[:, 0].numpy()
    np.testing.assert_allclose(tiles(path, 16, 4), expected, atol=LEVEL)
    assert "other 3 dimensions are at digit A's code" in caption
    zero_path, _ = server.predict(str(folder), "", 4, 2, 4, 2.0, "zeros", None, api_name="/grid")
    assert not np.allclose(tiles(zero_path, 16, 4), expected, atol=LEVEL)


def test_interpolation_strip_equals_the_decoded_line(app, server, outputs, digits):
    folder = outputs / "vae-2d"
    path, caption = server.predict(
        str(folder), "", editor_value(digits["seven"]), editor_value(digits["one"]), 6, api_name="/interpolate"
    )
    model = load(folder)
    with torch.no_grad():
        start = model.encode(prepared_pixels(app, digits["seven"], model))[0][0]
        end = model.encode(prepared_pixels(app, digits["one"], model))[0][0]
        weights = torch.linspace(0, 1, 6)[:, None]
        expected = model.decode((1 - weights) * start + weights * end)[:, 0].numpy()
    assert not torch.allclose(start, end)
    np.testing.assert_allclose(tiles(path, 6, 6), expected, atol=LEVEL)
    assert f"({float(start[0]):+.2f}, {float(start[1]):+.2f})" in caption


def test_sliders_decode_what_the_model_decodes(app, server, outputs, digits):
    """/decode takes all 16 slider values; those past the model's code are hidden and ignored. /encode sets the
    sliders to digit A's posterior mean (to the sliders' 0.01 step)."""
    folder = outputs / "vae-5d"
    model = load(folder / "best")
    values = [1.5, -0.25, 0.0, 2.75, -3.0] + [7.0] * 11
    path, caption = server.predict(str(folder), "", *values, api_name="/decode")
    with torch.no_grad():
        expected = model.decode(torch.tensor([values[:5]]))[0, 0].numpy()
    np.testing.assert_allclose(tiles(path, 1, 1)[0], expected, atol=LEVEL)
    assert "z = (+1.50, -0.25, +0.00, +2.75, -3.00)" in caption

    *sliders, caption = server.predict(str(folder), "", editor_value(digits["one"]), api_name="/encode")
    with torch.no_grad():
        code = model.encode(prepared_pixels(app, digits["one"], model))[0][0].numpy()
    np.testing.assert_allclose(sliders[:5], code, atol=0.005 + 1e-6)
    assert sliders[5:] == [0.0] * 11 and "set on the sliders" in caption


def test_samples_follow_the_seed(server, outputs):
    folder = outputs / "vae-2d"
    model = load(folder)
    path, caption = server.predict(str(folder), "", 6, 3, api_name="/sample")
    with torch.no_grad():
        expected = model.sample(6, generator=torch.Generator().manual_seed(3))[:, 0].numpy()
    np.testing.assert_allclose(tiles(path, 6, 6), expected, atol=LEVEL)
    assert "6 samples" in caption and "seed 3" in caption
    other, _ = server.predict(str(folder), "", 6, 4, api_name="/sample")
    assert not np.allclose(tiles(other, 6, 6), expected, atol=LEVEL)


@pytest.mark.parametrize("noise_type, level", [("gaussian", 0.4), ("masking", 0.5), ("salt_and_pepper", 0.2)])
def test_denoising_shows_the_noise_and_the_models_reconstruction(app, server, outputs, digits, noise_type, level):
    folder = outputs / "dae"
    clean_path, noisy_path, reconstruction_path, caption = server.predict(
        str(folder), "", editor_value(digits["seven"]), noise_type, level, 11, api_name="/denoise"
    )
    model = load(folder)
    clean = prepared_pixels(app, digits["seven"], model)
    noisy = corrupt_images(clean, noise_type, level, torch.Generator().manual_seed(11))
    with torch.no_grad():
        reconstruction = model.decode(model.encode(noisy))
    for path, expected in ((clean_path, clean), (noisy_path, noisy), (reconstruction_path, reconstruction)):
        np.testing.assert_allclose(tiles(path, 1, 1)[0], expected[0, 0].numpy(), atol=LEVEL)
    assert not torch.equal(clean, noisy)
    noisy_error = float((noisy - clean).pow(2).mean())
    assert f"noisy input {noisy_error:.4f}" in caption and f"{noise_type} noise" in caption


def test_a_vae_typed_in_the_denoising_tab_reconstructs_from_its_mean(app, server, outputs, digits):
    folder = outputs / "vae-5d"
    _, _, reconstruction_path, _ = server.predict(
        "", str(folder), editor_value(digits["one"]), "none", 0.0, 0, api_name="/denoise"
    )
    model = load(folder / "best")
    with torch.no_grad():
        expected = model.decode(model.encode(prepared_pixels(app, digits["one"], model))[0])[0, 0].numpy()
    np.testing.assert_allclose(tiles(reconstruction_path, 1, 1)[0], expected, atol=LEVEL)


def test_unusable_inputs_are_reported(app, server, outputs, tmp_path, digits):
    vae, dae = str(outputs / "vae-2d"), str(outputs / "dae")
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "empty-canvas.png")
    seven, one = editor_value(digits["seven"]), editor_value(digits["one"])
    # The autoencoder cached by the denoising tab must still be refused by the VAE tab (a case below).
    server.predict(dae, "", seven, "none", 0.0, 0, api_name="/denoise")
    cases = [
        ((vae, "", None, seven, 5), "/interpolate", "Digit A: no image"),
        ((vae, "", seven, editor_value(None), 5), "/interpolate", "Digit B: no image"),
        ((vae, "", seven, editor_value(tmp_path / "notes.txt"), 5), "/interpolate", "notes.txt is not an image"),
        ((vae, "", seven, one, 40), "/interpolate", "steps must be a whole number from 2 to 24; got 40"),
        ((dae, "", editor_value(tmp_path / "empty-canvas.png"), "gaussian", 0.3, 0), "/denoise", "canvas is empty"),
        ((dae, "", editor_value(tmp_path / "blank.png"), "gaussian", 0.3, 0), "/denoise", "image is blank"),
        ((dae, "", seven, "speckle", 0.3, 0), "/denoise", "noise type must be one of gaussian, masking"),
        ((dae, "", seven, "gaussian", 1.5, 0), "/denoise", "noise level must be a number from 0 to 1; got 1.5"),
        ((vae, "", 5, 1, 1, 3.0, "zeros", None), "/grid", "x and y dimensions must differ"),
        ((vae, "", 5, 1, 3, 3.0, "zeros", None), "/grid", "y dimension must be a whole number from 1 to 2; got 3"),
        ((vae, "", 1, 1, 2, 3.0, "zeros", None), "/grid", "grid size must be a whole number from 2 to 25"),
        ((str(outputs / "vae-5d"), "", 4, 1, 2, 3.0, "digit A", None), "/grid", "Digit A: no image"),
        ((vae, "", 5, 1, 2, 3.0, "sideways", None), "/grid", "base must be one of zeros, digit A"),
        ((vae, "", 0, -1), "/sample", "number of samples must be a whole number from 1 to 64"),
        ((vae, "", 4, -1), "/sample", "seed must be a whole number from 0"),
        ((vae, "", 11.0, *[0.0] * 15), "/decode", "z1 must be a number from -10 to 10; got 11.0"),
        ((dae, "", 5, 1, 2, 3.0, "zeros", None), "/grid", "holds a 'hfdl-autoencoder' model; this tab needs"),
        ((str(outputs / "mlp"), "", seven, "none", 0.0, 0), "/denoise", "holds a 'hfdl-mlp' model"),
        ((vae, str(tmp_path / "missing"), 4, 0), "/sample", "Could not load"),
    ]
    # The digits models are trained only for a usable input: a missing or blank digit is answered at once.
    cases += [
        ((app.DIGITS_VAE_CHOICE, "", None, seven, 5), "/interpolate", "Digit A: no image"),
        ((app.DIGITS_AE_CHOICE, "", editor_value(tmp_path / "blank.png"), "gaussian", 0.3, 0), "/denoise", "blank"),
    ]
    for inputs, api_name, message in cases:
        with pytest.raises(Exception, match=message):  # noqa: PT012
            server.predict(*inputs, api_name=api_name)
            pytest.fail(f"{api_name}{inputs} did not raise")
    assert not any((app.space_cache_dir() / folder).exists() for folder in app.DIGITS_FOLDERS.values())


def test_four_concurrent_clients(app, server, outputs, digits, tmp_path):
    """4 clients at once, each asking for a grid, a slider decode and a denoising in turn, then sending a blank
    upload: every answer arrives and equals the one-client answer, pixel for pixel, and the bad one is reported."""
    vae, dae = str(outputs / "vae-2d"), str(outputs / "dae")
    requests = [
        ((vae, "", 6, 1, 2, 3.0, "zeros", None), "/grid", 0),
        ((vae, "", 0.5, -1.25, *[0.0] * 14), "/decode", 0),
        ((dae, "", editor_value(digits["seven"]), "masking", 0.3, 5), "/denoise", 2),
    ]

    def pixels(inputs, api_name, index, session) -> np.ndarray:
        path = session.predict(*inputs, api_name=api_name)[index]
        with Image.open(path) as picture:
            return np.asarray(picture.convert("L"))

    expected = [pixels(*request, server) for request in requests]

    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)

    def user(offset: int) -> list[str]:
        session, problems = client(app.demo.local_url), []
        for step in range(6):
            which = (offset + step) % 3
            if not np.array_equal(pixels(*requests[which], session), expected[which]):
                problems.append(requests[which][1])
        try:  # a bad upload among them gets the app's own message
            session.predict(dae, "", editor_value(blank), "gaussian", 0.3, 0, api_name="/denoise")
            problems.append("blank upload accepted")
        except Exception as error:  # noqa: BLE001 - the message is what is checked
            if "image is blank" not in str(error):
                problems.append(f"blank upload: {error}")
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [problem for share in pool.map(user, range(4)) for problem in share]
    assert problems == []


def test_requirements_and_front_matter():
    requirements = [
        line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    readme = (SPACE_DIR / "README.md").read_text()
    sdk_version = re.search(r"^sdk_version: (\S+)$", readme, re.MULTILINE).group(1)
    assert requirements == [
        "hfdl[spaces] @ git+https://github.com/hfdl/hfdl",
        f"gradio=={sdk_version}",
        "scikit-learn>=1.4",
    ]
    front_matter = readme.split("---")[1]
    assert "sdk: gradio" in front_matter and "app_file: app.py" in front_matter


@pytest.mark.slow
def test_python_app_py_serves_from_the_space_folder(outputs, tmp_path):
    port, log = free_port(), tmp_path / "space.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("HFDL_OUTPUTS", None)
    command = [sys.executable, "app.py", "--outputs", str(outputs), "--cache-dir", str(tmp_path), "--port", str(port)]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=SPACE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Latent explorer on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        path, caption = client(f"http://127.0.0.1:{port}/").predict(
            str(outputs / "vae-2d"), "", 3, 7, api_name="/sample"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert tiles(path, 3, 3).shape == (3, 28, 28) and "seed 7" in caption
    assert str(outputs / "dae") in log.read_text()  # --outputs was searched
