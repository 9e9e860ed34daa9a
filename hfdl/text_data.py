"""Text data for the text recipes, benchmarks and tests: labelled sentences and raw corpora, offline or from the Hub.

Two shapes come out, whatever the source, so that a recipe only ever deals with one of them:

* :func:`load_text_classification_dataset` -> a ``DatasetDict`` with ``train`` and ``test`` splits and two columns,
  ``text`` (a string) and ``label`` (a ``datasets.ClassLabel`` that keeps the class names, which end up in the
  model's ``id2label``). It reads the "MR" movie-review polarity folder (``rt-polarity.pos`` / ``.neg``, latin-1),
  the "sentiment labelled sentences" folder (``sentence<TAB>label`` files), CSV / JSON / parquet files, a folder
  written by ``save_to_disk`` and any Hub id that ``datasets.load_dataset`` reads (``stanfordnlp/imdb``,
  ``cornell-movie-review-data/rotten_tomatoes``, ...). Data without its own test split is split *stratified* and
  seeded, so both halves keep the class balance and every run sees the same split.
* :func:`load_text_corpus` -> a :class:`TextCorpus`, one training string and one validation string, for language
  modelling. A ``.txt`` file or a folder of them is split by characters, the first 90 % for training and the last
  10 % for validation, as nanoGPT splits tiny-shakespeare: a contiguous tail keeps the validation text unseen (a
  random split of lines would put neighbouring lines of one speech on both sides).

``datasets`` is a training extra: it is imported inside the functions, so ``import hfdl`` works without it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type hints only
    from datasets import Dataset, DatasetDict

#: Column names taken as the text (in this order of preference); renamed to ``text``.
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "sentence1")
#: Column names taken as the class label; renamed to ``label``.
LABEL_COLUMNS = ("label", "labels")
#: Split names used as the evaluation split when a data set brings its own (in this order).
EVAL_SPLITS = ("test", "validation", "valid", "eval")
#: File suffixes read by ``datasets``' packaged builders, and which builder reads them.
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
#: The two files of the MR polarity data set v1.0 (Pang & Lee, 2005) and the label each holds.
RT_POLARITY_FILES = {"rt-polarity.neg": 0, "rt-polarity.pos": 1}
#: Class names of the binary sentiment data sets (0 = negative, 1 = positive).
POLARITY_NAMES = ["neg", "pos"]

_TRAIN_EXTRA_HINT = "Install the training extras: pip install 'hfdl[train]'"


def _import_datasets():  # noqa: ANN202 - a module
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"hfdl.text_data needs the `datasets` package. {_TRAIN_EXTRA_HINT}") from error
    return datasets


def _looks_like_a_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~", ".\\", "..\\"))


# ---------------------------------------------------------------------------------------------------------------
# Text classification
# ---------------------------------------------------------------------------------------------------------------


def is_rt_polarity_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding ``rt-polarity.pos`` and ``rt-polarity.neg``."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in RT_POLARITY_FILES)


def _labelled_sentence_files(path: Path) -> list[Path]:
    return sorted(path.glob("*_labelled.txt")) if path.is_dir() else []


def load_rt_polarity(path: str | os.PathLike) -> Dataset:
    """The MR sentence polarity data set v1.0: 5,331 negative then 5,331 positive review snippets, labels neg/pos.

    The files are latin-1 (not UTF-8: reading them as UTF-8 fails on the first accented byte), one lower-cased,
    tokenized snippet a line. Blank lines are skipped.
    """
    datasets = _import_datasets()
    texts, labels = [], []
    for name, label in RT_POLARITY_FILES.items():
        with open(Path(path) / name, encoding="latin-1") as handle:
            lines = [line.strip() for line in handle]
        texts += [line for line in lines if line]
        labels += [label] * sum(1 for line in lines if line)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=POLARITY_NAMES)})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


def load_labelled_sentences(path: str | os.PathLike) -> Dataset:
    """The "sentiment labelled sentences" folder (Kotzias et al., 2015): every ``*_labelled.txt`` file in it
    (Amazon, IMDb, Yelp), one ``sentence<TAB>0|1`` a line, read in file-name order. Labels neg (0) / pos (1)."""
    datasets = _import_datasets()
    files = _labelled_sentence_files(Path(path))
    if not files:
        raise ValueError(f"{path} holds no '*_labelled.txt' files (sentence<TAB>label per line).")
    texts, labels = [], []
    for file in files:
        # Split on newlines only: str.splitlines() would also break at U+0085, which some IMDb sentences contain.
        for number, line in enumerate(file.read_text(encoding="utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            text, separator, label = line.rstrip("\r\n ").rpartition("\t")
            if not separator or label not in ("0", "1"):
                raise ValueError(f"{file}:{number}: expected 'sentence<TAB>0|1', got {line[:80]!r}.")
            texts.append(text.strip())
            labels.append(int(label))
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=POLARITY_NAMES)})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


def _pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, where: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{where} has no column {wanted!r} (asked for as the {what}); columns: {list(columns)}.")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"No {what} column in {where}: found columns {list(columns)}; recognised names: {', '.join(candidates)} "
        f"(or name it with {what}_column=)."
    )


def _normalize_text_columns(
    dataset: Dataset, where: str, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """Rename the text and label columns to ``text``/``label``, drop the rest, make ``label`` a ``ClassLabel``."""
    datasets = _import_datasets()
    text = _pick_column(dataset.column_names, text_column, TEXT_COLUMNS, "text", where)
    label = _pick_column(dataset.column_names, label_column, LABEL_COLUMNS, "label", where)
    dataset = dataset.select_columns([text, label])
    dataset = dataset.rename_columns({old: new for old, new in ((text, "text"), (label, "label")) if old != new})
    if not isinstance(dataset.features["label"], datasets.ClassLabel):
        # Integer or string labels: class_encode_column sorts the distinct values and keeps them as the names.
        dataset = dataset.class_encode_column("label")
    return dataset


def _limit(dataset: Dataset, max_samples: int | None, seed: int, name: str) -> Dataset:
    if max_samples is None:
        return dataset
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples <= 0:
        raise ValueError(f"`{name}` must be a positive integer or None, got {max_samples!r}.")
    if max_samples >= len(dataset):
        return dataset
    # Shuffle first: MR lists every negative snippet before the positive ones.
    return dataset.shuffle(seed=seed).select(range(max_samples)).flatten_indices()


def _has_labels(dataset: Dataset) -> bool:
    """False for a split whose labels are hidden (GLUE's test splits carry -1 everywhere)."""
    return len(dataset) > 0 and min(dataset["label"]) >= 0


def normalize_text_classification_dataset(
    dataset: Dataset | DatasetDict,
    test_size: float = 0.1,
    seed: int = 0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    source: str = "the dataset",
) -> DatasetDict:
    """Bring any text classification ``Dataset``/``DatasetDict`` to ``train``/``test`` with ``text``/``label``.

    A ``DatasetDict`` keeps its own evaluation split (``test``, else ``validation``; a split whose labels are hidden,
    ``-1``, is passed over); otherwise ``train`` is split, stratified by label and seeded by ``seed``.
    """
    datasets = _import_datasets()
    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict(train=dataset)
    if not isinstance(dataset, datasets.DatasetDict):
        raise ValueError(f"Expected a datasets.Dataset or DatasetDict from {source}, got {type(dataset).__name__}.")
    if "train" not in dataset:
        raise ValueError(f"{source} has no 'train' split; found splits: {', '.join(dataset) or 'none'}.")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"`test_size` must be a fraction in (0, 1), got {test_size!r}.")
    train = _normalize_text_columns(dataset["train"], f"{source} (split 'train')", text_column, label_column)
    test = None
    for name in EVAL_SPLITS:
        if name in dataset:
            candidate = _normalize_text_columns(dataset[name], f"{source} (split {name!r})", text_column, label_column)
            if _has_labels(candidate):
                test = candidate
                break
    if test is None:
        splits = train.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
        train, test = splits["train"], splits["test"]
    elif test.features["label"].names != train.features["label"].names:
        raise ValueError(
            f"{source}: the train and test splits have different class names "
            f"({train.features['label'].names} vs {test.features['label'].names})."
        )
    return datasets.DatasetDict(
        train=_limit(train, max_train_samples, seed, "max_train_samples"),
        test=_limit(test, max_eval_samples, seed, "max_eval_samples"),
    )


def load_text_classification_dataset(
    name_or_path: str | os.PathLike,
    test_size: float = 0.1,
    seed: int = 0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> DatasetDict:
    """Load a text classification data set as ``train``/``test`` splits of ``text`` + ``label`` (``ClassLabel``).

    ``name_or_path`` may be:

    * a folder with ``rt-polarity.pos`` / ``rt-polarity.neg`` (MR, Pang & Lee 2005; labels ``neg`` = 0, ``pos`` = 1);
    * a folder with ``*_labelled.txt`` files (sentiment labelled sentences, Kotzias et al. 2015; ``neg``/``pos``);
    * a ``.csv`` / ``.tsv`` / ``.json`` / ``.jsonl`` / ``.parquet`` file with a text and a label column;
    * a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``;
    * a Hub dataset id, read by ``datasets.load_dataset`` (needs the network, or the dataset in the local cache).

    Text columns named ``text``, ``sentence``, ``content``, ``review``, ``document`` and label columns named
    ``label``/``labels`` are recognised; others are named with ``text_column`` / ``label_column``. Data without a
    labelled test split is split stratified, ``test_size`` of it for testing, with ``seed`` (MR: 90/10, seed 0 gives
    9,595 / 1,067 snippets). ``max_train_samples`` / ``max_eval_samples`` keep a seeded random subset.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not os.fspath(name_or_path):
        raise ValueError(
            "`name_or_path` must be an rt-polarity or labelled-sentences folder, a CSV/JSON/parquet file, a "
            f"save_to_disk folder or a Hub dataset id; got {name_or_path!r}."
        )
    datasets = _import_datasets()
    source = os.fspath(name_or_path)
    path = Path(source).expanduser()
    if is_rt_polarity_folder(path):
        dataset = load_rt_polarity(path)
    elif _labelled_sentence_files(path):
        dataset = load_labelled_sentences(path)
    elif path.is_dir() and _is_saved_dataset(path):
        dataset = datasets.load_from_disk(str(path))
    elif path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(
                f"{source}: cannot read a {path.suffix or 'suffix-less'} file as labelled text; allowed: "
                f"{', '.join(FILE_BUILDERS)} files, an rt-polarity or labelled-sentences folder, a saved dataset."
            )
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        dataset = datasets.load_dataset(builder, data_files={"train": str(path)}, **kwargs)
    elif path.is_dir():
        raise ValueError(
            f"{source} is a folder, but not one of: rt-polarity (rt-polarity.pos/.neg), labelled sentences "
            "(*_labelled.txt), or a save_to_disk folder."
        )
    elif _looks_like_a_path(source):
        raise ValueError(f"Dataset path {source} does not exist (Hub ids look like 'owner/name', not like a path).")
    else:
        dataset = datasets.load_dataset(source)
    return normalize_text_classification_dataset(
        dataset,
        test_size=test_size,
        seed=seed,
        max_train_samples=max_train_samples,
        max_eval_samples=max_eval_samples,
        text_column=text_column,
        label_column=label_column,
        source=source,
    )


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def is_text_classification_source(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is a local labelled-text source that :func:`load_text_classification_dataset` reads
    (a polarity folder, a labelled-sentences folder, a data file other than ``.txt``); False for plain text."""
    path = Path(os.fspath(name_or_path)).expanduser()
    if is_rt_polarity_folder(path) or _labelled_sentence_files(path):
        return True
    return path.is_file() and path.suffix.lower() in FILE_BUILDERS


# ---------------------------------------------------------------------------------------------------------------
# Corpora for language modelling
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextCorpus:
    """A language-modelling corpus: the training text, the validation text and where they came from."""

    train: str
    validation: str
    source: str

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError(f"{self.source}: the training text is empty.")
        if not self.validation:
            raise ValueError(f"{self.source}: the validation text is empty (the corpus is too short to split).")


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The first ``1 - val_fraction`` of ``text`` (by characters) and the rest, as nanoGPT splits tiny-shakespeare."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be a fraction in (0, 1), got {val_fraction!r}.")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def load_text_corpus(
    name_or_path: str | os.PathLike,
    val_fraction: float = 0.1,
    text_column: str | None = None,
    encoding: str = "utf-8",
) -> TextCorpus:
    """Load a corpus for language modelling, split into a training and a validation text.

    ``name_or_path`` may be:

    * a ``.txt`` file (``tinyshakespeare/input.txt``), read with ``encoding``;
    * a folder of ``.txt`` files, read in sorted order and joined with a blank line;
    * a folder written by ``save_to_disk`` or a Hub dataset id (``karpathy/tiny_shakespeare``): the rows of its text
      column (``text_column``, else the first of :data:`TEXT_COLUMNS` present) joined with newlines; its
      ``validation`` (else ``test``) split is the validation text when it has one.

    Text without a validation split is split by characters: the first ``1 - val_fraction`` for training, the rest
    for validation (nanoGPT: 90/10).
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not os.fspath(name_or_path):
        raise ValueError(
            f"`name_or_path` must be a .txt file, a folder of them or a Hub dataset id; got {name_or_path!r}."
        )
    source = os.fspath(name_or_path)
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() in FILE_BUILDERS:
            raise ValueError(
                f"{source} is a {path.suffix} file: a corpus is plain text (.txt); labelled data goes through "
                "load_text_classification_dataset."
            )
        try:
            text = path.read_text(encoding=encoding)
        except UnicodeDecodeError as error:
            raise ValueError(f"{source} is not {encoding} text ({error}); pass the right `encoding`.") from None
        return TextCorpus(*split_text(text, val_fraction), source=source)
    if path.is_dir() and not _is_saved_dataset(path):
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"{source} holds no .txt files (and is not a save_to_disk folder).")
        text = "\n\n".join(file.read_text(encoding=encoding) for file in files)
        return TextCorpus(*split_text(text, val_fraction), source=source)
    if not path.exists() and _looks_like_a_path(source):
        raise ValueError(f"Corpus path {source} does not exist (Hub ids look like 'owner/name', not like a path).")
    datasets = _import_datasets()
    dataset = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.load_dataset(source)
    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict(train=dataset)
    if "train" not in dataset:
        raise ValueError(f"{source} has no 'train' split; found splits: {', '.join(dataset) or 'none'}.")

    def joined(split: str) -> str:
        column = _pick_column(dataset[split].column_names, text_column, TEXT_COLUMNS, "text", f"{source} ({split})")
        return "\n".join(dataset[split][column])

    eval_split = next((name for name in ("validation", "valid", "test") if name in dataset), None)
    if eval_split is None:
        return TextCorpus(*split_text(joined("train"), val_fraction), source=source)
    return TextCorpus(joined("train"), joined(eval_split), source=source)


def corpus_card_name(name_or_path: str | os.PathLike) -> str:
    """How a model card names the data (``datasets:`` in its YAML): a Hub id as it is; a local folder by its name; a
    local file by its stem, or by its folder's name when the stem says nothing (``tinyshakespeare/input.txt`` is
    ``tinyshakespeare``). A full local path means nothing to a reader of the card."""
    source = os.fspath(name_or_path)
    path = Path(source).expanduser()
    if not path.exists():
        return source
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.parent.name if path.stem in ("input", "train", "data", "text") else path.stem


__all__ = [
    "EVAL_SPLITS",
    "LABEL_COLUMNS",
    "POLARITY_NAMES",
    "TEXT_COLUMNS",
    "TextCorpus",
    "corpus_card_name",
    "is_rt_polarity_folder",
    "is_text_classification_source",
    "load_labelled_sentences",
    "load_rt_polarity",
    "load_text_classification_dataset",
    "load_text_corpus",
    "normalize_text_classification_dataset",
    "split_text",
]
