"""The digit-recognizer Space: preprocessing, lazy loading, and the running app called through gradio_client.

The model is an untrained LeNet-5 with a fixed seed, saved in Hub format to a temporary folder (and exported to
ONNX when hfdl.export is there): the point is that the app returns what the model itself computes for the
preprocessed image, not that it recognises digits.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import uuid
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
from PIL import Image, ImageDraw  # noqa: E402

from hfdl.registry import REGISTRY  # noqa: E402

APP_PATH = Path(__file__).resolve().parents[1] / "spaces" / "digit-recognizer" / "app.py"
DIGIT_LABELS = {index: str(index) for index in range(10)}


def load_app():
    """Import app.py by path under a fresh module name, as `hfdl demo` does (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"digit_recognizer_app_{uuid.uuid4().hex[:8]}", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def onnx_export_available() -> bool:
    try:
        from hfdl.export import ORTModelForImageClassification, export_onnx  # noqa: F401
    except ImportError:
        return False
    return True


def draw_seven(path: Path, size: tuple[int, int] = (200, 150), ink: str = "black", paper: str = "white") -> Path:
    """A thick '7' off-centre on a larger page, as a phone photo or a scan would be."""
    image = Image.new("RGB", size, paper)
    ImageDraw.Draw(image).line([(30, 20), (80, 20), (55, 110)], fill=ink, width=9)
    image.save(path)
    return path


def save_model(directory: Path, architecture: str, preset: str) -> Path:
    spec = REGISTRY[architecture]
    torch.manual_seed(0)
    config = spec.make_config(preset, id2label=DIGIT_LABELS, label2id={v: k for k, v in DIGIT_LABELS.items()})
    model = spec.task("image-classification").model_class(config).eval()
    model.save_pretrained(directory)
    spec.make_image_processor(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def app():
    return load_app()


@pytest.fixture(scope="module")
def lenet_dir(tmp_path_factory) -> Path:
    directory = save_model(tmp_path_factory.mktemp("lenet5-digits"), "lenet5", "lenet5-modern")
    if onnx_export_available():
        from hfdl.export import export_onnx

        export_onnx(str(directory), str(directory / "onnx"), output_hidden_states=True)
    return directory


@pytest.fixture(scope="module")
def server(app, lenet_dir):
    """The Space's own `demo`, served on a free loopback port for the whole module."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.configure(model=str(lenet_dir), backend="torch")
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield gradio_client.Client(app.demo.local_url, verbose=False)
    finally:
        app.demo.close()
        app.configure()


def expected_probabilities(app, model_dir: Path, image_path: Path) -> dict[str, float]:
    """What the PyTorch model says about the image the app prepares: the reference for both backends."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir)
    _, _, margin = app.current_settings()  # the margin the app uses (HFDL_MARGIN or the default)
    prepared = app.prepare_digit(str(image_path), model.config.image_size, margin=margin)
    with torch.no_grad():
        logits = model(**processor(prepared, return_tensors="pt")).logits
    probabilities = logits.softmax(-1)[0]
    return {model.config.id2label[index]: float(probabilities[index]) for index in range(len(probabilities))}


# ---------------------------------------------------------------------------------------------------------------------
# Import and preprocessing
# ---------------------------------------------------------------------------------------------------------------------


def test_import_builds_ui_without_loading_a_model():
    """`import app` only builds the Blocks: no model cached, no torch or transformers imported, no file written."""
    code = textwrap.dedent(
        f"""
        import importlib.util, os, sys
        def listing():
            return sorted(set(os.listdir({str(APP_PATH.parent)!r})) - {{"__pycache__"}})
        before = listing()
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        # Nothing written beside the app (gradio writes a .pyi next to modules that subclass its components).
        assert listing() == before
        import gradio as gr
        assert isinstance(app.demo, gr.Blocks)
        assert app._classifiers == {{}}
        print(sorted(name for name in ("torch", "transformers", "onnxruntime", "hfdl") if name in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _bounding_box(array: np.ndarray, threshold: int = 64) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((array > threshold).any(axis=1))
    columns = np.flatnonzero((array > threshold).any(axis=0))
    return rows[0], rows[-1], columns[0], columns[-1]


def test_prepare_digit_inverts_crops_and_centres(app, tmp_path):
    prepared = np.asarray(app.prepare_digit(str(draw_seven(tmp_path / "seven.png")), size=32, margin=0.1))
    assert prepared.shape == (32, 32) and prepared.dtype == np.uint8
    # Dark ink on white paper became light ink on black, stretched to the full range.
    assert prepared[0, 0] == 0 and prepared.max() == 255
    top, bottom, left, right = _bounding_box(prepared)
    # The '7' is taller than wide: its height spans the frame minus the margins, and the box sits in the middle.
    assert top <= 4 and bottom >= 27
    assert abs((left + right) / 2 - 15.5) <= 1.5 and abs((top + bottom) / 2 - 15.5) <= 1.5


def test_prepare_digit_keeps_light_on_dark_and_matches_inverted(app, tmp_path):
    dark_on_light = app.prepare_digit(str(draw_seven(tmp_path / "a.png")), size=32)
    light_on_dark = app.prepare_digit(str(draw_seven(tmp_path / "b.png", ink="white", paper="black")), size=32)
    np.testing.assert_array_equal(np.asarray(dark_on_light), np.asarray(light_on_dark))


def test_sketchpad_value_with_transparent_background(app, tmp_path):
    """gradio 6's Sketchpad gives an EditorValue whose composite is RGBA: transparent paper, opaque black strokes."""
    strokes = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).line([(30, 20), (80, 20), (55, 110)], fill=(0, 0, 0, 255), width=9)
    editor_value = {"background": None, "layers": [strokes], "composite": strokes}
    from_canvas = np.asarray(app.prepare_digit(editor_value, size=32))
    from_scan = np.asarray(app.prepare_digit(str(draw_seven(tmp_path / "seven.png")), size=32))
    np.testing.assert_array_equal(from_canvas, from_scan)
    # numpy arrays (gr.Image(type="numpy")) go through the same path.
    np.testing.assert_array_equal(np.asarray(app.prepare_digit(np.asarray(strokes), size=32)), from_scan)


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(lambda tmp: None, id="none"),
        pytest.param(lambda tmp: {"background": None, "layers": [], "composite": None}, id="editor-without-image"),
        pytest.param(lambda tmp: {"composite": Image.new("RGBA", (64, 64), (0, 0, 0, 0))}, id="blank-canvas"),
        pytest.param(lambda tmp: Image.new("L", (64, 64), 255), id="white-page"),
        pytest.param(lambda tmp: np.zeros((0, 5), dtype=np.uint8), id="empty-array"),
        pytest.param(lambda tmp: "text", id="missing-file"),
        pytest.param(lambda tmp: object(), id="not-an-image"),
    ],
)
def test_unusable_inputs_raise_readable_errors(app, tmp_path, make_input):
    with pytest.raises(app.DigitInputError):
        app.prepare_digit(make_input(tmp_path), size=32)


def test_handler_turns_input_errors_into_gr_error(app):
    with pytest.raises(gr.Error, match="draw a digit"):
        app.predict(None)


def test_onnx_backend_without_hfdl_export_says_so(app, lenet_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "hfdl.export", None)  # `from hfdl.export import ...` now raises ImportError
    monkeypatch.setattr(app, "_classifiers", {})
    app.configure(model=str(lenet_dir), backend="onnx")
    try:
        with pytest.raises(gr.Error, match="ONNX backend needs"):
            app.predict(str(draw_seven(tmp_path / "seven.png")))
    finally:
        app.configure()


def test_mlp_shows_hidden_activations_instead_of_feature_maps(app, tmp_path, monkeypatch):
    mlp_dir = save_model(tmp_path / "mlp", "mlp", "mlp-digits")
    monkeypatch.setattr(app, "_classifiers", {})
    app.configure(model=str(mlp_dir), backend="torch")
    try:
        scores, picture, prepared = app.classify(str(draw_seven(tmp_path / "seven.png")))
    finally:
        app.configure()
    assert len(scores) == 3 and prepared.size == (8, 8)
    assert picture.size[0] > 100 and picture.size[1] > 100


def test_training_output_folder_resolves_to_its_best_checkpoint(app, tmp_path, monkeypatch):
    """The recipe writes the model to <output_dir>/best; --model <output_dir> must find it."""
    save_model(tmp_path / "run" / "best", "lenet5", "lenet5-modern")
    monkeypatch.setattr(app, "_classifiers", {})
    app.configure(model=str(tmp_path / "run"), backend="torch")
    try:
        scores, _, prepared = app.classify(str(draw_seven(tmp_path / "seven.png")))
    finally:
        app.configure()
    assert len(scores) == 3 and prepared.size == (32, 32)


def test_loads_as_remote_code_without_hfdl(lenet_dir, tmp_path):
    """On a real Space hfdl is not installed: the PyTorch backend must load the model's own code."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        sys.modules["hfdl"] = None  # as if hfdl were not installed
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        app.configure(model={str(lenet_dir)!r}, backend="torch")
        scores, picture, prepared = app.classify({str(draw_seven(tmp_path / "seven.png"))!r})
        assert len(scores) == 3 and type(app.get_classifier().model).__module__.startswith("transformers_modules")
        print("ok")
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home")}  # remote code is copied under HF_HOME/modules
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


# ---------------------------------------------------------------------------------------------------------------------
# The running app, through gradio_client
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_upload_predicts_top3_and_feature_maps(app, server, lenet_dir, tmp_path, backend):
    if backend == "onnx" and not onnx_export_available():
        pytest.skip("hfdl.export (export_onnx, ORTModelForImageClassification) is not available")
    app.configure(model=str(lenet_dir), backend=backend)
    image_path = draw_seven(tmp_path / "seven.png")
    label, feature_map_path = server.predict(gradio_client.handle_file(str(image_path)), api_name="/predict_upload")

    confidences = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
    assert len(confidences) == 3
    assert sum(confidences.values()) <= 1.0 + 1e-6
    assert label["label"] == max(confidences, key=confidences.get)
    expected = expected_probabilities(app, lenet_dir, image_path)
    top3 = sorted(expected, key=expected.get, reverse=True)[:3]
    assert set(confidences) == set(top3)
    for name, confidence in confidences.items():
        assert confidence == pytest.approx(expected[name], abs=1e-5 if backend == "torch" else 1e-4)

    with Image.open(feature_map_path) as picture:
        # Input tile + 6 C1 maps, 4 columns by 2 rows of 112-pixel tiles.
        assert picture.size[0] > 4 * 112 and picture.size[1] > 2 * 112


def test_sketchpad_endpoint_accepts_editor_value(app, server, lenet_dir, tmp_path):
    app.configure(model=str(lenet_dir), backend="torch")
    strokes = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).line([(30, 20), (80, 20), (55, 110)], fill=(0, 0, 0, 255), width=9)
    strokes.save(tmp_path / "canvas.png")
    editor_value = {
        "background": None,
        "layers": [],
        "composite": gradio_client.handle_file(str(tmp_path / "canvas.png")),
    }
    label, _ = server.predict(editor_value, api_name="/predict_sketch")
    expected = expected_probabilities(app, lenet_dir, draw_seven(tmp_path / "seven.png"))
    for entry in label["confidences"]:
        assert entry["confidence"] == pytest.approx(expected[entry["label"]], abs=1e-5)


def test_blank_and_non_image_uploads_are_reported(server, tmp_path):
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    with pytest.raises(Exception, match="blank"):
        server.predict(gradio_client.handle_file(str(tmp_path / "blank.png")), api_name="/predict_upload")
    (tmp_path / "notes.txt").write_text("not a digit")
    with pytest.raises(Exception, match="not an image"):
        server.predict(gradio_client.handle_file(str(tmp_path / "notes.txt")), api_name="/predict_upload")
