"""Publishing hfdl models: a Hub folder with weights, remote code, processor and a model card, saved or pushed.

A model card is a Hub artifact, so it is written here, where a model is *published* (recipes, the CLI, users who
call :func:`save_for_hub` / :func:`push_to_hub`), and not by ``save_pretrained``, which Trainer, peft and users call
for every checkpoint. The card is built with huggingface_hub's ``ModelCardData``/``EvalResult``, so its YAML
(library_name, pipeline_tag, tags including ``custom_code``, datasets, model-index with the evaluation results) is
what the Hub validates and shows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import PreTrainedModel

from .registry import find_task

#: The keys ``card_data`` may carry.
CARD_FIELDS = ("model_name", "datasets", "eval_results", "eval_dataset", "eval_split", "description", "tags")


def _check_card_data(card_data: dict[str, Any] | None) -> dict[str, Any]:
    card_data = dict(card_data or {})
    unknown = sorted(set(card_data) - set(CARD_FIELDS))
    if unknown:
        raise ValueError(f"Unknown `card_data` keys {unknown}; allowed: {', '.join(CARD_FIELDS)}.")
    for key in ("datasets", "tags"):
        value = card_data.get(key)
        if value is not None and (isinstance(value, str) or not all(isinstance(item, str) for item in value)):
            raise ValueError(f"`card_data[{key!r}]` must be a list of strings, got {value!r}.")
    results = card_data.get("eval_results")
    if results is not None:
        if not isinstance(results, dict) or not all(isinstance(value, (int, float)) for value in results.values()):
            raise ValueError(f"`card_data['eval_results']` must map metric names to numbers, got {results!r}.")
    return card_data


def model_card(model: PreTrainedModel, card_data: dict[str, Any] | None = None) -> ModelCard:
    """The model card of ``model``: Hub YAML metadata plus a short body on what it is and how to load it.

    Args:
        model: A registered hfdl head or base model.
        card_data: Optional ``model_name`` (the Hub repo name), ``datasets`` (Hub ids), ``eval_results`` (metric ->
            value), ``eval_dataset`` (default: the first dataset), ``eval_split`` (default ``"test"``),
            ``description`` (a paragraph of Markdown) and extra ``tags``.
    """
    data = _check_card_data(card_data)
    _check_publishable(model)
    spec, task = find_task(model)
    model_name = data.get("model_name") or f"{spec.name}-{task.task}"
    datasets = data.get("datasets") or None
    eval_dataset = data.get("eval_dataset") or (datasets[0] if datasets else None)
    eval_results = data.get("eval_results") or {}
    if eval_results and eval_dataset is None:
        raise ValueError("`card_data['eval_results']` needs `eval_dataset` (or `datasets`) to say what was measured.")
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag=task.task,
        # custom_code: the folder carries its modeling code, which only heads with an Auto class can be loaded by.
        tags=["hfdl", spec.model_type, *(["custom_code"] if task.auto_class else []), *data.get("tags", [])],
        datasets=datasets,
        model_name=model_name,
        metrics=list(eval_results) or None,
        eval_results=[
            EvalResult(
                task_type=task.task,
                dataset_type=eval_dataset,
                dataset_name=eval_dataset,
                dataset_split=data.get("eval_split", "test"),
                metric_type=metric,
                metric_value=float(value),
            )
            for metric, value in eval_results.items()
        ]
        or None,
    )
    body = [
        f"# {model_name}",
        "",
        f"A `{type(model).__name__}` ({spec.model_type}, {model.num_parameters():,} parameters; {spec.paper}) from "
        "[hfdl](https://github.com/hfdl/hfdl), the *Deep Learning Mastery* course library (chapter "
        f"{spec.chapter}).",
        "",
    ]
    if data.get("description"):
        body += [data["description"], ""]
    body += ["## Use", "", "```python"]
    if task.auto_class is not None:
        auto_class = task.auto_class.__name__
        if task.processor == "tokenizer":
            # The tokenizer reads the model's config first, which names remote code: without the flag, transformers
            # stops to ask "Do you wish to run the custom code?" where hfdl is not installed.
            body += [
                f"from transformers import AutoTokenizer, {auto_class}",
                "",
                f'tokenizer = AutoTokenizer.from_pretrained("{model_name}", trust_remote_code=True)',
            ]
        else:
            body += [f"from transformers import {auto_class}", ""]
        body += [
            f'model = {auto_class}.from_pretrained("{model_name}", trust_remote_code=True)',
            "```",
            "",
            "The modeling code ships with the weights (remote code), so hfdl need not be installed; after `import "
            "hfdl` hfdl's own classes are used and `trust_remote_code` is not needed.",
            "",
        ]
    else:
        body += [
            "import hfdl",
            "",
            f'model = hfdl.{type(model).__name__}.from_pretrained("{model_name}")',
            "```",
            "",
            f"transformers has no Auto class for {task.task}, so this head loads through hfdl (`pip install hfdl`), "
            "not as remote code.",
            "",
        ]
    if eval_results:
        body += [f"## Evaluation on `{eval_dataset}` ({data.get('eval_split', 'test')} split)", ""]
        body += ["| metric | value |", "|---|---|"]
        body += [f"| {metric} | {float(value):.4f} |" for metric, value in eval_results.items()]
        body += [""]
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(body))


def _check_publishable(model: object) -> None:
    """Refuse what is not a whole hfdl model, saying what to publish instead."""
    if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
        raise ValueError(
            "save_for_hub/push_to_hub publish a whole model, and this is a peft model with adapters: merge them "
            "first (model.merge_and_unload()), or publish the adapter alone with model.save_pretrained(dir) / "
            "model.push_to_hub(repo_id)."
        )


def _write_folder(model: PreTrainedModel, directory: Path, processor: Any, card_data: dict[str, Any] | None) -> None:
    model.save_pretrained(directory)
    if processor is not None:
        processor.save_pretrained(directory)
    model_card(model, card_data).save(directory / "README.md")


def save_for_hub(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    processor: Any = None,
    card_data: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (safetensors, config, remote code), its ``processor`` and a model card, ready to upload.

    The folder is written beside ``save_directory`` first and swapped in whole, so an interrupted save never
    leaves half a model, and an existing folder of that name is replaced only once the new one is complete.

    Returns:
        The path of the saved folder.
    """
    _check_publishable(model)
    target = Path(save_directory)
    # The folder's name is what a Hub repo made from it would be called.
    card_data = {"model_name": target.resolve().name, **_check_card_data(card_data)}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    previous = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    try:
        _write_folder(model, staging, processor, card_data)
        if target.exists():
            os.replace(target, previous)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    return target


def push_to_hub(
    model: PreTrainedModel,
    repo_id: str,
    processor: Any = None,
    card_data: dict[str, Any] | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload hfdl model",
) -> str:
    """Create (or reuse) the Hub repo ``repo_id`` and upload what :func:`save_for_hub` writes, in one commit.

    The card's ``model_name`` defaults to ``repo_id``, so its "Use" snippet is the line that loads the repo.

    Returns:
        The URL of the commit.
    """
    from huggingface_hub import HfApi

    _check_publishable(model)
    card_data = {"model_name": repo_id, **_check_card_data(card_data)}
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as directory:
        folder = save_for_hub(model, Path(directory) / "model", processor=processor, card_data=card_data)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
    return str(getattr(commit, "commit_url", commit))
