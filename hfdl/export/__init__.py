"""Export hfdl models to ONNX (and TensorRT where NVIDIA's stack is installed) and run them in onnxruntime.

Needs the ``export`` extra: ``pip install 'hfdl[export]'`` (onnx, onnxruntime, onnxscript for torch's dynamo
exporter, and optimum core for the export configs). Importing this package without them raises an ImportError that
says so, rather than failing later inside torch.onnx.
"""

from __future__ import annotations

import importlib


def _check_export_extra() -> None:
    for module_name in ("onnx", "onnxruntime", "onnxscript", "optimum.utils"):
        try:
            importlib.import_module(module_name)
        except ImportError as error:
            raise ImportError(
                f"hfdl.export needs {module_name.split('.')[0]!r}, which is not installed ({error}). "
                "Install the export extra: pip install 'hfdl[export]'"
            ) from error


_check_export_extra()

from .configs import (  # noqa: E402
    EXPORT_CONFIG_CLASSES,
    FeatureVectorExportConfig,
    FillMaskExportConfig,
    HfdlExportConfig,
    ImageClassificationExportConfig,
    ImageFeatureExtractionExportConfig,
    TextClassificationExportConfig,
    TextFeatureExtractionExportConfig,
    TextGenerationExportConfig,
    TextGenerationWithPastExportConfig,
    TokenClassificationExportConfig,
    count_hidden_states,
    get_export_config,
    register_with_optimum_tasks_manager,
)
from .generative import GenerativeExportResult, OrtGenerativePipeline, export_generative  # noqa: E402
from .modeling_ort import (  # noqa: E402
    ORTModel,
    ORTModelForCausalLM,
    ORTModelForFeatureExtraction,
    ORTModelForImageClassification,
    ORTModelForMaskedLM,
    ORTModelForSequenceClassification,
    ORTModelForTokenClassification,
)
from .onnx import (  # noqa: E402
    OnnxExportResult,
    OnnxValidationError,
    export_config_for,
    export_onnx,
    validate_onnx_model,
)
from .tensorrt import export_tensorrt  # noqa: E402

__all__ = [
    "EXPORT_CONFIG_CLASSES",
    "FeatureVectorExportConfig",
    "FillMaskExportConfig",
    "GenerativeExportResult",
    "HfdlExportConfig",
    "ImageClassificationExportConfig",
    "ImageFeatureExtractionExportConfig",
    "ORTModel",
    "ORTModelForCausalLM",
    "ORTModelForFeatureExtraction",
    "ORTModelForImageClassification",
    "ORTModelForMaskedLM",
    "ORTModelForSequenceClassification",
    "ORTModelForTokenClassification",
    "OnnxExportResult",
    "OnnxValidationError",
    "OrtGenerativePipeline",
    "TextClassificationExportConfig",
    "TextFeatureExtractionExportConfig",
    "TextGenerationExportConfig",
    "TextGenerationWithPastExportConfig",
    "TokenClassificationExportConfig",
    "count_hidden_states",
    "export_config_for",
    "export_generative",
    "export_onnx",
    "export_tensorrt",
    "get_export_config",
    "register_with_optimum_tasks_manager",
    "validate_onnx_model",
]
