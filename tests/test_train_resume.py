"""Resuming a run killed between any two of its writes, or resumed with other settings: its
log, its average and its learning rate are what the run's config and checkpoint say."""

import json

import pytest
import torch

import asr.plots as plots_module
import asr.train as train_module
from asr.train import train
from test_train import epochs, tiny_config


def test_an_epoch_logged_just_before_a_kill_is_logged_once_when_the_run_resumes(tiny_corpus, tmp_path,
                                                                                 monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    real, calls = plots_module.log_posteriorgram, []

    def killed_after_logging_epoch_2(writer, model, valid_set, tokenizer, step):
        calls.append(step)
        if len(calls) == 2:  # log.jsonl and TensorBoard have epoch 2; last/ is still the checkpoint after epoch 1
            writer.flush()
            raise KeyboardInterrupt
        return real(writer, model, valid_set, tokenizer, step)

    monkeypatch.setattr(plots_module, "log_posteriorgram", killed_after_logging_epoch_2)
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2")
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(plots_module, "log_posteriorgram", real)
    run = train(cfg, resume=True)
    assert [e["epoch"] for e in epochs(run)] == [1, 2]
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert [e.value for e in events.Scalars("epoch/epoch")] == [1, 2]  # at each epoch's last step, once
    assert [e.step for e in events.Scalars("epoch/epoch")] == [e["step"] for e in epochs(run)]


def test_a_log_line_cut_off_by_a_kill_is_dropped_and_the_resumed_log_reads_whole(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2")
    run = train(cfg, stop_at_step=4)  # in epoch 2, after epoch 1's line
    with open(run / "log.jsonl", "a") as f:
        f.write('{"epoch": 2, "step": 6, "train_lo')  # killed as it wrote epoch 2's line (an older checkpoint)
    train(cfg, resume=True)
    assert [e["epoch"] for e in epochs(run)] == [1, 2]  # each line parses
    assert plots_module.read_training_log(run)[-1]["epoch"] == 2


def test_resuming_a_finished_run_that_averaged_its_last_epochs_changes_nothing(tiny_corpus, tmp_path, capsys):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.average_last=2")
    run = train(cfg)
    log = (run / "log.jsonl").read_text()
    capsys.readouterr()
    train(cfg, resume=True)
    assert "nothing to resume" in capsys.readouterr().err
    assert (run / "log.jsonl").read_text() == log  # one average, not two


def test_a_run_killed_while_averaging_averages_once_when_resumed(tiny_corpus, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.average_last=2")
    monkeypatch.setattr(train_module, "average_last_epochs", killed)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.undo()
    run = train(cfg, resume=True)
    assert [e.get("epoch", "average") for e in epochs(run)] == [1, 2, "average"]
    assert (run / "avg" / "model.safetensors").is_file()


def test_resuming_a_run_that_trained_all_its_time_budget_planned_says_there_is_nothing_left(
        tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_module, "replan_to_budget", lambda *args: 2)  # 2 of 4 epochs fit the budget
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=4", "train.time_budget_minutes=60")
    run = train(cfg)
    capsys.readouterr()
    train(cfg, resume=True)
    err = capsys.readouterr().err
    assert f"{run} has trained all its 2 epochs (of train.epochs=4, as train.time_budget_minutes=60 planned): " \
           "nothing to resume" in err
    assert f"resuming {run}" not in err and len(epochs(run)) == 2


def test_resuming_with_another_learning_rate_and_weight_decay_trains_on_with_them_and_says_so(
        tiny_corpus, tmp_path, capsys):
    # the advice of a run stopped by non-finite weights: lower train.lr, and resume
    run = tmp_path / "run"
    train(tiny_config(tiny_corpus, run, "train.epochs=2"), stop_at_step=4)
    before = torch.load(run / "last" / "train_state.pt", weights_only=True)
    cfg = tiny_config(tiny_corpus, run, "train.epochs=2", "train.lr=3e-5", "train.weight_decay=0.5",
                      "train.final_lr_fraction=0.1")
    capsys.readouterr()
    train(cfg, resume=True, stop_at_step=5)
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    schedule = state["scheduler"]["lr_lambdas"][0]
    assert schedule["total_steps"] == before["scheduler"]["lr_lambdas"][0]["total_steps"] == 6
    assert schedule["final_fraction"] == 0.1
    from asr.schedule import WarmupCosine

    kept = WarmupCosine(2, 6, 0.1)  # the run's warmup and length, the new floor
    assert state["scheduler"]["_last_lr"] == pytest.approx([3e-5 * kept(5)] * 2, rel=1e-9)
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == pytest.approx([3e-5 * kept(5)] * 2, rel=1e-9)
    assert [g["weight_decay"] for g in state["optimizer"]["param_groups"]] == [0.5, 0.0]
    assert ("resuming with train.lr 0.003 -> 3e-05, train.weight_decay 0.01 -> 0.5, train.final_lr_fraction "
            "0.02 -> 0.1: the schedule goes on from step 4 at the new rates") in capsys.readouterr().err


def test_resuming_with_another_warmup_says_the_runs_own_is_kept(tiny_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(tiny_corpus, run, "train.epochs=2"), stop_at_step=4)
    capsys.readouterr()
    train(tiny_config(tiny_corpus, run, "train.epochs=2", "train.warmup_steps=1"), resume=True, stop_at_step=5)
    assert ("train.warmup_steps 2 -> 1 is not applied: a resumed run keeps its warmup, which shapes its whole decay"
            in capsys.readouterr().err)


def test_training_utterances_longer_than_a_batch_are_counted_in_a_line_at_the_start(tiny_corpus, tmp_path,
                                                                                      capsys):
    # 9 of the 20 utterances are up to 1.95 s long: the other 11 each make a batch of their own, over it
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.batch_seconds=1.95",
                      "augment.speed_factors=[1.0]"), stop_at_step=1)
    assert ("11 of 20 training utterances are longer than train.batch_seconds=1.95 s: each can make a batch of "
            "its own, over that budget") in capsys.readouterr().err


def test_slowed_utterances_longer_than_a_batch_are_counted_at_the_slowest_speed_factor(tiny_corpus, tmp_path,
                                                                                        capsys):
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.batch_seconds=2.1",
                      "augment.speed_factors=[0.9,1.0]"), stop_at_step=1)
    # none is over 2.1 s as recorded; 16 are over 1.89 s, and so over 2.1 s slowed to 0.9
    assert ("16 of 20 training utterances are longer than train.batch_seconds=2.1 s at speed factor 0.9: each "
            "can make a batch of its own, over that budget") in capsys.readouterr().err


def test_no_line_about_long_utterances_when_every_one_fits_a_batch(tiny_corpus, tmp_path, capsys):
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1"), stop_at_step=1)
    assert "longer than train.batch_seconds" not in capsys.readouterr().err


def test_a_run_resumed_with_a_valid_set_it_lacked_picks_best_by_validation_from_then_on(tiny_corpus, tmp_path):
    # without a valid set the latest epoch ranked first; a validated epoch must be able to outrank it
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.valid_manifest="))
    train(tiny_config(tiny_corpus, run, "train.epochs=2"), resume=True)
    assert "valid_wer" in epochs(run)[-1]
    assert (run / "best" / "model.safetensors").read_bytes() == (run / "last" / "model.safetensors").read_bytes()


def test_a_run_saved_without_loss_scaling_resumes_with_it_from_the_initial_scale():
    # trained on CPU (or train.amp=false), resumed on a GPU with fp16 autocast: torch refuses the empty state
    from asr.train_resume import load_scaler

    scaler, said = torch.amp.GradScaler("cpu", init_scale=1024.0), []
    load_scaler(scaler, torch.amp.GradScaler("cpu", enabled=False).state_dict(), said.append)
    assert scaler.get_scale() == 1024.0
    assert said == ["resuming with fp16 loss scaling, which the saved run did not use: it starts at scale 1024"]


def test_a_run_saved_with_loss_scaling_resumes_at_its_scale():
    from asr.train_resume import load_scaler

    saved = torch.amp.GradScaler("cpu", init_scale=1024.0)
    saved.scale(torch.ones(1))  # (the scale is made on first use)
    saved.update(512.0)  # as a step whose gradients overflowed halves it
    scaler, said = torch.amp.GradScaler("cpu"), []
    load_scaler(scaler, saved.state_dict(), said.append)
    assert scaler.get_scale() == 512.0 and said == []


def test_an_average_that_became_best_stays_the_one_to_beat_and_in_the_log_when_the_run_trains_on(tmp_path):
    from asr.train_resume import trim_log

    records = [{"epoch": 1, "valid_wer": 0.5, "valid_cer": 0.3, "valid_loss": 2.0},
               {"epoch": 2, "valid_wer": 0.4, "valid_cer": 0.2, "valid_loss": 1.5},
               {"averaged": ["epoch-001", "epoch-002"], "valid_wer": 0.35, "valid_cer": 0.2, "valid_loss": 1.4,
                "best": True}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    saved = (0.4, 0.2, 1.5)  # the checkpoint's key: epoch 2's, saved before the average
    assert trim_log(tmp_path, 2, False, saved) == (False, (0.35, 0.2, 1.4))  # trains on: averages anew
    # best/ still holds it, so `asr plot training` can star it
    assert [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()] == records


def test_a_finished_run_whose_only_average_is_an_earlier_runs_averages_again(tmp_path):
    # resumed for more epochs after an average that stayed best, then killed after its last epoch
    from asr.train_resume import trim_log

    records = [{"epoch": 1, "valid_wer": 0.5, "valid_cer": 0.3, "valid_loss": 2.0},
               {"averaged": ["epoch-001"], "valid_wer": 0.35, "valid_cer": 0.2, "valid_loss": 1.4, "best": True},
               {"epoch": 2, "valid_wer": 0.4, "valid_cer": 0.2, "valid_loss": 1.5}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert trim_log(tmp_path, 2, True, (0.5, 0.3, 2.0)) == (False, (0.35, 0.2, 1.4))


def test_an_average_that_did_not_become_best_leaves_the_key_as_the_checkpoint_saved_it(tmp_path):
    from asr.train_resume import trim_log

    records = [{"epoch": 1, "valid_wer": 0.4, "valid_cer": 0.2, "valid_loss": 1.5},
               {"averaged": ["epoch-001"], "valid_wer": 0.45, "valid_cer": 0.2, "valid_loss": 1.4}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert trim_log(tmp_path, 1, True, (0.4, 0.2, 1.5)) == (True, (0.4, 0.2, 1.5))  # finished: kept as logged


def test_tensorboard_shows_each_step_once_after_a_kill_between_checkpoints(tiny_corpus, tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.checkpoint_every=2")
    real = SummaryWriter.add_scalar

    def killed_after_logging_step_3(writer, tag, value, step, *args, **kwargs):
        real(writer, tag, value, step, *args, **kwargs)
        if tag == "train/lr" and step == 3:  # last/ holds step 2: step 3 is trained and logged again
            writer.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(SummaryWriter, "add_scalar", killed_after_logging_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(SummaryWriter, "add_scalar", real)
    run = train(cfg, resume=True)
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[:3] == [1, 2, 3]
