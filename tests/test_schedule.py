"""The learning-rate schedule, and a run that fits itself to a wall-clock budget."""

import json

import pytest

from asr.schedule import WarmupCosine, epochs_within_budget, warmup_warning


def test_the_rate_warms_up_linearly_then_decays_along_a_cosine_to_its_floor():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, final_fraction=0.02)
    assert schedule(0) == pytest.approx(0.1) and schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.02 + 0.98 * 0.5)  # halfway through the decay
    assert schedule(110) == pytest.approx(0.02) and schedule(500) == pytest.approx(0.02)


def test_a_shortened_schedule_goes_on_from_its_rate_and_reaches_the_floor_at_the_new_end():
    schedule = WarmupCosine(warmup_steps=0, total_steps=100, final_fraction=0.0)
    before = schedule(25)
    schedule.retarget(25, total_steps=50)
    assert schedule(25) == pytest.approx(before)  # no jump
    assert schedule(26) < WarmupCosine(0, 100, 0.0)(26)  # the decay hastens
    assert schedule(50) == pytest.approx(0.0) and schedule(60) == pytest.approx(0.0)


def test_a_lengthened_schedule_never_sends_the_rate_back_up():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, final_fraction=0.02)
    rates = [schedule(step) for step in range(80)]
    schedule.retarget(80, total_steps=210)  # a noisy host's pace made the plan longer
    rates += [schedule(step) for step in range(80, 300)]
    after_warmup = rates[10:]
    assert all(b <= a + 1e-12 for a, b in zip(after_warmup, after_warmup[1:]))
    assert rates[80] == pytest.approx(WarmupCosine(10, 110, 0.02)(80)) and schedule(210) == pytest.approx(0.02)


def test_a_decay_at_its_floor_stays_there_when_the_plan_grows():
    schedule = WarmupCosine(warmup_steps=0, total_steps=100, final_fraction=0.1)
    schedule.retarget(100, total_steps=150)
    assert schedule(100) == pytest.approx(0.1) and schedule(125) == pytest.approx(0.1)


def test_retargeting_during_warmup_moves_only_the_end():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, final_fraction=0.0)
    schedule.retarget(5, total_steps=60)
    assert schedule(5) == pytest.approx(0.6) and schedule(10) == pytest.approx(1.0)
    assert schedule(35) == pytest.approx(0.5) and schedule(60) == pytest.approx(0.0)


@pytest.mark.parametrize("budget, elapsed, done, epoch_s, most, expected", [
    (0, 1e9, 3, 60, 30, 30),        # no budget: all the epochs asked for
    (600, 120, 1, 60, 30, 9),       # 480 s left at 60 s an epoch: 8 more
    (600, 120, 1, 10, 30, 30),      # room for more than asked: still 30
    (600, 700, 4, 60, 30, 4),       # over budget: stop after the epochs done
    (600, 590, 4, 60, 30, 4),       # 10 s left is not an epoch
])
def test_the_epochs_that_fit_the_budget(budget, elapsed, done, epoch_s, most, expected):
    assert epochs_within_budget(budget, elapsed, done, epoch_s, most) == expected


def test_a_run_over_its_time_budget_stops_after_the_epoch_it_is_in_and_resume_keeps_that_plan(
        tiny_corpus, tmp_path, capsys):
    from test_train import tiny_config

    from asr.train import train

    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=5", "train.time_budget_minutes=0.0001")
    run = train(cfg)
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1]
    assert "1 epochs in all (were 5)" in capsys.readouterr().err
    assert (run / "best" / "model.safetensors").is_file()
    train(cfg, resume=True)  # nothing left to do: the plan was saved with the checkpoint
    assert len((run / "log.jsonl").read_text().splitlines()) == 1


def test_a_negative_time_budget_is_refused_by_name():
    from asr.config import ConfigError
    from asr.config_files import load_config

    with pytest.raises(ConfigError, match="train.time_budget_minutes"):
        load_config(None, ["train.time_budget_minutes=-5"])


def test_warmup_over_the_whole_run_is_warned_about_with_the_rate_it_reaches():
    # configs/small.yaml's 300 warmup steps on a corpus of 2 steps an epoch, for 30 epochs
    warning = warmup_warning(warmup_steps=300, total_steps=60, lr=1.5e-3)
    assert warning == ("warning: train.warmup_steps=300 is more than the run's 60 steps: the learning rate rises to "
                       "0.0003, 20% of train.lr=0.0015, and never decays; give a smaller train.warmup_steps (a tenth "
                       "of the run: 6)")


def test_warmup_over_half_the_run_is_warned_about_and_a_usual_one_is_not():
    assert "is 75% of the run's 400 steps: the learning rate decays over the last 100 only" in warmup_warning(
        300, 400, 1e-3)
    assert warmup_warning(300, 600, 1e-3) is None and warmup_warning(0, 0, 1e-3) is None


def test_a_rescaled_schedule_gives_each_point_of_training_the_rate_it_had():
    # 3 steps an epoch become 6 (two processes' run resumed in one): step s is now step 2s
    before = WarmupCosine(warmup_steps=2, total_steps=12, final_fraction=0.05)
    before.retarget(7, total_steps=15)  # a time budget re-planned it once
    after = WarmupCosine(warmup_steps=2, total_steps=12, final_fraction=0.05)
    after.__dict__.update(before.__dict__)
    after.rescale(2.0)
    assert (after.warmup_steps, after.total_steps, after.anchor_step) == (4, 30, 14)
    assert [after(2 * s) for s in range(2, 20)] == pytest.approx([before(s) for s in range(2, 20)])
    # warmup climbs the same line, in steps of its own: within one of them
    assert all(abs(after(2 * s) - before(s)) <= 1 / after.warmup_steps for s in range(2))


def resumed_schedule(saved_steps, steps_now, epochs, at_step, world_size):
    """A run of ``saved_steps`` steps an epoch saved at ``at_step`` (its LambdaLR's state), resumed
    by one of ``steps_now`` with ``world_size`` processes: (schedule before, after, the step it goes
    on from, what it said)."""
    import torch

    from asr.train_setup import resume_schedule

    def scheduler(schedule):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    before = WarmupCosine(warmup_steps=2, total_steps=saved_steps * epochs, final_fraction=0.0)
    saved = scheduler(before)
    for _ in range(at_step):
        saved.optimizer.step()
        saved.step()
    state = {"scheduler": saved.state_dict(), "step": at_step, "world_size": 2}
    after, said = WarmupCosine(warmup_steps=2, total_steps=steps_now * epochs, final_fraction=0.0), []
    factor = resume_schedule(state, scheduler(after), after, steps_now, saved_steps, world_size, said.append)
    return before, after, round(at_step * factor), said


def test_a_two_process_run_resumed_in_one_goes_on_at_the_same_point_of_its_learning_rate_schedule():
    # 6 batches an epoch: 3 steps of two processes, 6 of one; saved mid-epoch 3 of 4, after warmup
    before, after, step, said = resumed_schedule(saved_steps=3, steps_now=6, epochs=4, at_step=7, world_size=1)
    assert step == 14 and step / after.total_steps == 7 / before.total_steps  # the same fraction of training
    assert after(step) == pytest.approx(before(7))  # at the rate it had reached
    assert after(after.total_steps) == pytest.approx(0.0)  # and decays to the end of the run, not past it
    assert said == ["resuming with 1 process(es) and 6 steps an epoch a run saved with 2 and 3: step 7 goes on "
                    "as step 14, the learning-rate schedule rescaled to the same point of training (warmup 2 -> 4 "
                    "steps, 12 -> 24 in all)"]


def test_a_resume_with_the_same_steps_an_epoch_keeps_the_schedule_as_saved_and_says_nothing_of_it():
    before, after, step, said = resumed_schedule(saved_steps=3, steps_now=3, epochs=4, at_step=7, world_size=2)
    assert step == 7 and after.__dict__ == before.__dict__ and said == []
