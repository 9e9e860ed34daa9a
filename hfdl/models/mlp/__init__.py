"""The multilayer perceptron, course chapters 3-4: its classes and its entry in the registry."""

from ...specs import (
    ArchitectureSpec,
    feature_extraction,
    feature_vector_input,
    image_classification,
    tabular_regression,
)
from .configuration_mlp import MLPConfig
from .image_processing_mlp import MLPImageProcessor
from .modeling_mlp import MLPForImageClassification, MLPForRegression, MLPModel, MLPPreTrainedModel

ARCHITECTURE = ArchitectureSpec(
    name="mlp",
    model_type=MLPConfig.model_type,
    chapter="3-4 Neural networks, training",
    paper="Rumelhart, Hinton & Williams, 1986",
    config_class=MLPConfig,
    tasks=(
        image_classification(MLPForImageClassification),
        tabular_regression(MLPForRegression),
        feature_extraction(MLPModel, (feature_vector_input(),)),
    ),
    presets={
        "mlp-digits": {"image_size": 8, "hidden_sizes": [128, 64], "num_labels": 10},
        "mlp-mnist": {"image_size": 28, "hidden_sizes": [256, 128], "dropout": 0.1, "num_labels": 10},
    },
    default_preset="mlp-digits",
    test_config={"image_size": 8, "hidden_sizes": [16, 8], "num_labels": 3},
    image_processor_class=MLPImageProcessor,
    notebooks=("01_foundations_mlp_lenet5", "08_generative"),
)

__all__ = [
    "ARCHITECTURE",
    "MLPConfig",
    "MLPForImageClassification",
    "MLPForRegression",
    "MLPImageProcessor",
    "MLPModel",
    "MLPPreTrainedModel",
]
