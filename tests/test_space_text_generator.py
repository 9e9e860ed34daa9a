"""The text-generator Space: streamed generation equal to ``model.generate``, input checks, the running app.

The model is an untrained, seeded character-level GPT (the ``gpt-char`` preset made tiny) with a char tokenizer
trained by :func:`hfdl.tokenization.train_tokenizer` on a slice of tiny-shakespeare, saved in the layout of
``recipes/train_causal_lm.py`` (``<output_dir>/best`` with the tokenizer): the point is that the app streams what
``model.generate`` computes, not that the text reads well. Clients use ``ssl_verify=False`` (see tests/test_space.py).
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

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
torch = pytest.importorskip("torch")

import hfdl  # noqa: E402
from hfdl.hub import save_for_hub  # noqa: E402
from hfdl.tokenization import train_tokenizer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces" / "text-generator"
APP_PATH = SPACE_DIR / "app.py"
SHAKESPEARE = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
CONTEXT = 64
TINY_GPT = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def corpus() -> str:
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text()
    return "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str):
    return gradio_client.Client(url, verbose=False, ssl_verify=False)


@pytest.fixture(scope="module")
def char_gpt(tmp_path_factory) -> Path:
    """A training output folder: the model and its char tokenizer in ``best/``, as the recipe writes them."""
    root = tmp_path_factory.mktemp("outputs") / "gpt-char-shakespeare"
    tokenizer = train_tokenizer([corpus()], kind="char", model_max_length=CONTEXT)
    torch.manual_seed(0)
    model = hfdl.create_model("gpt-char", vocab_size=len(tokenizer), **TINY_GPT).eval()
    assert model.config.max_position_embeddings == CONTEXT and model.config.position_embedding_type == "learned"
    save_for_hub(model, root / "best", processor=tokenizer)
    return root


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory) -> Path:
    """A fill-mask model: not a causal LM, refused by the generator."""
    folder = tmp_path_factory.mktemp("bert") / "bert-mlm"
    tokenizer = train_tokenizer([corpus()], kind="wordpiece", vocab_size=200, model_max_length=128)
    torch.manual_seed(0)
    model = hfdl.create_model("bert-course", task="fill-mask", vocab_size=len(tokenizer), **TINY_GPT)
    return save_for_hub(model.eval(), folder, processor=tokenizer)


@pytest.fixture(scope="module")
def app(char_gpt):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HFDL_MODEL", str(char_gpt))
        spec = importlib.util.spec_from_file_location(f"text_generator_app_{uuid.uuid4().hex[:8]}", APP_PATH)
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


def reference(folder: Path, prompt: str, max_new_tokens: int, seed: int | None = None, **decoding) -> str:
    """The prompt and ``model.generate``'s continuation, decoded: what the app must show."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder / "best").eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / "best")
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        output = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            pad_token_id=0,
            **decoding,
        )
    return prompt + tokenizer.decode(output[0, ids.shape[1] :])


def run(server, *inputs) -> list[tuple[str, str]]:
    """Every streamed update of one /generate call."""
    job = server.submit(*inputs, api_name="/generate")
    job.result()
    return [tuple(update) for update in job.outputs()]


def test_import_builds_the_ui_without_loading_anything(char_gpt, tmp_path):
    """`import app` loads no torch/hfdl; the default is the recipe's output folder in the working directory, else the
    Hub model."""
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        print(app.default_model(), sorted(name for name in ("torch", "transformers", "hfdl") if name in sys.modules))
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "HFDL_MODEL"}
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "gpt-char-shakespeare").symlink_to(char_gpt)
    (tmp_path / "elsewhere").mkdir()
    repository_model = REPO_ROOT / "outputs" / "gpt-char-shakespeare"
    has_model = any((folder / "config.json").is_file() for folder in (repository_model, repository_model / "best"))
    fallback = str(repository_model) if has_model else "hfdl/gpt-char-shakespeare"
    for cwd, expected in [
        (tmp_path, str(tmp_path / "outputs" / "gpt-char-shakespeare")),
        (tmp_path / "elsewhere", fallback),
    ]:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().splitlines()[-1] == f"{expected} []"


def test_greedy_stream_grows_and_equals_generate(app, server, char_gpt):
    updates = run(server, str(char_gpt), "ROMEO:", 40, 0.8, 50, 1.0, 0, True)
    texts = [text for text, _ in updates]
    assert len(texts) >= 3  # streamed, not one answer
    assert all(len(later) >= len(earlier) for earlier, later in zip(texts, texts[1:]))
    assert all(text.startswith("ROMEO:") for text in texts)
    assert texts[-1] == reference(char_gpt, "ROMEO:", 40, do_sample=False)
    stats = updates[-1][1]
    match = re.search(r"\*\*(\d+) tokens\*\* in ([\d.]+) s: \*\*([\d.]+) tokens/s\*\*", stats)
    assert match, stats
    assert int(match.group(1)) == 40 and float(match.group(3)) > 0
    assert float(match.group(3)) == pytest.approx(40 / float(match.group(2)), rel=0.1, abs=0.2)
    assert all(stats == "Generating..." for _, stats in updates[:-1])


def test_sampling_is_seeded_and_equals_generate(app, char_gpt):
    settings = app.Settings(max_new_tokens=30, temperature=0.7, top_k=10, top_p=0.9, seed=1234, greedy=False)
    first = list(app.generate_stream(str(char_gpt), "KING:", settings))[-1]
    second = list(app.generate_stream(str(char_gpt), "KING:", settings))[-1]
    other = list(app.generate_stream(str(char_gpt), "KING:", settings._replace(seed=99)))[-1]
    assert first.text == second.text != other.text
    expected = reference(char_gpt, "KING:", 30, seed=1234, do_sample=True, temperature=0.7, top_k=10, top_p=0.9)
    assert first.text == expected and first.windows == 1


def test_window_slides_past_the_context(app, char_gpt):
    """100 new characters from a 64-character context: the first window is generate's, then it slides."""
    final = list(app.generate_stream(str(char_gpt), "ROMEO:", app.Settings(max_new_tokens=100, greedy=True)))[-1]
    assert final.done and final.new_tokens == 100 and final.windows > 1
    assert len(final.text) == len("ROMEO:") + 100  # one character per token
    assert final.text.startswith(reference(char_gpt, "ROMEO:", CONTEXT - len("ROMEO:"), do_sample=False))
    assert "slid" in app.stats_text(final, CONTEXT)
    # A prompt longer than the context keeps its end.
    long = list(app.generate_stream(str(char_gpt), "A" * 100, app.Settings(max_new_tokens=10, greedy=True)))[-1]
    assert long.prompt_truncated == 100 - (CONTEXT - 10) and long.windows == 1 and long.new_tokens == 10
    assert "dropped" in app.stats_text(long, CONTEXT)


def test_empty_prompt_starts_from_a_newline(app, char_gpt):
    final = list(app.generate_stream(str(char_gpt), "", app.Settings(max_new_tokens=5, greedy=True)))[-1]
    assert final.text == reference(char_gpt, "\n", 5, do_sample=False)


def test_bad_inputs_are_named(app, server, char_gpt, bert_folder, tmp_path):
    good = ["ROMEO:", 10, 0.8, 50, 1.0, 0, False]
    cases = [
        ([str(char_gpt), "Roméo ☃", *good[1:]], "does not contain: 'é', '☃'"),
        ([str(char_gpt), "ROMEO:", 0, *good[2:]], "max_new_tokens must be a whole number from 1 to 1000"),
        ([str(char_gpt), "ROMEO:", 10, 5.0, *good[3:]], "temperature must be a number from 0.05 to 2.0"),
        ([str(char_gpt), "ROMEO:", 10, 0.8, 2.5, *good[4:]], "top_k must be a whole number"),
        ([str(char_gpt), "ROMEO:", 10, 0.8, 50, 0.0, 0, False], "top_p must be a number from 0.05 to 1.0"),
        ([str(tmp_path / "missing"), *good], "No such folder"),
        (["hfdl/no-such-model", *good], "could not be fetched or found in the cache"),
        ([str(bert_folder), *good], "'fill-mask' model; the generator needs a causal language model"),
    ]
    for inputs, message in cases:
        with pytest.raises(Exception, match=re.escape(message) if "☃" not in message else message):
            server.predict(*inputs, api_name="/generate")
    with pytest.raises(app.GeneratorInputError, match="prompt must be text"):
        list(app.generate_stream(str(char_gpt), None, app.Settings()))


def test_four_concurrent_clients(app, server, char_gpt):
    """4 clients at once, greedy and seeded sampling mixed: every answer is the one a lone request gets (sampled
    generations of a model take turns, so concurrent requests do not disturb each other's random numbers)."""
    greedy = reference(char_gpt, "ROMEO:", 20, do_sample=False)
    sampled = reference(char_gpt, "ROMEO:", 20, seed=7, do_sample=True, temperature=0.9, top_k=20, top_p=0.95)

    def user(index: int) -> list[bool]:
        session = client(app.demo.local_url)
        answers = []
        for round_ in range(2):
            is_greedy = (index + round_) % 2 == 0
            job = session.submit(str(char_gpt), "ROMEO:", 20, 0.9, 20, 0.95, 7, is_greedy, api_name="/generate")
            answers.append(job.result()[0] == (greedy if is_greedy else sampled))
        return answers

    with ThreadPoolExecutor(4) as pool:
        results = [ok for answers in pool.map(user, range(4)) for ok in answers]
    assert results == [True] * 8


def test_python_app_py_serves_from_the_space_folder(char_gpt, tmp_path):
    port, log = free_port(), tmp_path / "space.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("HFDL_MODEL", None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--model", str(char_gpt), "--port", str(port)],
            cwd=SPACE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "Text generator on" not in log.read_text():
            assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"app.py did not start: {log.read_text()[-3000:]}"
            time.sleep(0.3)
        session = client(f"http://127.0.0.1:{port}/")
        text, stats = session.predict(str(char_gpt), "ROMEO:", 10, 0.8, 50, 1.0, 0, True, api_name="/generate")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert text == reference(char_gpt, "ROMEO:", 10, do_sample=False)
    assert "tokens/s" in stats and f"model: {char_gpt}" in log.read_text()


def test_requirements_and_readme():
    requirements = [
        line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    readme = (SPACE_DIR / "README.md").read_text()
    sdk_version = re.search(r"^sdk_version: (\S+)$", readme, re.MULTILINE).group(1)
    assert requirements == ["hfdl[spaces] @ git+https://github.com/hfdl/hfdl", f"gradio=={sdk_version}"]
    header = readme.split("---")[1]
    assert "sdk: gradio" in header and "app_file: app.py" in header and "hfdl/gpt-char-shakespeare" in header
