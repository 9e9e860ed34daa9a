"""Export an hfdl model to ONNX with torch's dynamo exporter, and prove the graph right before keeping it.

Why not Optimum's ``main_export``: it lives in optimum-onnx, which pins ``transformers<4.58`` (see
``tests/optimum_lane`` for that lane). This exporter uses the same export configs (:mod:`hfdl.export.configs`) with
transformers 5. The head's :class:`~hfdl.specs.TaskSpec` (found through the registry) names its export config and
gives its inputs with their dynamic axes; the config generates the dummy inputs and names the outputs; torch's
dynamo exporter (``torch.export`` underneath) writes the graph; onnxruntime then runs it next to PyTorch on inputs
of *other* sizes than the export's (another batch size, another sequence length for text, with a mask that mixes
unpadded, right-padded and left-padded rows), which proves the dynamic axes really are dynamic and the padding
mask really reaches the graph. Nothing reaches ``output_dir`` until that check passed.

Text models build their full attention mask whenever they are traced (``hfdl_attention.is_tracing``), so one graph
serves padded and unpadded batches; decoders are exported without key/value cache (``use_cache=False`` from the
export config's ``values_override``), and :class:`~hfdl.export.ORTModelForCausalLM` generates by re-running the
whole sequence. A graph with a cache comes from Optimum's exporter (``TextGenerationWithPastExportConfig``).

The models' input checks (``check_float_tensor``) need no ``torch._check``: they test ``dim()`` and the static
dimensions, which stay static under ``torch.export``; the symbolic batch dimension is never compared. The checks
run while tracing and leave no trace in the graph, so :class:`~hfdl.export.ORTModel` repeats them in front of
onnxruntime.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import cached_file

from .._checkpoint import load_weights, resolve_source
from ..registry import find_task, find_task_for_config
from ..specs import TaskSpec
from .configs import HfdlExportConfig, count_hidden_states, generate_seeded_dummy_inputs, get_export_config

ONNX_WEIGHTS_NAME = "model.onnx"
PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"
#: The input sizes the graph is traced with and the (different) ones it is validated with; sequence lengths only
#: matter to text inputs (image and vector inputs have no free axis besides the batch).
EXPORT_SHAPES = {"batch_size": 2, "sequence_length": 16}
VALIDATION_SHAPES = {"batch_size": 3, "sequence_length": 9}
EXPORT_BATCH_SIZE = EXPORT_SHAPES["batch_size"]
VALIDATION_BATCH_SIZE = VALIDATION_SHAPES["batch_size"]
#: The dynamo exporter implements opset 18 and later; older ones go through a converter that may fail silently.
MIN_OPSET = 18


class OnnxValidationError(ValueError):
    """The exported graph disagrees with the PyTorch model (an output's values or shape, or the graph's names)."""


@dataclass(frozen=True)
class OnnxExportResult:
    """What :func:`export_onnx` wrote and how well the graph matched PyTorch on the validation inputs.

    ``max_abs_diff`` maps each output name to ``max |onnxruntime - pytorch|`` over the validation inputs;
    ``validated`` is ``True`` only when every one of them is within ``atol`` (otherwise export raises instead).
    """

    onnx_path: Path
    task: str
    input_names: list[str]
    output_names: list[str]
    max_abs_diff: dict[str, float]
    atol: float
    validated: bool
    opset: int
    export_batch_size: int
    validation_batch_size: int


class _ExportWrapper(nn.Module):
    """Calls the model by input name and returns a flat tuple in the export config's output order.

    ``overrides`` are the export config's ``values_override`` passed as call arguments (``output_hidden_states``,
    and ``use_cache=False`` for a decoder without cache, so no key/value cache is built while tracing).

    ``hidden_states.3`` selects ``outputs.hidden_states[3]``: the ``name.index`` scheme optimum uses for a
    flattened tuple, so both exporters produce graphs with the same output names.
    """

    def __init__(
        self, model: PreTrainedModel, input_names: list[str], output_names: list[str], overrides: dict[str, object]
    ) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.output_names = output_names
        self.overrides = overrides

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(**dict(zip(self.input_names, inputs)), **self.overrides, return_dict=True)
        return tuple(select_output(outputs, name) for name in self.output_names)


def select_output(outputs: object, name: str) -> torch.Tensor:
    """Pick ``logits``, ``last_hidden_state`` or ``hidden_states.<i>`` out of a ``ModelOutput``."""
    field, _, index = name.partition(".")
    value = outputs[field]
    return value[int(index)] if index else value


def export_onnx(
    model: PreTrainedModel | str | Path,
    output_dir: str | Path,
    task: str | TaskSpec | None = None,
    opset: int | None = None,
    output_hidden_states: bool = False,
    atol: float | None = None,
) -> OnnxExportResult:
    """Export ``model`` to ``output_dir/model.onnx`` (one file, dynamic axes) and validate it in onnxruntime.

    ``output_dir`` also receives the model's ``config.json`` (and ``preprocessor_config.json`` when the source
    has one), so :meth:`ORTModel.from_pretrained <hfdl.export.ORTModel.from_pretrained>` needs nothing else.

    Args:
        model: An hfdl model (any registered head, base models included), or a folder (or cached Hub id) saved with
            ``save_pretrained``.
        output_dir: Where to write; created if missing, existing files of the same names are replaced.
        task: The head to export (``image-classification``, ``image-feature-extraction``, ...); by default the
            model's own (its class, or a folder's saved ``architectures``, looked up in the registry). A
            :class:`~hfdl.specs.TaskSpec` exports a model the registry does not know yet.
        opset: ONNX opset, at least 18; defaults to the export config's ``DEFAULT_ONNX_OPSET``.
        output_hidden_states: Also export ``hidden_states.0``, ``hidden_states.1``, ... (e.g. LeNet-5's C1 maps).
        atol: Largest allowed absolute difference per output; defaults to the export config's
            ``ATOL_FOR_VALIDATION``.

    Raises:
        FileNotFoundError: If a folder is missing or has no config.json.
        OSError: transformers' own, e.g. for a folder without weights.
        ValueError: For a model, task, opset or atol that cannot be exported (the message says what is allowed);
            a head that is not exported is refused with the reason its task spec gives; a truncated or corrupt
            ``model.safetensors`` (see :mod:`hfdl._checkpoint`).
        OnnxValidationError: If onnxruntime's outputs differ from PyTorch's; nothing is written to ``output_dir``.
    """
    max_opset = onnx.defs.onnx_opset_version()
    if opset is not None and (
        isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= max_opset
    ):
        raise ValueError(f"`opset` must be an integer in [{MIN_OPSET}, {max_opset}], got {opset!r}.")
    if atol is not None and (
        isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol > 0 or not math.isfinite(atol)
    ):
        raise ValueError(f"`atol` must be a positive finite number, got {atol!r}.")
    model, task = _resolve_model(model, task)
    if model.dtype != torch.float32:
        raise ValueError(f"Only float32 models are exported, got {model.dtype}; call `model.float()` first.")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"`output_dir` {output_dir} exists and is not a directory.")

    was_training = model.training
    model.eval()
    try:
        export_config = export_config_for(model, task, output_hidden_states=output_hidden_states)
        opset = export_config.DEFAULT_ONNX_OPSET if opset is None else opset
        atol = export_config.ATOL_FOR_VALIDATION if atol is None else atol
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        # A sibling temporary folder: same filesystem, so the final move is a rename, and a failure leaves nothing.
        # (mkdir, not mkdtemp: mkdtemp's 0700 mode would stick to the renamed folder.)
        staging_dir = output_dir.parent / f".{output_dir.name}.{uuid.uuid4().hex[:12]}.partial"
        staging_dir.mkdir()
        try:
            _export_graph(model, export_config, staging_dir / ONNX_WEIGHTS_NAME, opset)
            max_abs_diff = validate_onnx_model(model, export_config, staging_dir / ONNX_WEIGHTS_NAME, atol)
            _write_side_files(model, staging_dir)
            _move_into(staging_dir, output_dir)
        finally:
            shutil.rmtree(staging_dir, ignore_errors=True)
    finally:
        model.train(was_training)
    return OnnxExportResult(
        onnx_path=output_dir / ONNX_WEIGHTS_NAME,
        task=task.task,
        input_names=list(export_config.inputs),
        output_names=list(export_config.outputs),
        max_abs_diff=max_abs_diff,
        atol=float(atol),
        validated=True,
        opset=opset,
        export_batch_size=EXPORT_BATCH_SIZE,
        validation_batch_size=VALIDATION_BATCH_SIZE,
    )


def export_config_for(
    model: PreTrainedModel, task: TaskSpec | None = None, output_hidden_states: bool = False
) -> HfdlExportConfig:
    """The export config of ``model``'s head: the class its task spec names, fed the spec's inputs.

    With ``output_hidden_states``, the number of hidden states is read off the model by one forward pass on seeded
    dummy inputs (the global RNGs are left as they were).

    Raises:
        ValueError: If the head is not exported (with the task spec's reason), or its spec and export config
            disagree on the main output.
    """
    task = _find_task(model) if task is None else task
    _check_exported(task)
    inputs = {spec.name: dict(spec.dynamic_axes) for spec in task.inputs}
    export_config = get_export_config(model.config, task.export_config, task=task.task, inputs=inputs)
    if export_config.MAIN_OUTPUT != task.main_output:
        raise ValueError(
            f"The task spec of {type(model).__name__} says its main output is {task.main_output!r}, but its export "
            f"config {task.export_config} exports {export_config.MAIN_OUTPUT!r}; name the matching export config."
        )
    if output_hidden_states:
        export_config.enable_hidden_states(count_hidden_states(model, export_config))
    return export_config


def _check_exported(task: TaskSpec) -> None:
    """Refuse a head whose task spec names no export config, giving the spec's reason."""
    if task.export_config is None:
        reason = task.not_exported or "its task spec names no export config"
        raise ValueError(f"Cannot export the {task.task!r} head {task.model_class.__name__}: {reason}.")


def _find_task(model: PreTrainedModel) -> TaskSpec:
    """The registered task spec of a model instance, with an error that says how to export an unregistered one."""
    try:
        return find_task(model)[1]
    except ValueError as error:
        raise ValueError(
            f"{error} To export it anyway, pass `task=` a TaskSpec that describes its inputs and export config."
        ) from None


def _resolve_model(
    model: PreTrainedModel | str | Path, task: str | TaskSpec | None
) -> tuple[PreTrainedModel, TaskSpec]:
    """Return the model to export and its task spec, loading a folder or Hub id through the registry."""
    if isinstance(model, PreTrainedModel):
        if isinstance(task, TaskSpec):
            if not isinstance(model, task.model_class):
                raise ValueError(
                    f"`task` describes {task.model_class.__name__} ({task.task!r}), got a {type(model).__name__}."
                )
            return model, task
        model_task = _find_task(model)
        if task is not None and task != model_task.task:
            raise ValueError(f"`task` is {task!r} but {type(model).__name__} is a {model_task.task!r} model.")
        return model, model_task
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"`model` must be a PreTrainedModel or a path saved with save_pretrained, got {type(model).__name__}."
        )
    source = resolve_source(model, "a folder written by save_pretrained or a Hub id")
    if isinstance(source, Path) and not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} has no config.json; pass a folder written by save_pretrained.")
    if not isinstance(task, TaskSpec):
        config_dict, _ = PretrainedConfig.get_config_dict(source)
        task = find_task_for_config(config_dict, task, source=source)[1]
    _check_exported(task)  # before reading any weights
    return load_weights(task.model_class, source), task


def _export_graph(model: PreTrainedModel, export_config: HfdlExportConfig, path: Path, opset: int) -> None:
    """Trace the model on dummy inputs with torch's dynamo exporter and write one self-contained ``.onnx`` file."""
    input_names = list(export_config.inputs)
    output_names = list(export_config.outputs)
    wrapper = _ExportWrapper(model, input_names, output_names, _call_overrides(export_config)).eval()
    dummy_inputs = _generate_inputs(export_config, EXPORT_SHAPES, seed=0, device=model.device)
    # One Dim per axis name, shared by the inputs that carry it (input_ids and attention_mask have one sequence
    # length). The wrapper takes `*inputs`, which torch.export sees as one tuple argument, hence the extra nesting.
    dims = {name: torch.export.Dim(name) for axes in export_config.inputs.values() for name in axes.values()}
    dynamic_shapes = (
        tuple(
            {axis: dims[name] for axis, name in export_config.inputs[input_name].items()} for input_name in input_names
        ),
    )
    with torch.no_grad(), warnings.catch_warnings():
        # Inputs that share an axis name share one Dim, which the exporter reports as a rename it skips.
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
        torch.onnx.export(
            wrapper,
            tuple(dummy_inputs[name] for name in input_names),
            path,
            dynamo=True,
            external_data=False,  # weights inside model.onnx: one file to ship (fine below protobuf's 2 GB)
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def validate_onnx_model(
    model: PreTrainedModel,
    export_config: HfdlExportConfig,
    onnx_path: str | Path,
    atol: float,
    shapes: dict[str, int] | None = None,
) -> dict[str, float]:
    """Run the graph in onnxruntime and the model in PyTorch on the same fresh inputs; return each output's max diff.

    ``shapes`` (default :data:`VALIDATION_SHAPES`) sets the batch size and sequence length of those inputs.

    Raises:
        OnnxValidationError: If the graph's names differ from the export config's, or an output's shape differs,
            or its max absolute difference exceeds ``atol`` (the message names the output and the difference).
    """
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph_inputs = [node.name for node in session.get_inputs()]
    graph_outputs = [node.name for node in session.get_outputs()]
    if graph_inputs != list(export_config.inputs) or graph_outputs != list(export_config.outputs):
        raise OnnxValidationError(
            f"The graph has inputs {graph_inputs} and outputs {graph_outputs}; the export config expects "
            f"{list(export_config.inputs)} and {list(export_config.outputs)}."
        )
    inputs = _generate_inputs(export_config, shapes or VALIDATION_SHAPES, seed=1, device=model.device)
    if "attention_mask" in inputs:
        inputs["attention_mask"] = mixed_padding_mask(inputs["attention_mask"])
    described = ", ".join(f"{name} of shape {tuple(value.shape)}" for name, value in inputs.items())
    if "attention_mask" in inputs:
        described += " (rows unpadded, right- and left-padded)"
    with torch.inference_mode():
        reference = model(**inputs, **_call_overrides(export_config), return_dict=True)
    onnx_outputs = run_session(session, {name: tensor.cpu().numpy() for name, tensor in inputs.items()})
    max_abs_diff = {}
    for name, onnx_value in zip(graph_outputs, onnx_outputs):
        expected = select_output(reference, name).detach().cpu().numpy()
        if onnx_value.shape != expected.shape:
            raise OnnxValidationError(
                f"Output {name!r} has shape {onnx_value.shape} in onnxruntime but {expected.shape} in PyTorch "
                f"(inputs: {described})."
            )
        diff = float(np.max(np.abs(onnx_value.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
        if not diff <= atol:  # also catches NaN
            raise OnnxValidationError(
                f"Output {name!r} differs between onnxruntime and PyTorch by up to {diff:.3g} (atol {atol:g}) on "
                f"{described}."
            )
        max_abs_diff[name] = diff
    return max_abs_diff


def mixed_padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A validation mask whose rows cycle through no padding, right padding and left padding.

    optimum's generator pads every row alike; a graph must also handle a batch that mixes padded and unpadded rows,
    and left padding (a batch being generated), where some queries see no real key at all.
    """
    batch_size, length = attention_mask.shape
    mask = torch.ones_like(attention_mask)
    for row in range(batch_size):
        padding = 1 + (row * 3) % max(length - 1, 1)  # 1 .. length - 1 padded positions, varying by row
        if row % 3 == 1:
            mask[row, length - padding :] = 0
        elif row % 3 == 2:
            mask[row, :padding] = 0
    return mask


def _call_overrides(export_config: HfdlExportConfig) -> dict[str, object]:
    """The config values the export forces (``values_override``), as arguments of the model's call."""
    return dict(export_config.values_override or {})


def run_session(session: onnxruntime.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of ``session`` for ``feeds`` (one seam for tests that need to simulate a wrong graph)."""
    return session.run(None, feeds)


def _generate_inputs(
    export_config: HfdlExportConfig, shapes: dict[str, int], seed: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """The export config's dummy inputs, seeded (reproducible figures) without touching the global RNGs."""
    inputs = generate_seeded_dummy_inputs(export_config, seed, **shapes)
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def _write_side_files(model: PreTrainedModel, directory: Path) -> None:
    """Write config.json (with ``architectures``, as ``save_pretrained`` would) and copy the image processor config."""
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]
    config.save_pretrained(directory)
    source = getattr(model, "name_or_path", "") or ""
    if source:
        preprocessor_file = cached_file(
            source,
            PREPROCESSOR_CONFIG_NAME,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if preprocessor_file is not None:
            shutil.copyfile(preprocessor_file, directory / PREPROCESSOR_CONFIG_NAME)


def _move_into(staging_dir: Path, output_dir: Path) -> None:
    """Move the staged files into ``output_dir``, renaming the whole folder when ``output_dir`` does not exist yet."""
    if not output_dir.exists():
        os.replace(staging_dir, output_dir)
        return
    for item in staging_dir.iterdir():
        target = output_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
