"""The Python API as a user calls it: options for one call, how a call runs, threads sharing a
model, and which arrays count as audio."""

import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import asr
from asr.audio import AudioError, prepare_array
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.cli import main
from asr.decoding import GreedyDecoder
from asr.decoding_config import package_lm
from asr.lm import build_lm
from asr.model_dir import load_model_dir
from asr.segmenter import SegmenterOptions
from asr.transcribe import Transcriber
from conftest import syllabic_tone

RATE = 16000


def tone(seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return syllabic_tone(seconds, RATE, 300.0, amplitude)


@pytest.fixture(scope="module")
def packaged(tiny_model_dir, tmp_path_factory):
    """The tiny model with a packaged word LM: loaded with decoder "auto", it searches with it."""
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "text.txt").write_text("hello world\nhello hello world\nworld hello\n")
    lm = build_lm([tmp / "text.txt"], tmp / "hw.arpa", order=2, use_lmplz=False)[0]
    model = tmp / "model"
    shutil.copytree(tiny_model_dir, model)
    package_lm(model, lm, load_model_dir(model).tokenizer)
    return model


@pytest.fixture
def searches(monkeypatch):
    """Every decoder run, as (class name, utterances in the batch, worker processes)."""
    runs = []
    for cls in (GreedyDecoder, BeamSearchDecoder):
        def spy(self, log_probs, lengths, _original=cls.decode_nbest):
            runs.append((type(self).__name__, log_probs.shape[0], getattr(self, "workers", 1)))
            return _original(self, log_probs, lengths)
        monkeypatch.setattr(cls, "decode_nbest", spy)
    return runs


# -- run options: how a call runs, never which decoder runs --------------------------------------

@pytest.mark.parametrize("run", [{"workers": 1}, {"workers": 2}, {"batch_size": 2}, {"workers": 2, "batch_size": 1}])
def test_run_options_on_a_call_keep_a_greedy_model_greedy_though_its_package_has_an_lm(packaged, searches, run):
    model = asr.load_model(packaged, decoder="greedy", device="cpu")
    model.transcribe(tone(), RATE, **run)
    assert searches and {name for name, _, _ in searches} == {"GreedyDecoder"}


def test_workers_on_a_call_spread_that_call_s_beam_search_and_leave_the_model_s_own(packaged, searches):
    model = asr.load_model(packaged, device="cpu")  # auto: beam search with the packaged LM, in one process
    model.transcribe(tone(), RATE, workers=2)
    assert [(name, workers) for name, _, workers in searches] == [("BeamSearchDecoder", 2)]
    assert model.decoder.workers == 1 and model.decoder.space.kenlm is not None


def test_batch_size_on_a_call_sets_that_call_s_batches_and_leaves_the_model_s_own(tiny_model_dir, searches):
    model = Transcriber(load_model_dir(tiny_model_dir), "greedy", device="cpu",
                        segmenter=SegmenterOptions(max_seconds=1.0, min_seconds=0.5))
    model.transcribe(tone(4.5), RATE, batch_size=2)
    segments = sum(batch for _, batch, _ in searches)
    assert segments >= 3 and all(batch <= 2 for _, batch, _ in searches) and model.batch_size == 16
    searches.clear()
    model.transcribe(tone(4.5), RATE)
    assert [batch for _, batch, _ in searches] == [segments]  # the model's 16: one batch


@pytest.mark.parametrize("name, value", [("batch_size", 0), ("batch_size", -1), ("workers", 0), ("workers", -3),
                                         ("batch_size", 2.5), ("workers", True)])
def test_run_options_that_are_not_counts_of_at_least_one_are_refused_by_name(tiny_model_dir, name, value):
    message = re.escape(f"{name} must be a whole number of at least 1, got {value!r}")
    with pytest.raises(ValueError, match=message):
        asr.load_model(tiny_model_dir, device="cpu", **{name: value})
    model = asr.load_model(tiny_model_dir, device="cpu")
    with pytest.raises(ValueError, match=message):
        model.transcribe(tone(), RATE, **{name: value})


# -- threads sharing one model -------------------------------------------------------------------

class Recording(GreedyDecoder):
    """Greedy decoding that notes (thread, label) for each search; a thread named in ``holds``
    waits inside its search, after setting its ``inside`` event, until its ``release`` is set."""

    def __init__(self, tokenizer, label, used, holds=None):
        super().__init__(tokenizer)
        self.label, self.used, self.holds = label, used, holds or {}

    def decode(self, log_probs, lengths):
        name = threading.current_thread().name
        self.used.append((name, self.label))
        if name in self.holds:
            inside, release = self.holds[name]
            inside.set()
            assert release.wait(30)
        return super().decode(log_probs, lengths)


def _thread(name, target):
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def test_a_decoder_given_to_one_call_is_not_what_another_thread_s_call_runs(tiny_model_dir):
    used, inside, release = [], threading.Event(), threading.Event()
    tokenizer = load_model_dir(tiny_model_dir).tokenizer
    default = Recording(tokenizer, "default", used)
    model = Transcriber(load_model_dir(tiny_model_dir), default, device="cpu")
    own = Recording(tokenizer, "own", used, holds={"B": (inside, release)})
    b = _thread("B", lambda: model.transcribe(tone(), RATE, decoder=own))
    assert inside.wait(30)  # B's call is in its search ...
    model.transcribe(tone(), RATE)  # ... while this one runs
    release.set()
    b.join(30)
    assert sorted(used) == [("B", "own"), ("MainThread", "default")] and model.decoder is default


def test_overlapping_calls_with_decoders_of_their_own_leave_the_model_s_default(tiny_model_dir):
    used = []
    events = {name: (threading.Event(), threading.Event()) for name in "AB"}
    tokenizer = load_model_dir(tiny_model_dir).tokenizer
    default = Recording(tokenizer, "default", used)
    model = Transcriber(load_model_dir(tiny_model_dir), default, device="cpu")
    threads = {}
    for name in "AB":  # A's call starts, then B's; A's ends first
        own = Recording(tokenizer, name, used, holds=events)
        threads[name] = _thread(name, lambda own=own: model.transcribe(tone(), RATE, decoder=own))
        assert events[name][0].wait(30)
    for name in "AB":
        events[name][1].set()
        threads[name].join(30)
    assert model.decoder is default and {label for _, label in used} == {"A", "B"}
    model.transcribe(tone(), RATE)
    assert used[-1] == ("MainThread", "default")


# -- what counts as audio ------------------------------------------------------------------------

def test_a_list_of_clips_is_refused_one_at_a_time_not_mixed_into_one(tiny_model_dir):
    model = asr.load_model(tiny_model_dir, device="cpu")
    x, y = tone(1.0), tone(1.0, amplitude=0.2)
    for clips in ([x, y], (x, y), [torch.from_numpy(x), torch.from_numpy(y)], [x, y[:-5]],
                  [x.tolist(), y[:-5].tolist()]):
        with pytest.raises(AudioError, match=r"<array>: expected one clip, got .*: one at a time"):
            model.transcribe(clips, RATE)


@pytest.mark.parametrize("convert", [lambda x: x.astype(np.int64), lambda x: x.tolist(),
                                     lambda x: torch.from_numpy(x).long(), lambda x: x.astype(np.uint64)],
                         ids=["int64", "list of ints", "torch.long", "uint64"])
def test_int64_samples_which_no_pcm_format_has_are_refused_naming_their_type(convert):
    pcm = (tone() * 32767).astype(np.int16)
    with pytest.raises(AudioError, match=r"<array>: u?int64 samples: no PCM format has them .* give 16-bit PCM as "
                                         r"int16"):
        prepare_array(convert(pcm), RATE, RATE)


def test_int32_samples_are_32_bit_pcm_so_16_bit_pcm_widened_to_int32_is_heard_as_near_silence():
    pcm = (tone() * 32767).astype(np.int16)
    as16 = prepare_array(pcm, RATE, RATE)
    assert torch.allclose(prepare_array(pcm.astype(np.int32) << 16, RATE, RATE), as16)
    assert prepare_array(pcm.astype(np.int32), RATE, RATE).abs().max() < 1e-4  # no rule tells it from quiet audio
    assert not prepare_array(np.zeros(RATE, dtype=np.int32), RATE, RATE).any()  # digital silence is silence


def test_a_sample_rate_given_with_a_file_is_refused_for_the_file_has_its_own(tiny_model_dir, tmp_path):
    import soundfile as sf

    sf.write(str(tmp_path / "a.wav"), tone(), RATE)
    with pytest.raises(AudioError, match=re.escape(f"{tmp_path / 'a.wav'}: sample_rate=8000 is for arrays")):
        asr.load_model(tiny_model_dir, device="cpu").transcribe(str(tmp_path / "a.wav"), sample_rate=8000)


def test_a_model_config_yaml_that_is_not_yaml_is_refused_naming_file_line_and_column(tiny_model_dir, tmp_path):
    from asr.model_dir import ModelDirError

    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    (model / "config.yaml").write_text("model:\n  cell: [lstm\n  num_layers: 1\n")
    with pytest.raises(ModelDirError) as error:
        asr.load_model(model, device="cpu")
    assert str(error.value) == (f"{model / 'config.yaml'}:3:13: expected ',' or ']', but got ':' "
                                "(while parsing a flow sequence at 2:9)")


def test_a_model_its_user_casts_to_half_precision_still_transcribes_as_in_float32():
    import soundfile as sf

    model = asr.load_model(decoder="greedy", device="cpu")
    audio, rate = sf.read(str(Path(__file__).parent.parent / "examples" / "speechocean762_000030012.flac"))
    want = model.transcribe(audio, rate).text
    for dtype in (torch.float16, torch.bfloat16):
        model.model.to(dtype)
        assert model.transcribe(audio, rate).text == want != ""


def test_a_model_its_user_left_in_training_mode_transcribes_without_dropout_and_stays_in_training_mode():
    # a notebook fine-tunes (model.train()) and transcribes between steps: the same text each
    # time, as in eval mode, and its training goes on with the mode it had
    import soundfile as sf

    model = asr.load_model(decoder="greedy", device="cpu")
    audio, rate = sf.read(str(Path(__file__).parent.parent / "examples" / "speechocean762_000030012.flac"))
    want = model.transcribe(audio, rate).text
    model.model.train()
    torch.manual_seed(0)
    assert [model.transcribe(audio, rate).text for _ in range(3)] == [want] * 3
    assert model.model.training


def test_threads_sharing_a_model_in_training_mode_each_run_in_eval_mode_and_leave_it_as_it_was():
    model = asr.load_model(decoder="greedy", device="cpu")
    waves = [torch.from_numpy(tone(1.0))]
    want = model.log_probs(waves)[0]
    model.model.train()
    kept_apart = next(m for m in model.model.modules() if isinstance(m, torch.nn.Dropout))
    kept_apart.eval()  # the user's own mix of modes
    # A's forward starts, B's call starts, A's call ends (and would restore the mode), then B's forward runs
    a_started, a_returned = threading.Event(), threading.Event()

    def hook(module, args):
        if threading.current_thread().name == "A":
            a_started.set()
        else:
            assert a_returned.wait(10)

    model.model.register_forward_pre_hook(hook)
    outputs = {}

    def call(name):
        outputs[name] = model.log_probs(waves)[0]
        if name == "A":
            a_returned.set()

    b = threading.Thread(target=call, args=("B",), name="B")
    a = threading.Thread(target=call, args=("A",), name="A")
    a.start()
    assert a_started.wait(10)
    b.start()
    a.join(20)
    b.join(20)
    assert set(outputs) == {"A", "B"} and all(torch.equal(out, want) for out in outputs.values())
    assert model.model.training and not kept_apart.training


def test_a_model_its_user_moved_to_another_device_runs_there():
    model = asr.load_model(decoder="greedy", device="cpu")
    model.model.to("meta")  # a device with no data: the batch must follow the weights there
    with pytest.raises(NotImplementedError, match="meta"):
        model.log_probs([torch.zeros(16000)])


# -- naming what there is ------------------------------------------------------------------------

def test_decoder_none_or_lm_none_loads_as_the_default_auto_does_with_the_package_s_rescoring(monkeypatch):
    # None means "the default" everywhere else (a call's decoder=None: the model's own)
    loads = []
    monkeypatch.setattr("asr.rescoring_files.load_rescoring",
                        lambda settings, load_system: loads.append(Path(settings).name) or "rescores")
    assert asr.load_model(decoder="auto", device="cpu") == asr.load_model(decoder=None, device="cpu") == "rescores"
    assert asr.load_model(lm=None, device="cpu") == "rescores"
    assert loads == ["rescoring.yaml"] * 3


def test_an_unknown_decoder_is_refused_naming_every_one_there_is(tiny_model_dir):
    with pytest.raises(ValueError, match=re.escape("unknown decoder 'foo'; available: auto, greedy, beam")):
        asr.load_model(tiny_model_dir, decoder="foo", device="cpu")
    with pytest.raises(ValueError, match="available: auto, greedy, beam"):
        asr.load_model(tiny_model_dir, device="cpu").transcribe(tone(), RATE, decoder="foo")


def test_asr_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"asr {asr.__version__}\n"


def test_transcribe_s_help_states_the_batch_and_beam_size_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "per model run (default 16)" in help_text
    assert f"default: MODEL/decoding.yaml's with an LM, else {BeamSearchOptions.beam_size})" in help_text
