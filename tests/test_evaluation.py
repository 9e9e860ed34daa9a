"""Tests of hfdl.evaluation: Frechet distance against closed forms, the classifier feature hook, histogram measures,
K-Means scores and 2-D embeddings. Generated data only; a few seconds in all."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
import torch

import hfdl
from hfdl.evaluation import (
    ClassifierFeatureExtractor,
    FeatureStatistics,
    class_histogram,
    conditional_accuracy,
    embed_2d,
    frechet_distance,
    generative_report,
    histogram_entropy,
    kmeans_scores,
    plot_embeddings,
)


def samples_with_moments(mean: np.ndarray, cov: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """Samples whose sample mean and unbiased sample covariance are *exactly* ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(num_samples, mean.shape[0]))
    noise -= noise.mean(axis=0)
    whitening = np.linalg.inv(np.linalg.cholesky(np.cov(noise, rowvar=False)))
    white = noise @ whitening.T  # sample covariance exactly I
    return white @ np.linalg.cholesky(cov).T + mean


def random_spd(dim: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(dim, dim))
    return matrix @ matrix.T + 0.5 * np.eye(dim)


# --------------------------------------------------------------------------------------------- Frechet distance
@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_diagonal_covariances_closed_form(method):
    # Diagonal covariances commute: d^2 = |mu_a - mu_b|^2 + sum_i (sqrt(s_a,i) - sqrt(s_b,i))^2.
    mean_a, mean_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    stats_a = FeatureStatistics(mean_a, np.diag(var_a), num_samples=100)
    stats_b = FeatureStatistics(mean_b, np.diag(var_b), num_samples=100)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert expected == pytest.approx(1 + 6.25 + 4 + 1)
    assert frechet_distance(stats_a, stats_b, method=method) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_distance_full_covariances_closed_form(method):
    # Two non-commuting 2x2 covariances: S_a S_b has real eigenvalues l1, l2 >= 0, so
    # tr((S_a S_b)^(1/2)) = sqrt(l1) + sqrt(l2) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b)).
    cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov_b = np.array([[1.0, -0.3], [-0.3, 3.0]])
    assert not np.allclose(cov_a @ cov_b, cov_b @ cov_a)
    mean_a, mean_b = np.array([0.5, -1.0]), np.array([0.0, 0.0])
    cross = math.sqrt(np.trace(cov_a @ cov_b) + 2 * math.sqrt(np.linalg.det(cov_a) * np.linalg.det(cov_b)))
    expected = 0.25 + 1.0 + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    # From feature sets whose sample moments are exactly these (so the formula, not sampling noise, is tested).
    features_a = samples_with_moments(mean_a, cov_a, 500, seed=0)
    features_b = samples_with_moments(mean_b, cov_b, 300, seed=1)
    assert frechet_distance(features_a, features_b, method=method) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(torch.from_numpy(features_b), features_a, method=method) == pytest.approx(
        expected, rel=1e-9
    )


def test_frechet_distance_higher_dimension_methods_agree_and_identical_sets_give_zero():
    dim = 12
    features_a = samples_with_moments(np.zeros(dim), random_spd(dim, 0), 400, seed=2)
    features_b = samples_with_moments(np.full(dim, 0.3), random_spd(dim, 1), 400, seed=3)
    by_eigh = frechet_distance(features_a, features_b, method="eigh")
    assert by_eigh > 1.0
    assert frechet_distance(features_a, features_b, method="sqrtm") == pytest.approx(by_eigh, rel=1e-8)
    assert frechet_distance(features_a, features_a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(features_a, features_a, method="sqrtm") == pytest.approx(0.0, abs=1e-6)
    # The same set in another order, float32 tensors, or precomputed statistics: still 0.
    shuffled = torch.from_numpy(features_a[::-1].copy()).float()
    assert frechet_distance(shuffled, FeatureStatistics.from_features(features_a)) == pytest.approx(0.0, abs=1e-4)


def test_frechet_distance_singular_covariance():
    # Fewer samples than features: rank-deficient covariances. eigh needs no offset; sqrtm gets eps when it fails.
    rng = np.random.default_rng(0)
    features_a, features_b = rng.normal(size=(6, 20)), rng.normal(size=(6, 20)) + 1.0
    by_eigh = frechet_distance(features_a, features_b)
    assert np.isfinite(by_eigh) and by_eigh > 0
    assert frechet_distance(features_a, features_b, method="sqrtm") == pytest.approx(by_eigh, rel=1e-3)
    assert frechet_distance(features_a, features_a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_bad_inputs():
    with pytest.raises(ValueError, match="same dimension, got 3 and 4"):
        frechet_distance(np.zeros((5, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(np.zeros((1, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        frechet_distance(np.full((4, 2), np.nan), np.ones((5, 2)))
    with pytest.raises(ValueError, match="'eigh' or 'sqrtm', got 'svd'"):
        frechet_distance(np.zeros((4, 2)), np.ones((5, 2)), method="svd")
    with pytest.raises(ValueError, match=r"shape \(num_samples, num_features\)"):
        frechet_distance(np.zeros(5), np.ones(5))


def test_feature_statistics_values_and_safetensors_round_trip(tmp_path):
    features = np.random.default_rng(0).normal(size=(50, 4))
    stats = FeatureStatistics.from_features(features)
    np.testing.assert_allclose(stats.mean, features.mean(axis=0))
    np.testing.assert_allclose(stats.cov, np.cov(features, rowvar=False))
    assert stats.num_samples == 50 and stats.dim == 4
    stats.save(tmp_path / "reference.safetensors")
    loaded = FeatureStatistics.load(tmp_path / "reference.safetensors")
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    assert loaded.num_samples == 50
    with pytest.raises(ValueError, match=r"mean of shape \(D,\) and cov of shape \(D, D\)"):
        FeatureStatistics(np.zeros(3), np.eye(2), num_samples=3)


@pytest.mark.skipif(importlib.util.find_spec("torchmetrics") is None, reason="torchmetrics is not installed")
def test_frechet_distance_matches_torchmetrics():
    from torchmetrics.image.fid import _compute_fid

    features_a = samples_with_moments(np.zeros(5), random_spd(5, 2), 200, seed=4)
    features_b = samples_with_moments(np.ones(5), random_spd(5, 3), 200, seed=5)
    expected = _compute_fid(
        torch.from_numpy(features_a.mean(0)),
        torch.from_numpy(np.cov(features_a, rowvar=False)),
        torch.from_numpy(features_b.mean(0)),
        torch.from_numpy(np.cov(features_b, rowvar=False)),
    )
    assert frechet_distance(features_a, features_b) == pytest.approx(float(expected), rel=1e-6)


# --------------------------------------------------------------------------------------------- histogram measures
def test_class_histogram_entropy_and_accuracy_values():
    histogram = class_histogram(torch.tensor([0, 2, 2, 1, 2, 0]), num_classes=4)
    assert histogram.tolist() == [2, 1, 3, 0] and histogram.dtype == np.int64
    # -(1/3 log 1/3 + 1/6 log 1/6 + 1/2 log 1/2); the empty class contributes 0.
    expected = -(1 / 3 * math.log(1 / 3) + 1 / 6 * math.log(1 / 6) + 1 / 2 * math.log(1 / 2))
    assert histogram_entropy(histogram) == pytest.approx(expected)
    assert histogram_entropy(histogram / histogram.sum()) == pytest.approx(expected)  # probabilities too
    assert histogram_entropy(np.full(10, 100)) == pytest.approx(math.log(10))  # the maximum
    assert histogram_entropy([0, 0, 7, 0]) == 0.0  # collapsed onto one class
    assert conditional_accuracy([1, 2, 3, 3], torch.tensor([1, 2, 0, 3])) == 0.75

    with pytest.raises(ValueError, match=r"class indices in \[0, 3\], found 4"):
        class_histogram([0, 4], num_classes=4)
    with pytest.raises(ValueError, match="found -1"):
        class_histogram([-1], num_classes=4)
    with pytest.raises(ValueError, match="sums to 0"):
        histogram_entropy([0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        histogram_entropy([1, -1])
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        conditional_accuracy([1, 2], [1, 2, 3])


# --------------------------------------------------------------------------------------------- classifier features
@pytest.fixture(scope="module")
def tiny_lenet():
    torch.manual_seed(0)
    return hfdl.create_model(
        "lenet5", image_size=16, conv_channels=[2, 4], hidden_sizes=[8, 6], num_labels=3, dropout=0.5
    ).eval()


def random_images(num_images: int, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(num_images, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_extractor_hook_returns_penultimate_activations(tiny_lenet):
    extractor = ClassifierFeatureExtractor(tiny_lenet, batch_size=7)  # batches of 7: the hook runs several times
    assert extractor.layer is tiny_lenet.classifier and extractor.num_classes == 3
    images = random_images(20)
    pixel_values = extractor.preprocess(images)
    assert pixel_values.shape == (20, 1, 16, 16)  # resized to the classifier's input side
    tiny_lenet.train()  # the extractor must switch dropout off and then restore the mode
    features, logits = extractor.features_and_logits(images)
    assert tiny_lenet.training
    tiny_lenet.eval()
    with torch.no_grad():
        expected_features = tiny_lenet.lenet5(pixel_values).last_hidden_state  # F6, the classifier's input
        expected_logits = tiny_lenet(pixel_values=pixel_values).logits
    assert features.shape == (20, 6)
    torch.testing.assert_close(features, expected_features)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(extractor.features(images), expected_features)
    assert torch.equal(extractor.predict(images), expected_logits.argmax(-1))


def test_extractor_applies_the_classifiers_own_normalisation(tiny_lenet):
    # The registry's processor for this config resizes to 16 and maps [0, 1] to [-1, 1] (mean 0.5, std 0.5). The
    # extractor's tensor path must give what the processor gives on the same images (up to uint8 rounding and the
    # small difference between PIL's and torch's antialiased bilinear resampling).
    processor = hfdl.get_architecture("lenet5").make_image_processor(tiny_lenet.config)
    extractor = ClassifierFeatureExtractor(tiny_lenet)
    images = torch.zeros(2, 1, 12, 12)
    images[:, :, 3:9, 4:8] = 1.0
    images[1, :, 2, :] = 0.5
    by_processor = processor([image[0].numpy() for image in images], return_tensors="pt")["pixel_values"]
    ours = extractor.preprocess(images)
    assert ours.shape == by_processor.shape
    assert (ours - by_processor).abs().mean() < 0.02
    assert (ours - by_processor).abs().max() < 0.2
    # Same size as the classifier: only the normalisation, exactly.
    same_size = random_images(3, size=16)
    torch.testing.assert_close(extractor.preprocess(same_size), same_size * 2 - 1)


def test_extractor_from_a_saved_folder(tiny_lenet, tmp_path):
    processor = hfdl.get_architecture("lenet5").make_image_processor(tiny_lenet.config)
    processor.image_mean, processor.image_std = 0.1307, 0.3081  # saved statistics win over the registry's defaults
    tiny_lenet.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    extractor = ClassifierFeatureExtractor.from_pretrained(tmp_path, device="cpu", batch_size=5)
    images = random_images(6)
    expected = ClassifierFeatureExtractor(tiny_lenet, image_processor=processor).features(images)
    torch.testing.assert_close(extractor.features(images), expected)
    torch.testing.assert_close(
        extractor.preprocess(random_images(2, size=16))[0], (random_images(2, size=16)[0] - 0.1307) / 0.3081
    )


def test_extractor_refuses_bad_images(tiny_lenet):
    extractor = ClassifierFeatureExtractor(tiny_lenet)
    with pytest.raises(ValueError, match=r"images in \[0, 1\], got values in \[-0.99.*tanh"):
        extractor.features(random_images(2) * 2 - 1)  # a GAN's tanh range
    with pytest.raises(ValueError, match="1-channel images, got 3 channels"):
        extractor.features(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        extractor.features(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        extractor.features(torch.rand(16, 16))
    with pytest.raises(ValueError, match="positive integer, got 0"):
        ClassifierFeatureExtractor(tiny_lenet, batch_size=0)


def test_extractor_falls_back_to_the_last_linear_layer(tiny_lenet):
    class Head(torch.nn.Module):  # no `classifier` attribute: the last nn.Linear registered is the output layer
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 5), torch.nn.Tanh())
            self.out = torch.nn.Linear(5, 3)

        def forward(self, pixel_values):
            return type("Output", (), {"logits": self.out(self.body(pixel_values))})()

    head = Head()
    processor = hfdl.get_architecture("lenet5").make_image_processor(tiny_lenet.config)
    extractor = ClassifierFeatureExtractor(head, image_processor=processor)
    assert extractor.layer is head.out and extractor.num_classes == 3
    images = random_images(4, size=16)
    with torch.no_grad():
        expected = head.body(images * 2 - 1)
    torch.testing.assert_close(extractor.features(images), expected)


def test_generative_report(tiny_lenet):
    extractor = ClassifierFeatureExtractor(tiny_lenet)
    reference, samples = random_images(40, seed=1), random_images(30, seed=2)
    reference_stats = extractor.statistics(reference)
    predictions = extractor.predict(samples)
    report = generative_report(extractor, samples, reference_stats, requested=predictions)
    histogram = np.bincount(predictions.numpy(), minlength=3)
    assert report["num_samples"] == 30
    assert report["class_histogram"] == histogram.tolist()
    assert report["entropy"] == pytest.approx(histogram_entropy(histogram))
    assert report["max_entropy"] == pytest.approx(math.log(3))
    assert report["entropy_ratio"] == pytest.approx(report["entropy"] / math.log(3))
    assert report["conditional_accuracy"] == 1.0
    assert report["frechet_distance"] == pytest.approx(frechet_distance(extractor.features(samples), reference_stats))
    # The reference against itself: 0. Without a reference or requested classes, those entries are None.
    assert generative_report(extractor, reference, reference_stats)["frechet_distance"] == pytest.approx(0, abs=1e-6)
    bare = generative_report(extractor, samples)
    assert bare["frechet_distance"] is None and bare["conditional_accuracy"] is None


# --------------------------------------------------------------------------------------------- representations
def blobs(num_per_class: int = 40, num_classes: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(num_classes, dim))
    labels = np.repeat(np.arange(num_classes), num_per_class)
    return centres[labels] + rng.normal(size=(labels.size, dim)), labels


def test_kmeans_scores_on_separated_blobs_and_on_noise():
    features, labels = blobs()
    scores = kmeans_scores(features, labels, n_clusters=4)
    assert scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    noise = np.random.default_rng(1).normal(size=features.shape)
    chance = kmeans_scores(noise, labels, n_clusters=4)
    assert chance["nmi"] < 0.2 and abs(chance["ari"]) < 0.1
    # Images (N, C, H, W) are flattened.
    assert kmeans_scores(torch.from_numpy(features).reshape(-1, 2, 2, 2), labels, n_clusters=4)["nmi"] > 0.99
    with pytest.raises(ValueError, match="3 entries for 160 feature rows"):
        kmeans_scores(features, labels[:3])
    with pytest.raises(ValueError, match=r"`n_clusters` must be an integer in \[2, 160\]"):
        kmeans_scores(features, labels, n_clusters=1)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d_shapes_and_determinism(method):
    features, labels = blobs(num_per_class=15, dim=60)  # > 50 dims: t-SNE first reduces by PCA
    first = embed_2d(features, method=method, seed=0)
    assert first.shape == (60, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, embed_2d(features, method=method, seed=0))
    # Well-separated blobs stay separated: K-Means on the 2-D points recovers them.
    assert kmeans_scores(first, labels, n_clusters=4)["nmi"] > 0.95


def test_embed_2d_errors():
    features, _ = blobs()
    with pytest.raises(ValueError, match="one of pca, tsne, umap, got 'mds'"):
        embed_2d(features, method="mds")
    with pytest.raises(ValueError, match="at least 3 samples"):
        embed_2d(features[:2])
    if importlib.util.find_spec("umap") is None:
        with pytest.raises(ImportError, match="umap-learn"):
            embed_2d(features, method="umap")


def test_missing_training_extras_are_named(monkeypatch, tmp_path):
    # A None entry in sys.modules makes the import fail as if the package were not installed.
    features, labels = blobs()
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    monkeypatch.setitem(sys.modules, "sklearn.decomposition", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"kmeans_scores needs the `sklearn` package.*pip install 'hfdl\[train\]'"):
        kmeans_scores(features, labels)
    with pytest.raises(ImportError, match=r"embed_2d needs the `sklearn` package"):
        embed_2d(features)
    with pytest.raises(ImportError, match=r"plot_embeddings needs the `matplotlib` package"):
        plot_embeddings({"x": (features[:, :2], labels)}, tmp_path / "x.png")


def test_plot_embeddings_writes_a_png(tmp_path):
    features, labels = blobs()
    path = plot_embeddings(
        {"PCA": (embed_2d(features), labels), "raw dims 0-1": (features[:, :2], labels)},
        tmp_path / "plots" / "embeddings.png",
        title="blobs",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"xy of shape \(N, 2\) and N labels"):
        plot_embeddings({"bad": (features, labels)}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="is empty"):
        plot_embeddings({}, tmp_path / "empty.png")
