"""Measures for generative models and learned representations (course chapters 7 and 8): numbers, not just pictures.

A sample grid shows whether a generator works at all; it cannot rank two generators or catch a generator that draws
only three digits beautifully. This module gives the measures the benchmarks and recipes report:

* **Frechet distance** (:func:`frechet_distance`) between two sets of feature vectors, the formula of the FID
  (Heusel et al., 2017): each set is summarised by a Gaussian (mean, covariance) and the distance is
  ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The FID proper uses Inception-v3 features, whose weights
  cannot be downloaded here; on MNIST the features of a held-out digit classifier are the usual substitute, and
  :class:`ClassifierFeatureExtractor` takes them from any hfdl image classifier.
* **Class histogram** of the classifier's predictions on samples, its **entropy** (a generator that collapsed onto a
  few modes has a low one; the maximum is ``log K`` for K classes) and, for a class-conditional generator, the
  **conditional accuracy**: how often the classifier sees the class that was asked for.
  :func:`generative_report` computes them all in one pass over the samples.
* **Representation learning**: K-Means on features scored against the true labels (:func:`kmeans_scores`, NMI and
  ARI), 2-D embeddings (:func:`embed_2d`: PCA, t-SNE, UMAP) and a plot of several side by side
  (:func:`plot_embeddings`).

Nothing here depends on a generative model: samples come in as plain image tensors in [0, 1], shape (N, C, H, W).
scikit-learn, scipy and matplotlib are training extras, imported by the functions that need them.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ClassifierFeatureExtractor",
    "FeatureStatistics",
    "class_histogram",
    "conditional_accuracy",
    "embed_2d",
    "frechet_distance",
    "generative_report",
    "histogram_entropy",
    "kmeans_scores",
    "plot_embeddings",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence


def _import_train_extra(module: str, needed_by: str) -> Any:
    """Import a training-extra module (scikit-learn, scipy, matplotlib), or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{needed_by} needs the `{package}` package. Install the training extras: pip install 'hfdl[train]'"
        ) from error


def _as_numpy(values: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """A torch tensor, numpy array or nested sequence as a numpy array of ``dtype`` (tensors leave the graph)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be numeric (an array or tensor), got {type(values).__name__}: {error}"
        ) from None


def _as_feature_matrix(features: Any, name: str) -> np.ndarray:
    """Features as a finite float64 (N, D) matrix; images (N, C, H, W) are flattened to (N, C * H * W)."""
    array = _as_numpy(features, name)
    if array.ndim == 1 or array.ndim == 0:
        raise ValueError(f"`{name}` must have shape (num_samples, num_features) or more dims, got shape {array.shape}.")
    array = array.reshape(array.shape[0], -1)
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` holds NaN or infinite values; features must be finite.")
    return array


# ---------------------------------------------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStatistics:
    """The Gaussian summary of a feature set that the Frechet distance compares: mean, covariance, sample count.

    A reference split (the real test images) is compared with every model's samples: computing its statistics once
    and keeping them (:meth:`save` / :meth:`load`, safetensors) saves a pass of the classifier per comparison.
    The covariance is the unbiased one (divided by N - 1), as in the FID's reference code.
    """

    mean: np.ndarray  # (D,)
    cov: np.ndarray  # (D, D)
    num_samples: int

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        cov = np.asarray(self.cov, dtype=np.float64)
        if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
            raise ValueError(
                f"FeatureStatistics needs mean of shape (D,) and cov of shape (D, D); got {mean.shape} and {cov.shape}."
            )
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise ValueError("FeatureStatistics holds NaN or infinite values.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def from_features(cls, features: ArrayLike) -> FeatureStatistics:
        """Mean and unbiased covariance of ``features`` (N, D), computed in float64; needs N >= 2."""
        array = _as_feature_matrix(features, "features")
        if array.shape[0] < 2:
            raise ValueError(f"A covariance needs at least 2 samples, got {array.shape[0]}.")
        return cls(
            mean=array.mean(axis=0),
            cov=np.cov(array, rowvar=False).reshape(array.shape[1], -1),
            num_samples=array.shape[0],
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the statistics as a safetensors file (never a pickle)."""
        from safetensors.numpy import save_file

        save_file(
            {"mean": self.mean, "cov": self.cov},
            str(path),
            metadata={"num_samples": str(self.num_samples), "format": "hfdl-feature-statistics"},
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStatistics:
        """Read statistics written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as file:
            metadata = file.metadata() or {}
            if metadata.get("format") != "hfdl-feature-statistics":
                raise ValueError(f"{path} is not a FeatureStatistics file (its metadata is {metadata}).")
            return cls(file.get_tensor("mean"), file.get_tensor("cov"), int(metadata["num_samples"]))


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric PSD matrix; eigenvalues below 0 (rounding) are taken as 0."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray, method: str, eps: float) -> float:
    """``tr((S_a S_b)^(1/2))``, the cross term of the Frechet distance.

    ``S_a S_b`` is not symmetric, but it is similar to ``S_a^(1/2) S_b S_a^(1/2)``, which is symmetric PSD: the two
    share their (real, non-negative) eigenvalues, so the trace of the square root is the sum of the square roots of
    that symmetric matrix's eigenvalues. ``eigh`` works on it and never meets a complex number or an inverse, so a
    singular covariance (fewer samples than features) needs no offset.

    ``sqrtm`` is the FID reference code's route: ``scipy.linalg.sqrtm`` of the product. Rounding can leave it a small
    imaginary part (dropped, if small) or a non-finite result for a singular product (then ``eps`` is added to both
    diagonals and it is computed again).
    """
    if method == "eigh":
        root_a = _symmetric_sqrt(cov_a)
        eigenvalues = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
        return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    linalg = _import_train_extra("scipy.linalg", "frechet_distance(method='sqrtm')")
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        offset = eps * np.eye(cov_a.shape[0])
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        largest = np.abs(np.diagonal(root).imag).max()
        if largest > 1e-3 * max(1.0, np.abs(np.diagonal(root).real).max()):
            raise ValueError(
                f"The matrix square root has an imaginary part of {largest:.3g}: the covariances are ill-conditioned; use method='eigh'."
            )
        root = root.real
    return float(np.trace(root))


def frechet_distance(
    features_a: ArrayLike | FeatureStatistics,
    features_b: ArrayLike | FeatureStatistics,
    method: str = "eigh",
    eps: float = 1e-6,
) -> float:
    """The Frechet distance between the Gaussians fitted to two feature sets (the FID's formula, any features).

    ``d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``: the squared 2-Wasserstein distance
    between N(mu_a, S_a) and N(mu_b, S_b). It is 0 for identical statistics and grows both when the sample mean
    drifts and when the spread differs (a generator with too little diversity has a small covariance). The value
    returned is ``d^2``, no square root taken: the number the FID reports.

    Args:
        features_a, features_b: (N, D) arrays or tensors (images (N, C, H, W) are flattened), or precomputed
            :class:`FeatureStatistics`. Both must have the same D.
        method: ``"eigh"`` (default: a symmetric eigen-decomposition, exact for PSD covariances, see
            :func:`_trace_sqrt_product`) or ``"sqrtm"`` (``scipy.linalg.sqrtm``, as the FID reference code).
        eps: The diagonal offset ``"sqrtm"`` adds if the product's square root is not finite (singular covariances).

    The estimate is biased upwards for small N (a finite sample's covariance is noisy), so compare distances
    computed with the same number of samples. Computed in float64; the result is clipped at 0 (rounding can make
    the distance between identical sets -1e-12).
    """
    if method not in ("eigh", "sqrtm"):
        raise ValueError(f"`method` must be 'eigh' or 'sqrtm', got {method!r}.")
    stats_a = features_a if isinstance(features_a, FeatureStatistics) else FeatureStatistics.from_features(features_a)
    stats_b = features_b if isinstance(features_b, FeatureStatistics) else FeatureStatistics.from_features(features_b)
    if stats_a.dim != stats_b.dim:
        raise ValueError(f"The two feature sets must have the same dimension, got {stats_a.dim} and {stats_b.dim}.")
    mean_term = float(np.sum((stats_a.mean - stats_b.mean) ** 2))
    cross = _trace_sqrt_product(stats_a.cov, stats_b.cov, method, eps)
    return max(0.0, mean_term + float(np.trace(stats_a.cov) + np.trace(stats_b.cov)) - 2.0 * cross)


# ---------------------------------------------------------------------------------------------------------------
# Features and predictions of a classifier
# ---------------------------------------------------------------------------------------------------------------


class ClassifierFeatureExtractor:
    """Penultimate features and predicted classes of an hfdl image classifier, for images in [0, 1].

    The features are the *input of the classifier's output layer*: the vector the last linear layer turns into
    logits (LeNet-5's F6, ResNet's pooled features, ViT's class token after dropout). It is captured with a forward
    pre-hook on ``layer`` (default: ``model.classifier`` when it is a module, as in every hfdl image head, otherwise
    the last ``nn.Linear`` the model registers), so any classifier works without knowing its internals. The model
    runs in eval mode (no dropout) and its training mode is restored afterwards. ``device`` (default: where the
    model's parameters are) moves the model there; images may come from any device, features return on the CPU.

    Images come in as a generator produces them: float (N, C, H, W) in [0, 1]. The extractor applies the
    classifier's own preprocessing itself: resize to the processor's ``size`` (bilinear, antialiased; 28 -> 32 for
    LeNet-5) and ``(x - image_mean) / image_std``. The processor is ``image_processor`` if given (e.g. the one saved
    beside the classifier), else the one the hfdl registry builds for the model's config, which is what the image
    recipe trained it with. A 1-channel image given to a 3-channel classifier is repeated over the channels.
    """

    def __init__(
        self,
        model: nn.Module,
        image_processor: Any = None,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        layer: nn.Module | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"`model` must be a torch module (an hfdl image classifier), got {type(model).__name__}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.layer = layer if layer is not None else self._find_output_layer(model)
        if image_processor is None:
            from .registry import find_task

            spec, _ = find_task(model)
            image_processor = spec.make_image_processor(model.config)
            if image_processor is None:
                raise ValueError(f"{type(model).__name__} has no image processor; pass image_processor=.")
        self.image_size = int(image_processor.size)
        self.num_channels = int(image_processor.num_channels)
        shape = (1, self.num_channels, 1, 1)
        self.image_mean = torch.as_tensor(image_processor.image_mean, dtype=torch.float32).expand(shape).clone()
        self.image_std = torch.as_tensor(image_processor.image_std, dtype=torch.float32).expand(shape).clone()
        config = getattr(model, "config", None)
        self.num_classes = getattr(config, "num_labels", None) or getattr(self.layer, "out_features", None)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> ClassifierFeatureExtractor:
        """Load a saved hfdl classifier folder (config, weights, image processor) and wrap it."""
        # Importing this module imported hfdl, which registered its classes with the Auto classes: no remote code.
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        model = AutoModelForImageClassification.from_pretrained(path)
        processor = AutoImageProcessor.from_pretrained(path)
        return cls(model, image_processor=processor, **kwargs)

    @staticmethod
    def _find_output_layer(model: nn.Module) -> nn.Module:
        classifier = getattr(model, "classifier", None)
        if isinstance(classifier, nn.Module):
            return classifier
        linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise ValueError(f"{type(model).__name__} has no `classifier` module and no nn.Linear; pass layer=.")
        return linears[-1]

    def preprocess(self, images: ArrayLike) -> torch.Tensor:
        """[0, 1] images (N, C, H, W) -> the normalised ``pixel_values`` the classifier takes."""
        pixels = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if pixels.ndim == 3:  # (N, H, W): one channel
            pixels = pixels[:, None]
        if pixels.ndim != 4 or pixels.shape[0] == 0:
            raise ValueError(f"Expected images of shape (N, C, H, W) with N >= 1, got {tuple(pixels.shape)}.")
        if not pixels.is_floating_point():
            raise ValueError(f"Expected float images in [0, 1], got dtype {pixels.dtype} (divide uint8 by 255).")
        pixels = pixels.detach().float()
        low, high = pixels.min().item(), pixels.max().item()
        if low < -1e-3 or high > 1 + 1e-3:
            raise ValueError(
                f"Expected images in [0, 1], got values in [{low:.3g}, {high:.3g}] "
                "(a GAN generator's tanh output is in [-1, 1]: map it with (x + 1) / 2, or use model.sample)."
            )
        channels = pixels.shape[1]
        if channels != self.num_channels:
            if channels == 1 and self.num_channels == 3:
                pixels = pixels.expand(-1, 3, -1, -1)
            else:
                raise ValueError(f"The classifier takes {self.num_channels}-channel images, got {channels} channels.")
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            pixels = torch.nn.functional.interpolate(
                pixels, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
            )
        mean, std = self.image_mean.to(pixels.device), self.image_std.to(pixels.device)
        return (pixels.clamp(0, 1) - mean) / std

    def features_and_logits(self, images: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass: penultimate features (N, D) and logits (N, num_classes), float32 on the CPU."""
        pixel_values = self.preprocess(images)
        captured: list[torch.Tensor] = []

        def capture(module: nn.Module, args: tuple) -> None:
            captured.append(args[0].flatten(1).float().cpu())

        handle = self.layer.register_forward_pre_hook(capture)
        was_training = self.model.training
        self.model.eval()
        logits = []
        try:
            with torch.inference_mode():
                for start in range(0, pixel_values.shape[0], self.batch_size):
                    batch = pixel_values[start : start + self.batch_size].to(self.device)
                    logits.append(self.model(pixel_values=batch).logits.float().cpu())
        finally:
            handle.remove()
            self.model.train(was_training)
        if len(captured) != len(logits):
            raise RuntimeError(f"The hooked layer ran {len(captured)} times for {len(logits)} batches; pass layer=.")
        return torch.cat(captured), torch.cat(logits)

    def features(self, images: ArrayLike) -> torch.Tensor:
        """Penultimate features (N, D) of [0, 1] images."""
        return self.features_and_logits(images)[0]

    def predict(self, images: ArrayLike) -> torch.Tensor:
        """Predicted class indices (N,) of [0, 1] images."""
        return self.features_and_logits(images)[1].argmax(dim=-1)

    def statistics(self, images: ArrayLike) -> FeatureStatistics:
        """The :class:`FeatureStatistics` of the images' features: a reference set's, computed once."""
        return FeatureStatistics.from_features(self.features(images))


# ---------------------------------------------------------------------------------------------------------------
# Class histogram, entropy, conditional accuracy
# ---------------------------------------------------------------------------------------------------------------


def class_histogram(predictions: ArrayLike, num_classes: int) -> np.ndarray:
    """How many predictions fall in each class: an int64 array of length ``num_classes``."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}.")
    values = _as_numpy(predictions, "predictions", dtype=np.float64).reshape(-1)
    if values.size and (not np.all(values == np.round(values)) or values.min() < 0 or values.max() >= num_classes):
        bad = values[(values != np.round(values)) | (values < 0) | (values >= num_classes)][0]
        raise ValueError(f"`predictions` must be class indices in [0, {num_classes - 1}], found {bad:g}.")
    return np.bincount(values.astype(np.int64), minlength=num_classes)


def histogram_entropy(histogram: ArrayLike) -> float:
    """Shannon entropy in nats of a class histogram (counts or probabilities); ``log K`` when uniform over K.

    The mode-collapse measure: a generator that covers every class equally reaches ``log K`` (2.303 for 10
    digits); one that draws a single class reaches 0. Empty classes contribute 0 (the limit of ``p log p``).
    """
    counts = _as_numpy(histogram, "histogram").reshape(-1)
    if counts.size == 0 or (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"`histogram` must be non-empty, finite and non-negative, got {counts.tolist()}.")
    total = counts.sum()
    if total <= 0:
        raise ValueError("`histogram` sums to 0: there is no distribution to take the entropy of.")
    probabilities = counts[counts > 0] / total
    return max(0.0, float(-(probabilities * np.log(probabilities)).sum()))  # never -0.0 for one class


def conditional_accuracy(predictions: ArrayLike, requested: ArrayLike) -> float:
    """The fraction of samples a classifier assigns to the class they were generated for (a cGAN's measure)."""
    predicted = _as_numpy(predictions, "predictions", dtype=np.int64).reshape(-1)
    wanted = _as_numpy(requested, "requested", dtype=np.int64).reshape(-1)
    if predicted.shape != wanted.shape or predicted.size == 0:
        raise ValueError(
            f"`predictions` and `requested` must be non-empty and of the same length, got {predicted.size} and "
            f"{wanted.size}."
        )
    return float((predicted == wanted).mean())


def generative_report(
    extractor: ClassifierFeatureExtractor,
    samples: ArrayLike,
    reference_stats: FeatureStatistics | None = None,
    requested: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every sample measure in one classifier pass over ``samples`` ([0, 1] images, (N, C, H, W)).

    Returns a dict of plain JSON values:

    * ``num_samples``;
    * ``frechet_distance``: against ``reference_stats`` (``None`` when no reference is given, e.g. for a cheap
      mode-collapse monitor during training);
    * ``class_histogram``: counts per class of the classifier's predictions (a list);
    * ``entropy``: of that histogram, in nats; ``max_entropy``: ``log K``; ``entropy_ratio``: their quotient
      (1 = every class equally often);
    * ``conditional_accuracy``: the fraction predicted as ``requested`` (the classes asked of a conditional
      generator, one per sample), or ``None`` when ``requested`` is not given.
    """
    features, logits = extractor.features_and_logits(samples)
    predictions = logits.argmax(dim=-1)
    num_classes = int(extractor.num_classes or logits.shape[-1])
    histogram = class_histogram(predictions, num_classes)
    entropy = histogram_entropy(histogram)
    report: dict[str, Any] = {
        "num_samples": int(features.shape[0]),
        "frechet_distance": None,
        "class_histogram": histogram.tolist(),
        "entropy": entropy,
        "max_entropy": math.log(num_classes),
        "entropy_ratio": entropy / math.log(num_classes) if num_classes > 1 else 1.0,
        "conditional_accuracy": None,
    }
    if reference_stats is not None:
        report["frechet_distance"] = frechet_distance(features, reference_stats)
    if requested is not None:
        report["conditional_accuracy"] = conditional_accuracy(predictions, requested)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Representation learning: clustering scores and 2-D embeddings
# ---------------------------------------------------------------------------------------------------------------


def kmeans_scores(
    features: ArrayLike, labels: ArrayLike, n_clusters: int = 10, seed: int = 0, n_init: int = 10
) -> dict[str, float]:
    """K-Means on ``features`` scored against the true ``labels``: ``{"nmi", "ari"}`` (scikit-learn).

    NMI (normalised mutual information) and ARI (adjusted Rand index) compare the clustering with the classes
    without matching cluster ids to labels: 1 is a perfect match, ~0 (ARI) a chance one. Run on raw pixels and on
    a model's latents, they say whether the representation made the classes easier to separate without labels.
    ``n_init`` restarts from different seeded centroids keep the best inertia; the result is a function of ``seed``.
    """
    cluster = _import_train_extra("sklearn.cluster", "kmeans_scores")
    metrics = _import_train_extra("sklearn.metrics", "kmeans_scores")
    matrix = _as_feature_matrix(features, "features")
    truth = _as_numpy(labels, "labels", dtype=np.int64).reshape(-1)
    if truth.shape[0] != matrix.shape[0]:
        raise ValueError(f"`labels` has {truth.shape[0]} entries for {matrix.shape[0]} feature rows.")
    if not isinstance(n_clusters, int) or not 2 <= n_clusters <= matrix.shape[0]:
        raise ValueError(
            f"`n_clusters` must be an integer in [2, {matrix.shape[0]}] (the samples), got {n_clusters!r}."
        )
    clusters = cluster.KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(matrix)
    return {
        "nmi": float(metrics.normalized_mutual_info_score(truth, clusters)),
        "ari": float(metrics.adjusted_rand_score(truth, clusters)),
    }


EMBEDDING_METHODS = ("pca", "tsne", "umap")


def embed_2d(features: ArrayLike, method: str = "pca", seed: int = 0, **kwargs: Any) -> np.ndarray:
    """A 2-D embedding (N, 2) of ``features`` for plotting, reproducible for a given ``seed``.

    * ``"pca"``: the two directions of largest variance (linear; keeps global distances, blurs clusters).
    * ``"tsne"`` (scikit-learn): keeps neighbourhoods, so clusters separate, but distances between clusters mean
      little. Inputs wider than 50 dims are first reduced to 50 by PCA (the usual practice: faster, less noise);
      ``perplexity`` (default 30, at most (N - 1) / 3) can be passed.
    * ``"umap"``: needs the ``umap-learn`` package, which hfdl does not require; a clear error says so.

    Extra keyword arguments go to the scikit-learn / umap estimator.
    """
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"`method` must be one of {', '.join(EMBEDDING_METHODS)}, got {method!r}.")
    matrix = _as_feature_matrix(features, "features")
    if matrix.shape[0] < 3:
        raise ValueError(f"A 2-D embedding needs at least 3 samples, got {matrix.shape[0]}.")
    decomposition = _import_train_extra("sklearn.decomposition", "embed_2d")
    if method == "pca":
        return decomposition.PCA(n_components=2, random_state=seed, **kwargs).fit_transform(matrix)
    if method == "tsne":
        manifold = _import_train_extra("sklearn.manifold", "embed_2d(method='tsne')")
        if matrix.shape[1] > 50:
            matrix = decomposition.PCA(n_components=min(50, matrix.shape[0]), random_state=seed).fit_transform(matrix)
        kwargs.setdefault("perplexity", min(30.0, (matrix.shape[0] - 1) / 3))
        return manifold.TSNE(n_components=2, init="pca", random_state=seed, **kwargs).fit_transform(matrix)
    try:
        import umap
    except ImportError:
        raise ImportError(
            "embed_2d(method='umap') needs the umap-learn package (pip install umap-learn), which is not installed; "
            "method='pca' or 'tsne' need only scikit-learn."
        ) from None
    return umap.UMAP(n_components=2, random_state=seed, **kwargs).fit_transform(matrix)


def plot_embeddings(
    embeddings: Mapping[str, tuple[ArrayLike, ArrayLike]], path: str | os.PathLike, title: str | None = None
) -> Path:
    """Scatter plots of several 2-D embeddings side by side, points coloured by class; writes a PNG to ``path``.

    ``embeddings`` maps a panel title ("PCA of pixels", "AE latents") to ``(xy (N, 2), labels (N,))``. Built on a
    bare matplotlib ``Figure`` (Agg canvas), so it needs no display and leaves pyplot's global state alone.
    """
    Figure = _import_train_extra("matplotlib.figure", "plot_embeddings").Figure  # noqa: N806 (a class)
    if not embeddings:
        raise ValueError("`embeddings` is empty: pass {panel title: (xy, labels)}.")
    panels = []
    for name, (xy, labels) in embeddings.items():
        points = _as_numpy(xy, f"embeddings[{name!r}] xy")
        labels = _as_numpy(labels, f"embeddings[{name!r}] labels", dtype=np.int64).reshape(-1)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] != labels.shape[0]:
            raise ValueError(
                f"embeddings[{name!r}] needs xy of shape (N, 2) and N labels, got {points.shape} and {labels.shape}."
            )
        panels.append((name, points, labels))
    classes = np.unique(np.concatenate([labels for _, _, labels in panels]))
    # Up to 10 classes get tab10's distinct colours, one per class id; more get a continuous map.
    low, high = int(classes.min()), int(classes.max())
    colours = {"cmap": "tab10", "vmin": low - 0.5, "vmax": low + 9.5} if high - low < 10 else {"cmap": "viridis"}
    figure = Figure(figsize=(4.2 * len(panels) + 0.8, 4.4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (name, points, labels) in zip(axes, panels):
        scatter = axis.scatter(points[:, 0], points[:, 1], c=labels, s=3, alpha=0.7, **colours)
        axis.set_title(name)
        axis.set_xticks([])
        axis.set_yticks([])
    colorbar = figure.colorbar(scatter, ax=list(axes), ticks=classes if classes.size <= 10 else None, shrink=0.8)
    colorbar.set_label("class")
    if title:
        figure.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
