from .configuration_mlp import MLPConfig
from .image_processing_mlp import MLPImageProcessor
from .modeling_mlp import MLPForImageClassification, MLPForRegression, MLPModel, MLPPreTrainedModel

__all__ = [
    "MLPConfig",
    "MLPForImageClassification",
    "MLPForRegression",
    "MLPImageProcessor",
    "MLPModel",
    "MLPPreTrainedModel",
]
