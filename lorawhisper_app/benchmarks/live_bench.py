"""Live-mode latency through a virtual microphone: `python -m lorawhisper_app.benchmarks.live_bench`.

Real dev clips (one utterance each by the VAD, at most 10 s of speech, several languages)
are played one after another into a private PulseAudio null sink, with silence between
them; `AudioCapture` records the sink's monitor as it would a microphone, and a
`LiveSession` transcribes it in a consumer loop, as `lorawhisper live` does.

- latency: from the end of speech (the clip's play start plus its last voiced sample, by
  the same VAD run offline on the file) to the arrival of the clip's final text;
- partial-update interval: while a clip is spoken, the wall time between its onset, each
  update of its text (partials) and the end of its speech: how long the text stands still.
  For an interval over 1 s it also gives the speech in it: the interval less the pauses
  inside the clip that it spans (PAUSE_S or more without a voiced frame, found by the same
  VAD with that hangover), since no one expects new words while no one speaks.

The player's start-up delay counts as latency, so the figures err on the long side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lorawhisper_app.benchmarks.virtual_mic import VirtualMicrophone, virtual_mic_unavailable
from lorawhisper_app.core.audio import SAMPLE_RATE, load_audio
from lorawhisper_app.core.capture import AudioCapture
from lorawhisper_app.core.live import CAPTURE_BLOCK_S, LiveEvent, LiveSession
from lorawhisper_app.core.vad import VadConfig, detect_utterances

DEFAULT_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech" / "dev"
LANGUAGES = ("en", "de", "fr", "es", "pt", "sw")
MAX_SPEECH_S = 10.0
GAP_S = 1.5
FINAL_TIMEOUT_S = 15.0  # after the end of speech
PAUSE_S = 0.2


@dataclass
class Clip:
    id: str
    language: str
    audio: np.ndarray
    speech_start: float  # seconds into the clip
    speech_end: float
    pauses: list[tuple[float, float]]  # silent stretches of at least PAUSE_S inside the speech


@dataclass
class ClipRun:
    clip: Clip
    played_at: float
    updates: list[tuple[float, LiveEvent]] = field(default_factory=list)  # (arrival, event)

    @property
    def final(self) -> tuple[float, LiveEvent] | None:
        finals = [(t, e) for t, e in self.updates if e.kind == "final"]
        return finals[-1] if finals else None

    @property
    def speech_end_at(self) -> float:
        return self.played_at + self.clip.speech_end

    def latency(self) -> float | None:
        return self.final[0] - self.speech_end_at if self.final else None

    def _spans(self) -> list[tuple[float, float]]:
        """The stretches between the onset of speech, each update that came before its end,
        and its end. What comes after the end of speech is the final's latency, measured apart."""
        onset, end = self.played_at + self.clip.speech_start, self.speech_end_at
        times = [onset, *(t for t, _ in self.updates if onset < t <= end), end]
        return list(zip(times, times[1:]))

    def intervals(self) -> list[float]:
        """How long the text stood still while the clip was spoken."""
        return [b - a for a, b in self._spans()]

    def speech_in_long_intervals(self) -> list[float]:
        """For each interval over 1 s, the seconds of it that were not a pause inside the clip."""
        pauses = [(self.played_at + p0, self.played_at + p1) for p0, p1 in self.clip.pauses]
        return [
            (b - a) - sum(max(0.0, min(b, p1) - max(a, p0)) for p0, p1 in pauses)
            for a, b in self._spans()
            if b - a > 1.0
        ]

    def row(self) -> dict:
        final = self.final[1] if self.final else None
        latency = self.latency()
        return {
            "id": self.clip.id,
            "language": self.clip.language,
            "speech_s": round(self.clip.speech_end - self.clip.speech_start, 2),
            "routed": final.language if final else None,
            "probability": round(final.probability, 3) if final and final.probability is not None else None,
            "adapter": final.adapter if final else None,
            "latency_s": round(latency, 3) if latency is not None else None,
            "partials": sum(e.kind == "partial" for _, e in self.updates),
            "max_interval_s": round(max(self.intervals(), default=0.0), 3),
            "text": final.text if final else None,
        }


def pick_clips(dev: Path, languages: tuple[str, ...], per_language: int) -> list[Clip]:
    """Real clips, round-robin over the languages, that the VAD finds one utterance of at most MAX_SPEECH_S in."""
    rows = [json.loads(line) for line in (dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    chosen: dict[str, list[Clip]] = {language: [] for language in languages}
    for row in rows:
        language = row["language"]
        if row.get("synthetic") or language not in chosen or len(chosen[language]) >= per_language:
            continue
        audio = VirtualMicrophone.quantise(load_audio(dev / row["path"]))
        utterances = detect_utterances(audio)
        if len(utterances) != 1:
            continue
        speech = utterances[0]
        if (speech.speech_end - speech.speech_start) / SAMPLE_RATE > MAX_SPEECH_S:
            continue
        parts = detect_utterances(audio, VadConfig(hangover_s=PAUSE_S, postroll_s=0.0, preroll_s=0.0))
        pauses = [(a.speech_end / SAMPLE_RATE, b.speech_start / SAMPLE_RATE) for a, b in zip(parts, parts[1:])]
        chosen[language].append(
            Clip(row["id"], language, audio, speech.speech_start / SAMPLE_RATE, speech.speech_end / SAMPLE_RATE, pauses)
        )
    return [chosen[lang][i] for i in range(per_language) for lang in languages if i < len(chosen[lang])]


class Consumer:
    """The loop of `lorawhisper live`: read what was captured, process it, note the events."""

    def __init__(self, capture: AudioCapture, session: LiveSession) -> None:
        self.capture = capture
        self.session = session
        self.max_backlog = 0.0

    def step(self, sink: list[tuple[float, LiveEvent]]) -> None:
        self.max_backlog = max(self.max_backlog, self.capture.backlog_seconds)
        block = self.capture.read(timeout=CAPTURE_BLOCK_S)
        rest = self.capture.read_available()
        audio = rest if block is None else np.concatenate([block, rest])
        events = self.session.process(audio, self.capture.read_available)
        now = time.monotonic()
        sink.extend((now, event) for event in events)

    def run_for(self, seconds: float, sink: list[tuple[float, LiveEvent]]) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.step(sink)


def run_benchmark(args: argparse.Namespace) -> dict:
    from lorawhisper_app.core.engine import Engine

    reason = virtual_mic_unavailable()
    if reason:
        raise SystemExit(f"live_bench: {reason}")
    dev = Path(args.dev)
    clips = pick_clips(dev, tuple(args.languages.split(",")), args.per_language)
    if not clips:
        raise SystemExit(f"live_bench: no suitable clips in {dev}")
    engine = Engine(args.model, device=args.compute_device, dtype=args.dtype, threads=args.threads)
    session = LiveSession(engine, args.language, partial_interval=args.partial_interval)  # before capture starts, as the app does
    runs: list[ClipRun] = []
    with VirtualMicrophone() as mic, AudioCapture(mic.device, CAPTURE_BLOCK_S) as capture:
        consumer = Consumer(capture, session)
        consumer.run_for(1.0, [])
        for clip in clips:
            run = ClipRun(clip, time.monotonic())
            player = mic.play_array(clip.audio)
            while not (
                player.poll() is not None
                and time.monotonic() >= run.played_at + len(clip.audio) / SAMPLE_RATE
                and (
                    (run.final and run.final[0] >= run.speech_end_at)
                    or time.monotonic() > run.speech_end_at + FINAL_TIMEOUT_S
                )
            ):
                consumer.step(run.updates)
            runs.append(run)
            consumer.run_for(GAP_S, run.updates)
            if not args.json:
                print(_format_row(run.row()), flush=True)
        overflows = capture.overflows
    latencies = [lat for run in runs if (lat := run.latency()) is not None]
    intervals = [gap for run in runs for gap in run.intervals()]
    return {
        "device": str(engine.backbone.device),
        "compute": engine.backbone.compute.name,
        "threads": torch.get_num_threads(),
        "clips": len(runs),
        "finals": len(latencies),
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "partial_interval_median_s": round(statistics.median(intervals), 3) if intervals else None,
        "partial_interval_p95_s": _percentile(intervals, 95),
        "partial_interval_max_s": round(max(intervals), 3) if intervals else None,
        "partial_intervals_over_1s": sum(gap > 1.0 for gap in intervals),
        "partial_intervals_over_1s_of_speech": sum(speech > 1.0 for run in runs for speech in run.speech_in_long_intervals()),
        "partial_intervals": len(intervals),
        "max_backlog_s": round(consumer.max_backlog, 3),
        "input_overflows": overflows,
        "rows": [run.row() for run in runs],
    }


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _format_row(row: dict) -> str:
    latency = f"{row['latency_s']:.2f} s" if row["latency_s"] is not None else "no final"
    routed = f"{row['routed']} {row['probability']}" if row["probability"] is not None else str(row["routed"])
    return (
        f"{row['id'][-44:]:44} {row['language']:3} → {routed:9} {row['adapter'] or '-':10} "
        f"speech {row['speech_s']:5.2f} s  latency {latency:8}  partials {row['partials']:2d} "
        f"(max gap {row['max_interval_s']:.2f} s)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lorawhisper_app.benchmarks.live_bench", description=__doc__.splitlines()[0])
    p.add_argument("--dev", default=str(DEFAULT_DEV), help="dev set folder with manifest.jsonl")
    p.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated clip languages")
    p.add_argument("--per-language", type=int, default=2, help="clips per language (default 2)")
    p.add_argument("--language", default="auto", help="what the live session is told (default auto)")
    p.add_argument("--partial-interval", type=float, default=0.5, help="seconds of audio between partials")
    p.add_argument("--model", default=None, help="backbone (default: built-in Whisper base)")
    p.add_argument("--compute-device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--dtype", default="auto", choices=["auto", "int8", "float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: the engine's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_benchmark(args)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(
        f"{report['clips']} clips on {report['device']}: end of speech → final text "
        f"p50 {report['latency_p50_s']} s, p95 {report['latency_p95_s']} s (max {report['latency_max_s']} s); "
        f"partial updates every {report['partial_interval_median_s']} s median, "
        f"{report['partial_interval_p95_s']} s p95, {report['partial_interval_max_s']} s at most "
        f"({report['partial_intervals_over_1s']} of {report['partial_intervals']} over 1 s, "
        f"{report['partial_intervals_over_1s_of_speech']} of them over 1 s once pauses of {PAUSE_S} s or more inside the clip are taken out); "
        f"backlog at most {report['max_backlog_s']} s, "
        f"{report['input_overflows']} input overflows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
