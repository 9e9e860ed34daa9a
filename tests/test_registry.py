"""hfdl.registry.find_task_for_config: the one answer to "which registered head does this saved config hold?"."""

from __future__ import annotations

import pytest
from conftest import ARCH_TASKS, build_model

from hfdl.registry import REGISTRY, find_task, find_task_for_config


@pytest.mark.parametrize(("spec", "task"), ARCH_TASKS)
def test_saved_architectures_name_the_head(spec, task):
    config = build_model(spec, task).config
    config.architectures = [task.model_class.__name__]
    assert find_task_for_config(config) == (spec, task)
    assert find_task_for_config(config.to_dict()) == (spec, task)  # a config.json as a dict reads the same


def test_task_given_wins_over_architectures_and_is_checked():
    spec = REGISTRY["lenet5"]
    config = spec.make_config(architectures=["LeNet5ForImageClassification"])
    assert find_task_for_config(config, "image-feature-extraction") == (spec, spec.task("image-feature-extraction"))
    with pytest.raises(ValueError, match=r"lenet5 has no 'object-detection' head; available: image-classification"):
        find_task_for_config(config, "object-detection")


def test_a_model_type_that_is_not_hfdls_is_named():
    with pytest.raises(ValueError, match=r"^/some/dir holds a 'bert' model, not an hfdl one; hfdl model types: hfdl-"):
        find_task_for_config({"model_type": "bert"}, source="/some/dir")
    with pytest.raises(ValueError, match=r"^The config holds a None model, not an hfdl one"):
        find_task_for_config({})


def test_no_saved_head_lists_the_heads_or_takes_the_one_fallback():
    spec = REGISTRY["lenet5"]
    config = {"model_type": spec.model_type, "architectures": ["SomethingElse"]}
    with pytest.raises(
        ValueError,
        match=r"x holds \['SomethingElse'\] \(hfdl-lenet5\), none of them a head of lenet5; pass task= one of "
        r"image-classification, image-feature-extraction\.",
    ):
        find_task_for_config(config, source="x")
    assert find_task_for_config(config, fallback=["image-classification", "text-generation"])[1].task == (
        "image-classification"
    )
    with pytest.raises(ValueError, match="pass task= one of"):  # two heads to fall back on: no guess
        find_task_for_config(config, fallback=["image-classification", "image-feature-extraction"])


def test_find_task_of_an_instance_names_a_foreign_model_type():
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(ValueError, match=r"A BertModel holds a 'bert' model, not an hfdl one; hfdl model types:"):
        find_task(model)
