"""hfdl.data: every source (digits, MNIST IDX, Hub-style datasets) comes out as train/test with image + label."""

from __future__ import annotations

import gzip
import os
import sys
from collections import Counter
from pathlib import Path

# datasets reads these when it is imported: nothing in these tests may reach the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

datasets = pytest.importorskip("datasets")
pytest.importorskip("sklearn")

from hfdl.data import (  # noqa: E402
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    TensorDictDataset,
    dataset_card_name,
    load_digits_dataset,
    load_image_classification_dataset,
    load_mnist_idx,
    normalize_image_classification_dataset,
    preprocess_for_model,
    read_idx,
)
from hfdl.layers.hfdl_image_processing import HfdlImageProcessor  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-10k"
MNIST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # from shared/data/README.md
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST-10k not found at {MNIST_DIR}")


def assert_stratified(splits, test_size: float = 0.2) -> None:
    """Every class keeps its share of the test split, to within one sample."""
    train, test = Counter(splits["train"]["label"]), Counter(splits["test"]["label"])
    for label in train:
        total = train[label] + test[label]
        assert abs(test[label] - test_size * total) <= 1, (label, train[label], test[label])


# --------------------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------------------


def test_digits_split_sizes_columns_and_pixels():
    splits = load_digits_dataset()
    assert {name: len(split) for name, split in splits.items()} == {"train": 1437, "test": 360}
    assert splits["train"].column_names == ["image", "label"]
    assert isinstance(splits["train"].features["image"], datasets.Image)
    assert splits["train"].features["label"].names == [str(i) for i in range(10)]
    pixels = np.stack([np.asarray(image) for image in splits["train"][:50]["image"]])
    assert pixels.shape == (50, 8, 8) and pixels.dtype == np.uint8
    assert pixels.max() == 255 and pixels.min() == 0  # 0..16 rescaled to the full grayscale range
    assert_stratified(splits)


def test_digits_split_is_deterministic_and_seeded():
    first, again, other = load_digits_dataset(seed=0), load_digits_dataset(seed=0), load_digits_dataset(seed=1)
    assert first["test"]["label"] == again["test"]["label"]
    assert first["test"]["label"] != other["test"]["label"]
    assert len(load_digits_dataset(test_size=0.5)["test"]) == 899


def test_digits_through_the_entry_point_with_limits():
    splits = load_image_classification_dataset("digits", max_train_samples=100, max_eval_samples=40)
    assert (len(splits["train"]), len(splits["test"])) == (100, 40)
    assert len(set(splits["train"]["label"])) == 10  # a seeded shuffle, not the first (sorted) rows


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_bad_sample_limits_are_rejected(value):
    with pytest.raises(ValueError, match="max_train_samples"):
        load_image_classification_dataset("digits", max_train_samples=value)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 2])
def test_bad_test_size_is_rejected(test_size):
    with pytest.raises(ValueError, match="test_size"):
        load_digits_dataset(test_size=test_size)


# --------------------------------------------------------------------------------------------------------------
# MNIST IDX
# --------------------------------------------------------------------------------------------------------------


@needs_mnist
def test_mnist_idx_reads_the_test_set():
    dataset = load_mnist_idx(MNIST_DIR)
    assert len(dataset) == 10_000
    assert np.asarray(dataset[0]["image"]).shape == (28, 28)
    assert np.bincount(dataset["label"]).tolist() == MNIST_CLASS_COUNTS
    assert dataset.features["label"].names == [str(i) for i in range(10)]


@needs_mnist
def test_mnist_folder_is_split_8k_2k_stratified():
    splits = load_image_classification_dataset(MNIST_DIR)
    assert (len(splits["train"]), len(splits["test"])) == (8000, 2000)
    assert_stratified(splits)


def write_idx(path: Path, magic: int, array: np.ndarray, compress: bool = True) -> None:
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def fake_mnist(folder: Path, prefix: str = "t10k", count: int = 30, compress: bool = True) -> Path:
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    write_idx(
        folder / f"{prefix}-images-idx3-ubyte{suffix}",
        IDX_IMAGES_MAGIC,
        rng.integers(0, 256, (count, 28, 28)),
        compress,
    )
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", IDX_LABELS_MAGIC, np.arange(count) % 10, compress)
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_idx_gzipped_or_raw(tmp_path, compress):
    dataset = load_mnist_idx(fake_mnist(tmp_path, compress=compress))
    assert len(dataset) == 30 and dataset["label"][:3] == [0, 1, 2]


def test_idx_train_and_test_sets_become_the_two_splits(tmp_path):
    fake_mnist(tmp_path, "train", count=50)
    fake_mnist(tmp_path, "t10k", count=20)
    splits = load_image_classification_dataset(tmp_path)
    assert (len(splits["train"]), len(splits["test"])) == (50, 20)
    with pytest.raises(ValueError, match="Pass `prefix`"):
        load_mnist_idx(tmp_path)


def test_corrupt_idx_files_are_reported(tmp_path):
    folder = fake_mnist(tmp_path)
    images = folder / "t10k-images-idx3-ubyte.gz"
    labels = folder / "t10k-labels-idx1-ubyte.gz"

    images.write_bytes(gzip.compress(IDX_LABELS_MAGIC.to_bytes(4, "big") + bytes(8)))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_mnist_idx(folder)

    write_idx(images, IDX_IMAGES_MAGIC, np.zeros((30, 28, 28)))
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))  # payload cut short
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_mnist_idx(folder)

    images.write_bytes(images.read_bytes()[:40])  # a gzip stream cut in the middle
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_mnist_idx(folder)

    write_idx(images, IDX_IMAGES_MAGIC, np.zeros((30, 28, 28)))
    write_idx(labels, IDX_LABELS_MAGIC, np.zeros(29))
    with pytest.raises(ValueError, match="30 images but .* 29 labels"):
        load_mnist_idx(folder)

    with pytest.raises(ValueError, match="too short"):
        raw = tmp_path / "tiny-idx"
        raw.write_bytes(b"\x00\x00")
        read_idx(raw, IDX_IMAGES_MAGIC)


def test_missing_mnist_files_are_reported(tmp_path):
    with pytest.raises(ValueError, match="holds these MNIST sets: none"):
        load_mnist_idx(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_mnist_idx(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------------------------
# Hub-style datasets: other column names, their own splits, image folders
# --------------------------------------------------------------------------------------------------------------


def tiny_images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (12, 12), dtype=np.uint8) for _ in range(count)]


def test_saved_dataset_with_img_and_labels_columns_is_normalised(tmp_path):
    # Like uoft-cs/cifar10 ("img") with integer labels named "labels" and an extra column.
    features = datasets.Features(
        {"img": datasets.Image(), "labels": datasets.Value("int64"), "note": datasets.Value("string")}
    )
    dataset = datasets.Dataset.from_dict(
        {"img": tiny_images(40), "labels": [3, 7] * 20, "note": ["x"] * 40}, features=features
    )
    dataset.save_to_disk(tmp_path / "saved")
    splits = load_image_classification_dataset(tmp_path / "saved", test_size=0.25)
    assert splits["train"].column_names == ["image", "label"]
    assert splits["train"].features["label"].names == ["3", "7"]  # the values become the class names
    assert (len(splits["train"]), len(splits["test"])) == (30, 10)
    assert sorted(Counter(splits["test"]["label"]).values()) == [5, 5]  # stratified


def test_dataset_dict_keeps_its_own_validation_split():
    names = datasets.ClassLabel(names=["cat", "dog"])
    features = datasets.Features({"image": datasets.Image(), "label": names})

    def make(count: int):
        return datasets.Dataset.from_dict(
            {"image": tiny_images(count), "label": [0, 1] * (count // 2)}, features=features
        )

    splits = normalize_image_classification_dataset(datasets.DatasetDict(train=make(10), validation=make(4)))
    assert (len(splits["train"]), len(splits["test"])) == (10, 4)
    assert splits["test"].features["label"].names == ["cat", "dog"]


def test_image_folder_goes_through_load_dataset(tmp_path):
    from PIL import Image

    for class_name in ("circle", "square"):
        (tmp_path / class_name).mkdir()
        for index, array in enumerate(tiny_images(10)):
            Image.fromarray(array).save(tmp_path / class_name / f"{index}.png")
    splits = load_image_classification_dataset(tmp_path, test_size=0.2)
    assert splits["train"].features["label"].names == ["circle", "square"]
    assert (len(splits["train"]), len(splits["test"])) == (16, 4)


def test_unknown_columns_and_splits_are_reported():
    dataset = datasets.Dataset.from_dict({"picture": tiny_images(4), "y": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"No image column .*\['picture', 'y'\].*image, img, pixel_values"):
        normalize_image_classification_dataset(dataset)
    dataset = datasets.Dataset.from_dict({"img": tiny_images(4), "y": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match="No label column .*label, labels"):
        normalize_image_classification_dataset(dataset)
    with pytest.raises(ValueError, match="no 'train' split; found splits: test"):
        normalize_image_classification_dataset(datasets.DatasetDict(test=dataset))
    with pytest.raises(ValueError, match="name_or_path"):
        load_image_classification_dataset("")


# --------------------------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------------------------


def test_preprocess_for_model_stores_tensors_once():
    splits = load_image_classification_dataset("digits", max_train_samples=64, max_eval_samples=32)
    processed = preprocess_for_model(splits, HfdlImageProcessor(size=16))
    train = processed["train"]
    assert train.column_names == ["pixel_values", "labels"]  # named as the models' forward arguments
    row = train[0]
    assert row["pixel_values"].shape == (1, 16, 16) and str(row["pixel_values"].dtype) == "torch.float32"
    assert -1.0 <= float(row["pixel_values"].min()) and float(row["pixel_values"].max()) <= 1.0
    assert train.features["labels"].names == [str(i) for i in range(10)]
    tensors = TensorDictDataset.from_dataset(train)
    assert tensors.tensors["labels"].tolist() == list(splits["train"]["label"])  # same rows, same order
    assert len(tensors) == 64 and tensors.tensors["pixel_values"].shape == (64, 1, 16, 16)
    assert tensors[5]["labels"].item() == splits["train"][5]["label"]

    indexed = preprocess_for_model(splits, HfdlImageProcessor(size=16), add_index=True)["test"]
    assert indexed.column_names == ["pixel_values", "labels", "index"]
    assert indexed[:]["index"].tolist() == list(range(32))


def test_preprocessed_batches_go_straight_into_a_model():
    from hfdl import create_model

    splits = load_image_classification_dataset("digits", max_train_samples=48, max_eval_samples=16)
    model = create_model("mlp-digits")
    processor = HfdlImageProcessor(size=model.config.image_size)
    dataset = TensorDictDataset.from_dataset(preprocess_for_model(splits, processor)["train"])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=16)))
    assert set(batch) == {"pixel_values", "labels"}
    outputs = model(**batch)
    expected = torch.nn.functional.cross_entropy(outputs.logits, batch["labels"])
    assert outputs.loss.item() == pytest.approx(expected.item())


def test_dataset_card_name(tmp_path):
    assert dataset_card_name("digits") == "sklearn-digits"
    assert dataset_card_name("ylecun/mnist") == "ylecun/mnist"  # a Hub id, which the Hub links
    (tmp_path / "mnist-10k").mkdir()
    assert dataset_card_name(tmp_path / "mnist-10k") == "mnist-10k"  # a local folder by its own name


def test_preprocess_for_model_needs_normalised_columns():
    raw = datasets.DatasetDict(train=datasets.Dataset.from_dict({"img": tiny_images(2), "label": [0, 1]}))
    with pytest.raises(ValueError, match="needs 'image' and 'label'"):
        preprocess_for_model(raw, HfdlImageProcessor(size=8))


def test_missing_training_extras_name_the_extra(monkeypatch):
    import hfdl.data

    monkeypatch.setitem(sys.modules, "datasets", None)  # what `import datasets` sees when it is not installed
    with pytest.raises(ImportError, match=r"pip install 'hfdl\[train\]'"):
        hfdl.data.load_image_classification_dataset("digits")
