"""Model cards: the README.md that ``save_pretrained`` writes next to the weights, with Hub YAML metadata."""

from __future__ import annotations

import json
import os


def render_model_card(
    model_name: str,
    model_type: str,
    architecture: str,
    pipeline_tag: str,
    num_parameters: int,
    datasets: list[str] | None = None,
    eval_results: dict[str, float] | None = None,
    eval_dataset: str | None = None,
    description: str = "",
) -> str:
    """Render a model card whose YAML block the Hub reads (JSON scalars are valid YAML, and safe to quote)."""
    q = json.dumps
    lines = ["---", "library_name: transformers", f"pipeline_tag: {q(pipeline_tag)}", "tags:"]
    lines += [f"- {q(tag)}" for tag in ("hfdl", model_type, "custom_code", pipeline_tag)]
    if datasets:
        lines += ["datasets:"] + [f"- {q(name)}" for name in datasets]
    if eval_results:
        lines += ["metrics:"] + [f"- {q(metric)}" for metric in eval_results]
        dataset_name = eval_dataset or (datasets[0] if datasets else "unknown")
        lines += [
            "model-index:",
            f"- name: {q(model_name)}",
            "  results:",
            "  - task:",
            f"      type: {q(pipeline_tag)}",
            "    dataset:",
            f"      name: {q(dataset_name)}",
            f"      type: {q(dataset_name)}",
            "      split: test",
            "    metrics:",
        ]
        for metric, value in eval_results.items():
            lines += [f"    - type: {q(metric)}", f"      value: {q(float(value))}"]
    lines += ["---", "", f"# {model_name}", ""]
    lines += [
        f"A `{architecture}` ({model_type}, {num_parameters:,} parameters) from "
        "[hfdl](https://github.com/hfdl/hfdl), the *Deep Learning Mastery* course library.",
        "",
    ]
    if description:
        lines += [description, ""]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModel",
        "",
        f'model = AutoModel.from_pretrained("{model_name}", trust_remote_code=True)',
        "```",
        "",
        "The modeling code ships with the weights (remote code), so `hfdl` need not be installed; with "
        "`import hfdl` the installed classes are used instead.",
        "",
    ]
    if eval_results:
        lines += ["## Evaluation", "", f"On the test split of `{eval_dataset or 'the evaluation set'}`:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {metric} | {float(value):.4f} |" for metric, value in eval_results.items()]
        lines += [""]
    return "\n".join(lines)


def write_model_card(save_directory: str | os.PathLike, card: str) -> None:
    """Write ``card`` to ``save_directory/README.md`` through a temporary file, so a crash leaves no half card."""
    path = os.path.join(os.fspath(save_directory), "README.md")
    tmp_path = path + ".tmp"
    with open(tmp_path, "w", encoding="utf-8") as handle:
        handle.write(card)
    os.replace(tmp_path, path)


class ModelCardMixin:
    """Makes ``save_pretrained`` also write a model card (README.md with Hub metadata).

    ``model_card_data`` may carry ``model_name`` (default: the folder name), ``datasets`` (Hub ids), ``eval_results`` (metric -> value), ``eval_dataset`` and
    ``description``; recipes pass their test metrics so the card reports them.
    """

    pipeline_tag = "feature-extraction"

    def save_pretrained(
        self, save_directory: str | os.PathLike, *args, model_card_data: dict | None = None, **kwargs
    ) -> object:
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            data = dict(model_card_data or {})
            card = render_model_card(
                model_name=data.get("model_name") or os.path.basename(os.path.abspath(os.fspath(save_directory))),
                model_type=self.config.model_type,
                architecture=type(self).__name__,
                pipeline_tag=self.pipeline_tag,
                num_parameters=sum(parameter.numel() for parameter in self.parameters()),
                datasets=data.get("datasets"),
                eval_results=data.get("eval_results"),
                eval_dataset=data.get("eval_dataset"),
                description=data.get("description", ""),
            )
            write_model_card(save_directory, card)
        return result
