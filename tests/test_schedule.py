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
