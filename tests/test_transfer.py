"""hfdl.transfer and recipes/transfer.py: the three modes train what they say and leave the rest bit for bit, LoRA
adapters and merged weights load back with equal outputs, layer decay and gradual unfreezing follow their rules
(across a resume too), 2-process DDP shards the data, trackers write locally, bad input fails clearly.

Run as a script (``accelerate launch ... tests/test_transfer.py --record DIR -- RECIPE ARGS``) it is the DDP test's
launcher: it wraps the recipe from outside to record each rank's training rows and results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import hfdl  # noqa: E402, F401  (registers the Auto classes)
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.registry import create_model  # noqa: E402
from hfdl.transfer import (  # noqa: E402
    GradualUnfreezing,
    apply_mode,
    keep_statistics,
    layer_groups,
    optimizer_parameter_groups,
    resolve_trackers,
    scale_learning_rate,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "recipes" / "accelerate_configs"
RT_POLARITY = ROOT.parent / "shared" / "data" / "rt-polarity"
SMALL_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
#: A quick image run: 256 digits for training, 120 for evaluation, 8 steps an epoch.
IMAGE_ARGS = ["--dataset", "digits", "--max_train_samples", "256", "--max_eval_samples", "120", "--batch_size", "32"]
IMAGE_ARGS += ["--logging_steps", "2", "--warmup_steps", "0", "--lr_scheduler", "constant"]


def run_recipe(argv: list[str]) -> dict:
    from hfdl.recipes import transfer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return transfer.main(argv)
    finally:
        torch.set_num_threads(threads)


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def pretrained_mlp(tmp_path_factory) -> Path:
    """A saved hfdl MLP on 8x8 digits (random weights, a 3-class head): what a transfer starts from."""
    folder = tmp_path_factory.mktemp("pretrained") / "mlp"
    torch.manual_seed(0)
    model = create_model("mlp-digits", hidden_sizes=[32, 16], num_labels=3)
    from hfdl.registry import get_architecture

    save_for_hub(model, folder, processor=get_architecture("mlp").make_image_processor(model.config))
    return folder


@pytest.fixture(scope="module")
def image_runs(pretrained_mlp, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The three modes on digits from the saved MLP, 2 epochs each."""
    runs = {}
    for mode, extra in (
        ("feature-extraction", ["--learning_rate", "1e-2", "--gradient_accumulation_steps", "2", "--scale_lr",
                                "--report_to", "tensorboard"]),
        ("full", ["--learning_rate", "3e-3", "--report_to", "none"]),
        ("lora", ["--learning_rate", "1e-2", "--merge_lora", "--lora_r", "4", "--report_to", "none"]),
    ):  # fmt: skip
        output_dir = tmp_path_factory.mktemp("runs") / mode
        argv = ["--model", str(pretrained_mlp), "--mode", mode, "--num_epochs", "2", "--output_dir", str(output_dir)]
        runs[mode] = output_dir, run_recipe(argv + IMAGE_ARGS + extra)
    return runs


def losses_fall(output_dir: Path) -> None:
    losses = [entry["loss"] for entry in read_log(output_dir) if "loss" in entry]
    assert len(losses) >= 3 and losses[-1] < 0.9 * losses[0], losses


# --------------------------------------------------------------------------------------------------------------
# Layer groups, layer decay, gradual unfreezing
# --------------------------------------------------------------------------------------------------------------


def test_layer_groups_follow_the_architectures_blocks():
    bert = create_model("bert", task="text-classification", vocab_size=50, **SMALL_BERT)
    groups = layer_groups(bert)
    assert [(g.name, g.kind) for g in groups] == [
        ("embeddings", "embeddings"), ("layers.0", "block"), ("layers.1", "block"), ("top", "top")
    ]  # fmt: skip
    assert all(name.startswith("bert.embeddings.") for name in groups[0].parameter_names)
    assert {"bert.pooler.dense.weight", "classifier.weight"} <= set(groups[-1].parameter_names)  # BEiT: top
    all_names = [name for group in groups for name in group.parameter_names]
    assert sorted(all_names) == sorted(name for name, _ in bert.named_parameters())  # each parameter once

    resnet = create_model("resnet18-small")
    names = [g.name for g in layer_groups(resnet)]
    assert names == ["embeddings", "stages.0", "stages.1", "stages.2", "stages.3", "top"]  # the stem is below
    assert [g.name for g in layer_groups(create_model("lenet5"))] == ["stage1", "stage2", "c5", "f6", "top"]
    # peft's injected layers keep the hfdl names: the same groups, LoRA factors inside the blocks.
    lora = apply_mode(create_model("bert", task="text-classification", vocab_size=50, **SMALL_BERT), "lora")
    lora_groups = layer_groups(lora)
    assert [g.name for g in lora_groups] == [g.name for g in groups]
    assert any("lora_A" in name for name in lora_groups[1].parameter_names)
    with pytest.raises(ValueError, match="stack='blocks' is not a numbered container"):
        layer_groups(bert, stack="blocks")


def test_layer_decay_gives_each_group_its_rate():
    model = create_model("resnet18-small")
    param_groups = optimizer_parameter_groups(model, 1e-3, weight_decay=0.05, layer_decay=0.5)
    rates = {group["name"].split("/")[0]: group["lr"] for group in param_groups}
    # 4 blocks: stage i at 0.5 ** (4 - i), the stem 0.5 ** 5, the head the rate itself.
    expected = {"embeddings": 1e-3 / 32, "stages.0": 1e-3 / 16, "stages.1": 1e-3 / 8, "stages.2": 1e-3 / 4}
    expected.update({"stages.3": 1e-3 / 2, "top": 1e-3})
    assert rates == pytest.approx(expected)
    for group in param_groups:  # weight decay on kernels only
        assert group["weight_decay"] == (0.05 if group["name"].endswith("/decay") else 0.0)
        if group["name"].endswith("/no_decay"):
            assert all(p.ndim == 1 for p in group["params"])
    assert sum(len(g["params"]) for g in param_groups) == len(list(model.parameters()))
    # The optimizer and its schedule keep the ratios.
    optimizer = torch.optim.AdamW(param_groups)
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in param_groups]
    # Feature extraction: only the head's group is left.
    frozen = apply_mode(create_model("resnet18-small"), "feature-extraction")
    assert [g["name"] for g in optimizer_parameter_groups(frozen, 1e-3, 0.05, 0.5)] == ["top/decay", "top/no_decay"]
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        optimizer_parameter_groups(model, 1e-3, layer_decay=1.5)
    assert scale_learning_rate(1e-3, 32, 2, 4) == pytest.approx(8e-3)
    assert scale_learning_rate(1e-3, 32, 2, 1, reference_batch=256) == pytest.approx(2.5e-4)


def test_a_frozen_body_keeps_its_batch_norm_statistics():
    model = apply_mode(create_model("resnet20-cifar", num_channels=1, image_size=8), "feature-extraction")
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model.train()
    keep_statistics(model)
    model(pixel_values=torch.randn(4, 1, 8, 8)).logits.sum().backward()
    after = model.state_dict()
    assert all(torch.equal(after[name], tensor) for name, tensor in before.items())  # running means too
    assert all(p.grad is None for name, p in model.named_parameters() if name.startswith("resnet."))
    assert model.classifier.weight.grad is not None
    model.train()  # without keep_statistics, train mode would move them
    model(pixel_values=torch.randn(4, 1, 8, 8))
    assert not torch.equal(model.state_dict()["resnet.stem.layers.0.normalization.running_mean"],
                           before["resnet.stem.layers.0.normalization.running_mean"])  # fmt: skip


def test_gradual_unfreezing_schedule_and_both_methods_give_the_same_updates():
    def make():
        torch.manual_seed(0)
        return create_model("mlp-digits", hidden_sizes=[16, 8], num_labels=3)

    model = make()
    schedule = GradualUnfreezing(model, interval=2)
    assert [schedule.num_unfrozen(step) for step in range(7)] == [1, 1, 2, 2, 3, 3, 3]
    assert schedule.trainable_groups(0) == ["top"] and schedule.trainable_groups(2) == ["layers.1", "top"]
    schedule.apply(2)
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True, True, True]

    inputs = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    trained = {}
    for method in ("requires_grad", "mask"):
        model = make()
        initial = {name: p.detach().clone() for name, p in model.named_parameters()}
        schedule = GradualUnfreezing(model, interval=2, method=method)
        optimizer = torch.optim.AdamW(optimizer_parameter_groups(model, 1e-2, 0.01))
        for step in range(4):  # top only for 2 steps, then layers.1 as well
            schedule.apply(step)
            model(pixel_values=inputs, labels=labels).loss.backward()
            schedule.mask_gradients()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        after = dict(model.named_parameters())
        assert torch.equal(after["mlp.layers.0.linear.weight"], initial["mlp.layers.0.linear.weight"])  # still frozen
        assert not torch.equal(after["mlp.layers.1.linear.weight"], initial["mlp.layers.1.linear.weight"])
        trained[method] = {name: p.detach() for name, p in after.items()}
    for name, tensor in trained["requires_grad"].items():
        torch.testing.assert_close(trained["mask"][name], tensor, rtol=0, atol=1e-7)


# --------------------------------------------------------------------------------------------------------------
# The recipe: the three modes on images
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_feature_extraction_trains_the_head_only(image_runs, pretrained_mlp):
    output_dir, results = image_runs["feature-extraction"]
    losses_fall(output_dir)
    head = 16 * 10 + 10  # the new 10-class head on the 16-wide body
    assert results["trainable_parameters"] == head
    assert results["total_parameters"] == 64 * 32 + 32 + 32 * 16 + 16 + head
    original, trained = state_dict(pretrained_mlp), state_dict(output_dir / "best")
    for name, tensor in trained.items():
        if name.startswith("mlp."):
            assert torch.equal(tensor, original[name]), name  # the body, bit for bit
    assert trained["classifier.weight"].shape == (10, 16)
    # --scale_lr with 2 accumulation steps on 1 process: the rate doubles, the effective batch is 64.
    assert results["learning_rate"] == pytest.approx(2e-2) and results["effective_batch_size"] == 64
    assert results["train_steps"] == 2 * 4  # 8 batches an epoch, 2 per step
    for key in ("eval_accuracy", "eval_f1_macro", "train_seconds_per_epoch", "peak_memory_mb"):
        assert results[key] > 0
    assert json.loads((output_dir / "all_results.json").read_text())["eval_accuracy"] == results["eval_accuracy"]
    assert (output_dir / "learning_curves.png").stat().st_size > 0
    assert list((output_dir / "runs").rglob("events.out.tfevents.*"))  # --report_to tensorboard


@pytest.mark.slow
def test_full_fine_tuning_trains_everything(image_runs, pretrained_mlp):
    output_dir, results = image_runs["full"]
    losses_fall(output_dir)
    assert results["trainable_parameters"] == results["total_parameters"] == 64 * 32 + 32 + 32 * 16 + 16 + 170
    original, trained = state_dict(pretrained_mlp), state_dict(output_dir / "best")
    assert not torch.equal(trained["mlp.layers.0.linear.weight"], original["mlp.layers.0.linear.weight"])
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(output_dir / "best")
    assert model.config.id2label == {i: str(i) for i in range(10)}


@pytest.mark.slow
def test_lora_trains_adapters_and_head_and_reloads_with_equal_outputs(image_runs, pretrained_mlp):
    from peft import PeftModel
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    output_dir, results = image_runs["lora"]
    losses_fall(output_dir)
    lora = 4 * (64 + 32) + 4 * (32 + 16)  # r x (in + out) for each of the two Linear layers
    assert results["trainable_parameters"] == lora + 170
    assert results["total_parameters"] == 64 * 32 + 32 + 32 * 16 + 16 + lora + 2 * 170  # original head + trained copy
    adapter_config = json.loads((output_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str((output_dir / "base").resolve())
    assert sorted(adapter_config["target_modules"]) == ["mlp.layers.0.linear", "mlp.layers.1.linear"]
    assert adapter_config["modules_to_save"] == ["classifier"]

    base = AutoModelForImageClassification.from_pretrained(output_dir / "base").eval()
    original = state_dict(pretrained_mlp)
    for name, tensor in base.state_dict().items():  # base/ is the pretrained body with the new head
        if name.startswith("mlp."):
            assert torch.equal(tensor, original[name]), name
    pixels = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base_logits = base(pixel_values=pixels).logits
    adapted = PeftModel.from_pretrained(base, output_dir / "adapter").eval()
    merged = AutoModelForImageClassification.from_pretrained(output_dir / "merged").eval()
    with torch.no_grad():
        adapter_logits = adapted(pixel_values=pixels).logits
        merged_logits = merged(pixel_values=pixels).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=0, atol=1e-5)
    assert (adapter_logits - base_logits).abs().max() > 1e-2  # the adapter and the head did change the outputs
    # The frozen base weights inside the adapter model are the pretrained ones, bit for bit.
    layer = adapted.base_model.model.mlp.layers[0].linear
    assert torch.equal(layer.base_layer.weight, original["mlp.layers.0.linear.weight"])

    # The reloaded adapter scores what the run reported for its best epoch, on the same test split.
    from hfdl.data import load_image_classification_dataset, preprocess_for_model
    from hfdl.training import predict_classes

    processor = AutoImageProcessor.from_pretrained(output_dir / "adapter")
    splits = load_image_classification_dataset("digits", test_size=0.2, seed=0, max_eval_samples=120)
    test = preprocess_for_model(splits, processor)["test"][:]
    with torch.no_grad():
        predictions = predict_classes(adapted(pixel_values=test["pixel_values"]).logits)
    accuracy = (predictions == test["labels"]).sum().item() / len(predictions)
    assert accuracy == pytest.approx(results["best_eval_accuracy"], abs=1e-9)


@pytest.mark.slow
def test_gradual_unfreezing_resumes_on_schedule(pretrained_mlp, tmp_path):
    """3 groups unfrozen every 4 steps (8 steps an epoch); a run resumed after epoch 1 logs the same schedule."""
    argv = ["--model", str(pretrained_mlp), "--mode", "full", "--num_epochs", "2", "--gradual_unfreezing"]
    argv += ["--unfreeze_every", "4", "--checkpointing_steps", "epoch", "--checkpoints_total_limit", "3"]
    argv += [
        *IMAGE_ARGS,
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--layer_decay",
        "0.5",
        "--learning_rate",
        "1e-2",
    ]
    first = tmp_path / "first"
    results = run_recipe([*argv, "--output_dir", str(first)])
    log = [entry for entry in read_log(first) if "loss" in entry]
    assert [entry["unfrozen_groups"] for entry in log] == [1] * 4 + [2] * 4 + [3] * 8
    assert log[0]["learning_rate"] == pytest.approx(1e-2)  # the head's rate; lower groups at 0.5 and 0.25 of it

    resumed = tmp_path / "resumed"
    shutil.copytree(first / "checkpoints", resumed / "checkpoints")
    shutil.rmtree(resumed / "checkpoints" / "checkpoint_1")  # keep the checkpoint after epoch 1 only
    again = run_recipe([*argv, "--output_dir", str(resumed), "--resume_from_checkpoint", "latest"])
    resumed_log = [entry for entry in read_log(resumed) if "loss" in entry]
    assert [entry["unfrozen_groups"] for entry in resumed_log] == [entry["unfrozen_groups"] for entry in log]
    assert [e["loss"] for e in resumed_log] == pytest.approx([e["loss"] for e in log], rel=1e-5)
    assert again["eval_accuracy"] == results["eval_accuracy"]


# --------------------------------------------------------------------------------------------------------------
# Text: a tiny BERT on MR sentences, LoRA with an adapter and merged weights
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not RT_POLARITY.is_dir(), reason="../shared/data/rt-polarity is missing")
def test_text_full_then_lora_on_a_small_bert(tmp_path):
    """A random tiny BERT fine-tuned in full on 64 MR sentences, then transferred with LoRA from that checkpoint
    (a random frozen body gives LoRA nothing to work with: every sentence looks the same to the head)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hfdl.text_data import load_text_classification_dataset
    from hfdl.tokenization import train_tokenizer

    texts = list(load_text_classification_dataset(RT_POLARITY, max_train_samples=400)["train"]["text"])
    tokenizer = train_tokenizer(texts, kind="wordpiece", vocab_size=300, lowercase=True)
    torch.manual_seed(0)
    bert = create_model("bert", task="feature-extraction", vocab_size=len(tokenizer), **SMALL_BERT)
    save_for_hub(bert, tmp_path / "bert", processor=tokenizer)
    common = ["--dataset", str(RT_POLARITY), "--max_train_samples", "64", "--max_eval_samples", "64"]
    common += ["--num_epochs", "10", "--batch_size", "16", "--logging_steps", "4", "--report_to", "none"]
    common += ["--max_seq_length", "32", "--lr_scheduler", "constant", "--warmup_steps", "0"]

    full_dir = tmp_path / "full"
    full = run_recipe(["--model", str(tmp_path / "bert"), "--mode", "full", "--learning_rate", "3e-3", *common,
                       "--output_dir", str(full_dir)])  # fmt: skip
    losses_fall(full_dir)
    assert full["task"] == "text-classification"
    assert full["trainable_parameters"] == full["total_parameters"] == bert.num_parameters() + 32 * 2 + 2

    output_dir = tmp_path / "lora"
    results = run_recipe(["--model", str(full_dir / "best"), "--mode", "lora", "--merge_lora", "--learning_rate",
                          "1e-2", "--layer_decay", "0.8", *common, "--output_dir", str(output_dir)])  # fmt: skip
    losses_fall(output_dir)
    base = AutoModelForSequenceClassification.from_pretrained(output_dir / "base").eval()
    base_weights = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    adapted = PeftModel.from_pretrained(base, output_dir / "adapter").eval()  # injects LoRA into base
    lora_parameters = sum(p.numel() for name, p in adapted.named_parameters() if "lora_" in name)
    assert lora_parameters > 0 and results["trainable_parameters"] == lora_parameters + 32 * 2 + 2

    tokenizer = AutoTokenizer.from_pretrained(output_dir / "adapter")
    batch = tokenizer(["a gripping , funny film", "dull and far too long"], padding=True, return_tensors="pt")
    merged = AutoModelForSequenceClassification.from_pretrained(output_dir / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, adapted(**batch).logits, rtol=0, atol=1e-5)
    assert merged.config.id2label == {0: "neg", 1: "pos"}
    pretrained = state_dict(full_dir / "best")
    for name, tensor in base_weights.items():  # the body the adapter applies to is the fine-tuned one
        if name.startswith("bert."):
            assert torch.equal(tensor, pretrained[name]), name


# --------------------------------------------------------------------------------------------------------------
# Multi-process: 2 CPU processes, LoRA, launched with the shipped config
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_ddp_lora_gives_both_ranks_the_same_metrics_on_disjoint_shards(pretrained_mlp, tmp_path):
    record = tmp_path / "record"
    argv = ["--model", str(pretrained_mlp), "--mode", "lora", "--num_epochs", "1", *IMAGE_ARGS, "--batch_size", "16"]
    argv += ["--output_dir", str(tmp_path / "ddp"), "--report_to", "none", "--learning_rate", "1e-2", "--cpu"]
    argv += ["--gradual_unfreezing", "--unfreeze_every", "4"]  # under DDP frozen groups drop their gradients
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_2proc.yaml")]
    command += ["--main_process_port", str(_free_port()), __file__, "--record", str(record), "--", *argv]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((record / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    fetched = [set(r["fetched"]) for r in ranks]
    assert not fetched[0] & fetched[1] and len(fetched[0] | fetched[1]) == 256  # disjoint shards, all rows seen
    metrics = [{k: v for k, v in r["results"].items() if "seconds" not in k and "memory" not in k} for r in ranks]
    assert metrics[0] == metrics[1] and metrics[0]["eval_samples"] == 120  # gathered: the whole test split
    assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"]  # DDP kept the ranks' weights identical
    assert metrics[0]["effective_batch_size"] == 32 and metrics[0]["train_steps"] == 8
    log = [entry for entry in read_log(tmp_path / "ddp") if "loss" in entry]
    assert [entry["unfrozen_groups"] for entry in log] == [1, 1, 2, 2]  # logged every 2 steps


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------------------
# Configs, trackers, bad input
# --------------------------------------------------------------------------------------------------------------


def test_accelerate_configs_load_with_accelerates_own_classes():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    expected = {
        "single_gpu.yaml": (DistributedType.NO, 1, 1, "bf16"),
        "multi_gpu_8.yaml": (DistributedType.MULTI_GPU, 8, 1, "bf16"),
        "fsdp_8.yaml": (DistributedType.FSDP, 8, 1, "bf16"),
        "multi_node.yaml": (DistributedType.MULTI_GPU, 16, 2, "bf16"),
        "cpu_2proc.yaml": (DistributedType.MULTI_GPU, 2, 1, "no"),
    }
    for name, (kind, processes, machines, precision) in expected.items():
        config = load_config_from_file(str(CONFIGS / name))
        assert (config.distributed_type, config.num_processes, config.num_machines) == (kind, processes, machines)
        assert str(config.mixed_precision) == precision, name
    fsdp = load_config_from_file(str(CONFIGS / "fsdp_8.yaml")).fsdp_config
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] == "TransformerBlock"
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    # The class FSDP wraps is what hfdl's transformers stack.
    bert = create_model("bert", task="text-classification", vocab_size=50, **SMALL_BERT)
    assert {type(layer).__name__ for layer in bert.bert.layers} == {"TransformerBlock"}
    readme = (CONFIGS / "README.md").read_text()
    lines = readme.splitlines()
    for name in expected:  # one exact command line per config
        launch = f"accelerate launch --config_file recipes/accelerate_configs/{name} "
        assert any(line.startswith(launch) and " recipes/transfer.py --model " in line for line in lines), name


def test_trackers_are_checked_and_set_up_offline(tmp_path, monkeypatch):
    assert resolve_trackers("none", tmp_path) == []
    assert resolve_trackers("tensorboard", tmp_path) == ["tensorboard"]
    assert "tensorboard" in resolve_trackers("all", tmp_path)
    with pytest.raises(ValueError, match=r"Unknown tracker 'tensorbord'.*tensorboard, mlflow, trackio, wandb"):
        resolve_trackers("tensorbord", tmp_path)
    from accelerate.utils import is_mlflow_available, is_wandb_available

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for name, available in (("mlflow", is_mlflow_available()), ("wandb", is_wandb_available())):
        if available:
            assert resolve_trackers(name, tmp_path) == [name]
        else:
            with pytest.raises(ImportError, match=f"pip install {name}"):
                resolve_trackers(f"tensorboard,{name}", tmp_path)
    if is_mlflow_available():
        assert os.environ["MLFLOW_TRACKING_URI"] == (tmp_path / "mlruns").resolve().as_uri()
    if is_wandb_available():
        assert os.environ["WANDB_MODE"] == "offline"


@pytest.mark.slow
def test_mlflow_writes_a_local_run(pretrained_mlp, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    output_dir = tmp_path / "run"
    argv = ["--model", str(pretrained_mlp), "--mode", "feature-extraction", "--max_steps", "2", *IMAGE_ARGS]
    run_recipe([*argv, "--output_dir", str(output_dir), "--report_to", "mlflow"])
    assert list((output_dir / "mlruns").rglob("meta.yaml"))


class _NormOnlyBody(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)


def test_bad_input_fails_clearly(pretrained_mlp, tmp_path):
    from transformers import PretrainedConfig, PreTrainedModel

    from hfdl.recipes import transfer

    with pytest.raises(SystemExit):
        transfer.parse_args(["--model", "mlp", "--dataset", "digits", "--mode", "finetune"])
    with pytest.raises(SystemExit):
        transfer.parse_args(["--model", "mlp", "--dataset", "digits", "--merge_lora"])  # needs --mode lora
    with pytest.raises(SystemExit):
        transfer.parse_args(["--model", "mlp", "--dataset", "digits", "--mode", "feature-extraction",
                             "--gradual_unfreezing"])  # fmt: skip
    with pytest.raises(ValueError, match="Unknown transfer mode 'finetune'; allowed: feature-extraction, full, lora"):
        apply_mode(create_model("mlp-digits"), "finetune")

    class Model(PreTrainedModel):  # a body without a Linear/Conv layer: LoRA has nothing to adapt
        config_class = PretrainedConfig
        base_model_prefix = "body"

        def __init__(self, config):
            super().__init__(config)
            self.body, self.classifier = _NormOnlyBody(), nn.Linear(4, 2)
            self.post_init()

    with pytest.raises(ValueError, match="has no layer LoRA can adapt"):
        apply_mode(Model(PretrainedConfig()), "lora")

    base = ["--dataset", "digits", "--output_dir", str(tmp_path / "bad"), "--report_to", "none"]
    with pytest.raises(ValueError, match=r"--head keep: the model's head has 3 classes \['LABEL_0'.* the data has 10"):
        transfer.main(["--model", str(pretrained_mlp), "--head", "keep", *base])
    with pytest.raises(ValueError, match="--head keep needs a saved model"):
        transfer.main(["--model", "mlp-digits", "--head", "keep", *base])
    with pytest.raises(ValueError, match="neither an hfdl preset.*nor a loadable folder"):
        transfer.main(["--model", str(tmp_path / "missing"), *base])
    with pytest.raises(ValueError, match="has no classification head"):
        transfer.main(["--model", "gpt-char", *base])
    with pytest.raises(ValueError, match="Unknown tracker 'tensorbord'"):
        transfer.main(["--model", "mlp-digits", *base[:-2], "--report_to", "tensorbord"])


# --------------------------------------------------------------------------------------------------------------
# The DDP test's launcher (this file run as a script)
# --------------------------------------------------------------------------------------------------------------


def _launch() -> None:
    """Wrap the recipe from outside: record the train rows each rank fetches, its results and its trained weights."""
    import argparse
    import hashlib

    from accelerate import Accelerator, PartialState

    from hfdl.data import TensorDictDataset
    from hfdl.recipes import train_image_classifier as image_recipe
    from hfdl.recipes import transfer

    parser = argparse.ArgumentParser()
    parser.add_argument("--record", type=Path, required=True)
    argv = sys.argv[1:]
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    fetched, models = [], []

    class Recording(TensorDictDataset):
        def __getitem__(self, index):
            fetched.append(int(index))
            return super().__getitem__(index)

    get_dataloaders = image_recipe.get_dataloaders

    def recording_get_dataloaders(*a, **k):
        train, evaluation, names = get_dataloaders(*a, **k)
        train.dataset.__class__ = Recording
        return train, evaluation, names

    prepare = Accelerator.prepare

    def recording_prepare(self, *a, **k):
        prepared = prepare(self, *a, **k)
        models.extend(obj for obj in prepared if isinstance(obj, nn.Module))
        return prepared

    image_recipe.get_dataloaders = recording_get_dataloaders
    Accelerator.prepare = recording_prepare
    results = transfer.main(argv[split + 1 :])
    digest = hashlib.sha256()
    for name, parameter in sorted(getattr(models[0], "module", models[0]).named_parameters()):
        if parameter.requires_grad:
            digest.update(name.encode() + parameter.detach().numpy().tobytes())
    state = PartialState()
    args.record.mkdir(parents=True, exist_ok=True)
    report = {"num_processes": state.num_processes, "fetched": fetched, "results": results,
              "trainable_sha256": digest.hexdigest()}  # fmt: skip
    (args.record / f"rank{state.process_index}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    _launch()
