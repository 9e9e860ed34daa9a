"""ONNX export and the onnxruntime models, parametrized from the registry: a new head is tested on arrival.

Every head whose task spec names an export config (base models included) must export, validate in onnxruntime on
inputs of another size than the export's, and run behind :class:`ORTModel` like the PyTorch model; every head with
``not_exported`` must be refused with its reason. The text export configs, which no registered architecture uses
yet, are proven on a tiny stand-in text model. Exports are cached per module (each takes under a second).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ARCH_TASKS, build_model
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput, SequenceClassifierOutput

import hfdl.export.onnx as export_onnx_module
from hfdl.export import (
    EXPORT_CONFIG_CLASSES,
    OnnxValidationError,
    ORTModel,
    ORTModelForCausalLM,
    ORTModelForFeatureExtraction,
    ORTModelForImageClassification,
    TextGenerationWithPastExportConfig,
    export_config_for,
    export_onnx,
    export_tensorrt,
    get_export_config,
    register_with_optimum_tasks_manager,
)
from hfdl.export.configs import HAS_OPTIMUM_ONNX
from hfdl.registry import REGISTRY
from hfdl.specs import TaskSpec, text_inputs

CONFIGS_FILE = Path(export_onnx_module.__file__).with_name("configs.py")
EXPORTED = [param for param in ARCH_TASKS if param.values[1].export_config is not None]
NOT_EXPORTED = [param for param in ARCH_TASKS if param.values[1].export_config is None]
#: Heads over token ids (batch and sequence axes dynamic) and over fixed-size inputs (images, feature vectors).
TEXT_EXPORTED = [param for param in EXPORTED if param.values[1].inputs[0].kind == "token_ids"]
FIXED_SIZE_EXPORTED = [param for param in EXPORTED if param not in TEXT_EXPORTED]
GENERATION_EXPORTED = [param for param in TEXT_EXPORTED if param.values[1].task == "text-generation"]
#: Batch sizes the tests compare at: neither the export's (2) nor the validation's (3).
OTHER_BATCH_SIZES = (1, 6)


def axes_text(spec, config) -> str:
    """``"1, 16, 16"``: how the models' input checks spell an input's shape after the batch axis."""
    return ", ".join(spec.dynamic_axes.get(axis + 1, str(size)) for axis, size in enumerate(spec.shape(config)))


def main_and_hidden(outputs, main_output: str) -> tuple[torch.Tensor, tuple | None]:
    return outputs[main_output], outputs.get("hidden_states")


#: Text models are built with weights wider than the default N(0, 0.02): at the default init a classifier's logits
#: move by ~1e-6 when padding is added, below any atol, so a graph that ignored the mask would still pass.
TEXT_MODEL_OVERRIDES = {"initializer_range": 0.5}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(spec, task, hidden)`` -> (model, result, folder), exporting each combination once per module."""
    cache = {}

    def get(spec, task, output_hidden_states: bool = False):
        key = (spec.name, task.task, output_hidden_states)
        if key not in cache:
            text = task.inputs[0].kind == "token_ids"
            model = build_model(spec, task, **(TEXT_MODEL_OVERRIDES if text else {}))
            folder = tmp_path_factory.mktemp("onnx") / f"{spec.name}-{task.task}-{int(output_hidden_states)}"
            cache[key] = (model, export_onnx(model, folder, output_hidden_states=output_hidden_states), folder)
        return cache[key]

    return get


# ---------------------------------------------------------------------------------------------------- the registry


@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_every_head_is_exported_or_says_why(spec, task):
    assert (task.export_config is None) != (task.not_exported is None), "name an export config or say why not"
    if task.export_config is None:
        return
    assert task.export_config in EXPORT_CONFIG_CLASSES, f"{task.export_config} is not in hfdl.export.configs"
    config_class = EXPORT_CONFIG_CLASSES[task.export_config]
    assert task.task in config_class.TASKS
    assert config_class.MAIN_OUTPUT == task.main_output


# ---------------------------------------------------------------------------------------------------- export


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_export_writes_one_validated_graph(exported, spec, task):
    model, result, folder = exported(spec, task)
    export_config = export_config_for(model, task)

    assert result.validated is True and result.task == task.task
    assert result.onnx_path == folder / "model.onnx"
    assert result.input_names == task.input_names
    assert result.output_names == [task.main_output]
    assert result.opset == export_config.DEFAULT_ONNX_OPSET
    assert result.atol == export_config.ATOL_FOR_VALIDATION
    assert result.validation_batch_size != result.export_batch_size  # validation exercised the dynamic axis
    # Real figures, not flags: one finite difference per output, within atol.
    assert set(result.max_abs_diff) == set(result.output_names)
    for output_name, diff in result.max_abs_diff.items():
        assert isinstance(diff, float) and math.isfinite(diff), output_name
        assert 0.0 <= diff <= result.atol, f"{output_name}: {diff}"

    # One self-contained graph, plus the config; no external data, no staging folder left behind.
    files = {path.name for path in folder.iterdir()}
    assert {"model.onnx", "config.json"} <= files
    assert not [f for f in files if f.endswith((".data", ".onnx_data"))]
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".partial")]
    graph = onnx.load(result.onnx_path)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in graph.graph.initializer)
    assert [opset.version for opset in graph.opset_import if opset.domain == ""] == [result.opset]
    # Each input's axes are those of its task spec: named where dynamic, fixed by the config elsewhere.
    for graph_input, input_spec in zip(graph.graph.input, task.inputs, strict=True):
        dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        sample_shape = input_spec.shape(model.config)
        assert dims == [input_spec.dynamic_axes.get(axis, size) for axis, size in enumerate((0, *sample_shape))]

    saved = AutoConfig.from_pretrained(folder)
    assert saved.model_type == model.config.model_type
    assert saved.architectures == [type(model).__name__]
    assert {key: getattr(saved, key) for key in spec.test_config} == spec.test_config


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_export_from_saved_folder_infers_the_task(spec, task, tmp_path):
    """`hfdl export onnx DIR OUT` on any saved head: the task comes from `architectures` through the registry."""
    model = build_model(spec, task, seed=3)
    model.save_pretrained(tmp_path / "checkpoint")
    processor = spec.make_image_processor(model.config) if task.processor == "image" else None
    if processor is not None:
        processor.save_pretrained(tmp_path / "checkpoint")

    result = export_onnx(str(tmp_path / "checkpoint"), tmp_path / "onnx")

    assert result.task == task.task and result.validated
    assert result.max_abs_diff[task.main_output] <= result.atol
    if processor is not None:
        assert (tmp_path / "onnx" / "preprocessor_config.json").read_text() == (
            tmp_path / "checkpoint" / "preprocessor_config.json"
        ).read_text()
    ort_model = ORTModel.from_pretrained(tmp_path / "onnx")
    inputs = task.make_inputs(model.config, batch_size=4, seed=5)
    with torch.inference_mode():
        expected = model(**inputs)[task.main_output]
    torch.testing.assert_close(ort_model(**inputs)[task.main_output], expected, atol=result.atol, rtol=0)


def test_export_into_existing_folder_replaces_the_graph(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("kept")
    (tmp_path / "out" / "model.onnx").write_bytes(b"stale")
    spec = REGISTRY["mlp"]
    model = build_model(spec, spec.task()).train()
    export_onnx(model, tmp_path / "out")
    assert model.training, "export must give the model back in the mode it was in"
    assert (tmp_path / "out" / "notes.txt").read_text() == "kept"
    onnx.checker.check_model(str(tmp_path / "out" / "model.onnx"))


def test_failed_validation_raises_and_writes_nothing(tmp_path, monkeypatch):
    def wrong_session(session, feeds):
        return [value + 0.5 for value in session.run(None, feeds)]

    monkeypatch.setattr(export_onnx_module, "run_session", wrong_session)
    spec = REGISTRY["mlp"]
    with pytest.raises(OnnxValidationError, match=r"'logits' differs .* by up to 0\.5 .* pixel_values of shape \(3, "):
        export_onnx(build_model(spec, spec.task()), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a staging folder


@pytest.mark.parametrize(("spec", "task"), NOT_EXPORTED)
def test_heads_not_exported_are_refused_with_their_reason(spec, task, tmp_path):
    model = build_model(spec, task)
    reason = re.escape(task.not_exported)
    with pytest.raises(ValueError, match=rf"Cannot export the '{task.task}' head {type(model).__name__}: {reason}"):
        export_onnx(model, tmp_path / "out")
    model.save_pretrained(tmp_path / "checkpoint")
    with pytest.raises(ValueError, match=reason):  # refused before any weight is read
        export_onnx(tmp_path / "checkpoint", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def saved_lenet5(tmp_path) -> Path:
    spec = REGISTRY["lenet5"]
    build_model(spec, spec.task()).save_pretrained(tmp_path / "lenet5")
    return tmp_path / "lenet5"


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (
            "missing folder",
            FileNotFoundError,
            r"no-such-folder is not a directory; pass a folder written by save_pretrained or a Hub id",
        ),
        ("no config.json", FileNotFoundError, r"has no config\.json; pass a folder written by save_pretrained"),
        (
            "truncated weights",  # the same ValueError as hfdl.inference.load gives (hfdl._checkpoint.load_weights)
            ValueError,
            r"Cannot load the weights of LeNet5ForImageClassification because .*model\.safetensors is not a readable .*corrupt",
        ),
        ("no weights", OSError, r"no file named model\.safetensors"),
        ("foreign model_type", ValueError, r"holds a 'bert' model, not an hfdl one; hfdl model types: hfdl-"),
        ("unknown task", ValueError, r"lenet5 has no 'object-detection' head; available: image-classification"),
        (
            "no architectures",
            ValueError,
            r"holds no architectures \(hfdl-lenet5\), none of them a head of lenet5; pass task=",
        ),
    ],
)
def test_broken_checkpoints_fail_with_one_clear_error(saved_lenet5, tmp_path, damage, error, message):
    source, task = saved_lenet5, None
    if damage == "missing folder":
        source = tmp_path / "no-such-folder"
    elif damage == "no config.json":
        (saved_lenet5 / "config.json").unlink()
    elif damage == "truncated weights":  # an interrupted download or copy
        weights = saved_lenet5 / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "no weights":
        (saved_lenet5 / "model.safetensors").unlink()
    elif damage == "foreign model_type":
        _edit_config(saved_lenet5, model_type="bert")
    elif damage == "unknown task":
        task = "object-detection"
    elif damage == "no architectures":
        _edit_config(saved_lenet5, architectures=None)
    with pytest.raises(error, match=message):
        export_onnx(str(source), tmp_path / "out", task=task)
    assert not (tmp_path / "out").exists()


def test_wrong_models_and_tasks_are_refused(tmp_path):
    spec = REGISTRY["lenet5"]
    lenet = build_model(spec, spec.task())
    with pytest.raises(ValueError, match="`task` is 'image-feature-extraction' but LeNet5ForImageClassification is"):
        export_onnx(lenet, tmp_path / "out", task="image-feature-extraction")
    with pytest.raises(
        ValueError, match=r"`task` describes LeNet5Model \('image-feature-extraction'\), got a LeNet5For"
    ):
        export_onnx(lenet, tmp_path / "out", task=spec.task("image-feature-extraction"))
    with pytest.raises(
        ValueError, match=r"A TinyTextModel holds a 'hfdl-test-tiny-text' model, not an hfdl one; .*`task=` a TaskSpec"
    ):
        export_onnx(TinyTextModel(TinyTextConfig()), tmp_path / "out")
    with pytest.raises(ValueError, match="must be a PreTrainedModel or a path"):
        export_onnx(42, tmp_path / "out")
    with pytest.raises(ValueError, match="Only float32 models are exported"):
        export_onnx(build_model(spec, spec.task()).half(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 17}, r"`opset` must be an integer in \[18, "),
        ({"opset": "18"}, "`opset` must be an integer"),
        ({"atol": 0}, "`atol` must be a positive finite number"),
        ({"atol": float("nan")}, "`atol` must be a positive finite number"),
    ],
)
def test_bad_export_arguments(tmp_path, kwargs, message):
    spec = REGISTRY["mlp"]
    with pytest.raises(ValueError, match=message):
        export_onnx(build_model(spec, spec.task()), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------- hidden states


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_hidden_states_export(exported, spec, task):
    model, result, folder = exported(spec, task, True)
    inputs = task.make_inputs(model.config, batch_size=5, seed=2)
    with torch.inference_mode():
        expected = model(**inputs, output_hidden_states=True)
    num_hidden = len(expected.hidden_states)  # counted from the model, never declared per architecture
    assert result.output_names == [task.main_output, *(f"hidden_states.{i}" for i in range(num_hidden))]
    assert all(0.0 <= diff <= result.atol for diff in result.max_abs_diff.values())

    ort_model = ORTModel.from_pretrained(folder)
    main, hidden_states = main_and_hidden(ort_model(**inputs), task.main_output)
    torch.testing.assert_close(main, expected[task.main_output], atol=result.atol, rtol=0)
    assert len(hidden_states) == num_hidden
    for got, want in zip(hidden_states, expected.hidden_states):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=result.atol, rtol=0)
    assert ort_model(**inputs, output_hidden_states=False).hidden_states is None


def test_lenet5_first_conv_feature_maps(exported):
    """The Gradio Space plots C1's feature maps from the ONNX backend: they are ``hidden_states[0]``."""
    spec = REGISTRY["lenet5"]
    model, _, folder = exported(spec, spec.task("image-classification"), True)
    config = model.config
    side = config.image_size - config.kernel_size + 1
    pixel_values = spec.task().make_inputs(config, batch_size=2)["pixel_values"]
    feature_maps = ORTModelForImageClassification.from_pretrained(folder)(pixel_values).hidden_states[0]
    assert feature_maps.shape == (2, config.conv_channels[0], side, side)


# ---------------------------------------------------------------------------------------------------- ORT model


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_ort_model_behaves_like_pytorch(exported, spec, task):
    model, result, folder = exported(spec, task)
    ort_model = ORTModel.from_pretrained(folder)  # picks the class that serves the saved head
    assert task.task in type(ort_model).output_classes and ort_model.task is task
    assert ort_model.main_input_name == model.main_input_name == task.input_names[0]
    assert ort_model.config.model_type == model.config.model_type

    for batch_size in OTHER_BATCH_SIZES:
        inputs = task.make_inputs(model.config, batch_size=batch_size, seed=batch_size)
        with torch.inference_mode():
            expected = model(**inputs)
        outputs = ort_model(**inputs)
        # The graph carries the head's main output (and hidden states); extra fields such as ResNet's pooler_output
        # stay with PyTorch, so the ORT output is the plain output class of the task.
        assert type(outputs) is type(expected) or set(outputs.keys()) <= set(expected.keys())
        main = outputs[task.main_output]
        assert isinstance(main, torch.Tensor) and main.dtype == expected[task.main_output].dtype
        assert main.shape == expected[task.main_output].shape
        torch.testing.assert_close(main, expected[task.main_output], atol=result.atol, rtol=0)
        assert outputs.get("loss") is None and outputs.hidden_states is None
        # Positional and numpy inputs, same answer; a tuple with return_dict=False, like the PyTorch model.
        torch.testing.assert_close(ort_model(*(v.numpy() for v in inputs.values()))[task.main_output], main)
        (main_tuple,) = ort_model.forward(**inputs, return_dict=False)
        torch.testing.assert_close(main_tuple, main)

    inputs = task.make_inputs(model.config, batch_size=1)
    with pytest.raises(ValueError, match="exported without hidden states"):
        ort_model(**inputs, output_hidden_states=True)
    with pytest.raises(ValueError, match=f"computes no loss; drop `labels` .*`{task.main_output}`"):
        ort_model(**inputs, labels=torch.tensor([0]))
    with pytest.raises(ValueError, match=f"Missing input `{task.input_names[0]}`"):
        ort_model()


@pytest.mark.parametrize(("spec", "task"), FIXED_SIZE_EXPORTED)
def test_ort_model_rejects_bad_inputs_like_pytorch(exported, spec, task):
    model, _, folder = exported(spec, task)
    ort_model = ORTModel.from_pretrained(folder)
    for input_spec in task.inputs:
        good = task.make_inputs(model.config, batch_size=2)
        value = good[input_spec.name]
        expected = re.escape(f"(batch_size, {axes_text(input_spec, model.config)})")
        bad_values = [
            torch.zeros(*value.shape[:-1], value.shape[-1] + 1, dtype=value.dtype),  # a wrong static size
            value[0],  # no batch axis
            value.to(torch.uint8),  # raw pixels / wrong dtype
            value.tolist(),  # not a tensor
            value[:0],  # empty batch (PyTorch returns an empty batch; onnxruntime cannot)
        ]
        for bad in bad_values:
            if not (isinstance(bad, torch.Tensor) and len(bad) == 0 and bad.dim() == value.dim()):
                with pytest.raises(ValueError, match=expected):
                    model(**{**good, input_spec.name: bad})
            with pytest.raises(ValueError, match=expected):
                ort_model(**{**good, input_spec.name: bad})
            if isinstance(bad, torch.Tensor):
                with pytest.raises(ValueError, match=expected):
                    ort_model(**{**good, input_spec.name: bad.numpy()})


def test_ort_model_rejects_missing_or_corrupt_graph(exported, tmp_path):
    spec = REGISTRY["lenet5"]
    _, _, folder = exported(spec, spec.task())
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="No model.onnx in"):
        ORTModelForImageClassification.from_pretrained(tmp_path)

    (tmp_path / "model.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        ORTModelForImageClassification.from_pretrained(tmp_path)

    graph_bytes = (folder / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(graph_bytes[: len(graph_bytes) // 2])  # truncated download
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        ORTModelForImageClassification.from_pretrained(tmp_path)

    with pytest.raises(ValueError, match="Unknown or empty `providers`"):
        ORTModelForImageClassification.from_pretrained(folder, providers=["NoSuchExecutionProvider"])


def test_ort_model_class_must_serve_the_saved_head(exported, tmp_path):
    spec = REGISTRY["lenet5"]
    _, _, classifier_folder = exported(spec, spec.task("image-classification"))
    _, _, base_folder = exported(spec, spec.task("image-feature-extraction"))
    with pytest.raises(
        ValueError, match="'image-feature-extraction' graph .* load it with ORTModelForFeatureExtraction"
    ):
        ORTModelForImageClassification.from_pretrained(base_folder)
    with pytest.raises(ValueError, match="which ORTModelForFeatureExtraction does not serve; load it with ORTModelFor"):
        ORTModelForFeatureExtraction.from_pretrained(classifier_folder)
    # A folder whose config names no head still loads where the class serves exactly one of the architecture's.
    shutil.copytree(classifier_folder, tmp_path / "anonymous")
    _edit_config(tmp_path / "anonymous", architectures=None)
    assert ORTModelForImageClassification.from_pretrained(tmp_path / "anonymous").task.task == "image-classification"
    with pytest.raises(ValueError, match=r"holds no architectures .* none of them a head of lenet5; pass task= one of"):
        ORTModel.from_pretrained(tmp_path / "anonymous")
    assert (
        ORTModel.from_pretrained(tmp_path / "anonymous", task="image-classification").task.task
        == "image-classification"
    )


def test_ort_model_task_must_be_the_graphs_head(exported):
    spec = REGISTRY["lenet5"]
    _, _, folder = exported(spec, spec.task("image-classification"))
    assert ORTModel.from_pretrained(folder, task="image-classification").task is spec.task("image-classification")
    with pytest.raises(ValueError, match=r"holds the graph of the 'image-classification' head, not of 'image-feature-"):
        ORTModel.from_pretrained(folder, task="image-feature-extraction")
    with pytest.raises(ValueError, match=r"lenet5 has no 'text-generation' head; available: image-classification"):
        ORTModel.from_pretrained(folder, task="text-generation")


def test_export_with_hidden_states_leaves_the_global_rngs_alone(tmp_path):
    """Counting the hidden states and generating the dummy inputs are seeded apart from the caller's streams."""
    import random

    spec = REGISTRY["lenet5"]
    model = build_model(spec, spec.task())
    torch.manual_seed(1234)
    random.seed(1234)
    torch_state, python_state = torch.random.get_rng_state(), random.getstate()
    export_onnx(model, tmp_path / "onnx", output_hidden_states=True)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == python_state


# ---------------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(("spec", "task"), EXPORTED)
def test_export_config_follows_the_task_spec(spec, task):
    model = build_model(spec, task)
    export_config = export_config_for(model, task)
    assert export_config.inputs == {input_spec.name: input_spec.dynamic_axes for input_spec in task.inputs}
    assert list(export_config.outputs) == [task.main_output]
    assert export_config.values_override["output_hidden_states"] is False
    # The example length of text inputs for their free axes (sequence_length), so every axis can be compared.
    shapes = {"batch_size": 4}
    for input_spec in task.inputs:
        for axis, axis_name in input_spec.dynamic_axes.items():
            if axis:
                shapes[axis_name] = input_spec.shape(model.config)[axis - 1]
    dummy = export_config.generate_dummy_inputs(framework="pt", **shapes)
    for input_spec in task.inputs:
        assert dummy[input_spec.name].shape == (4, *input_spec.shape(model.config))
        assert dummy[input_spec.name].dtype == input_spec.dtype
    with torch.inference_mode():
        assert model(**dummy)[task.main_output].shape[0] == 4

    config_class = EXPORT_CONFIG_CLASSES[task.export_config]
    with pytest.raises(ValueError, match="`use_past=True` is not supported: .* without a key/value cache"):
        config_class(model.config, task=task.task, use_past=True)
    with pytest.raises(ValueError, match="`output_hidden_states=True` needs `num_hidden_states`"):
        config_class(model.config, task=task.task, output_hidden_states=True)
    with pytest.raises(ValueError, match=f"{config_class.__name__} exports the '{config_class.TASKS[0]}'"):
        config_class(model.config, task="object-detection")
    with pytest.raises(ValueError, match="cannot make dummy values of input 'bbox'; its generators make: "):
        config_class(model.config, task=task.task, inputs={"bbox": {0: "batch_size"}})
    with pytest.raises(ValueError, match="must have a dynamic batch axis"):
        config_class(model.config, task=task.task, inputs={task.input_names[0]: {}})


def test_export_config_names_what_it_needs():
    with pytest.raises(ValueError, match="No export config named 'NoSuchExportConfig' in hfdl.export.configs; known:"):
        get_export_config(AutoConfig.for_model("bert"), "NoSuchExportConfig")
    with pytest.raises(ValueError, match="ImageClassificationExportConfig needs `num_channels`, `image_size`"):
        get_export_config(PretrainedConfig(), "ImageClassificationExportConfig")
    with pytest.raises(ValueError, match="TextFeatureExtractionExportConfig needs `vocab_size`"):
        get_export_config(PretrainedConfig(), "TextFeatureExtractionExportConfig")


def test_configs_module_stands_alone():
    """The optimum lane loads configs.py by path where hfdl is not installed: it may import optimum, not hfdl."""
    tree = ast.parse(CONFIGS_FILE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports in configs.py"
            imported.add(node.module)
    # The standard library, optimum, and torch/transformers (both venvs have them; typing-only or imported lazily).
    assert {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names) <= {
        "optimum",
        "torch",
        "transformers",
    }
    spec = importlib.util.spec_from_file_location("standalone_hfdl_export_configs", CONFIGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.EXPORT_CONFIG_CLASSES) == set(EXPORT_CONFIG_CLASSES)


@pytest.mark.skipif(HAS_OPTIMUM_ONNX, reason="optimum-onnx is installed here: the optimum lane tests registration")
def test_registration_with_optimum_says_it_needs_optimum_onnx():
    """Registration only serves optimum-onnx's exporter; tests/test_optimum_lane.py exercises it where it exists."""
    with pytest.raises(ImportError, match=r"needs optimum-onnx \(pip install optimum-onnx\).*transformers < 4\.58"):
        register_with_optimum_tasks_manager("hfdl-lenet5", "image-classification", "ImageClassificationExportConfig")


# ---------------------------------------------------------------------------------------------------- text


class TinyTextConfig(PretrainedConfig):
    model_type = "hfdl-test-tiny-text"

    def __init__(self, vocab_size: int = 37, hidden_size: int = 8, head: str = "base", **kwargs) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.head = head
        super().__init__(**kwargs)


class TinyTextModel(PreTrainedModel):
    """A stand-in text model (embeddings, one layer that mixes each token with the masked mean of its sequence)
    with a ``base``, ``classification`` or ``lm`` head: enough to prove the text export configs' inputs and axes
    before a real text architecture (BERT, GPT) is registered."""

    config_class = TinyTextConfig
    main_input_name = "input_ids"

    def __init__(self, config: TinyTextConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layer = nn.Linear(config.hidden_size, config.hidden_size)
        out_features = {"base": 0, "classification": config.num_labels, "lm": config.vocab_size}[config.head]
        self.head = nn.Linear(config.hidden_size, out_features) if out_features else None
        self.post_init()

    def forward(self, input_ids, attention_mask=None, output_hidden_states=None, return_dict=None, **kwargs):
        mask = (torch.ones_like(input_ids) if attention_mask is None else attention_mask).unsqueeze(-1).float()
        embeddings = self.embeddings(input_ids) * mask  # (B, T, H)
        context = embeddings.sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1.0)  # (B, 1, H)
        hidden = torch.tanh(self.layer(embeddings + context))  # (B, T, H)
        hidden_states = (embeddings, hidden) if output_hidden_states else None
        if self.config.head == "classification":
            return SequenceClassifierOutput(logits=self.head(hidden[:, 0]), hidden_states=hidden_states)
        if self.config.head == "lm":
            return CausalLMOutput(logits=self.head(hidden), hidden_states=hidden_states)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=hidden_states)


def text_task(task: str, export_config: str, main_output: str) -> TaskSpec:
    return TaskSpec(task, TinyTextModel, None, text_inputs(), main_output, export_config=export_config)


TEXT_TASKS = [
    pytest.param("base", text_task("feature-extraction", "TextFeatureExtractionExportConfig", "last_hidden_state")),
    pytest.param("classification", text_task("text-classification", "TextClassificationExportConfig", "logits")),
    pytest.param("lm", text_task("text-generation", "TextGenerationExportConfig", "logits")),
]


@pytest.mark.parametrize(("head", "task"), TEXT_TASKS, ids=[p.values[0] for p in TEXT_TASKS])
def test_text_export_configs_on_a_stand_in_model(head, task, tmp_path):
    torch.manual_seed(0)
    model = TinyTextModel(TinyTextConfig(head=head, num_labels=3)).eval()
    result = export_onnx(model, tmp_path / "onnx", task=task, output_hidden_states=True)
    assert result.input_names == ["input_ids", "attention_mask"]
    assert result.output_names == [task.main_output, "hidden_states.0", "hidden_states.1"]

    session = onnxruntime.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    for node in session.get_inputs():
        assert node.shape == ["batch_size", "sequence_length"] and node.type == "tensor(int64)"
    output_axes = {node.name: node.shape[:2] for node in session.get_outputs()}
    sequence_output = ["batch_size", "sequence_length"]
    assert output_axes[task.main_output] == (["batch_size", 3] if head == "classification" else sequence_output)
    assert output_axes["hidden_states.1"] == sequence_output
    # Other batch sizes *and* sequence lengths than the export's (2, 16), with padding.
    generator = torch.Generator().manual_seed(0)
    for batch_size, length in ((1, 5), (4, 23)):
        input_ids = torch.randint(0, model.config.vocab_size, (batch_size, length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[-1, length // 2 :] = 0
        with torch.inference_mode():
            expected = model(input_ids, attention_mask, output_hidden_states=True)
        outputs = session.run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})
        for got, want in zip(outputs, (expected[task.main_output], *expected.hidden_states), strict=True):
            np.testing.assert_allclose(got, want.numpy(), atol=result.atol, rtol=0)

    if head == "base":  # the ORT model's text input checks
        ort_model = ORTModelForFeatureExtraction(session, model.config, task, tmp_path / "onnx")
        with torch.inference_mode():
            expected = model(input_ids)  # no attention_mask: every token attends, in both
        torch.testing.assert_close(
            ort_model(input_ids).last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=0
        )
        with pytest.raises(ValueError, match=r"`input_ids` holds token ids from 37 to 37, but .* vocab_size=37"):
            ort_model(torch.full((1, 4), model.config.vocab_size))
        with pytest.raises(ValueError, match=r"`input_ids` must be an integer tensor of shape \(batch_size, sequence"):
            ort_model(input_ids.float())
        with pytest.raises(ValueError, match=r"`attention_mask` must be a tensor of shape \(batch_size, 23\) with 1"):
            ort_model(input_ids, attention_mask=torch.ones(4, dtype=torch.int64))


def test_text_export_config_takes_the_inputs_its_task_spec_declares():
    """A BERT-style spec with ``token_type_ids`` needs no new class: the spec's inputs, in its order, reach the graph."""
    config = TinyTextConfig()
    axes = {0: "batch_size", 1: "sequence_length"}
    inputs = {"input_ids": axes, "token_type_ids": axes, "attention_mask": axes}
    export_config = get_export_config(config, "TextFeatureExtractionExportConfig", inputs=inputs)
    assert export_config.inputs == inputs
    dummy = export_config.generate_dummy_inputs(framework="pt", batch_size=3, sequence_length=7)
    assert {name: tuple(value.shape) for name, value in dummy.items()} == dict.fromkeys(inputs, (3, 7))
    assert 0 <= int(dummy["input_ids"].min()) and int(dummy["input_ids"].max()) < config.vocab_size
    default = get_export_config(config, "TextFeatureExtractionExportConfig")
    assert default.inputs == {"input_ids": axes, "attention_mask": axes}


# ---------------------------------------------------------------------------------------------------- text heads


def padded_text_inputs(config, batch_size: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Token ids with a mask that mixes rows without padding, right-padded rows and left-padded rows."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (batch_size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    for row in range(1, batch_size):
        padding = 1 + row % (length - 1)
        if row % 2:
            attention_mask[row, length - padding :] = 0
        else:
            attention_mask[row, :padding] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize(("spec", "task"), TEXT_EXPORTED)
def test_text_graphs_match_pytorch_at_new_sizes_with_padding(exported, spec, task):
    """The export traced (2, 16) uniformly padded ids; other batch sizes, lengths and padding patterns must give
    PyTorch's outputs (the models build the full mask whenever they are traced). The models' wide init
    (:data:`TEXT_MODEL_OVERRIDES`) makes a graph that ignored the mask differ by far more than atol."""
    model, result, folder = exported(spec, task)
    ort_model = ORTModel.from_pretrained(folder)
    assert ort_model.session.get_inputs()[0].shape == ["batch_size", "sequence_length"]
    for batch_size, length in ((1, 3), (5, 11), (4, model.config.max_position_embeddings)):
        inputs = padded_text_inputs(model.config, batch_size, length, seed=length)
        with torch.inference_mode():
            expected = model(**inputs)[task.main_output]
        got = ort_model(**inputs)[task.main_output]
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=result.atol, rtol=0)
    # Padding changes the answer (so the mask really reaches the graph), and a float mask means the same as ints.
    inputs = padded_text_inputs(model.config, 3, 7, seed=0)
    unpadded = ort_model(inputs["input_ids"])[task.main_output]
    assert (ort_model(**inputs)[task.main_output][1] - unpadded[1]).abs().max() > 100 * result.atol
    float_mask = inputs["attention_mask"].float()
    torch.testing.assert_close(
        ort_model(inputs["input_ids"], float_mask)[task.main_output], ort_model(**inputs)[task.main_output]
    )


def _error_of(call) -> str | None:
    try:
        call()
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize(("spec", "task"), TEXT_EXPORTED)
def test_ort_text_model_rejects_bad_inputs_with_pytorchs_messages(exported, spec, task):
    model, _, folder = exported(spec, task)
    ort_model = ORTModel.from_pretrained(folder)
    config = model.config
    good = task.make_inputs(config, batch_size=2)
    input_ids, attention_mask = good["input_ids"], good["attention_mask"]
    too_long = config.max_position_embeddings + 1
    bad_inputs = {
        "float ids": {"input_ids": input_ids.float()},
        "ids without batch axis": {"input_ids": input_ids[0], "attention_mask": None},
        "ids as a list": {"input_ids": input_ids.tolist(), "attention_mask": None},
        "id past the vocabulary": {"input_ids": torch.full_like(input_ids, config.vocab_size)},
        "negative id": {"input_ids": torch.full_like(input_ids, -1)},
        "longer than the position table": {
            "input_ids": torch.zeros(2, too_long, dtype=torch.int64),
            "attention_mask": None,
        },
        "mask of another length": {"attention_mask": torch.ones(2, input_ids.shape[1] + 1, dtype=torch.int64)},
        "mask without batch axis": {"attention_mask": attention_mask[0]},
        "mask as a list": {"attention_mask": attention_mask.tolist()},
    }
    for case, changes in bad_inputs.items():
        inputs = {**good, **changes}
        with torch.inference_mode():
            pytorch_error = _error_of(lambda inputs=inputs: model(**inputs))
        assert pytorch_error is not None, f"{case}: PyTorch accepted it"
        assert _error_of(lambda inputs=inputs: ort_model(**inputs)) == pytorch_error, case
        if all(isinstance(value, torch.Tensor) for value in inputs.values() if value is not None):  # numpy too
            numpy_inputs = {name: None if v is None else v.numpy() for name, v in inputs.items()}
            assert _error_of(lambda inputs=numpy_inputs: ort_model(**inputs)) == pytorch_error, case
    # What PyTorch cannot tell (it returns an empty batch, or fails inside the attention), the ORT model says.
    with pytest.raises(ValueError, match=r"`input_ids` must have shape \(batch_size, sequence_length\) with batch"):
        ort_model(input_ids[:0])
    with pytest.raises(ValueError, match=r"`attention_mask` has 1 rows but the token ids have 2; give one row per"):
        ort_model(input_ids, attention_mask[:1])


@pytest.mark.parametrize(("spec", "task"), GENERATION_EXPORTED)
def test_ort_causal_lm_generates_pytorchs_greedy_tokens(exported, spec, task):
    model, _, folder = exported(spec, task)
    ort_model = ORTModel.from_pretrained(folder)
    assert isinstance(ort_model, ORTModelForCausalLM)
    config = model.config
    prompt = padded_text_inputs(config, 3, 5, seed=11)
    prompt["attention_mask"][1] = 1  # rows: unpadded, unpadded, left-padded (as a batch for generation is)
    max_new_tokens = config.max_position_embeddings - 5
    with torch.inference_mode():
        expected = model.generate(**prompt, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
    got = ort_model.generate(**prompt, max_new_tokens=max_new_tokens)
    assert got.dtype == torch.int64 and got.shape == (3, 5 + max_new_tokens)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)

    # A row that emits the end-of-sequence id stops there and is padded, as in transformers.
    eos = int(expected[0, 6])
    with torch.inference_mode():
        expected = model.generate(
            **prompt, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=0
        )
    got = ort_model.generate(**prompt, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=0)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert (got[0, 7:] == 0).all()

    with pytest.raises(ValueError, match=r"5 prompt tokens \+ max_new_tokens=12 exceed .*max_position_embeddings=16"):
        ort_model.generate(**prompt, max_new_tokens=config.max_position_embeddings - 4)
    with pytest.raises(ValueError, match=r"`max_new_tokens` must be a positive integer, got 0"):
        ort_model.generate(**prompt, max_new_tokens=0)
    with pytest.raises(ValueError, match=r"`input_ids` holds token ids from"):
        ort_model.generate(torch.full((1, 3), config.vocab_size))


def test_with_past_export_config(tmp_path):
    """The cache-carrying decoder config: optimum-onnx's past handling where it is installed, refused elsewhere."""
    spec = REGISTRY["gpt"]
    config = spec.config_class(**spec.test_config)
    no_cache = TextGenerationWithPastExportConfig(config)
    assert list(no_cache.inputs) == ["input_ids", "attention_mask"] and list(no_cache.outputs) == ["logits"]
    with pytest.raises(ValueError, match="`use_past_in_inputs=True` needs `use_past=True`"):
        TextGenerationWithPastExportConfig(config, use_past_in_inputs=True)
    if not HAS_OPTIMUM_ONNX:
        with pytest.raises(ImportError, match=r"needs optimum-onnx .*exports decoders without cache"):
            TextGenerationWithPastExportConfig(config, use_past=True, use_past_in_inputs=True)
        return
    with_past = TextGenerationWithPastExportConfig(config, use_past=True, use_past_in_inputs=True)
    layers = range(config.num_hidden_layers)
    assert list(with_past.inputs) == [
        "input_ids",
        "attention_mask",
        *(f"past_key_values.{i}.{kind}" for i in layers for kind in ("key", "value")),
    ]
    assert list(with_past.outputs) == ["logits", *(f"present.{i}.{kind}" for i in layers for kind in ("key", "value"))]
    dummy = with_past.generate_dummy_inputs(framework="pt", batch_size=2)
    past_length = dummy["past_key_values"][0][0].shape[2]
    assert past_length + dummy["input_ids"].shape[1] <= config.max_position_embeddings
    assert dummy["attention_mask"].shape == (2, past_length + dummy["input_ids"].shape[1])


# ---------------------------------------------------------------------------------------------------- extras


def test_missing_export_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    for module_name in [m for m in sys.modules if m == "hfdl.export" or m.startswith("hfdl.export.")]:
        monkeypatch.delitem(sys.modules, module_name)
    with pytest.raises(ImportError, match=r"needs 'onnxruntime'.*pip install 'hfdl\[export\]'"):
        importlib.import_module("hfdl.export")


def test_tensorrt_export_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError, match="pip install tensorrt"):
        export_tensorrt(tmp_path, tmp_path / "engine", fp16=True)
