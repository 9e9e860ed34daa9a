"""hfdl.text_data and the text recipes (causal LM, masked LM, text classifier): they load the real data files, train,
log, save Hub folders that pipelines read, resume bit for bit, and shard the data under 2-process DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

pytest.importorskip("accelerate")
datasets = pytest.importorskip("datasets")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)

import hfdl  # noqa: E402, F401  (registers the Auto classes)
from hfdl.recipes import train_causal_lm as clm  # noqa: E402
from hfdl.recipes import train_mlm as mlm  # noqa: E402
from hfdl.recipes import train_text_classifier as tc  # noqa: E402
from hfdl.text_data import (  # noqa: E402
    corpus_card_name,
    load_text_classification_dataset,
    load_text_corpus,
    split_text,
)
from hfdl.training import find_last_checkpoint  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RT_POLARITY = SHARED_DATA / "rt-polarity"
SENTENCES = SHARED_DATA / "sentiment-labelled-sentences"
SHAKESPEARE = SHARED_DATA / "tinyshakespeare" / "input.txt"
needs_data = pytest.mark.skipif(
    not (RT_POLARITY.is_dir() and SENTENCES.is_dir() and SHAKESPEARE.is_file()), reason="../shared/data is missing"
)
pytestmark = needs_data

#: Timings differ between runs; everything else a resumed run returns must equal the uninterrupted run's.
TIMINGS = ("train_seconds", "ms_per_step", "wall_seconds", "train_seconds_per_epoch", "train_epoch_seconds")
#: A small GPT and BERT: the recipes' code paths at a fraction of the presets' cost.
SMALL_GPT = '{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}'
SMALL_BERT = '{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}'


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: the runs compared with each other sum floats alike, and a shared 2-core machine is not oversubscribed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def without_timings(results: dict) -> dict:
    return {key: value for key, value in results.items() if key not in TIMINGS}


# --------------------------------------------------------------------------------------------------------------
# hfdl.text_data
# --------------------------------------------------------------------------------------------------------------


def test_rt_polarity_is_read_as_latin1_and_split_90_10_stratified():
    splits = load_text_classification_dataset(RT_POLARITY)
    train, test = splits["train"], splits["test"]
    texts = {name: list(split["text"]) for name, split in splits.items()}
    assert train.features["label"].names == test.features["label"].names == ["neg", "pos"]
    assert (len(train), len(test)) == (9595, 1067)
    # Stratified: each class keeps its half in both splits (5,331 of each in all).
    assert sorted([sum(test["label"]), len(test) - sum(test["label"])]) == [533, 534]
    assert sum(train["label"]) + sum(test["label"]) == 5331
    # The files are latin-1: "andré turpin" comes back as written, not as mojibake or an error.
    all_text = texts["train"] + texts["test"]
    assert any("andré turpin" in text for text in all_text)
    assert not any("\ufffd" in text for text in all_text)
    # The same split every time (seed 0), another one with another seed.
    assert list(load_text_classification_dataset(RT_POLARITY)["test"]["text"]) == texts["test"]
    assert list(load_text_classification_dataset(RT_POLARITY, seed=1)["test"]["text"]) != texts["test"]


def test_labelled_sentences_keep_sentences_with_unusual_line_breaks():
    splits = load_text_classification_dataset(SENTENCES, test_size=0.2)
    assert len(splits["train"]) + len(splits["test"]) == 3000  # 3 files of 1,000 (U+0085 inside some IMDb lines)
    assert splits["train"].features["label"].names == ["neg", "pos"]
    assert sum(splits["test"]["label"]) == 300  # balanced, stratified
    assert "The script is\x85was there a script?" in list(splits["train"]["text"]) + list(splits["test"]["text"])


def test_files_and_saved_datasets_are_normalised_to_text_and_label(tmp_path):
    rows = {"sentence": [f"row {i} {'good' if i % 3 else 'bad'}" for i in range(30)]}
    rows["labels"] = ["positive" if i % 3 else "negative" for i in range(30)]
    csv = tmp_path / "data.csv"
    datasets.Dataset.from_dict(rows).to_csv(csv)
    splits = load_text_classification_dataset(csv, test_size=0.2)
    assert splits["train"].column_names == ["text", "label"]
    assert splits["train"].features["label"].names == ["negative", "positive"]  # sorted string labels
    assert (len(splits["train"]), len(splits["test"])) == (24, 6)
    for row in splits["test"]:
        assert row["label"] == (1 if "good" in row["text"] else 0)

    # A saved DatasetDict keeps its own test split; other column names are named explicitly.
    saved = tmp_path / "saved"
    dataset = datasets.Dataset.from_dict({"body": ["a", "b", "c", "d"], "stars": [0, 1, 0, 1]})
    datasets.DatasetDict(train=dataset, test=dataset.select([0, 1])).save_to_disk(saved)
    with pytest.raises(ValueError, match=r"No text column .*\['body', 'stars'\].*text_column="):
        load_text_classification_dataset(saved)
    splits = load_text_classification_dataset(saved, text_column="body", label_column="stars")
    assert list(splits["test"]["text"]) == ["a", "b"] and list(splits["train"]["label"]) == [0, 1, 0, 1]

    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(10)))
    assert len(load_text_classification_dataset(jsonl, test_size=0.2)["test"]) == 2


@pytest.mark.parametrize(
    "source, match",
    [
        ("/nonexistent/folder", "does not exist"),
        (str(SHAKESPEARE), r"cannot read a \.txt file as labelled text"),
        (str(SHARED_DATA), "is a folder, but not one of"),
        ("", "must be an rt-polarity"),
    ],
)
def test_bad_classification_sources_fail_clearly(source, match):
    with pytest.raises(ValueError, match=match):
        load_text_classification_dataset(source)


def test_a_corpus_is_split_by_characters_first_90_percent_for_training(tmp_path):
    text = SHAKESPEARE.read_text(encoding="utf-8")
    corpus = load_text_corpus(SHAKESPEARE)
    assert corpus.train + corpus.validation == text
    assert len(corpus.train) == int(len(text) * 0.9) == 1003854  # nanoGPT's n = len(data); data[: int(n * 0.9)]
    assert split_text("abcdefghij", 0.2) == ("abcdefgh", "ij")
    assert corpus_card_name(SHAKESPEARE) == "tinyshakespeare" and corpus_card_name("owner/corpus") == "owner/corpus"

    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "b.txt").write_text("second " * 20)
    (folder / "a.txt").write_text("first " * 20)
    corpus = load_text_corpus(folder, val_fraction=0.5)
    assert corpus.train.startswith("first") and corpus.validation.endswith("second ")
    with pytest.raises(ValueError, match=r"\.csv file: a corpus is plain text"):
        (tmp_path / "x.csv").write_text("text\nhello\n")
        load_text_corpus(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="val_fraction"):
        load_text_corpus(SHAKESPEARE, val_fraction=1.0)


# --------------------------------------------------------------------------------------------------------------
# recipes/train_causal_lm.py
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """gpt-char, the default preset, for 40 steps on tiny-shakespeare: trained once, read by several tests."""
    output_dir = tmp_path_factory.mktemp("char") / "char-gpt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    argv = ["--dataset", str(SHAKESPEARE), "--max_steps", "40", "--batch_size", "8", "--eval_steps", "20"]
    argv += ["--eval_iters", "2", "--sample_tokens", "80", "--learning_rate", "3e-3", "--warmup_steps", "5"]
    argv += ["--logging_steps", "5", "--output_dir", str(output_dir), "--report_to", "none"]
    try:
        results = clm.main(argv)
    finally:
        torch.set_num_threads(threads)
    return output_dir, results


def test_causal_lm_trains_logs_samples_and_saves_a_pipeline_ready_model(char_run):
    output_dir, results = char_run
    log = read_log(output_dir)
    losses = [entry for entry in log if "loss" in entry]
    assert [entry["step"] for entry in losses] == list(range(5, 45, 5))
    assert losses[-1]["loss"] < 0.85 * losses[0]["loss"]  # from ~4.2 (65 characters) down
    evals = [entry for entry in log if "eval_loss" in entry]
    assert [entry["step"] for entry in evals] == [20, 40]
    assert evals[1]["eval_loss"] < evals[0]["eval_loss"] < 4.2
    assert results["eval_loss"] == evals[1]["eval_loss"] == results["best_eval_loss"]
    assert results["eval_perplexity"] == pytest.approx(torch.tensor(results["eval_loss"]).exp().item(), rel=1e-6)
    assert 0.0 < results["eval_accuracy"] < 1.0 and results["train_steps"] == 40
    assert results["train_tokens"] == 40 * 8 * 64 and results["num_parameters"] == 804_096
    assert json.loads((output_dir / "all_results.json").read_text()) == json.loads(json.dumps(results))
    assert (output_dir / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"

    # Samples: every --sample_steps (= --eval_steps), 80 new characters from "\n": longer than the 64-token
    # context, so generation slid over it. They are in the log, and the last one in the results.
    samples = [entry for entry in log if "sample" in entry]
    assert [entry["step"] for entry in samples] == [20, 40]
    assert all(len(entry["sample"]) == 81 and entry["sample"].startswith("\n") for entry in samples)
    assert results["sample"] == samples[-1]["sample"]

    # best/ is a Hub folder with its char tokenizer: Auto classes and pipeline("text-generation") read it.
    best = output_dir / "best"
    tokenizer = AutoTokenizer.from_pretrained(best)
    model = AutoModelForCausalLM.from_pretrained(best)
    assert len(tokenizer) == model.config.vocab_size == 65 and type(model).__name__ == "GPTForCausalLM"
    assert tokenizer.convert_ids_to_tokens([0, 1]) == ["\n", " "]  # nanoGPT's ids
    generator = pipeline("text-generation", model=str(best))
    text = generator("ROMEO:", max_new_tokens=20, do_sample=False)[0]["generated_text"]
    prompt = tokenizer("ROMEO:", return_tensors="pt")["input_ids"]
    expected = model.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert text == tokenizer.decode(expected[0]) and len(text) == 26
    assert "tinyshakespeare" in (best / "README.md").read_text()


def test_the_validation_loss_is_the_saved_models_loss_on_the_same_windows(char_run):
    """eval_loss is the mean over --eval_iters seeded batches of validation windows; the saved model gives it back."""
    output_dir, results = char_run
    model = AutoModelForCausalLM.from_pretrained(output_dir / "best").eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir / "best")
    args = clm.parse_args(["--dataset", str(SHAKESPEARE), "--eval_iters", "2", "--batch_size", "8"])
    data = {"validation": clm.encode(tokenizer, load_text_corpus(SHAKESPEARE).validation, "validation")}
    from accelerate import Accelerator

    metrics = clm.evaluate(model, data, Accelerator(cpu=True), args, block_size=64)
    assert metrics["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx(results["eval_accuracy"], rel=1e-5)


def test_causal_lm_fine_tunes_a_saved_model_with_its_own_tokenizer(char_run, tmp_path):
    best = char_run[0] / "best"
    before = AutoModelForCausalLM.from_pretrained(best)
    results = clm.main(
        ["--model", str(best), "--dataset", str(SHAKESPEARE), "--max_steps", "3", "--batch_size", "4"]
        + ["--eval_iters", "1", "--sample_steps", "0", "--output_dir", str(tmp_path), "--report_to", "none"]
    )  # fmt: skip
    # It started from the saved weights: its first eval is near the saved model's, far below an untrained model's.
    assert results["eval_loss"] < 3.6 and results["vocab_size"] == 65 and "sample" not in results
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "best")
    assert not torch.equal(before.lm_head.weight, after.lm_head.weight)
    assert (tmp_path / "best" / "tokenizer.json").read_text() == (best / "tokenizer.json").read_text()


def test_causal_lm_with_a_bpe_tokenizer(tmp_path):
    results = clm.main(
        ["--model", "gpt-mini", "--config_overrides", SMALL_GPT, "--tokenizer", "bpe", "--vocab_size", "300"]
        + ["--block_size", "32", "--dataset", str(SHAKESPEARE), "--max_steps", "4", "--batch_size", "4"]
        + ["--eval_iters", "1", "--sample_tokens", "40", "--temperature", "0", "--output_dir", str(tmp_path)]
        + ["--report_to", "none"]
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "best")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "best")
    assert len(tokenizer) == model.config.vocab_size == results["vocab_size"] == 300
    assert model.config.max_position_embeddings == 128 and results["block_size"] == 32
    # Byte-level BPE: any text round-trips, and the recorded sample decodes from 40 new tokens.
    assert tokenizer.decode(tokenizer("Ça, thou knave!")["input_ids"]) == "Ça, thou knave!"
    assert len(tokenizer(results["sample"])["input_ids"]) >= 30
    text = pipeline("text-generation", model=str(tmp_path / "best"))("KING", max_new_tokens=5)[0]["generated_text"]
    assert text.startswith("KING")


def test_causal_lm_resumes_bit_for_bit(tmp_path):
    """Windows are seeded by (seed, step, process), samples by (seed, step) off a forked generator, dropout draws
    from the checkpointed generator: a run resumed mid-way is the uninterrupted run, log and weights."""
    common = ["--model", "gpt-mini", "--config_overrides", SMALL_GPT, "--block_size", "32", "--max_steps", "12"]
    common += ["--dataset", str(SHAKESPEARE), "--batch_size", "4", "--eval_steps", "6", "--eval_iters", "1"]
    common += ["--sample_tokens", "20", "--logging_steps", "2", "--checkpointing_steps", "4", "--report_to", "none"]
    common += ["--gradient_accumulation_steps", "2", "--checkpoints_total_limit", "5"]
    full, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full_results = clm.main(common + ["--output_dir", str(full)])
    checkpoint = full / "checkpoints" / "checkpoint_0"  # step 4
    assert json.loads((checkpoint / "trainer_state.json").read_text())["completed_steps"] == 4
    resumed = clm.main(common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(checkpoint)])
    assert (resumed_dir / "train_log.jsonl").read_text() == (full / "train_log.jsonl").read_text()
    assert without_timings(resumed) == without_timings(full_results)
    assert (find_last_checkpoint(resumed_dir) / "model.safetensors").read_bytes() == (
        find_last_checkpoint(full) / "model.safetensors"
    ).read_bytes()
    assert (resumed_dir / "best" / "model.safetensors").read_bytes() == (
        full / "best" / "model.safetensors"
    ).read_bytes()


def test_the_cosine_schedule_is_nanogpts():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = clm.create_lr_schedule(optimizer, "cosine", total_steps=2000, warmup_steps=100, min_ratio=0.1)
    rates = []
    for _ in range(2001):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()

    def nanogpt_get_lr(it: int) -> float:  # nanoGPT's train.py, learning_rate 1e-3, min_lr 1e-4
        if it < 100:
            return 1e-3 * (it + 1) / (100 + 1)
        if it > 2000:
            return 1e-4
        ratio = (it - 100) / (2000 - 100)
        return 1e-4 + 0.5 * (1.0 + torch.cos(torch.tensor(torch.pi * ratio)).item()) * (1e-3 - 1e-4)

    assert rates == pytest.approx([nanogpt_get_lr(it) for it in range(2001)], rel=1e-6)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--block_size", "65"], "longer than the model's context"),
        (["--tokenizer", "sentencepiece"], "neither one of char, bpe nor a folder"),
        (["--model", "resnet-9000"], "neither an hfdl preset .* nor a loadable folder or Hub model"),
        (["--model", "bert-course"], "no 'text-generation' head"),
        (["--dataset", "/nonexistent/input.txt"], "does not exist"),
    ],
)
def test_causal_lm_bad_arguments_fail_clearly(tmp_path, argv, match):
    base = ["--dataset", str(SHAKESPEARE), "--max_steps", "1", "--output_dir", str(tmp_path), "--report_to", "none"]
    with pytest.raises((ValueError, OSError), match=match):
        clm.main(base + argv)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--min_learning_rate", "0.1"], "is above --learning_rate"),
        (["--lr_scheduler", "onecycle"], "invalid choice: 'onecycle'"),
        (["--sample_steps", "-1"], "--sample_steps must be >= 0"),
        (["--overwrite_output_dir", "--resume_from_checkpoint", "latest"], "cannot be combined"),
    ],
)
def test_causal_lm_bad_command_lines_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit):
        clm.parse_args(["--dataset", str(SHAKESPEARE), *argv])
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# recipes/train_mlm.py
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    """bert-course (2 layers, 32 wide) pretrained on 640 MR training sentences for 3 epochs of 20 steps."""
    output_dir = tmp_path_factory.mktemp("mlm") / "mlm"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    argv = ["--dataset", str(RT_POLARITY), "--config_overrides", SMALL_BERT, "--vocab_size", "500"]
    argv += ["--max_train_samples", "640", "--max_eval_samples", "200", "--num_epochs", "3", "--logging_steps", "5"]
    argv += ["--learning_rate", "3e-3", "--output_dir", str(output_dir), "--report_to", "none"]
    try:
        results = mlm.main(argv)
    finally:
        torch.set_num_threads(threads)
    return output_dir, results


def test_mlm_trains_and_saves_a_fill_mask_model(mlm_run):
    output_dir, results = mlm_run
    log = read_log(output_dir)
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 12 and losses[-1] < 0.92 * losses[0]  # from ln(500) = 6.2 to ~5.5: word frequencies
    evals = [entry for entry in log if "eval_loss" in entry]
    assert [entry["epoch"] for entry in evals] == [1.0, 2.0, 3.0]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert results["best_eval_loss"] == min(entry["eval_loss"] for entry in evals)
    assert results["eval_samples"] == 200 and results["vocab_size"] == 500

    best = output_dir / "best"
    model = AutoModelForMaskedLM.from_pretrained(best)
    tokenizer = AutoTokenizer.from_pretrained(best)
    # About 15 % of the eval split's real tokens are masked ([CLS] and [SEP] never are).
    test = load_text_classification_dataset(RT_POLARITY, max_train_samples=640, max_eval_samples=200)["test"]
    real_tokens = sum(len(ids) - 2 for ids in tokenizer(list(test["text"]), truncation=True)["input_ids"])
    assert 0.12 < results["eval_masked_tokens"] / real_tokens < 0.18
    assert type(model).__name__ == "BertForMaskedLM" and tokenizer.mask_token == "[MASK]"
    fill = pipeline("fill-mask", model=str(best))
    predictions = fill("the movie is [MASK] .")
    assert len(predictions) == 5 and all(p["sequence"].startswith("the movie is") for p in predictions)
    assert predictions[0]["score"] >= predictions[-1]["score"]


def test_masks_are_a_function_of_the_rows_and_the_epoch(tmp_path):
    from hfdl.tokenization import train_tokenizer

    tokenizer = train_tokenizer(["a b c d e f g h i j"] * 50, kind="wordpiece", vocab_size=100)
    rows = [{"input_ids": tokenizer("a b c d e f g h i j " * 5)["input_ids"], "row": index} for index in range(8)]
    masking = mlm.SeededMasking(tokenizer, 0.15, seed=0, stream=mlm.TRAIN_MASK_STREAM)
    torch.manual_seed(123)
    first = masking(rows)
    torch.manual_seed(456)  # the global generator does not matter ...
    assert torch.equal(masking(rows)["labels"], first["labels"])
    state = torch.get_rng_state()
    masking(rows)
    assert torch.equal(torch.get_rng_state(), state)  # ... and is left as it was
    masking.epoch = 1  # another epoch (or other rows) draws other masks
    assert not torch.equal(masking(rows)["labels"], first["labels"])
    masked = first["labels"] != -100
    assert 0.05 < masked.float().mean() < 0.3
    assert not masked[:, 0].any()  # [CLS] is never masked


def test_a_corpus_is_cut_into_full_blocks(tmp_path):
    from hfdl.tokenization import train_tokenizer

    lines = SHAKESPEARE.read_text().splitlines()[:400]
    tokenizer = train_tokenizer(lines, kind="wordpiece", vocab_size=300)
    blocks = mlm.tokenize(tokenizer, lines, max_length=32, line_by_line=False)
    assert all(len(block["input_ids"]) == 32 for block in blocks[:-1]) and 8 + 2 <= len(blocks[-1]["input_ids"]) <= 32
    assert all(
        b["input_ids"][0] == tokenizer.cls_token_id and b["input_ids"][-1] == tokenizer.sep_token_id for b in blocks
    )
    joined = [token for block in blocks for token in block["input_ids"][1:-1]]
    assert joined == [t for ids in tokenizer(lines, add_special_tokens=False)["input_ids"] for t in ids][: len(joined)]


def test_mlm_on_a_text_corpus_resumes_bit_for_bit(tmp_path):
    dropout = SMALL_BERT[:-1] + ', "hidden_dropout": 0.1}'
    common = ["--dataset", str(SHAKESPEARE), "--config_overrides", dropout, "--vocab_size", "300"]
    common += ["--max_seq_length", "32", "--max_train_samples", "600", "--max_eval_samples", "100", "--num_epochs", "2"]
    common += ["--batch_size", "16", "--logging_steps", "2", "--checkpointing_steps", "3", "--report_to", "none"]
    common += ["--checkpoints_total_limit", "20"]
    full, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full_results = mlm.main(common + ["--output_dir", str(full)])
    steps = {
        json.loads((path / "trainer_state.json").read_text())["completed_steps"]: path
        for path in (full / "checkpoints").iterdir()
    }
    assert full_results["train_steps"] == 38 and sorted(steps) == list(range(3, 39, 3))  # 19 steps an epoch
    # Step 24: in the middle of epoch 2, after an evaluation and a best model of epoch 1.
    resumed = mlm.main(common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(steps[24])])
    assert (resumed_dir / "train_log.jsonl").read_text() == (full / "train_log.jsonl").read_text()
    assert without_timings(resumed) == without_timings(full_results)
    assert (find_last_checkpoint(resumed_dir) / "model.safetensors").read_bytes() == (
        find_last_checkpoint(full) / "model.safetensors"
    ).read_bytes()


# --------------------------------------------------------------------------------------------------------------
# recipes/train_text_classifier.py
# --------------------------------------------------------------------------------------------------------------

SMALL_MR = ["--dataset", str(RT_POLARITY), "--max_train_samples", "640", "--max_eval_samples", "200"]


def test_classifier_from_scratch_trains_and_saves_a_pipeline_ready_model(tmp_path):
    results = tc.main(
        SMALL_MR + ["--config_overrides", SMALL_BERT, "--vocab_size", "500", "--num_epochs", "3", "--logging_steps", "5"]
        + ["--output_dir", str(tmp_path), "--report_to", "none"]
    )  # fmt: skip
    log = read_log(tmp_path)
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 12 and results["train_loss"] == pytest.approx(sum(losses) / 12)
    evals = [entry for entry in log if "eval_accuracy" in entry]
    assert [entry["epoch"] for entry in evals] == [1.0, 2.0, 3.0]
    assert results["eval_samples"] == 200 and sum(map(sum, results["eval_confusion_matrix"])) == 200
    assert results["best_eval_accuracy"] == max(entry["eval_accuracy"] for entry in evals)
    assert results["learning_rate"] == 1e-3  # from scratch
    for png in ("learning_curves.png", "confusion_matrix.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"

    # best/ reproduces the best accuracy on the same test rows, and answers pipelines with the class names.
    best = tmp_path / "best"
    model = AutoModelForSequenceClassification.from_pretrained(best).eval()
    tokenizer = AutoTokenizer.from_pretrained(best)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    test = load_text_classification_dataset(RT_POLARITY, max_train_samples=640, max_eval_samples=200)["test"]
    with torch.no_grad():
        logits = model(**tokenizer(list(test["text"]), padding=True, truncation=True, return_tensors="pt")).logits
    accuracy = (logits.argmax(-1) == torch.tensor(list(test["label"]))).float().mean().item()
    assert accuracy == pytest.approx(results["best_eval_accuracy"], abs=1e-6)
    classify = pipeline("text-classification", model=str(best))
    answers = classify(list(test["text"])[:4])
    assert [a["label"] for a in answers] == [model.config.id2label[i] for i in logits[:4].argmax(-1).tolist()]


def test_classifier_fine_tunes_the_mlm_output_with_its_tokenizer(mlm_run, tmp_path):
    pretrained = mlm_run[0] / "best"
    encoder = AutoModelForMaskedLM.from_pretrained(pretrained).bert.state_dict()
    args = tc.parse_args(SMALL_MR + ["--model", str(pretrained), "--output_dir", str(tmp_path)])
    assert args.learning_rate == 5e-5  # a pretrained model is fine-tuned gently by default
    tokenizer, model = tc.build_tokenizer_and_model(args, [], ["neg", "pos"])
    # The encoder is the pretrained one, weight for weight; only the pooler (a masked LM has none, as in BERT) and
    # the classifier are new.
    loaded = {name: tensor for name, tensor in model.bert.state_dict().items() if not name.startswith("pooler.")}
    assert loaded.keys() == encoder.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, encoder[name]), name
    assert len(tokenizer) == 500 and model.config.num_labels == 2

    results = tc.main(
        SMALL_MR + ["--model", str(pretrained), "--max_steps", "5", "--learning_rate", "1e-3"]
        + ["--output_dir", str(tmp_path), "--report_to", "none"]
    )  # fmt: skip
    assert results["train_steps"] == 5 and results["eval_samples"] == 200
    assert (tmp_path / "best" / "vocab.txt").exists() or (tmp_path / "best" / "tokenizer.json").exists()


def test_classifier_resumes_bit_for_bit(tmp_path):
    common = SMALL_MR + ["--config_overrides", SMALL_BERT, "--vocab_size", "500", "--num_epochs", "2"]
    common += ["--logging_steps", "3", "--checkpointing_steps", "2", "--report_to", "none", "--batch_size", "64"]
    common += ["--gradient_accumulation_steps", "3", "--checkpoints_total_limit", "10"]
    full, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full_results = tc.main(common + ["--output_dir", str(full)])
    # 10 batches an epoch make optimizer steps of 3, 3, 3 and 1 batches: 4 steps an epoch.
    assert full_results["train_steps"] == 8
    checkpoints = {
        path.name: json.loads((path / "trainer_state.json").read_text())["completed_steps"]
        for path in (full / "checkpoints").iterdir()
    }
    assert checkpoints == {"checkpoint_0": 2, "checkpoint_1": 4, "checkpoint_2": 6, "checkpoint_3": 8}
    checkpoint = full / "checkpoints" / "checkpoint_2"  # step 6: in the middle of epoch 2
    resumed = tc.main(common + ["--output_dir", str(resumed_dir), "--resume_from_checkpoint", str(checkpoint)])
    assert (resumed_dir / "train_log.jsonl").read_text() == (full / "train_log.jsonl").read_text()
    assert without_timings(resumed) == without_timings(full_results)
    assert (find_last_checkpoint(resumed_dir) / "model.safetensors").read_bytes() == (
        find_last_checkpoint(full) / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--dataset", str(SHAKESPEARE)], r"cannot read a \.txt file"),
        (["--dataset", str(RT_POLARITY), "--model", "gpt-char"], "no 'text-classification' head"),
        (["--dataset", str(RT_POLARITY), "--model", "./no/such/model"], "neither an hfdl preset nor an existing"),
    ],
)
def test_classifier_bad_arguments_fail_clearly(tmp_path, argv, match):
    with pytest.raises(ValueError, match=match):
        tc.main(argv + ["--max_steps", "1", "--output_dir", str(tmp_path), "--report_to", "none"])


def test_classifier_requires_a_dataset(capsys):
    with pytest.raises(SystemExit):
        tc.parse_args([])
    assert "--dataset" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RANK_WRITER = """
import json, sys
from accelerate import PartialState
from hfdl.recipes import train_text_classifier as recipe
results = recipe.main(sys.argv[1:])
state = PartialState()
with open(f"{results_dir}/rank{{state.process_index}}.json", "w") as handle:
    json.dump({{key: value for key, value in results.items() if "seconds" not in key}}, handle)
"""


@pytest.mark.slow
def test_classifier_under_two_process_ddp_reports_the_same_metrics_on_both_ranks(tmp_path):
    """A real 2-process gloo run on CPU: each rank trains on half the batches and evaluates half the test rows;
    gather_for_metrics gives both ranks every prediction, so both report the same metrics over all 200 rows."""
    script = tmp_path / "run_classifier.py"
    script.write_text(RANK_WRITER.format(results_dir=tmp_path))
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    command += [str(script), *SMALL_MR, "--config_overrides", SMALL_BERT, "--vocab_size", "500"]
    command += ["--max_eval_samples", "199", "--num_epochs", "2", "--output_dir", str(tmp_path / "run")]
    command += ["--report_to", "none"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0] == ranks[1]
    assert ranks[0]["num_processes"] == 2 and ranks[0]["train_steps"] == 20  # 640 rows / (2 x 32) x 2 epochs
    assert ranks[0]["eval_samples"] == 199  # an odd count: the padding of the last batch was dropped
    assert sum(map(sum, ranks[0]["eval_confusion_matrix"])) == 199
    saved = json.loads((tmp_path / "run" / "all_results.json").read_text())
    assert saved["eval_accuracy"] == ranks[0]["eval_accuracy"]
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
