"""The variational autoencoder (Kingma & Welling, 2014), course chapter 8: its classes and its registry entry."""

from ...specs import ArchitectureSpec, image_reconstruction
from .configuration_vae import VAEConfig
from .image_processing_vae import VAEImageProcessor
from .modeling_vae import VAEModel, VAEOutput, VAEPreTrainedModel

#: Why the single-graph ONNX exporter refuses the VAE (its encoder and decoder are exported one graph each).
NOT_EXPORTED = (
    "exported as separate graphs (encoder.onnx, decoder.onnx / generator.onnx) by hfdl.export.export_generative"
)

ARCHITECTURE = ArchitectureSpec(
    name="vae",
    model_type=VAEConfig.model_type,
    chapter="8 GANs and VAEs",
    paper="Kingma & Welling, 2014; Burda, Grosse & Salakhutdinov, 2016 (IWAE bound)",
    config_class=VAEConfig,
    tasks=(image_reconstruction(VAEModel, not_exported=NOT_EXPORTED),),
    presets={
        "vae-mnist": {"image_size": 28, "encoder_type": "mlp", "hidden_sizes": [512, 256], "latent_dim": 16},
        "vae-mnist-2d": {"image_size": 28, "encoder_type": "mlp", "hidden_sizes": [512, 256], "latent_dim": 2},
        "conv-vae-mnist": {"image_size": 28, "encoder_type": "conv", "conv_channels": [32, 64], "latent_dim": 16},
    },
    default_preset="vae-mnist",
    # MLP with the Gaussian decoder and beta != 1 (the autoencoder's test config covers the conv path).
    test_config={
        "image_size": 8,
        "hidden_sizes": [16, 8],
        "latent_dim": 4,
        "decoder_distribution": "gaussian",
        "decoder_std": 0.5,
        "beta": 0.5,
    },
    image_processor_class=VAEImageProcessor,
    spaces=("latent-explorer",),
    notebooks=("08_generative",),
)

__all__ = ["ARCHITECTURE", "VAEConfig", "VAEImageProcessor", "VAEModel", "VAEOutput", "VAEPreTrainedModel"]
