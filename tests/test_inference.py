"""hfdl.inference.load: every layout a user can point at, on both backends, and an error that says what went wrong.

The reference for every output is the PyTorch model itself, called on the image processor's output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hfdl
from hfdl.inference import Predictor, load

LABELS = {0: "zero", 1: "one", 2: "two"}


def onnx_export_available() -> bool:
    try:
        from hfdl.export import export_onnx  # noqa: F401
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(not onnx_export_available(), reason="hfdl.export (the export extra) is not installed")


def save_lenet5(directory: Path, with_processor: bool = True) -> Path:
    """A tiny seeded LeNet-5 in Hub format (with its image processor unless told otherwise)."""
    spec = hfdl.get_architecture("lenet5")
    torch.manual_seed(0)
    config = spec.config_class(image_size=16, conv_channels=[2, 4], hidden_sizes=[8, 6], num_labels=3, id2label=LABELS)
    spec.task("image-classification").model_class(config).eval().save_pretrained(directory)
    if with_processor:
        spec.make_image_processor(config).save_pretrained(directory)
    return directory


def export(model_dir: Path, onnx_dir: Path) -> Path:
    from hfdl.export import export_onnx

    export_onnx(model_dir, onnx_dir, output_hidden_states=True)
    return onnx_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A training output folder as the recipe and `hfdl demo` leave it: the model in best/, the export in onnx/."""
    root = tmp_path_factory.mktemp("run")
    save_lenet5(root / "best")
    if onnx_export_available():
        export(root / "best", root / "onnx")
    return root


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    generator = np.random.default_rng(0)
    return [Image.fromarray(generator.integers(0, 256, (20, 24), dtype=np.uint8)) for _ in range(2)]


def reference_outputs(model_dir: Path, images: list[Image.Image]):
    """The PyTorch model on its image processor's output: what every backend must reproduce."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    pixel_values = AutoImageProcessor.from_pretrained(model_dir)(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return pixel_values, model(pixel_values=pixel_values, output_hidden_states=True)


# ---------------------------------------------------------------------------------------------------------------------
# Loading and predicting
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subfolder", [".", "best"], ids=["training-output-folder", "model-folder"])
def test_torch_backend_reproduces_the_model(run_dir, images, subfolder):
    predictor = load(run_dir / subfolder)
    assert isinstance(predictor, Predictor) and predictor.backend == "torch"
    assert predictor.task == "image-classification"
    assert predictor.model_dir == (run_dir / "best").resolve()
    assert predictor.config.id2label == LABELS and predictor.config is predictor.model.config
    assert not predictor.model.training and predictor.can_output_hidden_states

    _, expected = reference_outputs(run_dir / "best", images)
    outputs = predictor(images, output_hidden_states=True)
    torch.testing.assert_close(outputs.logits, expected.logits, rtol=0, atol=1e-6)
    assert len(outputs.hidden_states) == len(expected.hidden_states)
    for state, expected_state in zip(outputs.hidden_states, expected.hidden_states):
        torch.testing.assert_close(state, expected_state, rtol=0, atol=1e-6)
    assert predictor(images).hidden_states is None  # only computed when asked for


@needs_onnx
@pytest.mark.parametrize("subfolder", [".", "onnx"], ids=["training-output-folder", "export-folder"])
def test_onnx_backend_matches_torch(run_dir, images, subfolder):
    from hfdl.export import ORTModelForImageClassification

    predictor = load(run_dir / subfolder, backend="onnx")
    assert isinstance(predictor.model, ORTModelForImageClassification) and predictor.backend == "onnx"
    assert predictor.model_dir == (run_dir / "onnx").resolve()
    assert predictor.config.id2label == LABELS and predictor.can_output_hidden_states

    _, expected = reference_outputs(run_dir / "best", images)
    outputs = predictor(images, output_hidden_states=True)
    torch.testing.assert_close(outputs.logits, expected.logits, rtol=0, atol=1e-5)
    assert len(outputs.hidden_states) == len(expected.hidden_states)
    for state, expected_state in zip(outputs.hidden_states, expected.hidden_states):
        torch.testing.assert_close(state, expected_state, rtol=0, atol=1e-5)
    assert predictor(images).hidden_states is None


@needs_onnx
def test_onnx_export_without_processor_uses_the_checkpoints(run_dir, images, tmp_path):
    """An export folder without preprocessor_config.json (older exports) takes the one saved beside the weights."""
    shutil.copytree(run_dir, tmp_path / "run")
    (tmp_path / "run" / "onnx" / "preprocessor_config.json").unlink()
    predictor = load(tmp_path / "run", backend="onnx")
    assert predictor.processor is not None
    _, expected = reference_outputs(run_dir / "best", images)
    torch.testing.assert_close(predictor(images).logits, expected.logits, rtol=0, atol=1e-5)


@needs_onnx
def test_onnx_graph_without_hidden_states(run_dir, images, tmp_path):
    """A graph exported without hidden states still classifies; the predictor says it cannot give them."""
    from hfdl.export import export_onnx

    export_onnx(run_dir / "best", tmp_path / "onnx", output_hidden_states=False)
    predictor = load(tmp_path / "onnx", backend="onnx")
    assert not predictor.can_output_hidden_states
    _, expected = reference_outputs(run_dir / "best", images)
    torch.testing.assert_close(predictor(images).logits, expected.logits, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="exported without hidden states"):
        predictor(images, output_hidden_states=True)


def test_forward_takes_pixel_values_and_images_need_a_processor(tmp_path, images, run_dir):
    """A model saved without its image processor still runs on tensors; calling it on images says what is missing."""
    model_dir = save_lenet5(tmp_path / "bare", with_processor=False)
    predictor = load(model_dir)
    assert predictor.processor is None
    pixel_values, expected = reference_outputs(run_dir / "best", images)  # same seed, same weights
    torch.testing.assert_close(predictor.forward(pixel_values).logits, expected.logits, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"has no preprocessor_config\.json.*forward\(pixel_values\)"):
        predictor(images)


@pytest.mark.parametrize("backend", ["torch", pytest.param("onnx", marks=needs_onnx)])
def test_hub_id_resolves_through_the_offline_cache(run_dir, images, tmp_path, monkeypatch, backend):
    """A Hub id is read from the HF cache (a snapshot + refs/main), as `from_pretrained("org/name")` would."""
    import huggingface_hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--hfdl--tiny-lenet5"
    shutil.copytree(run_dir, repo / "snapshots" / commit)  # the training layout: best/ and onnx/
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    predictor = load("hfdl/tiny-lenet5", backend=backend)
    assert predictor.model_dir.is_relative_to((repo / "snapshots" / commit).resolve())
    _, expected = reference_outputs(run_dir / "best", images)
    torch.testing.assert_close(predictor(images).logits, expected.logits, rtol=0, atol=1e-5)


def test_import_needs_only_the_core_dependencies(run_dir):
    """`import hfdl.inference` with onnxruntime missing works; only the ONNX backend then fails, saying why."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["onnxruntime"] = None  # as if the export extra were not installed
        import hfdl.inference
        predictor = hfdl.inference.load({str(run_dir)!r})
        assert predictor.backend == "torch"
        assert "hfdl.export" not in sys.modules
        try:
            hfdl.inference.load({str(run_dir)!r}, backend="onnx")
        except ImportError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The ONNX backend needs hfdl's export extra (pip install 'hfdl[export]')" in result.stdout


# ---------------------------------------------------------------------------------------------------------------------
# Errors: each names the source and what is allowed
# ---------------------------------------------------------------------------------------------------------------------


def test_bad_backend_and_task(run_dir):
    with pytest.raises(ValueError, match=r"Unknown backend 'tensorflow' for '.*run.*'; allowed: torch, onnx\."):
        load(run_dir, backend="tensorflow")
    with pytest.raises(ValueError, match=r"lenet5 has no 'text-generation' head; available: image-classification"):
        load(run_dir, task="text-generation")


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such folder: .*nowhere is not a directory; pass a model folder"):
        load(tmp_path / "nowhere")


def test_hub_id_not_in_the_cache(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match=r"hfdl/missing is not a local folder, and as a Hub id it could not"):
        load("hfdl/missing")


def test_folder_without_config(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(FileNotFoundError, match=r"No config\.json in .*, .*best: .* is not a model folder"):
        load(tmp_path)


def test_file_instead_of_folder(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"model\.onnx is a file, not a folder"):
        load(tmp_path / "model.onnx", backend="onnx")


def test_missing_model_onnx(run_dir):
    with pytest.raises(
        FileNotFoundError, match=r"No model\.onnx in .*best, .*best/onnx, .*best/best/onnx .*hfdl export"
    ):
        load(run_dir / "best", backend="onnx")


@needs_onnx
def test_export_folder_with_the_torch_backend(run_dir):
    with pytest.raises(
        FileNotFoundError, match=r"No PyTorch weights .* in .*onnx.* It holds an ONNX export: use backend"
    ):
        load(run_dir / "onnx", backend="torch")


@pytest.mark.parametrize("keep_bytes", [0, 40, 2000], ids=["empty", "cut-in-header", "cut-in-tensors"])
def test_corrupt_safetensors_gives_one_clear_message(run_dir, tmp_path, keep_bytes):
    shutil.copytree(run_dir / "best", tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:keep_bytes])
    with pytest.raises(
        ValueError, match=r"model\.safetensors is not a readable safetensors file \(.*\); it is trunc"
    ) as info:
        load(tmp_path / "model")
    assert info.value.__cause__ is None and info.value.__suppress_context__


@needs_onnx
def test_loader_and_exporter_give_the_same_error_for_corrupt_weights(run_dir, tmp_path):
    """One rule for corrupt weights (hfdl._checkpoint.load_weights): the same ValueError, word for word."""
    from hfdl.export import export_onnx

    shutil.copytree(run_dir / "best", tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(ValueError) as from_load:
        load(tmp_path / "model")
    with pytest.raises(ValueError) as from_export:
        export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert str(from_load.value) == str(from_export.value)
    assert not (tmp_path / "onnx").exists()


def test_one_rule_tells_hub_ids_from_local_folders(tmp_path, monkeypatch):
    """hfdl.inference and hfdl.export share hfdl._checkpoint.resolve_source: an existing folder is local, a valid
    repo id that is not a path is a Hub id, anything else is a missing local folder."""
    from hfdl._checkpoint import resolve_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").mkdir()
    (tmp_path / "file.txt").write_text("")
    assert resolve_source("org/name", "x") == Path("org/name")  # an existing folder wins over the Hub id
    assert resolve_source(tmp_path, "x") == tmp_path
    assert resolve_source("other/name", "x") == "other/name"
    assert resolve_source("name", "x") == "name"
    for local in ("./other/name", "~/no-such-hfdl-folder", str(tmp_path / "nowhere"), "a/b/c", "a b", Path("x/y")):
        with pytest.raises(FileNotFoundError, match=r" is not a directory; pass the thing\.$"):
            resolve_source(local, "the thing")
    with pytest.raises(FileNotFoundError, match=r"file\.txt is a file, not a folder; pass the thing"):
        resolve_source("file.txt", "the thing")


def test_any_registered_head_loads_with_its_own_inputs(tmp_path):
    """A regression head (no Auto class) loads from its saved architectures and takes its own input."""
    spec = hfdl.get_architecture("mlp")
    task = spec.task("tabular-regression")
    torch.manual_seed(0)
    model = task.model_class(spec.config_class(**spec.test_config)).eval()
    model.save_pretrained(tmp_path)
    predictor = load(tmp_path)
    assert predictor.task == "tabular-regression" and predictor.processor is None
    features = task.make_inputs(model.config, batch_size=3, seed=1)["input_features"]
    with torch.no_grad():
        expected = model(input_features=features).predictions
    torch.testing.assert_close(predictor.forward(features).predictions, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"The 'tabular-regression' head of .* takes no images; call forward\(input_f"):
        predictor(np.zeros((8, 8)))


def test_base_model_from_a_classifiers_checkpoint(run_dir, images):
    """task= picks another head of the same architecture: the backbone of a trained classifier."""
    predictor = load(run_dir, task="image-feature-extraction")
    assert type(predictor.model).__name__ == "LeNet5Model"
    pixel_values, expected = reference_outputs(run_dir / "best", images)
    features = predictor(images).last_hidden_state
    torch.testing.assert_close(features, expected.hidden_states[-1], rtol=0, atol=1e-6)  # F6, before the classifier


@needs_onnx
def test_onnx_graph_of_another_head_is_refused(run_dir):
    with pytest.raises(
        ValueError, match=r"holds the graph of the 'image-classification' head, not of 'image-feature-extraction'"
    ):
        load(run_dir, backend="onnx", task="image-feature-extraction")


def test_model_that_is_not_hfdls(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"holds a 'bert' model, not an hfdl one; hfdl model types: .*hfdl-lenet5, hfdl-mlp"
    ):
        load(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Classification scores: softmax for one label per image, sigmoids for binary and multi-label heads
# ---------------------------------------------------------------------------------------------------------------------


def test_classify_ranks_classes_by_softmax(run_dir, images):
    predictor = load(run_dir)
    _, expected = reference_outputs(run_dir / "best", images)
    probabilities = expected.logits.softmax(-1)
    ranked = predictor.classify(images, top_k=2)
    for row, result in zip(probabilities, ranked):
        values, indices = row.topk(2)
        assert [entry["label"] for entry in result] == [LABELS[int(i)] for i in indices]
        assert [entry["score"] for entry in result] == pytest.approx(values.tolist(), abs=1e-6)


def test_one_logit_and_multi_label_heads_get_sigmoids():
    from hfdl.inference import class_scores, top_classes

    logits = torch.tensor([[2.0, -1.0, 0.5]])
    single = hfdl.get_architecture("mlp").make_config(num_labels=3)
    multi = hfdl.get_architecture("mlp").make_config(num_labels=3, problem_type="multi_label_classification")
    binary = hfdl.get_architecture("mlp").make_config(num_labels=1)
    torch.testing.assert_close(class_scores(logits, single), logits.softmax(-1))
    torch.testing.assert_close(class_scores(logits, multi), logits.sigmoid())
    # A softmax over one logit would always say 1.0: the binary score is the positive class's probability.
    (only,) = top_classes(torch.tensor([[-2.0]]), binary, top_k=5)[0]
    assert only == {"label": "0", "score": pytest.approx(torch.tensor(-2.0).sigmoid().item())}


def test_classify_refuses_heads_that_are_not_image_classifiers(tmp_path):
    spec = hfdl.get_architecture("lenet5")
    model = spec.task("image-feature-extraction").model_class(spec.config_class(**spec.test_config))
    model.save_pretrained(tmp_path)
    spec.make_image_processor(model.config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"holds a 'image-feature-extraction' model; only image classifiers classify"):
        load(tmp_path).classify(np.zeros((16, 16), dtype=np.uint8))
