"""Build a TensorRT engine from an :func:`~hfdl.export.export_onnx` folder, where NVIDIA's stack is installed.

TensorRT needs an NVIDIA GPU, its driver and the ``tensorrt`` wheel, none of which the ``export`` extra installs
(hfdl's CI has no GPU). So this is a thin, honest wrapper over TensorRT's own ONNX parser: it builds the engine
when ``tensorrt`` imports and raises an ImportError that says what to install otherwise. It has not been run in
hfdl's CI; the ONNX graph it reads is the one that is validated there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .onnx import ONNX_WEIGHTS_NAME

TENSORRT_ENGINE_NAME = "model.engine"


def export_tensorrt(
    onnx_dir: str | Path,
    output_dir: str | Path,
    fp16: bool = False,
    max_batch_size: int = 64,
    workspace_bytes: int = 1 << 30,
) -> Path:
    """Build ``output_dir/model.engine`` (plus config.json) from ``onnx_dir/model.onnx``; return the engine path.

    The dynamic batch axis becomes an optimisation profile from 1 to ``max_batch_size`` (tuned for the maximum);
    ``fp16`` lets TensorRT pick half-precision kernels where the GPU has them.

    Raises:
        ImportError: If the ``tensorrt`` package is not installed.
        FileNotFoundError: If ``onnx_dir`` has no ``model.onnx``.
        ValueError: If TensorRT cannot parse the graph (its parser's messages are included).
        RuntimeError: If TensorRT fails to build the engine.
    """
    try:
        import tensorrt as trt
    except ImportError as error:
        raise ImportError(
            "export_tensorrt needs NVIDIA TensorRT's Python package and a CUDA GPU: `pip install tensorrt` on Linux "
            "with an NVIDIA driver (it is not part of hfdl[export]). Without a GPU, run the ONNX model with "
            "hfdl.export.ORTModel instead."
        ) from error
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ValueError(f"`max_batch_size` must be a positive integer, got {max_batch_size!r}.")
    onnx_path = Path(onnx_dir) / ONNX_WEIGHTS_NAME
    if not onnx_path.is_file():
        raise FileNotFoundError(f"No {ONNX_WEIGHTS_NAME} in {onnx_dir}; create it with hfdl.export.export_onnx first.")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch; TensorRT 8 must be asked for it.
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise ValueError(f"TensorRT could not parse {onnx_path}: {errors}")

    build_config = builder.create_builder_config()
    build_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        build_config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        graph_input = network.get_input(index)
        sample_shape = tuple(graph_input.shape)[1:]  # (C, H, W): static in hfdl graphs; axis 0 is the batch
        profile.set_shape(
            graph_input.name, (1, *sample_shape), (max_batch_size, *sample_shape), (max_batch_size, *sample_shape)
        )
    build_config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, build_config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}; see its log above.")

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    engine_path = output_dir / TENSORRT_ENGINE_NAME
    engine_path.write_bytes(bytes(engine))
    shutil.copyfile(Path(onnx_dir) / "config.json", output_dir / "config.json")
    return engine_path
