"""The cnn-explorer Space: the convolution taught by hand, and the running app called through gradio_client.

Models are small, untrained hfdl CNNs with fixed seeds, saved into a temporary ``outputs/`` folder the way the main
job and ``hfdl.hub.save_for_hub`` write them: the point is that the app shows what the model itself computes (its
scores, its first layer's weights, its hidden states) for the input it prepared, not that it recognises anything.
Clients use ``ssl_verify=False`` (plain HTTP on loopback; see tests/test_space.py).
"""

from __future__ import annotations

import importlib.util
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

# Before gradio or transformers are imported: no analytics, no Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.inference import class_name  # noqa: E402
from hfdl.registry import REGISTRY, resolve_preset  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "cnn-explorer"
APP_PATH = SPACE_DIR / "app.py"

# Small versions of the chapter's networks, cheap on 2 CPU cores: one grayscale (LeNet-5, as the main job trains
# it), two RGB (a shallow CIFAR ResNet; a narrow VGG whose last hidden states are fully connected, hence 2-D).
RESNET = {"stage_depths": [1, 1, 1]}
VGG = {"image_size": 32, "stage_channels": [4, 8, 8, 8, 8], "hidden_sizes": [16, 16], "num_labels": 4}


def processor_for(model):
    spec, _ = resolve_preset(model.config.model_type)
    return spec.make_image_processor(model.config)


def save_lenet(directory: Path) -> Path:
    """LeNet-5 in the training recipe's layout (the model in ``best/``), as ``hfdl demo`` leaves it."""
    torch.manual_seed(0)
    model = hfdl.create_model("lenet5-modern").eval()
    model.save_pretrained(directory / "best")
    processor_for(model).save_pretrained(directory / "best")
    return directory


def save_with_processor(directory: Path, preset: str, **overrides) -> Path:
    torch.manual_seed(0)
    model = hfdl.create_model(preset, **overrides).eval()
    return save_for_hub(model, directory, processor=processor_for(model))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


def draw_seven(path: Path, ink: str = "black", paper: str = "white") -> Path:
    """A thick '7' off-centre on a larger page."""
    image = Image.new("RGB", (200, 150), paper)
    ImageDraw.Draw(image).line([(30, 20), (80, 20), (55, 110)], fill=ink, width=9)
    image.save(path)
    return path


def draw_shapes(path: Path) -> Path:
    """A colour picture for the RGB models: a red disc and a blue bar on green."""
    image = Image.new("RGB", (96, 80), (40, 160, 60))
    draw = ImageDraw.Draw(image)
    draw.ellipse([10, 10, 50, 50], fill=(220, 30, 30))
    draw.rectangle([60, 5, 75, 70], fill=(30, 40, 200))
    image.save(path)
    return path


def editor_value(path: Path | None) -> dict:
    """What gr.ImageEditor sends: the flattened picture as ``composite`` (an upload is also the ``background``)."""
    file = gradio_client.handle_file(str(path)) if path is not None else None
    return {"background": file, "layers": [], "composite": file}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """An ``outputs/`` folder with trained-model folders in both layouts, plus two that must not be listed."""
    root = tmp_path_factory.mktemp("outputs")
    save_lenet(root / "lenet5-digits")
    save_with_processor(root / "resnet-cifar", "resnet20-cifar", **RESNET)
    save_with_processor(root / "vgg-tiny", "vgg11", **VGG)
    save_with_processor(root / "mlp-digits", "mlp-digits")  # no convolution: not offered
    (root / "logs").mkdir()  # not a model
    return root


@pytest.fixture(scope="module")
def app(outputs):
    """app.py imported by path (a Space is a folder, not a package), looking for models in ``outputs``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_OUTPUTS", str(outputs))
        patch.delenv("HFDL_MODEL", raising=False)
        spec = importlib.util.spec_from_file_location(f"cnn_explorer_app_{uuid.uuid4().hex[:8]}", APP_PATH)
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


def reference(model_dir: Path, prepared: Image.Image):
    """The model's own logits and hidden states on the picture the app prepared, and its first conv weight."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder = model_dir / "best" if (model_dir / "best").is_dir() else model_dir
    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    pixel_values = AutoImageProcessor.from_pretrained(folder)(prepared, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        outputs = model(pixel_values=pixel_values, output_hidden_states=True)
    first_conv = next(module for module in model.modules() if isinstance(module, torch.nn.Conv2d))
    return model.config, outputs, first_conv.weight.detach().numpy()


def network_input_from(picture_path: str, size: int) -> Image.Image:
    """The picture the network received, from its enlarged (nearest, integer factor) display copy."""
    with Image.open(picture_path) as picture:
        factor = picture.width // size
        assert picture.size == (size * factor, size * factor)
        return Image.fromarray(np.asarray(picture)[::factor, ::factor])


def grid_tiles(app, picture: np.ndarray, tile: int) -> list[np.ndarray]:
    """Cut a grid picture into its square tiles (GRID_GAP apart), dropping cells that are all background."""
    columns = (picture.shape[1] - app.GRID_GAP) // (tile + app.GRID_GAP)
    rows = (picture.shape[0] - app.GRID_GAP) // (tile + app.GRID_GAP)
    assert picture.shape[:2] == (
        app.GRID_GAP + rows * (tile + app.GRID_GAP),
        app.GRID_GAP + columns * (tile + app.GRID_GAP),
    )
    tiles = []
    for top, left in app.tile_origins(rows * columns, columns, tile, tile):
        cell = picture[top : top + tile, left : left + tile]
        if not (cell == app.GRID_BACKGROUND).all():
            tiles.append(cell)
    return tiles


def test_import_builds_the_ui_without_loading_anything(outputs):
    """`import app` builds the Blocks and lists the models from their config.json alone: no torch, no hfdl."""
    code = textwrap.dedent(
        f"""
        import importlib.util, os, sys
        def listing():
            return sorted(set(os.listdir({str(SPACE_DIR)!r})) - {{"__pycache__"}})
        before = listing()
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        assert listing() == before  # nothing written beside the app
        assert app._models == {{}}
        print(len(app.model_choices()), sorted(name for name in ("torch", "transformers", "hfdl") if name in sys.modules))
        """
    )
    env = {**os.environ, "HFDL_OUTPUTS": str(outputs)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "4 []"  # 3 trained CNNs and the Hub model


# ---------------------------------------------------------------------------------------------------------------------
# Convolution by hand: the teaching loop against PyTorch
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_convolve2d_equals_torch_conv2d(app, stride, padding):
    generator = np.random.default_rng(stride * 10 + padding)
    image, kernel = generator.random((29, 34)), generator.normal(size=(3, 3))
    expected = F.conv2d(
        torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None], stride=stride, padding=padding
    )[0, 0].numpy()
    result = app.convolve2d(image, kernel, stride=stride, padding=padding)
    assert (
        result.shape
        == expected.shape
        == (app.output_side(29, 3, stride, padding), app.output_side(34, 3, stride, padding))
    )
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


def test_output_size_formula_text(app):
    text = app.formula_text(n=32, k=3, s=2, p=1)
    assert "`floor((n + 2p - k) / s) + 1`" in text
    assert "floor((32 + 2*1 - 3) / 2) + 1 = floor(31 / 2) + 1 = 15 + 1 = 16" in text
    assert "**16x16** output" in text
    assert app.output_side(28, 3, 1, 0) == 26 and app.output_side(64, 3, 3, 2) == 22


def test_parse_kernel_reads_fractions_and_separators(app):
    np.testing.assert_array_equal(
        app.parse_kernel("1 0 -1; 2, 0, -2\n0.5 0 -0.5"), [[1, 0, -1], [2, 0, -2], [0.5, 0, -0.5]]
    )
    np.testing.assert_allclose(app.kernel_for("blur"), np.full((3, 3), 1 / 9))
    np.testing.assert_array_equal(app.kernel_for("sharpen"), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert set(app.KERNEL_CHOICES) >= {"edge", "blur", "sharpen", "custom"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "3 rows of 3 numbers.*got 0 rows"),
        ("1 2 3\n4 5 6", "got 2 rows"),
        ("1 2 3\n4 5 6 7\n7 8 9", "Row 2 of the kernel has 4 numbers"),
        ("1 2 3\n4 x 6\n7 8 9", "'x' in row 2 of the kernel is not a number"),
        ("1 2 3\n4 1/0 6\n7 8 9", "'1/0' in row 2"),
    ],
)
def test_bad_custom_kernels_are_named(app, text, message):
    with pytest.raises(app.ExplorerInputError, match=message):
        app.kernel_for("custom", text)


# ---------------------------------------------------------------------------------------------------------------------
# Finding models, reading inputs
# ---------------------------------------------------------------------------------------------------------------------


def test_trained_cnns_are_listed_and_others_are_not(app, outputs):
    found = dict((value, label) for label, value in app.find_trained_models())
    assert sorted(Path(value).name for value in found) == ["lenet5-digits", "resnet-cifar", "vgg-tiny"]
    assert "lenet5" in found[str(outputs / "lenet5-digits")]
    choices = [value for _, value in app.model_choices()]
    assert choices[-1] == app.HUB_MODEL_ID and len(choices) == 4


def test_transparent_sketch_reads_like_a_scan(app, tmp_path):
    """gr.ImageEditor's canvas is transparent with black strokes: it must read as black ink on white paper."""
    strokes = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).line([(30, 20), (80, 20), (55, 110)], fill=(0, 0, 0, 255), width=9)
    from_canvas = app.prepare_input(app.read_image({"composite": strokes, "layers": []}), 1, 32)
    from_scan = app.prepare_input(app.read_image(str(draw_seven(tmp_path / "seven.png"))), 1, 32)
    np.testing.assert_array_equal(np.asarray(from_canvas), np.asarray(from_scan))
    # Light-on-dark is what a digit model wants: a white-on-black drawing gives the same input.
    from_inverted = app.prepare_input(app.read_image(str(draw_seven(tmp_path / "w.png", "white", "black"))), 1, 32)
    np.testing.assert_array_equal(np.asarray(from_inverted), np.asarray(from_scan))
    digit = np.asarray(from_scan)
    assert digit[0, 0] == 0 and digit.max() == 255


# ---------------------------------------------------------------------------------------------------------------------
# The running app, through gradio_client
# ---------------------------------------------------------------------------------------------------------------------


def check_exploration(app, model_dir: Path, result, channels: int) -> None:
    """Every output of /explore against the model's own computation on the input the app says it prepared."""
    label, input_path, filters_path, caption, gallery = result
    config, outputs, weight = reference(model_dir, network_input_from(input_path, 32))

    # Top classes: the model's own softmax, best first; the top one is its argmax.
    probabilities = outputs.logits.softmax(-1)[0]
    scores = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
    names = [class_name(config, index) for index in range(config.num_labels)]  # LABEL_3 is shown as 3
    assert label["label"] == names[int(probabilities.argmax())]
    assert len(scores) == min(app.TOP_K, config.num_labels)
    for name, score in scores.items():
        assert score == pytest.approx(float(probabilities[names.index(name)]), abs=1e-5)

    # First-layer filters: one tile per filter, each the filter stretched to its own range.
    out_channels, in_channels, kernel_size, _ = weight.shape
    factor = app.FILTER_TILE // kernel_size
    with Image.open(filters_path) as picture:
        tiles = grid_tiles(app, np.asarray(picture.convert("RGB")), kernel_size * factor)
    assert len(tiles) == out_channels
    assert f"{out_channels} filters of {in_channels}x{kernel_size}x{kernel_size}" in caption
    for tile, kernel in zip(tiles, weight):
        values = kernel.transpose(1, 2, 0) if in_channels == 3 else kernel.mean(axis=0)[..., None]
        expected = (values - values.min()) / (values.max() - values.min()) * 255.0
        np.testing.assert_allclose(
            tile[::factor, ::factor], np.broadcast_to(expected, (kernel_size, kernel_size, 3)), atol=0.51
        )
    if in_channels == 3:
        assert any(np.ptp(tile, axis=-1).max() > 0 for tile in tiles)  # colour, not gray

    # Feature maps: one grid per 4-D hidden state, with the first `channels` maps of it.
    states = [state[0].numpy() for state in outputs.hidden_states if state.ndim == 4]
    assert len(gallery) == len(states) > 0
    for index, (item, state) in enumerate(zip(gallery, states)):
        assert item["caption"].startswith(
            f"stage {index + 1}: {state.shape[0]} maps of {state.shape[1]}x{state.shape[2]}"
        )
        with Image.open(item["image"]) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        np.testing.assert_array_equal(pixels, np.asarray(app.render_feature_maps(state, channels)))
        tile = state.shape[-1] * max(1, -(-app.MAP_TILE // state.shape[-1]))
        assert len(grid_tiles(app, pixels, tile)) == min(channels, state.shape[0])


def test_explore_lenet_from_the_list(app, server, outputs, tmp_path):
    """The main job's layout, chosen from the dropdown; a drawing on the canvas, prepared as a digit."""
    lenet = str(outputs / "lenet5-digits")
    strokes = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).line([(30, 20), (80, 20), (55, 110)], fill=(0, 0, 0, 255), width=9)
    strokes.save(tmp_path / "canvas.png")
    canvas = {"background": None, "layers": [], "composite": gradio_client.handle_file(str(tmp_path / "canvas.png"))}
    result = server.predict(canvas, lenet, "", "auto", 16, api_name="/explore")
    check_exploration(app, outputs / "lenet5-digits", result, channels=16)
    # The drawing went through the digit preparation: the same input as the app prepares from a scan of it.
    expected = app.prepare_input(app.read_image(str(draw_seven(tmp_path / "seven.png"))), 1, 32)
    np.testing.assert_array_equal(np.asarray(network_input_from(result[1], 32)), np.asarray(expected))
    assert len(result[4]) == 4  # LeNet-5's C1, S2, C3, S4; F5 and F6 are vectors


def test_explore_rgb_resnet_typed_as_a_folder(app, server, outputs, tmp_path):
    """A folder typed in the textbox wins over the list; RGB filters in colour; only 4 maps per stage asked."""
    resnet = outputs / "resnet-cifar"
    upload = editor_value(draw_shapes(tmp_path / "shapes.png"))
    result = server.predict(upload, str(outputs / "lenet5-digits"), str(resnet), "as is", 4, api_name="/explore")
    check_exploration(app, resnet, result, channels=4)
    assert "shown in colour" in result[3]


def test_vgg_fully_connected_hidden_states_are_left_out(app, outputs, tmp_path):
    exploration = app.explore(str(draw_shapes(tmp_path / "shapes.png")), str(outputs / "vgg-tiny"), channels=8)
    # 5 convolution stages; the 2 fully connected layers' 2-D hidden states have no maps to show.
    assert [caption.split(":")[0] for _, caption in exploration.stages] == [f"stage {i}" for i in range(1, 6)]
    assert exploration.network_input.mode == "RGB" and exploration.network_input.size == (32, 32)


IMAGE_CLASSIFIERS = [spec for spec in REGISTRY.values() if "image-classification" in [t.task for t in spec.tasks]]


@pytest.mark.parametrize("spec", IMAGE_CLASSIFIERS, ids=lambda spec: spec.name)
def test_every_registered_image_classifier(app, spec, tmp_path):
    """Each architecture of the registry, at its small test size: a CNN is listed and explored, any other refused.

    A new architecture is covered the day it is registered; one without a convolution must be named in
    NO_CONVOLUTION_MODEL_TYPES, and one that is not a CNN although it has a convolution (the ViT's patch
    embedding) in NOT_CNN_MODEL_TYPES, so that the list does not offer it.
    """
    torch.manual_seed(0)
    config = spec.make_config(**spec.test_config)
    model = spec.task("image-classification").model_class(config).eval()
    folder = save_for_hub(model, tmp_path / "runs" / spec.name, processor=spec.make_image_processor(config))
    convolutions = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    listed = [value for _, value in app.find_trained_models([tmp_path / "runs"])]
    image = str(draw_shapes(tmp_path / "shapes.png"))
    if not convolutions:
        assert listed == [] and "cnn-explorer" not in spec.spaces
        with pytest.raises(app.ModelUnavailableError, match="no convolution layer"):
            app.explore(image, str(folder))
        return
    if spec.model_type in app.NOT_CNN_MODEL_TYPES:  # a transformer whose patch embedding is a convolution
        assert listed == [] and "cnn-explorer" not in spec.spaces
        with pytest.raises(app.ModelUnavailableError, match="pick an image CNN"):
            app.explore(image, str(folder))
        return
    assert listed == [str(folder)]
    exploration = app.explore(image, str(folder), channels=4)
    _, outputs, weight = reference(folder, exploration.network_input)
    assert exploration.network_input.size == (config.image_size, config.image_size)
    assert next(iter(exploration.scores)) == class_name(config, int(outputs.logits.argmax()))
    kernel_size = weight.shape[-1]
    tiles = grid_tiles(app, np.asarray(exploration.filters), kernel_size * (app.FILTER_TILE // kernel_size))
    assert len(tiles) == weight.shape[0] == convolutions[0].out_channels
    assert len(exploration.stages) == sum(state.ndim == 4 for state in outputs.hidden_states) > 0


def test_models_the_explorer_cannot_use_are_named(app, tmp_path):
    """A base model without a classification head, and a classifier saved without its image processor."""
    torch.manual_seed(0)
    hfdl.create_model("lenet5-modern", task="image-feature-extraction").save_pretrained(tmp_path / "backbone")
    hfdl.create_model("lenet5-modern").save_pretrained(tmp_path / "no-processor")
    image = str(draw_seven(tmp_path / "seven.png"))
    with pytest.raises(
        app.ModelUnavailableError, match="'image-feature-extraction' model; .* needs an image classifier"
    ):
        app.explore(image, str(tmp_path / "backbone"))
    with pytest.raises(app.ModelUnavailableError, match="no preprocessor_config.json"):
        app.explore(image, str(tmp_path / "no-processor"))
    assert app.find_trained_models([tmp_path]) == []  # neither is offered in the list


def test_convolve_endpoint_equals_conv2d(app, server, tmp_path):
    path = draw_seven(tmp_path / "seven.png")
    for preset, text, size, stride, padding in [
        ("sharpen", "", 28, 2, 1),
        ("custom", "1 0 -1; 2 0 -2; 1/2 0 -1/2", 40, 3, 2),
    ]:
        input_path, output_path, explanation, values = server.predict(
            editor_value(path), preset, text, size, stride, padding, api_name="/convolve"
        )
        image = app.grayscale_input(str(path), size)
        kernel = app.kernel_for(preset, text)
        expected = F.conv2d(
            torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None], stride=stride, padding=padding
        )[0, 0].numpy()
        side = (size + 2 * padding - 3) // stride + 1
        assert expected.shape == (side, side)
        np.testing.assert_allclose(np.asarray(values["data"], dtype=float), expected, rtol=0, atol=5e-5 + 1e-12)
        inner = size + 2 * padding - 3
        assert (
            f"floor(({size} + 2*{padding} - 3) / {stride}) + 1 = floor({inner} / {stride}) + 1 = {inner // stride} + 1 = {side}"
            in explanation
        )
        with Image.open(output_path) as output, Image.open(input_path) as padded:
            assert output.width % side == 0 and output.size[0] == output.size[1] >= app.INPUT_DISPLAY
            assert padded.width % (size + 2 * padding) == 0


def test_unusable_inputs_are_reported(app, server, outputs, tmp_path):
    lenet = str(outputs / "lenet5-digits")
    seven = editor_value(draw_seven(tmp_path / "seven.png"))
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    transparent = tmp_path / "empty-canvas.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(transparent)
    cases = [
        ((None, lenet, "", "auto", 16), "No image"),
        ((editor_value(None), lenet, "", "auto", 16), "No image"),
        ((editor_value(transparent), lenet, "", "auto", 16), "canvas is empty"),
        ((editor_value(tmp_path / "blank.png"), lenet, "", "auto", 16), "blank"),
        ((editor_value(tmp_path / "notes.txt"), lenet, "", "auto", 16), "notes.txt is not an image"),
        ((seven, lenet, str(tmp_path / "missing"), "auto", 16), "No such folder"),
        ((seven, lenet, str(outputs / "mlp-digits"), "auto", 16), "no convolution layer"),
        ((seven, lenet, str(outputs / "logs"), "auto", 16), "No config.json"),
    ]
    for inputs, message in cases:
        with pytest.raises(Exception, match=message):
            server.predict(*inputs, api_name="/explore")
    for inputs, message in [
        ((None, "edge", "", 32, 1, 1), "No image"),
        ((seven, "custom", "1 2\n3 4", 32, 1, 1), "3 rows of 3 numbers"),
        ((seven, "edge", "", 32, 4, 1), "stride must be a whole number from 1 to 3"),
        ((seven, "edge", "", 32, 1, 3), "padding must be a whole number from 0 to 2"),
    ]:
        with pytest.raises(Exception, match=message):
            server.predict(*inputs, api_name="/convolve")


def test_four_concurrent_clients(app, server, outputs, tmp_path):
    """4 clients at once, each exploring and convolving the same pictures: every answer complete and right."""
    lenet = str(outputs / "lenet5-digits")
    path = draw_seven(tmp_path / "seven.png")
    first = server.predict(editor_value(path), lenet, "", "auto", 8, api_name="/explore")
    expected_label = first[0]["label"]
    with Image.open(first[2]) as picture:
        expected_filters = np.asarray(picture)
    expected_values = server.predict(editor_value(path), "edge", "", 32, 1, 1, api_name="/convolve")[3]["data"]

    def user(_: int) -> list[str]:
        session, problems = client(app.demo.local_url), []
        for _ in range(3):
            label, _, filters_path, _, gallery = session.predict(
                editor_value(path), lenet, "", "auto", 8, api_name="/explore"
            )
            with Image.open(filters_path) as picture:
                if label["label"] != expected_label or not np.array_equal(np.asarray(picture), expected_filters):
                    problems.append("explore")
            if len(gallery) != 4:
                problems.append("gallery")
            values = session.predict(editor_value(path), "edge", "", 32, 1, 1, api_name="/convolve")[3]["data"]
            if values != expected_values:
                problems.append("convolve")
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [problem for share in pool.map(user, range(4)) for problem in share]
    assert problems == []


# ---------------------------------------------------------------------------------------------------------------------
# The Space as a folder: `python app.py` from spaces/cnn-explorer, with its own requirements.txt
# ---------------------------------------------------------------------------------------------------------------------


def test_requirements_install_hfdl_and_pin_the_readme_gradio():
    requirements = [
        line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    sdk_version = re.search(r"^sdk_version: (\S+)$", (SPACE_DIR / "README.md").read_text(), re.MULTILINE).group(1)
    assert requirements == ["hfdl[spaces] @ git+https://github.com/hfdl/hfdl", f"gradio=={sdk_version}"]


def test_python_app_py_serves_from_the_space_folder(outputs, tmp_path):
    port, log = free_port(), tmp_path / "space.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("HFDL_OUTPUTS", None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--outputs", str(outputs), "--port", str(port)],
            cwd=SPACE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "CNN explorer on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        session = client(f"http://127.0.0.1:{port}/")
        path = draw_seven(tmp_path / "seven.png")
        label = session.predict(editor_value(path), str(outputs / "lenet5-digits"), "", "auto", 4, api_name="/explore")[
            0
        ]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(label["confidences"]) == 5
    assert str(outputs / "resnet-cifar") in log.read_text()  # --outputs was searched
