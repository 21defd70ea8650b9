"""The recurrent word LM (asr lm rnn): it learns word order from text, is saved without pickle,
and rescores n-best lists interpolated with the n-gram at a share chosen by dev perplexity."""

import math
from dataclasses import replace

import numpy as np
import pytest
import yaml

from asr.cli import main
from asr.rnnlm import (RecurrentLM, RNNLMError, RNNLMOptions, interpolate, interpolation_weight, load_rnnlm,
                       perplexity, train_rnnlm, vocabulary)

SMALL = RNNLMOptions(hidden_size=16, dropout=0.0, epochs=30, lr=1e-2, lr_decay=1.0, batch_size=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rnnlm")
    (tmp / "text.txt").write_text("the cat sat on the mat\nthe dog sat on the log\na cat sat on a mat\n")
    return train_rnnlm([tmp / "text.txt"], tmp / "lm", options=SMALL, log=lambda line: None), tmp


def test_a_trained_lm_prefers_the_word_order_it_was_taught(trained):
    model, _ = trained
    seen, scrambled = model.word_log_probs([["the", "cat", "sat", "on", "the", "mat"],
                                            ["mat", "the", "on", "sat", "cat", "the"]])
    assert len(seen) == 7  # six words and the sentence end
    assert seen.sum() > scrambled.sum() + 5
    untrained = RecurrentLM(model.words, SMALL)
    assert perplexity(model, [["the", "dog", "sat", "on", "the", "log"]]) < perplexity(
        untrained, [["the", "dog", "sat", "on", "the", "log"]])


def test_the_vocabulary_is_ordered_by_frequency_after_the_boundary_and_unknown_words():
    assert vocabulary([["b", "a", "b"], ["c", "b", "a"]]) == ["</s>", "<unk>", "b", "a", "c"]
    model = RecurrentLM(vocabulary([["b", "a"]]), SMALL)
    assert not model.known("zebra") and model.known("a")
    assert len(model.word_log_probs([["zebra"]])[0]) == 2  # scored as <unk>, then the end


def test_words_seen_fewer_than_min_count_times_are_left_to_unk_counting_repeats():
    assert vocabulary([["b", "a", "b"], ["c", "b", "a"]], min_count=2) == ["</s>", "<unk>", "b", "a"]
    assert vocabulary([["b", "a", "b"], ["c", "b", "a"]] * 2, min_count=2) == ["</s>", "<unk>", "b", "a", "c"]
    with pytest.raises(RNNLMError, match="minimum count must be at least 1, got 0"):
        RNNLMOptions(min_count=0)


def test_with_a_min_count_a_word_the_lm_never_saw_leaves_a_trained_context_for_the_next(tmp_path):
    # a rare name is always followed by "then": trained as <unk>, the LM learns what follows a word
    # it does not know; with every word in the vocabulary <unk>'s embedding is never trained, and
    # what follows an unknown word is a guess (at this seed "then" gets 14%)
    names = [f"name{i}" for i in range(12)]
    (tmp_path / "t.txt").write_text("".join(f"i saw {n} then left\n" for n in names)
                                    + "i saw the cat sat\n" * 12 + "i saw a dog ran\n" * 12)
    then = {}
    for min_count in (1, 2):
        model = train_rnnlm([tmp_path / "t.txt"], tmp_path / f"lm{min_count}", log=lambda line: None,
                            options=replace(SMALL, min_count=min_count))
        assert model.known("name3") == (min_count == 1) and model.known("then")
        then[min_count] = model.word_log_probs([["i", "saw", "zebra", "then", "left"]])[0][3]
    assert math.exp(then[2]) > 0.98
    assert then[1] < then[2] - 1


def test_a_saved_lm_is_safetensors_and_text_and_scores_as_before_float16(trained):
    model, tmp = trained
    assert sorted(p.name for p in (tmp / "lm").iterdir()) == ["config.yaml", "model.safetensors", "words.txt"]
    assert (tmp / "lm" / "words.txt").read_text().splitlines()[:3] == ["</s>", "<unk>", "the"]
    assert yaml.safe_load((tmp / "lm" / "config.yaml").read_text())["rnnlm"]["hidden_size"] == 16
    again = load_rnnlm(tmp / "lm")
    sentence = [["the", "cat", "sat", "on", "the", "mat"]]
    assert np.allclose(again.word_log_probs(sentence)[0], model.word_log_probs(sentence)[0])


def test_a_missing_or_broken_lm_directory_is_named(tmp_path):
    with pytest.raises(RNNLMError, match="nowhere: not an RNN LM directory"):
        load_rnnlm(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("rnnlm: [1, 2]\n")
    (tmp_path / "broken" / "words.txt").write_text("</s>\n<unk>\n")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"")
    with pytest.raises(RNNLMError, match=r"broken/config.yaml: not a readable RNN LM config \("):
        load_rnnlm(tmp_path / "broken")
    (tmp_path / "broken" / "config.yaml").write_text("model:\n  cell: lstm\n")  # an acoustic model's, say
    with pytest.raises(RNNLMError, match=r"broken: not an RNN LM directory \(its config.yaml has no rnnlm section"):
        load_rnnlm(tmp_path / "broken")


def test_corrupt_or_mismatched_weights_are_named(trained, tmp_path):
    import shutil

    _, tmp = trained
    shutil.copytree(tmp / "lm", tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(RNNLMError, match="model.safetensors: not readable weights"):
        load_rnnlm(tmp_path / "corrupt")
    shutil.copytree(tmp / "lm", tmp_path / "mismatched")
    with open(tmp_path / "mismatched" / "words.txt", "a") as f:
        f.write("zebra\n")  # one word more than the weights have
    with pytest.raises(RNNLMError, match="weights do not fit config.yaml and words.txt"):
        load_rnnlm(tmp_path / "mismatched")


def test_repeat_counts_must_match_the_texts(tmp_path):
    (tmp_path / "a.txt").write_text("a b\n")
    with pytest.raises(RNNLMError, match="2 repeat counts for 1 texts"):
        train_rnnlm([tmp_path / "a.txt"], tmp_path / "lm", repeats=[1, 2], options=SMALL)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(RNNLMError, match="empty.txt: no sentences"):
        train_rnnlm([tmp_path / "empty.txt"], tmp_path / "lm", options=SMALL)


def test_with_dev_text_training_keeps_the_weights_with_the_lowest_dev_perplexity(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat on the mat\n" * 5)
    (tmp_path / "dev.txt").write_text("a dog ran under a tree\n")  # nothing in common: it only gets worse
    lines = []
    model = train_rnnlm([tmp_path / "train.txt"], tmp_path / "lm", dev=[tmp_path / "dev.txt"], options=SMALL,
                        log=lines.append)
    dev_ppl = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert len(lines) < SMALL.epochs  # stopped once halving the rate no longer helped
    assert perplexity(model, [["a", "dog", "ran", "under", "a", "tree"]]) == pytest.approx(min(dev_ppl), rel=0.01)


def test_each_rise_in_dev_perplexity_halves_the_rate_until_the_halvings_run_out(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat on the mat\n" * 5)
    (tmp_path / "dev.txt").write_text("a dog ran under a tree\n")
    options = RNNLMOptions(**{**SMALL.__dict__, "halvings": 2, "checks_per_epoch": 2})
    lines = []
    train_rnnlm([tmp_path / "train.txt"], tmp_path / "lm", dev=[tmp_path / "dev.txt"], options=options,
                log=lines.append)
    checks = [(float(line.split("lr ")[1].split(",")[0]), float(line.rsplit(" ", 1)[1])) for line in lines]
    best, rises = math.inf, 0
    for (lr, ppl), (next_lr, _) in zip(checks, checks[1:] + [(None, None)]):
        if ppl < best:
            best = ppl
            assert next_lr in (lr, None)  # the rate holds while dev perplexity falls
        else:
            rises += 1
            assert next_lr in (lr / 2, None)
    assert rises == options.halvings + 1 and checks[-1][1] >= best  # the third rise ends training
    assert checks[0][0] == options.lr and len(checks) < 2 * options.epochs


def test_the_cli_refuses_an_output_that_holds_anything_before_training_and_force_replaces_it(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world\nworld hello\n")
    model = tmp_path / "acoustic_model"  # e.g. a model directory given by mistake
    model.mkdir()
    (model / "config.yaml").write_text("model: {}\n")
    rnn = ["lm", "rnn", str(tmp_path / "t.txt"), "--epochs", "1", "--hidden-size", "8", "-o"]
    assert main([*rnn, str(model)]) == 2
    assert "acoustic_model: already exists and is not empty" in capsys.readouterr().err
    assert (model / "config.yaml").read_text() == "model: {}\n"
    (tmp_path / "a_file").write_text("x")
    assert main([*rnn, str(tmp_path / "a_file")]) == 2
    assert main([*rnn, str(model), "--force"]) == 0
    assert sorted(p.name for p in model.iterdir()) == ["config.yaml", "model.safetensors", "words.txt"]
    assert load_rnnlm(model).words


def test_training_into_a_folder_that_holds_anything_is_refused_unless_forced(tmp_path):
    (tmp_path / "t.txt").write_text("the cat sat\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(RNNLMError, match="model: already exists and is not empty"):
        train_rnnlm([tmp_path / "t.txt"], tmp_path / "model", options=SMALL)
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"
    train_rnnlm([tmp_path / "t.txt"], tmp_path / "model", options=SMALL, force=True)
    assert not (tmp_path / "model" / "notes.txt").exists()


@pytest.mark.parametrize("bad", [{"checks_per_epoch": 0}, {"halvings": -1}])
def test_a_schedule_without_dev_checks_or_with_negative_halvings_is_refused(tmp_path, bad):
    (tmp_path / "t.txt").write_text("the cat sat\n")
    with pytest.raises(RNNLMError, match="checks per epoch must be at least 1 and halvings at least 0"):
        train_rnnlm([tmp_path / "t.txt"], tmp_path / "lm", options=RNNLMOptions(**{**SMALL.__dict__, **bad}))
    assert not (tmp_path / "lm").exists()


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 2.0])
def test_a_dropout_outside_0_to_1_is_refused(dropout):
    with pytest.raises(RNNLMError, match=f"dropout must be at least 0 and below 1, got {dropout}"):
        RNNLMOptions(dropout=dropout)


def test_the_interpolation_share_goes_to_the_lm_that_predicts_dev_text_better():
    good, poor = [np.log(np.full(4, 0.5))], [np.log(np.full(4, 0.01))]
    share, table = interpolation_weight(poor, good)
    assert share >= 0.95 and table[0.0] == pytest.approx(100.0) and table[1.0] == pytest.approx(2.0)
    assert interpolation_weight(good, poor)[0] <= 0.05
    assert interpolate(good[0], poor[0], 0.0) == pytest.approx(4 * math.log10(0.5))
    assert interpolate(good[0], poor[0], 0.5) == pytest.approx(4 * math.log10(0.255))


def test_choosing_the_interpolation_share_on_no_dev_sentences_is_refused_in_words():
    with pytest.raises(RNNLMError, match="no dev words to choose the interpolation weight on"):
        interpolation_weight([], [], [])


def test_the_cli_trains_an_lm_and_names_a_missing_text(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world\nworld hello\n")
    assert main(["lm", "rnn", str(tmp_path / "t.txt"), str(tmp_path / "t.txt"), "--repeat", "2,1", "-o",
                 str(tmp_path / "lm"), "--dev", str(tmp_path / "t.txt"), "--epochs", "2", "--hidden-size", "8"]) == 0
    out = capsys.readouterr()
    assert "LSTM word LM, 4 words" in out.out and "dev perplexity" in out.err
    assert main(["lm", "rnn", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "lm2")]) == 2
    assert "missing.txt: text file not found" in capsys.readouterr().err
    assert main(["lm", "rnn", str(tmp_path / "t.txt"), "--repeat", "0.5", "-o", str(tmp_path / "lm3")]) == 2


def test_the_best_weights_so_far_stay_hidden_until_training_ends_so_an_interrupted_run_leaves_no_lm(tmp_path):
    (tmp_path / "train.txt").write_text("the cat sat on the mat\n" * 5)
    (tmp_path / "dev.txt").write_text("the cat sat\n")
    seen = []

    def interrupt_at_the_second_check(line):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(seen) == 2:  # the first check's weights were saved
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_rnnlm([tmp_path / "train.txt"], tmp_path / "lm", dev=[tmp_path / "dev.txt"], options=SMALL,
                    log=interrupt_at_the_second_check)
    assert "lm" not in seen[1]  # nothing at the final name that rescoring would take for a trained LM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.txt", "train.txt"]
    train_rnnlm([tmp_path / "train.txt"], tmp_path / "lm", dev=[tmp_path / "dev.txt"], options=SMALL,
                log=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.txt", "lm", "train.txt"]
    assert load_rnnlm(tmp_path / "lm").words


def test_dev_text_with_no_sentences_is_refused_not_taken_for_no_dev_text(tmp_path):
    (tmp_path / "t.txt").write_text("the cat sat\n")
    (tmp_path / "dev.txt").write_text("\n")
    with pytest.raises(RNNLMError, match=r"dev.txt: no sentences \(dev text\)"):
        train_rnnlm([tmp_path / "t.txt"], tmp_path / "lm", dev=[tmp_path / "dev.txt"], options=SMALL)
    assert not (tmp_path / "lm").exists()


@pytest.mark.parametrize("repeats", [[0], [1, 0], [-1, 2]])
def test_repeat_counts_below_one_are_refused_not_a_text_silently_left_out(tmp_path, repeats):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("the cat sat\n")
    texts = [tmp_path / "a.txt", tmp_path / "b.txt"][: len(repeats)]
    with pytest.raises(RNNLMError, match="repeat counts must be whole numbers of at least 1"):
        train_rnnlm(texts, tmp_path / "lm", repeats=repeats, options=SMALL)
    assert not (tmp_path / "lm").exists()


def test_whole_repeat_counts_written_as_floats_are_taken_as_counts(tmp_path):
    # (the check lets 2.0 through as a whole number; a list cannot be repeated 2.0 times)
    (tmp_path / "a.txt").write_text("the cat sat\n")
    model = train_rnnlm([tmp_path / "a.txt"], tmp_path / "lm", repeats=[2.0], options=replace(SMALL, epochs=1),
                        log=lambda line: None)
    assert model.words == ["</s>", "<unk>", "cat", "sat", "the"]


def test_the_perplexity_of_no_sentences_is_refused_not_a_perfect_score():
    with pytest.raises(RNNLMError, match="no sentences to score"):
        perplexity(RecurrentLM(vocabulary([["a"]]), SMALL), [])


def test_a_vocabulary_edited_to_end_without_a_newline_keeps_its_last_word(trained, tmp_path):
    import shutil

    model, tmp = trained
    shutil.copytree(tmp / "lm", tmp_path / "edited")
    words = tmp_path / "edited" / "words.txt"
    words.write_text(words.read_text().rstrip("\n"))
    assert load_rnnlm(tmp_path / "edited").words == model.words


@pytest.mark.parametrize("file, change", [("words.txt", "hello\nworld\n"), ("config.yaml", "hidden_size: 0"),
                                          ("config.yaml", "hidden_size: -4"), ("config.yaml", "hidden_size: 2.5"),
                                          ("config.yaml", "dropout: 1.5")])
def test_a_damaged_vocabulary_or_config_is_named_with_the_lm_directory(trained, tmp_path, file, change):
    import shutil

    _, tmp = trained
    shutil.copytree(tmp / "lm", tmp_path / "damaged")
    path = tmp_path / "damaged" / file
    if file == "words.txt":
        path.write_text(change)
    else:
        key = change.split(":")[0]
        path.write_text("\n".join(f"  {change}" if line.strip().startswith(f"{key}:") else line
                                  for line in path.read_text().splitlines()) + "\n")
    with pytest.raises(RNNLMError, match=f"damaged.*{file}"):
        load_rnnlm(tmp_path / "damaged")
