"""The shared device helpers on their own: device lookup over made-up device lists, and
the open-stream registry against a stand-in for sounddevice (re-initialising the real
PortAudio here would probe the machine's devices; test_capture and test_playback use the
real ones)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lorawhisper_app.core import audio_devices
from lorawhisper_app.core.audio_devices import (
    AudioDevice,
    error_reason,
    match_device,
    refresh_devices,
    register_stream,
    unregister_stream,
)
from lorawhisper_app.core.errors import LoraWhisperError


class CallerError(LoraWhisperError):
    """The caller's own error class."""


DEVICES = [
    AudioDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 48000.0, False),
    AudioDevice(3, "pulse", 32, 44100.0, False),
    AudioDevice(4, "pulse monitor", 2, 44100.0, False),
    AudioDevice(7, "default", 32, 44100.0, True),
]


def match(spec: str | int | None, devices: list[AudioDevice] = DEVICES) -> AudioDevice:
    return match_device(devices, spec, "input", CallerError)


def test_describe_marks_the_default() -> None:
    assert DEVICES[1].describe() == "[3] pulse"
    assert DEVICES[3].describe() == "[7] default (default)"


def test_none_is_the_default_device_else_the_first() -> None:
    assert match(None) == DEVICES[3]
    assert match(None, DEVICES[:3]) == DEVICES[0]


def test_an_index_as_int_or_digits() -> None:
    assert match(4) == DEVICES[2]
    assert match(" 3 ") == DEVICES[1]
    with pytest.raises(CallerError, match=r"^no input device with index 5; input devices: \[0\] HDA"):
        match(5)


def test_a_name_exactly_before_part_of_one() -> None:
    assert match("PULSE") == DEVICES[1]  # also part of "pulse monitor": the exact name wins
    assert match("monitor") == DEVICES[2]
    assert match("alc257") == DEVICES[0]


def test_ambiguous_missing_and_empty_names_are_one_clear_line() -> None:
    with pytest.raises(CallerError) as info:
        match("puls")
    assert str(info.value) == "input device name 'puls' is ambiguous: it matches [3] pulse, [4] pulse monitor"
    with pytest.raises(CallerError) as info:
        match_device(DEVICES, "speaker", "output", CallerError)
    assert str(info.value) == (
        "no output device matches 'speaker'; output devices: [0] HDA Intel PCH: ALC257 Analog (hw:0,0), "
        "[3] pulse, [4] pulse monitor, [7] default (default)"
    )
    with pytest.raises(CallerError, match=r"^empty device name; input devices: "):
        match("  ")


def test_no_device_at_all_says_so_for_each_direction() -> None:
    with pytest.raises(CallerError, match=r"^no audio input device found \(is a microphone connected"):
        match_device([], None, "input", CallerError)
    with pytest.raises(CallerError, match="^no audio output device is available$"):
        match_device([], "pulse", "output", CallerError)


def test_what_is_not_a_name_or_an_index_is_a_type_error() -> None:
    for spec in (True, 1.5, b"pulse"):
        with pytest.raises(TypeError, match="device must be a name or an index"):
            match(spec)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="device kind must be 'input' or 'output'"):
        match_device(DEVICES, None, "both", CallerError)  # type: ignore[arg-type]


def test_error_reason_is_one_line() -> None:
    assert error_reason(OSError("Error opening\n  stream [PaErrorCode -9996]")) == (
        "Error opening stream [PaErrorCode -9996]"
    )
    assert error_reason(ValueError()) == "ValueError"
    assert error_reason(None) == "unknown error"


class Owner:
    """Stands for an AudioCapture or an AudioPlayer."""


@pytest.fixture
def fake_portaudio(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in for sounddevice that counts re-initialisations."""
    sd = SimpleNamespace(restarts=0, _last_callback=None)
    sd._terminate = lambda: None
    sd._initialize = lambda: setattr(sd, "restarts", sd.restarts + 1)
    monkeypatch.setattr(audio_devices, "import_sounddevice", lambda error, purpose: sd)
    return sd


def test_no_rescan_while_a_stream_of_either_direction_is_open(fake_portaudio: SimpleNamespace) -> None:
    recorder, player = Owner(), Owner()
    assert refresh_devices() and fake_portaudio.restarts == 1
    with register_stream(recorder):
        pass
    with register_stream(player):
        pass
    assert not refresh_devices()
    unregister_stream(recorder)
    assert not refresh_devices()
    unregister_stream(player)
    unregister_stream(player)  # closing twice is harmless
    assert refresh_devices() and fake_portaudio.restarts == 2


def test_a_stream_that_fails_to_open_is_not_counted(fake_portaudio: SimpleNamespace) -> None:
    owner = Owner()
    with pytest.raises(OSError, match="device busy"):
        with register_stream(owner):
            raise OSError("device busy")
    assert refresh_devices()


def test_an_active_sounddevice_play_stream_holds_off_the_rescan(fake_portaudio: SimpleNamespace) -> None:
    stream = SimpleNamespace(closed=False, active=True)
    fake_portaudio._last_callback = SimpleNamespace(stream=stream)
    assert not refresh_devices()
    stream.active = False
    assert refresh_devices() and fake_portaudio.restarts == 1
