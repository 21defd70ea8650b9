"""Reading audio: any libsndfile format, mono, the model's rate; clear errors for bad files."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError, audio_info, load_audio, prepare_array
from conftest import write_sine


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".flac", None), (".ogg", "VORBIS")])
def test_reads_common_formats_as_float_mono(tmp_path, suffix, subtype):
    path = write_sine(tmp_path / f"a{suffix}", seconds=0.5, subtype=subtype)
    wave = load_audio(path, 16000)
    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert wave.numel() == pytest.approx(8000, abs=200)


def test_stereo_is_averaged_to_mono(tmp_path):
    left = np.full(1600, 0.5, dtype=np.float32)
    sf.write(str(tmp_path / "s.wav"), np.stack([left, -left * 0.2], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(tmp_path / "s.wav", 16000)
    assert torch.allclose(wave, torch.full((1600,), 0.2))


def test_channels_that_cancel_in_the_mono_mix_are_warned_of_by_every_reader(tmp_path, capsys):
    # one channel wired out of phase: the mix is silence, and was transcribed as "no sound" without a word
    from asr.inputs import stream_audio

    tone = 0.5 * np.sin(np.arange(8000) / 5.0).astype(np.float32)
    sf.write(str(tmp_path / "anti.wav"), np.stack([tone, -tone], axis=1), 16000, subtype="FLOAT")
    sf.write(str(tmp_path / "half.wav"), np.stack([tone, 0 * tone], axis=1), 16000, subtype="FLOAT")
    for read in (lambda p: load_audio(p, 16000), lambda p: list(stream_audio(str(p), 16000))):
        read(tmp_path / "anti.wav")
        read(tmp_path / "half.wav")  # a silent channel is no cancelling: the mix is 6 dB down
    err = capsys.readouterr().err
    assert err == (f"asr: warning: {tmp_path / 'anti.wav'}: its channels cancel when mixed to mono (one out of "
                   "phase?): the mix is 30 dB or more below them; transcribe one channel (e.g. sox IN OUT remix 1)\n")


def test_8khz_audio_is_resampled_to_the_model_rate(tmp_path):
    path = write_sine(tmp_path / "n.wav", seconds=1.0, sample_rate=8000, freq=300)
    wave = load_audio(path, 16000)
    assert wave.numel() == 16000
    spectrum = torch.fft.rfft(wave).abs()
    assert int(spectrum.argmax()) == pytest.approx(300, abs=2)  # 1 Hz bins: the tone kept its pitch


def test_audio_info_reports_duration_without_decoding(tmp_path):
    info = audio_info(write_sine(tmp_path / "a.flac", seconds=1.25, sample_rate=22050, channels=2))
    assert (info.sample_rate, info.channels) == (22050, 2)
    assert info.duration == pytest.approx(1.25, abs=1e-3)


@pytest.mark.parametrize("make,problem", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "not readable as audio"),
    (lambda p: p.mkdir(), "directory"),
])
def test_bad_files_raise_an_error_naming_the_file_and_the_problem(tmp_path, make, problem):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=problem) as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac"])
def test_a_0_byte_file_is_called_empty_not_unreadable_or_a_pipe(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    path.write_bytes(b"")  # a truncated download or copy
    with pytest.raises(AudioError, match=r"empty file \(0 bytes\)") as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value) and "pipe" not in str(err.value)


def test_a_zero_length_file_and_nan_samples_are_errors(tmp_path):
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav", 16000)
    data = np.zeros(100, dtype=np.float32)
    data[10] = np.nan
    sf.write(str(tmp_path / "nan.wav"), data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav", 16000)


@pytest.mark.parametrize("empty", [np.zeros(0, dtype=np.float32), torch.zeros(0), np.zeros((0, 2), dtype=np.int16),
                                   torch.zeros(2, 0)])
def test_an_empty_array_of_any_layout_is_an_error_saying_it_is_empty(empty):
    # transcribe(array) reads arrays through prepare_array; an empty 2-D one was averaged to NaN
    # samples and called "NaN or infinite"
    with pytest.raises(AudioError, match=r"^clip: audio is empty \(0 samples\)$"):
        prepare_array(empty, 16000, 16000, name="clip")


def test_arrays_are_accepted_in_either_channel_layout_and_resampled():
    stereo = np.zeros((2, 4410), dtype=np.float32)  # torchaudio layout (channels, samples)
    assert prepare_array(stereo, 44100, 16000).numel() == 1600
    assert prepare_array(torch.zeros(16000), None, 16000).numel() == 16000
    with pytest.raises(AudioError, match="1-D or 2-D"):
        prepare_array(np.zeros((1, 2, 3)), 16000, 16000)


def test_a_bfloat16_tensor_is_read_as_float32():
    tone = torch.sin(torch.arange(1600) / 10.0) * 0.5
    wave = prepare_array(tone.to(torch.bfloat16), 16000, 16000)
    assert wave.dtype == torch.float32 and torch.equal(wave, tone.to(torch.bfloat16).float())


@pytest.mark.parametrize("rate", [1, 999, 384_001, 10**9])
def test_an_implausible_sample_rate_is_refused_before_resampling(rate):
    with pytest.raises(AudioError, match=rf"<array>: sample_rate {rate} Hz is not an audio rate \(1000\.\.384000 Hz"):
        prepare_array(np.zeros(16000, dtype=np.float32), rate, 16000)


def test_a_pipes_header_is_not_read_ahead(tmp_path):
    # a header read from a pipe is gone for the reader after it (asr transcribe <(sox ...))
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    raised = []
    probe = threading.Thread(target=lambda: pytest.raises(AudioError, audio_info, fifo) and raised.append(1),
                             daemon=True)
    probe.start()
    probe.join(timeout=5)
    if probe.is_alive():  # waiting for a writer: give it an empty one, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("audio_info opened the pipe to read its header")
    assert raised
    with pytest.raises(AudioError, match="pipe: a pipe or device, not a file"):
        audio_info(fifo)


def test_int32_samples_are_32_bit_pcm_however_quiet_as_the_same_file_read_by_path(tmp_path):
    # a silent passage exported with +-1 LSB of TPDF dither, as a DAW writes one; soundfile gives 24-bit as int32
    rng = np.random.default_rng(0)
    dither = (rng.integers(-1, 2, 16000) + rng.integers(-1, 2, 16000)) / 2 ** 23
    sf.write(str(tmp_path / "dither24.wav"), dither, 16000, subtype="PCM_24")
    as_int32, _ = sf.read(str(tmp_path / "dither24.wav"), dtype="int32")
    assert 0 < np.abs(as_int32).max() <= 2 ** 15  # near-silence looks like widened 16-bit PCM, and is not
    assert torch.equal(prepare_array(as_int32, 16000, 16000), load_audio(tmp_path / "dither24.wav", 16000))


def test_a_0_byte_file_is_called_empty_by_the_header_check_too(tmp_path):
    from asr.audio import audio_info

    for suffix in (".wav", ".mp3"):
        empty = tmp_path / f"empty{suffix}"
        empty.write_bytes(b"")
        with pytest.raises(AudioError, match=r"empty file \(0 bytes\)"):
            audio_info(empty)


def test_a_file_whose_name_is_not_utf8_is_read_by_every_reader(tmp_path):
    from asr.inputs import duration_of, stream_audio

    # a Latin-1 name, as Python lists it: the byte 0xe9 as a surrogate escape
    name = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.wav")
    sf.write(os.fsencode(name), np.full(8000, 0.25, dtype=np.float32), 16000, subtype="FLOAT")
    assert load_audio(name, 16000).numel() == 8000
    assert audio_info(name).duration == pytest.approx(0.5)
    assert duration_of(name) == pytest.approx(0.5)
    assert sum(len(block) for block in stream_audio(name, 16000)) == 8000


def test_a_read_only_array_such_as_a_memory_map_is_taken_without_torchs_not_writable_warning():
    import warnings

    samples = np.frombuffer((0.1 * np.ones(1600, np.float32)).tobytes(), np.float32)  # read-only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wave = prepare_array(samples, 16000, 16000)
    assert torch.allclose(wave, torch.full((1600,), 0.1))
    assert not samples.flags.writeable


def _float_wav(path, peak):
    tone = np.sin(np.arange(4000) / 5.0).astype(np.float32)
    sf.write(str(path), tone * np.float32(peak), 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("peak", [1e19, 6.5e29])
def test_float_samples_far_beyond_full_scale_are_refused_by_every_reader(tmp_path, peak):
    # a damaged float WAV: finite, but its features overflow to inf, and one such file made the
    # corpus's feature statistics (every training batch's loss) and asr priors' priors NaN
    from asr.inputs import stream_audio

    path = _float_wav(tmp_path / "damaged.wav", peak)
    expected = rf"damaged\.wav: audio has samples of magnitude .*e\+\d+, far beyond full scale"
    with pytest.raises(AudioError, match=expected):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match=expected):
        list(stream_audio(str(path), 16000))
    with pytest.raises(AudioError, match=r"<array>: audio has samples of magnitude"):
        prepare_array(np.full(100, peak, dtype=np.float32), 16000, 16000)


def test_a_float_file_holding_integer_pcm_values_is_still_audio_read_with_a_warning(tmp_path, capsys):
    from asr.inputs import stream_audio

    for peak in (32767.0, 2.0 ** 31):  # 16-bit and 32-bit PCM values written as floats
        path = _float_wav(tmp_path / f"loud{peak:.0f}.wav", peak)
        wave = load_audio(path, 16000)
        assert float(wave.abs().max()) == pytest.approx(peak, rel=1e-3)
        list(stream_audio(str(path), 16000))  # as transcribe reads a long file: the same line, said once
        assert capsys.readouterr().err == (f"asr: warning: {path}: samples beyond 2 times full scale (1.0): float "
                                           "audio at the wrong scale? It is read as it is, and may transcribe worse "
                                           "than the same audio scaled to -1..1\n")
    load_audio(_float_wav(tmp_path / "hot.wav", 1.5), 16000)  # a float file a little over full scale is usual
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("content", [b"\x00\x01" * 2500, b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\x00" * 40])
def test_an_mp3_with_no_frame_to_decode_is_called_so_not_missing_or_a_pipe(tmp_path, content):
    path = tmp_path / "clip.mp3"
    path.write_bytes(content)  # random bytes named .mp3, or an MP3 cut off inside its ID3 tag
    for read in (lambda: load_audio(path, 16000), lambda: audio_info(path)):
        with pytest.raises(AudioError) as err:
            read()
        assert str(err.value) == (f"{path}: not readable as audio (no MPEG audio frame could be decoded in it: "
                                  "cut short, damaged, or not an MP3)")


def test_audio_info_calls_a_folder_a_folder(tmp_path):
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(AudioError, match=r"x\.wav: is a directory, not an audio file"):
        audio_info(tmp_path / "x.wav")
