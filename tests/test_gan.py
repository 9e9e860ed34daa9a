"""The GAN family (course ch. 8): MLP GAN, DCGAN and conditional GAN as configs of one model.

The registry contract (tests/test_model_contract.py) already covers save/load, Auto classes, remote code, LoRA and
bad latents for the small conditional DCGAN of the test config; these tests check what is particular to GANs: the
layer layouts of the papers, sampling from a seed, class conditioning, spectral norm, and that the two networks
train against each other with the non-saturating losses.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.functional import softplus
from torch.nn.utils import parametrize
from transformers import AutoModel

import hfdl
from hfdl.models.gan import GANConfig, GANModel

SMALL = {
    "latent_dim": 8,
    "generator_hidden_sizes": [16],
    "discriminator_hidden_sizes": [16, 8],
    "generator_channels": 4,
    "discriminator_channels": 4,
    "class_embedding_dim": 4,
}


def small_model(seed: int = 0, **overrides) -> GANModel:
    torch.manual_seed(seed)
    return GANModel(GANConfig(**{**SMALL, **overrides})).eval()


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# --------------------------------------------------------------------------------------------- shapes and ranges
@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize(
    ("architecture", "image_size", "num_channels", "map_sides"),
    [
        ("mlp", 28, 1, []),
        ("mlp", 64, 3, []),
        ("dcgan", 28, 1, [7, 14]),  # z -> 7x7 -> 14x14 -> 28x28
        ("dcgan", 64, 3, [4, 8, 16, 32]),  # z -> 4x4 -> 8x8 -> 16x16 -> 32x32 -> 64x64
    ],
)
def test_shapes_and_ranges(architecture, image_size, num_channels, map_sides, num_classes):
    model = small_model(
        architecture=architecture, image_size=image_size, num_channels=num_channels, num_classes=num_classes
    )
    batch = 5
    latents = model.sample_latents(batch, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 1, 0]) if num_classes else None
    with torch.no_grad():
        outputs = model(latents, labels, output_hidden_states=True)
    images = outputs.images
    assert images.shape == (batch, num_channels, image_size, image_size) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.std() > 0  # tanh, and not a constant
    hidden_states = outputs.hidden_states
    assert torch.equal(hidden_states[0], latents) and torch.equal(hidden_states[-1], images)
    if architecture == "dcgan":
        # The generator's maps double their side and halve their width: base * 2**k channels, k down to 0.
        sides = [tuple(h.shape[2:]) for h in hidden_states[1:-1]]
        widths = [h.shape[1] for h in hidden_states[1:-1]]
        assert sides == [(s, s) for s in map_sides]
        assert widths == [SMALL["generator_channels"] * 2**k for k in reversed(range(len(map_sides)))]
    else:
        assert [h.shape[1] for h in hidden_states[1:-1]] == SMALL["generator_hidden_sizes"]
    with torch.no_grad():
        logits = model.discriminate(images, labels)
    assert logits.shape == (batch,) and torch.isfinite(logits).all()
    samples = model.sample(batch, generator=torch.Generator().manual_seed(0), class_labels=labels)
    # sample() is forward() mapped from [-1, 1] to [0, 1] (same seed, same noise).
    torch.testing.assert_close(samples, (images + 1) / 2)
    assert samples.dtype == torch.float32 and samples.min() >= 0.0 and samples.max() <= 1.0


def test_dcgan_64_has_the_papers_layout_and_parameter_count():
    """Radford et al., Figure 1: z (100) -> project and reshape to 4x4x1024 -> 5x5 fractionally-strided convolutions
    to 8x8x512, 16x16x256, 32x32x128, 64x64x3; D mirrors it with 5x5 stride-2 convolutions (128 -> 1024) and one
    logit. Biases only where no BatchNorm follows; BatchNorm has a scale and a shift per channel."""
    model = hfdl.create_model("dcgan-64")
    z, k = 100, 5 * 5
    generator = (
        z * 1024 * 4 * 4  # projection, no bias (BatchNorm follows)
        + 2 * 1024  # its BatchNorm
        + 1024 * 512 * k
        + 2 * 512
        + 512 * 256 * k
        + 2 * 256
        + 256 * 128 * k
        + 2 * 128
        + 128 * 3 * k
        + 3  # output layer: bias, no BatchNorm, tanh
    )
    discriminator = (
        3 * 128 * k
        + 128  # first layer: no BatchNorm, so a bias
        + 128 * 256 * k
        + 2 * 256
        + 256 * 512 * k
        + 2 * 512
        + 512 * 1024 * k
        + 2 * 1024
        + 1024 * 4 * 4
        + 1  # the flattened 4x4x1024 map -> one logit
    )
    assert parameter_count(model.generator) == generator == 18_855_043
    assert parameter_count(model.discriminator) == discriminator == 17_232_897
    assert parameter_count(model) == generator + discriminator  # G and D are disjoint: one optimizer each
    assert [m.out_channels for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)] == [128, 256, 512, 1024]
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())  # no pooling
    norms = [type(block.norm) for block in model.discriminator.blocks]
    assert norms == [nn.Identity, nn.BatchNorm2d, nn.BatchNorm2d, nn.BatchNorm2d]  # none on the first layer


def test_dcgan_init_follows_the_paper():
    """All weights N(0, 0.02); BatchNorm scales N(1, 0.02), shifts 0; biases 0."""
    model = small_model(architecture="dcgan", image_size=64, num_channels=3, generator_channels=32)
    conv = model.generator.blocks[0].conv.weight  # 256 x 128 x 5 x 5
    assert abs(conv.mean().item()) < 1e-3 and abs(conv.std().item() - 0.02) < 1e-3
    scales = torch.cat([m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1.0) < 0.01 and abs(scales.std().item() - 0.02) < 0.01
    assert all(m.bias.abs().max() == 0 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.generator.output.bias.abs().max() == 0 and model.discriminator.output.bias.abs().max() == 0


@pytest.mark.parametrize("image_size", [9, 30, 36, 6, 100])
def test_dcgan_refuses_sizes_its_stride_2_stack_cannot_reach(image_size):
    with pytest.raises(ValueError, match=rf"`image_size`={image_size} .*4, 5, 6 or 7 times a power of two") as error:
        GANConfig(architecture="dcgan", image_size=image_size)
    assert "8, 10, 12, 14, 16, 20, 24, 28" in str(error.value)
    assert GANConfig(architecture="mlp", image_size=image_size).image_size == image_size  # the MLP takes any size


@pytest.mark.parametrize("kernel_size", [3, 4, 5])
def test_any_kernel_size_keeps_the_sides_exact(kernel_size):
    model = small_model(architecture="dcgan", image_size=20, kernel_size=kernel_size)  # 5 -> 10 -> 20
    with torch.no_grad():
        images = model(model.sample_latents(2)).images
        assert images.shape == (2, 1, 20, 20) and model.discriminate(images).shape == (2,)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("architecture", "stylegan", r"`architecture` must be one of 'mlp', 'dcgan'"),
        ("spectral_norm", 1, r"`spectral_norm` must be True or False"),
        ("discriminator_dropout", 1.0, r"`discriminator_dropout` must be a number in \[0, 1\)"),
        ("leaky_relu_slope", -0.1, r"`leaky_relu_slope` must be a number in \[0, 1\)"),
        ("kernel_size", 1, r"`kernel_size` must be at least 2"),
        ("num_classes", 2.5, r"`num_classes` must be a non-negative integer"),
        ("generator_hidden_sizes", [], r"`generator_hidden_sizes` must hold at least one"),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        GANConfig(**{field: value})


# --------------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_seeded_sampling_is_reproducible_and_seeds_differ(architecture):
    model = small_model(architecture=architecture, image_size=16, initializer_range=0.3)
    first = model.sample(4, generator=torch.Generator().manual_seed(7))
    again = model.sample(4, generator=torch.Generator().manual_seed(7))
    other = model.sample(4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 0.05
    torch.manual_seed(3)
    global_rng = model.sample(4)
    torch.manual_seed(3)
    assert torch.equal(model.sample(4), global_rng)  # generator=None draws from the global RNG


def test_sampling_runs_in_eval_mode_and_leaves_training_state_alone():
    """BatchNorm must use its running statistics for samples (else one sample depends on the others in its batch)
    and sampling mid-training must not move them."""
    model = small_model(architecture="dcgan", image_size=16).train()
    norm = model.generator.projection_norm
    statistics = (norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone())
    batch = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert model.generator.training and model.training  # mode restored
    assert all(
        torch.equal(a, b) for a, b in zip(statistics, (norm.running_mean, norm.running_var, norm.num_batches_tracked))
    )
    # The samples are the eval-mode generator's images for the same noise, in which no sample depends on the others.
    latents = model.sample_latents(6, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        images = model(latents).images
        torch.testing.assert_close(model(latents[:3]).images, images[:3])
    torch.testing.assert_close(batch, (images + 1) / 2)


def test_conditional_samples_depend_on_the_class():
    # A wider init than the paper's 0.02, so an untrained generator's images are far from blank.
    model = small_model(architecture="mlp", image_size=8, num_classes=3, initializer_range=0.3)
    per_class = [model.sample(4, generator=torch.Generator().manual_seed(0), class_labels=c) for c in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert (per_class[a] - per_class[b]).abs().mean() > 0.05, (a, b)
    # An int, a list and a tensor ask for the same thing.
    mixed = [0, 2, 1, 2]
    from_list = model.sample(4, generator=torch.Generator().manual_seed(0), class_labels=mixed)
    from_tensor = model.sample(4, generator=torch.Generator().manual_seed(0), class_labels=torch.tensor(mixed))
    assert torch.equal(from_list, from_tensor)
    for index, label in enumerate(mixed):
        torch.testing.assert_close(from_list[index], per_class[label][index])


@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_conditional_discriminator_depends_on_the_class(architecture):
    """The MLP D reads a concatenated class code, the DCGAN D a projection term: either way the logit of the same
    image changes with the class it is claimed to be."""
    model = small_model(architecture=architecture, image_size=16, num_classes=3)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        logits = [model.discriminate(images, torch.full((4,), c)) for c in range(3)]
    assert (logits[0] - logits[1]).abs().min() > 0 and (logits[1] - logits[2]).abs().min() > 0


BAD_LABELS = {
    "float": (
        torch.tensor([0.0, 1.0]),
        r"integers in \[0, 3\) of shape \(batch_size,\) = \(2,\).*got dtype torch.float32",
    ),
    "bool": (torch.tensor([True, False]), r"got dtype torch.bool"),
    "wrong shape": (torch.tensor([[0], [1]]), r"got shape \(2, 1\)"),
    "one per batch missing": (torch.tensor([0]), r"got shape \(1,\)"),
    "out of range": (torch.tensor([0, 3]), r"got values from 0 to 3"),
    "negative": (torch.tensor([-1, 0]), r"got values from -1 to 0"),
    "missing": (None, r"conditional \(`num_classes`=3\): pass `class_labels`, integers in \[0, 3\)"),
    "not a tensor": ([0, 1], r"must be a torch.Tensor of integers in \[0, 3\)"),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_bad_class_labels_say_what_is_allowed(architecture, case):
    model = small_model(architecture=architecture, image_size=8, num_classes=3)
    labels, message = BAD_LABELS[case]
    with pytest.raises(ValueError, match=message):
        model(model.sample_latents(2), labels)
    with pytest.raises(ValueError, match=message):
        model.discriminate(torch.zeros(2, 1, 8, 8), labels)


def test_class_labels_for_an_unconditional_model_and_bad_sample_labels_are_refused():
    model = small_model(image_size=8)
    message = r"unconditional \(`num_classes`=0\) and takes no `class_labels`"
    with pytest.raises(ValueError, match=message):
        model(model.sample_latents(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=message):
        model.discriminate(torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=message):
        model.sample(2, class_labels=0)
    conditional = small_model(image_size=8, num_classes=3)
    for labels in ("1", 1.0, True, [0, 1.5], [0, 1, 2]):
        with pytest.raises(ValueError, match=r"class_labels"):
            conditional.sample(2, class_labels=labels)
    with pytest.raises(ValueError, match=r"`num_samples` must be a positive integer, got 0"):
        conditional.sample(0, class_labels=1)


def test_bad_images_for_the_discriminator_name_the_expected_shape():
    model = small_model(architecture="dcgan", image_size=16)
    with pytest.raises(
        ValueError, match=r"`pixel_values` must have shape \(batch_size, 1, 16, 16\), got \(2, 1, 28, 28\)"
    ):
        model.discriminate(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"`pixel_values` must be a floating point tensor"):
        model.discriminate(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))


# --------------------------------------------------------------------------------------------- spectral norm
@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_spectral_norm_bounds_the_discriminators_layers(architecture):
    model = small_model(architecture=architecture, image_size=16, num_classes=3, spectral_norm=True, seed=1)
    discriminator = model.discriminator
    normalised = {name: m for name, m in discriminator.named_modules() if parametrize.is_parametrized(m, "weight")}
    expected = {"output", "layers.0.0", "layers.1.0"} if architecture == "mlp" else {"output", "class_projection"}
    assert expected <= set(normalised)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())  # dropped with spectral norm
    assert not parametrize.is_parametrized(model.generator.output, "weight")  # G is left alone
    discriminator.train()
    images, labels = torch.rand(8, 1, 16, 16) * 2 - 1, torch.randint(0, 3, (8,))
    with torch.no_grad():
        for _ in range(5):  # one power iteration per training forward
            discriminator(images, labels)
    for name, module in normalised.items():
        raw = module.parametrizations.weight.original.flatten(1)
        used = module.weight.flatten(1)  # W / sigma(W), as the forward uses it
        assert torch.linalg.matrix_norm(raw, ord=2) < 0.9, name  # the init alone would not be normalised
        assert abs(torch.linalg.matrix_norm(used, ord=2).item() - 1.0) < 0.05, name


def test_spectral_norm_round_trips_bit_exactly(tmp_path):
    """The weight a normalised layer uses depends on the saved power-iteration vectors u and v: they must come back
    exactly, through the model class and through AutoModel."""
    model = small_model(architecture="mlp", image_size=8, num_classes=3, spectral_norm=True, discriminator_dropout=0.0)
    model.train()
    images, labels = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0])
    optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=1e-2)
    for _ in range(3):  # move the weights and the u, v vectors away from their initial values
        loss = softplus(-model.discriminate(images, labels)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(tmp_path)
    state = model.state_dict()
    assert any(key.endswith("parametrizations.weight.original") for key in state)
    assert any(key.endswith("._u") for key in state)
    for loaded in (GANModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert type(loaded) is GANModel and loaded.state_dict().keys() == state.keys()
        for key, tensor in loaded.state_dict().items():
            assert torch.equal(tensor, state[key]), key
        with torch.no_grad():
            assert torch.equal(loaded.discriminate(images, labels), model.discriminate(images, labels))
            assert torch.equal(
                loaded.sample(3, torch.Generator().manual_seed(0), 1),
                model.sample(3, torch.Generator().manual_seed(0), 1),
            )


# --------------------------------------------------------------------------------------------- training
def test_non_saturating_losses_train_a_tiny_gan_toward_the_data():
    """2x2 images drawn from two fixed patterns: a few hundred Adam steps of D and G (one optimizer each, as the
    recipe does) must bring the samples from blank images near the patterns, and cover both of them."""
    torch.manual_seed(0)
    config = GANConfig(
        architecture="mlp",
        image_size=2,
        latent_dim=2,
        generator_hidden_sizes=[16, 16],
        discriminator_hidden_sizes=[16, 16],
        discriminator_dropout=0.0,
    )
    model = GANModel(config).train()
    patterns = 0.8 * torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, -1.0]])  # (2, 4), in [-1, 1]
    rng = torch.Generator().manual_seed(1)

    def distance_to_data(images: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Mean distance of each sample to its nearest pattern, and how many samples are nearest to each."""
        distances = torch.cdist(images.flatten(1), patterns)  # (samples, 2)
        nearest, which = distances.min(dim=1)
        return nearest.mean().item(), torch.bincount(which, minlength=2)

    before, _ = distance_to_data(model.sample(512, generator=rng) * 2 - 1)
    optimizer_g = torch.optim.Adam(model.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(300):
        real = patterns[torch.randint(0, 2, (64,), generator=rng)].view(64, 1, 2, 2)
        fake = model.generator(model.sample_latents(64, generator=rng))
        # D: binary cross-entropy, real -> 1, fake -> 0 (softplus(-d) = -log sigmoid(d)).
        loss_d = softplus(-model.discriminate(real)).mean() + softplus(model.discriminate(fake.detach())).mean()
        optimizer_d.zero_grad()
        loss_d.backward()
        optimizer_d.step()
        # G: the non-saturating loss -log D(G(z)), whose gradient is strong exactly when D rejects the samples.
        loss_g = softplus(-model.discriminate(fake)).mean()
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
    after, counts = distance_to_data(model.sample(512, generator=rng) * 2 - 1)
    assert before > 1.5  # N(0, 0.02) weights: blank images, 1.6 from either pattern
    assert after < 0.6, (before, after)
    assert counts.min() > 0.1 * 512, counts  # both patterns are generated (no full mode collapse)
    # D learned to tell the patterns from blank images.
    with torch.no_grad():
        real_logits = model.discriminate(patterns.view(2, 1, 2, 2))
        blank_logits = model.discriminate(torch.zeros(2, 1, 2, 2))
    assert real_logits.min() > blank_logits.max()


def test_non_saturating_loss_is_binary_cross_entropy_against_real():
    logits = torch.tensor([-3.0, 0.0, 2.5])
    ones, zeros = torch.ones(3), torch.zeros(3)
    bce = nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(softplus(-logits).mean(), bce(logits, ones))
    torch.testing.assert_close(softplus(logits).mean(), bce(logits, zeros))
