"""Export an hfdl model to ONNX with torch's dynamo exporter, and prove the graph right before keeping it.

Why not Optimum's ``main_export``: it lives in optimum-onnx, which pins ``transformers<4.58`` (see
``tests/optimum_lane`` for that lane). This exporter uses the same export configs (:mod:`hfdl.export.configs`) with
transformers 5: the config generates the dummy inputs and names the inputs, outputs and dynamic axes; torch's
dynamo exporter (``torch.export`` underneath) writes the graph; onnxruntime then runs it next to PyTorch on a batch
of a *different* size than the export's, which proves the batch axis really is dynamic. Nothing reaches
``output_dir`` until that check passed.

The models' input checks (``check_image_tensor``) need no ``torch._check``: they test ``dim()`` and the
channel/side dimensions, which stay static under ``torch.export``; the symbolic batch dimension is never compared.
The checks run while tracing and leave no trace in the graph, so :class:`~hfdl.export.ORTModelForImageClassification`
repeats them in front of onnxruntime.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn
from transformers import AutoConfig, PreTrainedModel
from transformers.utils import cached_file

from .configs import HfdlImageClassificationExportConfig, get_export_config

ONNX_WEIGHTS_NAME = "model.onnx"
PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"
#: The batch size the graph is traced with and the (different) one it is validated with.
EXPORT_BATCH_SIZE = 2
VALIDATION_BATCH_SIZE = 3
#: The dynamo exporter implements opset 18 and later; older ones go through a converter that may fail silently.
MIN_OPSET = 18


class OnnxValidationError(ValueError):
    """The exported graph disagrees with the PyTorch model (an output's values or shape, or the graph's names)."""


@dataclass(frozen=True)
class OnnxExportResult:
    """What :func:`export_onnx` wrote and how well the graph matched PyTorch on the validation batch.

    ``max_abs_diff`` maps each output name to ``max |onnxruntime - pytorch|`` over the validation batch;
    ``validated`` is ``True`` only when every one of them is within ``atol`` (otherwise export raises instead).
    """

    onnx_path: Path
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

    ``hidden_states.3`` selects ``outputs.hidden_states[3]``: the ``name.index`` scheme optimum uses for a
    flattened tuple, so both exporters produce graphs with the same output names.
    """

    def __init__(self, model: PreTrainedModel, input_names: list[str], output_names: list[str], hidden: bool) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.output_names = output_names
        self.output_hidden_states = hidden

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(
            **dict(zip(self.input_names, inputs)), output_hidden_states=self.output_hidden_states, return_dict=True
        )
        return tuple(select_output(outputs, name) for name in self.output_names)


def select_output(outputs: object, name: str) -> torch.Tensor:
    """Pick ``logits`` or ``hidden_states.<i>`` out of a ``ModelOutput``."""
    field, _, index = name.partition(".")
    value = outputs[field]
    return value[int(index)] if index else value


def export_onnx(
    model: PreTrainedModel | str | Path,
    output_dir: str | Path,
    task: str | None = None,
    opset: int | None = None,
    output_hidden_states: bool = False,
    atol: float | None = None,
) -> OnnxExportResult:
    """Export ``model`` to ``output_dir/model.onnx`` (one file, dynamic batch axis) and validate it in onnxruntime.

    ``output_dir`` also receives the model's ``config.json`` (and ``preprocessor_config.json`` when the source
    has one), so :meth:`ORTModelForImageClassification.from_pretrained` needs nothing else.

    Args:
        model: An hfdl model, or a directory (or cached Hub id) saved with ``save_pretrained``.
        output_dir: Where to write; created if missing, existing files of the same names are replaced.
        task: The head to export; inferred from the model class (``pipeline_tag``) or the saved ``architectures``.
        opset: ONNX opset, at least 18; defaults to the export config's ``DEFAULT_ONNX_OPSET``.
        output_hidden_states: Also export ``hidden_states.0``, ``hidden_states.1``, ... (e.g. LeNet-5's C1 maps).
        atol: Largest allowed absolute difference per output; defaults to the export config's
            ``ATOL_FOR_VALIDATION``.

    Raises:
        ValueError: For a model, task, opset or atol that cannot be exported (the message says what is allowed).
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
    export_config = get_export_config(model.config, task, output_hidden_states=output_hidden_states)
    opset = export_config.DEFAULT_ONNX_OPSET if opset is None else opset
    atol = export_config.ATOL_FOR_VALIDATION if atol is None else atol
    if model.dtype != torch.float32:
        raise ValueError(f"Only float32 models are exported, got {model.dtype}; call `model.float()` first.")

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"`output_dir` {output_dir} exists and is not a directory.")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # A sibling temporary folder: same filesystem, so the final move is a rename, and a failure leaves nothing.
    # (mkdir, not mkdtemp: mkdtemp's 0700 mode would stick to the renamed folder.)
    staging_dir = output_dir.parent / f".{output_dir.name}.{uuid.uuid4().hex[:12]}.partial"
    staging_dir.mkdir()
    was_training = model.training
    try:
        model.eval()
        input_names = list(export_config.inputs)
        output_names = list(export_config.outputs)
        _export_graph(model, export_config, staging_dir / ONNX_WEIGHTS_NAME, opset)
        max_abs_diff = validate_onnx_model(model, export_config, staging_dir / ONNX_WEIGHTS_NAME, atol)
        _write_side_files(model, staging_dir)
        _move_into(staging_dir, output_dir)
    finally:
        model.train(was_training)
        shutil.rmtree(staging_dir, ignore_errors=True)
    return OnnxExportResult(
        onnx_path=output_dir / ONNX_WEIGHTS_NAME,
        input_names=input_names,
        output_names=output_names,
        max_abs_diff=max_abs_diff,
        atol=float(atol),
        validated=True,
        opset=opset,
        export_batch_size=EXPORT_BATCH_SIZE,
        validation_batch_size=VALIDATION_BATCH_SIZE,
    )


def _resolve_model(model: PreTrainedModel | str | Path, task: str | None) -> tuple[PreTrainedModel, str]:
    """Return the model to export and its task, loading it through the registry when given a directory."""
    if isinstance(model, PreTrainedModel):
        # Every hfdl head names its task in `pipeline_tag`; a base model says "feature-extraction", which no export
        # config accepts, so exporting it fails with the list of exportable tasks.
        model_task = getattr(model, "pipeline_tag", None)
        if task is not None and model_task is not None and task != model_task:
            raise ValueError(f"`task` is {task!r} but {type(model).__name__} is a {model_task!r} model.")
        return model, task or model_task
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            f"`model` must be a PreTrainedModel or a path saved with save_pretrained, got {type(model).__name__}."
        )
    from hfdl.registry import get_architecture  # here, not at import: hfdl.export.configs must stay registry-free

    # A Hub id is "name" or "org/name"; anything else is a local folder, and a missing one deserves a plain message
    # rather than the Hub client's "Repo id must be in the form ..." error.
    text = os.fspath(model)
    local = isinstance(model, os.PathLike) or os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1
    if local and not Path(text).expanduser().is_dir():
        raise FileNotFoundError(f"{text} is not a directory; pass a folder written by save_pretrained or a Hub id.")
    config = AutoConfig.from_pretrained(model)
    spec = get_architecture(config.model_type)
    if task is None:
        saved_classes = config.architectures or []
        matches = [t.task for t in spec.tasks if t.model_class.__name__ in saved_classes]
        if not matches:
            raise ValueError(
                f"Cannot infer the task of {model} from its architectures {saved_classes}; pass `task=` one of "
                f"{', '.join(t.task for t in spec.tasks)}."
            )
        task = matches[0]
    # Validates the task (and explains the heads that are not exported) before loading any weights.
    get_export_config(config, task)
    return spec.task(task).model_class.from_pretrained(model), task


def _export_graph(
    model: PreTrainedModel, export_config: HfdlImageClassificationExportConfig, path: Path, opset: int
) -> None:
    """Trace the model on dummy inputs with torch's dynamo exporter and write one self-contained ``.onnx`` file."""
    input_names = list(export_config.inputs)
    output_names = list(export_config.outputs)
    wrapper = _ExportWrapper(model, input_names, output_names, export_config.output_hidden_states).eval()
    dummy_inputs = _generate_inputs(export_config, EXPORT_BATCH_SIZE, seed=0, device=model.device)
    # The wrapper takes `*inputs`, which torch.export sees as one tuple argument, hence the extra nesting.
    dynamic_shapes = (
        tuple(
            {axis: torch.export.Dim(name) for axis, name in export_config.inputs[input_name].items()}
            for input_name in input_names
        ),
    )
    with torch.no_grad():
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
    export_config: HfdlImageClassificationExportConfig,
    onnx_path: str | Path,
    atol: float,
    batch_size: int = VALIDATION_BATCH_SIZE,
) -> dict[str, float]:
    """Run the graph in onnxruntime and the model in PyTorch on the same fresh batch; return each output's max diff.

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
    inputs = _generate_inputs(export_config, batch_size, seed=1, device=model.device)
    with torch.inference_mode():
        reference = model(**inputs, output_hidden_states=export_config.output_hidden_states, return_dict=True)
    onnx_outputs = run_session(session, {name: tensor.cpu().numpy() for name, tensor in inputs.items()})
    max_abs_diff = {}
    for name, onnx_value in zip(graph_outputs, onnx_outputs):
        expected = select_output(reference, name).detach().cpu().numpy()
        if onnx_value.shape != expected.shape:
            raise OnnxValidationError(
                f"Output {name!r} has shape {onnx_value.shape} in onnxruntime but {expected.shape} in PyTorch "
                f"(batch size {batch_size})."
            )
        diff = float(np.max(np.abs(onnx_value.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
        if not diff <= atol:  # also catches NaN
            raise OnnxValidationError(
                f"Output {name!r} differs between onnxruntime and PyTorch by up to {diff:.3g} (atol {atol:g}) on a "
                f"batch of {batch_size}."
            )
        max_abs_diff[name] = diff
    return max_abs_diff


def run_session(session: onnxruntime.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of ``session`` for ``feeds`` (one seam for tests that need to simulate a wrong graph)."""
    return session.run(None, feeds)


def _generate_inputs(
    export_config: HfdlImageClassificationExportConfig, batch_size: int, seed: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """The export config's dummy inputs, seeded (reproducible figures) without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inputs = export_config.generate_dummy_inputs(framework="pt", batch_size=batch_size)
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
