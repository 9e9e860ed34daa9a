"""Run an exported hfdl model in onnxruntime behind the PyTorch model's interface.

Optimum's ``ORTModel*`` classes do this job in optimum-onnx, which cannot be installed beside transformers 5; these
are the small part hfdl needs. :class:`ORTModel` loads ``model.onnx`` + ``config.json`` from the folder
:func:`~hfdl.export.export_onnx` writes, finds the head's task spec through the registry (from the saved
``architectures``), takes the spec's inputs as tensors or arrays, and returns the same ``ModelOutput`` (torch
tensors) as the PyTorch model, with ``hidden_states`` when the graph was exported with them. The graph carries no
input checks (they run in Python while tracing), so the PyTorch model's shape and dtype checks are repeated here
from the task spec, by the models' own check functions (same messages). One class per task family on top says which
tasks it serves and what it returns; :class:`ORTModelForCausalLM` also generates (greedy) with the no-cache graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime
import torch
from transformers import PretrainedConfig
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithNoAttention,
    CausalLMOutput,
    ImageClassifierOutputWithNoAttention,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import ModelOutput

from ..layers.hfdl_attention import check_token_ids, make_attention_mask
from ..layers.hfdl_utils import check_float_tensor
from ..specs import InputSpec, TaskSpec
from .onnx import ONNX_WEIGHTS_NAME

HIDDEN_STATES_PREFIX = "hidden_states."
#: onnxruntime's input types -> the numpy dtype fed to them.
_FEED_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


class ORTModel:
    """An onnxruntime session with the call signature of the PyTorch head it was exported from.

    Build it with :meth:`from_pretrained` on a subclass (``ORTModel.from_pretrained`` itself picks the subclass
    that serves the saved head). Attributes: ``config`` (the exported model's config), ``task`` (its
    :class:`~hfdl.specs.TaskSpec`), ``session`` (the ``onnxruntime.InferenceSession``), ``input_names`` and
    ``output_names`` (the graph's), ``main_input_name``. Calling the object runs :meth:`forward`.
    """

    #: task -> the ModelOutput class a subclass returns for it (the PyTorch heads' own classes).
    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {}

    def __init__(
        self, session: onnxruntime.InferenceSession, config: PretrainedConfig, task: TaskSpec, model_dir: Path
    ) -> None:
        self.session = session
        self.config = config
        self.task = task
        self.model_dir = model_dir
        self.input_names = [node.name for node in session.get_inputs()]
        self.output_names = [node.name for node in session.get_outputs()]
        if self.input_names != task.input_names or task.main_output not in self.output_names:
            raise ValueError(
                f"{model_dir / ONNX_WEIGHTS_NAME} takes {self.input_names} and returns {self.output_names}; a "
                f"{task.task!r} graph of {task.model_class.__name__} takes {task.input_names} and returns "
                f"{task.main_output!r} (export it with hfdl.export.export_onnx)."
            )
        self.main_input_name = task.input_names[0]
        self.hidden_state_names = sorted(
            (name for name in self.output_names if name.startswith(HIDDEN_STATES_PREFIX)),
            key=lambda name: int(name[len(HIDDEN_STATES_PREFIX) :]),
        )
        self._feed_dtypes = {node.name: _FEED_DTYPES.get(node.type) for node in session.get_inputs()}

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
        task: str | None = None,
    ) -> ORTModel:
        """Load ``model_dir/model.onnx`` and ``model_dir/config.json`` (an :func:`~hfdl.export.export_onnx` folder).

        Args:
            model_dir: The export folder.
            providers: onnxruntime execution providers in order of preference; default ``["CPUExecutionProvider"]``.
            session_options: Passed to ``onnxruntime.InferenceSession`` (threads, optimisation level).
            task: The head the caller expects; ``None`` takes the one the saved ``architectures`` names (or, where
                they name none, the one head of the architecture this class serves). A graph holds one head, so a
                ``task`` other than the saved one is refused.

        Raises:
            FileNotFoundError: If the folder has no ``model.onnx``.
            ValueError: If ``model.onnx`` is not a readable ONNX graph, the config is not an hfdl model's, or the
                graph is not one of ``task`` or of a head this class serves.
        """
        model_dir = Path(model_dir)
        onnx_path = model_dir / ONNX_WEIGHTS_NAME
        if not onnx_path.is_file():
            raise FileNotFoundError(
                f"No {ONNX_WEIGHTS_NAME} in {model_dir}; write one with hfdl.export.export_onnx(model, output_dir)."
            )
        available = onnxruntime.get_available_providers()
        providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        unknown = [provider for provider in providers if provider not in available]
        if not providers or unknown:
            raise ValueError(f"Unknown or empty `providers` {providers}; available here: {', '.join(available)}.")
        config, model_class, task_spec = cls._resolve_task(model_dir, task)
        try:
            session = onnxruntime.InferenceSession(str(onnx_path), sess_options=session_options, providers=providers)
        except Exception as error:  # onnxruntime raises its own (pybind) classes: InvalidProtobuf, Fail, ...
            raise ValueError(f"{onnx_path} is not a valid ONNX model that onnxruntime can load: {error}") from error
        return model_class(session, config, task_spec, model_dir)

    @classmethod
    def _resolve_task(cls, model_dir: Path, task: str | None) -> tuple[PretrainedConfig, type[ORTModel], TaskSpec]:
        """The saved config, the class that serves its head and the head's task spec (see :meth:`from_pretrained`)."""
        from ..registry import find_task_for_config

        config_dict, _ = PretrainedConfig.get_config_dict(model_dir)
        served = [name for c in ORT_MODEL_CLASSES if issubclass(c, cls) for name in c.output_classes]
        spec, head = find_task_for_config(config_dict, source=model_dir, fallback=served if task is None else [task])
        if task is not None and head.task != task:
            spec.task(task)  # "lenet5 has no 'x' head; available: ..." for a head the architecture lacks
            raise ValueError(
                f"{model_dir / ONNX_WEIGHTS_NAME} holds the graph of the {head.task!r} head, not of {task!r}; "
                "export that head."
            )
        model_class = next((c for c in ORT_MODEL_CLASSES if head.task in c.output_classes), None)
        if model_class is None or not issubclass(model_class, cls):
            hint = f"; load it with {model_class.__name__}" if model_class is not None else ""
            raise ValueError(
                f"{model_dir} holds a {head.task!r} graph ({head.model_class.__name__}), which {cls.__name__} does "
                f"not serve{hint}."
            )
        return spec.config_class.from_dict(config_dict), model_class, head

    def __call__(self, *inputs: Any, **kwargs: Any) -> ModelOutput | tuple:
        return self.forward(*inputs, **kwargs)

    def forward(
        self, *inputs: Any, output_hidden_states: bool | None = None, return_dict: bool | None = None, **kwargs: Any
    ) -> ModelOutput | tuple:
        """Run the graph on the head's inputs (positional in the spec's order, or by name), like the PyTorch model.

        ``hidden_states`` come back when the graph has them, unless ``output_hidden_states=False``. A missing
        ``attention_mask`` means "attend to every token", as in transformers. Other keyword arguments are ignored,
        as the PyTorch models do; ``labels`` are refused because no loss is computed here.
        """
        if kwargs.get("labels") is not None:
            raise ValueError(
                f"The ONNX model computes no loss; drop `labels` (compute the loss from `{self.task.main_output}`)."
            )
        if len(inputs) > len(self.task.inputs):
            raise ValueError(f"Got {len(inputs)} positional inputs; the graph takes {self.input_names}.")
        if output_hidden_states and not self.hidden_state_names:
            raise ValueError(
                "This graph was exported without hidden states; re-export with "
                "export_onnx(..., output_hidden_states=True) to get them."
            )
        values = {**dict(zip(self.input_names, inputs)), **{n: kwargs[n] for n in self.input_names if n in kwargs}}
        feeds = self._make_feeds(values)

        want_hidden = bool(self.hidden_state_names) and output_hidden_states is not False
        names = [self.task.main_output, *(self.hidden_state_names if want_hidden else [])]
        results = [torch.from_numpy(value) for value in self.session.run(names, feeds)]
        main, hidden_states = results[0], (tuple(results[1:]) if want_hidden else None)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return tuple(v for v in (main, hidden_states) if v is not None)
        return self.output_classes[self.task.task](**{self.task.main_output: main, "hidden_states": hidden_states})

    def _make_feeds(self, values: dict[str, Any]) -> dict[str, np.ndarray]:
        """Check every input the graph takes (see :meth:`_check_input`) and return onnxruntime's feeds."""
        feeds: dict[str, np.ndarray] = {}
        for spec in self.task.inputs:
            value = values.get(spec.name)
            if value is None and spec.kind == "attention_mask" and feeds:
                value = np.ones(next(iter(feeds.values())).shape, dtype=np.int64)
            if value is None:
                raise ValueError(f"Missing input `{spec.name}`; the graph takes {self.input_names}.")
            feeds[spec.name] = self._check_input(spec, value, feeds)
        return feeds

    def _check_input(self, spec: InputSpec, value: object, checked: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The PyTorch model's own input check for ``spec`` (tensors and arrays alike); returns the feed.

        Float inputs of fixed size (images, feature vectors) go through the models' ``check_float_tensor``, token ids
        through ``check_token_ids`` (integer, 2-D, in the vocabulary, within a learned position table) and attention
        masks through the check of ``make_attention_mask`` (2-D, one entry per token of ``checked``'s token ids), so
        the messages are the ones PyTorch gives. onnxruntime also needs a non-empty batch, and the mask's batch must
        be the ids' (PyTorch would fail inside the attention instead).
        """
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        sample_shape = spec.shape(self.config)
        axes = [spec.dynamic_axes.get(axis + 1, str(size)) for axis, size in enumerate(sample_shape)]
        expected = f"(batch_size, {', '.join(axes)})"
        token_ids = next((v for n, v in (checked or {}).items() if self._kind(n) == "token_ids"), None)
        if spec.kind == "float" and len(spec.dynamic_axes) == 1:
            check_float_tensor(spec.name, value, sample_shape, ", ".join(axes))
        elif spec.kind == "token_ids":
            check_token_ids(value, spec.vocab_size(self.config), max_sequence_length(self.config), name=spec.name)
        elif spec.kind == "attention_mask" and token_ids is not None:
            make_attention_mask(value, token_ids.shape[1], 0, False, torch.device("cpu"))
            value = value != 0  # PyTorch reads any nonzero entry (1, 1.0, True) as "attend"
        else:
            if not isinstance(value, torch.Tensor):
                raise ValueError(
                    f"`{spec.name}` must be a torch.Tensor of shape {expected}, got {type(value).__name__}."
                )
            if value.is_floating_point() != (spec.kind == "float") or value.is_complex():
                kind = "a floating point" if spec.kind == "float" else "an integer"
                raise ValueError(f"`{spec.name}` must be {kind} tensor of shape {expected}, got dtype {value.dtype}.")
            static = {axis + 1: size for axis, size in enumerate(sample_shape) if axis + 1 not in spec.dynamic_axes}
            if value.dim() != len(sample_shape) + 1 or any(value.shape[axis] != size for axis, size in static.items()):
                raise ValueError(f"`{spec.name}` must have shape {expected}, got {tuple(value.shape)}.")
        if not len(value):
            raise ValueError(f"`{spec.name}` must have shape {expected} with batch_size >= 1, got an empty batch.")
        if token_ids is not None and len(value) != len(token_ids):
            raise ValueError(
                f"`{spec.name}` has {len(value)} rows but the token ids have {len(token_ids)}; give one row per "
                "sequence."
            )
        dtype = self._feed_dtypes.get(spec.name) or (np.float32 if spec.kind == "float" else np.int64)
        return np.ascontiguousarray(value.detach().cpu().numpy(), dtype=dtype)

    def _kind(self, input_name: str) -> str | None:
        return next((spec.kind for spec in self.task.inputs if spec.name == input_name), None)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.config.model_type}, {self.task.task}, dir={str(self.model_dir)!r}, "
            f"providers={self.session.get_providers()}, outputs={self.output_names})"
        )


def max_sequence_length(config: PretrainedConfig) -> int | None:
    """The longest input a learned position table allows (``max_position_embeddings``), ``None`` for other positions.

    hfdl's transformers (``hfdl_attention``) refuse longer inputs in PyTorch; a graph would instead fail inside
    onnxruntime's Gather with an index error, so the ORT models check it up front with the same message.
    """
    if getattr(config, "position_embedding_type", None) == "learned":
        return config.max_position_embeddings
    return None


class ORTModelForImageClassification(ORTModel):
    """An exported image classifier: ``pixel_values`` in, ``ImageClassifierOutputWithNoAttention`` out."""

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {
        "image-classification": ImageClassifierOutputWithNoAttention
    }


class ORTModelForFeatureExtraction(ORTModel):
    """An exported base model (over images, feature vectors or text): ``last_hidden_state`` (and hidden states)."""

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {
        "feature-extraction": BaseModelOutput,
        "image-feature-extraction": BaseModelOutputWithNoAttention,
    }


class ORTModelForMaskedLM(ORTModel):
    """An exported masked language model: ``input_ids``, ``attention_mask`` in, ``logits`` (batch, sequence, vocab)."""

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {"fill-mask": MaskedLMOutput}


class ORTModelForSequenceClassification(ORTModel):
    """An exported sequence classifier: ``input_ids``, ``attention_mask`` in, ``logits`` (batch, num_labels) out."""

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {"text-classification": SequenceClassifierOutput}


class ORTModelForTokenClassification(ORTModel):
    """An exported tagger: ``input_ids``, ``attention_mask`` in, ``logits`` (batch, sequence, num_labels) out."""

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {"token-classification": TokenClassifierOutput}


class ORTModelForCausalLM(ORTModel):
    """An exported causal language model without key/value cache: next-token ``logits`` (batch, sequence, vocab).

    The graph takes the whole sequence at every call (no ``past_key_values``), so :meth:`generate` re-runs the
    full sequence for each new token: quadratic in the length, which is fine for the short contexts of the course's
    models. A graph with a cache comes from Optimum's exporter (``tests/optimum_lane``).
    """

    output_classes: ClassVar[dict[str, type[ModelOutput]]] = {"text-generation": CausalLMOutput}

    def generate(
        self,
        input_ids: torch.Tensor | np.ndarray,
        attention_mask: torch.Tensor | np.ndarray | None = None,
        max_new_tokens: int = 20,
        eos_token_id: int | Sequence[int] | None = None,
        pad_token_id: int | None = None,
    ) -> torch.Tensor:
        """Greedy decoding: append the most likely next token ``max_new_tokens`` times; returns (batch, length + new).

        Gives the tokens of the PyTorch model's ``generate(input_ids, max_new_tokens=..., do_sample=False)``: a
        left-padded batch keeps its ``attention_mask`` (extended by ones), a row stops at ``eos_token_id`` (default
        the config's) and is then filled with ``pad_token_id`` (default the config's, else the end-of-sequence id),
        and generation ends early once every row has stopped.

        Raises:
            ValueError: For bad inputs (the PyTorch model's messages), a ``max_new_tokens`` that is not a positive
                integer, or a total length beyond a learned position table.
        """
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be a positive integer, got {max_new_tokens!r}.")
        feeds = self._make_feeds({"input_ids": input_ids, "attention_mask": attention_mask})
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        limit = max_sequence_length(self.config)
        if limit is not None and ids.shape[1] + max_new_tokens > limit:
            raise ValueError(
                f"{ids.shape[1]} prompt tokens + max_new_tokens={max_new_tokens} exceed the model's learned position "
                f"table (max_position_embeddings={limit}); shorten the prompt or generate fewer tokens."
            )
        eos_token_id = self.config.eos_token_id if eos_token_id is None else eos_token_id
        stop_ids = np.asarray([] if eos_token_id is None else np.atleast_1d(eos_token_id), dtype=np.int64)
        pad_token_id = self.config.pad_token_id if pad_token_id is None else pad_token_id
        if pad_token_id is None and len(stop_ids):
            pad_token_id = int(stop_ids[0])  # as transformers does, with its warning
        finished = np.zeros(len(ids), dtype=bool)
        for _ in range(max_new_tokens):
            (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            next_tokens = logits[:, -1].argmax(-1).astype(np.int64)  # (batch,)
            if len(stop_ids):
                next_tokens = np.where(finished, pad_token_id, next_tokens)
                finished |= np.isin(next_tokens, stop_ids)
            ids = np.concatenate([ids, next_tokens[:, None]], axis=1)
            mask = np.concatenate([mask, np.ones_like(mask[:, :1])], axis=1)
            if finished.all():
                break
        return torch.from_numpy(ids)


#: The task-serving classes, which ``ORTModel.from_pretrained`` chooses from.
ORT_MODEL_CLASSES: tuple[type[ORTModel], ...] = (
    ORTModelForImageClassification,
    ORTModelForFeatureExtraction,
    ORTModelForMaskedLM,
    ORTModelForSequenceClassification,
    ORTModelForTokenClassification,
    ORTModelForCausalLM,
)
