"""hfdl.training: optimizers, schedules, checkpoints that survive a crash, the JSON-lines tracker, metrics, plots."""

from __future__ import annotations

import argparse
import json
import math

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import ProjectConfiguration  # noqa: E402
from PIL import Image  # noqa: E402

from hfdl.training import (  # noqa: E402
    LR_SCHEDULERS,
    OPTIMIZERS,
    TRAINER_STATE_NAME,
    JsonlTracker,
    TrainingState,
    classification_metrics,
    create_optimizer,
    create_scheduler,
    find_last_checkpoint,
    parameter_groups,
    plot_confusion_matrix,
    plot_learning_curves,
    positive_float,
    positive_int,
    predict_classes,
    prepare_checkpoint_dir,
    resume_from_checkpoint,
    save_checkpoint,
    save_json,
)

# --------------------------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------------------------


def small_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3)
    )


def test_weight_decay_skips_biases_and_norm_scales():
    model = small_cnn()
    model[0].bias.requires_grad_(False)  # frozen parameters go to no group at all
    decay, no_decay = parameter_groups(model, weight_decay=0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(model[1].weight), id(model[1].bias), id(model[3].bias)}


@pytest.mark.parametrize(
    "name, optimizer_class, extra",
    [
        ("sgd", torch.optim.SGD, {"momentum": 0}),
        ("momentum", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        ("rmsprop", torch.optim.RMSprop, {}),
        ("adagrad", torch.optim.Adagrad, {}),
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {}),
    ],
)
def test_every_optimizer_is_built_with_its_settings_and_trains(name, optimizer_class, extra):
    assert name in OPTIMIZERS
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    inputs, targets = torch.randn(32, 4), torch.randn(32, 1)
    optimizer = create_optimizer(model, name, learning_rate=0.05, weight_decay=0.01)
    assert type(optimizer) is optimizer_class
    assert all(group["lr"] == 0.05 for group in optimizer.param_groups)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.01, 0.0]
    for key, value in extra.items():
        assert optimizer.defaults[key] == value
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < 0.9 * losses[0], losses


def test_unknown_optimizer_and_schedule_are_named():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Unknown optimizer 'lion'; allowed: sgd, momentum"):
        create_optimizer(model, "lion", 0.1)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'exp'; allowed: none, constant"):
        create_scheduler(create_optimizer(model, "sgd", 0.1), "exp", 10)


# --------------------------------------------------------------------------------------------------------------
# Schedules: the learning rate of each of 8 steps, base rate 1, 2 warmup steps
# --------------------------------------------------------------------------------------------------------------


def rates(name: str, total: int = 8, warmup: int = 2, optimizer_name: str = "sgd") -> tuple[list[float], list]:
    """The rate each step trains with, and the optimizer's momentum (beta1) at each step."""
    optimizer = create_optimizer(torch.nn.Linear(2, 2), optimizer_name, learning_rate=1.0)
    schedule = create_scheduler(optimizer, name, num_training_steps=total, num_warmup_steps=warmup)
    learning_rates, momenta = [], []
    for _ in range(total):
        learning_rates.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0].get("betas", (None,))[0])
        optimizer.step()
        schedule.step()
    return learning_rates, momenta


COSINE_AFTER_WARMUP = [0.5 * (1 + math.cos(math.pi * step / 6)) for step in range(6)]


@pytest.mark.parametrize(
    "name, warmup, expected",
    [
        ("none", 0, [1.0] * 8),
        ("constant", 2, [0.0, 0.5] + [1.0] * 6),
        ("linear", 2, [0.0, 0.5, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
        ("cosine", 2, [0.0, 0.5, *COSINE_AFTER_WARMUP]),
        ("step", 2, [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]),  # x0.1 at 50 % and 75 %, warmup unused
    ],
)
def test_schedules_follow_their_curves(name, warmup, expected):
    assert name in LR_SCHEDULERS
    assert rates(name, warmup=warmup)[0] == pytest.approx(expected, abs=1e-9)


def test_onecycle_ramps_up_over_the_warmup_then_anneals_and_cycles_momentum():
    learning_rates, momenta = rates("onecycle", total=20, warmup=5, optimizer_name="adam")
    peak = learning_rates.index(max(learning_rates))
    assert peak == 4 and learning_rates[peak] == pytest.approx(1.0)  # the 5th step trains at the peak
    assert learning_rates[0] == pytest.approx(1.0 / 25)  # OneCycleLR starts at max_lr / div_factor
    assert all(a < b for a, b in zip(learning_rates[:peak], learning_rates[1 : peak + 1]))
    assert all(a > b for a, b in zip(learning_rates[peak:], learning_rates[peak + 1 :]))  # cosine down
    assert learning_rates[-1] < 1e-4
    # Adam's beta1 moves against the rate: 0.95 -> 0.85 at the peak -> back to 0.95.
    assert (momenta[0], momenta[peak], momenta[-1]) == pytest.approx((0.95, 0.85, 0.95))
    default_ramp, _ = rates("onecycle", total=20, warmup=0)  # no warmup: the first 25 % ramp up
    assert default_ramp.index(max(default_ramp)) == 4


def test_onecycle_keeps_the_rate_constant_when_too_short_to_cycle():
    assert rates("onecycle", total=3, warmup=0)[0] == [1.0, 1.0, 1.0]


# --------------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------------


def make_accelerator(project_dir, total_limit: int | None = 2) -> Accelerator:
    config = ProjectConfiguration(
        project_dir=str(project_dir), automatic_checkpoint_naming=True, total_limit=total_limit
    )
    return Accelerator(project_config=config)


def test_checkpoints_keep_the_newest_n_and_resume_skips_a_save_cut_short(tmp_path):
    accelerator = make_accelerator(tmp_path, total_limit=2)
    model, optimizer = accelerator.prepare(torch.nn.Linear(3, 2), None)
    state = TrainingState(steps_per_epoch=4, total_steps=12)
    accelerator.register_for_checkpointing(state)
    saved_weights = []
    for step in (4, 8, 12):
        with torch.no_grad():
            model.weight.fill_(step)
        state.completed_steps = step
        path = save_checkpoint(accelerator, state)
        saved_weights.append(model.weight.detach().clone())
        assert json.loads((path / TRAINER_STATE_NAME).read_text())["completed_steps"] == step

    # total_limit=2: accelerate removed checkpoint_0 when it wrote checkpoint_2.
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint_1", "checkpoint_2"]
    assert find_last_checkpoint(tmp_path) == checkpoints / "checkpoint_2"

    # A process killed while saving leaves a folder without trainer_state.json: it is never resumed from.
    partial = checkpoints / "checkpoint_3"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut short")
    assert find_last_checkpoint(tmp_path) == checkpoints / "checkpoint_2"

    with torch.no_grad():
        model.weight.zero_()
    state.completed_steps = 0
    assert resume_from_checkpoint(accelerator, "latest") == checkpoints / "checkpoint_2"
    assert torch.equal(model.weight, saved_weights[2]) and state.completed_steps == 12
    assert not partial.exists()
    # The next save is numbered after the kept ones, and the limit still holds.
    assert save_checkpoint(accelerator, state).name == "checkpoint_3"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint_2", "checkpoint_3"]

    assert resume_from_checkpoint(accelerator, checkpoints / "checkpoint_2") == checkpoints / "checkpoint_2"
    with pytest.raises(ValueError, match="is not a complete checkpoint"):
        resume_from_checkpoint(accelerator, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resume_from_checkpoint(make_accelerator(tmp_path / "empty"), "latest")
    with pytest.raises(ValueError, match="automatic_checkpoint_naming=True"):
        save_checkpoint(Accelerator(project_dir=str(tmp_path)), state)


def test_training_state_refuses_a_checkpoint_with_other_steps_per_epoch_or_total_steps():
    state = TrainingState(
        steps_per_epoch=10, total_steps=30, completed_steps=25, best_eval_accuracy=0.5, best_epoch=2.0
    )
    assert state.epoch == 2.5
    restored = TrainingState(steps_per_epoch=10, total_steps=30)
    restored.load_state_dict(state.state_dict())
    assert restored == state
    with pytest.raises(ValueError, match="saved with 10 steps per epoch, this run has 20"):
        TrainingState(steps_per_epoch=20, total_steps=30).load_state_dict(state.state_dict())
    # The schedule was built for 30 steps: a longer run would step it past its end (OneCycleLR raises there).
    with pytest.raises(ValueError, match=r"run of 30 steps, this run has 40 .*--num_epochs and --max_steps"):
        TrainingState(steps_per_epoch=10, total_steps=40).load_state_dict(state.state_dict())


def test_a_new_run_refuses_an_earlier_runs_checkpoints_or_removes_them_when_told(tmp_path):
    first, state = make_accelerator(tmp_path), TrainingState(steps_per_epoch=2, total_steps=4)
    first.register_for_checkpointing(state)
    prepare_checkpoint_dir(first)  # nothing there yet
    save_checkpoint(first, state)
    (tmp_path / "checkpoints" / "checkpoint_1").mkdir()  # a save cut short counts too: accelerate would prune it

    # A new process numbers its checkpoints from 0 again: they would mix with these.
    second = make_accelerator(tmp_path)
    with pytest.raises(ValueError, match="earlier run.*--resume_from_checkpoint latest.*--overwrite_output_dir"):
        prepare_checkpoint_dir(second)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    prepare_checkpoint_dir(second, overwrite=True)
    assert not (tmp_path / "checkpoints").exists()
    assert save_checkpoint(second, state).name == "checkpoint_0"


# --------------------------------------------------------------------------------------------------------------
# The JSON-lines tracker
# --------------------------------------------------------------------------------------------------------------


def test_jsonl_tracker_writes_what_accelerator_logs_and_restarts_from_its_state(tmp_path):
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 99, "loss": 0.0}\n')  # an older run's file is replaced, not appended to
    tracker = JsonlTracker(path)
    accelerator = Accelerator(log_with=[tracker])
    accelerator.init_trackers("test")
    accelerator.log({"loss": torch.tensor(0.5), "learning_rate": 0.1}, step=1)  # tensors become numbers
    accelerator.log({"eval_accuracy": 0.75, "epoch": 1.0}, step=2)
    accelerator.end_training()
    expected = [{"step": 1, "loss": 0.5, "learning_rate": 0.1}, {"step": 2, "eval_accuracy": 0.75, "epoch": 1.0}]
    assert [json.loads(line) for line in path.read_text().splitlines()] == expected
    assert accelerator.get_tracker("jsonl", unwrap=True) == expected

    # What a resumed run does: load the checkpointed history, start (rewriting the file), log on.
    resumed = JsonlTracker(path)
    resumed.load_state_dict({"history": expected[:1]})
    resumed.start()
    resumed.log({"loss": 0.25}, step=2)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [expected[0], {"step": 2, "loss": 0.25}]
    assert resumed.state_dict() == {"history": [expected[0], {"step": 2, "loss": 0.25}]}


# --------------------------------------------------------------------------------------------------------------
# Metrics, files, plots, command-line types
# --------------------------------------------------------------------------------------------------------------


def test_predict_classes_argmax_and_one_logit_threshold():
    assert predict_classes(torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])).tolist() == [1, 0]
    assert predict_classes(torch.tensor([[0.3], [-0.2], [0.0]])).tolist() == [1, 0, 0]  # sigmoid > 0.5


def test_classification_metrics_by_hand():
    references = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 2, 0]
    metrics = classification_metrics(references, predictions, num_classes=3)
    # Per class: precision 1/2, 2/3, 1; recall 1/2, 1, 1/2; F1 1/2, 4/5, 2/3.
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # A class the model never saw nor predicted counts as 0 in the macro averages, and gets its row and column.
    four = classification_metrics(references, predictions, num_classes=4)
    assert four["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 4)
    assert four["confusion_matrix"][3] == [0, 0, 0, 0]


def test_save_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "all_results.json"
    save_json(path, {"eval_accuracy": 0.5})
    save_json(path, {"eval_accuracy": 0.75, "matrix": [[1, 0], [0, 1]]})
    assert json.loads(path.read_text()) == {"eval_accuracy": 0.75, "matrix": [[1, 0], [0, 1]]}
    assert [p.name for p in tmp_path.iterdir()] == ["all_results.json"]


def test_plots_are_pngs_of_the_expected_size(tmp_path):
    log = [{"step": s, "loss": 2.0 / s, "learning_rate": 0.1, "epoch": s / 10} for s in range(1, 21)]
    log += [{"step": 10, "epoch": 1.0, "eval_loss": 0.4, "eval_accuracy": 0.8}]
    log += [{"step": 20, "epoch": 2.0, "eval_loss": 0.3, "eval_accuracy": 0.9}]
    plot_learning_curves(log, tmp_path / "curves.png")
    plot_confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"], tmp_path / "matrix.png")
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1000, 400)  # 10 x 4 inches at 100 dpi
    with Image.open(tmp_path / "matrix.png") as image:
        assert image.format == "PNG" and image.size == (400, 400)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "matrix.png"]


def test_positive_number_types_reject_zero_negatives_and_words():
    assert positive_int("3") == 3 and positive_float("1e-3") == 0.001
    for parse, text in ((positive_int, "0"), (positive_int, "-2"), (positive_int, "ten"), (positive_float, "0")):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive"):
            parse(text)
