"""hfdl.tokenization: char, byte-level BPE and WordPiece tokenizers that AutoTokenizer loads without hfdl."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
from conftest import SHARED_DATA
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, DataCollatorWithPadding

from hfdl.cli import main as cli_main
from hfdl.tokenization import TOKENIZER_KINDS, save_tokenizer, train_tokenizer

SHAKESPEARE = SHARED_DATA / "tinyshakespeare" / "input.txt"
RT_POSITIVE = SHARED_DATA / "rt-polarity" / "rt-polarity.pos"
needs_shakespeare = pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is missing (../shared/data)")
needs_rt_polarity = pytest.mark.skipif(not RT_POSITIVE.exists(), reason=f"{RT_POSITIVE} is missing (../shared/data)")

#: Text no training corpus here has seen: accents, emoji (4-byte UTF-8), CJK, tabs, runs of spaces, a final newline.
UNICODE_TEXT = "Café naïve — crème brûlée 😀🎬 東京\n\tdouble  spaces   and a trailing newline\n"

#: A small generated corpus, for tests that do not need the real data.
TOY_TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met on the mat",
    "the mat was flat and the log was long",
] * 3


@pytest.fixture(scope="module")
def shakespeare_text() -> str:
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} is missing (../shared/data)")
    return SHAKESPEARE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def char_tokenizer(shakespeare_text):
    return train_tokenizer(files=[SHAKESPEARE], kind="char")


@pytest.fixture(scope="module")
def bpe_tokenizer():
    if not RT_POSITIVE.exists():
        pytest.skip(f"{RT_POSITIVE} is missing (../shared/data)")
    return train_tokenizer(files=[RT_POSITIVE], encoding="latin-1", kind="bpe", vocab_size=1000)


@pytest.fixture(scope="module")
def wordpiece_tokenizer():
    if not RT_POSITIVE.exists():
        pytest.skip(f"{RT_POSITIVE} is missing (../shared/data)")
    return train_tokenizer(files=[RT_POSITIVE], encoding="latin-1", kind="wordpiece", vocab_size=1000, lowercase=True)


# --- char ----------------------------------------------------------------------------------------------------------


@needs_shakespeare
def test_char_on_shakespeare_is_nanogpt_vocabulary_and_fast(shakespeare_text):
    start = time.perf_counter()
    tokenizer = train_tokenizer(files=[SHAKESPEARE], kind="char")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"training a char tokenizer on 1.1 MB took {elapsed:.2f} s"
    nanogpt_chars = sorted(set(shakespeare_text))  # nanoGPT's data/shakespeare_char/prepare.py vocabulary
    assert len(tokenizer) == 65 == len(nanogpt_chars)
    assert tokenizer.convert_ids_to_tokens(list(range(65))) == nanogpt_chars
    assert tokenizer.convert_tokens_to_ids(["\n", " "]) == [0, 1]
    assert tokenizer.all_special_tokens == []
    assert tokenizer.padding_side == "left"


@needs_shakespeare
def test_char_round_trip_of_the_whole_file_is_exact(char_tokenizer, shakespeare_text):
    ids = char_tokenizer(shakespeare_text, add_special_tokens=False)["input_ids"]
    stoi = {character: index for index, character in enumerate(sorted(set(shakespeare_text)))}
    assert len(ids) == len(shakespeare_text)
    assert ids[:200] == [stoi[character] for character in shakespeare_text[:200]]  # nanoGPT's encode
    assert char_tokenizer.decode(ids) == shakespeare_text


@needs_shakespeare
def test_char_refuses_unseen_characters_without_an_unk_token(char_tokenizer):
    """tokenizers would otherwise have to drop or invent something: it raises, and nothing is lost silently."""
    with pytest.raises(Exception, match="Missing .* token from the vocabulary"):
        char_tokenizer("a snowman \u2603 is not in Shakespeare")


def test_char_maps_unseen_characters_to_its_unk_token_after_the_characters():
    tokenizer = train_tokenizer(["ab ba\n"], kind="char", special_tokens={"unk_token": "<unk>", "pad_token": "<pad>"})
    # Characters keep nanoGPT's ids 0..3; the special tokens come after them.
    assert tokenizer.get_vocab() == {"\n": 0, " ": 1, "a": 2, "b": 3, "<unk>": 4, "<pad>": 5}
    assert (tokenizer.unk_token_id, tokenizer.pad_token_id) == (4, 5)
    ids = tokenizer("ab\u2603a", add_special_tokens=False)["input_ids"]
    assert ids == [2, 3, 4, 2]
    assert tokenizer.decode(ids) == "ab<unk>a"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "aba"
    # A special token in the text is one token, not five characters.
    assert tokenizer("a<pad>")["input_ids"] == [2, 5]


def test_char_lowercase_and_vocab_size_limit():
    tokenizer = train_tokenizer(["Hello World\n"], kind="char", lowercase=True)
    vocab = tokenizer.get_vocab()
    assert sorted(vocab, key=vocab.get) == sorted(set("hello world\n"))
    assert tokenizer.decode(tokenizer("HeLLo")["input_ids"]) == "hello"
    with pytest.raises(ValueError, match=r"vocab_size=5 .* vocab_size >= 9"):
        train_tokenizer(["Hello World\n"], kind="char", lowercase=True, vocab_size=5)


def test_char_special_token_that_is_a_corpus_character_is_refused():
    with pytest.raises(ValueError, match=r"\['#'\] are characters of the corpus"):
        train_tokenizer(["a#b"], kind="char", special_tokens={"pad_token": "#"})


# --- byte-level BPE --------------------------------------------------------------------------------------------------


@needs_rt_polarity
def test_bpe_on_latin1_reviews_has_the_asked_vocabulary_and_gpt_special_tokens(bpe_tokenizer):
    assert len(bpe_tokenizer) == 1000
    assert bpe_tokenizer.convert_ids_to_tokens(0) == "<|endoftext|>"
    for role in ("bos_token", "eos_token", "unk_token", "pad_token"):
        assert getattr(bpe_tokenizer, role) == "<|endoftext|>", role
    assert bpe_tokenizer.padding_side == "left"
    assert bpe_tokenizer.model_max_length == 512
    assert bpe_tokenizer.model_input_names == ["input_ids", "attention_mask"]
    # Merges learned from the corpus: a frequent review word is one token, with GPT-2's leading-space marker.
    assert bpe_tokenizer.tokenize(" the film") == ["Ġthe", "Ġfilm"]


@needs_rt_polarity
def test_bpe_round_trips_any_unicode_text_exactly(bpe_tokenizer):
    for text in (UNICODE_TEXT, " leading space", "", "<|endoftext|> inside"):
        ids = bpe_tokenizer(text)["input_ids"]
        assert bpe_tokenizer.decode(ids) == text
    assert bpe_tokenizer("<|endoftext|>")["input_ids"] == [0]  # the special token, not its characters


@needs_rt_polarity
def test_bpe_pads_on_the_left_for_batched_generation(bpe_tokenizer):
    batch = bpe_tokenizer(["a fine film", "a long , dull and tedious film"], padding=True, return_tensors="pt")
    short = bpe_tokenizer("a fine film")["input_ids"]
    pad = batch["input_ids"].shape[1] - len(short)
    assert pad > 0
    assert batch["input_ids"][0].tolist() == [0] * pad + short
    assert batch["attention_mask"][0].tolist() == [0] * pad + [1] * len(short)
    assert batch["attention_mask"][1].all()


def test_bpe_explicit_special_tokens_get_their_roles_and_first_ids():
    roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    tokenizer = train_tokenizer(TOY_TEXTS, kind="bpe", vocab_size=300, special_tokens=roles)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "</s>", "<pad>", "<unk>"]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)
    assert len(tokenizer) <= 300


def test_bpe_with_bert_preset_wraps_inputs_in_cls_and_sep():
    tokenizer = train_tokenizer(TOY_TEXTS, kind="bpe", vocab_size=300, special_tokens="bert")
    ids = tokenizer("the cat", "a dog")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the cata dog"  # byte-level keeps spaces as they were
    assert tokenizer.padding_side == "left"


# --- WordPiece ------------------------------------------------------------------------------------------------------


@needs_rt_polarity
def test_wordpiece_is_bert_style(wordpiece_tokenizer):
    assert len(wordpiece_tokenizer) == 1000
    assert wordpiece_tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (wordpiece_tokenizer.pad_token_id, wordpiece_tokenizer.unk_token_id) == (0, 1)
    assert (wordpiece_tokenizer.cls_token_id, wordpiece_tokenizer.sep_token_id) == (2, 3)
    assert wordpiece_tokenizer.mask_token_id == 4
    assert wordpiece_tokenizer.padding_side == "right"
    encoded = wordpiece_tokenizer("The Movie is GREAT", "boring plot")
    tokens = wordpiece_tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["[CLS]", "the", "movie", "is", "great", "[SEP]", "b", "##or", "##ing", "plot", "[SEP]"]
    assert encoded["token_type_ids"] == [0] * 6 + [1] * 5
    assert (
        wordpiece_tokenizer.decode(encoded["input_ids"], skip_special_tokens=True) == "the movie is great boring plot"
    )
    # lowercase=True is BERT-uncased: accents go too; a character never seen becomes [UNK], not an error.
    assert wordpiece_tokenizer.tokenize("Café NAÏVE") == wordpiece_tokenizer.tokenize("cafe naive")
    assert wordpiece_tokenizer.tokenize("\u2603") == ["[UNK]"]


@needs_rt_polarity
def test_wordpiece_works_with_transformers_data_collators(wordpiece_tokenizer):
    texts = ["a fine film", "the most tedious , overlong and boring movie of the year", "great"]
    features = [wordpiece_tokenizer(text) for text in texts]
    lengths = [len(feature["input_ids"]) for feature in features]

    padded = DataCollatorWithPadding(wordpiece_tokenizer, return_tensors="pt")(features)
    assert padded["input_ids"].shape == (3, max(lengths))
    for row, feature in enumerate(features):
        length = lengths[row]
        assert padded["input_ids"][row, :length].tolist() == feature["input_ids"]
        assert (padded["input_ids"][row, length:] == 0).all()  # [PAD], on the right
        assert padded["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)
        assert padded["token_type_ids"][row].tolist() == [0] * max(lengths)

    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(wordpiece_tokenizer, mlm=True, mlm_probability=0.5, seed=0)
    batch = collator([{"input_ids": feature["input_ids"]} for feature in features])
    labels, inputs = batch["labels"], batch["input_ids"]
    original = padded["input_ids"]
    special = (original == 0) | (original == 2) | (original == 3)  # [PAD], [CLS], [SEP] are never masked
    assert (labels[special] == -100).all()
    chosen = labels != -100
    assert chosen.any()
    assert torch.equal(labels[chosen], original[chosen])  # the labels are the original tokens
    assert (inputs[~chosen] == original[~chosen]).all()  # everything not chosen is left as it was
    assert (inputs[chosen] == wordpiece_tokenizer.mask_token_id).any()


def test_wordpiece_vocab_size_must_leave_room_for_the_alphabet():
    texts = ["abc abc", "cab"]
    # 5 special tokens + 3 characters (a, b, c) + the 3 that continue a word (##b, ##c from "abc"; ##a from "cab").
    with pytest.raises(ValueError, match=r"vocab_size=10 .* vocab_size >= 11"):
        train_tokenizer(texts, kind="wordpiece", vocab_size=10)
    tokenizer = train_tokenizer(texts, kind="wordpiece", vocab_size=11)
    assert len(tokenizer) == 11
    assert set(tokenizer.get_vocab()) == {
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "a",
        "b",
        "c",
        "##a",
        "##b",
        "##c",
    }


def test_wordpiece_needs_an_unk_token():
    with pytest.raises(ValueError, match="needs an unk_token"):
        train_tokenizer(TOY_TEXTS, kind="wordpiece", special_tokens="none")
    with pytest.raises(ValueError, match="needs an unk_token"):
        train_tokenizer(TOY_TEXTS, kind="wordpiece", special_tokens={"pad_token": "<pad>"})


# --- determinism ----------------------------------------------------------------------------------------------------


@needs_rt_polarity
@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_training_twice_gives_the_same_vocabulary(kind):
    """865 is a size at which tokenizers' own WordPieceTrainer was seen to give different vocabularies run to run
    (hash-map order of the '##' symbols decides ties at the cut-off); hfdl's must not."""
    runs = [
        train_tokenizer(files=[RT_POSITIVE], encoding="latin-1", kind=kind, vocab_size=865, lowercase=True)
        for _ in range(3)
    ]
    vocabularies = [tokenizer.get_vocab() for tokenizer in runs]
    assert len(vocabularies[0]) == 865
    assert vocabularies[1] == vocabularies[0] and vocabularies[2] == vocabularies[0]
    assert runs[0].backend_tokenizer.to_str() == runs[1].backend_tokenizer.to_str()


def test_char_training_is_independent_of_text_order():
    first = train_tokenizer(["abc", "xyz\n"], kind="char")
    second = train_tokenizer(["xyz\n", "cba"], kind="char")
    assert first.get_vocab() == second.get_vocab()


# --- saving and loading --------------------------------------------------------------------------------------------


@needs_rt_polarity
@needs_shakespeare
def test_saved_tokenizers_load_with_auto_tokenizer_without_hfdl(
    tmp_path, offline_env, char_tokenizer, bpe_tokenizer, wordpiece_tokenizer
):
    tokenizers = {"char": char_tokenizer, "bpe": bpe_tokenizer, "wordpiece": wordpiece_tokenizer}
    samples = {"char": "To be, or not to be:\nthat is the question.", "bpe": UNICODE_TEXT, "wordpiece": "A GREAT film"}
    expected = {}
    for kind, tokenizer in tokenizers.items():
        folder = save_tokenizer(tokenizer, tmp_path / kind)
        expected[kind] = tokenizer(samples[kind])["input_ids"]
        reloaded = AutoTokenizer.from_pretrained(folder)  # in this process, hfdl imported
        assert reloaded(samples[kind])["input_ids"] == expected[kind]
        assert reloaded.padding_side == tokenizer.padding_side
    script = tmp_path / "load.py"
    script.write_text(
        "import importlib.abc, json, sys\n"
        "class BlockHfdl(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'hfdl' or name.startswith('hfdl.'):\n"
        "            raise ImportError(f'hfdl is blocked here ({name})')\n"
        "sys.meta_path.insert(0, BlockHfdl())\n"
        "from transformers import AutoTokenizer\n"
        "folders, samples = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n"
        "out = {}\n"
        "for kind, folder in folders.items():\n"
        "    tokenizer = AutoTokenizer.from_pretrained(folder)\n"
        "    ids = tokenizer(samples[kind])['input_ids']\n"
        "    out[kind] = {'ids': ids, 'text': tokenizer.decode(ids, skip_special_tokens=True),\n"
        "                 'padding_side': tokenizer.padding_side, 'pad': tokenizer.pad_token,\n"
        "                 'class': type(tokenizer).__name__}\n"
        "try:\n"
        "    import hfdl  # noqa: F401\n"
        "    out['hfdl_blocked'] = False\n"
        "except ImportError:\n"
        "    out['hfdl_blocked'] = True\n"
        "print(json.dumps(out))\n",
        encoding="utf-8",
    )
    folders = {kind: str(tmp_path / kind) for kind in tokenizers}
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(folders), json.dumps(samples)],
        capture_output=True,
        text=True,
        env=offline_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["hfdl_blocked"] is True
    for kind in tokenizers:
        assert loaded[kind]["ids"] == expected[kind], kind
        assert loaded[kind]["padding_side"] == tokenizers[kind].padding_side
    assert loaded["char"]["text"] == samples["char"]
    assert loaded["bpe"]["text"] == samples["bpe"]
    assert loaded["wordpiece"]["text"] == "a great film"
    assert loaded["bpe"]["pad"] == "<|endoftext|>"


def test_save_tokenizer_is_all_or_nothing(tmp_path):
    tokenizer = train_tokenizer(TOY_TEXTS, kind="char")
    target = tmp_path / "tokenizer"
    save_tokenizer(tokenizer, target)
    assert sorted(path.name for path in target.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    with pytest.raises(FileExistsError, match="not empty"):
        save_tokenizer(tokenizer, target)
    other = train_tokenizer(["xyz"], kind="char")
    save_tokenizer(other, target, overwrite=True)
    assert AutoTokenizer.from_pretrained(target).get_vocab() == {"x": 0, "y": 1, "z": 2}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tokenizer"]  # no staging folder left behind
    (tmp_path / "empty").mkdir()
    save_tokenizer(tokenizer, tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / "tokenizer.json").is_file()


# --- CLI -----------------------------------------------------------------------------------------------------------


def test_cli_trains_and_saves_a_tokenizer(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TOY_TEXTS) + "\n", encoding="utf-8")
    output = tmp_path / "out" / "tok"
    argv = ["tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "60", "--min-frequency", "1"]
    assert cli_main([*argv, "--lowercase", "--output-dir", str(output), str(corpus)]) == 0
    printed = capsys.readouterr().out
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert f"vocab size {len(tokenizer)}" in printed and str(output) in printed
    assert len(tokenizer) <= 60
    assert tokenizer.convert_ids_to_tokens(tokenizer("The CAT")["input_ids"]) == ["[CLS]", "the", "cat", "[SEP]"]

    # A second run into the same folder is refused (exit 1, one line), and allowed with --overwrite.
    assert cli_main([*argv, "--output-dir", str(output), str(corpus)]) == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert (
        cli_main(["tokenizer", "train", "--kind", "char", "--overwrite", "--output-dir", str(output), str(corpus)]) == 0
    )
    assert AutoTokenizer.from_pretrained(output).get_vocab() == train_tokenizer(files=corpus, kind="char").get_vocab()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kind", "sentencepiece"], "kind='sentencepiece' is not a tokenizer kind; allowed: char, bpe, wordpiece"),
        (["--kind", "bpe", "--vocab-size", "100"], "vocab_size=100 is too small"),
        (["--special-tokens", "t5"], "special_tokens='t5' is not a preset; allowed: none, gpt, bert"),
        (["--encoding", "klingon"], "encoding='klingon' is not a codec"),
    ],
)
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, arguments, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some text\n", encoding="utf-8")
    status = cli_main(["tokenizer", "train", *arguments, "--output-dir", str(tmp_path / "out"), str(corpus)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("hfdl: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert cli_main(["tokenizer", "train", "--output-dir", str(tmp_path / "out"), str(missing)]) == 1
    assert f"training file {str(missing)!r} does not exist" in capsys.readouterr().err


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"texts": TOY_TEXTS, "kind": "unigram"}, r"kind='unigram' .* allowed: char, bpe, wordpiece"),
        ({}, "exactly one of texts= .* got neither"),
        ({"texts": TOY_TEXTS, "files": ["a.txt"]}, "exactly one of texts= .* got both"),
        ({"texts": "one long string"}, "texts is a single string"),
        ({"texts": ["ok", 3]}, r"texts\[1\] is a int, not a str"),
        ({"texts": []}, "the training corpus is empty"),
        ({"texts": ["", ""], "kind": "char"}, "the training corpus is empty"),
        ({"texts": [" \n\t "], "kind": "wordpiece"}, "has no words"),
        ({"files": []}, "files is empty"),
        ({"texts": TOY_TEXTS, "vocab_size": 0}, "vocab_size must be a positive integer or None, got 0"),
        ({"texts": TOY_TEXTS, "vocab_size": 256}, r"vocab_size=256 .* the 256 bytes and the special tokens .* >= 257"),
        ({"texts": TOY_TEXTS, "min_frequency": -1}, "min_frequency must be an integer >= 0, got -1"),
        ({"texts": TOY_TEXTS, "model_max_length": 0}, "model_max_length must be a positive integer, got 0"),
        ({"texts": TOY_TEXTS, "special_tokens": "roberta"}, "'roberta' is not a preset; allowed: none, gpt, bert"),
        (
            {"texts": TOY_TEXTS, "special_tokens": {"start_token": "<s>"}},
            "unknown role 'start_token'; allowed: bos_token",
        ),
        (
            {"texts": TOY_TEXTS, "special_tokens": {"pad_token": ""}},
            r"special_tokens\['pad_token'\] must be a non-empty",
        ),
        ({"texts": TOY_TEXTS, "special_tokens": ["<s>"]}, "special_tokens must be None, a preset name"),
    ],
)
def test_bad_arguments_name_the_value_and_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_tokenizer(**kwargs)


def test_missing_and_folder_files_are_refused_before_training(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"training file '.*missing.txt' does not exist"):
        train_tokenizer(files=[good, tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="is a folder"):
        train_tokenizer(files=[tmp_path])


@needs_rt_polarity
def test_wrong_file_encoding_says_which_encoding_to_pass():
    with pytest.raises(ValueError, match=r"rt-polarity.pos' is not valid utf-8 .* encoding='latin-1'"):
        train_tokenizer(files=[RT_POSITIVE], kind="bpe")


def test_every_kind_trains_from_a_generator():
    for kind in TOKENIZER_KINDS:
        tokenizer = train_tokenizer((text for text in TOY_TEXTS), kind=kind, vocab_size=300, min_frequency=1)
        ids = tokenizer("the cat sat", add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == "the cat sat", kind


def test_files_and_texts_train_the_same_tokenizer(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(text + "\n" for text in TOY_TEXTS), encoding="utf-8")
    for kind in TOKENIZER_KINDS:
        from_file = train_tokenizer(files=str(corpus), kind=kind, vocab_size=300)
        from_texts = train_tokenizer(["".join(text + "\n" for text in TOY_TEXTS)], kind=kind, vocab_size=300)
        assert from_file.get_vocab() == from_texts.get_vocab(), kind


def test_tokenization_module_is_not_imported_by_the_cli_parser():
    """`hfdl list` stays fast: building the parser imports neither hfdl.tokenization nor tokenizers' trainers."""
    code = "import sys, hfdl.cli; hfdl.cli.build_parser(); print('hfdl.tokenization' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
