"""The digit-recognizer Space: preprocessing, lazy loading, and the running app called through gradio_client.

The model is an untrained LeNet-5 with a fixed seed, saved in Hub format to a temporary folder (and exported to
ONNX when hfdl.export is there): the point is that the app returns what the model itself computes for the
preprocessed image, not that it recognises digits. Clients use ``ssl_verify=False``: the server is plain HTTP on
loopback, and with verification on gradio_client builds an SSL context (loading the CA bundle) for every HTTP call,
~80 ms of CPU per prediction that says nothing about the Space.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
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
from PIL import Image, ImageDraw  # noqa: E402

from hfdl.registry import REGISTRY  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_PATH = REPO_ROOT / "spaces" / "digit-recognizer" / "app.py"
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


@pytest.fixture(scope="module")
def server(app, lenet_dir):
    """The Space's own `demo`, served on a free loopback port for the whole module."""
    app.configure(model=str(lenet_dir), backend="torch")
    app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield client(app.demo.local_url)
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
        assert app._predictors == {{}}
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
    monkeypatch.setattr(app, "_predictors", {})
    app.configure(model=str(lenet_dir), backend="onnx")
    try:
        with pytest.raises(gr.Error, match="ONNX backend needs"):
            app.predict(str(draw_seven(tmp_path / "seven.png")))
    finally:
        app.configure()


def test_mlp_shows_hidden_activations_instead_of_feature_maps(app, tmp_path, monkeypatch):
    mlp_dir = save_model(tmp_path / "mlp", "mlp", "mlp-digits")
    monkeypatch.setattr(app, "_predictors", {})
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
    monkeypatch.setattr(app, "_predictors", {})
    app.configure(model=str(tmp_path / "run"), backend="torch")
    try:
        scores, _, prepared = app.classify(str(draw_seven(tmp_path / "seven.png")))
    finally:
        app.configure()
    assert len(scores) == 3 and prepared.size == (32, 32)


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

    _, expected_picture, _ = app.classify(str(image_path))
    with Image.open(feature_map_path) as picture:
        # Input tile + 6 C1 maps, 4 columns by 2 rows of 112-pixel tiles, sent losslessly: the very pixels drawn.
        assert picture.format == "PNG" and picture.size[0] > 4 * 112 and picture.size[1] > 2 * 112
        np.testing.assert_array_equal(np.asarray(picture.convert("RGB")), np.asarray(expected_picture))


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


def draw_one(path: Path) -> Path:
    image = Image.new("RGB", (120, 130), "white")
    ImageDraw.Draw(image).line([(60, 15), (60, 115)], fill="black", width=9)
    image.save(path)
    return path


def test_save_picture_never_exposes_a_partial_file(app, tmp_path):
    """Threads save the same picture while another process reads it: the reader sees the whole PNG every time.

    Gradio 6.31 rewrites identical outputs in place, and a download racing with the rewrite sent a truncated file
    (gradio issue #8878); the app writes each picture under a temporary name and renames it into place instead.
    The reader is a separate process so that it runs truly in parallel with the writers.
    """
    # Noise does not compress: a large file widens the window in which an in-place rewrite would be visible.
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    reference = Path(app.save_picture(Image.fromarray(noise), tmp_path / "reference"))
    np.testing.assert_array_equal(np.asarray(Image.open(reference)), noise)
    target = tmp_path / "cache" / reference.parent.name / reference.name  # named by content: the same name
    reader_code = textwrap.dedent(
        f"""
        import pathlib, time
        path, complete = pathlib.Path({str(target)!r}), pathlib.Path({str(reference)!r}).read_bytes()
        seen = torn = 0
        print("ready", flush=True)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # not written yet
                continue
            seen, torn = seen + 1, torn + (data != complete)
        print(seen, torn)
        """
    )
    reader = subprocess.Popen([sys.executable, "-c", reader_code], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    # The first calls race to create the file, the later ones find it.
    with ThreadPoolExecutor(4) as pool:
        paths = set(pool.map(lambda _: app.save_picture(Image.fromarray(noise), tmp_path / "cache"), range(40)))
    seen, torn = map(int, reader.communicate(timeout=30)[0].split())
    assert paths == {str(target)} and seen > 0 and torn == 0
    assert [path.name for path in target.parent.iterdir()] == [target.name]  # no staging files left behind


def test_concurrent_clients_get_complete_answers_and_clean_errors(app, server, lenet_dir, tmp_path):
    """8 clients x 15 requests, the same two pictures over and over, one request in five a bad upload.

    Identical inputs in flight together are what made gradio 6.31 serve truncated pictures (3 % of requests under
    benchmarks/bench_space_load.py): every valid answer must be the whole, right picture and the model's scores,
    every bad upload the app's own message. The full-size run is the benchmark's (1,000 requests).
    """
    backend = "onnx" if onnx_export_available() else "torch"
    app.configure(model=str(lenet_dir), backend=backend)
    digits = [draw_seven(tmp_path / "seven.png"), draw_one(tmp_path / "one.png")]
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("not a digit")
    bad = {"blank.png": "blank", "notes.txt": "not an image"}
    expected = {}
    for path in digits:
        scores, picture, _ = app.classify(str(path))
        expected[path.name] = (scores, np.asarray(picture))
    jobs = [(tmp_path / list(bad)[index % 2]) if index % 5 == 4 else digits[index % 2] for index in range(8 * 15)]

    def user(share: list[Path]) -> list[tuple[str, str, object]]:
        session, outcomes = client(app.demo.local_url), []
        for path in share:
            try:
                label, picture_path = session.predict(gradio_client.handle_file(str(path)), api_name="/predict_upload")
                with Image.open(picture_path) as picture:
                    pixels = np.asarray(picture.convert("RGB"))
                scores = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
                outcomes.append((path.name, "ok", (scores, pixels)))
            except Exception as error:  # noqa: BLE001 - a failure is what this test counts
                outcomes.append((path.name, "error", f"{type(error).__name__}: {error}"))
        return outcomes

    with ThreadPoolExecutor(8) as pool:
        outcomes = [outcome for share in pool.map(user, [jobs[i::8] for i in range(8)]) for outcome in share]

    assert len(outcomes) == len(jobs)
    failed = [(name, detail) for name, status, detail in outcomes if name not in bad and status != "ok"]
    assert failed == []
    for name, _, (scores, pixels) in (outcome for outcome in outcomes if outcome[0] not in bad):
        expected_scores, expected_pixels = expected[name]
        assert scores.keys() == expected_scores.keys()
        assert all(scores[label] == pytest.approx(expected_scores[label], abs=1e-6) for label in scores)
        np.testing.assert_array_equal(pixels, expected_pixels)
    unclean = [(name, detail) for name, status, detail in outcomes if name in bad and bad[name] not in str(detail)]
    assert unclean == [] and sum(name in bad for name, _, _ in outcomes) == 24


# ---------------------------------------------------------------------------------------------------------------------
# The Space as Hugging Face runs it: a fresh environment from requirements.txt, `python app.py` in its own folder
# ---------------------------------------------------------------------------------------------------------------------

SPACE_DIR = APP_PATH.parent
HFDL_REQUIREMENT = "hfdl[export,spaces] @ git+https://github.com/hfdl/hfdl"


def wait_for_server(process: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the Space exited with {process.returncode}: {log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the Space did not answer on {url} within {timeout} s: {log.read_text()[-3000:]}")


@pytest.fixture
def scratch_venv(tmp_path):
    """Where a throwaway venv goes; removed afterwards, since it holds torch and its CUDA wheels (~6 GB)."""
    venv = tmp_path / "venv"
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.slow
def test_requirements_install_into_a_fresh_venv_and_serve_onnx(app, lenet_dir, tmp_path, scratch_venv):
    """requirements.txt alone must give the Space everything the ONNX backend needs (hfdl, its export extra).

    Only the hfdl line is rewritten, to a copy of this checkout (GitHub cannot be reached from here). pip keeps its
    default cache and skips byte-compiling (--no-compile); the time is printed (pytest -s shows it): about a minute
    on 2 cores, most of it unpacking torch and its CUDA wheels.
    """
    if not onnx_export_available():
        pytest.skip("the model is exported to ONNX with hfdl.export, which is not installed here")
    lines = (SPACE_DIR / "requirements.txt").read_text().splitlines()
    assert HFDL_REQUIREMENT in lines, "requirements.txt must install hfdl with the extras the Space needs"
    # A copy of what the wheel is built from: building in the checkout would leave build/ and *.egg-info there.
    source = tmp_path / "hfdl-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for name in ("hfdl", "recipes"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    requirements = tmp_path / "requirements.txt"
    local = HFDL_REQUIREMENT.replace("git+https://github.com/hfdl/hfdl", source.as_uri())
    requirements.write_text("\n".join(local if line == HFDL_REQUIREMENT else line for line in lines) + "\n")

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("PYTHONPATH", None)
    venv = scratch_venv
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-compile", "--quiet", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    install_s = time.perf_counter() - started
    print(f"fresh venv + pip install -r requirements.txt: {install_s:.0f} s")
    assert install.returncode == 0, install.stderr[-3000:]

    # The Space imports the installed hfdl, not this checkout's.
    where = subprocess.run(
        [python, "-c", "import hfdl.inference, hfdl.export; print(hfdl.__file__)"],
        cwd=SPACE_DIR,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    assert Path(where.stdout.strip()).is_relative_to(venv)

    port, log = free_port(), tmp_path / "space.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [python, "app.py", "--model", str(lenet_dir), "--backend", "onnx", "--port", str(port)],
            cwd=SPACE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_server(process, url, log)
        image_path = draw_seven(tmp_path / "seven.png")
        label, _ = client(url).predict(gradio_client.handle_file(str(image_path)), api_name="/predict_upload")
    finally:
        process.terminate()
        process.wait(timeout=30)
    expected = expected_probabilities(app, lenet_dir, image_path)
    assert len(label["confidences"]) == 3
    for entry in label["confidences"]:
        assert entry["confidence"] == pytest.approx(expected[entry["label"]], abs=1e-4)
    assert "backend: onnx" in log.read_text()
