"""The vit-attention Space: predictions and attention maps against the model's own forward pass, through the running
app and gradio_client.

Models are tiny seeded hfdl ViTs (untrained, with a wide weight init so that attention is far from uniform and the
maps differ between layers and heads), saved the way the recipe and ``hfdl.hub.save_for_hub`` write them: the point
is that the app shows what the model itself computes, not that it recognises anything. Clients use
``ssl_verify=False`` (plain HTTP on loopback; see tests/test_space.py).
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
from PIL import Image, ImageDraw  # noqa: E402

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.inference import class_name  # noqa: E402
from hfdl.models.vit import attention_rollout, rollout_map  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "vit-attention"
APP_PATH = SPACE_DIR / "app.py"

#: vit-mnist's geometry (28 px, 7x7 patches of 4 px, 1 channel), narrow and shallow.
DIGIT_VIT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "initializer_range": 0.4}
#: An RGB ViT without a class token (mean pooling), 32 px in 4x4 patches of 8 px.
RGB_VIT = {
    "image_size": 32,
    "patch_size": 8,
    "num_channels": 3,
    "hidden_size": 24,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "class_token": False,
    "pooling": "mean",
    "num_labels": 4,
    "initializer_range": 0.4,
}


def save_vit(directory: Path, preset: str, **overrides) -> Path:
    torch.manual_seed(0)
    model = hfdl.create_model(preset, **overrides).eval()
    spec, _ = resolve_preset(model.config.model_type)
    return save_for_hub(model, directory, processor=spec.make_image_processor(model.config))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


def draw_seven(path: Path) -> Path:
    """A thick black '7' off-centre on a larger white page."""
    image = Image.new("RGB", (200, 150), "white")
    ImageDraw.Draw(image).line([(30, 20), (80, 20), (55, 110)], fill="black", width=9)
    image.save(path)
    return path


def editor_value(path: Path | None) -> dict:
    """What gr.ImageEditor sends: the flattened picture as ``composite`` (an upload is also the ``background``)."""
    file = gradio_client.handle_file(str(path)) if path is not None else None
    return {"background": file, "layers": [], "composite": file}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """``outputs/`` with a digit ViT in the recipe's layout (``best/``), an RGB ViT, and a CNN (not listed)."""
    root = tmp_path_factory.mktemp("outputs")
    save_vit(root / "vit-digits-tiny" / "best", "vit-mnist", **DIGIT_VIT)
    save_vit(root / "vit-rgb", "vit-cifar", **RGB_VIT)
    save_vit(root / "lenet5", "lenet5-modern")
    return root


@pytest.fixture(scope="module")
def app(outputs, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_OUTPUTS", str(outputs))
        patch.setenv("HFDL_SPACE_CACHE", str(tmp_path_factory.mktemp("space-cache")))
        patch.delenv("HFDL_MODEL", raising=False)
        spec = importlib.util.spec_from_file_location(f"vit_attention_app_{uuid.uuid4().hex[:8]}", APP_PATH)
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
def seven(tmp_path_factory) -> Path:
    return draw_seven(tmp_path_factory.mktemp("pictures") / "seven.png")


def reference(folder: Path, prepared: Image.Image):
    """The model's own outputs (with attentions) through transformers' Auto classes, on the prepared picture."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    pixel_values = AutoImageProcessor.from_pretrained(folder)(prepared, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        outputs = model(pixel_values=pixel_values, output_attentions=True)
    return model.config, outputs


def grid_values(app, picture_path: str, grid_side: int) -> np.ndarray:
    """The colours of the patch-grid picture, one per patch (it is enlarged by an integer factor, nearest)."""
    with Image.open(picture_path) as picture:
        factor = picture.width // grid_side
        assert picture.size == (grid_side * factor, grid_side * factor) and picture.width >= app.DISPLAY
        return np.asarray(picture.convert("RGB"))[::factor, ::factor].astype(int)


def test_import_builds_the_ui_without_loading_anything(outputs, tmp_path):
    """`import app` lists the ViTs from their config.json alone: no torch, no hfdl, nothing trained or written."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        print([value for _, value in app.model_choices()])
        print(sorted(name for name in ("torch", "transformers", "hfdl") if name in sys.modules))
        """
    )
    env = {**os.environ, "HFDL_OUTPUTS": str(outputs), "HFDL_SPACE_CACHE": str(tmp_path / "cache")}
    env.pop("HFDL_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    choices, loaded = result.stdout.strip().splitlines()[-2:]
    assert loaded == "[]"
    # The two ViTs (not the CNN), then the digits ViT that would be trained on first use.
    assert choices == repr([str(outputs / "vit-digits-tiny"), str(outputs / "vit-rgb"), "vit-digits (trained here)"])
    assert not (tmp_path / "cache").exists()


def test_digits_vit_is_trained_saved_and_listed(app, tmp_path, seven):
    """The offline default: a ViT trained on scikit-learn's digits, saved with its processor and a training record.

    One PyTorch thread, as ``python app.py`` runs: on 2 shared cores this step took 32 s with 2 threads, 1 s with 1.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = app.train_digits_vit(tmp_path / "vit-digits", epochs=1, hidden_size=16, intermediate_size=32)
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "vit-digits" / app.TRAINING_RECORD).read_text())
    assert saved == record and saved["epochs"] == 1 and saved["test_images"] == 360
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert app.find_trained_models([tmp_path])[0][1] == str(tmp_path / "vit-digits")
    config, _ = reference(tmp_path / "vit-digits", Image.new("L", (28, 28)))
    assert (config.image_size, config.patch_size, config.num_channels, config.hidden_size) == (28, 4, 1, 16)
    assert [config.id2label[index] for index in range(10)] == [str(digit) for digit in range(10)]
    result = app.analyse(str(seven), str(tmp_path / "vit-digits"))
    assert f"{saved['test_accuracy']:.1%} test accuracy" in result.caption
    # Drawings for it are made at the digits' 8 px and enlarged as its training digits were, not sharp at 28 px.
    assert saved["digit_side"] == 8
    picture = app.read_image(str(seven))
    blurred = app.prepare_input(picture, 1, 28, "auto", digit_side=8)
    np.testing.assert_array_equal(np.asarray(result.network_input), np.asarray(blurred))
    assert not np.array_equal(np.asarray(blurred), np.asarray(app.prepare_input(picture, 1, 28)))


def test_head_setting_is_parsed_and_checked(app):
    assert app.parse_head("mean", 4) == (None, "mean")
    assert app.parse_head("max", 4) == (None, "max")
    assert app.parse_head("3", 4) == (2, "mean")
    assert app.parse_head(1, 4) == (0, "mean")
    for bad in ("5", "0", "2.5", "median", None):
        with pytest.raises(app.ExplorerInputError, match="head must be mean, max, min .* from 1 to 4"):
            app.parse_head(bad, 4)
    assert [value for _, value in app.head_choices(3)] == ["mean", "max", "min", "1", "2", "3"]


def test_layer_slider_and_head_list_follow_the_model(app, outputs, tmp_path):
    """Choosing a model fits the controls to its depth and heads, read from config.json alone."""
    slider, heads = app.settings_for(str(outputs / "vit-rgb"))
    assert (slider.maximum, slider.value) == (2, 2)
    assert [value for _, value in heads.choices] == ["mean", "max", "min", "1", "2", "3"]
    slider, heads = app.settings_for(str(outputs / "vit-rgb"), str(outputs / "vit-digits-tiny"))  # typed one wins
    assert (slider.maximum, len(heads.choices)) == (3, 7)
    preset = resolve_preset(app.DIGITS_PRESET)[0].presets[app.DIGITS_PRESET]
    assert app.model_shape(app.DIGITS_CHOICE) == (preset["num_hidden_layers"], preset["num_attention_heads"])
    assert app.model_shape(str(outputs / "lenet5")) is None and app.model_shape("org/name") is None
    assert app.settings_for(str(tmp_path / "missing")) == (gr.skip(), gr.skip())


def test_controls_follow_a_hub_model_in_the_local_cache(app, outputs, tmp_path, monkeypatch):
    """A Hub id already in the Hub cache is read from its snapshot's config.json, with nothing downloaded."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--org--vit-rgb"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.parent.mkdir()
    (snapshot).symlink_to(outputs / "vit-rgb")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert app.model_shape("org/vit-rgb") == (2, 3)
    assert app.model_shape("org/not-cached") is None and app.model_shape("not a/repo id") is None


def test_rgb_mean_pooled_vit_uses_the_mean_row(app, outputs, tmp_path):
    """A ViT without a class token: the map is the mean of all tokens' rows, per head too; the image is RGB."""
    picture = Image.new("RGB", (64, 48), (40, 160, 60))
    ImageDraw.Draw(picture).ellipse([8, 8, 40, 40], fill=(220, 30, 30))
    result = app.analyse(picture, str(outputs / "vit-rgb"), layer=2, head="max", discard_ratio=0.2)
    assert result.network_input.mode == "RGB" and result.network_input.size == (32, 32)
    config, reference_outputs = reference(outputs / "vit-rgb", result.network_input)
    rolled = attention_rollout(reference_outputs.attentions, head_fusion="max", discard_ratio=0.2)
    expected = rollout_map(rolled, 4, num_prefix_tokens=0)[0].numpy()
    np.testing.assert_allclose(result.rollout, expected, atol=1e-5)
    for head, head_map in enumerate(result.head_maps):
        row_mean = reference_outputs.attentions[1][0, head].mean(dim=0).numpy()
        unit = (row_mean - row_mean.min()) / (row_mean.max() - row_mean.min())
        np.testing.assert_allclose(head_map, unit.reshape(4, 4), atol=1e-5)
    assert "mean over all tokens (no class token)" in result.caption
    assert list(result.scores) == [
        class_name(config, int(i)) for i in reference_outputs.logits[0].argsort(descending=True)
    ]


def test_prediction_and_maps_equal_the_models_own(app, server, outputs, seven):
    """/analyse against transformers' Auto classes on the same prepared picture: the scores, the rollout on the
    patch grid (pixel colours), and, in process, each head's map of the chosen layer."""
    folder = outputs / "vit-digits-tiny"
    label, overlay_path, grid_path, gallery, caption = server.predict(
        editor_value(seven), str(folder), "", 3, "rollout", "mean", 0.0, "auto", api_name="/analyse"
    )
    prepared = app.prepare_input(app.read_image(str(seven)), 1, 28)
    config, outputs_ = reference(folder / "best", prepared)
    probabilities = outputs_.logits.softmax(-1)[0]
    names = [class_name(config, index) for index in range(config.num_labels)]
    scores = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
    assert label["label"] == names[int(probabilities.argmax())] and len(scores) == app.TOP_K
    for name, score in scores.items():
        assert score == pytest.approx(float(probabilities[names.index(name)]), abs=1e-5)

    expected = rollout_map(attention_rollout(outputs_.attentions), 7)[0].numpy()
    np.testing.assert_allclose(grid_values(app, grid_path, 7), app.heat_colors(expected), atol=3)
    assert "rollout through layers 1-3" in caption and "7x7 patches" in caption
    with Image.open(overlay_path) as overlay:
        assert overlay.size == (224, 224)  # 28 px enlarged 8 times
    assert [item["caption"].split(":")[0] for item in gallery] == [f"layer 3, head {h}" for h in range(1, 5)]

    result = app.analyse(str(seven), str(folder), layer=2, mode="layer", head="1")
    for head, head_map in enumerate(result.head_maps):
        np.testing.assert_allclose(head_map, rollout_map(outputs_.attentions[1][:, head], 7)[0].numpy(), atol=1e-5)
    single = rollout_map(attention_rollout(outputs_.attentions[1:2], head=0), 7)[0].numpy()
    np.testing.assert_allclose(result.rollout, single, atol=1e-5)


def test_the_map_follows_layer_head_mode_and_discard(app, server, outputs, seven):
    folder = str(outputs / "vit-digits-tiny")
    settings = [
        (1, "rollout", "mean", 0.0),
        (3, "rollout", "mean", 0.0),
        (3, "rollout", "2", 0.0),
        (3, "rollout", "max", 0.0),
        (3, "rollout", "mean", 0.9),
        (2, "layer", "mean", 0.0),
    ]
    grids = []
    for layer, mode, head, discard in settings:
        grid_path = server.predict(
            editor_value(seven), folder, "", layer, mode, head, discard, "auto", api_name="/analyse"
        )[2]
        grids.append(grid_values(app, grid_path, 7))
    for first in range(len(grids)):
        for second in range(first + 1, len(grids)):
            assert not np.array_equal(grids[first], grids[second]), (settings[first], settings[second])
    # One layer rolled out is that layer's attention: the two modes agree at layer 1.
    layer_one = server.predict(editor_value(seven), folder, "", 1, "layer", "mean", 0.0, "auto", api_name="/analyse")
    np.testing.assert_array_equal(grid_values(app, layer_one[2], 7), grids[0])


def test_unusable_inputs_are_reported(app, server, outputs, tmp_path, seven):
    folder = str(outputs / "vit-digits-tiny")
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "empty-canvas.png")
    ok = editor_value(seven)
    cases = [
        ((None, folder, "", 3, "rollout", "mean", 0.0, "auto"), "No image"),
        ((editor_value(None), folder, "", 3, "rollout", "mean", 0.0, "auto"), "No image"),
        (
            (editor_value(tmp_path / "empty-canvas.png"), folder, "", 3, "rollout", "mean", 0.0, "auto"),
            "canvas is empty",
        ),
        ((editor_value(tmp_path / "blank.png"), folder, "", 3, "rollout", "mean", 0.0, "auto"), "blank"),
        (
            (editor_value(tmp_path / "notes.txt"), folder, "", 3, "rollout", "mean", 0.0, "auto"),
            "notes.txt is not an image",
        ),
        ((ok, folder, "", 4, "rollout", "mean", 0.0, "auto"), "layer must be a whole number from 1 to 3; got 4"),
        ((ok, folder, "", 3, "rollout", "5", 0.0, "auto"), "head must be .* from 1 to 4; got '5'"),
        ((ok, folder, "", 3, "rollout", "mean", 1.5, "auto"), "discard ratio must be a number from 0 to 0.99"),
        ((ok, folder, "", 3, "sideways", "mean", 0.0, "auto"), "mode must be one of rollout, layer"),
        ((ok, folder, str(tmp_path / "missing"), 3, "rollout", "mean", 0.0, "auto"), "Could not load"),
        ((ok, folder, str(outputs / "lenet5"), 3, "rollout", "mean", 0.0, "auto"), "needs a Vision Transformer"),
    ]
    # The digits ViT is trained only for a usable input: a blank canvas is answered at once.
    cases.append(
        ((editor_value(tmp_path / "blank.png"), app.DIGITS_CHOICE, "", 4, "rollout", "mean", 0.0, "auto"), "blank")
    )
    for inputs, message in cases:
        with pytest.raises(Exception, match=message):
            server.predict(*inputs, api_name="/analyse")
    assert not (app.space_cache_dir() / app.DIGITS_FOLDER).exists()


def test_four_concurrent_clients(app, server, outputs, seven):
    """4 clients at once, each asking for 3 different maps: every answer arrives and equals the one-client answer."""
    folder = str(outputs / "vit-digits-tiny")
    settings = [(3, "rollout", "mean"), (2, "layer", "3"), (1, "rollout", "min")]
    expected = {}
    for layer, mode, head in settings:
        label, _, grid_path, _, _ = server.predict(
            editor_value(seven), folder, "", layer, mode, head, 0.0, "auto", api_name="/analyse"
        )
        expected[layer, mode, head] = (label["label"], grid_values(app, grid_path, 7))

    def user(offset: int) -> list[str]:
        session, problems = client(app.demo.local_url), []
        for step in range(3):
            layer, mode, head = settings[(offset + step) % 3]
            label, _, grid_path, gallery, _ = session.predict(
                editor_value(seven), folder, "", layer, mode, head, 0.0, "auto", api_name="/analyse"
            )
            want_label, want_grid = expected[layer, mode, head]
            if label["label"] != want_label or not np.array_equal(grid_values(app, grid_path, 7), want_grid):
                problems.append(f"{layer}/{mode}/{head}")
            if len(gallery) != 4:
                problems.append("gallery")
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
def test_python_app_py_serves_from_the_space_folder(outputs, tmp_path, seven):
    port, log = free_port(), tmp_path / "space.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("HFDL_OUTPUTS", None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--outputs", str(outputs), "--cache-dir", str(tmp_path), "--port", str(port)],
            cwd=SPACE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "ViT attention on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        label = client(f"http://127.0.0.1:{port}/").predict(
            editor_value(seven), str(outputs / "vit-rgb"), "", 2, "rollout", "mean", 0.0, "auto", api_name="/analyse"
        )[0]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(label["confidences"]) == 4
    assert str(outputs / "vit-digits-tiny") in log.read_text()  # --outputs was searched
