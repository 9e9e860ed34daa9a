"""hfdl.augment and the recipe's augmentation flags: every flag changes the batches it should and nothing else, the
draws are reproducible (per seed, epoch, row and step) without touching the global random state, colour and
geometry run on un-normalised pixels, mixup/cutmix train through the models' soft-target loss, and training with
augmentation still converges."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("torchvision")
pytest.importorskip("datasets")
pytest.importorskip("sklearn")

import hfdl  # noqa: E402
from hfdl.augment import (  # noqa: E402
    AugmentationConfig,
    MixupCutmix,
    build_train_transform,
    derive_seed,
    isolated_rng,
)
from hfdl.data import TensorDictDataset, load_image_classification_dataset, preprocess_for_model  # noqa: E402
from hfdl.layers.hfdl_image_processing import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from hfdl.registry import resolve_preset  # noqa: E402

#: One setting per flag, strong enough that a batch of 16 digits cannot come out unchanged.
PER_SAMPLE_FLAGS = {
    "random_resized_crop": {"random_resized_crop": 0.5},
    "rotation": {"rotation": 20.0},
    "translate": {"translate": 0.2},
    "hflip": {"hflip": 1.0},
    "color_jitter": {"color_jitter": 0.5},
    "gaussian_noise": {"gaussian_noise": 0.1},
    "randaugment": {"auto_augment": "randaugment"},
    "trivialaugment": {"auto_augment": "trivialaugment"},
}
GRAY = {"image_mean": 0.5, "image_std": 0.5, "num_channels": 1, "image_size": 32}
RGB = {"image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "num_channels": 3, "image_size": 32}


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    """32 training digits as LeNet-5's processor makes them: (32, 1, 32, 32) normalised floats and labels."""
    spec, preset = resolve_preset("lenet5-modern")
    processor = spec.make_image_processor(spec.make_config(preset))
    splits = load_image_classification_dataset("digits", max_train_samples=32, max_eval_samples=8)
    return TensorDictDataset.from_dataset(preprocess_for_model(splits, processor)["train"]).tensors


def augmented(tensors: dict[str, torch.Tensor], config: AugmentationConfig, seed: int = 0) -> TensorDictDataset:
    transform = build_train_transform(config, **GRAY)
    return TensorDictDataset(tensors, transforms={"pixel_values": transform}, seed=seed)


def rows(dataset: TensorDictDataset, indices=range(16)) -> torch.Tensor:
    return torch.stack([dataset[i]["pixel_values"] for i in indices])


# --------------------------------------------------------------------------------------------------------------
# Each flag
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", PER_SAMPLE_FLAGS.values(), ids=PER_SAMPLE_FLAGS.keys())
def test_each_per_sample_flag_changes_the_batch_and_keeps_shape_dtype_and_range(digits, flags):
    dataset = augmented(digits, AugmentationConfig(**flags))
    original, changed = digits["pixel_values"][:16], rows(dataset)
    assert changed.shape == original.shape and changed.dtype == original.dtype == torch.float32
    assert not torch.equal(changed, original)
    assert (changed - original).abs().amax(dim=(1, 2, 3)).gt(1e-3).sum() >= 8  # most images, not one
    # Still valid pixels: normalised with 0.5/0.5, [0, 1] is [-1, 1].
    assert changed.min() >= -1 - 1e-6 and changed.max() <= 1 + 1e-6
    # Labels are per-sample data too, and are left alone.
    assert torch.equal(torch.stack([dataset[i]["labels"] for i in range(16)]), digits["labels"][:16])


@pytest.mark.parametrize("flags", [{"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
def test_mixup_and_cutmix_change_the_batch_and_make_soft_targets(digits, flags):
    batch = {"pixel_values": digits["pixel_values"][:16], "labels": digits["labels"][:16]}
    mixed = MixupCutmix(10, seed=0, **flags)(batch, step=3)
    assert mixed["pixel_values"].shape == batch["pixel_values"].shape and mixed["pixel_values"].dtype == torch.float32
    assert not torch.equal(mixed["pixel_values"], batch["pixel_values"])
    labels = mixed["labels"]
    assert labels.shape == (16, 10) and labels.dtype == torch.float32
    torch.testing.assert_close(labels.sum(dim=1), torch.ones(16))
    # Each row blends its own class and its neighbour's (the batch shifted by one), by one weight for the batch.
    y, previous = batch["labels"], batch["labels"].roll(1, 0)
    differs = (y != previous).nonzero()[0, 0]
    lam = labels[differs, y[differs]]
    one_hot = torch.nn.functional.one_hot
    torch.testing.assert_close(labels, lam * one_hot(y, 10).float() + (1 - lam) * one_hot(previous, 10).float())


def test_mixup_blends_images_and_targets_by_the_same_weight(digits):
    x, y = digits["pixel_values"][:16], digits["labels"][:16]
    mixed = MixupCutmix(10, mixup=1.0, seed=0)({"pixel_values": x, "labels": y}, step=0)
    differs = (y != y.roll(1, 0)).nonzero()[0, 0]
    lam = mixed["labels"][differs, y[differs]]
    assert 0 < lam < 1
    torch.testing.assert_close(mixed["pixel_values"], lam * x + (1 - lam) * x.roll(1, 0))


def test_cutmix_pastes_one_box_and_weighs_the_targets_by_its_area(digits):
    x, y = digits["pixel_values"][:16], digits["labels"][:16]
    for step in range(5):
        mixed = MixupCutmix(10, cutmix=1.0, seed=0)({"pixel_values": x, "labels": y}, step=step)
        pasted = (mixed["pixel_values"] != x).any(dim=(0, 1))  # (H, W): where any image took its neighbour's pixels
        assert torch.equal(mixed["pixel_values"][..., pasted], x.roll(1, 0)[..., pasted])
        assert torch.equal(mixed["pixel_values"][..., ~pasted], x[..., ~pasted])
        differs = (y != y.roll(1, 0)).nonzero()[0, 0]
        box_fraction = 1 - mixed["labels"][differs, y[differs]]
        # The box may hold pixels equal in both images (black background), so it covers at least what differs.
        assert pasted.float().mean() <= box_fraction + 1e-6


def test_no_flag_means_no_transform_and_the_stored_rows(digits):
    config = AugmentationConfig()
    assert not config.per_sample and not config.mixes and config.to_dict() == {}
    assert build_train_transform(config, **GRAY) is None
    plain = TensorDictDataset(digits)
    assert plain.transforms is None
    assert torch.equal(rows(plain), digits["pixel_values"][:16])
    with pytest.raises(ValueError, match="mixup > 0 or cutmix > 0"):
        MixupCutmix(10)


# --------------------------------------------------------------------------------------------------------------
# Pixels: un-normalised, transformed, normalised again
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [GRAY, RGB], ids=["gray", "rgb-imagenet"])
def test_a_flip_round_trips_through_the_pixel_range_exactly(space):
    torch.manual_seed(0)
    channels = space["num_channels"]
    mean, std = torch.tensor(space["image_mean"]).view(-1, 1, 1), torch.tensor(space["image_std"]).view(-1, 1, 1)
    image = (torch.rand(channels, 32, 32) - mean) / std  # a valid normalised image
    flipped = build_train_transform(AugmentationConfig(hflip=1.0), **space)(image)
    torch.testing.assert_close(flipped, image.flip(-1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("space", [GRAY, RGB], ids=["gray", "rgb-imagenet"])
def test_geometry_fills_with_black_pixels_not_with_normalised_zero(space):
    """A white image rotated by 45 degrees has black corners: 0 in pixel space, -mean/std once normalised."""
    mean, std = torch.tensor(space["image_mean"]).view(-1, 1, 1), torch.tensor(space["image_std"]).view(-1, 1, 1)
    white = ((1 - mean) / std).expand(space["num_channels"], 32, 32).clone()
    transform = build_train_transform(AugmentationConfig(rotation=45.0), **space)
    for seed in range(20):  # some angle near +-45 degrees uncovers the corners
        with isolated_rng(seed):
            rotated = transform(white)
        if torch.allclose(rotated[:, 0, 0], (-mean / std).flatten(), atol=1e-5):
            break
    else:
        pytest.fail("no rotation uncovered the corner")
    torch.testing.assert_close(rotated[:, 16, 16], white[:, 16, 16])  # the centre stays white


def test_colour_ops_and_policies_on_rgb_stay_in_the_pixel_range():
    torch.manual_seed(0)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    images = (torch.rand(8, 3, 32, 32) - mean) / std
    for flags in ({"color_jitter": 0.4}, {"auto_augment": "randaugment"}, {"auto_augment": "trivialaugment"}):
        transform = build_train_transform(AugmentationConfig(**flags), **RGB)
        out = torch.stack([transform(image) for image in images])
        assert out.shape == images.shape and not torch.equal(out, images), flags
        pixels = out * std + mean
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5, flags


def test_colour_jitter_changes_a_grayscale_image_by_brightness_and_contrast_only():
    """No saturation step on one channel: jitter of a flat grey image is a brightness change, the same everywhere."""
    grey = torch.zeros(1, 16, 16)  # pixel value 0.5 with 0.5/0.5
    transform = build_train_transform(AugmentationConfig(color_jitter=0.5), **{**GRAY, "image_size": 16})
    assert "saturation" not in repr(transform) and "brightness=(0.5, 1.5)" in repr(transform)
    with isolated_rng(0):
        out = transform(grey)
    assert not torch.equal(out, grey) and torch.allclose(out, out.flatten()[0].expand_as(out))


# --------------------------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------------------------


def test_augmentation_is_a_function_of_seed_epoch_and_row_and_leaves_the_global_rng_alone(digits):
    config = AugmentationConfig(rotation=15.0, translate=0.1, gaussian_noise=0.05, auto_augment="trivialaugment")
    dataset = augmented(digits, config)
    stored, state = digits["pixel_values"].clone(), torch.get_rng_state()
    first = rows(dataset)
    assert torch.equal(torch.get_rng_state(), state), "augmenting drew from the global generator"
    assert torch.equal(digits["pixel_values"], stored), "augmenting wrote into the stored tensors"
    assert torch.equal(rows(dataset), first)  # the same rows again: the same images
    backwards = rows(dataset, range(15, -1, -1)).flip(0)  # any order, the same row gets the same draw
    assert torch.equal(backwards, first)

    dataset.set_epoch(1)
    second_epoch = rows(dataset)
    assert not torch.equal(second_epoch, first)
    assert torch.equal(rows(augmented(digits, config, seed=1)), rows(augmented(digits, config, seed=1)))
    assert not torch.equal(rows(augmented(digits, config, seed=1)), first)
    dataset.set_epoch(0)
    assert torch.equal(rows(dataset), first)

    # DataLoader workers get copies of the dataset (with its epoch): the same batches as in-process loading.
    def batches(num_workers: int) -> torch.Tensor:
        dataset.set_epoch(1)
        loader = torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=num_workers)
        return torch.cat([batch["pixel_values"] for batch in loader])

    assert torch.equal(batches(0), batches(2))
    assert torch.equal(batches(0)[:16], second_epoch)


def test_mixes_are_a_function_of_seed_step_and_process(digits):
    batch = {"pixel_values": digits["pixel_values"][:16], "labels": digits["labels"][:16]}
    mix = MixupCutmix(10, mixup=0.4, cutmix=1.0, seed=0)
    state = torch.get_rng_state()
    reference = mix(batch, step=7)
    assert torch.equal(torch.get_rng_state(), state)
    again = MixupCutmix(10, mixup=0.4, cutmix=1.0, seed=0)(batch, step=7)
    assert all(torch.equal(reference[key], again[key]) for key in ("pixel_values", "labels"))
    for other in (mix(batch, step=8), mix(batch, step=7, process_index=1), MixupCutmix(10, 0.4, 1.0, seed=1)(batch, 7)):
        assert not torch.equal(other["labels"], reference["labels"])


def test_derive_seed_is_stable_and_spreads_neighbouring_keys():
    assert derive_seed(0, 1, 2, 3) == derive_seed(0, 1, 2, 3)
    assert derive_seed(0, 1, 2, 3) == 0x1467336EDB962514  # the same on every platform and Python version
    seeds = {derive_seed(0, 1, epoch, index) for epoch in range(4) for index in range(1000)}
    assert len(seeds) == 4000 and all(0 <= seed < 2**64 for seed in seeds)


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"random_resized_crop": 0.0}, r"`random_resized_crop` must be a number in \(0, 1\], got 0.0"),
        ({"random_resized_crop": 1.5}, r"`random_resized_crop` must be a number in \(0, 1\]"),
        ({"rotation": -5}, r"`rotation` must be a number in \[0, 180\], got -5"),
        ({"translate": 1.0}, r"`translate` must be a number in \[0, 1\), got 1.0"),
        ({"hflip": 2}, r"`hflip` must be a number in \[0, 1\], got 2"),
        ({"hflip": True}, r"`hflip` must be a number"),
        ({"color_jitter": -0.1}, r"`color_jitter` must be a number in \[0, 1\]"),
        ({"gaussian_noise": float("nan")}, r"`gaussian_noise` must be a number in \[0, inf\)"),
        ({"auto_augment": "autoaugment"}, r"`auto_augment` must be one of 'randaugment', 'trivialaugment' or None"),
        ({"mixup": -1}, r"`mixup` must be a number in \[0, inf\), got -1"),
        ({"cutmix": "1"}, r"`cutmix` must be a number"),
    ],
)
def test_bad_values_are_refused_naming_the_flag_and_the_allowed_range(flags, match):
    with pytest.raises(ValueError, match=match):
        AugmentationConfig(**flags)


def test_bad_transform_and_mix_arguments_fail_clearly():
    with pytest.raises(ValueError, match="1 .grayscale. or 3 .RGB. channels, got num_channels=4"):
        build_train_transform(AugmentationConfig(rotation=5), 0.5, 0.5, num_channels=4, image_size=32)
    with pytest.raises(ValueError, match="`image_mean` has 2 values for 3 channels"):
        build_train_transform(AugmentationConfig(rotation=5), [0.5, 0.5], 0.5, num_channels=3, image_size=32)
    with pytest.raises(ValueError, match="two or more classes; got num_classes=1"):
        MixupCutmix(1, mixup=0.2)
    with pytest.raises(ValueError, match=r"`transforms` names columns \['image'\] that are not among \['labels'"):
        TensorDictDataset({"labels": torch.zeros(2), "pixel_values": torch.zeros(2, 1)}, transforms={"image": abs})
    with pytest.raises(ValueError, match="class indices of shape .batch_size,."):
        MixupCutmix(3, mixup=0.2)({"pixel_values": torch.zeros(2, 1, 4, 4), "labels": torch.zeros(2, 3)}, step=0)


# --------------------------------------------------------------------------------------------------------------
# The models' loss takes soft targets
# --------------------------------------------------------------------------------------------------------------


def test_single_label_heads_train_on_class_probabilities():
    torch.manual_seed(0)
    model = hfdl.create_model("mlp-digits", problem_type="single_label_classification")
    pixel_values, labels = torch.randn(6, 1, 8, 8), torch.tensor([0, 3, 9, 3, 1, 0])
    hard = model(pixel_values=pixel_values, labels=labels)
    one_hot = model(pixel_values=pixel_values, labels=torch.nn.functional.one_hot(labels, 10).float())
    torch.testing.assert_close(one_hot.loss, hard.loss)
    soft = torch.softmax(torch.randn(6, 10), dim=1)
    expected = -(soft * torch.log_softmax(hard.logits, dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(model(pixel_values=pixel_values, labels=soft).loss, expected)
    with pytest.raises(ValueError, match=r"class probabilities \(floats, shape \(6, 10\)\); got torch.float32 labels"):
        model(pixel_values=pixel_values, labels=torch.zeros(6, 9))
    # Without a problem_type, float targets stay multi-label (BCE), as in transformers.
    multi = hfdl.create_model("mlp-digits")
    multi(pixel_values=pixel_values, labels=soft)
    assert multi.config.problem_type == "multi_label_classification"


# --------------------------------------------------------------------------------------------------------------
# Through the recipe
# --------------------------------------------------------------------------------------------------------------


def _recipe():
    pytest.importorskip("accelerate")
    from hfdl.recipes import train_image_classifier

    return train_image_classifier


@pytest.mark.parametrize(
    "flags",
    [
        ["--rotation", "10", "--translate", "0.1", "--random_resized_crop", "0.8", "--color_jitter", "0.3"],
        ["--auto_augment", "trivialaugment", "--gaussian_noise", "0.05"],
        ["--mixup", "0.2", "--cutmix", "1.0"],
    ],
    ids=["geometry+colour", "trivialaugment+noise", "mixup+cutmix"],
)
def test_training_with_augmentation_still_lowers_the_loss(tmp_path, flags):
    recipe = _recipe()
    argv = ["--model", "lenet5-modern", "--max_train_samples", "640", "--max_eval_samples", "200", "--batch_size", "32"]
    argv += ["--num_epochs", "3", "--report_to", "none", "--output_dir", str(tmp_path)]
    results = recipe.main(argv + flags)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 6 and sum(losses[-2:]) / 2 < 0.65 * losses[0], losses  # mixed targets make it noisy
    assert results["eval_accuracy"] > 0.6
    # The model card says how the model was trained; soft targets did not turn the head into a multi-label one.
    assert "augmentation " in (tmp_path / "best" / "README.md").read_text()
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"


def test_the_recipe_serves_stored_rows_without_flags_and_augmented_rows_with_them(tmp_path):
    recipe = _recipe()
    from accelerate import Accelerator

    common = ["--model", "lenet5-modern", "--max_train_samples", "64", "--max_eval_samples", "16"]
    accelerator = Accelerator()
    head, config, processor = recipe.build_config(recipe.parse_args(common))
    plain, _, _ = recipe.get_dataloaders(accelerator, recipe.parse_args(common), processor)
    assert plain.dataset.transforms is None
    flagged, _, _ = recipe.get_dataloaders(accelerator, recipe.parse_args(common + ["--rotation", "10"]), processor)
    transform = flagged.dataset.transforms["pixel_values"]
    assert "RandomAffine(degrees=[-10.0, 10.0]" in repr(transform) and "Flip" not in repr(transform)
    assert torch.equal(flagged.dataset.tensors["pixel_values"], plain.dataset.tensors["pixel_values"])
    assert not torch.equal(flagged.dataset[0]["pixel_values"], plain.dataset[0]["pixel_values"])
    eval_dataset = recipe.get_dataloaders(accelerator, recipe.parse_args(common + ["--rotation", "10"]), processor)[1]
    assert eval_dataset.dataset.transforms is None  # evaluation is never augmented


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rotation", "-3"], "`rotation` must be a number in [0, 180], got -3.0"),
        (["--hflip", "1.5"], "`hflip` must be a number in [0, 1], got 1.5"),
        (["--random_resized_crop", "0"], "`random_resized_crop` must be a number in (0, 1], got 0.0"),
        (["--auto_augment", "augmix"], "invalid choice: 'augmix'"),
        (["--mixup", "x"], "invalid float value: 'x'"),
    ],
)
def test_bad_augmentation_flags_exit_with_usage(argv, message, capsys):
    recipe = _recipe()
    with pytest.raises(SystemExit):
        recipe.parse_args(argv)
    assert message in capsys.readouterr().err


def test_horizontal_flip_is_off_unless_asked_for():
    recipe = _recipe()
    args = recipe.parse_args([])
    assert args.hflip == 0.0 and AugmentationConfig.from_args(args) == AugmentationConfig()
    assert AugmentationConfig.from_args(recipe.parse_args(["--hflip", "0.5"])).hflip == 0.5
