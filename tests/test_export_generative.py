"""ONNX export of the generative models' parts and the onnxruntime pipeline (hfdl.export.generative).

Every architecture variant of the course (MLP and conv autoencoder, MLP and conv VAE, MLP GAN, DCGAN, conditional
MLP and DCGAN GANs) is saved, exported from its folder and validated; the graphs are then run at a batch size that
is neither the export's (2) nor the validation's (3) and compared with PyTorch, and the onnxruntime pipeline must
draw the same latents and return the same images as ``model.sample`` for the same seed. Exports are cached per
module (one to three seconds each).
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import hfdl.export.generative as generative_module
from hfdl.cli import main as cli_main
from hfdl.export import (
    GenerativeExportResult,
    OnnxValidationError,
    OrtGenerativePipeline,
    export_generative,
    export_onnx,
)
from hfdl.registry import REGISTRY

#: name -> (architecture, config overrides on its test config). Small widths keep each export about a second.
VARIANTS = {
    "ae-mlp": ("autoencoder", {"encoder_type": "mlp", "hidden_sizes": [16, 8], "sparsity": "none"}),
    "ae-conv": ("autoencoder", {}),  # conv, KL-sparse (sigmoid code), masking noise (off in eval)
    "vae-mlp": ("vae", {}),
    "vae-conv": ("vae", {"encoder_type": "conv", "conv_channels": [4, 8]}),
    "gan-mlp": (
        "gan",
        {"architecture": "mlp", "generator_hidden_sizes": [16], "discriminator_hidden_sizes": [16], "num_classes": 0},
    ),
    "dcgan": ("gan", {"num_classes": 0, "spectral_norm": True}),
    "cgan-mlp": (
        "gan",
        {"architecture": "mlp", "generator_hidden_sizes": [16], "discriminator_hidden_sizes": [16], "num_classes": 3},
    ),
    "cgan-dcgan": ("gan", {}),  # the GAN test config: DCGAN, conditional (3 classes, projection discriminator)
}


def variants(architectures: tuple[str, ...]) -> list:
    """The variants of ``architectures`` as pytest params."""
    return [pytest.param(name, id=name) for name, (arch, _) in VARIANTS.items() if arch in architectures]


AUTOENCODERS = variants(("autoencoder", "vae"))
SAMPLERS = variants(("vae", "gan"))
GANS = variants(("gan",))
EXPECTED_PARTS = {
    "autoencoder": {"encoder": (["pixel_values"], ["latents"]), "decoder": (["latents"], ["images"])},
    "vae": {"encoder": (["pixel_values"], ["latent_mean", "latent_logvar"]), "decoder": (["latents"], ["images"])},
}
#: A batch size neither the export (2) nor the validation (3) used.
OTHER_BATCH = 5


#: GANs start from N(0, 0.02) (the DCGAN paper's init), which leaves an untrained generator's images within 1e-3 of
#: grey: a 1e-5 comparison would prove little. N(0, 0.2) spreads them over [0, 1] (std about 0.1-0.2) unsaturated.
GAN_OVERRIDES = {"initializer_range": 0.2}


def build(name: str) -> torch.nn.Module:
    arch, overrides = VARIANTS[name]
    spec = REGISTRY[arch]
    torch.manual_seed(0)
    overrides = {**spec.test_config, **(GAN_OVERRIDES if arch == "gan" else {}), **overrides}
    return spec.task().model_class(spec.config_class(**overrides)).eval()


def labels_for(model, batch_size: int) -> torch.Tensor | None:
    num_classes = getattr(model.config, "num_classes", 0)
    return torch.arange(batch_size) % num_classes if num_classes else None


def expected_parts(name: str, model) -> dict[str, tuple[list[str], list[str]]]:
    arch = VARIANTS[name][0]
    if arch != "gan":
        return EXPECTED_PARTS[arch]
    labels = ["class_labels"] if model.config.num_classes else []
    return {
        "generator": (["latents", *labels], ["images"]),
        "discriminator": (["pixel_values", *labels], ["logits"]),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name)`` -> (model, result, onnx_folder, model_folder), exported once per module.

    Most variants are saved and exported from their folder. ``ae-mlp`` is exported from the in-memory model, in
    training mode (the export must put it back in that mode); ``vae-mlp``'s folder carries its own image processor
    (nearest-neighbour resampling), which the export must copy rather than rebuild from the registry.
    """
    cache = {}

    def get(name: str):
        if name not in cache:
            model = build(name)
            root = tmp_path_factory.mktemp(name)
            model.save_pretrained(root / "model")
            if name == "vae-mlp":
                REGISTRY["vae"].image_processor_class(size=8, resample=0).save_pretrained(root / "model")
            source = model.train() if name == "ae-mlp" else root / "model"
            try:
                is_gan = VARIANTS[name][0] == "gan"
                result = export_generative(source, root / "onnx", include_discriminator=is_gan)
            except Exception as error:  # remembered, so a failing export is not retried by every test
                result = error
            assert model.training == (name == "ae-mlp"), "export_generative must leave the model's mode as it was"
            cache[name] = (model.eval(), result, root / "onnx", root / "model")
        if isinstance(cache[name][1], Exception):
            raise cache[name][1]
        return cache[name]

    return get


def session_names(path) -> tuple[list[str], list[str], list]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    return (
        [node.name for node in inputs],
        [node.name for node in session.get_outputs()],
        [node.shape for node in inputs],
    )


# ---------------------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("name", variants(("autoencoder", "vae", "gan")))
def test_every_variant_exports_validated_parts(exported, name):
    model, result, folder, _ = exported(name)
    parts = expected_parts(name, model)

    assert isinstance(result, GenerativeExportResult) and result.validated
    assert result.output_dir == folder and result.model_type == model.config.model_type
    assert list(result.parts) == list(parts)
    for part_name, (inputs, outputs) in parts.items():
        part = result.parts[part_name]
        assert part.onnx_path == folder / f"{part_name}.onnx" and part.onnx_path.is_file()
        assert (part.input_names, part.output_names) == (inputs, outputs)
        assert part.opset == 18 and part.atol == 1e-4
        assert (part.export_batch_size, part.validation_batch_size) == (2, 3)
        assert set(part.max_abs_diff) == set(outputs)
        assert all(diff <= 1e-5 for diff in part.max_abs_diff.values()), part.max_abs_diff
        graph_inputs, graph_outputs, shapes = session_names(part.onnx_path)
        assert (graph_inputs, graph_outputs) == (inputs, outputs)
        assert all(isinstance(shape[0], str) for shape in shapes), f"batch axis not dynamic: {shapes}"
    assert set(result.max_abs_diff) == {f"{p}.{o}" for p, (_, outs) in parts.items() for o in outs}

    # The folder describes itself: the config (with its class), the image processor for image inputs, no leftovers.
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == model.config.model_type
    assert config["architectures"] == [type(model).__name__]
    has_processor = VARIANTS[name][0] != "gan"
    assert (folder / "preprocessor_config.json").is_file() == has_processor
    if has_processor:
        processor = json.loads((folder / "preprocessor_config.json").read_text())
        assert (processor["size"], processor["num_channels"]) == (model.config.image_size, model.config.num_channels)
        assert (processor["image_mean"], processor["image_std"]) == (0.0, 1.0)
        assert processor["image_processor_type"] == REGISTRY[VARIANTS[name][0]].image_processor_class.__name__
        assert processor["resample"] == (0 if name == "vae-mlp" else 2)  # the folder's own, else the registry's
    assert not list(folder.parent.glob(".*partial"))


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_encoder_and_decoder_match_pytorch_at_another_batch_size(exported, name):
    model, _, folder, _ = exported(name)
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    generator = torch.Generator().manual_seed(5)
    config = model.config
    images = torch.rand(OTHER_BATCH, config.num_channels, config.image_size, config.image_size, generator=generator)
    latents = torch.randn(OTHER_BATCH, config.latent_dim, generator=generator)
    with torch.no_grad():
        expected_code, decoded = model.encode(images), model.decode(latents)
        reconstruction = model(images).reconstruction

    code = pipe.encode(images)
    if VARIANTS[name][0] == "vae":  # (mean, logvar), as VAEModel.encode returns them
        assert isinstance(code, tuple) and len(code) == 2
        for actual, expected in zip(code, expected_code):
            torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
    else:
        torch.testing.assert_close(code, expected_code, rtol=0, atol=1e-5)
    torch.testing.assert_close(pipe.decode(latents), decoded, rtol=0, atol=1e-5)
    torch.testing.assert_close(pipe.decode(latents.numpy()), decoded, rtol=0, atol=1e-5)  # arrays work too
    # Eval-mode reconstruction: an autoencoder decodes its code, a VAE its posterior mean.
    torch.testing.assert_close(pipe.reconstruct(images), reconstruction, rtol=0, atol=1e-5)
    assert pipe.decode(latents).shape == (OTHER_BATCH, config.num_channels, config.image_size, config.image_size)


def test_encode_takes_pil_images_through_the_saved_processor(exported):
    model, _, folder, _ = exported("ae-mlp")
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)) for _ in range(3)]  # resized to 8
    pixel_values = torch.from_numpy(pipe.image_processor(pictures, return_tensors="np")["pixel_values"])
    assert pixel_values.shape == (3, 1, 8, 8) and 0.0 <= pixel_values.min() and pixel_values.max() <= 1.0
    with torch.no_grad():
        expected = model.encode(pixel_values)
    torch.testing.assert_close(pipe.encode(pictures), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", GANS)
def test_generator_and_discriminator_match_pytorch_at_another_batch_size(exported, name):
    model, _, folder, _ = exported(name)
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(OTHER_BATCH, model.config.latent_dim, generator=generator)
    labels = labels_for(model, OTHER_BATCH)
    size = model.config.image_size
    fake = torch.rand(OTHER_BATCH, model.config.num_channels, size, size, generator=generator) * 2 - 1
    with torch.no_grad():
        expected_images = ((model.generator(latents, labels) + 1) / 2).clamp(0, 1)
        expected_logits = model.discriminate(fake, labels)

    images = pipe.generate(latents, labels)
    torch.testing.assert_close(images, expected_images, rtol=0, atol=1e-5)
    assert images.shape == (OTHER_BATCH, model.config.num_channels, size, size)
    assert 0.0 <= images.min() and images.max() <= 1.0
    logits = pipe.discriminate(fake, labels)
    assert logits.shape == (OTHER_BATCH,)
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- same seed


@pytest.mark.parametrize("name", SAMPLERS)
def test_pipeline_gives_the_pytorch_samples_for_the_same_seed(exported, name):
    model, _, folder, _ = exported(name)
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    labels = labels_for(model, OTHER_BATCH)
    label_kwargs = {} if labels is None else {"class_labels": labels.tolist()}

    expected = model.sample(OTHER_BATCH, generator=torch.Generator().manual_seed(7), **label_kwargs)
    images = pipe(OTHER_BATCH, generator=torch.Generator().manual_seed(7), output_type="pt", **label_kwargs).images
    assert images.shape == expected.shape
    torch.testing.assert_close(images, expected, rtol=0, atol=1e-5)
    # An int seed is the same as a generator seeded with it; the latents are sample_latents' (GAN) or the prior's.
    torch.testing.assert_close(pipe(OTHER_BATCH, generator=7, output_type="pt", **label_kwargs).images, images)
    assert torch.equal(
        pipe.sample_latents(4, generator=7), torch.randn(4, model.config.latent_dim, generator=_seeded(7))
    )
    if VARIANTS[name][0] == "gan":
        assert torch.equal(pipe.sample_latents(4, 7), model.sample_latents(4, generator=_seeded(7)))
    other = pipe(OTHER_BATCH, generator=8, output_type="pt", **label_kwargs).images
    assert (other - images).abs().max() > 0.05  # another seed, other images

    # torch's global RNG when no generator is given, as in model.sample.
    torch.manual_seed(11)
    expected_global = model.sample(2, **({} if labels is None else {"class_labels": [0, 1]}))
    torch.manual_seed(11)
    images_global = pipe(2, output_type="pt", **({} if labels is None else {"class_labels": [0, 1]})).images
    torch.testing.assert_close(images_global, expected_global, rtol=0, atol=1e-5)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_pipeline_output_types_and_given_latents(exported):
    model, _, folder, _ = exported("dcgan")
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    assert repr(pipe).startswith("OrtGenerativePipeline(hfdl-gan, parts=['discriminator', 'generator']")
    tensor = pipe(4, generator=1, output_type="pt").images
    torch.testing.assert_close(tensor, model.sample(4, generator=_seeded(1)), rtol=0, atol=1e-5)

    pictures = pipe(4, generator=1).images  # "pil" by default, as in diffusers
    assert len(pictures) == 4 and all(p.mode == "L" and p.size == (16, 16) for p in pictures)
    pixels = np.stack([np.asarray(p) for p in pictures])
    np.testing.assert_array_equal(pixels, (tensor[:, 0].numpy() * 255).round().astype(np.uint8))
    array = pipe(4, generator=1, output_type="np").images
    assert array.shape == (4, 16, 16, 1)
    np.testing.assert_array_equal(array, tensor.permute(0, 2, 3, 1).numpy())

    # Given latents replace the draw, and num_images follows them; without either, one image.
    latents = model.sample_latents(3, generator=_seeded(4))
    by_latents = pipe(latents=latents, output_type="pt").images
    torch.testing.assert_close(by_latents, model.sample(3, generator=_seeded(4)), rtol=0, atol=1e-5)
    assert len(pipe(generator=0).images) == 1


def test_rgb_images_become_rgb_pictures():
    images = torch.rand(2, 3, 5, 4, generator=_seeded(0))
    pictures = generative_module.to_output(images, "pil")
    assert [(p.mode, p.size) for p in pictures] == [("RGB", (4, 5))] * 2
    expected = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(np.stack([np.asarray(p) for p in pictures]), expected)


def test_conditional_pipeline_honours_class_labels(exported):
    model, _, folder, _ = exported("cgan-mlp")
    pipe = OrtGenerativePipeline.from_pretrained(folder)
    # An int asks every image for that class, as in GANModel.sample.
    images = pipe(4, generator=1, class_labels=2, output_type="pt").images
    torch.testing.assert_close(images, model.sample(4, generator=_seeded(1), class_labels=2), rtol=0, atol=1e-5)
    other_class = pipe(4, generator=1, class_labels=0, output_type="pt").images
    assert (other_class - images).abs().max() > 0.05  # same noise, another class: other images
    # A list (or tensor) gives one class per image, and then num_images may be left out.
    listed = pipe(generator=1, class_labels=[0, 1, 2, 0], output_type="pt").images
    expected = model.sample(4, generator=_seeded(1), class_labels=torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(listed, expected, rtol=0, atol=1e-5)
    latents = model.sample_latents(3, generator=_seeded(4))
    torch.testing.assert_close(
        pipe(latents=latents, class_labels=np.array([2, 1, 0]), output_type="pt").images,
        model.sample(3, generator=_seeded(4), class_labels=[2, 1, 0]),
        rtol=0,
        atol=1e-5,
    )


# ---------------------------------------------------------------------------------------------------- atomic writes


def test_failed_validation_leaves_the_output_folder_as_it_was(exported, tmp_path, monkeypatch):
    """The decoder fails after the encoder passed: neither graph, nor config, reaches output_dir."""
    _, _, _, model_folder = exported("vae-mlp")
    real_run = generative_module.run_session

    def wrong_decoder(session, feeds):
        outputs = real_run(session, feeds)
        return [value + 0.01 for value in outputs] if list(feeds) == ["latents"] else outputs

    monkeypatch.setattr(generative_module, "run_session", wrong_decoder)
    fresh = tmp_path / "fresh"
    with pytest.raises(OnnxValidationError, match=r"decoder output 'images' differs .* by up to 0\.01.*atol 0\.0001"):
        export_generative(model_folder, fresh)
    assert not fresh.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    monkeypatch.setattr(generative_module, "run_session", lambda session, feeds: [np.full((3, 4), np.nan)] * 2)
    with pytest.raises(OnnxValidationError, match=r"encoder output 'latent_mean' differs .* by up to nan"):
        export_generative(model_folder, existing)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no staging folder left behind


def test_cli_reexport_replaces_the_parts_and_removes_stale_ones(exported, tmp_path, capsys):
    """A re-export without the discriminator removes the old one, so a folder never mixes two exports."""
    _, _, exported_folder, gan_folder = exported("gan-mlp")
    target = tmp_path / "gan"
    shutil.copytree(exported_folder, target)  # an export with the discriminator
    assert (target / "discriminator.onnx").is_file()
    capsys.readouterr()
    assert cli_main(["export", "generative", str(gan_folder), str(target)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "generator.onnx" in lines[0] and "validated at batch 3" in lines[0]
    assert "images:" in lines[0] and "(atol 1e-04)" in lines[0]
    assert sorted(p.name for p in target.glob("*.onnx")) == ["generator.onnx"]
    pipe = OrtGenerativePipeline.from_pretrained(target)
    with pytest.raises(ValueError, match=r"no discriminator graph.*include_discriminator=True"):
        pipe.discriminate(torch.zeros(1, 1, 16, 16))


def test_cli_passes_its_options_and_reports_errors_in_one_line(tmp_path, capsys, monkeypatch):
    calls = []

    def record(model, output_dir, **kwargs):
        calls.append((model, output_dir, kwargs))
        return GenerativeExportResult(output_dir=tmp_path, model_type="hfdl-gan", parts={})

    monkeypatch.setattr("hfdl.export.export_generative", record)
    argv = ["export", "generative", "in", "out", "--discriminator", "--opset", "19", "--atol", "1e-5"]
    assert cli_main(argv) == 0
    assert calls == [("in", "out", {"opset": 19, "atol": 1e-5, "include_discriminator": True})]
    monkeypatch.undo()

    lenet = REGISTRY["lenet5"]
    lenet.task().model_class(lenet.config_class(**lenet.test_config)).save_pretrained(tmp_path / "lenet")
    capsys.readouterr()  # save_pretrained's progress bar
    assert cli_main(["export", "generative", str(tmp_path / "lenet"), str(tmp_path / "bad")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("hfdl: error:") and "hfdl-lenet5" in error and "export_onnx" in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"opset": 17}, r"`opset` must be an integer in \[18, \d+\], got 17"),
        ({"opset": "18"}, r"`opset` must be an integer"),
        ({"opset": True}, r"`opset` must be an integer"),
        ({"atol": 0}, r"`atol` must be a positive finite number, got 0"),
        ({"atol": -1e-4}, r"`atol` must be a positive finite number"),
        ({"atol": math.nan}, r"`atol` must be a positive finite number, got nan"),
        ({"atol": math.inf}, r"`atol` must be a positive finite number"),
        ({"include_discriminator": "yes"}, r"`include_discriminator` must be True or False"),
        ({"include_discriminator": True}, r"hfdl-vae' model, which has no discriminator; only GANs"),
    ],
)
def test_bad_export_arguments_are_refused_before_writing(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_generative(build("vae-mlp"), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_bad_models_and_folders_are_refused(tmp_path):
    lenet = REGISTRY["lenet5"]
    with pytest.raises(ValueError, match=r"'hfdl-lenet5' model; export_generative exports .*hfdl.export.export_onnx"):
        export_generative(lenet.task().model_class(lenet.config_class(**lenet.test_config)), tmp_path / "out")
    with pytest.raises(ValueError, match=r"Only float32 models are exported, got torch.float64"):
        export_generative(build("gan-mlp").double(), tmp_path / "out")
    with pytest.raises(ValueError, match=r"`model` must be a PreTrainedModel or a path"):
        export_generative(42, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="No such folder"):
        export_generative(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        export_generative(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        export_generative(build("gan-mlp"), tmp_path / "file")
    # The single-graph exporter points generative models here.
    with pytest.raises(ValueError, match="export_generative"):
        export_onnx(build("ae-mlp"), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file"]


def test_bad_pipeline_folders_are_refused(exported, tmp_path):
    _, _, folder, _ = exported("ae-mlp")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        OrtGenerativePipeline.from_pretrained(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((folder / "config.json").read_bytes())
    (broken / "encoder.onnx").write_bytes((folder / "encoder.onnx").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"has no decoder.onnx; a hfdl-autoencoder export has encoder.onnx"):
        OrtGenerativePipeline.from_pretrained(broken)
    (broken / "decoder.onnx").write_bytes((folder / "encoder.onnx").read_bytes())  # the wrong graph
    with pytest.raises(ValueError, match=r"decoder.onnx takes \['pixel_values'\].*export_generative"):
        OrtGenerativePipeline.from_pretrained(broken)
    (broken / "decoder.onnx").write_text("not a graph")
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        OrtGenerativePipeline.from_pretrained(broken)
    with pytest.raises(ValueError, match=r"Unknown or empty `providers`"):
        OrtGenerativePipeline.from_pretrained(folder, providers=["NoSuchProvider"])


@pytest.mark.parametrize(
    ("name", "call", "match"),
    [
        ("ae-mlp", lambda p: p(2), r"autoencoder has no prior"),
        ("ae-mlp", lambda p: p.generate(torch.zeros(1, 4)), r"has no generator graph"),
        (
            "ae-mlp",
            lambda p: p.encode(torch.zeros(2, 1, 7, 8)),
            r"`pixel_values` must have shape \(batch_size, 1, 8, 8\)",
        ),
        ("ae-mlp", lambda p: p.encode(torch.zeros(2, 1, 8, 8, dtype=torch.int64)), r"floating point"),
        ("ae-mlp", lambda p: p.encode(torch.zeros(0, 1, 8, 8)), r"batch_size >= 1"),
        ("ae-mlp", lambda p: p.decode([[0.0] * 4]), r"`latents` must be a torch.Tensor or numpy array"),
        ("vae-mlp", lambda p: p(0), r"`num_images` must be a positive integer, got 0"),
        ("vae-mlp", lambda p: p(True), r"`num_images` must be a positive integer, got True"),
        ("vae-mlp", lambda p: p(2, output_type="jpg"), r"`output_type` must be 'pil', 'np' or 'pt', got 'jpg'"),
        ("vae-mlp", lambda p: p(2, generator="seed"), r"`generator` must be a torch.Generator, an int seed or None"),
        ("vae-mlp", lambda p: p(2, class_labels=1), r"not class-conditional; drop `class_labels`"),
        ("vae-mlp", lambda p: p(2, latents=torch.zeros(3, 4)), r"`latents` has 3 rows but `num_images` is 2"),
        (
            "vae-mlp",
            lambda p: p(latents=torch.zeros(3, 5)),
            r"`latents` must have shape \(batch_size, 4\) with batch_size >= 1, got \(3, 5\)",
        ),
        ("gan-mlp", lambda p: p(2, class_labels=[0, 1]), r"unconditional \(num_classes=0\); drop `class_labels`"),
        ("gan-mlp", lambda p: p.encode(torch.zeros(1, 1, 16, 16)), r"has no encoder graph"),
        pytest.param("cgan-mlp", lambda p: p(2), r"conditional: pass `class_labels` \(ints in \[0, 3\)\)"),
        pytest.param(
            "cgan-mlp", lambda p: p(2, class_labels=[0, 3]), r"`class_labels` must be in \[0, 3\), got \[0, 3\]"
        ),
        pytest.param("cgan-mlp", lambda p: p(2, class_labels=-1), r"must be in \[0, 3\)"),
        pytest.param("cgan-mlp", lambda p: p(3, class_labels=[0, 1]), r"Got 2 class_labels for 3 images"),
        pytest.param("cgan-mlp", lambda p: p(2, class_labels=[0.0, 1.0]), r"an int or a 1-D sequence of ints"),
        pytest.param("cgan-mlp", lambda p: p(2, class_labels=[True, False]), r"an int or a 1-D sequence of ints"),
    ],
)
def test_bad_pipeline_arguments_name_what_is_allowed(exported, name, call, match):
    _, _, folder, _ = exported(name)
    with pytest.raises(ValueError, match=match):
        call(OrtGenerativePipeline.from_pretrained(folder))
