"""Load a trained model for inference, from whatever a user points at, on PyTorch or ONNX Runtime.

Spaces and the CLI are handed a string and a backend name; this module turns them into one object that can
classify images, so the folder layouts hfdl writes are resolved in one place:

* a model folder written by ``save_pretrained`` (``config.json`` + ``model.safetensors``);
* a training output folder, where the recipe keeps the best model in ``<dir>/best/`` and ``hfdl demo`` the
  ONNX export in ``<dir>/onnx/``;
* an ONNX export folder written by :func:`hfdl.export.export_onnx` (``model.onnx`` + ``config.json``);
* a Hub id (``org/name``), resolved through the normal Hugging Face cache (so ``HF_HUB_OFFLINE=1`` works with a
  cached snapshot), then read as one of the layouts above.

Any registered head loads (the task comes from the saved ``architectures`` through the registry, or is asked for
with ``task=``); a head with an image processor can be called on images directly. Every failure names the source
and what would have been accepted, before any framework error surfaces. onnxruntime and :mod:`hfdl.export` are
imported only for the ONNX backend: ``import hfdl.inference`` needs the core dependencies only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoImageProcessor, PretrainedConfig
from transformers.utils import ModelOutput

from ._checkpoint import load_weights, resolve_source
from .registry import find_task_for_config
from .specs import TaskSpec

BACKENDS = ("torch", "onnx")

CONFIG_NAME = "config.json"
ONNX_NAME = "model.onnx"
PREPROCESSOR_NAME = "preprocessor_config.json"
#: The weight files transformers reads, in its own order of preference.
TORCH_WEIGHTS_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: Where each backend looks inside a source folder: the folder itself first, then the recipe's layout.
TORCH_SUBFOLDERS = (".", "best")
ONNX_SUBFOLDERS = (".", "onnx", "best/onnx")
#: What a Hub snapshot needs per backend (fnmatch patterns: ``*`` also matches ``best/`` and ``onnx/``).
HUB_PATTERNS = {"torch": ["*.json", "*.safetensors"], "onnx": ["*.json", "*.onnx", "*.onnx.data"]}

_ACCEPTED = (
    "a model folder (save_pretrained), a training output folder (<dir>/best, <dir>/onnx), "
    "an ONNX export folder (export_onnx) or a Hub id (org/name)"
)


def class_scores(logits: torch.Tensor, config: PretrainedConfig) -> torch.Tensor:
    """Per-class scores of a classification head, as transformers' classification pipelines compute them.

    A softmax over the classes for a single-label head; a sigmoid per class for a multi-label head and for a one-logit
    binary head (its one score is the probability of the positive class). A softmax over one logit would always say
    1.0, and a softmax over independent labels would make them compete.
    """
    logits = logits.float()
    if config.num_labels == 1 or config.problem_type == "multi_label_classification":
        return logits.sigmoid()
    return logits.softmax(dim=-1)


def class_name(config: PretrainedConfig, index: int) -> str:
    """The class name for display: the config's ``id2label``, with transformers' ``LABEL_<i>`` placeholders shown as
    the index itself (for the digits, the digit)."""
    name = str(config.id2label.get(index, index))
    return str(index) if name == f"LABEL_{index}" else name


def top_classes(logits: torch.Tensor, config: PretrainedConfig, top_k: int = 5) -> list[list[dict[str, Any]]]:
    """For each row of ``logits`` (batch, num_labels): the ``top_k`` classes, best first, as ``{"label", "score"}``."""
    scores = class_scores(logits, config)
    values, indices = scores.topk(min(top_k, scores.shape[-1]), dim=-1)
    return [
        [
            {"label": class_name(config, int(index)), "score": float(value)}
            for value, index in zip(row_values, row_indices)
        ]
        for row_values, row_indices in zip(values, indices)
    ]


@dataclass(frozen=True)
class Predictor:
    """A loaded model with its config and processor, callable on raw inputs or on model inputs, on either backend.

    ``model`` is the PyTorch ``PreTrainedModel`` (in eval mode) or an :class:`~hfdl.export.ORTModel`; both return
    the head's ``ModelOutput`` with torch tensors, so callers never branch on ``backend``. ``task`` is the head's
    pipeline tag and ``task_spec`` its :class:`~hfdl.specs.TaskSpec`; ``model_dir`` is the folder the model was read
    from (after resolving ``best/``, ``onnx/`` or a Hub snapshot).
    """

    model: Any = field(repr=False)
    config: PretrainedConfig = field(repr=False)
    processor: Any = field(repr=False)
    backend: str
    task_spec: TaskSpec = field(repr=False)
    model_dir: Path

    @property
    def task(self) -> str:
        return self.task_spec.task

    @property
    def can_output_hidden_states(self) -> bool:
        """Whether calls may ask for ``hidden_states``: always on PyTorch, only for graphs exported with them."""
        return self.backend == "torch" or bool(self.model.hidden_state_names)

    def __call__(self, images: Any, output_hidden_states: bool = False) -> ModelOutput:
        """Preprocess one image or a list of images with the model's own image processor, then run the model.

        Raises:
            ValueError: If the model came without an image processor (call :meth:`forward` with model inputs).
        """
        inputs = ", ".join(self.task_spec.input_names)
        if self.task_spec.processor != "image":
            raise ValueError(f"The {self.task!r} head of {self.model_dir} takes no images; call forward({inputs}).")
        if self.processor is None:
            raise ValueError(
                f"{self.model_dir} has no {PREPROCESSOR_NAME}, so images cannot be preprocessed here; save the image "
                f"processor next to the model (processor.save_pretrained) or call forward({inputs})."
            )
        pixel_values = self.processor(images, return_tensors="pt")["pixel_values"]
        return self.forward(pixel_values, output_hidden_states=output_hidden_states)

    def classify(self, images: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """The ``top_k`` classes of each image, best first (see :func:`top_classes` for the scores).

        Raises:
            ValueError: If the model is not an image classifier.
        """
        if self.task != "image-classification":
            raise ValueError(f"{self.model_dir} holds a {self.task!r} model; only image classifiers classify images.")
        images = images if isinstance(images, (list, tuple)) else [images]
        return top_classes(self(images).logits, self.config, top_k)

    def forward(self, *inputs: Any, output_hidden_states: bool = False, **named_inputs: Any) -> ModelOutput:
        """Run the model on its inputs (the task spec's, positional in order or by name), e.g. ``pixel_values``."""
        values = {**dict(zip(self.task_spec.input_names, inputs)), **named_inputs}
        if self.backend == "onnx":
            # False (not None) so that onnxruntime does not even fetch the hidden-state outputs of the graph.
            return self.model(**values, output_hidden_states=output_hidden_states)
        with torch.inference_mode():
            tensors = {name: torch.as_tensor(value) for name, value in values.items()}
            return self.model(**tensors, output_hidden_states=output_hidden_states)


def load(source: str | Path, backend: str = "torch", task: str | None = None) -> Predictor:
    """Load ``source`` for inference on ``backend`` ("torch" or "onnx").

    Args:
        source: A local folder (model, training output or ONNX export) or a Hub id; see the module docstring.
        backend: "torch" runs the PyTorch model; "onnx" runs ``model.onnx`` in onnxruntime (needs the ``export``
            extra: ``pip install 'hfdl[export]'``).
        task: The head to load (a pipeline tag such as "image-classification" or "image-feature-extraction");
            ``None`` takes the head the folder was saved from (its ``architectures``). On PyTorch any head of the
            architecture loads from a checkpoint of another (a base model from a classifier's weights); an ONNX
            graph holds one head.

    Raises:
        ValueError: An unknown backend, a model that is not hfdl's, a task it has no head for, a truncated or
            corrupt ``model.safetensors`` (see :mod:`hfdl._checkpoint`).
        FileNotFoundError: No such folder or Hub model, no ``config.json``, no weights or no ``model.onnx``.
        ImportError: The ONNX backend without hfdl's export extra installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r} for {str(source)!r}; allowed: {', '.join(BACKENDS)}.")
    root = _local_root(source, backend)
    if backend == "torch":
        return _load_torch(str(source), root, task)
    return _load_onnx(str(source), root, task)


# --------------------------------------------------------------------------------------------------------------------
# Resolving the source to a local folder
# --------------------------------------------------------------------------------------------------------------------


def _local_root(source: str | Path, backend: str) -> Path:
    """The local folder behind ``source``: the folder itself, or the cached Hub snapshot of a Hub id."""
    resolved = resolve_source(source, _ACCEPTED)
    if isinstance(resolved, Path):
        return resolved
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(resolved, allow_patterns=HUB_PATTERNS[backend]))
    except OSError as error:  # LocalEntryNotFoundError, RepositoryNotFoundError, HTTP errors
        raise FileNotFoundError(
            f"{source} is not a local folder, and as a Hub id it could not be fetched or found in the cache "
            f"({type(error).__name__}: {str(error).splitlines()[0]}); expected {_ACCEPTED}."
        ) from error


def _first_with(root: Path, name: str, subfolders: tuple[str, ...]) -> Path | None:
    """The first of ``root/<subfolder>`` that holds a file ``name``."""
    for subfolder in subfolders:
        if (root / subfolder / name).is_file():
            return (root / subfolder).resolve()
    return None


def _where(root: Path, subfolders: tuple[str, ...]) -> str:
    return ", ".join(str(root / subfolder) if subfolder != "." else str(root) for subfolder in subfolders)


def _load_processor(*folders: Path | None) -> Any:
    """The image processor saved in the first folder that has one, else None (the model can still run on tensors)."""
    for folder in folders:
        if folder is not None and (folder / PREPROCESSOR_NAME).is_file():
            return AutoImageProcessor.from_pretrained(folder)
    return None


# --------------------------------------------------------------------------------------------------------------------
# The two backends
# --------------------------------------------------------------------------------------------------------------------


def _load_torch(source: str, root: Path, task: str | None) -> Predictor:
    model_dir = _first_with(root, CONFIG_NAME, TORCH_SUBFOLDERS)
    if model_dir is None:
        raise FileNotFoundError(f"No {CONFIG_NAME} in {_where(root, TORCH_SUBFOLDERS)}: {source} is not {_ACCEPTED}.")
    if not any((model_dir / name).is_file() for name in TORCH_WEIGHTS_NAMES):
        hint = " It holds an ONNX export: use backend='onnx'." if (model_dir / ONNX_NAME).is_file() else ""
        raise FileNotFoundError(
            f"No PyTorch weights ({', '.join(TORCH_WEIGHTS_NAMES)}) in {model_dir}, the model folder of {source}.{hint}"
        )
    config_dict, _ = PretrainedConfig.get_config_dict(model_dir)
    _, task_spec = find_task_for_config(config_dict, task, source=model_dir)
    model = load_weights(task_spec.model_class, model_dir)
    return Predictor(model.eval(), model.config, _load_processor(model_dir), "torch", task_spec, model_dir)


def _load_onnx(source: str, root: Path, task: str | None) -> Predictor:
    onnx_dir = _first_with(root, ONNX_NAME, ONNX_SUBFOLDERS)
    if onnx_dir is None:
        raise FileNotFoundError(
            f"No {ONNX_NAME} in {_where(root, ONNX_SUBFOLDERS)} for {source}. Export one with "
            f"`hfdl export onnx MODEL_DIR {root / 'onnx'} --hidden-states`, or use backend='torch'."
        )
    if not (onnx_dir / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{onnx_dir} has {ONNX_NAME} but no {CONFIG_NAME}; hfdl.export.export_onnx writes both, so export again."
        )
    try:
        from hfdl.export import ORTModel
    except ImportError as error:
        raise ImportError(
            f"The ONNX backend needs hfdl's export extra (pip install 'hfdl[export]'), which could not be imported "
            f"({error}); or use backend='torch'."
        ) from error
    model = ORTModel.from_pretrained(onnx_dir, task=task)  # resolves the head and refuses a graph of another one
    # export_onnx copies the image processor next to model.onnx; an older export may only have it beside the weights.
    processor = _load_processor(onnx_dir, _first_with(root, PREPROCESSOR_NAME, TORCH_SUBFOLDERS))
    return Predictor(model, model.config, processor, "onnx", model.task, onnx_dir)
