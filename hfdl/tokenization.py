"""Train the tokenizers of the text chapters (course ch. 9): characters, byte-level BPE and WordPiece.

A text model is only as portable as its tokenizer. Everything here returns a ``transformers`` *fast* tokenizer
(``PreTrainedTokenizerFast``, backed by the Rust ``tokenizers`` library) whose whole pipeline -- normalizer,
pre-tokenizer, model, post-processor, decoder -- lives in ``tokenizer.json``. ``save_pretrained(folder)`` therefore
writes a folder that ``AutoTokenizer.from_pretrained(folder)`` loads anywhere, offline and without hfdl installed.

The three kinds follow the course's three text models:

* ``"char"`` -- one token per character, as in nanoGPT's Shakespeare model: the vocabulary is the sorted set of
  characters seen, so ids match nanoGPT's (``"\\n"`` is 0, ``" "`` is 1) and decoding gives back the exact text.
* ``"bpe"`` -- GPT-2's byte-level BPE: text is mapped to bytes before merging, so any string (emoji, accents, a
  language never seen in training) encodes without an unknown token and decodes back exactly.
* ``"wordpiece"`` -- BERT's WordPiece: normalized words split into pieces, ``##`` marking a piece that continues a
  word, ``[CLS] A [SEP] B [SEP]`` around each input so ``token_type_ids`` tell the two segments apart.

    from hfdl.tokenization import train_tokenizer, save_tokenizer
    tokenizer = train_tokenizer(files=["input.txt"], kind="char")
    save_tokenizer(tokenizer, "outputs/shakespeare-char")
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported when a tokenizer is built, not when hfdl's CLI starts
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

TOKENIZER_KINDS = ("char", "bpe", "wordpiece")

#: The special-token attributes a transformers tokenizer knows; a ``special_tokens`` mapping uses these as keys.
SPECIAL_TOKEN_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

#: Named sets of special tokens. A token's id follows its first appearance here, so ``"bert"`` gives BERT's
#: ``[PAD]`` 0 ... ``[MASK]`` 4. GPT-2 has a single ``<|endoftext|>`` that marks document boundaries and serves as
#: unk; it is also the pad token here, because batched ``generate`` needs one (the attention mask hides it).
SPECIAL_TOKEN_PRESETS: dict[str, dict[str, str]] = {
    "none": {},
    "gpt": {
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    },
    "bert": {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    },
}

#: What ``special_tokens=None`` means for each kind: nanoGPT's char model has none.
DEFAULT_SPECIAL_TOKENS = {"char": "none", "bpe": "gpt", "wordpiece": "bert"}

#: ``vocab_size=None``: course-sized vocabularies (GPT-2 has 50,257, BERT 30,522; a small corpus cannot fill those).
#: A char vocabulary is whatever characters the corpus has.
DEFAULT_VOCAB_SIZES: dict[str, int | None] = {"char": None, "bpe": 1024, "wordpiece": 1024}

#: Generation pads on the left (every prompt then ends at the last position, where the next token is predicted);
#: an encoder such as BERT reads the [CLS] at position 0, so it pads on the right.
PADDING_SIDES = {"char": "left", "bpe": "left", "wordpiece": "right"}

#: Files are read and handed to the trainers in blocks of whole lines of about this many characters.
_BLOCK_CHARS = 1 << 20

#: Byte-level BPE starts from the 256 byte symbols; merges come on top of them.
_BYTE_ALPHABET_SIZE = 256


def train_tokenizer(
    texts: Iterable[str] | None = None,
    *,
    files: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    kind: str = "bpe",
    vocab_size: int | None = None,
    min_frequency: int = 2,
    lowercase: bool = False,
    special_tokens: str | Mapping[str, str] | None = None,
    model_max_length: int = 512,
    encoding: str = "utf-8",
) -> PreTrainedTokenizerFast:
    """Train a ``kind`` tokenizer on ``texts`` or on text ``files`` and return it as a transformers fast tokenizer.

    Args:
        texts: The corpus as strings (a list, a generator, a ``datasets`` column). Read once.
        files: Text files instead of ``texts`` (exactly one of the two), read with ``encoding``; one path or many.
        kind: ``"char"``, ``"bpe"`` or ``"wordpiece"`` (see the module docstring).
        vocab_size: The largest vocabulary wanted, special tokens included; a small corpus may give fewer tokens.
            ``None``: 1024 for ``bpe`` and ``wordpiece``, every character seen for ``char``. It must leave room for
            the special tokens and the alphabet (256 bytes for ``bpe``; every character, alone and as a ``##``
            continuation, for ``wordpiece``; every character for ``char``).
        min_frequency: How often a pair must occur to be merged (``bpe``, ``wordpiece``). A char tokenizer keeps
            every character it saw, however rare, so that its training text always round-trips.
        lowercase: Lowercase text before anything else (BERT's "uncased" models; this also strips accents for
            ``wordpiece``, as BERT does). Decoding then gives back the lowercased text.
        special_tokens: ``None`` for the kind's default (char: none; bpe: ``"gpt"``; wordpiece: ``"bert"``), a
            preset name from :data:`SPECIAL_TOKEN_PRESETS` (``"none"``, ``"gpt"``, ``"bert"``), or a mapping from
            role (:data:`SPECIAL_TOKEN_ROLES`) to token, e.g. ``{"unk_token": "<unk>", "pad_token": "<pad>"}``.
            A mapping rather than a list, so that which token pads and which one is unknown is never guessed. Ids
            follow the mapping's order (one id per distinct token); bpe and wordpiece put them first (ids 0, 1,
            ...), char puts them after the characters so that character ids stay nanoGPT's.
        model_max_length: The longest input the model takes (its ``max_position_embeddings``); used by
            ``truncation=True``.
        encoding: How ``files`` are encoded (e.g. ``"latin-1"`` for the rt-polarity reviews).

    Unknown input when encoding: bpe has none (every byte is in the vocabulary); wordpiece maps a word it cannot
    spell to ``[UNK]``; a char tokenizer maps an unseen character to its ``unk_token`` if it has one, and otherwise
    *refuses* the text (tokenizers raises ``Exception: WordLevel error: Missing [UNK] token from the vocabulary``)
    rather than dropping the character silently: a char model's vocabulary is meant to cover its corpus, so an
    unseen character is a data error. Pass ``special_tokens={"unk_token": "<unk>"}`` to map such characters instead.

    Training is deterministic: the same corpus and arguments give the same vocabulary and ids every time.

    Raises:
        ValueError: an unknown ``kind`` or preset, a bad number, both or neither of ``texts`` and ``files``, a
            missing or undecodable file, an empty corpus, or a ``vocab_size`` too small for the alphabet.
    """
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"kind={kind!r} is not a tokenizer kind; allowed: {', '.join(TOKENIZER_KINDS)}.")
    if vocab_size is None:
        vocab_size = DEFAULT_VOCAB_SIZES[kind]
    elif isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer or None, got {vocab_size!r}.")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
        raise ValueError(f"min_frequency must be an integer >= 0, got {min_frequency!r}.")
    if isinstance(model_max_length, bool) or not isinstance(model_max_length, int) or model_max_length < 1:
        raise ValueError(f"model_max_length must be a positive integer, got {model_max_length!r}.")
    roles = resolve_special_tokens(kind, special_tokens)
    corpus = _Corpus(texts, files, encoding)
    train_backend: dict[str, Callable[..., Tokenizer]] = {
        "char": _train_char,
        "bpe": _train_bpe,
        "wordpiece": _train_wordpiece,
    }
    backend = train_backend[kind](
        corpus, vocab_size=vocab_size, min_frequency=min_frequency, lowercase=lowercase, roles=roles
    )
    return _as_transformers_tokenizer(backend, kind, roles, model_max_length)


def resolve_special_tokens(kind: str, special_tokens: str | Mapping[str, str] | None) -> dict[str, str]:
    """The ``{role: token}`` mapping that ``special_tokens`` stands for with a ``kind`` tokenizer (see
    :func:`train_tokenizer`), checked: known roles, non-empty string tokens, and an ``unk_token`` for wordpiece,
    whose model needs one for words it cannot spell."""
    if special_tokens is None:
        special_tokens = DEFAULT_SPECIAL_TOKENS[kind]
    if isinstance(special_tokens, str):
        if special_tokens not in SPECIAL_TOKEN_PRESETS:
            raise ValueError(
                f"special_tokens={special_tokens!r} is not a preset; allowed: {', '.join(SPECIAL_TOKEN_PRESETS)}, "
                f"or a mapping from role ({', '.join(SPECIAL_TOKEN_ROLES)}) to token."
            )
        roles = dict(SPECIAL_TOKEN_PRESETS[special_tokens])
    elif isinstance(special_tokens, Mapping):
        roles = dict(special_tokens)
        for role, token in roles.items():
            if role not in SPECIAL_TOKEN_ROLES:
                raise ValueError(
                    f"special_tokens has an unknown role {role!r}; allowed: {', '.join(SPECIAL_TOKEN_ROLES)}."
                )
            if not isinstance(token, str) or not token:
                raise ValueError(f"special_tokens[{role!r}] must be a non-empty string, got {token!r}.")
    else:
        raise ValueError(
            f"special_tokens must be None, a preset name ({', '.join(SPECIAL_TOKEN_PRESETS)}) or a mapping from role "
            f"to token, got {type(special_tokens).__name__}."
        )
    if kind == "wordpiece" and "unk_token" not in roles:
        raise ValueError(
            f"a wordpiece tokenizer needs an unk_token for words it cannot spell; special_tokens={special_tokens!r} "
            "has none (use 'bert' or add an 'unk_token')."
        )
    return roles


def save_tokenizer(
    tokenizer: PreTrainedTokenizerFast, output_dir: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """``tokenizer.save_pretrained(output_dir)``, all or nothing.

    The files are written into a temporary sibling folder that is renamed into place once complete, so an
    interrupted save never leaves a half-written tokenizer that a later ``from_pretrained`` would half load. An
    existing non-empty ``output_dir`` (or a file of that name) is replaced only with ``overwrite=True``.
    """
    output_dir = check_output_dir(output_dir, overwrite=overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.with_name(f".{output_dir.name}.{uuid.uuid4().hex[:8]}.tokenizer")
    try:
        tokenizer.save_pretrained(staging)
        if output_dir.is_dir():
            shutil.rmtree(output_dir)
        elif output_dir.exists():
            output_dir.unlink()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def check_output_dir(output_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``output_dir`` as a Path, if :func:`save_tokenizer` may write there: it is missing or an empty folder, or
    ``overwrite`` is set. Call it before training, so a refusal does not come after the work."""
    output_dir = Path(output_dir)
    occupied = output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir()))
    if occupied and not overwrite:
        raise FileExistsError(f"{str(output_dir)!r} exists and is not empty; pass overwrite=True (--overwrite).")
    return output_dir


class _Corpus:
    """The training text, from ``texts`` or ``files``, as blocks of text read once; counts what it yields.

    Files are checked before any training starts (a typo in the tenth path should not cost nine files of work);
    ``texts`` are checked as they stream, since a generator can be read only once.
    """

    def __init__(
        self,
        texts: Iterable[str] | None,
        files: str | os.PathLike | Sequence[str | os.PathLike] | None,
        encoding: str,
    ) -> None:
        if (texts is None) == (files is None):
            raise ValueError(
                "pass exactly one of texts= (an iterable of strings) and files= (text file paths); got "
                + ("neither." if texts is None else "both.")
            )
        if isinstance(texts, str):
            raise ValueError(
                "texts is a single string; pass a list of strings (texts=[text]), or files=[path] to read a file."
            )
        if files is not None:
            if isinstance(files, (str, os.PathLike)):
                files = [files]
            files = [Path(path) for path in files]
            if not files:
                raise ValueError("files is empty; pass at least one text file.")
            for path in files:
                if not path.is_file():
                    problem = "is a folder" if path.is_dir() else "does not exist"
                    raise ValueError(f"training file {str(path)!r} {problem}; pass text files.")
            try:
                "".encode(encoding)
            except LookupError:
                raise ValueError(
                    f"encoding={encoding!r} is not a codec Python knows (e.g. 'utf-8', 'latin-1')."
                ) from None
        self.texts, self.files, self.encoding = texts, files, encoding
        self.num_chars = 0

    def __iter__(self) -> Iterator[str]:
        blocks = self._file_blocks() if self.files is not None else self._text_items()
        for block in blocks:
            self.num_chars += len(block)
            yield block

    def _text_items(self) -> Iterator[str]:
        for index, text in enumerate(self.texts):
            if not isinstance(text, str):
                raise ValueError(f"texts[{index}] is a {type(text).__name__}, not a str; texts must be strings.")
            yield text

    def _file_blocks(self) -> Iterator[str]:
        for path in self.files:
            # newline="": "\r\n" stays what the file has, so a char vocabulary describes the file as it is.
            with open(path, encoding=self.encoding, newline="") as handle:
                lines: list[str] = []
                size = 0
                try:
                    for line in handle:
                        lines.append(line)
                        size += len(line)
                        if size >= _BLOCK_CHARS:
                            yield "".join(lines)
                            lines, size = [], 0
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{str(path)!r} is not valid {self.encoding} ({error.reason}); pass "
                        "its encoding, e.g. encoding='latin-1' (--encoding latin-1)."
                    ) from None
                if lines:
                    yield "".join(lines)

    def check_not_empty(self) -> None:
        if self.num_chars == 0:
            source = "texts" if self.files is None else f"files {[str(path) for path in self.files]}"
            raise ValueError(f"the training corpus is empty: {source} hold no characters.")


def _unique_tokens(roles: Mapping[str, str]) -> list[str]:
    """The distinct special tokens in the order of their first role: the order of their ids."""
    return list(dict.fromkeys(roles.values()))


def _check_vocab_size(vocab_size: int | None, needed: int, kind: str, what: str) -> None:
    if vocab_size is not None and vocab_size < needed:
        raise ValueError(
            f"vocab_size={vocab_size} is too small for a {kind} tokenizer of this corpus: {what} already take "
            f"{needed} ids; pass vocab_size >= {needed}."
        )


def _train_char(corpus: _Corpus, *, vocab_size: int | None, lowercase: bool, roles: dict, **_: object) -> Tokenizer:
    """nanoGPT's vocabulary (``sorted(set(text))``) as a WordLevel model over single characters.

    A Python ``set`` finds the characters of 1 MB in milliseconds. The model is tokenizers' WordLevel (a plain
    token -> id table) behind a pre-tokenizer that splits text into characters (``Split`` on the empty pattern,
    every piece kept); the ``Fuse`` decoder concatenates tokens with nothing in between, so spaces and newlines
    come back exactly.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    normalizer = normalizers.Lowercase() if lowercase else None
    characters: set[str] = set()
    for block in corpus:
        characters.update(normalizer.normalize_str(block) if normalizer else block)
    corpus.check_not_empty()
    specials = _unique_tokens(roles)
    clashes = sorted(token for token in specials if token in characters)
    if clashes:
        raise ValueError(f"special tokens {clashes} are characters of the corpus; pick tokens that are not.")
    _check_vocab_size(vocab_size, len(characters) + len(specials), "char", "its distinct characters and special tokens")
    vocab = {character: index for index, character in enumerate(sorted(characters))}
    vocab.update({token: len(characters) + index for index, token in enumerate(specials)})
    # WordLevel needs an unk name; without an unk role it is absent from the vocabulary, so an unseen character
    # raises instead of becoming a token (see train_tokenizer).
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=roles.get("unk_token", "[UNK]")))
    if normalizer:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _train_bpe(
    corpus: _Corpus, *, vocab_size: int, min_frequency: int, lowercase: bool, roles: dict, **_: object
) -> Tokenizer:
    """GPT-2's byte-level BPE (Radford et al., 2019, sec. 2.2): merges learned over the 256 byte symbols.

    The ByteLevel pre-tokenizer splits text with GPT-2's regex (words keep their leading space) and spells every
    byte as a printable character; the matching decoder undoes both, so decoding is exact for any input. No prefix
    space is added, so ``decode(encode(text)) == text`` holds at the start of a text too.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = _unique_tokens(roles)
    _check_vocab_size(vocab_size, _BYTE_ALPHABET_SIZE + len(specials), "bpe", "the 256 bytes and the special tokens")
    tokenizer = Tokenizer(models.BPE())
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, even those the corpus lacks
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    corpus.check_not_empty()
    byte_level = processors.ByteLevel(trim_offsets=False)
    template = _cls_sep_template(tokenizer, roles)
    tokenizer.post_processor = processors.Sequence([byte_level, template]) if template else byte_level
    return tokenizer


def _train_wordpiece(
    corpus: _Corpus, *, vocab_size: int, min_frequency: int, lowercase: bool, roles: dict, **_: object
) -> Tokenizer:
    """BERT's WordPiece (Devlin et al., 2019): BERT's normalizer and pre-tokenizer, ``##`` continuation pieces.

    Like tokenizers' own ``WordPieceTrainer``, the pieces are learned by BPE merges in which a character that
    continues a word is a different symbol from the same character starting one (``##h`` vs ``h``). That trainer
    numbers the ``##`` symbols in hash-map order, which changes from run to run, and breaks ties between equally
    frequent merges by id, so two runs on the same text give different ids and, when ties meet the ``vocab_size``
    cut-off, different vocabularies. Here the same merges are learned by the deterministic ``BpeTrainer`` on words
    whose continuing characters are spelled with stand-ins from Unicode's private-use planes (characters no text
    uses; ``"the"`` is trained as ``t`` + stand-in(h) + stand-in(e)), and the learned pieces are spelled back with
    ``##``. Ids: the special tokens, then the pieces in the order BPE learned them (single characters first).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: Counter[str] = Counter()
    for block in corpus:
        word_counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(block)))
    corpus.check_not_empty()
    if not word_counts:
        raise ValueError("the training corpus has no words: only whitespace and control characters.")

    specials = _unique_tokens(roles)
    characters = sorted({character for word in word_counts for character in word})
    continuing = sorted({character for word in word_counts for character in word[1:]})
    _check_vocab_size(
        vocab_size,
        len(specials) + len(characters) + len(continuing),
        "wordpiece",
        f"the special tokens, its {len(characters)} characters and their {len(continuing)} '##' forms",
    )
    stand_ins = _private_use_characters(exclude=set(characters), count=len(continuing))
    to_stand_in = dict(zip(continuing, stand_ins))
    from_stand_in = {stand_in: character for character, stand_in in to_stand_in.items()}

    def spelled(word: str) -> str:
        return word[0] + "".join(to_stand_in[character] for character in word[1:])

    def training_texts() -> Iterator[str]:
        for word, count in sorted(word_counts.items()):
            while count > 0:  # in bounded chunks: a very frequent word should not become one huge string
                repeats = min(count, 10_000)
                yield " ".join([spelled(word)] * repeats)
                count -= repeats

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=characters,  # every character may start a word, as WordPieceTrainer allows
        show_progress=False,
    )
    bpe.train_from_iterator(training_texts(), trainer)
    learned = bpe.get_vocab()
    vocab = {token: index for index, token in enumerate(specials)}
    for piece in sorted(learned, key=learned.get):
        if piece in specials:
            continue
        if piece[0] in from_stand_in:
            piece = "##" + "".join(from_stand_in[character] for character in piece)
        else:
            piece = piece[0] + "".join(from_stand_in[character] for character in piece[1:])
        vocab.setdefault(piece, len(vocab))

    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=roles["unk_token"], continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(specials)
    template = _cls_sep_template(tokenizer, roles)
    if template:
        tokenizer.post_processor = template
    return tokenizer


def _private_use_characters(exclude: set[str], count: int) -> list[str]:
    """``count`` characters from Unicode's supplementary private-use planes (15 and 16) that are not in ``exclude``."""
    stand_ins = []
    for code_point in (*range(0xF0000, 0xFFFFE), *range(0x100000, 0x10FFFE)):
        if len(stand_ins) == count:
            break
        if chr(code_point) not in exclude:
            stand_ins.append(chr(code_point))
    if len(stand_ins) < count:
        raise ValueError(f"the corpus has {count} distinct word-continuing characters; at most 131,068 are supported.")
    return stand_ins


def _cls_sep_template(tokenizer: Tokenizer, roles: Mapping[str, str]):  # noqa: ANN202 - a tokenizers processor
    """BERT's inputs, ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with segment ids 0 then 1, when the tokenizer
    has both a cls and a sep token; ``None`` otherwise."""
    from tokenizers import processors

    if "cls_token" not in roles or "sep_token" not in roles:
        return None
    cls, sep = roles["cls_token"], roles["sep_token"]
    return processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in dict.fromkeys((cls, sep))],
    )


def _as_transformers_tokenizer(
    backend: Tokenizer, kind: str, roles: Mapping[str, str], model_max_length: int
) -> PreTrainedTokenizerFast:
    """Wrap a trained ``tokenizers.Tokenizer`` for transformers, with its special-token roles and padding side.

    ``clean_up_tokenization_spaces=False``: transformers' clean-up joins " ," into "," after decoding, which would
    break the exact round trip of char and byte-level tokenizers (WordPiece's decoder does its own clean-up).
    """
    from transformers import PreTrainedTokenizerFast

    input_names = ["input_ids", "token_type_ids", "attention_mask"] if kind == "wordpiece" else None
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        padding_side=PADDING_SIDES[kind],
        clean_up_tokenization_spaces=False,
        model_input_names=input_names or ["input_ids", "attention_mask"],
        **roles,
    )


__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "DEFAULT_VOCAB_SIZES",
    "SPECIAL_TOKEN_PRESETS",
    "SPECIAL_TOKEN_ROLES",
    "TOKENIZER_KINDS",
    "check_output_dir",
    "resolve_special_tokens",
    "save_tokenizer",
    "train_tokenizer",
]
