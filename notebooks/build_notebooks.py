"""Write the course notebooks from this script, executed, so that a change to a notebook is a reviewable diff of Python.

Usage (from the repository root, with the venv that has hfdl installed)::

    python notebooks/build_notebooks.py                                    # every notebook
    python notebooks/build_notebooks.py 01_foundations_mlp_lenet5.ipynb   # only the ones named

For each notebook this renders the cells written below, executes them in a fresh ``python3`` kernel (through
nbclient, offline, with ``notebooks/`` as the working directory and a throwaway IPython profile, so that a personal
``~/.ipython`` cannot change the outputs) and writes the ``.ipynb`` *with its outputs*, so a learner browsing the
repository or the Hub sees the printed numbers and the figures without running anything. Run it after editing a
cell below and commit the result; it takes about as long as the notebook does (15 s on two CPU cores).

The written file is kept small and stable, so that rebuilding an unchanged notebook does not churn the diff: the
cells seed everything they train, figures are PNGs at a modest resolution without matplotlib's version stamp,
stream outputs are merged, and nothing volatile is stored (no execution timings, no kernel or Python version; the
execution counts stay). ``tests/test_notebooks.py`` checks that the cell sources on disk are what this script
renders, that the file was executed (counts in order, no errors, one PNG per ``plt.show()``), and re-executes it.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parent
#: Seconds one cell may run before the execution is abandoned (the whole notebook takes well under a minute).
CELL_TIMEOUT_SECONDS = 300
#: Resolution of the PNG figures written into the notebooks: sharp enough to read, small enough to commit.
FIGURE_DPI = 80
#: Environment of the kernel, on top of this process's: nothing may reach the network, and `make test` exports
#: MPLBACKEND=Agg for scripts, which would replace the kernel's inline backend and leave the figures out.
KERNEL_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
#: IPython configuration of the kernel (read from a throwaway profile): how the inline backend writes a figure.
#: ``Software: None`` leaves matplotlib's version out of the PNG, so an upgrade alone does not change the bytes.
KERNEL_CONFIG = f"""
c.InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "dpi": {FIGURE_DPI}, "metadata": {{"Software": None}}}}
"""


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(textwrap.dedent(text).strip())


def foundations_mlp_lenet5() -> nbformat.NotebookNode:
    """Course chapters 3-5: activations, weight initialisation, LeNet-5, feature maps, save and load."""
    cells = [
        md(
            """
            # Foundations with hfdl: the MLP and LeNet-5 (chapters 3-5)

            This notebook walks the first chapters of *Deep Learning Mastery* with the `hfdl` library:

            1. **Activations** (ch. 3): the five nonlinearities and their derivatives.
            2. **Weight initialisation** (ch. 4): the same MLP trained from zeros, N(0, 0.02), Xavier and He weights.
            3. **LeNet-5** (ch. 5): the 1998 network (tanh, average pooling) against its modern variant (ReLU, max
               pooling).
            4. **Feature maps**: what the first convolution layer (C1) makes of a digit.
            5. **Save and load** in the Hugging Face format, with `from_pretrained`.

            Data: scikit-learn's 1,797 handwritten digits (8x8 pixels), which ship with scikit-learn, so everything
            runs offline. The whole notebook runs in well under a minute on two CPU cores, and each training starts
            from a fixed seed, so a rerun on the same machine prints the same numbers.
            """
        ),
        code(
            """
            import warnings

            # tqdm's notice that ipywidgets is missing (progress bars then print as text); set before the imports.
            warnings.filterwarnings("ignore", message="IProgress not found")

            import tempfile
            from pathlib import Path

            import datasets
            import matplotlib.pyplot as plt
            import numpy as np
            import torch
            import transformers
            from transformers import AutoImageProcessor, AutoModelForImageClassification
            from transformers.activations import ACT2FN

            import hfdl  # registers hfdl's architectures with the transformers Auto classes
            from hfdl.data import load_digits_dataset

            # These networks are tiny: on a CPU one thread is faster than several, whose synchronisation costs more
            # than the work they share (and far more when other programs keep the cores busy).
            torch.set_num_threads(1)
            # Keep the outputs to what the notebook is about: no progress bars or backend notices.
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            datasets.disable_progress_bars()
            print(f"hfdl {hfdl.__version__}, torch {torch.__version__}; architectures: {', '.join(hfdl.REGISTRY)}")
            """
        ),
        md(
            """
            ## The data

            `hfdl.data.load_digits_dataset()` returns a stratified train/test `DatasetDict` (80 % / 20 %) with an
            `image` column (8x8 grayscale, 0-255) and a `label` column.
            """
        ),
        code(
            """
            digits = load_digits_dataset()
            images = {split: [np.asarray(image) for image in digits[split]["image"]] for split in ("train", "test")}
            labels = {split: torch.tensor(digits[split]["label"]) for split in ("train", "test")}

            print({split: len(images[split]) for split in images}, "images of shape", images["train"][0].shape)
            fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
            for axis, image, label in zip(axes, images["train"], labels["train"]):
                axis.imshow(image, cmap="gray")
                axis.set_title(int(label))
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            Two helpers used by every section. Each architecture's image processor (grayscale, resize to
            `config.image_size`, scale to [-1, 1]) runs once over the whole split, and a plain training loop
            reads the tensors: mini-batches, cross-entropy (the model computes it when given `labels`), one
            optimizer step per batch.
            """
        ),
        code(
            """
            def pixel_values_for(config):
                \"\"\"Every split through the image processor that matches `config` (8x8 for the MLP, 32x32 for LeNet-5).\"\"\"
                processor = hfdl.get_architecture(config.model_type).make_image_processor(config)
                return {split: processor(images[split], return_tensors="pt")["pixel_values"] for split in images}


            def train(model, pixel_values, targets, num_epochs, optimizer, batch_size=64, seed=0):
                \"\"\"Mini-batch training; returns the mean training loss of each epoch.\"\"\"
                generator = torch.Generator().manual_seed(seed)  # the same batches for every model we compare
                epoch_losses = []
                model.train()
                for _ in range(num_epochs):
                    order = torch.randperm(len(targets), generator=generator)
                    total = 0.0
                    for start in range(0, len(targets), batch_size):
                        batch = order[start : start + batch_size]
                        loss = model(pixel_values=pixel_values[batch], labels=targets[batch]).loss
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        total += loss.item() * len(batch)
                    epoch_losses.append(total / len(targets))
                model.eval()
                return epoch_losses


            @torch.no_grad()
            def accuracy(model, pixel_values, targets):
                return (model(pixel_values=pixel_values).logits.argmax(-1) == targets).float().mean().item()
            """
        ),
        md(
            """
            ## 1. Activations and their derivatives (chapter 3)

            Without a nonlinearity, stacked linear layers collapse into one linear map. Backpropagation multiplies
            the derivatives of the activations layer after layer, so their size decides whether gradients survive:
            the sigmoid's derivative is at most 0.25 (gradients shrink fast in deep stacks), tanh's reaches 1 at the
            origin, ReLU passes gradients unchanged for positive inputs and blocks them for negative ones (Leaky ReLU
            keeps a slope of 0.01 there, too small to see at this scale: its dashed line covers ReLU's), and GELU is a
            smooth ReLU.

            hfdl's models take their activation by name from `transformers.activations.ACT2FN`, the table
            transformers' own models use; `ACT2FN[name]` builds a fresh `nn.Module`.
            """
        ),
        code(
            """
            x = torch.linspace(-4, 4, 401, requires_grad=True)
            fig, (ax_value, ax_slope) = plt.subplots(1, 2, figsize=(11, 3.8))
            for name in ("sigmoid", "tanh", "relu", "leaky_relu", "gelu"):
                y = ACT2FN[name](x)
                (slope,) = torch.autograd.grad(y.sum(), x)  # dy/dx at every point, by autograd
                style = "--" if name == "leaky_relu" else "-"  # dashed, so that ReLU stays visible under it
                ax_value.plot(x.detach(), y.detach(), style, label=name)
                ax_slope.plot(x.detach(), slope, style, label=name)
                print(f"{name:>10}: largest derivative {slope.max().item():.3f}")
            ax_value.set_title("activation f(x)")
            ax_slope.set_title("derivative f'(x)")
            for axis in (ax_value, ax_slope):
                axis.axhline(0, color="gray", linewidth=0.5)
                axis.legend()
            plt.show()
            """
        ),
        md(
            """
            ## 2. Weight initialisation (chapter 4)

            The MLP config's `initializer` field chooses how the weights start, and
            `hfdl.create_model("mlp-digits", initializer=...)` builds the registry's `mlp-digits` preset with that one
            field changed (like `timm.create_model`). The same MLP (64 -> 128 -> 64 -> 10, ReLU) is trained for 10
            epochs with SGD + momentum, on the same batches, from four starting points:

            * **zeros**: every unit of a layer computes the same thing and gets the same gradient; with ReLU the
              gradients of the hidden weights are exactly zero, so only the output bias learns. The loss stays at
              ln 10 ~= 2.30, chance level.
            * **normal** N(0, 0.02): random, so the symmetry is broken, but too small: the signal shrinks layer after
              layer and training stalls for the first epochs.
            * **Xavier** (Glorot & Bengio, 2010) and **He** (He et al., 2015): scaled to the layer's fan-in/fan-out
              so activations keep their variance; training starts at once.
            """
        ),
        code(
            """
            init_losses = {}
            for initializer in ("zeros", "normal", "xavier_uniform", "kaiming_normal"):
                torch.manual_seed(0)  # the same random draws for every model
                model = hfdl.create_model("mlp-digits", initializer=initializer)  # a preset, with one field changed
                mlp_pixels = pixel_values_for(model.config)
                optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                init_losses[initializer] = train(model, mlp_pixels["train"], labels["train"], 10, optimizer)
                first_layer = model.mlp.layers[0].linear.weight
                print(
                    f"{initializer:>15}: final loss {init_losses[initializer][-1]:.3f}, "
                    f"test accuracy {accuracy(model, mlp_pixels['test'], labels['test']):.3f}, "
                    f"largest first-layer weight {first_layer.abs().max().item():.3f}"
                )

            plt.figure(figsize=(7, 4))
            for initializer, losses in init_losses.items():
                plt.plot(range(1, len(losses) + 1), losses, marker="o", label=initializer)
            plt.xlabel("epoch")
            plt.ylabel("training loss (log scale)")
            plt.yscale("log")
            plt.title("The same MLP from four initialisations")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            With zeros the first layer's weights are still exactly 0 after training: no gradient ever reached them.

            ## 3. LeNet-5 on the digits (chapter 5)

            LeNet-5 (LeCun et al., 1998) takes 32x32 inputs, so its image processor resizes the 8x8 digits. Two
            presets of the registry: `lenet5-1998` is the 1998 network (tanh, average pooling, Xavier-like init) and
            `lenet5-modern` the variant most courses teach today (ReLU, max pooling, He init). Both are trained for 6
            epochs with Adam.
            """
        ),
        code(
            """
            lenet_models, lenet_losses = {}, {}
            for preset in ("lenet5-1998", "lenet5-modern"):
                torch.manual_seed(0)
                model = hfdl.create_model(preset)
                config = model.config
                lenet_pixels = pixel_values_for(config)  # (N, 1, 32, 32), the same for both presets
                optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
                lenet_losses[preset] = train(model, lenet_pixels["train"], labels["train"], 6, optimizer)
                lenet_models[preset] = model
                print(
                    f"{preset:>13} ({config.activation}, {config.pooling} pooling, "
                    f"{model.num_parameters():,} parameters): "
                    f"test accuracy {accuracy(model, lenet_pixels['test'], labels['test']):.3f}"
                )

            plt.figure(figsize=(7, 4))
            for preset, losses in lenet_losses.items():
                plt.plot(range(1, len(losses) + 1), losses, marker="o", label=preset)
            plt.xlabel("epoch")
            plt.ylabel("training loss (log scale)")
            plt.yscale("log")
            plt.title("LeNet-5: 1998 against modern")
            plt.legend()
            plt.show()
            """
        ),
        md(
            """
            On these small digits both variants reach about 98 % test accuracy: the 1998 design is not what holds a
            network of this size back. ReLU's advantage grows with depth, where tanh's derivatives below 1 (section 1)
            multiply layer after layer.

            ## 4. Feature maps: what the first layer sees

            With `output_hidden_states=True` LeNet-5 returns every layer's activations: C1, S2, C3, S4 (feature maps)
            then C5 and F6 (vectors). C1's six 28x28 maps are its 5x5 filters slid over the digit: each responds to a
            stroke direction or an edge. (The input looks blurred because it is the 8x8 digit resized to 32x32.)
            """
        ),
        code(
            """
            model = lenet_models["lenet5-modern"]
            digit = lenet_pixels["test"][:1]  # (1, 1, 32, 32)
            with torch.no_grad():
                outputs = model(pixel_values=digit, output_hidden_states=True)
            for name, state in zip(("C1", "S2", "C3", "S4", "C5", "F6"), outputs.hidden_states):
                print(f"{name}: {tuple(state.shape)}")
            prediction = outputs.logits.argmax(-1).item()

            c1 = outputs.hidden_states[0][0]  # (6, 28, 28)
            fig, axes = plt.subplots(1, 7, figsize=(14, 2.4))
            axes[0].imshow(digit[0, 0], cmap="gray")
            axes[0].set_title(f"input (label {labels['test'][0].item()}, predicted {prediction})", fontsize=9)
            for index, (axis, feature_map) in enumerate(zip(axes[1:], c1)):
                axis.imshow(feature_map, cmap="magma")
                axis.set_title(f"C1 map {index + 1}", fontsize=9)
            for axis in axes:
                axis.axis("off")
            plt.show()
            """
        ),
        md(
            """
            ## 5. Save and load in the Hugging Face format

            `save_pretrained` writes the config, the weights (safetensors) and the modeling code itself, so the
            folder (or a Hub repo made from it) loads with `trust_remote_code=True` where hfdl is not installed. With
            `import hfdl`, the Auto classes find the registered classes directly. To publish a model,
            `hfdl.hub.save_for_hub(model, folder, processor=processor, card_data=...)` writes the same folder plus a
            model card (`README.md`) with the Hub metadata and your evaluation results.
            """
        ),
        code(
            """
            processor = hfdl.get_architecture("lenet5").make_image_processor(model.config)
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                processor.save_pretrained(folder)
                print(sorted(path.name for path in Path(folder).iterdir()))

                reloaded = AutoModelForImageClassification.from_pretrained(folder)
                reloaded_processor = AutoImageProcessor.from_pretrained(folder)

            with torch.no_grad():
                original_logits = model(pixel_values=lenet_pixels["test"]).logits
                reloaded_logits = reloaded(pixel_values=lenet_pixels["test"]).logits
            print(type(reloaded).__name__, type(reloaded_processor).__name__)
            print("identical logits after reload:", torch.equal(original_logits, reloaded_logits))
            """
        ),
        md(
            """
            ## Next

            * `recipes/train_image_classifier.py` trains any of these models with Accelerate and writes a Hub-ready
              checkpoint; `spaces/digit-recognizer` serves one in a Gradio app that shows these C1 maps for your own
              drawings.
            * `hfdl.export.export_onnx` exports a checkpoint to ONNX for ONNX Runtime.
            """
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


#: File name -> builder; tests/test_notebooks.py compares every file with its builder's output.
NOTEBOOKS = {"01_foundations_mlp_lenet5.ipynb": foundations_mlp_lenet5}


def build(builder: Callable[[], nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """The notebook as written below, not executed, with stable cell ids (random ids would churn every rebuild)."""
    notebook = builder()
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"
    nbformat.validate(notebook)
    return notebook


def execute(notebook: nbformat.NotebookNode) -> float:
    """Run every cell of ``notebook`` in a fresh kernel, storing the outputs in it; return the seconds it took.

    Raises ``nbclient.exceptions.CellExecutionError`` (naming the cell, with its traceback) on the first error. The
    kernel is ``python3``, which jupyter_client resolves to the interpreter running this function (the venv).
    """
    with tempfile.TemporaryDirectory() as ipython_dir:
        profile = Path(ipython_dir) / "profile_default"
        profile.mkdir()
        (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG, encoding="utf-8")
        environment = {**os.environ, **KERNEL_ENVIRONMENT, "IPYTHONDIR": ipython_dir}
        environment.pop("MPLBACKEND", None)
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # cells run with notebooks/ as working directory
            record_timing=False,  # no execution timestamps in the cell metadata
            coalesce_streams=True,  # one stdout output per cell, however the kernel happened to flush it
        )
        start = time.perf_counter()
        client.execute(env=environment)
        return time.perf_counter() - start


def build_executed(builder: Callable[[], nbformat.NotebookNode]) -> tuple[nbformat.NotebookNode, float]:
    """The notebook built and executed, with the volatile metadata the kernel added removed; and its seconds."""
    notebook = build(builder)
    metadata = copy.deepcopy(notebook.metadata)
    seconds = execute(notebook)
    notebook.metadata = metadata  # nbclient stores the kernel's Python version and more in language_info
    nbformat.validate(notebook)
    return notebook, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"notebooks to build (default: {', '.join(NOTEBOOKS)})"
    )
    names = parser.parse_args(argv).names or list(NOTEBOOKS)
    unknown = [name for name in names if name not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; available: {', '.join(NOTEBOOKS)}")
    for name in names:
        notebook, seconds = build_executed(NOTEBOOKS[name])
        path = NOTEBOOKS_DIR / name
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
        print(f"wrote {path} (executed in {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
