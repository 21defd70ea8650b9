"""The speechocean762 recipe runs prepare -> train -> LM -> tune -> evaluate from one `make`, on a
small copy of the corpus in the official layout."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from functools import partial

import pytest
import yaml

from conftest import REPO_ROOT, SHARED_SO762


def fake_release(root, n_per_speaker=6):
    """A miniature speechocean762 release: 3 train speakers, 1 test speaker, real audio."""
    for split, n_speakers in (("train", 3), ("test", 1)):
        src = SHARED_SO762 / split
        spk2utt = [line.split() for line in (src / "spk2utt").read_text().splitlines()][:n_speakers]
        keep = {u for row in spk2utt for u in row[1: 1 + n_per_speaker]}
        (root / split).mkdir(parents=True)
        for name in ("wav.scp", "text", "utt2spk"):
            lines = [line for line in (src / name).read_text().splitlines() if line.split()[0] in keep]
            (root / split / name).write_text("\n".join(lines) + "\n")
        for line in (root / split / "wav.scp").read_text().splitlines():
            rel = line.split()[1]
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SHARED_SO762 / rel, root / rel)
    (root / "resource").mkdir()
    shutil.copy(SHARED_SO762 / "resource" / "lexicon.txt", root / "resource" / "lexicon.txt")


@pytest.mark.skipif(not SHARED_SO762.is_dir(), reason="../shared/data/speechocean762 is not present")
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_one_make_command_prepares_trains_and_evaluates(tmp_path):
    fake_release(tmp_path / "corpus")
    tiny = ("model.cell=gru model.num_layers=1 model.hidden_size=32 model.conv_channels=4 "
            "train.epochs=2 train.batch_seconds=30 train.progress=false train.phone_ctc_weight=0.3 "
            f"train.phone_lexicon={tmp_path / 'corpus' / 'resource' / 'lexicon.txt'}")
    cmd = ["make", "-C", str(REPO_ROOT / "recipes" / "speechocean762"), f"ASR={sys.executable} -m asr.cli",
           f"CORPUS={tmp_path / 'corpus'}", f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}",
           f"OVERRIDES={tiny}", "VALID_SPEAKERS=1", "LM_ORDER=2", "LM_WEIGHTS=0,0.5", "WORD_SCORES=-1,0", "TTS_SENTENCES=0",
           "FINETUNE_EPOCHS=1", "GENERIC_LM=0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len((tmp_path / "data" / "test.jsonl").read_text().splitlines()) == 6
    assert len((tmp_path / "data" / "valid.jsonl").read_text().splitlines()) == 6
    assert (tmp_path / "exp" / "best" / "model.safetensors").is_file()
    model = tmp_path / "exp" / "finetune"  # trained further from exp/best: the model evaluated
    assert f"init_from: {tmp_path / 'exp' / 'best'}" in (model / "config.yaml").read_text()
    assert "phone_ctc_weight: 0.3" in (model / "config.yaml").read_text()  # kept while fine-tuning
    summary = json.loads((model / "test.json").read_text())
    assert summary["utterances"] == 6 and 0 <= summary["cer"]
    assert summary["decoder"] == "greedy"
    assert (model / "test_hyp.txt").read_text().count("REF:") == 6
    with_lm = json.loads((model / "test_lm.json").read_text())  # weights tuned on valid
    assert with_lm["utterances"] == 6 and with_lm["decoder"].startswith("beam 100, lm ")  # the recipes' BEAM_SIZE
    assert "lm_weight" in (model / "best" / "decoding.yaml").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # every stage is done
    assert again.returncode == 0 and "asr.cli train" not in again.stdout
    # Other tuning grids: tuned and evaluated with the LM again, the same model
    retuned = subprocess.run([*cmd, "LM_WEIGHTS=0.5"], capture_output=True, text=True, timeout=600)
    assert retuned.returncode == 0, retuned.stderr[-3000:]
    assert "tune: arguments changed, redoing" in retuned.stdout and "--lm-weights=0.5 " in retuned.stdout
    assert "asr.cli train" not in retuned.stdout
    # (Other overrides retrain in the same folder: test_changed_overrides_retrain_..., with a fake asr.)


@pytest.mark.skipif(not SHARED_SO762.is_dir(), reason="../shared/data/speechocean762 is not present")
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_package_with_a_phone_seed_builds_one_package_that_rescores_with_an_lstm_lm(tmp_path):
    """`make package PHONE_SEEDS=...` end to end: the run, a phone-unit run, the LSTM LM, the
    rescoring tuned on valid, one package re-tuned as packaged."""
    fake_release(tmp_path / "corpus", n_per_speaker=4)
    lexicon = tmp_path / "corpus" / "resource" / "lexicon.txt"
    tiny = ("model.cell=gru model.num_layers=1 model.hidden_size=16 model.conv_channels=4 train.epochs=1 "
            f"train.batch_seconds=30 train.progress=false train.phone_ctc_weight=0.3 train.phone_lexicon={lexicon}")
    package = tmp_path / "pkg"
    cmd = ["make", "-C", str(REPO_ROOT / "recipes" / "speechocean762"), f"ASR={sys.executable} -m asr.cli",
           f"CORPUS={tmp_path / 'corpus'}", f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}",
           f"OVERRIDES={tiny}", "VALID_SPEAKERS=1", "LM_ORDER=2", "LM_WEIGHTS=0.5", "WORD_SCORES=0",
           "BLANK_PENALTIES=0", "BEAM_SIZE=8", "TTS_SENTENCES=0", "FINETUNE_EPOCHS=1", "LM_TEXTS=",
           f"SPHINX_LM={REPO_ROOT / 'tests' / 'data' / 'tiny_sphinx.lm.bin.gz'}",  # the generic LM's stand-in
           "RNNLM_REPEAT=2", "PHONE_SEEDS=7", f"PACKAGE_DIR={package}", "package"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # one LM, made once: the phone run searches with it and imports or mixes nothing of its own
    assert done.stdout.count("lm import-sphinx") == 1 and done.stdout.count("lm mix") == 1
    assert not (tmp_path / "exp" / "phones7" / "lm").exists()
    phone_run = yaml.safe_load((tmp_path / "exp" / "phones7" / "finetune" / "config.yaml").read_text())["train"]
    assert phone_run["units"] == "phone" and phone_run["seed"] == 7
    settings = yaml.safe_load((package / "rescoring.yaml").read_text())
    assert settings["models"] == [".", "system2"] and settings["rnnlm"] == "rnnlm"
    assert 0 <= settings["rnnlm_lambda"] <= 1 and settings["tuned"]["manifest"].endswith("valid.jsonl")
    assert (package / "rnnlm" / "model.safetensors").is_file() and (package / "system2" / "lexicon.txt").is_file()
    assert (package / "token_priors.json").is_file() and (package / "system2" / "token_priors.json").is_file()
    evaluated = subprocess.run([sys.executable, "-m", "asr.cli", "evaluate", str(tmp_path / "data" / "test.jsonl"),
                                "--model", str(package), "--json"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    summary = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert summary["utterances"] == 4 and summary["decoder"].startswith("n-best rescoring of 2 systems")
    assert ("with an RNN LM" in summary["decoder"]) == (settings["rnnlm_lambda"] > 0)


def test_without_a_corpus_the_recipe_says_how_to_get_one(tmp_path):
    cmd = ["make", "-C", str(REPO_ROOT / "recipes" / "speechocean762"), f"CORPUS={tmp_path / 'none'}",
           f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}", "prepare"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "no corpus at" in done.stderr and "download" in done.stderr


@pytest.mark.skipif(not SHARED_SO762.is_dir(), reason="../shared/data/speechocean762 is not present")
@pytest.mark.skipif(shutil.which("flite") is None or shutil.which("espeak-ng") is None,
                    reason="flite/espeak-ng are not installed")
def test_the_synth_stage_mixes_synthetic_sentences_into_the_train_manifest(tmp_path):
    fake_release(tmp_path / "corpus", n_per_speaker=2)
    cmd = ["make", "-C", str(REPO_ROOT / "recipes" / "speechocean762"), f"ASR={sys.executable} -m asr.cli",
           f"CORPUS={tmp_path / 'corpus'}", f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}",
           "VALID_SPEAKERS=1", "TTS_SENTENCES=3", "synth"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    real = (tmp_path / "data" / "train.jsonl").read_text().splitlines()
    mixed = (tmp_path / "data" / "train_tts3.jsonl").read_text().splitlines()
    assert mixed[: len(real)] == real and len(mixed) == len(real) + 3
    assert all(json.loads(line)["id"].startswith("tts-") for line in mixed[len(real):])


def test_wer_by_age_groups_speakers_by_their_age(tmp_path):
    split = tmp_path / "test"
    split.mkdir()
    (split / "utt2spk").write_text("u1 kid\nu2 kid\nu3 adult\n")
    (split / "spk2age").write_text("kid 7\nadult 31\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("u1\tREF: a b\nu1\tHYP: a b\nu2\tREF: c d\nu2\tHYP: c x\n"
                   "u3\tREF: e f g h\nu3\tHYP: \n")
    out = subprocess.run([sys.executable, str(REPO_ROOT / "recipes/speechocean762/wer_by_age.py"), str(hyp),
                          str(split)], capture_output=True, text=True, check=True).stdout
    assert "| 6-9 | 1 | 2 | 25.0% |" in out  # 1 error in 4 words
    assert "| 20+ | 1 | 1 | 100.0% |" in out  # all 4 words deleted
    assert "10-14" not in out  # groups without speakers are left out


def test_wordnet_examples_are_the_quoted_examples_of_the_glosses_each_once(tmp_path):
    header = "  1 This software and database is being provided to you, the LICENSEE, \"as is\"\n"
    synsets = {
        "noun": '00001740 03 n 01 unit 0 000 | a single undivided whole; "the team is a unit"; "a unit"\n',
        "verb": '00002325 29 v 01 respire 0 000 | breathe; "The patient is respiring"; "the team is a unit"\n',
        "adj": '00001740 00 a 01 able 0 000 | having the means; "she was able to swim"\n',
        "adv": '00001740 02 r 01 well 0 000 | in a good manner\n',
    }
    for pos, line in synsets.items():
        (tmp_path / f"data.{pos}").write_text(header + line)
    script = REPO_ROOT / "recipes/speechocean762/wordnet_examples.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "-o", str(tmp_path / "out.txt")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "3 examples" in done.stdout
    # file order, the header's quotes and two-word examples left out, a repeated one once
    assert (tmp_path / "out.txt").read_text().splitlines() == [
        "the team is a unit", "The patient is respiring", "she was able to swim"]
    (tmp_path / "data.adv").unlink()
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "-o", str(tmp_path / "o.txt")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "data.adv" in done.stderr


def test_phone_head_decoding_scores_the_phone_head_alone_and_as_an_n_best_rescorer(tiny_corpus, tmp_path):
    from asr.config_files import load_config
    from asr.lm import build_lm
    from asr.train import train

    def one_epoch(out, *extra):
        return train(load_config(REPO_ROOT / "configs/small.yaml", [
            f"train.train_manifest={tiny_corpus / 'train.jsonl'}",
            f"train.valid_manifest={tiny_corpus / 'valid.jsonl'}", f"train.output_dir={out}", "model.conv_channels=4",
            "train.epochs=1", "train.progress=false", *extra]))

    lexicon = SHARED_SO762 / "resource" / "lexicon.txt"
    run = tmp_path / "run"
    one_epoch(run, "model.num_layers=2", "model.hidden_size=32", "train.phone_ctc_weight=0.3",
              f"train.phone_lexicon={lexicon}")
    lm, _ = build_lm([tiny_corpus / "train.jsonl"], tmp_path / "lm.arpa", order=2, use_lmplz=False)
    script = REPO_ROOT / "recipes/speechocean762/phone_head_decoding.py"
    done = subprocess.run([sys.executable, str(script), str(run), str(tiny_corpus / "valid.jsonl"), "--lm", str(lm),
                           "--phone-lexicon", str(lexicon), "--lm-weights", "1", "--word-scores", "0,1",
                           "--lambdas", "0,1", "--beam-size", "8", "--nbest", "4"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "phone head, greedy: PER" in out and "(4 utterances with phones)" in out
    assert out.count("phone lexicon search, LM weight 1, word score") == 2
    assert "oracle WER" in out and "lambda 0: WER" in out and "lambda 1: WER" in out
    # A run trained without phone CTC has nothing to score with, and says so.
    plain = tmp_path / "plain"
    one_epoch(plain, "model.num_layers=1", "model.hidden_size=16")
    done = subprocess.run([sys.executable, str(script), str(plain), str(tiny_corpus / "valid.jsonl"), "--lm", str(lm)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "no phone head" in done.stderr


def planned(target, *make_args, stamps=False):
    """What `make -n TARGET` would run in the speechocean762 recipe (continued lines joined), less the
    lines that write the stages' arguments stamps unless `stamps`."""
    plan = subprocess.run(["make", "-n", "-C", str(REPO_ROOT / "recipes/speechocean762"), target, *make_args],
                          capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    return plan if stamps else "".join(line for line in plan.splitlines(True) if "/.args/" not in line)


def planned_train_command(*make_args):
    """The `asr train` line `make -n train` would run in the speechocean762 recipe."""
    out = planned("train", *make_args)
    start = out.index("asr train")
    return out[start: out.index("touch", start)]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_recipe_trains_the_default_model_unless_told_otherwise():
    # The recipe's own defaults must survive the shared ones in vars.mk (a `?=` after its
    # include would silently lose to them).
    default = planned_train_command()
    assert "train.train_manifest=data/train_tts1500.jsonl" in default
    assert "train.epochs=20 features.normalize=utterance train.phone_ctc_weight=0.3" in default
    assert "model.num_layers=4" in default  # configs/small.yaml with a fourth layer (run XW)
    assert "train.phone_lexicon=" in default and "/resource/lexicon.txt,cmudict" in default
    assert "train.units=bpe train.bpe_vocab_size=150" in default
    assert "--beam-size 100 --beam-size-token 30" in planned("tune")
    assert "--model exp/small/finetune/best" in planned("evaluate")  # then 10 epochs on real audio
    # their average is the model (FA), at a constant rate (stochastic weight averaging, SW and SW10)
    finetune = planned("finetune")
    assert "train.epochs=10" in finetune
    assert "train.final_lr_fraction=1 train.average_last=10 train.keep_average=true" in finetune
    custom = planned_train_command("TTS_SENTENCES=0", "OVERRIDES=train.epochs=3")
    assert "train.train_manifest=data/train.jsonl" in custom
    assert "train.epochs=3" in custom and "normalize" not in custom and "phone" not in custom
    assert "units" not in custom


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_tune_stage_estimates_token_priors_first_and_tunes_prior_scales_unless_told_otherwise():
    plan = re.sub(" +", " ", planned("tune"))
    priors = plan.index("asr priors exp/small/finetune/best data/train.jsonl")  # real audio, after fine-tuning
    assert priors < plan.index("lm tune data/valid.jsonl") and "--prior-scales=0,0.3,0.45" in plan[priors:]
    off = re.sub(" +", " ", planned("tune", "PRIOR_SCALES=0"))
    assert "asr priors" not in off and "--prior-scales=0 " in off
    rescore = re.sub(" +", " ", planned("rescore", "PHONE_SEEDS=7"))
    line = rescore[rescore.index("tune-rescoring"):].splitlines()[0]
    assert "--prior-scales=0,0.3,0.45" in line


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_lm_mixes_a_generic_english_lm_in_as_a_third_component_unless_told_otherwise():
    sphinx_lm = REPO_ROOT / "tests" / "data" / "tiny_sphinx.lm.bin.gz"  # a file make finds (Debian's: en-us.lm.bin)
    plan = re.sub(" +", " ", planned("lm", "EXP=e", f"SPHINX_LM={sphinx_lm}"))
    assert f"lm import-sphinx {sphinx_lm} -o e/lm/en-us_3gram.arpa" in plan
    assert "lm mix e/lm/train_4gram.arpa e/lm/texts_4gram.arpa e/lm/en-us_3gram.arpa -o e/lm/words_4gram.arpa " \
           "--dev data/valid.jsonl" in plan  # weights fitted on valid, as for the other two
    without = re.sub(" +", " ", planned("lm", "EXP=e", "GENERIC_LM=0"))
    assert "import-sphinx" not in without and "lm mix e/lm/train_4gram.arpa e/lm/texts_4gram.arpa -o" in without
    arpa = REPO_ROOT / "tests" / "data" / "tiny_sphinx.arpa"
    only_arpas = re.sub(" +", " ", planned("lm", "EXP=e", "LM_TEXTS=", f"LM_ARPAS={arpa}"))
    assert "lm build" in only_arpas and "texts_4gram" not in only_arpas
    assert f"lm mix e/lm/train_4gram.arpa {arpa} -o e/lm/words_4gram.arpa" in only_arpas


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_fresh_copy_of_the_outside_text_rebuilds_no_lm(tmp_path):
    # A new machine's copy of ../shared has new times and the same bytes: the LMs built from it
    # (and every tuning downstream) stay; the run's own train transcripts still count by time.
    text, sphinx = tmp_path / "texts.txt", tmp_path / "en-us.lm.bin"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("")
    lm_dir = tmp_path / "e" / "lm"
    (lm_dir / "rnnlm").mkdir(parents=True)
    built = [lm_dir / "en-us_3gram.arpa", lm_dir / "words_4gram.arpa", lm_dir / "rnnlm" / "model.safetensors"]
    for path in built:
        path.write_text("")
    for path in (text, sphinx):  # copied after the LMs were built
        path.write_text("")
        os.utime(path, (time.time() + 60, time.time() + 60))
    args = [f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'e'}", f"LM_TEXTS={text}", f"SPHINX_LM={sphinx}"]
    up_to_date = ["make", "-q", "-C", str(REPO_ROOT / "recipes/speechocean762"), *map(str, built), *args]
    assert subprocess.run(up_to_date).returncode == 0
    os.utime(tmp_path / "data" / "train.jsonl", (time.time() + 120, time.time() + 120))
    assert subprocess.run(up_to_date).returncode == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_without_the_debian_package_the_generic_lm_comes_from_the_pocketsphinx_wheel():
    plan = planned("e/lm/en-us.lm.bin", "EXP=e")
    assert "pip download --no-deps --only-binary :all: pocketsphinx==5.1.1 -d e/lm/wheel" in plan
    assert "pocketsphinx/model/en-us/en-us.lm.bin" in plan
    # copied aside and moved into place: a stopped copy leaves no file that make would trust
    assert "'pocketsphinx/model/en-us/en-us.lm.bin'))\" e/lm/wheel e/lm/en-us.lm.bin.tmp" in plan
    assert "\nmv e/lm/en-us.lm.bin.tmp e/lm/en-us.lm.bin\n" in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["evaluate", "package", "rescore", "combine"])
def test_no_step_writes_its_output_in_place_where_a_killed_step_would_leave_half_of_it(target):
    # A shell redirection into the output itself would leave a partial file that make takes for
    # done; outputs are written aside (.tmp) and moved into place.
    plan = planned(target, "EXP=e", "SEEDS=7", "TTS_SENTENCES=2", stamps=True)
    written = [path for path in re.findall(r"(?<![0-9&])> *([^\s&|;]+)", plan)]
    assert written and all(path.endswith(".tmp") for path in written), written


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_extra_overrides_add_to_the_recipes_own_in_training_and_fine_tuning():
    plan = planned("finetune", "EXTRA_OVERRIDES=train.units=bpe train.bpe_vocab_size=150")
    runs = [line for line in plan.splitlines() if " train " in line and "train.output_dir=" in line]
    assert len(runs) == 2 and "train.init_from=exp/small/best" in runs[1]
    for run in runs:
        assert "train.phone_ctc_weight=0.3" in run and "train.units=bpe train.bpe_vocab_size=150" in run


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_tts_options_reach_the_synthesizer():
    plan = planned("synth", "DATA=data_vtl", "TTS_OPTIONS=--freq-scale 1,1.3")
    assert "synthesize" in plan and "data_vtl/tts1500 --num 1500 --freq-scale 1,1.3" in plan
    assert "--freq-scale" not in planned("synth")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_run_m_is_the_medium_config_with_the_recipes_other_settings():
    plan = planned_train_command(f"CONFIG={REPO_ROOT / 'configs/medium.yaml'}", "EPOCHS=30", "LAYERS=3",
                                 "EXP=exp/medium")
    assert "configs/medium.yaml" in plan and "train.epochs=30 " in plan and "model.num_layers=3" in plan
    assert "train.phone_ctc_weight=0.3" in plan and "train.output_dir=exp/medium" in plan
    assert "--beam-size 100" in planned("tune", "EXP=exp/medium")


def test_wer_by_age_names_an_utterance_whose_speaker_has_no_age(tmp_path):
    (tmp_path / "utt2spk").write_text("u1 kid\n")
    (tmp_path / "spk2age").write_text("someone 7\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("u1\tREF: a\nu1\tHYP: a\n")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "recipes/speechocean762/wer_by_age.py"), str(hyp),
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "no speaker age for utterance u1" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_without_fine_tuning_the_trained_model_itself_is_tuned_and_evaluated():
    plan = planned("evaluate", "FINETUNE_EPOCHS=0")
    assert "--model exp/small/best" in plan and "finetune" not in plan
    plan = planned("evaluate", "FINETUNE_EPOCHS=3")
    assert "train.init_from=exp/small/best train.epochs=3" in plan
    assert "--model exp/small/finetune/best" in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_combine_stage_votes_the_run_s_model_with_the_listed_systems():
    plan = planned("combine", "COMBINE=exp/other/pkg exp/third/pkg")
    line = plan[plan.index("evaluate data/test.jsonl --model exp/small/finetune/best --lm"):]
    assert "--combine exp/other/pkg exp/third/pkg" in line.splitlines()[0]
    assert "--report exp/small/finetune/combined/test_report" in line.splitlines()[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_seeds_rerun_the_whole_recipe_per_seed_with_this_run_s_lm_and_combine_votes_them():
    plan = planned("combine", "SEEDS=7 42")
    for seed in ("7", "42"):
        run = f"exp/small/seed{seed}"
        assert f'tune EXP={run} LM=exp/small/lm/words_4gram.arpa SEEDS= EXTRA_OVERRIDES=\'train.seed={seed}\'' in plan
        trains = [line for line in plan.splitlines() if f"train.output_dir={run}" in line]
        assert len(trains) == 2 and all(f"train.seed={seed}" in line for line in trains)  # train + finetune
        assert f"lm tune data/valid.jsonl --model {run}/finetune/best --lm exp/small/lm/words_4gram.arpa" in plan
        assert f"export {run}/finetune/best {run}/package.tmp --half --lm exp/small/lm/words_4gram.arpa" in plan
    line = plan[plan.index("evaluate data/test.jsonl --model exp/small/finetune/best --lm"):].splitlines()[0]
    assert "--combine exp/small/seed7/package exp/small/seed42/package" in line
    assert "train.seed" not in planned("combine", "COMBINE=exp/other/pkg")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_seed_runs_start_after_the_synthetic_speech_so_make_j_never_synthesizes_it_twice_at_once():
    for target in ("exp/small/seed7/package/model.safetensors", "exp/small/phones7/package/model.safetensors"):
        plan = planned(target)
        assert "asr synthesize" in plan
        assert plan.index("asr synthesize") < plan.index("make tune EXP=exp/small/")  # the parent's, first


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_rescore_stage_packages_the_run_s_model_first_and_tunes_on_valid_before_the_test_set():
    plan = re.sub(" +", " ", planned("rescore", "SEEDS=7"))
    export = plan.index("export exp/small/finetune/best exp/small/finetune/package.tmp --half --lm "
                        "exp/small/lm/words_4gram.arpa")
    tune = plan.index("tune-rescoring data/valid.jsonl --model exp/small/finetune/package --combine "
                      "exp/small/seed7/package --rnnlm exp/small/lm/rnnlm --prior-scales=0,0.3,0.45 "
                      "-o exp/small/finetune/rescored/rescoring.yaml")
    evaluate = plan.index("evaluate data/test.jsonl --rescoring exp/small/finetune/rescored/rescoring.yaml")
    assert export < tune < evaluate
    assert "--report exp/small/finetune/rescored/test_report" in plan[evaluate:].splitlines()[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_phone_overrides_reach_the_phone_seeds_runs_alone_after_their_own_overrides():
    cmudict_first = '"train.phone_lexicon=cmudict,/my corpus/lexicon.txt"'
    plan = re.sub(" +", " ", planned("package", "PHONE_SEEDS=7", "SEEDS=3", "PACKAGE_DIR=pkg",
                                     f"PHONE_OVERRIDES={cmudict_first}"))
    assert f"EXTRA_OVERRIDES='train.units=phone train.seed=7 {cmudict_first}'" in plan
    assert "EXTRA_OVERRIDES='train.seed=3'" in plan  # a subword seed's run keeps the corpus lexicon first
    trains = [line for line in plan.splitlines() if "train.output_dir=exp/small/phones7" in line]
    assert len(trains) == 2  # the run and its fine-tuning
    assert all(line.index("/resource/lexicon.txt,cmudict") < line.index("=cmudict,/my corpus") for line in trains)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_phone_seeds_rerun_the_recipe_with_phone_units_and_package_installs_one_rescoring_package():
    plan = re.sub(" +", " ", planned("package", "PHONE_SEEDS=7", "PACKAGE_DIR=pkg"))
    run = "exp/small/phones7"
    assert f'tune EXP={run} LM=exp/small/lm/words_4gram.arpa SEEDS= PHONE_SEEDS= ' \
           f"EXTRA_OVERRIDES='train.units=phone train.seed=7'" in plan
    trains = [line for line in plan.splitlines() if f"train.output_dir={run}" in line]
    assert len(trains) == 2 and all("train.units=phone train.seed=7" in line for line in trains)  # + finetune
    assert all(line.index("train.units=bpe") < line.index("train.units=phone") for line in trains)  # the later wins
    steps = [plan.index(step) for step in (
        f"export {run}/finetune/best {run}/package.tmp --half --lm exp/small/lm/words_4gram.arpa",
        # the LSTM LM: train transcripts 10 times an epoch, LJ Speech text once, selected on valid
        "lm rnn data/train.jsonl", "--repeat 10,1 --dev data/valid.jsonl",
        f"tune-rescoring data/valid.jsonl --model exp/small/finetune/package --combine {run}/package "
        "--rnnlm exp/small/lm/rnnlm --prior-scales=0,0.3,0.45 -o exp/small/finetune/rescored/rescoring.yaml",
        'export exp/small/finetune/rescored/rescoring.yaml "pkg.tmp"',  # carries the LSTM LM into pkg.tmp/rnnlm
        '--combine $(ls -dv "pkg.tmp"/system*) --rnnlm "pkg.tmp/rnnlm" --prior-scales=0,0.3,0.45 '
        '-o "pkg.tmp/rescoring.yaml"',  # re-tuned as packaged
        'mv "pkg.tmp" "pkg"')]
    assert steps == sorted(steps)
    # A seed's run searches with this run's LM, whose components it finds beside it: it imports
    # no generic LM of its own (which, newer than the LM, would have it mixed again).
    for seeds, run in (("PHONE_SEEDS=7", "phones7"), ("SEEDS=7", "seed7")):
        plan = planned("package", seeds, "PACKAGE_DIR=pkg")
        assert f"exp/small/{run}/lm/" not in plan and "-o exp/small/lm/en-us_3gram.arpa" in plan, seeds
    assert "lm rnn" not in planned("package", "PHONE_SEEDS=7", "PACKAGE_DIR=pkg", "RNNLM=0")
    assert "--weights" not in plan  # tune-rescoring's own grid unless told otherwise
    told = planned("package", "PHONE_SEEDS=7", "PACKAGE_DIR=pkg", "RESCORING_WEIGHTS=0,0.5")
    tunings = [line for line in told.splitlines() if "tune-rescoring" in line or "pkg.tmp/rescoring.yaml" in line]
    assert len(tunings) == 2 and all("--weights=0,0.5" in line for line in tunings)  # the run's and the package's
    single = planned("package", "PACKAGE_DIR=pkg", "RNNLM=0")
    assert 'export exp/small/finetune/best "pkg" --half --lm exp/small/lm/words_4gram.arpa' in single
    assert "rescoring" not in single and "phones" not in single


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_with_no_other_system_the_lstm_lm_alone_makes_a_package_that_rescores_its_own_n_best():
    plan = re.sub(" +", " ", planned("package", "PACKAGE_DIR=pkg"))  # RNNLM=1 is the recipe's default
    steps = [plan.index(step) for step in (
        "export exp/small/finetune/best exp/small/finetune/package.tmp --half --lm exp/small/lm/words_4gram.arpa",
        "lm rnn data/train.jsonl",
        "tune-rescoring data/valid.jsonl --model exp/small/finetune/package --rnnlm exp/small/lm/rnnlm "
        "--prior-scales=0,0.3,0.45 -o exp/small/finetune/rescored/rescoring.yaml",
        'export exp/small/finetune/rescored/rescoring.yaml "pkg.tmp"',
        'tune-rescoring data/valid.jsonl --model "pkg.tmp" --rnnlm "pkg.tmp/rnnlm" --prior-scales=0,0.3,0.45 '
        '-o "pkg.tmp/rescoring.yaml"',
        'mv "pkg.tmp" "pkg"')]
    assert steps == sorted(steps)
    assert "--combine" not in plan and "phones" not in plan
    assert "evaluate data/test.jsonl --rescoring exp/small/finetune/rescored/rescoring.yaml" in \
        re.sub(" +", " ", planned("rescore"))


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_rescore_without_systems_or_an_lstm_lm_says_what_it_needs(tmp_path):
    exp = tmp_path / "exp"
    package = exp / "finetune" / "package" / "model.safetensors"
    package.parent.mkdir(parents=True)
    package.write_text("")
    done = subprocess.run(["make", "-C", str(REPO_ROOT / "recipes/speechocean762"), "rescore", "RNNLM=0",
                           f"EXP={exp}", f"DATA={tmp_path / 'data'}", "-o", str(package)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "rescore needs COMBINE" in done.stderr and "RNNLM=1" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_combine_without_systems_or_seeds_says_what_it_needs(tmp_path):
    exp = tmp_path / "exp"
    (exp / "finetune" / "best").mkdir(parents=True)
    (exp / "finetune" / "best" / "decoding.yaml").write_text("lm_weight: 1\n")
    done = subprocess.run(["make", "-C", str(REPO_ROOT / "recipes/speechocean762"), "combine", f"EXP={exp}",
                           f"DATA={tmp_path / 'data'}", "-o", str(exp / "finetune" / "best" / "decoding.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "combine needs COMBINE" in done.stderr and "SEEDS" in done.stderr


# `asr` as the recipes find it in a checkout (ROOT/.venv/bin/asr): it records each call and makes
# what make then looks for.
FAKE_ASR = '''
import json, os, pathlib, sys
args = sys.argv[1:]
if args[0] == "train" and "--check" in args:  # the config and its overrides checked, nothing run: not a call
    sys.exit("train failed" if os.environ.get("FAKE_ASR_FAILS") == "train" else 0)
with open(pathlib.Path(sys.argv[0]).parent / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == os.environ.get("FAKE_ASR_FAILS"):  # a command that fails at once (e.g. a mistyped override)
    sys.exit(f"{args[0]} failed")
def listed(option):  # the values after an option, up to the next option
    rest = args[args.index(option) + 1:] if option in args else []
    return rest[:next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]
if args[0] == "prepare":  # prepare folder|librispeech SRC DATA ...: as asr prepare, the same manifests again are
    # left as they were, and any changed rewrites them all, train.jsonl last (write_splits); a test manifest names
    # its source, a librispeech --eval subset's itself, train.jsonl its --train subsets (--train with none:
    # the --eval subsets alone)
    out = pathlib.Path(args[3])
    out.mkdir(parents=True, exist_ok=True)
    texts = {"valid": "", **({"test": args[args.index("--test") + 1]} if "--test" in args else {}),
             **{subset: subset for subset in listed("--eval")}, "train": " ".join(listed("--train"))}
    if "--train" in args and not listed("--train"):
        texts = {subset: subset for subset in listed("--eval")}
    if any(not (out / f"{n}.jsonl").exists() or (out / f"{n}.jsonl").read_text() != t for n, t in texts.items()):
        for n, t in texts.items():
            (out / f"{n}.jsonl").write_text(t)
elif args[0] == "train":  # as asr train: a folder that holds a run is resumed or refused
    run = pathlib.Path(next(a for a in args if a.startswith("train.output_dir=")).split("=", 1)[1])
    if (run / "best").exists() and "--resume" not in args:
        sys.exit(f"{run} already holds a run")
    (run / "best").mkdir(parents=True, exist_ok=True)
elif args[0] == "export":  # a rescoring file's systems become system2, system3, ...
    for system in ("system2", "system10") if args[1].endswith(".yaml") else ():
        pathlib.Path(args[2], system).mkdir(parents=True)
    pathlib.Path(args[2]).mkdir(parents=True, exist_ok=True)
    pathlib.Path(args[2], "model.safetensors").write_text("")
elif args[0] == "tune-rescoring":
    pathlib.Path(args[args.index("-o") + 1]).write_text("")
elif args[:2] == ["lm", "build"]:
    pathlib.Path(args[args.index("-o") + 1]).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args[args.index("-o") + 1]).write_text("")
elif args[:2] == ["lm", "rnn"]:
    pathlib.Path(args[args.index("-o") + 1]).mkdir(parents=True)
    pathlib.Path(args[args.index("-o") + 1], "model.safetensors").write_text("")
elif args[:2] == ["lm", "tune"]:
    pathlib.Path(args[args.index("--model") + 1], "decoding.yaml").write_text("")
'''


@pytest.fixture
def spaced_checkout(tmp_path):
    """The recipes and configs in a checkout whose path holds a space, with the fake asr and a python
    (which the recipes call too) in its .venv."""
    root = tmp_path / "check out"
    for name in ("recipes/vars.mk", "recipes/common.mk", "recipes/own_data/Makefile",
                 "recipes/speechocean762/Makefile", "configs/small.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, root / name)
    asr = root / ".venv" / "bin" / "asr"
    asr.parent.mkdir(parents=True)
    asr.write_text(f"#!{sys.executable}\n{FAKE_ASR}")
    asr.chmod(0o755)
    (asr.parent / "python").symlink_to(sys.executable)
    return root


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_checkout_whose_path_holds_a_space_runs_the_recipes_with_its_asr_config_and_package_dir(
        spaced_checkout, tmp_path):
    root = spaced_checkout
    recipe = ["make", "-C", str(root / "recipes" / "own_data"), f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}"]
    done = subprocess.run([*recipe, "SRC=x", "VALID_SPEAKERS=1", "train"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    # the package stage that rescores: its systems' folders listed under ROOT/asr/pretrained/default.tmp
    settings = tmp_path / "exp" / "rescored" / "rescoring.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text("")
    done = subprocess.run([*recipe, "COMBINE=other/pkg", "VALID=valid", "package", "-o", str(settings)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    calls = [json.loads(line) for line in (root / ".venv" / "bin" / "calls.jsonl").read_text().splitlines()]
    assert [call[0] for call in calls] == ["prepare", "train", "export", "tune-rescoring"]
    assert calls[1][1] == str(root / "configs" / "small.yaml")  # the default CONFIG, one argument
    package = root / "asr" / "pretrained" / "default"  # the default PACKAGE_DIR
    tune = calls[3]
    assert tune[tune.index("--model") + 1] == f"{package}.tmp"
    assert tune[tune.index("--combine") + 1: tune.index("--combine") + 3] == [f"{package}.tmp/system2",
                                                                              f"{package}.tmp/system10"]
    assert (package / "system10").is_dir() and (package / "rescoring.yaml").is_file()
    assert not package.with_name("default.tmp").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_checkout_whose_path_holds_a_space_still_finds_the_lj_speech_text_beside_it(spaced_checkout, tmp_path):
    text = tmp_path / "shared" / "data" / "text" / "ljspeech-13100.txt"  # ROOT/../shared, as on this machine
    text.parent.mkdir(parents=True)
    text.write_text("a sentence\n")
    plan = subprocess.run(["make", "-n", "-C", str(spaced_checkout / "recipes" / "speechocean762"), "lm", "EXP=e",
                           "GENERIC_LM=0"], capture_output=True, text=True, check=True).stdout
    assert "lm build ../../../shared/data/text/ljspeech-13100.txt -o e/lm/texts_4gram.arpa" in plan


def fake_make(tmp_path, recipe, *args, fails=""):
    """`make ARGS` in a recipe with FAKE_ASR (whose command `fails`, e.g. "train", fails): the result
    and the asr calls it made, each named by its command ("lm tune") and followed by its arguments."""
    script = tmp_path / "fake" / "asr.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(FAKE_ASR)
    calls = script.parent / "calls.jsonl"
    calls.unlink(missing_ok=True)
    done = subprocess.run(["make", "-C", str(REPO_ROOT / "recipes" / recipe), f"ASR={sys.executable} {script}",
                           f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "FAKE_ASR_FAILS": fails})
    made = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return done, [[" ".join(call[:2]) if call[0] == "lm" else call[0], *call[1:]] for call in made]


def own_data(tmp_path, *args, fails=""):
    """fake_make in the own_data recipe, with SRC=x and one valid speaker."""
    return fake_make(tmp_path, "own_data", "SRC=x", "VALID_SPEAKERS=1", *args, fails=fails)


def librispeech(tmp_path, *args, recipe="librispeech"):
    """fake_make in a LibriSpeech recipe (librispeech, mini_librispeech): its corpus needs no download
    (the fake's does nothing), so its asr calls are those of the stages after."""
    done, calls = fake_make(tmp_path, recipe, f"CORPUS_DIR={tmp_path / 'corpus'}", *args)
    return done, [call for call in calls if call[0] != "download"]


def up_to_date(tmp_path, *args, run=own_data):
    """Whether `make -q ARGS` finds every stage of the recipe's default target (or ARGS's) done
    (`run`: own_data's, or librispeech's without the download, which is always run)."""
    done, calls = run(tmp_path, "-q", *args, *(["-o", "download"] if run is not own_data else []))
    assert not calls and done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def names(calls):
    return sorted(call[0] for call in calls)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_again_with_the_same_arguments_redoes_no_stage(tmp_path):
    done, calls = own_data(tmp_path)
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["evaluate", "evaluate", "lm build", "lm tune", "prepare", "train"]
    assert up_to_date(tmp_path)
    done, calls = own_data(tmp_path)
    assert done.returncode == 0 and calls == [] and "Nothing to be done" in done.stdout
    # the stamp holds the stage's arguments, less the program
    assert (tmp_path / "exp" / ".args" / "train").read_text().startswith('"$(ROOT)/configs/small.yaml" train.')


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_changed_overrides_retrain_and_redo_the_stages_after_training_but_not_prepare_or_the_lm(tmp_path):
    own_data(tmp_path)
    assert not up_to_date(tmp_path, "OVERRIDES=model.cell=gru")
    done, calls = own_data(tmp_path, "OVERRIDES=model.cell=gru")
    assert done.returncode == 0, done.stderr
    assert "train: arguments changed, redoing" in done.stdout
    assert names(calls) == ["evaluate", "evaluate", "lm tune", "train"]
    train = next(call for call in calls if call[0] == "train")
    # a new run, not the old one resumed (the fake, as asr train, refuses a folder that holds a run)
    assert "model.cell=gru" in train and "--resume" not in train
    assert up_to_date(tmp_path, "OVERRIDES=model.cell=gru")
    assert not up_to_date(tmp_path)  # back to the recipe's own: trained again


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_an_edited_config_retrains_and_a_new_comment_or_blank_line_in_it_does_not(tmp_path):
    # the train stamp names the config by its path: an edited configs/small.yaml used to retrain nothing
    config = tmp_path / "my.yaml"
    config.write_text((REPO_ROOT / "configs" / "small.yaml").read_text())
    own_data(tmp_path, f"CONFIG={config}")
    config.write_text(config.read_text() + "\n# tried 4 layers: slower, no better\n   \n")
    assert up_to_date(tmp_path, f"CONFIG={config}")
    config.write_text(config.read_text().replace("num_layers: 3", "num_layers: 4  # 3 before"))
    assert not up_to_date(tmp_path, f"CONFIG={config}")
    done, calls = own_data(tmp_path, f"CONFIG={config}")
    assert done.returncode == 0, done.stderr
    assert "config: arguments changed, redoing" in done.stdout
    assert names(calls) == ["evaluate", "evaluate", "lm tune", "train"]
    assert "--resume" not in next(call for call in calls if call[0] == "train")  # a new run, the old one aside
    assert (tmp_path / "exp" / "replaced" / "best").is_dir()
    assert up_to_date(tmp_path, f"CONFIG={config}")
    # killed, then the config edited: the dry run shows a new run, as make then trains one
    (tmp_path / "exp" / "last").mkdir(exist_ok=True)
    (tmp_path / "exp" / "last" / "train_state.pt").write_text("")
    (tmp_path / "exp" / "train.done").unlink()
    assert "--resume" in own_data(tmp_path, f"CONFIG={config}", "-n", "train")[0].stdout
    config.write_text(config.read_text().replace("num_layers: 4", "num_layers: 5"))
    plan = own_data(tmp_path, f"CONFIG={config}", "-n", "train")[0].stdout
    assert "train.output_dir=" in plan and "--resume" not in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_new_common_voice_archive_in_the_same_corpus_dir_prepares_again_and_the_same_one_does_not(tmp_path):
    def prepare(*args):
        done, calls = fake_make(tmp_path, "commonvoice", f"CORPUS_DIR={tmp_path / 'cv'}", "CV_LANGUAGE=de",
                                "prepare", *args)
        assert done.returncode == 0, done.stderr
        return [call[0] for call in calls]

    assert prepare("ARCHIVE=dl/cv-corpus-17.0-2024-03-15-de.tar.gz") == ["download", "prepare"]
    assert prepare("ARCHIVE=dl/cv-corpus-17.0-2024-03-15-de.tar.gz") == ["download"]
    assert prepare() == ["download"]  # unpacked already: no archive named
    assert prepare("ARCHIVE=elsewhere/cv-corpus-17.0-2024-03-15-de.tar.gz") == ["download"]  # the same, moved
    assert prepare("ARCHIVE=dl/cv-corpus-18.0-2024-06-14-de.tar.gz") == ["download", "prepare"]
    assert prepare("ARCHIVE=dl/cv-corpus-18.0-2024-06-14-de.tar.gz") == ["download"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_config_edit_that_training_refuses_leaves_the_run_and_the_config_stamp_as_they_were(tmp_path):
    config = tmp_path / "my.yaml"
    original = (REPO_ROOT / "configs" / "small.yaml").read_text()
    config.write_text(original)
    own_data(tmp_path, f"CONFIG={config}", "train")
    config.write_text(original.replace("num_layers: 3", "num_layer: 4"))  # a mistyped key
    done, calls = own_data(tmp_path, f"CONFIG={config}", "train", fails="train")
    assert done.returncode != 0 and "train" not in names(calls)
    config.write_text(original)  # the typo taken back: nothing to redo, nothing moved aside
    done, calls = own_data(tmp_path, f"CONFIG={config}", "train")
    assert done.returncode == 0 and calls == [], done.stdout
    assert not (tmp_path / "exp" / "replaced").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_run_trained_before_configs_had_a_stamp_is_taken_as_made_with_the_config_as_it_is(tmp_path):
    own_data(tmp_path)
    (tmp_path / "exp" / ".args" / "config").unlink()
    done, calls = own_data(tmp_path)
    assert done.returncode == 0 and calls == [], done.stdout
    assert f"config: {tmp_path / 'exp' / 'train.done'} predates arguments stamps" in done.stdout
    assert up_to_date(tmp_path)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("change, redone", [
    ("LM_ORDER=3", ["evaluate", "lm build", "lm tune"]),
    ("LM_WEIGHTS=1,2", ["evaluate", "lm tune"]),
    ("PRIOR_SCALES=0,0.3", ["evaluate", "lm tune", "priors"]),
])
def test_lm_and_tuning_arguments_redo_their_stages_and_those_after_them_but_not_training(tmp_path, change, redone):
    own_data(tmp_path)
    done, calls = own_data(tmp_path, change)
    assert done.returncode == 0, done.stderr
    assert names(calls) == redone  # the greedy evaluation, of the same model, stays
    assert up_to_date(tmp_path, change)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_prepare_redone_that_writes_the_same_manifests_redoes_nothing_after_it_nor_itself_again(tmp_path):
    own_data(tmp_path)
    done, calls = own_data(tmp_path, "SRC=./x")  # other arguments, the same manifests
    assert done.returncode == 0, done.stderr
    assert "prepare: arguments changed, redoing" in done.stdout and names(calls) == ["prepare"]
    assert up_to_date(tmp_path, "SRC=./x")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_new_test_set_is_prepared_and_scored_alone_and_retrains_nothing(tmp_path):
    # training never reads the test set: another TEST_SRC (make -j, the scores beside its prepare)
    # re-prepares and re-scores the test set alone
    own_data(tmp_path, "TEST_SRC=first")
    train_manifest = (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns
    done, calls = own_data(tmp_path, "-j2", "TEST_SRC=second")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "test.jsonl").read_text() == "second"
    assert names(calls) == ["evaluate", "evaluate", "prepare"]
    assert all(call[1] == str(tmp_path / "data" / "test.jsonl") for call in calls if call[0] == "evaluate")
    prepare = calls[0]  # SRC read too: prepare refuses a test set that shares audio with train/valid
    assert prepare[1:3] == ["folder", "x"] and prepare[prepare.index("--test") + 1] == "second"
    assert (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns == train_manifest
    assert "second" not in (tmp_path / "data" / ".args" / "prepare").read_text()
    assert up_to_date(tmp_path, "TEST_SRC=second")
    (tmp_path / "data" / ".args" / "test").touch()  # new recordings in TEST_SRC (the own_data README)
    assert "touch recipes/own_data/data/.args/test" in (REPO_ROOT / "recipes/own_data/README.md").read_text()
    done, calls = own_data(tmp_path, "TEST_SRC=second")
    assert done.returncode == 0 and names(calls) == ["prepare"], done.stderr  # the same test manifest
    assert up_to_date(tmp_path, "TEST_SRC=second")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_test_set_given_to_a_finished_run_is_scored_by_the_same_model(tmp_path):
    own_data(tmp_path)
    done, calls = own_data(tmp_path, "TEST_SRC=t")
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["evaluate", "evaluate", "prepare"] and (tmp_path / "exp" / "test_lm.json").is_file()
    assert up_to_date(tmp_path, "TEST_SRC=t") and up_to_date(tmp_path, "TEST_SRC=t", "prepare")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("test_src, scored", [("second", True), ("first", False)])
def test_a_test_set_made_by_the_old_recipe_s_single_prepare_is_prepared_anew_once(tmp_path, test_src, scored):
    # the old recipe's prepare wrote test.jsonl with train and valid (its TEST_SRC in .args/prepare),
    # and no .args/test: that test.jsonl may be another TEST_SRC's, so it is not taken as this one's
    own_data(tmp_path, "TEST_SRC=first")
    stamps = tmp_path / "data" / ".args"
    (stamps / "test").unlink()
    new_style = (stamps / "prepare").read_text()
    old_style = new_style.replace(f"{tmp_path / 'data'} ", f'{tmp_path / "data"} --test "first" ')
    assert old_style != new_style
    (stamps / "prepare").write_text(old_style)
    done, calls = own_data(tmp_path, f"TEST_SRC={test_src}")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "test.jsonl").read_text() == test_src
    # SRC read again (the same manifests: nothing retrained); the test set scored again only if it changed
    assert "prepare: arguments changed, redoing" in done.stdout and (stamps / "prepare").read_text() == new_style
    assert names(calls) == ["evaluate", "evaluate"] * scored + ["prepare", "prepare"]
    assert up_to_date(tmp_path, f"TEST_SRC={test_src}")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("recipe, first, more, valid_set", [
    ("librispeech", "dev-clean test-clean", "dev-clean test-clean test-other dev-other", "dev-clean"),
    ("mini_librispeech", "dev-clean-2", "dev-clean-2 dev-other", "valid"),
])
def test_another_eval_subsets_prepares_and_scores_the_new_subsets_alone_and_retrains_nothing(
        tmp_path, recipe, first, more, valid_set):
    # training never reads the scored-only subsets (make -j, the scores beside their prepares)
    done, calls = librispeech(tmp_path, f"EVAL_SUBSETS={first}", recipe=recipe)
    assert done.returncode == 0, done.stderr
    assert names(calls).count("train") == 1
    train_manifest = (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns
    done, calls = librispeech(tmp_path, "-j2", f"EVAL_SUBSETS={more}", recipe=recipe)
    assert done.returncode == 0, done.stderr
    new = set(more.split()) - set(first.split())
    assert names(calls) == ["evaluate"] * (2 * len(new)) + ["prepare"] * len(new)
    assert sorted(call[call.index("--eval") + 1] for call in calls if call[0] == "prepare") == sorted(new)
    assert all(call[call.index("--train") + 1] == "--eval" for call in calls if call[0] == "prepare")  # no train set
    assert sorted(call[1] for call in calls if call[0] == "evaluate") == sorted(
        str(tmp_path / "data" / f"{subset}.jsonl") for subset in new for _ in range(2))
    assert all((tmp_path / "data" / f"{subset}.jsonl").read_text() == subset for subset in new)
    assert not [p for p in (tmp_path / "data").iterdir() if p.is_dir() and p.name != ".args"]  # folders aside removed
    assert (tmp_path / "data" / "train.jsonl").stat().st_mtime_ns == train_manifest
    assert up_to_date(tmp_path, f"EVAL_SUBSETS={more}", run=partial(librispeech, recipe=recipe))
    # and back: the subsets left out are not scored, and nothing is redone
    done, calls = librispeech(tmp_path, f"EVAL_SUBSETS={first}", recipe=recipe)
    assert done.returncode == 0 and calls == [], done.stderr
    assert up_to_date(tmp_path, f"EVAL_SUBSETS={first}", run=partial(librispeech, recipe=recipe))
    assert (tmp_path / "exp" / f"{valid_set}.json").exists() != (valid_set == "valid")  # valid: tune's alone


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_own_data_s_test_set_and_a_scored_only_librispeech_subset_are_prepared_apart_by_the_same_steps(tmp_path):
    # one way (common.mk's prepare_separately): a folder of this make's own in DATA, the manifest kept
    # only if it changed, the stamp given its time; only the asr prepare command differs
    def steps(recipe, set_name, *args):
        plan = subprocess.run(["make", "-n", "-C", str(REPO_ROOT / "recipes" / recipe), f"{tmp_path}/d/{set_name}.jsonl",
                               "ASR=asr", f"DATA={tmp_path}/d", f"EXP={tmp_path}/e", *args],
                              capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
        lines = [line for line in plan.splitlines()  # less the stamps' and make's own lines
                 if "printf" not in line and not line.startswith(("echo ", "make"))]
        lines = lines[lines.index(next(line for line in lines if "mktemp" in line)):]
        return [re.sub(rf"(?<=/){set_name}\b", "SET", re.sub(r"asr prepare .*?(&&|$)", r"PREPARE \1", line).replace(
            str(tmp_path), "TMP")).split() for line in lines]

    own = steps("own_data", "test", "SRC=x", "TEST_SRC=y", "VALID_FRACTION=0.1", "-o", f"{tmp_path}/d/train.jsonl")
    libri = steps("librispeech", "dev-other", "CORPUS_DIR=c", "-o", "download")
    assert own == libri and len(own) == 2 and {"PREPARE", "cmp", "mv"} <= set(own[0]) and own[1][0] == "touch"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_eval_subsets_prepared_by_the_old_recipe_s_single_prepare_are_prepared_again_and_kept_if_the_same(tmp_path):
    # the old recipe's prepare wrote every eval subset with train (and no stamp of theirs): maybe
    # from another CORPUS_DIR, so each is prepared again; the same manifest keeps its time and scores
    librispeech(tmp_path, "EVAL_SUBSETS=dev-clean test-clean")
    stamps = tmp_path / "data" / ".args"
    (stamps / "test-clean").unlink()
    new_style = (stamps / "prepare").read_text()
    (stamps / "prepare").write_text(new_style.replace("--eval dev-clean", "--eval dev-clean test-clean"))
    done, calls = librispeech(tmp_path, "EVAL_SUBSETS=dev-clean test-clean")
    assert done.returncode == 0, done.stderr
    assert "predates arguments stamps" not in done.stdout
    assert names(calls) == ["prepare", "prepare"] and (stamps / "prepare").read_text() == new_style
    assert up_to_date(tmp_path, "EVAL_SUBSETS=dev-clean test-clean", run=librispeech)
    # another corpus's manifest under the same name is replaced, and scored again
    (stamps / "test-clean").unlink()
    (tmp_path / "data" / "test-clean.jsonl").write_text("another corpus's test-clean")
    done, calls = librispeech(tmp_path, "EVAL_SUBSETS=dev-clean test-clean")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "test-clean.jsonl").read_text() == "test-clean"
    assert sorted(names(calls)) == ["evaluate", "evaluate", "prepare"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_valid_subset_scored_only_before_is_prepared_again_when_it_is_scored_only_again(tmp_path):
    # as the valid set its manifest is the main prepare's; its old stamp would vouch for it after
    librispeech(tmp_path, "VALID_SUBSET=dev-other", "EVAL_SUBSETS=dev-clean dev-other")
    stamps = tmp_path / "data" / ".args"
    assert (stamps / "dev-clean").exists()
    librispeech(tmp_path, "VALID_SUBSET=dev-clean", "EVAL_SUBSETS=dev-clean dev-other")
    assert not (stamps / "dev-clean").exists()
    done, calls = librispeech(tmp_path, "VALID_SUBSET=dev-other", "EVAL_SUBSETS=dev-clean dev-other")
    assert done.returncode == 0, done.stderr
    assert ["--eval", "dev-clean"] in [call[-2:] for call in calls if call[0] == "prepare"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_subset_both_trained_on_and_scored_is_refused_in_one_line_before_anything_runs(tmp_path):
    done, calls = librispeech(tmp_path, "TRAIN_SUBSETS=train-clean-100 dev-other", "EVAL_SUBSETS=dev-clean dev-other")
    assert done.returncode != 0 and calls == []
    assert "dev-other: in both TRAIN_SUBSETS and EVAL_SUBSETS" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_touching_the_prepare_stamp_prepares_again_as_the_own_data_readme_says_after_new_recordings(tmp_path):
    own_data(tmp_path)
    assert "touch recipes/own_data/data/.args/prepare" in (REPO_ROOT / "recipes/own_data/README.md").read_text()
    (tmp_path / "data" / ".args" / "prepare").touch()
    done, calls = own_data(tmp_path)
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["prepare"]  # the same manifests: nothing after it
    assert up_to_date(tmp_path)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_trailing_slash_on_the_source_path_redoes_no_stage(tmp_path):
    own_data(tmp_path)  # SRC=x; then the same folder as a shell's completion gives it
    assert up_to_date(tmp_path, "SRC=x/")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("recipe, variable", [("speechocean762", "CORPUS"), ("an4", "CORPUS_DIR"),
                                              ("librispeech", "CORPUS_DIR")])
def test_a_trailing_slash_on_the_corpus_path_changes_no_stage_s_arguments(recipe, variable):
    # speechocean762's training reads the corpus's lexicon: a changed path there would retrain
    def plan(path):
        return subprocess.run(["make", "-n", "-C", str(REPO_ROOT / "recipes" / recipe), "tune", f"{variable}={path}"],
                              capture_output=True, text=True, check=True).stdout
    spaced = "/data/my  corpus"  # a run of spaces, kept as it is
    assert plan(spaced + "/") == plan(spaced) and f'"{spaced}"' in plan(spaced)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_package_dir_given_with_a_trailing_slash_is_replaced_by_the_new_package(tmp_path):
    own_data(tmp_path, "train")
    settings = tmp_path / "exp" / "rescored" / "rescoring.yaml"
    settings.parent.mkdir(parents=True)
    settings.write_text("")
    package = tmp_path / "my package"
    (package / "old").mkdir(parents=True)
    done, _ = own_data(tmp_path, "COMBINE=other/pkg", f"PACKAGE_DIR={package}/", "package", "-o", str(settings))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(package)) == ["model.safetensors", "rescoring.yaml", "system10", "system2"]
    assert os.listdir(tmp_path).count("my package.tmp") == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_package_again_installs_nothing_and_a_changed_input_argument_or_package_installs_again(tmp_path):
    package = tmp_path / "pkg"
    install = (f"PACKAGE_DIR={package}", "package")
    done, calls = own_data(tmp_path, *install)
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["export", "lm build", "lm tune", "prepare", "train"]
    assert up_to_date(tmp_path, *install)
    done, calls = own_data(tmp_path, *install)
    assert done.returncode == 0 and calls == [], done.stderr
    done, calls = own_data(tmp_path, *install, "LM_WEIGHTS=1")  # a model tuned anew
    assert done.returncode == 0 and names(calls) == ["export", "lm tune"], done.stderr
    done, calls = own_data(tmp_path, "LM_WEIGHTS=1", f"PACKAGE_DIR={tmp_path / 'other'}", "package")
    assert done.returncode == 0 and names(calls) == ["export"], done.stderr  # another place
    done, calls = own_data(tmp_path, *install, "LM_WEIGHTS=1")  # back in the first
    assert done.returncode == 0 and names(calls) == ["export"], done.stderr
    # replaced since (another run's package, the checkout's own restored) or removed: installed again
    (package / "model.safetensors").write_text("another model")
    assert not up_to_date(tmp_path, *install, "LM_WEIGHTS=1")
    shutil.rmtree(package)
    done, calls = own_data(tmp_path, *install, "LM_WEIGHTS=1")
    assert done.returncode == 0 and names(calls) == ["export"] and (package / "model.safetensors").is_file()
    (tmp_path / "exp" / ".args" / "package").touch()  # the way to install it again anew (own_data README)
    assert "touch recipes/own_data/exp/small/.args/package" in (REPO_ROOT / "recipes/own_data/README.md").read_text()
    done, calls = own_data(tmp_path, *install, "LM_WEIGHTS=1")
    assert done.returncode == 0 and names(calls) == ["export"], done.stderr
    assert up_to_date(tmp_path, *install, "LM_WEIGHTS=1")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_package_stage_records_what_it_installed_where_stat_is_not_gnu_s(tmp_path):
    bsd = tmp_path / "bsd"  # macOS's stat has other options
    bsd.mkdir()
    (bsd / "stat").write_text("#!/bin/sh\necho 'stat: illegal option -- c' >&2\nexit 1\n")
    (bsd / "stat").chmod(0o755)
    install = (f"PACKAGE_DIR={tmp_path / 'pkg'}", "package", f"PATH={bsd}{os.pathsep}{os.environ['PATH']}")
    done, calls = own_data(tmp_path, *install)
    assert done.returncode == 0 and "export" in names(calls), done.stderr
    installed = (tmp_path / "pkg" / "model.safetensors").stat()
    assert (tmp_path / "exp" / "package.done").read_text().split() == [str(installed.st_size),
                                                                      str(installed.st_mtime_ns)]
    assert up_to_date(tmp_path, *install)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_package_again_retunes_no_rescoring_and_changed_rescoring_inputs_or_weights_do(tmp_path):
    install = (f"PACKAGE_DIR={tmp_path / 'pkg'}", "RNNLM=1", "package")
    done, calls = own_data(tmp_path, *install)
    assert done.returncode == 0, done.stderr
    assert names(calls).count("tune-rescoring") == 2  # the run's, and the package's as installed
    done, calls = own_data(tmp_path, *install)
    assert done.returncode == 0 and calls == [], done.stderr
    for change, redone in (("RESCORING_WEIGHTS=0,1", ["export", "tune-rescoring", "tune-rescoring"]),
                           ("RNNLM_OPTIONS=--halvings 0", ["export", "lm rnn", "tune-rescoring", "tune-rescoring"])):
        done, calls = own_data(tmp_path, *install, change)
        assert done.returncode == 0 and names(calls) == redone, (change, done.stderr)
    assert up_to_date(tmp_path, *install, "RNNLM_OPTIONS=--halvings 0")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_arguments_that_no_stage_of_the_target_uses_redo_nothing(tmp_path):
    own_data(tmp_path)
    for unused in ("RNNLM_OPTIONS=--halvings 0", "RESCORING_WEIGHTS=0,1", "COMBINE=other/pkg", "GPUS=2",
                   "PACKAGE_DIR=elsewhere", "FINETUNE_OVERRIDES=train.lr=1"):
        assert up_to_date(tmp_path, unused), unused


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_changed_lstm_lm_options_redo_the_lstm_lm_and_the_rescoring_but_not_training(tmp_path):
    done, calls = own_data(tmp_path, "RNNLM=1", "rescore")
    assert done.returncode == 0, done.stderr
    done, calls = own_data(tmp_path, "RNNLM=1", "RNNLM_OPTIONS=--halvings 0", "rescore")
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["evaluate", "lm rnn", "tune-rescoring"]
    assert "--halvings" in next(call for call in calls if call[0] == "lm rnn")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_killed_training_run_resumes_and_one_whose_arguments_changed_starts_anew(tmp_path):
    own_data(tmp_path, "train")
    checkpoint = tmp_path / "exp" / "last" / "train_state.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_text("")
    # killed: its checkpoint saved after its inputs and arguments, and no train.done
    now = time.time()
    for path, age in ((tmp_path / "data" / ".args" / "prepare", 90), (tmp_path / "data" / "train.jsonl", 60),
                      (tmp_path / "exp" / ".args" / "train", 60), (tmp_path / "exp" / ".args" / "config", 60),
                      (checkpoint, 30)):
        os.utime(path, (now - age, now - age))
    (tmp_path / "exp" / "train.done").unlink()
    done, calls = own_data(tmp_path, "train")
    assert done.returncode == 0 and [call[0] for call in calls] == ["train"] and "--resume" in calls[0]
    (tmp_path / "exp" / "train.done").unlink()  # killed again; then run with other arguments
    assert "--resume" not in own_data(tmp_path, "-n", "train", "OVERRIDES=model.cell=gru")[0].stdout
    done, calls = own_data(tmp_path, "train", "OVERRIDES=model.cell=gru")
    assert done.returncode == 0, done.stderr
    assert [call[0] for call in calls] == ["train"] and "--resume" not in calls[0]
    assert not checkpoint.exists()  # the other run's files went first, aside
    assert (tmp_path / "exp" / "replaced" / "last" / "train_state.pt").is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_n_after_a_touched_prepare_stamp_shows_a_finished_run_trained_anew_not_resumed(tmp_path):
    # make -n cannot know whether prepare will change the manifests: if it does, the run is trained
    # anew (as the dry run shows); if not, nothing after prepare runs
    own_data(tmp_path, "train")
    checkpoint = tmp_path / "exp" / "last" / "train_state.pt"  # a finished run's, saved before train.done
    checkpoint.parent.mkdir()
    checkpoint.write_text("")
    now = time.time()
    for path, age in ((tmp_path / "data" / ".args" / "prepare", 90), (tmp_path / "data" / "train.jsonl", 90),
                      (tmp_path / "exp" / ".args" / "train", 60), (tmp_path / "exp" / ".args" / "config", 60),
                      (checkpoint, 30), (tmp_path / "exp" / "train.done", 20)):
        os.utime(path, (now - age, now - age))
    (tmp_path / "data" / ".args" / "prepare").touch()
    plan = own_data(tmp_path, "-n", "train")[0].stdout
    assert 'prepare folder "x"' in plan and "train.output_dir=" in plan and "--resume" not in plan
    assert "mkdir " + str(tmp_path / "exp" / "replaced") in plan  # the finished run goes aside first
    done, calls = own_data(tmp_path, "train")
    assert done.returncode == 0 and names(calls) == ["prepare"], done.stderr
    assert checkpoint.is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_outputs_made_before_arguments_stamps_existed_are_kept_and_then_follow_their_arguments(tmp_path):
    own_data(tmp_path)
    for stamps in (tmp_path / "data" / ".args", tmp_path / "exp" / ".args", tmp_path / "exp" / "lm" / ".args"):
        shutil.rmtree(stamps)
    assert up_to_date(tmp_path) and not (tmp_path / "exp" / ".args").exists()  # a dry run writes nothing
    done, calls = own_data(tmp_path)
    assert done.returncode == 0 and calls == []
    assert f"train: {tmp_path / 'exp' / 'train.done'} predates arguments stamps" in done.stdout  # said once
    assert (tmp_path / "exp" / ".args" / "train").is_file()  # written, with an old time
    assert up_to_date(tmp_path)
    assert not up_to_date(tmp_path, "OVERRIDES=model.cell=gru")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_changed_arguments_of_the_run_redo_its_seed_runs(tmp_path):
    done, _ = own_data(tmp_path, "-j2", "SEEDS=7", "combine")  # the seed's sub-make beside the run's stages
    assert done.returncode == 0, done.stderr
    assert up_to_date(tmp_path, "SEEDS=7", "combine")
    done, calls = own_data(tmp_path, "-j2", "SEEDS=7", "EXTRA_OVERRIDES=train.lr=1e-3", "combine")
    assert done.returncode == 0, done.stderr
    assert "seeds: arguments changed, redoing" in done.stdout
    trained = [next(a for a in call if a.startswith("train.output_dir=")) for call in calls if call[0] == "train"]
    assert sorted(trained) == [f"train.output_dir={tmp_path / 'exp'}", f"train.output_dir={tmp_path / 'exp' / 'seed7'}"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("seeds", ["SEEDS=7", "PHONE_SEEDS=7"])
def test_an_edited_config_retrains_the_seed_runs_too(tmp_path, seeds):
    # the seeds' stamp holds the run's arguments, which name the config by its path alone
    config = tmp_path / "my.yaml"
    config.write_text((REPO_ROOT / "configs" / "small.yaml").read_text())
    done, _ = own_data(tmp_path, f"CONFIG={config}", seeds, "combine")
    assert done.returncode == 0, done.stderr
    config.write_text(config.read_text().replace("num_layers: 3", "num_layers: 4"))
    done, calls = own_data(tmp_path, f"CONFIG={config}", seeds, "combine")
    assert done.returncode == 0, done.stderr
    trained = [next(a for a in call if a.startswith("train.output_dir=")) for call in calls if call[0] == "train"]
    seed_dir = tmp_path / "exp" / seeds.replace("PHONE_SEEDS=", "phones").replace("SEEDS=", "seed")
    assert sorted(trained) == [f"train.output_dir={tmp_path / 'exp'}", f"train.output_dir={seed_dir}"]
    assert up_to_date(tmp_path, f"CONFIG={config}", seeds, "combine")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("seeds", ["SEEDS=7", "PHONE_SEEDS=7"])
def test_seed_runs_get_the_run_s_extra_overrides_exactly_quotes_and_dollars_included(tmp_path, seeds):
    extra = "EXTRA_OVERRIDES=a='b  c' l=\"m n\" d=$$HOME"  # quoted paths with spaces, as OVERRIDES may hold
    done, calls = own_data(tmp_path, seeds, extra, "combine")
    assert done.returncode == 0, done.stderr
    trains = {next(a for a in call if a.startswith("train.output_dir=")): call for call in calls if call[0] == "train"}
    run, seed = trains.pop(f"train.output_dir={tmp_path / 'exp'}"), next(iter(trains.values()))
    assert run[-3:] == ["a=b  c", "l=m n", f"d={os.environ['HOME']}"]
    assert seed[seed.index("a=b  c"):][:3] == run[-3:] and seed[-1] == "train.seed=7"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_moved_checkout_redoes_no_stage(spaced_checkout, tmp_path):
    # The stamps name the checkout's files by $(ROOT): the same run seen from another checkout
    # (here this one) is done.
    args = [f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}", "SRC=x", "VALID_SPEAKERS=1", "train"]
    done = subprocess.run(["make", "-C", str(spaced_checkout / "recipes" / "own_data"), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert subprocess.run(["make", "-q", "-C", str(REPO_ROOT / "recipes" / "own_data"), *args]).returncode == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_stage_that_fails_after_its_arguments_changed_is_redone_by_the_next_make(tmp_path):
    own_data(tmp_path)
    for program, command, change in (("lm", "lm tune", "LM_WEIGHTS=1"), ("train", "train", "OVERRIDES=model.cell=gru")):
        done, _ = own_data(tmp_path, change, fails=program)  # the stamp was rewritten, then the stage failed
        assert done.returncode != 0 and f"{program} failed" in done.stderr
        assert not up_to_date(tmp_path, change), command  # not taken as done with the new arguments
        done, calls = own_data(tmp_path, change)
        assert done.returncode == 0 and command in names(calls), command
        assert up_to_date(tmp_path, change)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_retraining_whose_overrides_are_refused_leaves_the_finished_run_and_its_stamp_as_they_were(tmp_path):
    own_data(tmp_path, "train")
    (tmp_path / "exp" / "best" / "model.safetensors").write_text("hours of training")
    done, calls = own_data(tmp_path, "train", "OVERRIDES=model.cel=gru", fails="train")  # a mistyped key
    assert done.returncode != 0 and "train failed" in done.stderr and "train" not in names(calls)
    assert (tmp_path / "exp" / "best" / "model.safetensors").read_text() == "hours of training"  # in place
    assert not (tmp_path / "exp" / "replaced").exists()
    # the typo taken back: nothing to redo (the stamp was put back with its time); it was moved aside and
    # trained again from scratch
    done, calls = own_data(tmp_path, "train")
    assert done.returncode == 0 and calls == [], done.stdout
    done, calls = own_data(tmp_path, "train", "OVERRIDES=model.cell=gru")  # a real change: trained anew
    assert done.returncode == 0 and "train" in names(calls), done.stderr
    assert (tmp_path / "exp" / "replaced" / "best" / "model.safetensors").read_text() == "hours of training"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_run_killed_before_its_first_epoch_ended_is_removed_but_files_of_one_s_own_stay(tmp_path):
    own_data(tmp_path, "train")
    shutil.rmtree(tmp_path / "exp" / "best")
    # what a run killed before its first epoch ended leaves: no model, so nothing worth putting aside
    (tmp_path / "exp" / "tb").mkdir()
    (tmp_path / "exp" / "log.jsonl").write_text("")
    (tmp_path / "exp" / "mine.log").write_text("a file of one's own")  # not the run's: not removed
    done, calls = own_data(tmp_path, "train", "OVERRIDES=model.cell=gru")
    assert done.returncode == 0 and "train" in names(calls), done.stderr
    assert not (tmp_path / "exp" / "replaced").exists() and not (tmp_path / "exp" / "tb").exists()
    assert (tmp_path / "exp" / "mine.log").read_text() == "a file of one's own"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_run_killed_before_arguments_stamps_existed_is_resumed_not_replaced(tmp_path):
    own_data(tmp_path, "train")
    checkpoint = tmp_path / "exp" / "last" / "train_state.pt"  # killed: a checkpoint and no train.done
    checkpoint.parent.mkdir()
    checkpoint.write_text("")
    (tmp_path / "exp" / "train.done").unlink()
    for stamps in (tmp_path / "data" / ".args", tmp_path / "exp" / ".args"):
        shutil.rmtree(stamps)
    done, calls = own_data(tmp_path, "train")
    assert done.returncode == 0, done.stderr
    assert [call[0] for call in calls] == ["train"] and "--resume" in calls[0]
    assert checkpoint.is_file() and up_to_date(tmp_path, "train")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("setting", ["EXP=", "EXP=/", "DATA=", "EXP=exp/*", "EXP=exp/run?", "EXP=exp/[ab]"])
def test_a_data_or_exp_that_is_empty_the_root_or_a_pattern_is_refused_before_anything_runs(tmp_path, setting):
    # training moves the old run's files aside by their paths under EXP: a pattern there would
    # match other runs' folders too
    done, calls = own_data(tmp_path, setting)
    assert done.returncode != 0 and calls == []
    assert f'{setting.split("=")[0]}="' in done.stderr  # names the variable
    assert len([line for line in done.stderr.splitlines() if "***" in line]) == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("setting, said", [("RNNLM=no", 'RNNLM="no": give 0 or 1'),
                                           ("GENERIC_LM=true", 'GENERIC_LM="true": give 0 or 1'),
                                           ("SEEDS=7 x", 'SEEDS/PHONE_SEEDS "x": a seed is a whole number')])
def test_a_switch_that_is_not_0_or_1_or_a_seed_that_is_no_number_is_refused_before_anything_runs(tmp_path,
                                                                                                setting, said):
    # "no" kept the LSTM LM on (filter-out 0) and "true" left the generic LM out (filter 1); a word for a
    # seed failed in the seed's own make, after the whole run had trained
    done, calls = own_data(tmp_path, setting)
    assert done.returncode != 0 and calls == [] and said in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("version", ["3.81", "4.1"])
def test_a_make_older_than_4_2_is_refused_with_the_version_it_needs(tmp_path, version):
    # make 3.81 reads no stamp ($(file <) is 4.2's): it would retrain at every run
    done, calls = own_data(tmp_path, f"MAKE_VERSION={version}")
    assert done.returncode != 0 and calls == []
    assert f"GNU make {version} is too old" in done.stderr and "4.2 or newer" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_arguments_with_quotes_spaces_dollars_hashes_percents_and_commas_are_kept_exactly(tmp_path):
    source = "SRC=my recordings/it's"  # a path with a space and a quote
    tricky = "OVERRIDES=a='b c' d=$$HOME e=f#g h=100% i=j,k l=\"m\""
    done, calls = own_data(tmp_path, source, tricky)
    assert done.returncode == 0, done.stderr
    assert "my recordings/it's" in calls[0] and "a=b c" in calls[1]  # as the shell gave them
    assert "a='b c' d=$HOME e=f#g h=100% i=j,k l=\"m\"" in (tmp_path / "exp" / ".args" / "train").read_text()
    assert up_to_date(tmp_path, source, tricky)
    assert not up_to_date(tmp_path, source, tricky.replace("100%", "10%"))
    assert not up_to_date(tmp_path, "SRC=my recordings/its", tricky)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_trailing_slash_on_data_or_exp_redoes_no_stage(tmp_path):
    own_data(tmp_path)  # then the same folders as a shell's completion gives them
    assert up_to_date(tmp_path, f"DATA={tmp_path / 'data'}/", f"EXP={tmp_path / 'exp'}/")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_t_records_the_arguments_of_the_stages_it_takes_as_done(tmp_path):
    # make -t touches targets instead of running them: a touched stamp would keep the old
    # arguments (or, made anew, none), and the next make would redo what -t took as done.
    own_data(tmp_path)
    done, calls = own_data(tmp_path, "-t", "OVERRIDES=model.cell=gru")
    assert done.returncode == 0 and calls == [], done.stderr
    assert "model.cell=gru" in (tmp_path / "exp" / ".args" / "train").read_text()
    assert up_to_date(tmp_path, "OVERRIDES=model.cell=gru") and not up_to_date(tmp_path)
    fresh = tmp_path / "fresh"  # nothing made yet (make -t makes no folder): the stamps -t makes hold
    for folder in ("data", "exp/best", "exp/lm"):  # what a real run writes
        (fresh / folder).mkdir(parents=True)
    done, calls = own_data(fresh, "-t", "OVERRIDES=model.cell=gru")
    assert done.returncode == 0 and calls == [], done.stderr
    assert up_to_date(fresh, "OVERRIDES=model.cell=gru") and not up_to_date(fresh)
    for stamp in ("data/.args/prepare", "exp/.args/train", "exp/.args/tune", "exp/lm/.args/words_4gram"):
        made = (fresh / stamp).read_text()
        assert made and made == (tmp_path / stamp).read_text().replace(str(tmp_path), str(fresh)), stamp


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_n_and_make_q_write_no_stamp(tmp_path):
    for flag in ("-n", "-q", "-nt"):
        done, calls = own_data(tmp_path, flag)
        assert calls == [] and not (tmp_path / "exp").exists() and not (tmp_path / "data").exists(), flag


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_only_whole_paths_under_the_checkout_are_written_root_in_a_stamp(tmp_path):
    # /work/main2/x and /mnt/work/main/x are not in the checkout /work/main: written $(ROOT)2/x or
    # /mnt$(ROOT)/x, another checkout's twin folder would be taken for them
    root = str(REPO_ROOT)
    overrides = (f"OVERRIDES=a={root}2/x b=/mnt{root}/y c={root}/z d={root} e='{root}' "
                 f"f={root},cmudict g={root}/{root.lstrip('/')}/w h={root}x")
    done, _ = own_data(tmp_path, "train", overrides)
    assert done.returncode == 0, done.stderr
    stamp = (tmp_path / "exp" / ".args" / "train").read_text()
    assert (f"a={root}2/x b=/mnt{root}/y c=$(ROOT)/z d=$(ROOT) e='$(ROOT)' f=$(ROOT),cmudict "
            f"g=$(ROOT)/{root.lstrip('/')}/w h={root}x\n") in stamp
    assert stamp.startswith('"$(ROOT)/configs/small.yaml" train.')


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_checkout_s_twin_folder_is_not_taken_for_the_moved_checkout_s(spaced_checkout, tmp_path):
    # the same run from the checkout "check out" with a file of "check out2", then from this one
    # with this one's twin: other files, trained again
    args = [f"DATA={tmp_path / 'data'}", f"EXP={tmp_path / 'exp'}", "SRC=x", "VALID_SPEAKERS=1", "train"]
    done = subprocess.run(["make", "-C", str(spaced_checkout / "recipes" / "own_data"), *args,
                           f"OVERRIDES=train.phone_lexicon={spaced_checkout}2/lexicon.txt"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert subprocess.run(["make", "-q", "-C", str(REPO_ROOT / "recipes" / "own_data"), *args,
                           f"OVERRIDES=train.phone_lexicon={REPO_ROOT}2/lexicon.txt"]).returncode == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_an_lm_outside_exp_is_used_as_given_with_no_stamp_beside_it(tmp_path):
    # (a seed's run is given its parent run's LM so: the parent makes it, and the seeds, in parallel,
    # must not make it again)
    mine = tmp_path / "elsewhere" / "mine.arpa"
    mine.parent.mkdir()
    mine.write_text("")
    os.utime(mine, (time.time() - 3600, time.time() - 3600))  # older than the train transcripts
    done, calls = own_data(tmp_path, f"LM={mine}")
    assert done.returncode == 0, done.stderr
    assert names(calls) == ["evaluate", "evaluate", "lm tune", "prepare", "train"]
    tune = next(call for call in calls if call[0] == "lm tune")
    assert tune[tune.index("--lm") + 1] == str(mine) and mine.read_text() == ""
    assert os.listdir(mine.parent) == ["mine.arpa"] and up_to_date(tmp_path, f"LM={mine}")
    done, calls = own_data(tmp_path, f"LM={tmp_path / 'none.arpa'}")
    assert done.returncode != 0 and calls == []
    assert f"LM={tmp_path / 'none.arpa'}: no such file" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_touching_a_stage_s_stamp_redoes_the_stage_and_its_training_anew(tmp_path):
    # The stamps compare arguments word by word (common.mk): a change of spacing inside a quoted
    # argument is redone so.
    own_data(tmp_path, "train")
    checkpoint = tmp_path / "exp" / "last" / "train_state.pt"  # a finished run's
    checkpoint.parent.mkdir()
    checkpoint.write_text("")
    os.utime(checkpoint, (time.time() - 30, time.time() - 30))
    (tmp_path / "exp" / ".args" / "train").touch()
    done, calls = own_data(tmp_path, "train")
    assert done.returncode == 0, done.stderr
    assert [call[0] for call in calls] == ["train"] and "--resume" not in calls[0]
    assert (tmp_path / "exp" / "replaced" / "last" / "train_state.pt").is_file()
    assert up_to_date(tmp_path, "train")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_files_the_recipes_move_aside_before_a_new_training_run_are_those_asr_train_writes(tmp_path):
    from asr.train_setup import RUN_FILES
    done = subprocess.run(["make", "-s", "-C", str(REPO_ROOT / "recipes/own_data"), f"DATA={tmp_path / 'data'}",
                           f"EXP={tmp_path / 'exp'}", "--eval=run-files: ; @echo $(TRAIN_RUN_FILES)", "run-files"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted([*RUN_FILES, "tb"])  # tb: its TensorBoard log (asr/train.py)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_run_trained_anew_takes_the_old_model_s_scores_aside_with_it(tmp_path):
    # a set no longer scored (valid, once TEST_SRC is given) must not sit in EXP beside the new model's
    own_data(tmp_path)
    old = ["valid.json", "valid.log", "valid_lm.json", "valid_lm.log"]
    assert all((tmp_path / "exp" / name).is_file() for name in old)
    retrained = ("TEST_SRC=t", "OVERRIDES=model.cell=gru")  # trained anew, scored on test
    done, calls = own_data(tmp_path, *retrained)
    assert done.returncode == 0, done.stderr
    assert "train" in names(calls) and (tmp_path / "exp" / "test_lm.json").is_file()
    assert not any((tmp_path / "exp" / name).exists() for name in old)
    assert all((tmp_path / "exp" / "replaced" / name).is_file() for name in old)
    assert (tmp_path / "exp" / "lm").is_dir()  # the LM is no run's: it stays
    assert up_to_date(tmp_path, *retrained)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_two_ways_of_choosing_the_valid_set_are_refused_naming_the_recipe_s_variables(tmp_path):
    done, calls = own_data(tmp_path, "VALID_FRACTION=0.1")  # beside own_data's VALID_SPEAKERS=1
    assert done.returncode != 0 and calls == []
    assert "only one of VALID_SPEAKERS" in done.stderr and "VALID_FRACTION" in done.stderr
