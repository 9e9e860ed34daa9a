"""hfdl.hub: model cards with valid Hub metadata, written where a model is published, atomically."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import ARCH_TASKS, build_model
from huggingface_hub import ModelCard

import hfdl
from hfdl.hub import model_card, push_to_hub, save_for_hub
from hfdl.registry import REGISTRY

CARD_DATA = {
    "datasets": ["ylecun/mnist"],
    "eval_results": {"accuracy": 0.987, "f1_macro": 0.9861},
    "eval_dataset": "ylecun/mnist",
    "description": "Trained by a test.",
}


def read_metadata(folder) -> dict:
    return yaml.safe_load((folder / "README.md").read_text().split("---")[1])


@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_card_metadata_names_task_tags_datasets_and_results(spec, task, tmp_path):
    model = build_model(spec, task)
    folder = save_for_hub(model, tmp_path / "my-model", card_data=CARD_DATA)
    metadata = read_metadata(folder)
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == task.task
    remote_code = task.auto_class is not None  # only heads with an Auto class load as remote code
    assert metadata["tags"] == ["hfdl", spec.model_type, *(["custom_code"] if remote_code else [])]
    assert metadata["datasets"] == ["ylecun/mnist"]
    (result,) = metadata["model-index"][0]["results"]
    assert metadata["model-index"][0]["name"] == "my-model"  # the folder's name, as a Hub repo would be called
    assert result["task"]["type"] == task.task and result["dataset"]["split"] == "test"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"accuracy": 0.987, "f1_macro": 0.9861}
    card = ModelCard.load(folder / "README.md")  # huggingface_hub parses what it would validate on upload
    assert card.data.eval_results[0].metric_value == 0.987
    body = card.text
    assert f"{model.num_parameters():,} parameters" in body and "| accuracy | 0.9870 |" in body
    assert "Trained by a test." in body
    if remote_code:
        assert f'{task.auto_class.__name__}.from_pretrained("my-model", trust_remote_code=True)' in body
    else:
        assert f'hfdl.{task.model_class.__name__}.from_pretrained("my-model")' in body
        assert "trust_remote_code" not in body and "not as remote code" in body


def test_saved_folder_loads_and_carries_processor_and_remote_code(tmp_path):
    spec = REGISTRY["lenet5"]
    model = hfdl.create_model("lenet5-modern")
    folder = save_for_hub(model, tmp_path / "lenet", processor=spec.make_image_processor(model.config))
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    assert {"modeling_lenet5.py", "configuration_lenet5.py", "hfdl_utils.py"} <= names
    loaded = spec.task().model_class.from_pretrained(folder)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_card_without_results_has_no_model_index(tmp_path):
    metadata = read_metadata(save_for_hub(hfdl.create_model("mlp"), tmp_path / "plain"))
    assert "model-index" not in metadata and "datasets" not in metadata


@pytest.mark.parametrize(
    ("card_data", "message"),
    [
        ({"dataset": ["x"]}, r"Unknown `card_data` keys \['dataset'\]; allowed: model_name, datasets"),
        ({"datasets": "ylecun/mnist"}, r"`card_data\['datasets'\]` must be a list of strings"),
        ({"eval_results": {"accuracy": "high"}}, r"must map metric names to numbers"),
        ({"eval_results": {"accuracy": 0.9}}, r"needs `eval_dataset` \(or `datasets`\)"),
    ],
)
def test_bad_card_data_is_refused_before_anything_is_written(card_data, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        save_for_hub(hfdl.create_model("mlp"), tmp_path / "out", card_data=card_data)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_keeps_the_previous_folder(tmp_path, monkeypatch):
    model = hfdl.create_model("mlp")
    folder = save_for_hub(model, tmp_path / "model", card_data={"description": "first"})
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    class BrokenProcessor:
        def save_pretrained(self, directory) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_for_hub(model, folder, processor=BrokenProcessor(), card_data={"description": "second"})
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["model"], "no staging folder left behind"


def test_card_of_an_unregistered_model_is_refused():
    class NotHfdl(torch.nn.Module):
        config = REGISTRY["mlp"].make_config()

    with pytest.raises(ValueError, match="is not a registered head of mlp"):
        model_card(NotHfdl())


def test_push_to_hub_creates_the_repo_and_uploads_one_folder(monkeypatch):
    """No Hub here: HfApi is replaced by a recorder that checks what would be uploaded."""
    calls = {}

    class RecordingApi:
        def __init__(self, token=None) -> None:
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None) -> None:
            calls["create_repo"] = (repo_id, private, exist_ok, repo_type)

        def upload_folder(self, repo_id, folder_path, commit_message) -> str:
            calls["files"] = sorted(path.name for path in folder_path.iterdir())
            calls["card"] = (folder_path / "README.md").read_text()
            return "https://huggingface.co/org/lenet/commit/abc"

    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    model = hfdl.create_model("lenet5")
    processor = REGISTRY["lenet5"].make_image_processor(model.config)
    url = push_to_hub(model, "org/lenet", processor=processor, card_data=CARD_DATA, private=True, token="t")
    assert url.endswith("/commit/abc") and calls["token"] == "t"
    assert calls["create_repo"] == ("org/lenet", True, True, "model")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(calls["files"])
    assert 'AutoModelForImageClassification.from_pretrained("org/lenet", trust_remote_code=True)' in calls["card"]


def test_a_peft_model_is_refused_with_what_to_do_instead(tmp_path):
    peft = pytest.importorskip("peft")
    from hfdl.lora import make_lora_config

    model = hfdl.create_model("mlp")
    peft_model = peft.get_peft_model(model, make_lora_config(model))
    with pytest.raises(ValueError, match=r"peft model with adapters: merge them first \(model\.merge_and_unload\(\)\)"):
        save_for_hub(peft_model, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    merged = save_for_hub(peft_model.merge_and_unload(), tmp_path / "merged")
    assert (merged / "model.safetensors").is_file()
