"""The ``hfdl`` command: list the architectures, train, export, and run the end-to-end demo.

    hfdl list [--json]
    hfdl train --model lenet5-modern --dataset digits --num_epochs 5 --output_dir outputs/lenet5
    hfdl train --model vae-mnist --dataset ../shared/data/mnist-10k --output_dir outputs/vae   # or a GAN preset
    hfdl export onnx MODEL_DIR OUTPUT_DIR [--task TASK] [--hidden-states]
    hfdl export generative MODEL_DIR OUTPUT_DIR [--discriminator]
    hfdl predict MODEL IMAGE [IMAGE ...] [--backend torch|onnx] [--top_k 3] [--json]
    hfdl convert {torchvision,timm} ARCH --checkpoint FILE OUTPUT_DIR [--overwrite]
    hfdl convert transformers SRC OUTPUT_DIR [--task TASK] [--overwrite]
    hfdl demo [--output_dir outputs/lenet5-digits] [--no-serve]
    hfdl tokenizer train --kind {char,bpe,wordpiece} [--vocab-size N] --output-dir DIR FILE [FILE ...]

``hfdl train`` runs the recipe of the model's main head in this process (image classifiers, autoencoders/VAEs, GANs);
for several processes use ``accelerate launch recipes/<recipe>.py`` (see the README).

A user error (a missing or corrupt checkpoint, an unknown task, a bad option value) ends the command with one line
on stderr, ``hfdl: error: ...``, and exit status 1; argparse's usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_OUTPUT_DIR = Path("outputs/lenet5-digits")
SPACE_APP = REPO_ROOT / "spaces" / "digit-recognizer" / "app.py"


#: What a user's mistake raises (a missing folder, a corrupt file, a wrong value); anything else is a bug and keeps
#: its traceback.
USER_ERRORS = (OSError, ValueError)


def _require(module: str, extra: str) -> None:
    """Fail with the extra to install rather than a bare ModuleNotFoundError deep in a command."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SystemExit(f"hfdl: error: this command needs `{module}`: pip install 'hfdl[{extra}]'")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def describe_export(result: object) -> str:
    """One line: what was written, and each output's max abs difference onnxruntime vs PyTorch against the tolerance."""
    diffs = ", ".join(f"{name}: {diff:.2e}" for name, diff in result.max_abs_diff.items())
    return (
        f"wrote {result.onnx_path} ({result.task}, opset {result.opset}); validated at batch "
        f"{result.validation_batch_size} against PyTorch, max abs diff {diffs} (atol {result.atol:.0e})"
    )


def cmd_list(args: argparse.Namespace) -> int:
    from .registry import REGISTRY, registry_as_dicts

    if args.json:
        print(json.dumps(registry_as_dicts(), indent=2))
        return 0
    for spec in REGISTRY.values():
        print(f"{spec.name} ({spec.model_type}), chapter {spec.chapter}; presets: {', '.join(spec.presets)}")
        for task in spec.tasks:
            exported = "ONNX" if task.export_config else "not exported"
            print(f"  {task.task:<26} {task.model_class.__name__:<32} {exported}")
    return 0


#: Recipes ``hfdl train`` runs, by the ``recipe`` of the model's main head (its ``TaskSpec``).
TRAIN_RECIPES = ("train_image_classifier", "train_autoencoder", "train_gan")


def recipe_for_model(model: str | None) -> str:
    """The recipe that trains ``--model``: its main head's recipe when hfdl knows it (a preset, an architecture, a
    model_type, or a saved folder's ``config.json``), else the image-classification recipe, which then says what is
    wrong with the name. Text models have their own recipes (``recipes/train_mlm.py`` ...), run with python or
    accelerate launch."""
    from .registry import REGISTRY

    if model is None:
        return "train_image_classifier"
    model_type = model
    config_file = Path(model) / "config.json"
    if config_file.is_file():
        try:
            model_type = json.loads(config_file.read_text()).get("model_type", model)
        except (OSError, ValueError):
            return "train_image_classifier"
    for spec in REGISTRY.values():
        if model_type in (spec.name, spec.model_type) or model_type in spec.presets:
            recipe = spec.task().recipe
            return recipe if recipe in TRAIN_RECIPES else "train_image_classifier"
    return "train_image_classifier"


def cmd_train(args: argparse.Namespace, recipe_args: list[str]) -> int:
    _require("accelerate", "train")
    import importlib

    model = next((value for flag, value in zip(recipe_args, recipe_args[1:]) if flag == "--model"), None)
    model = model or next((arg.split("=", 1)[1] for arg in recipe_args if arg.startswith("--model=")), None)
    recipe = importlib.import_module(f"{__package__}.recipes.{recipe_for_model(model)}")
    recipe.main(recipe_args)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _require("onnxruntime", "export")
    if args.format == "generative":
        return cmd_export_generative(args)
    from .export import export_onnx

    result = export_onnx(
        args.model,
        args.output_dir,
        task=args.task,
        opset=args.opset,
        output_hidden_states=args.hidden_states,
        atol=args.atol,
    )
    print(describe_export(result))
    return 0


def cmd_export_generative(args: argparse.Namespace) -> int:
    """Export an autoencoder's, VAE's or GAN's parts, one validated graph each (hfdl.export.export_generative)."""
    from .export import export_generative

    result = export_generative(
        args.model, args.output_dir, opset=args.opset, atol=args.atol, include_discriminator=args.discriminator
    )
    for part in result.parts.values():
        print(describe_export(part))
    return 0


def load_space_app(app_path: Path = SPACE_APP):  # noqa: ANN201 - a module
    """Import the digit-recognizer Space's ``app.py`` by path (Spaces are folders, not packages)."""
    import importlib.util

    if not app_path.exists():
        raise SystemExit(f"error: {app_path} not found; `hfdl demo` runs from a source checkout of hfdl.")
    spec = importlib.util.spec_from_file_location("hfdl_space_digit_recognizer", app_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: train LeNet-5 on the embedded digits, save it in Hub format, export ONNX, serve the Space."""
    _require("accelerate", "train")
    _require("onnxruntime", "export")
    _require("gradio", "spaces")
    from .export import export_onnx
    from .recipes import train_image_classifier

    output_dir = Path(args.output_dir)
    print(f"[1/3] Training LeNet-5 (lenet5-modern) on the embedded 8x8 digits -> {output_dir}")
    metrics = train_image_classifier.main(
        [
            "--model",
            "lenet5-modern",
            "--dataset",
            "digits",
            "--num_epochs",
            str(args.num_epochs),
            "--output_dir",
            str(output_dir),
            "--seed",
            str(args.seed),
        ]
    )
    print(f"      test accuracy {metrics.get('eval_accuracy', float('nan')):.4f}; best model in {output_dir / 'best'}")
    print(f"[2/3] Exporting to ONNX and validating against PyTorch -> {output_dir / 'onnx'}")
    result = export_onnx(output_dir / "best", output_dir / "onnx", output_hidden_states=True)
    print(f"      {describe_export(result)}")
    if args.no_serve:
        return 0
    print("[3/3] Starting the digit-recognizer Space")
    app = load_space_app()
    app.configure(model=str(output_dir), backend=args.backend)
    app.demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=args.smoke)
    if args.smoke:
        print(f"Space running on {app.demo.local_url}")
        app.demo.close()
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify image files with a saved model (folder, training output, ONNX export or Hub id), top-k per image."""
    from PIL import Image, UnidentifiedImageError
    from transformers.utils import logging as transformers_logging

    from .inference import load

    # The output is the predictions, one line per image: no "Loading weights" bar in between.
    bars_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        predictor = load(args.model, backend=args.backend)
    finally:
        if bars_enabled:
            transformers_logging.enable_progress_bar()
    if predictor.task != "image-classification":
        raise ValueError(f"{args.model} is a {predictor.task!r} model; `hfdl predict` classifies images.")
    images = []
    for path in args.images:
        try:
            with Image.open(path) as image:
                images.append(image.copy())
        except (OSError, UnidentifiedImageError) as error:  # also a missing file
            raise ValueError(f"{path} is not an image file that Pillow can read ({error}).") from error
    results = [
        {"image": path, "predictions": predictions}
        for path, predictions in zip(args.images, predictor.classify(images, top_k=args.top_k))
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            ranked = ", ".join(f"{p['label']} ({p['score']:.3f})" for p in result["predictions"])
            print(f"{result['image']}: {ranked}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    if args.source == "transformers":
        from .convert_transformers import convert_transformers

        output_dir = convert_transformers(args.src, args.output_dir, task=args.task, overwrite=args.overwrite)
        config = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
        print(f"wrote {output_dir}: {args.src} as an hfdl {', '.join(config.get('architectures') or [])}")
        return 0
    from .convert import convert_checkpoint

    output_dir = convert_checkpoint(args.source, args.arch, args.checkpoint, args.output_dir, overwrite=args.overwrite)
    print(f"wrote {output_dir}: {args.source} {args.arch} as an hfdl model (AutoModelForImageClassification loads it)")
    return 0


def cmd_tokenizer(args: argparse.Namespace) -> int:
    """Train a tokenizer on text files and save it where ``AutoTokenizer.from_pretrained`` loads it."""
    from .tokenization import check_output_dir, save_tokenizer, train_tokenizer

    output_dir = check_output_dir(args.output_dir, overwrite=args.overwrite)  # refuse before training, not after
    tokenizer = train_tokenizer(
        files=args.files,
        kind=args.kind,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        lowercase=args.lowercase,
        special_tokens=args.special_tokens,
        model_max_length=args.model_max_length,
        encoding=args.encoding,
    )
    save_tokenizer(tokenizer, output_dir, overwrite=args.overwrite)
    print(f"trained a {args.kind} tokenizer, vocab size {len(tokenizer)}; wrote {output_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfdl", description="hfdl: Deep Learning Mastery models on the Hub.")
    commands = parser.add_subparsers(dest="command", required=True)

    list_parser = commands.add_parser("list", help="list the registered architectures")
    list_parser.add_argument("--json", action="store_true", help="print the registry as JSON, for scripts")

    commands.add_parser(
        "train",
        help=(
            "train a model with its accelerate recipe: image classifiers, autoencoders/VAEs or GANs, chosen from "
            "--model (arguments go to the recipe; see --help there)"
        ),
        add_help=False,
    )

    export_parser = commands.add_parser("export", help="export a model")
    formats = export_parser.add_subparsers(dest="format", required=True)
    onnx_parser = formats.add_parser("onnx", help="export to ONNX and validate against PyTorch in onnxruntime")
    onnx_parser.add_argument("model", help="a saved model folder or Hub id (any hfdl head, base models included)")
    onnx_parser.add_argument("output_dir", help="folder for model.onnx, config.json and the preprocessor config")
    onnx_parser.add_argument("--task", default=None, help="the head to export (default: the one the folder saved)")
    onnx_parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the export config's)")
    onnx_parser.add_argument("--hidden-states", action="store_true", help="also export per-layer activations")
    onnx_parser.add_argument("--atol", type=float, default=None, help="validation tolerance (default: config's)")
    # Its own format, not an option of `onnx`: it writes several graphs (loaded by OrtGenerativePipeline, not
    # ORTModel), and `onnx`'s --task and --hidden-states mean nothing for it.
    generative_parser = formats.add_parser(
        "generative",
        help="export an autoencoder's or VAE's encoder.onnx + decoder.onnx, or a GAN's generator.onnx, each validated",
    )
    generative_parser.add_argument("model", help="a saved autoencoder, VAE or GAN folder (or Hub id)")
    generative_parser.add_argument("output_dir", help="folder for the part graphs, config.json and preprocessor")
    generative_parser.add_argument("--discriminator", action="store_true", help="GAN: also export the discriminator")
    generative_parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 18)")
    generative_parser.add_argument("--atol", type=float, default=None, help="validation tolerance (default: 1e-4)")

    predict_parser = commands.add_parser("predict", help="classify image files with a saved model (hfdl.inference)")
    predict_parser.add_argument("model", help="a model folder, a training output folder, an ONNX export or a Hub id")
    predict_parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    predict_parser.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    predict_parser.add_argument("--top_k", type=_positive_int, default=3, help="how many classes to show per image")
    predict_parser.add_argument("--json", action="store_true", help="print JSON, for scripts")

    convert_parser = commands.add_parser(
        "convert",
        help="import a torchvision/timm checkpoint (AlexNet, VGG, ResNet, timm ViT) or a transformers BERT/GPT-2/ViT",
    )
    convert_sources = convert_parser.add_subparsers(dest="source", required=True)
    for source in ("torchvision", "timm"):
        networks = "AlexNet, VGG or ResNet" + (" or a vit_* ViT" if source == "timm" else "")
        image_parser = convert_sources.add_parser(source, help=f"a {source} checkpoint of {networks}")
        image_parser.add_argument(
            "arch", help="the source's model name (resnet50, vgg16_bn, resnet50d, alexnet, vit_base_patch16_224, ...)"
        )
        image_parser.add_argument("--checkpoint", required=True, help=".safetensors, or .pth read with weights_only")
        image_parser.add_argument("output_dir", help="the Hub folder to write (config, safetensors, code, processor)")
        image_parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT_DIR")
    text_parser = convert_sources.add_parser(
        "transformers", help="a transformers BertModel/BertFor*/GPT2Model/GPT2LMHeadModel/ViTModel/ViTFor* checkpoint"
    )
    text_parser.add_argument("src", help="a checkpoint folder (config.json + weights) or a Hub repo id")
    text_parser.add_argument("output_dir", help="the Hub folder to write (config, safetensors, code, tokenizer)")
    text_parser.add_argument("--task", default=None, help="the hfdl head to build (default: the checkpoint's head)")
    text_parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT_DIR")

    demo_parser = commands.add_parser("demo", help="train LeNet-5 on the digits, export it and serve its Space")
    demo_parser.add_argument("--output_dir", default=str(DEMO_OUTPUT_DIR))
    demo_parser.add_argument("--num_epochs", type=_positive_int, default=15)
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--backend", choices=("torch", "onnx"), default="onnx")
    demo_parser.add_argument("--host", default="127.0.0.1")
    demo_parser.add_argument("--port", type=int, default=7860)
    demo_parser.add_argument("--no-serve", action="store_true", help="stop after training and export")
    demo_parser.add_argument("--smoke", action="store_true", help="start the Space, print its URL, stop")

    # Kinds, presets and numbers are checked by hfdl.tokenization (imported only when the command runs).
    tokenizer_parser = commands.add_parser("tokenizer", help="train a char, BPE or WordPiece tokenizer on text files")
    tokenizer_actions = tokenizer_parser.add_subparsers(dest="action", required=True)
    tokenizer_train = tokenizer_actions.add_parser(
        "train", help="train a tokenizer and save it as a folder that AutoTokenizer.from_pretrained loads"
    )
    tokenizer_train.add_argument("files", nargs="+", help="text files to train on")
    tokenizer_train.add_argument("--kind", default="bpe", help="char, bpe (byte-level, GPT-2) or wordpiece (BERT)")
    tokenizer_train.add_argument(
        "--vocab-size", type=_positive_int, default=None, help="largest vocabulary (default 1024; char: all seen)"
    )
    tokenizer_train.add_argument("--min-frequency", type=int, default=2, help="fewest occurrences of a merged pair")
    tokenizer_train.add_argument("--lowercase", action="store_true", help="lowercase text first (uncased models)")
    tokenizer_train.add_argument(
        "--special-tokens", default=None, help="preset: none, gpt or bert (default: the kind's own)"
    )
    tokenizer_train.add_argument("--encoding", default="utf-8", help="encoding of FILES (e.g. latin-1)")
    tokenizer_train.add_argument("--model-max-length", type=_positive_int, default=512, help="longest model input")
    tokenizer_train.add_argument("--output-dir", required=True, help="the tokenizer folder to write")
    tokenizer_train.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "train":  # everything after `train` belongs to the recipe's own parser
            return cmd_train(argparse.Namespace(command="train"), argv[1:])
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return cmd_list(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "convert":
            return cmd_convert(args)
        if args.command == "tokenizer":
            return cmd_tokenizer(args)
        return cmd_demo(args)
    except USER_ERRORS as error:
        # One line a user can act on; the library's exceptions already say what is wrong and what is allowed.
        print(f"hfdl: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
