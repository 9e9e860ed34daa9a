"""What the text transformers promise beyond the registry-wide contract: attention that equals its definition,
masks, positions, a key/value cache that changes nothing but speed, transformers' generate and pipelines (with hfdl
imported and as remote code without it)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA
from transformers import AutoModelForCausalLM, TextIteratorStreamer, pipeline

import hfdl
from hfdl.tokenization import train_tokenizer

GPT_SMALL = {
    "vocab_size": 50,
    "max_position_embeddings": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
}
BERT_SMALL = {**GPT_SMALL, "num_labels": 3}
POSITIONS = ["learned", "sinusoidal", "rotary"]
CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog played in the garden",
    "the garden was green and the sky was blue",
    "to be or not to be that is the question",
] * 4


def gpt(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return hfdl.create_model("gpt-char", **{**GPT_SMALL, **overrides}).eval()


def bert(task: str = "fill-mask", seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return hfdl.create_model("bert-course", task=task, **{**BERT_SMALL, **overrides}).eval()


# --------------------------------------------------------------------------------------------- attention
def test_self_attention_equals_its_definition():
    """softmax(Q K^T / sqrt(d)) V per head, by hand from the module's own weights, equals the module (both paths)."""
    model = bert(task="feature-extraction")
    attention = model.layers[0].attention
    x = torch.randn(2, 7, 32)
    q, k, v = attention.qkv(x).split(32, dim=-1)
    heads = [slice(h * 8, (h + 1) * 8) for h in range(4)]
    by_hand = torch.cat(
        [torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(8), dim=-1) @ v[..., s] for s in heads],
        dim=-1,
    )
    expected = attention.out(by_hand)
    with torch.no_grad():
        fused, none = attention(x)
        eager, weights = attention(x, output_attentions=True)
    assert none is None and weights.shape == (2, 4, 7, 7)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eager, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))


@pytest.mark.parametrize("position_embedding_type", POSITIONS)
def test_eager_and_sdpa_agree_and_masks_hold(position_embedding_type):
    decoder = gpt(position_embedding_type=position_embedding_type)
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        fused = decoder(ids, use_cache=False).logits
        out = decoder(ids, use_cache=False, output_attentions=True)
    torch.testing.assert_close(out.logits, fused, atol=1e-5, rtol=1e-5)
    for weights in out.attentions:  # causal: no query sees a later key
        assert torch.all(weights.triu(diagonal=1) == 0)

    encoder = bert(position_embedding_type=position_embedding_type)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        fused = encoder(ids, attention_mask=mask).logits
        out = encoder(ids, attention_mask=mask, output_attentions=True)
        alone = encoder(ids[1:, :6]).logits  # the padded row without its padding
    torch.testing.assert_close(out.logits, fused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused[1, :6], alone[0], atol=1e-5, rtol=1e-5)
    for weights in out.attentions:  # padding gets no attention
        assert torch.all(weights[1, :, :, 6:] == 0)


def test_attn_implementation_switch_round_trips(tmp_path):
    gpt().save_pretrained(tmp_path)
    eager = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    sdpa = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    ids = torch.randint(0, 50, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(eager(ids).logits, sdpa(ids).logits, atol=1e-5, rtol=1e-5)


def test_sinusoidal_positions_follow_vaswani():
    from hfdl.layers.hfdl_attention import sinusoidal_embeddings

    table = sinusoidal_embeddings(torch.arange(50)[None], 16)[0]
    position, i = 7, 3
    assert table[position, 2 * i].item() == pytest.approx(math.sin(position / 10000 ** (2 * i / 16)), abs=1e-6)
    assert table[position, 2 * i + 1].item() == pytest.approx(math.cos(position / 10000 ** (2 * i / 16)), abs=1e-6)


def test_rotary_scores_depend_only_on_distance():
    from hfdl.layers.hfdl_attention import apply_rotary, rotary_cos_sin

    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(query_position: int, key_position: int) -> float:
        cos_q, sin_q = rotary_cos_sin(torch.tensor([[query_position]]), 8, 10000.0)
        cos_k, sin_k = rotary_cos_sin(torch.tensor([[key_position]]), 8, 10000.0)
        return (apply_rotary(q, cos_q, sin_q) * apply_rotary(k, cos_k, sin_k)).sum().item()

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)


# --------------------------------------------------------------------------------------------- cache and generate
@pytest.mark.parametrize("position_embedding_type", POSITIONS)
def test_kv_cache_gives_the_no_cache_logits(position_embedding_type):
    model = gpt(position_embedding_type=position_embedding_type)
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        out = model(ids[:, :5], use_cache=True)
        steps = [out.logits]
        cache = out.cache if hasattr(out, "cache") else out.past_key_values  # renamed in transformers 5.24
        for t in range(5, 12):  # one token at a time, then a chunk would also work
            out = model(ids[:, t : t + 1], past_key_values=cache, use_cache=True)
            steps.append(out.logits)
    assert cache.get_seq_length() == 12
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_generate_greedy_sampling_and_beam_search_with_and_without_cache():
    model = gpt()
    prompt = torch.randint(0, 50, (1, 5))
    common = {"max_new_tokens": 12, "pad_token_id": 0}
    greedy = model.generate(prompt, do_sample=False, **common)
    assert greedy.shape == (1, 17) and torch.equal(greedy[:, :5], prompt)
    assert torch.equal(greedy, model.generate(prompt, do_sample=False, use_cache=False, **common))
    # Greedy is the argmax at each step of the full forward.
    ids = prompt
    for _ in range(12):
        ids = torch.cat([ids, model(ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, ids)
    beams = model.generate(prompt, num_beams=3, do_sample=False, **common)
    assert torch.equal(beams, model.generate(prompt, num_beams=3, do_sample=False, use_cache=False, **common))
    sample = {"do_sample": True, "temperature": 0.8, "top_k": 10, "top_p": 0.9, **common}
    torch.manual_seed(1)
    first = model.generate(prompt, **sample)
    torch.manual_seed(1)
    assert torch.equal(first, model.generate(prompt, **sample))
    # A very low temperature is greedy decoding.
    torch.manual_seed(2)
    assert torch.equal(model.generate(prompt, do_sample=True, temperature=1e-4, **common), greedy)


def test_left_padded_batch_generates_what_each_prompt_generates_alone():
    model = gpt()
    long, short = torch.randint(1, 50, (1, 8)), torch.randint(1, 50, (1, 4))
    batch = torch.cat([long, torch.cat([torch.zeros(1, 4, dtype=torch.long), short], dim=1)])
    mask = torch.ones_like(batch)
    mask[1, :4] = 0
    together = model.generate(batch, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    for row, prompt in enumerate((long, short)):
        alone = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert torch.equal(together[row, -6:], alone[0, -6:])


def test_tied_and_untied_embeddings(tmp_path):
    tied = gpt()
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    untied = gpt(tie_word_embeddings=False)
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert untied.num_parameters() == tied.num_parameters() + 50 * 32
    untied.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(loaded.lm_head.weight, untied.lm_head.weight)
    assert not torch.equal(loaded.lm_head.weight, loaded.model.embed_tokens.weight)


def test_causal_lm_loss_is_next_token_cross_entropy():
    model = gpt()
    ids = torch.randint(0, 50, (2, 10))
    out = model(ids, labels=ids)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 50), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(ValueError, match="`labels` must have the shape of `input_ids`"):
        model(ids, labels=ids[:, :5])


def test_text_iterator_streamer_streams_what_generate_returns():
    tokenizer = train_tokenizer(CORPUS, kind="char")
    model = gpt(vocab_size=len(tokenizer))
    inputs = tokenizer(["the cat"], return_tensors="pt")
    expected = model.generate(**inputs, max_new_tokens=15, do_sample=False)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    thread = threading.Thread(
        target=model.generate, kwargs={**inputs, "max_new_tokens": 15, "do_sample": False, "streamer": streamer}
    )
    thread.start()
    pieces = list(streamer)
    thread.join()
    assert len(pieces) > 1  # it streamed
    assert "".join(pieces) == tokenizer.decode(expected[0, inputs["input_ids"].shape[1] :])


# --------------------------------------------------------------------------------------------- pipelines
@pytest.fixture(scope="module")
def text_folders(tmp_path_factory) -> dict[str, Path]:
    """One saved folder per text head, each with its tokenizer, as a user would find them on the Hub."""
    root = tmp_path_factory.mktemp("text_heads")
    wordpiece = train_tokenizer(CORPUS, kind="wordpiece", vocab_size=120, min_frequency=1)
    byte_bpe = train_tokenizer(CORPUS, kind="bpe", vocab_size=300, min_frequency=1)
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}}
    heads = {
        "fill-mask": (bert("fill-mask", vocab_size=len(wordpiece)), wordpiece),
        "text-classification": (bert("text-classification", vocab_size=len(wordpiece), **labels), wordpiece),
        "token-classification": (bert("token-classification", vocab_size=len(wordpiece), **labels), wordpiece),
        "text-generation": (gpt(vocab_size=len(byte_bpe)), byte_bpe),
    }
    folders = {}
    for task, (model, tokenizer) in heads.items():
        folders[task] = root / task
        model.save_pretrained(folders[task])
        tokenizer.save_pretrained(folders[task])
    return folders


def run_pipelines(folders: dict[str, Path], **kwargs) -> dict:
    results = {}
    fill = pipeline("fill-mask", model=str(folders["fill-mask"]), device="cpu", **kwargs)
    results["fill-mask"] = fill("the cat sat on the [MASK]", top_k=3)
    classify = pipeline("text-classification", model=str(folders["text-classification"]), device="cpu", **kwargs)
    results["text-classification"] = classify(["the dog sat on the log", "a green garden"])
    tag = pipeline("token-classification", model=str(folders["token-classification"]), device="cpu", **kwargs)
    results["token-classification"] = tag("the cat and the dog")
    generate = pipeline("text-generation", model=str(folders["text-generation"]), device="cpu", **kwargs)
    results["text-generation"] = generate("the cat", max_new_tokens=8, do_sample=False)
    return json.loads(json.dumps(results, default=float))


def test_pipelines_with_hfdl_imported(text_folders):
    results = run_pipelines(text_folders)
    fill = results["fill-mask"]
    assert len(fill) == 3 and all(0 <= r["score"] <= 1 and "[MASK]" not in r["sequence"] for r in fill)
    assert [r["label"] for r in results["text-classification"]] and all(
        r["label"] in ("negative", "neutral", "positive") for r in results["text-classification"]
    )
    assert results["token-classification"] and all(
        r["entity"] in ("negative", "neutral", "positive") for r in results["token-classification"]
    )
    generated = results["text-generation"][0]["generated_text"]
    assert generated.startswith("the cat") and len(generated) > len("the cat")


REMOTE_SCRIPT = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "hfdl" or name.startswith("hfdl."):
            raise ImportError("hfdl is blocked")
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
from test_text_models import run_pipelines
from pathlib import Path
folders = {task: Path(path) for task, path in json.loads(sys.argv[2]).items()}
print("RESULT", json.dumps(run_pipelines(folders, trust_remote_code=True)))
"""


def test_pipelines_as_remote_code_without_hfdl(text_folders, offline_env, tmp_path):
    """The same four pipelines in a fresh interpreter where hfdl cannot be imported give the same answers."""
    # The helper module is imported by path; it must not import hfdl at top level for this, so give it a shim.
    shim = tmp_path / "shim"
    shim.mkdir()
    source = Path(__file__).read_text()
    start, end = source.index("def run_pipelines"), source.index("def test_pipelines_with_hfdl_imported")
    (shim / "test_text_models.py").write_text(
        "import json\nfrom pathlib import Path\nfrom transformers import pipeline\n\n\n" + source[start:end]
    )
    folders = {task: str(path) for task, path in text_folders.items()}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(shim), json.dumps(folders)],
        capture_output=True,
        text=True,
        env=offline_env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.split("RESULT", 1)[1])
    local = run_pipelines(text_folders)
    assert remote["text-generation"] == local["text-generation"]
    assert [r["token_str"] for r in remote["fill-mask"]] == [r["token_str"] for r in local["fill-mask"]]
    for key in ("text-classification", "token-classification"):
        assert [r.get("label", r.get("entity")) for r in remote[key]] == [
            r.get("label", r.get("entity")) for r in local[key]
        ]


@pytest.mark.skipif(not (SHARED_DATA / "tinyshakespeare").exists(), reason="needs ../shared/data/tinyshakespeare")
def test_char_gpt_preset_takes_the_nanogpt_vocabulary():
    text = (SHARED_DATA / "tinyshakespeare" / "input.txt").read_text()
    tokenizer = train_tokenizer([text], kind="char")
    model = hfdl.create_model("gpt-char")
    assert len(tokenizer) == model.config.vocab_size == 65
    ids = tokenizer(text[:64], return_tensors="pt")["input_ids"]
    assert ids.shape == (1, 64)
    assert model(ids, labels=ids).loss.item() == pytest.approx(math.log(65), rel=0.05)  # untrained: uniform


def test_model_card_of_a_text_head_shows_how_to_load_its_tokenizer():
    from hfdl.hub import model_card

    card = str(model_card(bert("fill-mask"), {"model_name": "org/bert-mlm"}))
    assert 'AutoTokenizer.from_pretrained("org/bert-mlm", trust_remote_code=True)' in card
    assert 'AutoModelForMaskedLM.from_pretrained("org/bert-mlm", trust_remote_code=True)' in card
    assert "pipeline_tag: fill-mask" in card


def test_readme_text_quickstart_runs_as_written(tmp_path, monkeypatch):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## The transformer family, text") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "my-char-gpt" / "tokenizer.json").exists()
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "my-char-gpt").config.model_type == "hfdl-gpt"
