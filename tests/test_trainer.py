"""hfdl models train with the stock ``transformers.Trainer`` on data from ``hfdl.data``: no recipe needed."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("accelerate")  # Trainer needs it
pytest.importorskip("datasets")
pytest.importorskip("sklearn")

from transformers import Trainer, TrainingArguments  # noqa: E402

from hfdl.data import load_image_classification_dataset, preprocess_for_model  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402


def compute_accuracy(eval_prediction) -> dict[str, float]:
    logits, labels = eval_prediction
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


@pytest.mark.parametrize("preset", ["mlp-digits", "lenet5-modern"])
def test_trainer_trains_and_evaluates(tmp_path, preset):
    spec, preset = resolve_preset(preset)
    splits = load_image_classification_dataset("digits", max_train_samples=640, max_eval_samples=200)
    names = splits["train"].features["label"].names
    config = spec.make_config(preset, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    # pixel_values + labels: the names of the model's forward arguments, so the default collator feeds them as is.
    processed = preprocess_for_model(splits, spec.make_image_processor(config))
    model = spec.task("image-classification").model_class(config)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=40,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=100,
        learning_rate=3e-3,
        eval_strategy="steps",
        eval_steps=20,
        logging_steps=5,
        save_strategy="no",
        use_cpu=True,
        report_to="none",
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=processed["train"],
        eval_dataset=processed["test"],
        compute_metrics=compute_accuracy,
    )
    trainer.train()

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    evals = [entry for entry in trainer.state.log_history if "eval_accuracy" in entry]
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0], losses
    assert [entry["step"] for entry in evals] == [20, 40]
    assert evals[-1]["eval_accuracy"] > 0.6
    assert trainer.state.global_step == 40
