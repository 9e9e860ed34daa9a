"""Run an exported hfdl image classifier in onnxruntime behind the PyTorch model's interface.

Optimum's ``ORTModelForImageClassification`` does this job in optimum-onnx, which cannot be installed beside
transformers 5; this class is the small part hfdl needs: load ``model.onnx`` + ``config.json`` from the folder
:func:`~hfdl.export.export_onnx` writes, take ``pixel_values`` as a tensor or array, and return the same
``ImageClassifierOutputWithNoAttention`` (torch tensors) as the PyTorch model, with ``hidden_states`` when the graph
was exported with them. The graph itself carries no input checks (they run in Python while tracing), so the
shape and dtype checks of the PyTorch model are repeated here from the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from transformers import AutoConfig, PretrainedConfig
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

from ..layers.inputs import check_image_tensor
from .onnx import ONNX_WEIGHTS_NAME

HIDDEN_STATES_PREFIX = "hidden_states."


class ORTModelForImageClassification:
    """An onnxruntime session with the call signature of hfdl's ``*ForImageClassification`` models.

    Build it with :meth:`from_pretrained`. ``config`` is the exported model's config, ``session`` the
    ``onnxruntime.InferenceSession``; calling the object runs :meth:`forward`.
    """

    main_input_name = "pixel_values"

    def __init__(self, session: onnxruntime.InferenceSession, config: PretrainedConfig, model_dir: Path) -> None:
        self.session = session
        self.config = config
        self.model_dir = model_dir
        self.input_names = [node.name for node in session.get_inputs()]
        self.output_names = [node.name for node in session.get_outputs()]
        if self.input_names != [self.main_input_name] or "logits" not in self.output_names:
            raise ValueError(
                f"{model_dir / ONNX_WEIGHTS_NAME} takes {self.input_names} and returns {self.output_names}; an image "
                "classifier graph takes ['pixel_values'] and returns 'logits' (export it with hfdl.export.export_onnx)."
            )
        self.hidden_state_names = sorted(
            (name for name in self.output_names if name.startswith(HIDDEN_STATES_PREFIX)),
            key=lambda name: int(name[len(HIDDEN_STATES_PREFIX) :]),
        )
        self._input_dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        session_options: onnxruntime.SessionOptions | None = None,
    ) -> ORTModelForImageClassification:
        """Load ``model_dir/model.onnx`` and ``model_dir/config.json`` (an :func:`~hfdl.export.export_onnx` folder).

        Args:
            model_dir: The export folder.
            providers: onnxruntime execution providers in order of preference; default ``["CPUExecutionProvider"]``.
            session_options: Passed to ``onnxruntime.InferenceSession`` (threads, optimisation level).

        Raises:
            FileNotFoundError: If the folder has no ``model.onnx``.
            ValueError: If ``model.onnx`` is not a readable ONNX graph, or not an image classifier's.
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
        config = AutoConfig.from_pretrained(model_dir)
        try:
            session = onnxruntime.InferenceSession(str(onnx_path), sess_options=session_options, providers=providers)
        except Exception as error:  # onnxruntime raises its own (pybind) classes: InvalidProtobuf, Fail, ...
            raise ValueError(f"{onnx_path} is not a valid ONNX model that onnxruntime can load: {error}") from error
        return cls(session, config, model_dir)

    def __call__(
        self,
        pixel_values: torch.Tensor | np.ndarray,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        return self.forward(pixel_values, output_hidden_states=output_hidden_states, return_dict=return_dict, **kwargs)

    def forward(
        self,
        pixel_values: torch.Tensor | np.ndarray,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        """Classify a batch ``(batch_size, num_channels, image_size, image_size)``, like the PyTorch model.

        ``hidden_states`` come back when the graph has them, unless ``output_hidden_states=False``. Other keyword
        arguments are ignored, as the PyTorch models do; ``labels`` are refused because no loss is computed here.
        """
        if kwargs.get("labels") is not None:
            raise ValueError("The ONNX model computes no loss; drop `labels` (compute the loss from `logits`).")
        if output_hidden_states and not self.hidden_state_names:
            raise ValueError(
                "This graph was exported without hidden states; re-export with "
                "export_onnx(..., output_hidden_states=True) to get them."
            )
        want_hidden = bool(self.hidden_state_names) and output_hidden_states is not False
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        array = self._check_pixel_values(pixel_values)
        names = ["logits", *(self.hidden_state_names if want_hidden else [])]
        values = [torch.from_numpy(value) for value in self.session.run(names, {self.main_input_name: array})]
        logits, hidden_states = values[0], (tuple(values[1:]) if want_hidden else None)
        if not return_dict:
            return tuple(v for v in (logits, hidden_states) if v is not None)
        return ImageClassifierOutputWithNoAttention(logits=logits, hidden_states=hidden_states)

    def _check_pixel_values(self, pixel_values: object) -> np.ndarray:
        """The PyTorch model's own input check (``check_image_tensor``), for tensors and arrays; returns the feed.

        The graph holds no trace of the model's checks (they run only while tracing), so they run here instead;
        onnxruntime also needs a non-empty batch.
        """
        num_channels, image_size = self.config.num_channels, self.config.image_size
        if isinstance(pixel_values, np.ndarray):
            pixel_values = torch.from_numpy(pixel_values)
        check_image_tensor(pixel_values, num_channels, image_size)
        if not len(pixel_values):
            raise ValueError(
                f"`pixel_values` must have shape (batch_size, {num_channels}, {image_size}, {image_size}) with "
                "batch_size >= 1, got an empty batch."
            )
        return np.ascontiguousarray(pixel_values.detach().cpu().numpy(), dtype=self._input_dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.config.model_type}, dir={str(self.model_dir)!r}, "
            f"providers={self.session.get_providers()}, outputs={self.output_names})"
        )
