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


def test_a_floor_of_one_holds_the_rate_after_warmup_as_stochastic_weight_averaging_wants():
    schedule = WarmupCosine(warmup_steps=10, total_steps=110, final_fraction=1.0)
    assert schedule(0) == pytest.approx(0.1)
    assert [schedule(s) for s in (10, 60, 110, 500)] == [1.0, 1.0, 1.0, 1.0]


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


@pytest.mark.parametrize("plans", [[3, 3], [4, 3]])  # cut after the first epoch; cut late, after the second
def test_a_time_budget_that_cuts_the_run_still_averages_its_last_epochs(tiny_corpus, tmp_path, monkeypatch, plans):
    from test_train import tiny_config

    import asr.train as train_module
    from asr.train import train

    monkeypatch.setattr(train_module, "replan_to_budget", lambda tc, epochs, done, *args: plans[done - 1]
                        if done <= len(plans) else epochs)
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=4", "train.time_budget_minutes=60",
                      "train.average_last=2")
    run = train(cfg)
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r.get("epoch") for r in logged] == [1, 2, 3, None]
    assert logged[-1]["averaged"] == ["epoch-002", "epoch-003"]
    # no more weights kept than the average could still need
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["epoch-002.safetensors", "epoch-003.safetensors"]


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


def test_warmup_as_long_as_the_run_is_warned_about_as_all_of_it_not_more():
    assert warmup_warning(60, 60, 1e-3).startswith("warning: train.warmup_steps=60 is all of the run's 60 steps: the "
                                                   "learning rate reaches train.lr=0.001 on the last step, and never "
                                                   "decays")


def test_a_resumed_run_s_warning_names_its_configured_warmup_and_that_only_a_new_run_can_change_it():
    # 300 warmup steps of a run on two processes, resumed on one: 600 of this run's steps
    warning = warmup_warning(600, 800, 1e-3, configured=300, resumed=True)
    assert warning.startswith("warning: train.warmup_steps=300 (600 of this run's steps) is 75% of the run's 800 steps")
    assert warning.endswith("give a run started anew with a smaller train.warmup_steps (a tenth of the run: 80): a "
                            "resumed run keeps its warmup")


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


def test_a_schedule_rescaled_to_fewer_steps_keeps_its_decay_in_place_and_warmup_at_most_the_full_rate():
    # a fractional warmup (3 steps become 1.5) is kept so: rounded, it would shift the whole decay
    before = WarmupCosine(warmup_steps=3, total_steps=20, final_fraction=0.0)
    after = WarmupCosine(warmup_steps=3, total_steps=20, final_fraction=0.0)
    after.rescale(0.5)
    assert (after.warmup_steps, after.total_steps) == (1.5, 10)
    assert [after(s) for s in range(2, 12)] == pytest.approx([before(2 * s) for s in range(2, 12)])
    assert [after(0), after(1)] == pytest.approx([1 / 1.5, 1.0])  # 2 / 1.5 would pass the full rate


def resumed(then, now, at_step, epochs=4, saved=None, max_duration=None, **kept):
    """A run of ``epochs`` batched by ``then`` (an asr.batching.BucketBatchSampler, with its number of
    processes) saved after ``at_step`` steps, resumed batched by ``now``: (the schedule before, after,
    the step it goes on from, the batches of its epoch this process skips, what it said). ``saved``:
    the saved run's settings on today's utterances, where they are not ``then``'s (``max_duration``:
    the limits then and now that chose them); ``kept``: more of its train state, or other values of it
    (batch_counts=None: a state from before they were kept)."""
    import torch

    from asr.train_resume import epoch_starts, resume_point

    def scheduler(schedule):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    counts_then, counts_now = then.batch_counts(epochs), now.batch_counts(epochs)
    starts = epoch_starts(then, counts_then)
    before = WarmupCosine(warmup_steps=2, total_steps=starts[epochs], final_fraction=0.0)
    schedule_then = scheduler(before)
    for _ in range(at_step):
        schedule_then.optimizer.step()
        schedule_then.step()
    epoch = max(e for e in range(epochs + 1) if starts[e] <= at_step)
    state = {"scheduler": schedule_then.state_dict(), "step": at_step, "world_size": then.world_size, "epoch": epoch,
             "global_batch_in_epoch": (at_step - starts[epoch]) * then.world_size, "planned_epochs": epochs,
             "batch_counts": counts_then, **kept}
    after = WarmupCosine(warmup_steps=2, total_steps=epoch_starts(now, counts_now)[epochs], final_fraction=0.0)
    said = []
    factor, step, skip = resume_point(state, scheduler(after), after, now, saved or then, said.append, counts_now,
                                      max_duration)
    return before, after, step, skip, said


def batched(utterances=6, batch_seconds=1.0, max_batch_size=8, world_size=1):
    """A sampler of ``utterances`` one-second utterances."""
    from asr.batching import BucketBatchSampler

    return BucketBatchSampler([1.0] * utterances, batch_seconds, max_batch_size, world_size=world_size)


def sortagrad(world_size=1, rank=0):
    """A sampler of 120 utterances of 0.5 to 10.4 s whose epochs pack into different numbers of
    batches: sortagrad's sorted first one into fewer than the shuffled ones."""
    from asr.batching import BucketBatchSampler

    durations = [0.5 + (i * 37 % 100) / 10 for i in range(120)]
    return BucketBatchSampler(durations, 20.0, 8, sortagrad=True, seed=1, speed_factors=(0.9, 1.0, 1.1), rank=rank,
                              world_size=world_size)


@pytest.mark.parametrize("world_size", [1, 3])
def test_a_sortagrad_run_whose_epochs_make_different_numbers_of_steps_reaches_the_floor_on_its_last_step(world_size):
    from asr.train_resume import epoch_starts

    samplers = [sortagrad(world_size, rank) for rank in range(world_size)]
    counts = samplers[0].batch_counts(5)
    assert counts[0] < min(counts[1:]) and len(set(counts)) > 2  # the premise
    starts = epoch_starts(samplers[0], counts)
    # the steps each process takes, as training iterates its batches: all alike, and the schedule's length
    assert [sum(len(s.batches(e)) for e in range(5)) for s in samplers] == [starts[5]] * world_size
    assert starts[5] > 5 * len(samplers[0].batches(0))  # where a multiple of the first epoch's would end it
    schedule = WarmupCosine(warmup_steps=3, total_steps=starts[5], final_fraction=0.05)
    assert schedule(starts[5]) == pytest.approx(0.05)  # the rate once the last step is taken
    assert min(schedule(s) for s in range(starts[5])) > 0.05 + 1e-6  # no earlier step's
    # a time budget that keeps 3 epochs decays to the floor as the third ends, from where it is
    schedule.retarget(starts[1], starts[3])
    assert schedule(starts[3]) == pytest.approx(0.05) and schedule(starts[3] - 1) > 0.05 + 1e-6


def test_a_sortagrad_run_resumed_in_another_number_of_processes_goes_on_at_the_step_of_its_position():
    from asr.train_resume import epoch_starts

    then, now = sortagrad(world_size=3), sortagrad(world_size=1)
    starts_then, starts_now = epoch_starts(then, then.batch_counts(4)), epoch_starts(now, now.batch_counts(4))
    for at_step in range(starts_then[4]):
        before, after, step, skip, _ = resumed(then, now, at_step)
        epoch = max(e for e in range(4) if starts_then[e] <= at_step)
        assert skip == (at_step - starts_then[epoch]) * 3 and step == starts_now[epoch] + skip, at_step
        assert after.total_steps == starts_now[4]  # the steps the rest of the run takes end at the floor
        if at_step >= before.warmup_steps:  # (warmup climbs in steps of its own)
            assert after(step) == pytest.approx(before(at_step), abs=0.02)  # near the rate it had reached


def test_a_two_process_run_resumed_in_one_goes_on_at_the_same_point_of_its_learning_rate_schedule():
    # 6 batches an epoch: 3 steps of two processes, 6 of one; saved mid-epoch 3 of 4, after warmup
    before, after, step, skip, said = resumed(batched(world_size=2), batched(world_size=1), at_step=7)
    assert step == 14 and step / after.total_steps == 7 / before.total_steps  # the same fraction of training
    assert after(step) == pytest.approx(before(7))  # at the rate it had reached
    assert after(after.total_steps) == pytest.approx(0.0)  # and decays to the end of the run, not past it
    assert skip == 2  # the same batches: the same one of them (the third of epoch 3)
    assert said == ["resuming with 2 -> 1 process(es): 24 steps in 4 epoch(s), 12 before: step 7 goes on as step 14, "
                    "the learning-rate schedule rescaled to the same point of training (warmup 2 -> 4 steps)"]


def test_a_resume_with_the_same_steps_an_epoch_keeps_the_schedule_as_saved_and_says_nothing_of_it():
    before, after, step, skip, said = resumed(batched(world_size=2), batched(world_size=2), at_step=7)
    assert step == 7 and skip == 1 and after.__dict__ == before.__dict__ and said == []


def test_steps_the_saved_run_did_not_take_stay_untaken_when_it_resumes():
    # two batches of unreadable audio on some process: no step for them, so step 5 at batch 7 of 3-step epochs
    _, _, step, skip, _ = resumed(batched(world_size=2), batched(world_size=2), at_step=7, step=5)
    assert (step, skip) == (5, 1)  # an exact resume
    before, after, step, skip, _ = resumed(batched(world_size=2), batched(world_size=1), at_step=7, step=5)
    # two epochs of 6 steps and the 2 batches skipped, less the 2 untaken steps of two processes: 4 of one
    assert (step, skip) == (2 * 6 + 2 - 4, 2)
    assert after(step) == pytest.approx(before(5))  # the rate the saved run had reached, not a later one


@pytest.mark.parametrize("processes, batch_seconds", [((2, 1), 1), ((1, 2), 1), ((2, 3), 1), ((3, 1), 1), ((1, 4), 1),
                                                    ((1, 1), 4), ((1, 2), 2), ((3, 2), 3)])
def test_a_run_that_did_not_take_some_steps_resumes_elsewhere_at_the_rate_it_had_within_half_a_step(processes,
                                                                                                   batch_seconds):
    # 12 batches of 1 s an epoch, 4 epochs; saved at any step past the peak (warmup's 2), 1 to 5 steps short of
    # its position's (batches of unreadable audio); resumed in another number of processes, or batch size, that
    # shares each epoch's batches evenly (where one is padded, its position's own step is off the point already)
    then, now = batched(12, world_size=processes[0]), batched(12, batch_seconds, world_size=processes[1])
    steps = sum(then.batch_counts(4)) // then.world_size
    for saved_step in range(3, steps):
        for not_taken in range(1, min(6, steps - saved_step)):
            before, after, step, skip, _ = resumed(then, now, saved_step + not_taken, step=saved_step)
            rate, near = before(saved_step), (after(step - 0.5), after(step + 0.5))
            # the rate the saved run had reached is that of a point within half a step (the cosine falls steadily)
            assert min(near) - 1e-12 <= rate <= max(near) + 1e-12, (saved_step, not_taken, step)


@pytest.mark.parametrize("older", [{}, {"batch_counts": None, "steps_per_epoch": 3}])
def test_an_exact_resume_goes_on_from_the_saved_step_whatever_its_epochs_count(older):
    # a state whose step is beyond its position's (saved by an older version that counted otherwise):
    # the same settings and processes take the same steps, so nothing is recounted
    before, after, step, skip, said = resumed(batched(world_size=2), batched(world_size=2), at_step=7, step=9,
                                              **older)
    assert (step, skip, said) == (9, 1, []) and after.__dict__ == before.__dict__


def test_a_run_resumed_with_twice_the_batch_seconds_goes_on_from_the_same_fraction_of_the_run_and_the_epoch():
    # 12 one-second utterances: 6 batches of 2 at 2 s, 3 of 4 at 4 s; saved 4 batches into epoch 3 of 4
    then, now = batched(12, batch_seconds=2), batched(12, batch_seconds=4)
    before, after, step, skip, said = resumed(then, now, at_step=16)
    assert step == 8 and step / after.total_steps == 16 / before.total_steps
    assert [after(s) for s in range(step, 13)] == pytest.approx([before(2 * s) for s in range(step, 13)])
    assert skip == 2  # 2 of 3 batches done, as 4 of 6 were
    assert said == ["resuming with another batch size (train.batch_seconds 2 -> 4): 12 steps in 4 epoch(s), 24 "
                    "before: step 16 goes on as step 8, the learning-rate schedule rescaled to the same point of "
                    "training (warmup 2 -> 1 steps); epoch 3 goes on after 2 of its 3 batches, the same "
                    "fraction as 4 of 6 before (other batches: until it ends, some of its utterances may come twice "
                    "and others not at all)"]


def test_another_batch_size_and_number_of_processes_are_rescaled_together_and_said_in_one_line():
    # 2 batches of 6 utterances in one process become 6 of 2, in turn over 3 processes (2 steps each)
    before, after, step, skip, said = resumed(batched(12, batch_seconds=6), batched(12, 2, world_size=3), at_step=5)
    assert step == 5 and after(step) == pytest.approx(before(5))  # 2 steps an epoch then and now
    assert skip == 1  # half of epoch 3: 3 of its 6 batches, rounded down to a whole step of 3 processes
    assert said == ["resuming with 1 -> 3 process(es) and another batch size (train.batch_seconds 6 -> 2): 8 steps "
                    "in 4 epoch(s), 8 before: nothing to rescale; epoch 3 goes on after 3 of its 6 batches, the same "
                    "fraction as 1 of 2 before (other batches: until it ends, some of its utterances may come twice "
                    "and others not at all)"]


def test_a_batch_size_that_makes_the_same_batches_resumes_exactly_and_says_so():
    # at most 2 utterances a batch either way: the same 6 batches
    then, now = batched(12, batch_seconds=4, max_batch_size=2), batched(12, batch_seconds=8, max_batch_size=2)
    before, after, step, skip, said = resumed(then, now, at_step=9)
    assert step == 9 and skip == 3 and after.__dict__ == before.__dict__
    assert said == ["resuming with another batch size (train.batch_seconds 4 -> 8): 24 steps in 4 epoch(s), 24 "
                    "before: nothing to rescale"]


def test_a_position_half_a_batch_in_goes_on_at_the_step_of_its_skipped_batches_and_ends_on_the_last_step():
    # 10 batches an epoch become 3 (of 4, 4 and 2); saved 5 into epoch 2: 1.5 of 3, rounded to 2 batches
    # skipped, where the step, 15 * 0.3 = 4.5 rounded on its own, would be 4 and part from them
    before, after, step, skip, said = resumed(batched(10), batched(10, batch_seconds=4, max_batch_size=4), at_step=15)
    assert skip == 2 and step == 1 * 3 + skip
    assert step + (3 - skip) + 3 * 2 == after.total_steps  # the rest of epoch 2, then 3 and 4: the schedule's end
    assert after(after.total_steps) == pytest.approx(0.0)
    assert "step 15 goes on as step 5" in said[0]
    assert "after 2 of its 3 batches, the same fraction as 5 of 10" in said[0]


def test_a_resumed_run_goes_on_at_the_step_of_its_position_wherever_it_was_saved():
    then, now = batched(10), batched(10, batch_seconds=4, max_batch_size=4)
    for at_step in range(40):
        _, after, step, skip, _ = resumed(then, now, at_step)
        assert step == at_step // 10 * 3 + skip, at_step


def test_a_higher_max_duration_resumes_from_the_same_fraction_of_the_utterances_the_saved_run_had():
    # 6 utterances of 1 s trained (train.max_duration 1.5), 6 of 2 s join (3): 6 batches of one an epoch become 12
    from asr.batching import BucketBatchSampler
    from asr.train_resume import durations_id

    today = [1.0] * 6 + [2.0] * 6
    then, now = BucketBatchSampler(today[:6], 1.0, 8), BucketBatchSampler(today, 1.0, 8)
    saved = BucketBatchSampler(today, 1.0, 8)  # the saved settings on today's utterances: now's batches
    before, after, step, skip, said = resumed(then, now, at_step=9, saved=saved, max_duration=(1.5, 3.0),
                                              durations_id=durations_id(today[:6]))
    assert skip == 6 and step == 12 + 6  # half of epoch 2 as half of it was, not its 4th batch again
    assert said == ["resuming with other utterances (train.max_duration 1.5 -> 3): 48 steps in 4 epoch(s), 24 "
                    "before: step 9 goes on as step 18, the learning-rate schedule rescaled to the same point of "
                    "training (warmup 2 -> 4 steps); epoch 2 goes on after 6 of its 12 batches, the same "
                    "fraction as 3 of 6 before (other batches: until it ends, some of its utterances may come twice "
                    "and others not at all)"]


@pytest.mark.parametrize("older", [{}, {"batch_counts": None, "steps_per_epoch": 12, "epoch_batches": 12}])
def test_a_lower_max_duration_resumes_from_the_same_fraction_of_the_epoch_the_saved_run_kept(older):
    # 12 utterances trained (train.max_duration 3), 6 of them now (1.5): 12 batches of one an epoch become 6.
    # ``older``: a state from before its epochs' batches were kept, but its first epoch's steps and the batches of
    # the epoch it was saved in
    from asr.batching import BucketBatchSampler
    from asr.train_resume import durations_id

    today = [1.0] * 6
    then, now = BucketBatchSampler(today + [2.0] * 6, 1.0, 8), BucketBatchSampler(today, 1.0, 8)
    saved = BucketBatchSampler(today, 1.0, 8)  # the saved settings on today's utterances: not the saved run's
    before, after, step, skip, said = resumed(then, now, at_step=18, saved=saved, max_duration=(3.0, 1.5),
                                              durations_id=durations_id(today + [2.0] * 6), **older)
    assert skip == 3 and step == 6 + 3  # half of epoch 2 as half of its 12 was, not all 6 of today's
    assert after(step) == pytest.approx(before(18))
    assert said[0].startswith("resuming with other utterances (train.max_duration 3 -> 1.5): 24 steps in 4 "
                              "epoch(s), 48 before: step 18 goes on as step 9")
    assert said[0].endswith("; epoch 2 goes on after 3 of its 6 batches, the same fraction as 6 of 12 before (other "
                            "batches: until it ends, some of its utterances may come twice and others not at all)")


@pytest.mark.parametrize("limits", [(1.5, 3.0), (3.0, 1.5)])
def test_another_max_duration_that_leaves_the_same_utterances_resumes_exactly_and_says_nothing(limits):
    from asr.train_resume import durations_id

    before, after, step, skip, said = resumed(batched(6), batched(6), at_step=9, saved=batched(6), max_duration=limits,
                                              durations_id=durations_id([1.0] * 6))
    assert (step, skip, said) == (9, 3, []) and after.__dict__ == before.__dict__


def test_utterances_whose_durations_changed_since_with_the_same_max_duration_are_said_to_have_changed():
    # the state's record of its utterances' durations differs from today's (the audio was replaced)
    before, after, step, skip, said = resumed(batched(6), batched(6), at_step=9, max_duration=(30.0, 30.0),
                                              durations_id="another")
    assert (step, skip) == (9, 3)
    assert said == ["resuming with other utterances (their audio changed since): 24 steps in 4 epoch(s), 24 before: "
                    "nothing to rescale; epoch 2 goes on after 3 of its 6 batches, the same fraction as 3 of 6 "
                    "before (other batches: until it ends, some of its utterances may come twice and others not at "
                    "all)"]
