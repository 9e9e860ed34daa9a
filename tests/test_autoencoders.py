"""The autoencoders (plain, sparse, denoising) and the VAE against hand-computed maths, torch references and training.

The contract suite (tests/test_model_contract.py) already proves shapes, saving, Auto classes, remote code and LoRA;
this file proves what those cannot see: that each penalty, noise, loss, bound and sampler computes what its docstring
says, and that a few optimiser steps make every variant fit a small fixed batch of real digits.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from hfdl.layers.hfdl_autoencoding import (
    conv_feature_sizes,
    corrupt_images,
    reconstruction_loss,
    sparsity_penalty,
)
from hfdl.models.autoencoder import AutoencoderConfig, AutoencoderImageProcessor, AutoencoderModel
from hfdl.models.vae import VAEConfig, VAEImageProcessor, VAEModel
from hfdl.models.vae.modeling_vae import gaussian_kl

SMALL_AE = {"image_size": 8, "hidden_sizes": [32, 16], "latent_dim": 6}
SMALL_VAE = {"image_size": 8, "hidden_sizes": [32, 16], "latent_dim": 4}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def autoencoder(seed: int = 0, **overrides) -> AutoencoderModel:
    torch.manual_seed(seed)
    return AutoencoderModel(AutoencoderConfig(**{**SMALL_AE, **overrides})).eval()


def vae(seed: int = 0, **overrides) -> VAEModel:
    torch.manual_seed(seed)
    return VAEModel(VAEConfig(**{**SMALL_VAE, **overrides})).eval()


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """64 of scikit-learn's 8x8 digits scaled to [0, 1]: real images, small enough for a few fast training steps."""
    datasets = pytest.importorskip("sklearn.datasets")
    images = torch.tensor(datasets.load_digits().images[:64], dtype=torch.float32) / 16.0
    return images.unsqueeze(1)  # (64, 1, 8, 8)


@pytest.fixture(scope="module")
def binary_digits(digits) -> torch.Tensor:
    return (digits > 0.5).float()


# --------------------------------------------------------------------------------------------- sparsity
def test_l1_penalty_is_the_batch_mean_of_each_codes_l1_norm():
    code = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 3.0]])
    assert sparsity_penalty(code, "l1", 0.05).item() == pytest.approx((3.0 + 3.5) / 2)


def test_kl_penalty_matches_the_hand_computed_divergence():
    # Mean activations over the batch: 0.05 (exactly the target: no penalty) and 0.5.
    code = torch.tensor([[0.0, 0.2], [0.1, 0.8]])
    rho = 0.05
    expected = rho * math.log(rho / 0.5) + (1 - rho) * math.log((1 - rho) / 0.5)
    assert sparsity_penalty(code, "kl", rho).item() == pytest.approx(expected, rel=1e-6)
    assert sparsity_penalty(torch.full((4, 3), rho), "kl", rho).item() == pytest.approx(0.0, abs=1e-6)
    # Units that never fire stay finite (rho_hat is clipped away from 0).
    assert torch.isfinite(sparsity_penalty(torch.zeros(4, 3), "kl", rho))


@pytest.mark.parametrize("sparsity", ["l1", "kl"])
def test_forward_adds_the_weighted_sparsity_penalty_of_its_code(sparsity, digits):
    model = autoencoder(sparsity=sparsity, sparsity_weight=0.01, sparsity_target=0.1)
    outputs = model(digits[:8], labels=digits[:8])
    code = outputs.latents
    if sparsity == "l1":
        assert (code >= 0).all()  # the ReLU code whose units L1 drives to exactly zero
        by_hand = sum(abs(v) for row in code.tolist() for v in row) / code.shape[0]
    else:
        assert ((code > 0) & (code < 1)).all()  # a sigmoid code: firing rates
        rates = code.mean(0).tolist()
        by_hand = sum(0.1 * math.log(0.1 / r) + 0.9 * math.log(0.9 / (1 - r)) for r in rates)
    assert outputs.sparsity_loss.item() == pytest.approx(0.01 * by_hand, rel=1e-5)
    torch.testing.assert_close(outputs.loss, outputs.reconstruction_loss + outputs.sparsity_loss)


def test_a_plain_autoencoder_has_a_linear_code_and_no_sparsity_loss(digits):
    model = autoencoder()
    outputs = model(digits[:8], labels=digits[:8])
    assert isinstance(model.latent_activation, nn.Identity) and outputs.sparsity_loss is None
    torch.testing.assert_close(outputs.loss, outputs.reconstruction_loss)


# --------------------------------------------------------------------------------------------- noise
def test_masking_zeroes_about_noise_level_of_the_values():
    images = torch.full((64, 1, 28, 28), 0.7)
    noisy = corrupt_images(images, "masking", 0.3, seeded(0))
    zeroed = (noisy == 0).float().mean().item()
    assert zeroed == pytest.approx(0.3, abs=0.01)
    assert torch.equal(noisy[noisy != 0], images[noisy != 0])  # the rest is untouched


def test_salt_and_pepper_sets_noise_level_of_the_values_to_0_or_1_evenly():
    images = torch.full((64, 1, 28, 28), 0.5)
    noisy = corrupt_images(images, "salt_and_pepper", 0.2, seeded(0))
    assert set(noisy.unique().tolist()) == {0.0, 0.5, 1.0}
    assert (noisy == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert (noisy == 1).float().mean().item() == pytest.approx(0.1, abs=0.01)


def test_gaussian_noise_has_the_std_of_noise_level_and_is_clipped_to_the_unit_interval():
    images = torch.full((64, 1, 28, 28), 0.5)
    noisy = corrupt_images(images, "gaussian", 0.1, seeded(0))  # 5 std from either bound: almost no clipping
    assert (noisy - images).std().item() == pytest.approx(0.1, rel=0.02)
    assert (noisy - images).mean().item() == pytest.approx(0.0, abs=0.003)
    heavy = corrupt_images(torch.rand(8, 1, 8, 8, generator=seeded(1)), "gaussian", 2.0, seeded(0))
    assert heavy.min() == 0 and heavy.max() == 1


@pytest.mark.parametrize("noise_type", ["gaussian", "masking", "salt_and_pepper"])
def test_noise_stays_in_range_and_a_seed_reproduces_it(noise_type):
    images = torch.rand(16, 1, 8, 8, generator=seeded(3))
    noisy = corrupt_images(images, noise_type, 0.5, seeded(0))
    assert noisy.min() >= 0 and noisy.max() <= 1 and noisy.shape == images.shape
    assert torch.equal(noisy, corrupt_images(images, noise_type, 0.5, seeded(0)))
    assert not torch.equal(noisy, corrupt_images(images, noise_type, 0.5, seeded(1)))
    assert not torch.equal(noisy, images)
    assert corrupt_images(images, noise_type, 0.0, seeded(0)) is images  # level 0: no noise


def test_denoising_autoencoder_corrupts_only_in_training_mode(digits):
    model = autoencoder(noise_type="masking", noise_level=0.5)
    images = digits[:8]
    # Eval: deterministic, on the clean images.
    clean = model(images, output_hidden_states=True)
    assert torch.equal(clean.hidden_states[0], images)
    torch.testing.assert_close(clean.reconstruction, model.decode(model.encode(images)))
    assert torch.equal(model(images).reconstruction, clean.reconstruction)
    # Training: the encoder sees model.corrupt(images) drawn from the same generator.
    model.train()
    noisy = model(images, generator=seeded(0), output_hidden_states=True)
    assert torch.equal(noisy.hidden_states[0], model.corrupt(images, generator=seeded(0)))
    assert not torch.equal(noisy.hidden_states[0], images)
    assert torch.equal(model(images, generator=seeded(0)).reconstruction, noisy.reconstruction)


# --------------------------------------------------------------------------------------------- reconstruction losses
def test_bce_and_mse_losses_equal_torchs_on_the_reconstruction(digits):
    images, targets = digits[:8], digits[8:16]
    bce_model = autoencoder(reconstruction_loss="bce")
    outputs = bce_model(images, labels=targets)
    reference = nn.functional.binary_cross_entropy(outputs.reconstruction, targets)
    torch.testing.assert_close(outputs.loss, reference, rtol=1e-5, atol=1e-6)
    mse_model = autoencoder(reconstruction_loss="mse")
    outputs = mse_model(images, labels=targets)
    torch.testing.assert_close(outputs.loss, nn.functional.mse_loss(outputs.reconstruction, targets))
    logits = torch.randn(2, 3)
    assert reconstruction_loss(logits, torch.rand(2, 3), "bce").ndim == 0


def test_bce_targets_must_be_pixels_in_the_unit_interval(digits):
    model = autoencoder()
    with pytest.raises(ValueError, match=r"`labels` must hold pixel values in \[0, 1\].*got values in \[0, 16\]"):
        model(digits[:2], labels=digits[:2] * 16)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(batch_size, 1, 8, 8\), got \(2, 1, 8, 9\)"):
        model(digits[:2], labels=torch.rand(2, 1, 8, 9))
    with pytest.raises(ValueError, match=r"`labels` must be a floating point tensor"):
        model(digits[:2], labels=digits[:2].long())
    # MSE has no such bound: a normalised target is a valid (if unusual) regression target.
    assert autoencoder(reconstruction_loss="mse")(digits[:2], labels=digits[:2] * 16).loss > 0


# --------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(("image_size", "conv_channels"), [(8, [4, 8]), (7, [4]), (9, [2, 3, 4]), (28, [4, 4, 4])])
def test_conv_decoder_gives_back_the_input_size_for_odd_and_even_sides(image_size, conv_channels):
    model = autoencoder(image_size=image_size, encoder_type="conv", conv_channels=conv_channels)
    images = torch.rand(2, 1, image_size, image_size)
    outputs = model(images, output_hidden_states=True)
    assert outputs.reconstruction.shape == images.shape
    sides = conv_feature_sizes(image_size, len(conv_channels))
    encoder_maps = outputs.hidden_states[1 : 1 + len(conv_channels)]
    assert [h.shape[-1] for h in encoder_maps] == sides[1:]
    torch.testing.assert_close(torch.sigmoid(outputs.hidden_states[-1]), outputs.reconstruction)


def test_autoencoder_decode_range_and_bad_latents():
    model = autoencoder(encoder_type="conv", conv_channels=[4, 8])
    images = model.decode(10 * torch.randn(5, 6))
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match=r"`latents` must have shape \(batch_size, 6\), got \(5, 4\)"):
        model.decode(torch.randn(5, 4))


def test_return_dict_false_puts_the_loss_then_the_reconstruction_first(digits):
    model = autoencoder(sparsity="l1")
    outputs = model(digits[:4], labels=digits[:4])
    as_tuple = model(digits[:4], labels=digits[:4], return_dict=False)
    assert torch.equal(as_tuple[0], outputs.loss) and torch.equal(as_tuple[1], outputs.reconstruction)


# --------------------------------------------------------------------------------------------- VAE maths
def test_kl_equals_the_closed_form_and_torch_distributions():
    mean, logvar = torch.randn(5, 3, generator=seeded(0)), torch.randn(5, 3, generator=seeded(1))
    std = torch.exp(0.5 * logvar)
    expected = kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected)
    # By hand for one dimension: KL(N(1, e^0) || N(0, 1)) = 0.5 * (1 + 1 - 1 - 0) = 0.5.
    assert gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[0.0]])).item() == pytest.approx(0.5)


@pytest.mark.parametrize("distribution", ["bernoulli", "gaussian"])
def test_vae_loss_is_reconstruction_plus_beta_kl_in_nats_per_image(distribution, binary_digits):
    model = vae(decoder_distribution=distribution, decoder_std=0.3, beta=2.5)
    images = binary_digits[:6]
    outputs = model(images, labels=images, generator=seeded(0))
    logits = model.decoder(outputs.latents)[0]  # the sampled z the loss used
    if distribution == "bernoulli":
        log_likelihood = Bernoulli(logits=logits).log_prob(images)
    else:
        log_likelihood = Normal(torch.sigmoid(logits), 0.3).log_prob(images)
    torch.testing.assert_close(outputs.reconstruction_loss, -log_likelihood.flatten(1).sum(1).mean())
    std = torch.exp(0.5 * outputs.latent_logvar)
    kl = kl_divergence(Normal(outputs.latent_mean, std), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(outputs.kl, kl)
    torch.testing.assert_close(outputs.loss, outputs.reconstruction_loss + 2.5 * outputs.kl)
    # The z of the loss is mean + std * eps with eps drawn from the generator.
    eps = torch.randn(outputs.latent_mean.shape, generator=seeded(0))
    torch.testing.assert_close(outputs.latents, outputs.latent_mean + std * eps)


def test_vae_eval_reconstruction_is_the_decoded_posterior_mean(binary_digits):
    model = vae()
    images = binary_digits[:4]
    outputs = model(images)
    assert outputs.loss is None and torch.equal(outputs.latents, outputs.latent_mean)
    torch.testing.assert_close(outputs.reconstruction, model.decode(model.encode(images)[0]))
    with_labels = model(images, labels=images, generator=seeded(0))
    assert torch.equal(with_labels.reconstruction, outputs.reconstruction)  # the loss sampled, the output did not
    assert not torch.equal(with_labels.latents, outputs.latent_mean)
    model.train()  # training: the reconstruction is of a sampled z
    sampled = model(images, generator=seeded(0))
    torch.testing.assert_close(sampled.reconstruction, model.decode(sampled.latents))
    assert not torch.allclose(sampled.reconstruction, outputs.reconstruction)


def test_elbo_per_image_matches_the_loss_at_beta_1_and_a_hand_computation(binary_digits):
    model = vae()
    images = binary_digits[:5]
    elbo = model.elbo(images, generator=seeded(0))
    assert elbo.shape == (5,) and (elbo < 0).all()  # a Bernoulli likelihood: log p(x) < 0
    torch.testing.assert_close(-elbo.mean(), model(images, labels=images, generator=seeded(0)).loss)
    mean, logvar = model.encode(images)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=seeded(0))
    by_hand = Bernoulli(probs=model.decode(z)).log_prob(images).flatten(1).sum(1) - gaussian_kl(mean, logvar)
    torch.testing.assert_close(elbo, by_hand, rtol=1e-4, atol=1e-3)
    # beta weighs the training loss only: the ELBO is the bound whatever beta.
    model.config.beta = 4.0
    torch.testing.assert_close(model.elbo(images, generator=seeded(0)), elbo)


def test_iwae_bound_with_one_sample_is_the_elbo_in_expectation(binary_digits):
    model = vae()
    images = binary_digits[:4].repeat(500, 1, 1, 1)  # 2,000 draws: 500 per image
    iwae = model.iwae_bound(images, num_samples=1, generator=seeded(0))
    elbo = model.elbo(images, generator=seeded(1)).detach()
    standard_error = math.sqrt(iwae.var().item() / iwae.numel() + elbo.var().item() / elbo.numel())
    assert abs(iwae.mean().item() - elbo.mean().item()) < 4 * standard_error


def test_iwae_bound_tightens_with_k_and_is_the_log_mean_exp_of_single_weights(binary_digits):
    model = vae()
    images = binary_digits[:8]
    # The noise is drawn one importance sample at a time, so 64 calls with k=1 see the k=64 call's z's.
    generator = seeded(0)
    single = torch.stack([model.iwae_bound(images, num_samples=1, generator=generator) for _ in range(64)])
    iwae_64 = model.iwae_bound(images, num_samples=64, generator=seeded(0))
    torch.testing.assert_close(iwae_64, torch.logsumexp(single, 0) - math.log(64), rtol=1e-5, atol=1e-4)
    assert (iwae_64 >= single.mean(0) - 1e-4).all()  # Jensen, for the same draws
    fresh_k1 = torch.stack([model.iwae_bound(images, 1, generator=seeded(100 + i)) for i in range(16)])
    assert iwae_64.mean() > fresh_k1.mean() + 0.5  # on average, by a margin an untrained VAE leaves wide open


def test_iwae_bound_does_not_depend_on_the_chunk_size(binary_digits):
    model = vae(encoder_type="conv", conv_channels=[4, 8])
    images = binary_digits[:3]
    one_chunk = model.iwae_bound(images, num_samples=50, generator=seeded(0), chunk_size=50)
    for chunk_size in (1, 7, None):
        chunked = model.iwae_bound(images, num_samples=50, generator=seeded(0), chunk_size=chunk_size)
        torch.testing.assert_close(chunked, one_chunk, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="`chunk_size` must be a positive integer, got 0"):
        model.iwae_bound(images, num_samples=5, chunk_size=0)
    with pytest.raises(ValueError, match=r"`pixel_values` must hold pixel values in \[0, 1\]"):
        model.iwae_bound(images * 2 - 1, num_samples=5)


def test_sample_is_reproducible_with_a_seeded_generator_and_in_range():
    model = vae(encoder_type="conv", conv_channels=[4, 8])
    first = model.sample(6, generator=seeded(0))
    assert first.shape == (6, 1, 8, 8) and first.dtype == torch.float32 and not first.requires_grad
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, model.sample(6, generator=seeded(0)))
    assert not torch.equal(first, model.sample(6, generator=seeded(1)))
    torch.testing.assert_close(first, model.decode(torch.randn(6, 4, generator=seeded(0))))
    with pytest.raises(ValueError, match="`num_samples` must be a positive integer, got 0"):
        model.sample(0)


def test_vae_decode_shape_and_range():
    model = vae(decoder_distribution="gaussian")
    images = model.decode(10 * torch.randn(3, 4))
    assert images.shape == (3, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match=r"`latents` must have shape \(batch_size, 4\)"):
        model.decode(torch.randn(3))


# --------------------------------------------------------------------------------------------- training
TRAINING_CASES = {
    "ae-mlp": (AutoencoderModel, AutoencoderConfig, {}),
    "ae-conv": (AutoencoderModel, AutoencoderConfig, {"encoder_type": "conv", "conv_channels": [8, 16]}),
    "sparse-ae-kl": (AutoencoderModel, AutoencoderConfig, {"sparsity": "kl", "sparsity_weight": 0.01}),
    "sparse-ae-l1": (AutoencoderModel, AutoencoderConfig, {"sparsity": "l1", "sparsity_weight": 0.01}),
    "denoising-ae": (AutoencoderModel, AutoencoderConfig, {"noise_type": "masking", "noise_level": 0.3}),
    "vae-bernoulli": (VAEModel, VAEConfig, {}),
    "vae-gaussian-conv": (
        VAEModel,
        VAEConfig,
        {"decoder_distribution": "gaussian", "encoder_type": "conv", "conv_channels": [8, 16]},
    ),
}


@pytest.mark.parametrize("case", list(TRAINING_CASES))
def test_a_few_adam_steps_lower_the_loss_on_a_fixed_batch(case, digits):
    model_class, config_class, overrides = TRAINING_CASES[case]
    base = SMALL_VAE if model_class is VAEModel else SMALL_AE
    torch.manual_seed(0)
    model = model_class(config_class(**{**base, **overrides})).train()
    images = digits[:32]

    def loss_at(seed: int) -> torch.Tensor:  # the same noise before and after training: a fair comparison
        return model(images, labels=images, generator=seeded(seed)).loss

    with torch.no_grad():
        before = loss_at(123).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        loss = loss_at(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_at(123).item()
    assert after < before - 0.1 * abs(before), (before, after)


# --------------------------------------------------------------------------------------------- configs, processors
@pytest.mark.parametrize(
    ("config_class", "field", "value", "message"),
    [
        (AutoencoderConfig, "encoder_type", "rnn", "must be one of 'mlp', 'conv'"),
        (AutoencoderConfig, "sparsity", "l2", "must be one of 'none', 'l1', 'kl'"),
        (AutoencoderConfig, "sparsity_target", 1.0, r"in \(0, 1\)"),
        (AutoencoderConfig, "sparsity_weight", -1.0, ">= 0"),
        (AutoencoderConfig, "reconstruction_loss", "l1", "must be one of 'bce', 'mse'"),
        (AutoencoderConfig, "noise_type", "speckle", "must be one of 'none', 'gaussian'"),
        (AutoencoderConfig, "noise_level", float("nan"), "finite number"),
        (AutoencoderConfig, "conv_channels", [4, 0], "positive integer"),
        (VAEConfig, "decoder_distribution", "laplace", "must be one of 'bernoulli', 'gaussian'"),
        (VAEConfig, "decoder_std", 0.0, "positive number"),
        (VAEConfig, "beta", -0.5, ">= 0"),
        (VAEConfig, "latent_dim", 0, "positive integer"),
    ],
)
def test_invalid_config_values_name_the_field(config_class, field, value, message):
    with pytest.raises(ValueError, match=rf"`{field}(\[\d\])?`.*{message}"):
        config_class(**{field: value})


def test_noise_level_is_a_probability_except_for_gaussian_noise():
    with pytest.raises(ValueError, match=r"`noise_level` must be a finite number in \[0, 1.0\], got 1.5"):
        AutoencoderConfig(noise_type="masking", noise_level=1.5)
    assert AutoencoderConfig(noise_type="gaussian", noise_level=1.5).noise_level == 1.5


@pytest.mark.parametrize("processor_class", [AutoencoderImageProcessor, VAEImageProcessor])
def test_image_processors_give_unnormalised_pixels_in_the_unit_interval(processor_class, tmp_path):
    processor = processor_class()
    assert processor.size == 28 and processor.image_mean == 0.0 and processor.image_std == 1.0
    image = torch.arange(20 * 24, dtype=torch.float32).reshape(20, 24).remainder(256).to(torch.uint8).numpy()
    pixels = processor(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 1, 28, 28) and pixels.min() >= 0 and pixels.max() <= 1
    full = processor(torch.full((28, 28), 255, dtype=torch.uint8).numpy(), return_tensors="pt")["pixel_values"]
    assert torch.equal(full, torch.ones(1, 1, 28, 28))
    processor.save_pretrained(tmp_path)
    reloaded = processor_class.from_pretrained(tmp_path)
    assert torch.equal(reloaded(image, return_tensors="pt")["pixel_values"], pixels)
