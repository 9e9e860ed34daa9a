"""Autoencoders (plain, sparse, denoising; MLP or convolutional), course chapter 7: classes and registry entry."""

from ...specs import ArchitectureSpec, image_reconstruction
from .configuration_autoencoder import AutoencoderConfig
from .image_processing_autoencoder import AutoencoderImageProcessor
from .modeling_autoencoder import AutoencoderModel, AutoencoderOutput, AutoencoderPreTrainedModel

#: Why the single-graph ONNX exporter refuses autoencoders (their encoder and decoder are exported one graph each).
NOT_EXPORTED = (
    "exported as separate graphs (encoder.onnx, decoder.onnx / generator.onnx) by hfdl.export.export_generative"
)

ARCHITECTURE = ArchitectureSpec(
    name="autoencoder",
    model_type=AutoencoderConfig.model_type,
    chapter="7 Autoencoders",
    paper=(
        "Hinton & Salakhutdinov, 2006; Vincent et al., 2008 (denoising); Ng, 2011 (sparse autoencoder lecture notes)"
    ),
    config_class=AutoencoderConfig,
    tasks=(image_reconstruction(AutoencoderModel, not_exported=NOT_EXPORTED),),
    presets={
        "ae-mnist": {"image_size": 28, "encoder_type": "mlp", "hidden_sizes": [512, 256], "latent_dim": 32},
        "conv-ae-mnist": {"image_size": 28, "encoder_type": "conv", "conv_channels": [32, 64], "latent_dim": 32},
        "sparse-ae-mnist": {
            "image_size": 28,
            "encoder_type": "mlp",
            "hidden_sizes": [512, 256],
            "latent_dim": 64,
            "sparsity": "kl",
            "sparsity_target": 0.05,
            "sparsity_weight": 1e-3,
        },
        "denoising-ae-mnist": {
            "image_size": 28,
            "encoder_type": "mlp",
            "hidden_sizes": [512, 256],
            "latent_dim": 32,
            "noise_type": "gaussian",
            "noise_level": 0.3,
        },
    },
    default_preset="ae-mnist",
    # Conv, KL-sparse and masking-noise at once: the contract then runs the transposed convolutions, the sigmoid
    # code with its penalty, and the training-mode corruption.
    test_config={
        "image_size": 8,
        "encoder_type": "conv",
        "conv_channels": [4, 8],
        "latent_dim": 4,
        "sparsity": "kl",
        "noise_type": "masking",
        "noise_level": 0.25,
    },
    image_processor_class=AutoencoderImageProcessor,
    spaces=("latent-explorer",),
    notebooks=("07_autoencoders",),
)

__all__ = [
    "ARCHITECTURE",
    "AutoencoderConfig",
    "AutoencoderImageProcessor",
    "AutoencoderModel",
    "AutoencoderOutput",
    "AutoencoderPreTrainedModel",
]
