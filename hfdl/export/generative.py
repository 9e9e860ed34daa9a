"""Export the parts of hfdl's generative models to ONNX, one validated graph each, and run them in onnxruntime.

A generative model is not one function from inputs to a prediction, so the single-graph exporter
(:func:`~hfdl.export.export_onnx`) refuses it. What a deployment needs are its *parts*, one graph each:

* autoencoder (``hfdl-autoencoder``): ``encoder.onnx`` (``pixel_values`` in [0, 1] -> ``latents``) and
  ``decoder.onnx`` (``latents`` -> ``images`` in [0, 1]);
* VAE (``hfdl-vae``): ``encoder.onnx`` (``pixel_values`` -> ``latent_mean``, ``latent_logvar``, the Gaussian
  posterior) and ``decoder.onnx`` (``latents`` -> ``images``, the decoder's mean in [0, 1]);
* GAN (``hfdl-gan``): ``generator.onnx`` (``latents`` [+ ``class_labels``] -> ``images`` in [0, 1]) and, on
  request, ``discriminator.onnx`` (``pixel_values`` in [-1, 1] [+ ``class_labels``] -> ``logits``).

The GAN's generator graph returns what ``GANModel.sample`` returns for the same latents (images in [0, 1]), not
the generator's raw tanh output in [-1, 1]: the graph is the deployable "latent -> picture" function, and the
discriminator graph takes the generator's own range, as the PyTorch discriminator does.

Randomness stays outside the graphs. A graph is a pure function; the seeded draw of the latents is a handful of
``torch.randn`` calls that :class:`OrtGenerativePipeline` makes exactly as the PyTorch model's ``sample_latents``
(or the VAE's ``sample``) does, so the same ``torch.Generator`` seed gives the same latents and, through the
graph, the same images. Reproducing torch's Philox/MT stream in numpy would be fragile; this is the one place the
pipeline uses torch.

Every graph is traced at batch size 2 with a dynamic batch axis and validated in onnxruntime against PyTorch at
batch size 3 on seeded inputs, like :func:`~hfdl.export.export_onnx`; the graphs are written to a staging folder
beside ``output_dir`` and moved in only after *every* part passed, so a failure leaves ``output_dir`` as it was.
The folder also receives ``config.json`` and the image processor config, so it describes itself:
:meth:`OrtGenerativePipeline.from_pretrained` needs nothing else.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from .._checkpoint import load_weights, resolve_source
from ..pipelines.outputs import check_output_type, to_output
from ..registry import find_task, find_task_for_config
from ..specs import ArchitectureSpec
from .onnx import (
    EXPORT_BATCH_SIZE,
    MIN_OPSET,
    PREPROCESSOR_CONFIG_NAME,
    VALIDATION_BATCH_SIZE,
    OnnxExportResult,
    OnnxValidationError,
    _move_into,
    _write_side_files,
    run_session,
)

#: The opset the parts are exported with by default (the dynamo exporter's first).
DEFAULT_OPSET = 18
#: Default validation tolerance: the image export configs' ``ATOL_FOR_VALIDATION``. The parts of the course's
#: models agree with PyTorch to about 1e-6 (images in [0, 1], latents of order 1).
DEFAULT_ATOL = 1e-4
#: What an input of a part holds, which decides how validation draws it: images in [0, 1] (autoencoder inputs),
#: images in [-1, 1] (the GAN discriminator's range), standard normal latents, class indices.
InputKind = Literal["unit_image", "signed_image", "latent", "class_index"]
OutputType = Literal["pil", "np", "pt"]


# ----------------------------------------------------------------------------------------------- the parts
class _PartGraph(nn.Module):
    """One part of a model as a module of positional tensors (what ``torch.onnx.export`` traces).

    ``function(model, *inputs)`` returns one tensor or a tuple; the graph always returns a tuple, in the part's
    output order. Holding ``model`` as a submodule keeps its weights the graph's parameters.
    """

    def __init__(self, model: PreTrainedModel, function: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self.function = function

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.function(self.model, *inputs)
        return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def gan_images_from_latents(
    model: PreTrainedModel, latents: torch.Tensor, class_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """``clamp((generator(latents, class_labels) + 1) / 2, 0, 1)``: a GAN's images in [0, 1], computed as its
    ``sample`` computes them (the clamp only catches float rounding past tanh's range)."""
    return ((model.generator(latents, class_labels) + 1.0) / 2.0).clamp(0.0, 1.0)


@dataclass(frozen=True)
class GraphPart:
    """One exported part: its file, its inputs (name and kind) and outputs, and the model function it traces.

    ``conditional_inputs`` are added after ``inputs`` when the model is class-conditional (``num_classes > 0``).
    """

    name: str
    inputs: tuple[tuple[str, InputKind], ...]
    outputs: tuple[str, ...]
    function: Callable[..., Any]
    conditional_inputs: tuple[tuple[str, InputKind], ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"

    def input_kinds(self, config: PretrainedConfig) -> dict[str, InputKind]:
        """Input name -> kind, in the graph's order, for a model built from ``config``."""
        conditional = (getattr(config, "num_classes", 0) or 0) > 0
        return dict(self.inputs + (self.conditional_inputs if conditional else ()))


_CLASS_LABELS = (("class_labels", "class_index"),)
_ENCODER = GraphPart("encoder", (("pixel_values", "unit_image"),), ("latents",), lambda m, x: m.encode(x))
_VAE_ENCODER = GraphPart(
    "encoder", (("pixel_values", "unit_image"),), ("latent_mean", "latent_logvar"), lambda m, x: m.encode(x)
)
_DECODER = GraphPart("decoder", (("latents", "latent"),), ("images",), lambda m, z: m.decode(z))
_GENERATOR = GraphPart("generator", (("latents", "latent"),), ("images",), gan_images_from_latents, _CLASS_LABELS)
_DISCRIMINATOR = GraphPart(
    "discriminator",
    (("pixel_values", "signed_image"),),
    ("logits",),
    lambda m, x, labels=None: m.discriminator(x, labels),
    _CLASS_LABELS,
)

#: model_type -> (the parts always exported, the optional discriminator or ``None``).
GENERATIVE_PARTS: dict[str, tuple[tuple[GraphPart, ...], GraphPart | None]] = {
    "hfdl-autoencoder": ((_ENCODER, _DECODER), None),
    "hfdl-vae": ((_VAE_ENCODER, _DECODER), None),
    "hfdl-gan": ((_GENERATOR,), _DISCRIMINATOR),
}
#: Every file name a part can have: an export removes those it did not write, so a folder never mixes models.
PART_FILE_NAMES = tuple(
    sorted({part.file_name for parts, extra in GENERATIVE_PARTS.values() for part in (*parts, extra) if part})
)


def _model_type_parts(model_type: str, where: str) -> tuple[tuple[GraphPart, ...], GraphPart | None]:
    if model_type not in GENERATIVE_PARTS:
        raise ValueError(
            f"{where} is a {model_type!r} model; export_generative exports the generative models "
            f"({', '.join(GENERATIVE_PARTS)}). Export other hfdl models with hfdl.export.export_onnx."
        )
    return GENERATIVE_PARTS[model_type]


# ----------------------------------------------------------------------------------------------- export
@dataclass(frozen=True)
class GenerativeExportResult:
    """What :func:`export_generative` wrote: one :class:`~hfdl.export.OnnxExportResult` per part.

    ``parts`` maps the part name (``encoder``, ``decoder``, ``generator``, ``discriminator``) to its result, whose
    ``onnx_path`` is the part's file, ``task`` the model's task and ``max_abs_diff`` each output's
    ``max |onnxruntime - pytorch|`` at the validation batch size.
    """

    output_dir: Path
    model_type: str
    parts: dict[str, OnnxExportResult]

    @property
    def max_abs_diff(self) -> dict[str, float]:
        """``{"decoder.images": 3e-8, ...}``: every part's outputs in one mapping."""
        return {
            f"{name}.{output}": diff for name, part in self.parts.items() for output, diff in part.max_abs_diff.items()
        }

    @property
    def validated(self) -> bool:
        return all(part.validated for part in self.parts.values())


def export_generative(
    model: PreTrainedModel | str | Path,
    output_dir: str | Path,
    opset: int | None = None,
    atol: float | None = None,
    include_discriminator: bool = False,
) -> GenerativeExportResult:
    """Export an autoencoder's, VAE's or GAN's parts to ``output_dir``, one validated ONNX graph per part.

    Writes ``encoder.onnx`` + ``decoder.onnx`` (autoencoder, VAE) or ``generator.onnx`` (GAN; plus
    ``discriminator.onnx`` with ``include_discriminator``), each with a dynamic batch axis, and ``config.json`` and
    ``preprocessor_config.json`` (autoencoders and VAEs: the image processor of the source folder, or the registry's
    for the config). Load the folder with :meth:`OrtGenerativePipeline.from_pretrained`.

    Args:
        model: An hfdl ``AutoencoderModel``, ``VAEModel`` or ``GANModel``, or a folder (or cached Hub id) saved
            with ``save_pretrained``.
        output_dir: Where to write; created if missing. Files of the same names are replaced, and part files this
            export does not write (a discriminator from an earlier export) are removed, so the folder never mixes
            two models.
        opset: ONNX opset, at least 18 (the dynamo exporter's first); default 18.
        atol: Largest allowed absolute difference between onnxruntime and PyTorch, per output; default 1e-4.
        include_discriminator: Also export a GAN's discriminator (``pixel_values`` in [-1, 1] -> ``logits``).

    Raises:
        FileNotFoundError: If a folder is missing or has no config.json.
        ValueError: For a model that is not generative, a non-float32 model, a bad ``opset``/``atol``, or
            ``include_discriminator`` for a model without one.
        OnnxValidationError: If a graph disagrees with PyTorch; nothing is written to ``output_dir`` then.
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
    if not isinstance(include_discriminator, bool):
        raise ValueError(f"`include_discriminator` must be True or False, got {include_discriminator!r}.")
    opset = DEFAULT_OPSET if opset is None else opset
    atol = DEFAULT_ATOL if atol is None else float(atol)
    model, spec, task = _resolve_model(model, include_discriminator)
    parts, discriminator = GENERATIVE_PARTS[model.config.model_type]
    if include_discriminator:
        parts = (*parts, discriminator)
    if model.dtype != torch.float32:
        raise ValueError(f"Only float32 models are exported, got {model.dtype}; call `model.float()` first.")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"`output_dir` {output_dir} exists and is not a directory.")

    was_training = model.training
    model.eval()  # batch norm on running statistics, no dropout, no denoising corruption
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        # As export_onnx does: a sibling staging folder (same filesystem, so the final move is a rename), removed
        # whatever happens; output_dir sees the files only once every part has passed its validation.
        staging_dir = output_dir.parent / f".{output_dir.name}.{uuid.uuid4().hex[:12]}.partial"
        staging_dir.mkdir()
        try:
            diffs = {}
            for part in parts:
                _export_part(model, part, staging_dir / part.file_name, opset)
                diffs[part.name] = validate_part(model, part, staging_dir / part.file_name, atol)
            _write_side_files(model, staging_dir)
            _write_image_processor(model, spec, staging_dir)
            _move_into(staging_dir, output_dir)
            for stale in set(PART_FILE_NAMES) - {part.file_name for part in parts}:
                (output_dir / stale).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging_dir, ignore_errors=True)
    finally:
        model.train(was_training)
    results = {
        part.name: OnnxExportResult(
            onnx_path=output_dir / part.file_name,
            task=task,
            input_names=list(part.input_kinds(model.config)),
            output_names=list(part.outputs),
            max_abs_diff=diffs[part.name],
            atol=atol,
            validated=True,
            opset=opset,
            export_batch_size=EXPORT_BATCH_SIZE,
            validation_batch_size=VALIDATION_BATCH_SIZE,
        )
        for part in parts
    }
    return GenerativeExportResult(output_dir=output_dir, model_type=model.config.model_type, parts=results)


def _resolve_model(
    model: PreTrainedModel | str | Path, include_discriminator: bool
) -> tuple[PreTrainedModel, ArchitectureSpec, str]:
    """The model to export, its architecture spec and task, loading a folder or Hub id through the registry.

    The model type is checked before any weights are read, so a folder of another model fails fast.
    """
    if isinstance(model, PreTrainedModel):
        model_type, where, config_dict, source = model.config.model_type, f"A {type(model).__name__}", None, None
    elif isinstance(model, (str, os.PathLike)):
        source = resolve_source(model, "a folder written by save_pretrained or a Hub id")
        if isinstance(source, Path) and not (source / "config.json").is_file():
            raise FileNotFoundError(f"{source} has no config.json; pass a folder written by save_pretrained.")
        config_dict, _ = PretrainedConfig.get_config_dict(source)
        model_type, where = config_dict.get("model_type"), str(source)
    else:
        raise ValueError(
            f"`model` must be a PreTrainedModel or a path saved with save_pretrained, got {type(model).__name__}."
        )
    _, discriminator = _model_type_parts(model_type, where)
    if include_discriminator and discriminator is None:
        raise ValueError(
            f"`include_discriminator=True` but {where} is a {model_type!r} model, which has no discriminator; "
            "only GANs (hfdl-gan) do."
        )
    if config_dict is None:
        spec, task = find_task(model)
        return model, spec, task.task
    spec, task = find_task_for_config(config_dict, source=source)
    return load_weights(task.model_class, source), spec, task.task


def _make_inputs(config: PretrainedConfig, part: GraphPart, batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Seeded inputs of ``part`` in the ranges the part sees in use (without touching the global RNGs)."""
    generator = torch.Generator().manual_seed(seed)
    image_shape = (batch_size, config.num_channels, config.image_size, config.image_size)
    inputs = {}
    for name, kind in part.input_kinds(config).items():
        if kind == "unit_image":
            inputs[name] = torch.rand(image_shape, generator=generator)
        elif kind == "signed_image":
            inputs[name] = torch.rand(image_shape, generator=generator) * 2 - 1
        elif kind == "latent":
            inputs[name] = torch.randn((batch_size, config.latent_dim), generator=generator)
        else:
            inputs[name] = torch.randint(0, config.num_classes, (batch_size,), generator=generator)
    return inputs


def _export_part(model: PreTrainedModel, part: GraphPart, path: Path, opset: int) -> None:
    """Trace one part at batch size 2 (batch axis dynamic) into one self-contained ``.onnx`` file."""
    inputs = _make_inputs(model.config, part, EXPORT_BATCH_SIZE, seed=0)
    inputs = {name: value.to(model.device) for name, value in inputs.items()}
    graph = _PartGraph(model, part.function).eval()
    batch = torch.export.Dim("batch_size")
    # The graph takes `*inputs`, which torch.export sees as one tuple argument, hence the extra nesting.
    dynamic_shapes = (tuple({0: batch} for _ in inputs),)
    with torch.no_grad(), warnings.catch_warnings():
        # latents and class_labels share one batch Dim, which the exporter reports as a rename it skips.
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
        torch.onnx.export(
            graph,
            tuple(inputs.values()),
            path,
            dynamo=True,
            external_data=False,
            input_names=list(inputs),
            output_names=list(part.outputs),
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def validate_part(model: PreTrainedModel, part: GraphPart, onnx_path: str | Path, atol: float) -> dict[str, float]:
    """Run one part's graph in onnxruntime and the model in PyTorch on fresh seeded inputs at batch size 3.

    Returns each output's max absolute difference.

    Raises:
        OnnxValidationError: If the graph's input or output names are not the part's, an output's shape differs
            from PyTorch's, or its max absolute difference exceeds ``atol`` (or is NaN).
    """
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_names = [node.name for node in session.get_inputs()]
    output_names = [node.name for node in session.get_outputs()]
    expected_inputs = list(part.input_kinds(model.config))
    if input_names != expected_inputs or output_names != list(part.outputs):
        raise OnnxValidationError(
            f"{Path(onnx_path).name} has inputs {input_names} and outputs {output_names}; the {part.name} of a "
            f"{model.config.model_type} model takes {expected_inputs} and returns {list(part.outputs)}."
        )
    inputs = _make_inputs(model.config, part, VALIDATION_BATCH_SIZE, seed=1)
    described = ", ".join(f"{name} of shape {tuple(value.shape)}" for name, value in inputs.items())
    with torch.inference_mode():
        reference = _PartGraph(model, part.function)(*(value.to(model.device) for value in inputs.values()))
    onnx_outputs = run_session(session, {name: value.numpy() for name, value in inputs.items()})
    diffs = {}
    for name, expected, actual in zip(part.outputs, reference, onnx_outputs):
        expected = expected.detach().cpu().numpy()
        if actual.shape != expected.shape:
            raise OnnxValidationError(
                f"{part.name} output {name!r} has shape {actual.shape} in onnxruntime but {expected.shape} in "
                f"PyTorch (inputs: {described})."
            )
        diff = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
        if not diff <= atol:  # also catches NaN
            raise OnnxValidationError(
                f"{part.name} output {name!r} differs between onnxruntime and PyTorch by up to {diff:.3g} "
                f"(atol {atol:g}) on {described}."
            )
        diffs[name] = diff
    return diffs


def _write_image_processor(model: PreTrainedModel, spec: ArchitectureSpec, directory: Path) -> None:
    """Write the registry's image processor for the config when the source folder had none to copy.

    An autoencoder's input is an image: without ``preprocessor_config.json`` a consumer of the folder would have to
    guess the size, channels and scaling of ``pixel_values``. A GAN takes no image (except through its optional
    discriminator) and its architecture may declare no processor; then nothing is written.
    """
    if (directory / PREPROCESSOR_CONFIG_NAME).is_file():
        return
    processor = spec.make_image_processor(model.config)
    if processor is not None:
        processor.save_pretrained(directory)


# ----------------------------------------------------------------------------------------------- onnxruntime
@dataclass
class ImagePipelineOutput:
    """diffusers' ``ImagePipelineOutput`` without diffusers (the export extra does not need it): ``images`` is a list
    of PIL images, an (N, H, W, C) float array in [0, 1] or an (N, C, H, W) tensor, by ``output_type``."""

    images: Any


class OrtGenerativePipeline:
    """The parts :func:`export_generative` wrote, run in onnxruntime behind the PyTorch model's methods.

    * GAN: ``pipe(num_images, generator=seed, class_labels=...)`` draws the latents as ``GANModel.sample_latents``
      does and returns the images ``GANModel.sample`` returns for the same seed; :meth:`generate` maps given
      latents; :meth:`discriminate` runs the discriminator when it was exported.
    * VAE: ``pipe(num_images, generator=seed)`` samples the prior as ``VAEModel.sample`` does; :meth:`encode`
      gives ``(mean, logvar)``, :meth:`decode` images, :meth:`reconstruct` decodes the posterior mean.
    * Autoencoder: :meth:`encode` gives latents, :meth:`decode` images, :meth:`reconstruct` both; it has no prior,
      so calling the pipeline is refused.

    Attributes: ``config`` (the model's config), ``model_type``, ``sessions`` (part name -> ``InferenceSession``),
    ``image_processor`` (for PIL inputs; ``None`` when the folder has none), ``model_dir``.
    """

    def __init__(
        self,
        sessions: dict[str, onnxruntime.InferenceSession],
        config: PretrainedConfig,
        model_dir: Path,
        image_processor: Any = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.model_type = config.model_type
        self.model_dir = Path(model_dir)
        self.image_processor = image_processor
        required, optional = _model_type_parts(self.model_type, str(model_dir))
        for part in (*required, *([optional] if optional and optional.name in sessions else [])):
            session = sessions.get(part.name)
            if session is None:
                raise FileNotFoundError(
                    f"{self.model_dir} has no {part.file_name}; a {self.model_type} export has "
                    f"{', '.join(p.file_name for p in required)} (write them with hfdl.export.export_generative)."
                )
            names = ([n.name for n in session.get_inputs()], [n.name for n in session.get_outputs()])
            expected = (list(part.input_kinds(config)), list(part.outputs))
            if names != expected:
                raise ValueError(
                    f"{self.model_dir / part.file_name} takes {names[0]} and returns {names[1]}; the {part.name} of "
                    f"this {self.model_type} model takes {expected[0]} and returns {expected[1]}. Export the folder "
                    "again with hfdl.export.export_generative."
                )

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
    ) -> OrtGenerativePipeline:
        """Load an :func:`export_generative` folder: its ``config.json``, part graphs and image processor.

        Args:
            model_dir: The export folder.
            providers: onnxruntime execution providers in order of preference; default ``["CPUExecutionProvider"]``.
            session_options: Passed to every ``onnxruntime.InferenceSession``.

        Raises:
            FileNotFoundError: If the folder, its config.json or a required part is missing.
            ValueError: If the config is not a generative hfdl model's, a part is not a readable ONNX graph or has
                other inputs/outputs than the model's part, or ``providers`` names none available.
        """
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{model_dir} has no config.json; pass a folder written by hfdl.export.export_generative."
            )
        available = onnxruntime.get_available_providers()
        providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        unknown = [provider for provider in providers if provider not in available]
        if not providers or unknown:
            raise ValueError(f"Unknown or empty `providers` {providers}; available here: {', '.join(available)}.")
        config_dict, _ = PretrainedConfig.get_config_dict(model_dir)
        required, optional = _model_type_parts(config_dict.get("model_type"), str(model_dir))
        spec, _ = find_task_for_config(config_dict, source=model_dir)
        config = spec.config_class.from_dict(config_dict)
        sessions = {}
        for part in (*required, *([optional] if optional else [])):
            path = model_dir / part.file_name
            if not path.is_file():
                continue  # a missing required part is reported by __init__, with the list of parts
            try:
                sessions[part.name] = onnxruntime.InferenceSession(
                    str(path), sess_options=session_options, providers=providers
                )
            except Exception as error:  # onnxruntime raises its own (pybind) classes: InvalidProtobuf, Fail, ...
                raise ValueError(f"{path} is not a valid ONNX model that onnxruntime can load: {error}") from error
        image_processor = None
        if spec.image_processor_class is not None and (model_dir / PREPROCESSOR_CONFIG_NAME).is_file():
            image_processor = spec.image_processor_class.from_pretrained(model_dir)
        return cls(sessions, config, model_dir, image_processor)

    def __repr__(self) -> str:
        providers = next(iter(self.sessions.values())).get_providers()
        return (
            f"{type(self).__name__}({self.model_type}, parts={sorted(self.sessions)}, dir={str(self.model_dir)!r}, "
            f"providers={providers})"
        )

    # ------------------------------------------------------------------------------------------- sampling
    @property
    def is_conditional(self) -> bool:
        return (getattr(self.config, "num_classes", 0) or 0) > 0

    def sample_latents(self, num_samples: int, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Standard normal latents (num_samples, latent_dim), drawn as the PyTorch model draws them.

        ``generator``: a ``torch.Generator`` (draws on its device, returned on the CPU), a seed, or ``None`` for
        torch's global RNG. The PyTorch models draw ``torch.randn(num_samples, latent_dim)`` from the generator
        they are given, so equal seeds give equal latents, bit for bit.
        """
        _check_positive_int("num_samples", num_samples)
        if self.model_type == "hfdl-autoencoder":
            raise ValueError(
                "An autoencoder has no prior over its latents to sample from; encode images with `encode` and map "
                "latents back with `decode` (a VAE or a GAN samples)."
            )
        generator = _as_generator(generator)
        device = generator.device if generator is not None else None
        latents = torch.randn((num_samples, self.config.latent_dim), generator=generator, device=device)
        return latents.cpu()

    def __call__(
        self,
        num_images: int | None = None,
        generator: torch.Generator | int | None = None,
        class_labels: int | Sequence[int] | torch.Tensor | np.ndarray | None = None,
        latents: torch.Tensor | np.ndarray | None = None,
        output_type: OutputType = "pil",
    ) -> ImagePipelineOutput:
        """Generate images: what the PyTorch model's ``sample`` gives for the same generator, run in onnxruntime.

        The call is the one of :mod:`hfdl.pipelines` (``GANPipeline``, ``VAEPipeline``), so a Space can swap them.

        Args:
            num_images: How many images; ``None`` means one per entry of ``class_labels`` (a list or tensor), one
                per row of ``latents``, else 1.
            generator: A ``torch.Generator``, an integer seed, or ``None`` (torch's global RNG). All latents are
                drawn in one call, as ``model.sample(num_images, generator)`` draws them.
            class_labels: A conditional GAN's classes: one int for every image, or one per image; required iff the
                model is conditional, refused otherwise.
            latents: (N, latent_dim) latents to map instead of drawing them (``generator`` is then unused).
            output_type: ``"pil"`` (a list of PIL images, mode ``L`` or ``RGB``), ``"np"`` ((N, H, W, C) floats in
                [0, 1], as diffusers returns them) or ``"pt"`` ((N, C, H, W) tensor, as ``sample`` returns it).

        Raises:
            ValueError: For an autoencoder (no prior to sample), or an argument outside what is allowed above.
        """
        check_output_type(output_type)
        if num_images is not None:
            _check_positive_int("num_images", num_images)
        if latents is not None:
            latents = self._check_latents(latents)
            if num_images is not None and len(latents) != num_images:
                raise ValueError(f"`latents` has {len(latents)} rows but `num_images` is {num_images}; give one each.")
            num_images = len(latents)
        if num_images is None and class_labels is not None and np.ndim(_as_numpy(class_labels)) == 1:
            num_images = len(_as_numpy(class_labels))
        num_images = 1 if num_images is None else int(num_images)
        if self.model_type != "hfdl-gan" and class_labels is not None:
            raise ValueError(f"A {self.model_type} model is not class-conditional; drop `class_labels`.")
        if latents is None:
            latents = self.sample_latents(num_images, generator)
        images = self.generate(latents, class_labels) if self.model_type == "hfdl-gan" else self.decode(latents)
        return ImagePipelineOutput(images=to_output(images, output_type))

    # ------------------------------------------------------------------------------------------- the parts
    def generate(
        self,
        latents: torch.Tensor | np.ndarray,
        class_labels: int | Sequence[int] | torch.Tensor | np.ndarray | None = None,
    ) -> torch.Tensor:
        """A GAN's images in [0, 1] for given latents, (N, C, H, W): ``generator.onnx``."""
        self._require("generator")
        feeds = {"latents": self._check_latents(latents)}
        feeds.update(self._class_label_feeds(class_labels, len(feeds["latents"])))
        return self._run("generator", feeds)[0]

    def discriminate(
        self,
        pixel_values: torch.Tensor | np.ndarray,
        class_labels: int | Sequence[int] | torch.Tensor | np.ndarray | None = None,
    ) -> torch.Tensor:
        """A GAN discriminator's logits (N,) for images in [-1, 1] (the generator's range): ``discriminator.onnx``."""
        self._require("discriminator", "export with include_discriminator=True (CLI: --discriminator)")
        feeds = {"pixel_values": self._check_images(pixel_values)}
        feeds.update(self._class_label_feeds(class_labels, len(feeds["pixel_values"])))
        return self._run("discriminator", feeds)[0]

    def encode(self, images: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """An autoencoder's latents (N, latent_dim), or a VAE's ``(mean, logvar)``, like the model's ``encode``.

        ``images``: ``pixel_values`` in [0, 1] as an (N, C, H, W) tensor or array, or PIL images (one or a list),
        which go through the folder's image processor first.
        """
        self._require("encoder")
        outputs = self._run("encoder", {"pixel_values": self._check_images(images)})
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def decode(self, latents: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Images in [0, 1], (N, C, H, W), for latents (N, latent_dim), like the model's ``decode``."""
        self._require("decoder")
        return self._run("decoder", {"latents": self._check_latents(latents)})[0]

    def reconstruct(self, images: Any) -> torch.Tensor:
        """``decode(encode(images))``; a VAE decodes its posterior mean, as the model does in eval mode."""
        encoded = self.encode(images)
        return self.decode(encoded[0] if isinstance(encoded, tuple) else encoded)

    # ------------------------------------------------------------------------------------------- helpers
    def _require(self, part: str, hint: str = "") -> None:
        if part not in self.sessions:
            have = ", ".join(sorted(self.sessions))
            raise ValueError(
                f"This {self.model_type} export has no {part} graph (it has: {have})" + (f"; {hint}." if hint else ".")
            )

    def _run(self, part: str, feeds: dict[str, np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(value) for value in self.sessions[part].run(None, feeds)]

    def _check_latents(self, latents: object) -> np.ndarray:
        return _check_float_array("latents", latents, (self.config.latent_dim,), str(self.config.latent_dim))

    def _check_images(self, images: Any) -> np.ndarray:
        if not isinstance(images, (torch.Tensor, np.ndarray)):
            if self.image_processor is None:
                raise ValueError(
                    f"Got {type(images).__name__} images but {self.model_dir} has no image processor; pass "
                    "`pixel_values` as an (N, C, H, W) tensor or array."
                )
            images = self.image_processor(images, return_tensors="np")["pixel_values"]
        size, channels = self.config.image_size, self.config.num_channels
        return _check_float_array("pixel_values", images, (channels, size, size), f"{channels}, {size}, {size}")

    def _class_label_feeds(self, class_labels: object, batch_size: int) -> dict[str, np.ndarray]:
        """``{"class_labels": (N,) int64}`` for a conditional model (an int is repeated), ``{}`` otherwise."""
        if not self.is_conditional:
            if class_labels is not None:
                raise ValueError("This GAN is unconditional (num_classes=0); drop `class_labels`.")
            return {}
        num_classes = self.config.num_classes
        if class_labels is None:
            raise ValueError(f"This GAN is conditional: pass `class_labels` (ints in [0, {num_classes})).")
        labels = _as_numpy(class_labels)
        if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer) or labels.ndim > 1:
            raise ValueError(
                f"`class_labels` must be an int or a 1-D sequence of ints in [0, {num_classes}), got {class_labels!r}."
            )
        labels = np.full(batch_size, int(labels), dtype=np.int64) if labels.ndim == 0 else labels.astype(np.int64)
        if len(labels) != batch_size:
            raise ValueError(f"Got {len(labels)} class_labels for {batch_size} images; give one int or one per image.")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"`class_labels` must be in [0, {num_classes}), got {labels.tolist()}.")
        return {"class_labels": labels}


def _as_numpy(value: object) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, (int, np.integer)):
        raise ValueError(f"`generator` must be a torch.Generator, an int seed or None, got {type(generator).__name__}.")
    return torch.Generator().manual_seed(int(generator))


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_float_array(name: str, value: object, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """A float32 C-order array of shape (batch_size >= 1, *shape) from a tensor or array, or a ValueError."""
    expected = f"(batch_size, {axes})"
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"`{name}` must be a torch.Tensor or numpy array of shape {expected}, got {type(value).__name__}."
        )
    if not np.issubdtype(value.dtype, np.floating):
        raise ValueError(f"`{name}` must hold floating point values of shape {expected}, got dtype {value.dtype}.")
    if value.ndim != len(shape) + 1 or tuple(value.shape[1:]) != tuple(shape) or not len(value):
        raise ValueError(f"`{name}` must have shape {expected} with batch_size >= 1, got {tuple(value.shape)}.")
    return np.ascontiguousarray(value, dtype=np.float32)
