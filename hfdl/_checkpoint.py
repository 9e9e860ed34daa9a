"""Where a checkpoint is, and reading its weights: the two rules :mod:`hfdl.inference` and :mod:`hfdl.export` share.

* :func:`resolve_source`: an existing folder is local; a string that ``huggingface_hub`` accepts as a repo id
  (``name`` or ``org/name``) and that is not an existing path is a Hub id; anything else (an ``os.PathLike``, an
  absolute, ``./`` or ``~`` path, a deeper path, a name with spaces) is a local folder that does not exist.
* :func:`load_weights`: a ``model.safetensors`` that cannot be parsed (truncated by an interrupted download or copy,
  overwritten) raises a :class:`ValueError` that names the file and what to do. ValueError, not OSError: the file
  was read without an I/O error, its *content* is invalid (Python's convention, and hfdl.data's for corrupt IDX
  files); OSError stays what transformers raises for a missing weights file. The CLI prints either as one line.

This module imports only the core dependencies (no onnx), so both the inference and the export side can use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError
from transformers import PreTrainedModel

SAFE_WEIGHTS_NAME = "model.safetensors"


def resolve_source(source: str | os.PathLike, expected: str) -> Path | str:
    """The local folder ``source`` names (a ``Path``), or the Hub id it is (a ``str``), by the rule above.

    Args:
        source: A folder or a Hub id, as a user wrote it.
        expected: What the caller accepts, for the error message ("a folder written by save_pretrained or ...");
            it reads "No such folder: <source> is not a directory; pass <expected>."

    Raises:
        FileNotFoundError: If ``source`` is a file, or a local path with no folder there.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FileNotFoundError(f"{source} is a file, not a folder; pass {expected}.")
    if isinstance(source, str):
        try:
            validate_repo_id(source)
        except HFValidationError:
            pass
        else:
            return source
    raise FileNotFoundError(f"No such folder: {source} is not a directory; pass {expected}.")


def load_weights(model_class: type[PreTrainedModel], source: Path | str, **kwargs: Any) -> PreTrainedModel:
    """``model_class.from_pretrained(source, **kwargs)``, with a corrupt safetensors file as one clear ValueError.

    Raises:
        ValueError: If a safetensors file of ``source`` cannot be parsed (truncated or corrupt).
        OSError: transformers' own, e.g. for a folder without weights.
    """
    try:
        return model_class.from_pretrained(source, **kwargs)
    except SafetensorError as error:
        # safetensors reports a truncated or overwritten file as a header error deep in transformers' loader; say
        # which file, and what to do, in one message (`from None`: the Rust traceback adds nothing to it).
        weights = Path(source) / SAFE_WEIGHTS_NAME
        weights = weights if isinstance(source, Path) and weights.is_file() else f"a safetensors file of {source}"
        raise ValueError(
            f"Cannot load the weights of {model_class.__name__} because {weights} is not a readable safetensors file "
            f"({error}); it is truncated or corrupt. Save the model again (save_pretrained) or download it again."
        ) from None
