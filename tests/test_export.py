"""ONNX export and the onnxruntime model, parametrized from the registry: a new architecture is tested on arrival.

Every (architecture, task) with an Auto class must export, validate in onnxruntime with real differences below
``atol``, and run behind :class:`ORTModelForImageClassification` like the PyTorch model on other batch sizes.
Heads without an Auto class must be refused with a clear error. Exports are cached per module (each takes ~2 s).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from transformers import AutoConfig
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

import hfdl.export.onnx as export_onnx_module
from hfdl.export import (
    EXPORT_CONFIG_CLASSES,
    NOT_EXPORTED,
    OnnxValidationError,
    ORTModelForImageClassification,
    export_onnx,
    export_tensorrt,
    exportable_tasks,
    get_export_config,
    register_with_optimum_tasks_manager,
)
from hfdl.export.configs import HAS_OPTIMUM_ONNX
from hfdl.registry import REGISTRY

CONFIGS_FILE = Path(export_onnx_module.__file__).with_name("configs.py")
EXPORT_CASES = [
    pytest.param(spec.name, task.task, id=f"{spec.name}-{task.task}")
    for spec in REGISTRY.values()
    for task in spec.tasks
    if task.auto_class is not None
]
NOT_EXPORTED_CASES = [
    pytest.param(spec.name, task.task, id=f"{spec.name}-{task.task}")
    for spec in REGISTRY.values()
    for task in spec.tasks
    if task.auto_class is None
]


def build_model(name: str, task: str, seed: int = 0):
    spec = REGISTRY[name]
    torch.manual_seed(seed)
    return spec.task(task).model_class(spec.make_config(**spec.test_config)).eval()


def random_pixels(model, batch_size: int, seed: int = 123) -> torch.Tensor:
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, config.num_channels, config.image_size, config.image_size), generator=generator)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name, task, hidden)`` -> (model, result, folder), exporting each combination once per module."""
    cache = {}

    def get(name: str, task: str, output_hidden_states: bool = False):
        key = (name, task, output_hidden_states)
        if key not in cache:
            model = build_model(name, task)
            folder = tmp_path_factory.mktemp("onnx") / f"{name}-{'hidden' if output_hidden_states else 'logits'}"
            result = export_onnx(model, folder, output_hidden_states=output_hidden_states)
            cache[key] = (model, result, folder)
        return cache[key]

    return get


# ---------------------------------------------------------------------------------------------------- export


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_export_writes_one_validated_graph(exported, name, task):
    model, result, folder = exported(name, task)
    export_config = get_export_config(model.config, task)

    assert result.validated is True
    assert result.onnx_path == folder / "model.onnx"
    assert result.input_names == ["pixel_values"]
    assert result.output_names == ["logits"]
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
    batch_axis = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param == "batch_size"
    assert [opset.version for opset in graph.opset_import if opset.domain == ""] == [result.opset]

    saved = AutoConfig.from_pretrained(folder)
    assert saved.model_type == model.config.model_type
    assert saved.architectures == [type(model).__name__]
    assert (saved.num_labels, saved.image_size) == (model.config.num_labels, model.config.image_size)


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_graph_matches_pytorch_on_new_batch_sizes(exported, name, task):
    model, result, _ = exported(name, task)
    session = onnxruntime.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    for batch_size in (1, 7):
        pixel_values = random_pixels(model, batch_size)
        (logits,) = session.run(None, {"pixel_values": pixel_values.numpy()})
        with torch.inference_mode():
            expected = model(pixel_values).logits.numpy()
        assert logits.shape == expected.shape == (batch_size, model.config.num_labels)
        assert float(np.max(np.abs(logits - expected))) < result.atol


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_export_keeps_the_models_eager_input_errors(exported, name, task):
    model, _, _ = exported(name, task)
    with pytest.raises(ValueError, match="must have shape"):
        model(torch.zeros(2, model.config.num_channels + 1, model.config.image_size, model.config.image_size))


def test_export_from_saved_directory(tmp_path):
    spec = REGISTRY["lenet5"]
    model = build_model("lenet5", "image-classification", seed=3)
    model.save_pretrained(tmp_path / "checkpoint")
    spec.make_image_processor(model.config).save_pretrained(tmp_path / "checkpoint")

    result = export_onnx(str(tmp_path / "checkpoint"), tmp_path / "onnx")  # task inferred from `architectures`

    assert result.validated and result.max_abs_diff["logits"] <= result.atol
    assert (tmp_path / "onnx" / "preprocessor_config.json").read_text() == (
        tmp_path / "checkpoint" / "preprocessor_config.json"
    ).read_text()
    ort_model = ORTModelForImageClassification.from_pretrained(tmp_path / "onnx")
    pixel_values = random_pixels(model, 4)
    with torch.inference_mode():
        expected = model(pixel_values).logits
    torch.testing.assert_close(ort_model(pixel_values).logits, expected, atol=result.atol, rtol=0)


def test_export_into_existing_folder_replaces_the_graph(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("kept")
    (tmp_path / "out" / "model.onnx").write_bytes(b"stale")
    model = build_model("mlp", "image-classification").train()
    export_onnx(model, tmp_path / "out")
    assert model.training, "export must give the model back in the mode it was in"
    assert (tmp_path / "out" / "notes.txt").read_text() == "kept"
    onnx.checker.check_model(str(tmp_path / "out" / "model.onnx"))


def test_failed_validation_raises_and_writes_nothing(tmp_path, monkeypatch):
    def wrong_session(session, feeds):
        return [value + 0.5 for value in session.run(None, feeds)]

    monkeypatch.setattr(export_onnx_module, "run_session", wrong_session)
    with pytest.raises(OnnxValidationError, match=r"'logits' differs .* by up to 0\.5"):
        export_onnx(build_model("mlp", "image-classification"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a staging folder


@pytest.mark.parametrize(("name", "task"), NOT_EXPORTED_CASES)
def test_heads_without_auto_class_are_refused(tmp_path, name, task):
    model = build_model(name, task)
    with pytest.raises(
        ValueError, match=rf"Cannot export the '{task}' task of '{model.config.model_type}'.*Auto class"
    ):
        export_onnx(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_models_and_tasks_are_refused(tmp_path):
    lenet = build_model("lenet5", "image-classification")
    with pytest.raises(ValueError, match="exportable tasks: image-classification"):
        get_export_config(lenet.config, "object-detection")
    with pytest.raises(ValueError, match="`task` is 'tabular-regression' but LeNet5ForImageClassification"):
        export_onnx(lenet, tmp_path / "out", task="tabular-regression")
    base_model = REGISTRY["mlp"].base_model_class(REGISTRY["mlp"].make_config())
    with pytest.raises(ValueError, match="'feature-extraction' task of 'hfdl-mlp'"):
        export_onnx(base_model, tmp_path / "out")
    with pytest.raises(ValueError, match="No hfdl export config for model_type 'bert'"):
        get_export_config(AutoConfig.for_model("bert"), "image-classification")
    with pytest.raises(ValueError, match="must be a PreTrainedModel or a path"):
        export_onnx(42, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        export_onnx(tmp_path / "no-checkpoint", tmp_path / "out")
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
    with pytest.raises(ValueError, match=message):
        export_onnx(build_model("mlp", "image-classification"), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------- hidden states


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_hidden_states_export(exported, name, task):
    model, result, folder = exported(name, task, True)
    pixel_values = random_pixels(model, 5)
    with torch.inference_mode():
        expected = model(pixel_values, output_hidden_states=True)
    num_hidden = len(expected.hidden_states)
    assert result.output_names == ["logits", *(f"hidden_states.{i}" for i in range(num_hidden))]
    assert all(0.0 <= diff <= result.atol for diff in result.max_abs_diff.values())

    ort_model = ORTModelForImageClassification.from_pretrained(folder)
    outputs = ort_model(pixel_values)
    assert len(outputs.hidden_states) == num_hidden
    for got, want in zip(outputs.hidden_states, expected.hidden_states):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=result.atol, rtol=0)
    assert ort_model(pixel_values, output_hidden_states=False).hidden_states is None


def test_lenet5_first_conv_feature_maps(exported):
    """The Gradio Space plots C1's feature maps from the ONNX backend: they are ``hidden_states[0]``."""
    model, _, folder = exported("lenet5", "image-classification", True)
    config = model.config
    side = config.image_size - config.kernel_size + 1
    feature_maps = ORTModelForImageClassification.from_pretrained(folder)(random_pixels(model, 2)).hidden_states[0]
    assert feature_maps.shape == (2, config.conv_channels[0], side, side)


# ---------------------------------------------------------------------------------------------------- ORT model


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_ort_model_behaves_like_pytorch(exported, name, task):
    model, result, folder = exported(name, task)
    ort_model = ORTModelForImageClassification.from_pretrained(folder)
    assert ort_model.main_input_name == model.main_input_name == "pixel_values"
    assert ort_model.config.model_type == model.config.model_type

    for batch_size in (1, 6):
        pixel_values = random_pixels(model, batch_size)
        with torch.inference_mode():
            expected = model(pixel_values)
        outputs = ort_model(pixel_values)
        assert type(outputs) is type(expected) is ImageClassifierOutputWithNoAttention
        assert isinstance(outputs.logits, torch.Tensor) and outputs.logits.dtype == expected.logits.dtype
        assert outputs.logits.shape == expected.logits.shape
        torch.testing.assert_close(outputs.logits, expected.logits, atol=result.atol, rtol=0)
        assert outputs.loss is None and outputs.hidden_states is None
        # numpy in, same answer; tuple out with return_dict=False, like the PyTorch model.
        torch.testing.assert_close(ort_model(pixel_values.numpy()).logits, outputs.logits)
        (logits,) = ort_model.forward(pixel_values, return_dict=False)
        torch.testing.assert_close(logits, outputs.logits)

    with pytest.raises(ValueError, match="exported without hidden states"):
        ort_model(random_pixels(model, 1), output_hidden_states=True)
    with pytest.raises(ValueError, match="computes no loss"):
        ort_model(random_pixels(model, 1), labels=torch.tensor([0]))


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_ort_model_rejects_bad_inputs_like_pytorch(exported, name, task):
    model, _, folder = exported(name, task)
    ort_model = ORTModelForImageClassification.from_pretrained(folder)
    channels, side = model.config.num_channels, model.config.image_size
    expected = rf"\(batch_size, {channels}, {side}, {side}\)"
    bad_inputs = [
        torch.zeros(2, channels + 1, side, side),  # channels
        torch.zeros(2, channels, side + 1, side + 1),  # image side
        torch.zeros(channels, side, side),  # no batch axis
        torch.zeros(2, channels, side, side, dtype=torch.uint8),  # raw pixels
        [[0.0] * side] * side,  # not a tensor
    ]
    for bad in bad_inputs:
        with pytest.raises(ValueError, match=expected):
            model(bad)
        with pytest.raises(ValueError, match=expected):
            ort_model(bad)
        if isinstance(bad, torch.Tensor):
            with pytest.raises(ValueError, match=expected):
                ort_model(bad.numpy())


def test_ort_model_rejects_missing_or_corrupt_graph(exported, tmp_path):
    _, _, folder = exported("lenet5", "image-classification")
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


# ---------------------------------------------------------------------------------------------------- configs


def test_export_configs_cover_the_registry():
    tasks = exportable_tasks()
    assert set(EXPORT_CONFIG_CLASSES) == {spec.model_type for spec in REGISTRY.values()}  # none missing, none stale
    for spec in REGISTRY.values():
        for task in spec.tasks:
            if task.auto_class is not None:
                assert task.task in tasks[spec.model_type], f"{spec.name}/{task.task} has no export config"
            else:
                assert task.task not in tasks[spec.model_type]
                assert (spec.model_type, task.task) in NOT_EXPORTED, f"say why {spec.name}/{task.task} is not exported"


@pytest.mark.parametrize(("name", "task"), EXPORT_CASES)
def test_export_config_contract(name, task):
    model = build_model(name, task)
    export_config = get_export_config(model.config, task, preprocessors=[])
    assert isinstance(export_config.DEFAULT_ONNX_OPSET, int)
    assert export_config.inputs == {"pixel_values": {0: "batch_size"}}
    assert export_config.outputs == {"logits": {0: "batch_size"}}
    assert export_config.values_override["output_hidden_states"] is False
    dummy = export_config.generate_dummy_inputs(framework="pt", batch_size=4)
    assert dummy["pixel_values"].shape == (4, *model.dummy_inputs["pixel_values"].shape[1:])
    with torch.inference_mode():
        assert model(**dummy).logits.shape == (4, model.config.num_labels)

    config_class = EXPORT_CONFIG_CLASSES[model.config.model_type]
    with pytest.raises(ValueError, match="no key/value cache"):
        config_class(model.config, task=task, use_past=True)
    other_type = next(cls for cls in EXPORT_CONFIG_CLASSES.values() if cls is not config_class)
    with pytest.raises(ValueError, match=f"exports '{other_type.MODEL_TYPE}' models"):
        other_type(model.config, task=task)


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
    assert not [name for name in imported if name.split(".")[0] == "hfdl"], imported
    spec = importlib.util.spec_from_file_location("standalone_hfdl_export_configs", CONFIGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.EXPORT_CONFIG_CLASSES) == set(EXPORT_CONFIG_CLASSES)


def test_register_with_optimum_tasks_manager():
    registered = register_with_optimum_tasks_manager()
    if HAS_OPTIMUM_ONNX:
        assert set(registered) == {(m, t) for m, tasks in exportable_tasks().items() for t in tasks}
    else:
        assert registered == []  # nothing reads the registry without optimum-onnx


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
