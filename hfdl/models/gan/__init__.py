"""Generative adversarial networks, course chapter 8: the MLP GAN (Goodfellow et al., 2014), DCGAN (Radford et al.,
2016) and the conditional GAN (Mirza & Osindero, 2014) as config choices of one model, and its registry entry."""

from ...specs import ArchitectureSpec, image_generation
from .configuration_gan import GANConfig
from .modeling_gan import GANModel, GANOutput, GANPreTrainedModel

ARCHITECTURE = ArchitectureSpec(
    name="gan",
    model_type=GANConfig.model_type,
    chapter="8 GANs and VAEs",
    paper="Goodfellow et al., 2014; Radford et al., 2016; Mirza & Osindero, 2014",
    config_class=GANConfig,
    tasks=(
        image_generation(
            GANModel,
            not_exported=(
                "exported as separate graphs (encoder.onnx, decoder.onnx / generator.onnx) by "
                "hfdl.export.export_generative"
            ),
        ),
    ),
    presets={
        # Goodfellow et al.'s fully connected GAN, at the widths most MLP GANs on MNIST use since (the paper's D had
        # maxout units; LeakyReLU + dropout here).
        "gan-mnist": {
            "architecture": "mlp",
            "image_size": 28,
            "num_channels": 1,
            "latent_dim": 100,
            "generator_hidden_sizes": [256, 512, 1024],
            "discriminator_hidden_sizes": [1024, 512, 256],
            "discriminator_dropout": 0.3,
        },
        # DCGAN at MNIST's side: z -> 7x7x128 -> 14x14x64 -> 28x28x1; D: 28 -> 14x14x64 -> 7x7x128 -> logit.
        "dcgan-mnist": {
            "architecture": "dcgan",
            "image_size": 28,
            "num_channels": 1,
            "latent_dim": 100,
            "generator_channels": 64,
            "discriminator_channels": 64,
            "kernel_size": 5,
        },
        # A class-conditional GAN (Mirza & Osindero's idea) on the DCGAN body: G gets a class code beside z, D a
        # projection term (Miyato & Koyama). Mirza & Osindero's own MLP body is `gan-mnist` with num_classes=10;
        # trained with the recipe's defaults on MNIST-10k it collapses to two classes within 30 epochs (the recipe's
        # mode-collapse monitor shows it), while this one asks for and gets 99 % of its samples' classes right.
        "cgan-mnist": {
            "architecture": "dcgan",
            "image_size": 28,
            "num_channels": 1,
            "latent_dim": 100,
            "generator_channels": 64,
            "discriminator_channels": 64,
            "kernel_size": 5,
            "num_classes": 10,
            "class_embedding_dim": 16,
        },
        # The paper's 64x64 RGB network (Figure 1): z (100) -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 ->
        # 64x64x3 with 5x5 kernels; D mirrors it, 128 -> 256 -> 512 -> 1024 channels, then one logit.
        "dcgan-64": {
            "architecture": "dcgan",
            "image_size": 64,
            "num_channels": 3,
            "latent_dim": 100,
            "generator_channels": 128,
            "discriminator_channels": 128,
            "kernel_size": 5,
        },
    },
    default_preset="gan-mnist",
    # Small and conditional, so the contract also drives `class_labels`; DCGAN so it covers BatchNorm buffers.
    test_config={
        "architecture": "dcgan",
        "image_size": 16,
        "num_channels": 1,
        "latent_dim": 8,
        "generator_channels": 4,
        "discriminator_channels": 4,
        "kernel_size": 4,
        "num_classes": 3,
        "class_embedding_dim": 4,
    },
    spaces=("gan-studio",),
    notebooks=("08_generative",),
)

__all__ = ["ARCHITECTURE", "GANConfig", "GANModel", "GANOutput", "GANPreTrainedModel"]
