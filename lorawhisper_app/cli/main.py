"""`lorawhisper`: transcribe, detect languages, manage and train adapters, evaluate and benchmark."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from lorawhisper_app import __version__
from lorawhisper_app.cli.interrupts import interrupts_cancel
from lorawhisper_app.cli.train_cmd import add_train_parser
from lorawhisper_app.core.errors import LoraWhisperError

if TYPE_CHECKING:
    from lorawhisper_app.core.adapter_store import AdapterInfo

EXIT_ERROR = 2
EXIT_PARTIAL = 1
EXIT_INTERRUPTED = 130


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _err(message: str) -> None:
    print(f"lorawhisper: {message}", file=sys.stderr, flush=True)


def _engine(args: argparse.Namespace):  # noqa: ANN202 - imported lazily to keep --help fast
    from lorawhisper_app.core.engine import Engine

    return Engine(args.model, device=args.device, dtype=args.dtype, threads=args.threads)


def _audio_files(inputs: Sequence[str]) -> list[Path]:
    """Files as given; folders expand to the audio files inside them, sorted."""
    from lorawhisper_app.core.audio import AUDIO_EXTENSIONS

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                Path(root) / name
                for root, _, names in os.walk(path)
                for name in names
                if Path(name).suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                raise LoraWhisperError(f"{path}: folder holds no audio files")
            files.extend(found)
        else:
            files.append(path)
    return files


def _routing(args: argparse.Namespace):  # noqa: ANN202
    from lorawhisper_app.core.routing import RoutingOptions

    return RoutingOptions(args.language, args.moe, args.adapter, args.threshold)


def _describe_route(route) -> str:  # noqa: ANN001
    prob = f" (p={route.language_probability:.2f})" if route.language_probability is not None else ""
    used = ", ".join(f"{n}×{w:.2f}" for n, w in route.adapters.items()) or "no adapter"
    return f"{route.mode}: {route.language}{prob} → {used}"


def cmd_transcribe(args: argparse.Namespace) -> int:
    from lorawhisper_app.cli.progress import ProgressBar
    from lorawhisper_app.core.errors import Cancelled
    from lorawhisper_app.core.writers import write_result

    files = _audio_files(args.files)
    options = _routing(args)
    engine = _engine(args)
    out_dir = Path(args.out)
    failed = 0
    done: list[Path] = []
    with interrupts_cancel() as cancel:
        for index, path in enumerate(files, 1):
            if cancel.is_set():
                break
            bar = ProgressBar(f"[{index}/{len(files)}] {path.name}", enabled=not args.json)
            try:
                result = engine.transcribe(path, options, progress=bar.update, cancel=cancel)
                written = write_result(result, args.format, out_dir)
            except Cancelled:
                bar.close()
                break
            except LoraWhisperError as exc:
                bar.close()
                failed += 1
                _err(str(exc)) if not args.json else _print_json({"path": str(path), "error": str(exc)})
                continue
            except OSError as exc:
                bar.close()
                failed += 1
                _err(f"{out_dir}: could not write the {args.format} file: {exc.strerror or exc}")
                continue
            bar.close()
            done.append(written)
            if args.json:
                _print_json({**result.to_dict(), "output": str(written)})
            else:
                if result.route.notice:
                    _err(f"{path}: {result.route.notice}")
                print(f"{path} [{_describe_route(result.route)}] → {written}")
                if args.verbose:
                    print(result.text)
    if cancel.is_set():
        _err(f"interrupted: {len(done)} of {len(files)} files finished and kept in {out_dir}")
        return EXIT_INTERRUPTED
    return EXIT_PARTIAL if failed else 0


def cmd_detect(args: argparse.Namespace) -> int:
    from lorawhisper_app.core.languages import language_name

    files = _audio_files(args.files)
    engine = _engine(args)
    failed = 0
    for path in files:
        try:
            probs = engine.detect_language(path)
        except LoraWhisperError as exc:
            failed += 1
            _err(str(exc)) if not args.json else _print_json({"path": str(path), "error": str(exc)})
            continue
        top = dict(list(probs.items())[: args.top])
        if args.json:
            _print_json({"path": str(path), "languages": top})
        else:
            ranked = ", ".join(f"{code} {language_name(code)} {p:.3f}" for code, p in top.items())
            print(f"{path}: {ranked}")
    return EXIT_PARTIAL if failed else 0


def _store_and_fingerprint(args: argparse.Namespace, need_fingerprint: bool):  # noqa: ANN202
    from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir, default_user_adapter_dir
    from lorawhisper_app.core.backbone import resolve_backbone

    store = AdapterStore(bundled_adapter_dir(), default_user_adapter_dir())
    return store, resolve_backbone(args.model).fingerprint if need_fingerprint else None


def _adapter_row(info: AdapterInfo, fingerprint: str | None) -> dict[str, object]:
    from lorawhisper_app.core.adapter_store import ROUTER_FILE

    meta = info.meta.to_dict()
    return {
        "name": info.name,
        "language": info.meta.language,
        "language_name": info.meta.language_name,
        "source": info.source,
        "size_bytes": info.size_bytes,
        "path": str(info.path),
        "compatible": info.compatible_with(fingerprint) if fingerprint else None,
        "dev_wer": meta.get("dev_wer"),
        "router_profile": (info.path / ROUTER_FILE).is_file(),
        "router": info.meta.training_data.get("router"),
        "metadata": meta,
    }


ADAPTER_COLUMNS = ("NAME", "LANGUAGE", "SOURCE", "SIZE", "DEV WER (without → with)", "AUTO ROUTING")


def _adapter_table(infos: list[AdapterInfo], rows: list[dict[str, object]]) -> str:
    """`adapters list` for people: a header and one aligned line per adapter."""
    lines = [ADAPTER_COLUMNS]
    for info, row in zip(infos, rows, strict=True):
        language = f"{info.meta.language} {info.meta.language_name}"
        if info.meta.decode_token != info.meta.language:
            language += f" ({info.meta.decode_token} token)"
        wer = row["dev_wer"]
        router = row["router"] if isinstance(row["router"], dict) else {}
        accuracy = router.get("dev_accuracy")
        if not row["router_profile"]:
            routing = "Whisper LID"
        else:
            routing = f"{accuracy * 100:.0f} % of its dev clips" if isinstance(accuracy, (int, float)) else "router profile"
        lines.append((
            str(row["name"]), language, str(row["source"]), f"{info.size_bytes / 1e6:.1f} MB",
            f"{wer['before']:.3f} → {wer['after']:.3f}" if isinstance(wer, dict) else "unknown",
            routing + ("" if row["compatible"] else "; made for another backbone"),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(ADAPTER_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def cmd_adapters(args: argparse.Namespace) -> int:
    action = args.action
    store, fingerprint = _store_and_fingerprint(args, action in ("list", "show", "import"))
    if action == "list":
        infos = store.list()
        rows = [_adapter_row(i, fingerprint) for i in infos]
        if args.json:
            _print_json({"adapters": rows, "problems": store.problems(), "user_dir": str(store.user_dir)})
            return 0
        if not rows:
            print(f"no adapters installed (user folder: {store.user_dir})")
        else:
            print(_adapter_table(infos, rows))
        for problem in store.problems():
            _err(problem)
        return 0
    if action == "show":
        row = _adapter_row(store.get(args.name), fingerprint)
        print(json.dumps(row, indent=None if args.json else 2, ensure_ascii=False))
        return 0
    if action == "import":
        info = store.import_(Path(args.path), fingerprint, name=args.name, replace=args.replace)  # type: ignore[arg-type]
        _print_json(_adapter_row(info, fingerprint)) if args.json else print(f"imported {info.name} ({info.meta.language_name}) into {info.path}")
        return 0
    if action == "export":
        dest = store.export(args.name, Path(args.dest))
        _print_json({"name": args.name, "path": str(dest)}) if args.json else print(f"exported {args.name} to {dest}")
        return 0
    if action == "remove":
        store.remove(args.name)
        _print_json({"removed": args.name}) if args.json else print(f"removed {args.name}")
        return 0
    raise AssertionError(action)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lorawhisper_app.cli.progress import ProgressBar
    from lorawhisper_app.core.errors import Cancelled
    from lorawhisper_app.core.evaluation import FROM_MANIFEST, iter_evaluation, read_clips, score
    from lorawhisper_app.core.training.datasets import clip_count

    named = args.language if args.language not in ("auto", FROM_MANIFEST) else ""
    clips = read_clips(args.manifest, named)
    for line in clips.left_out:
        _err(line)
    if clips.part:
        _err(f"{args.manifest}: scoring its held-out part, {clips.part}")
    rows = clips.rows
    if args.only_language:
        rows = [r for r in rows if r.language in args.only_language]
    if args.limit:
        rows = rows[: args.limit]
    if not rows:
        raise LoraWhisperError(f"{args.manifest}: no clips to evaluate")
    engine = _engine(args)
    bar = ProgressBar(f"evaluating {len(rows)} clips", enabled=not args.json)
    records = []
    with interrupts_cancel() as cancel:
        try:
            for record in iter_evaluation(engine, rows, args.language, args.moe, args.adapter, args.threshold, cancel):
                records.append(record)
                if "error" in record:
                    bar.close()
                    _err(f"{record['error']}; left out of the scores")
                bar.update(len(records), len(rows))
        except Cancelled:
            pass
    bar.close()
    if cancel.is_set():
        _err(f"interrupted after {len(records)} of {len(rows)} clips; scores below cover those")
    report = score(records)
    if not report.overall.clips and report.unreadable:
        raise LoraWhisperError(f"{args.manifest}: none of its clips could be read (each named above)")
    if args.json:
        _print_json(report.to_dict())
    else:
        print(f"{'language':10} {'clips':>5} {'WER':>7} {'CER':>7}")
        for code, item in sorted(report.per_language.items()):
            print(f"{code or '-':10} {item.clips:5d} {item.words.rate:7.3f} {item.chars.rate:7.3f}")
        print(f"{'overall':10} {report.overall.clips:5d} {report.overall.words.rate:7.3f} {report.overall.chars.rate:7.3f}")
    if report.unreadable:
        _err(f"{clip_count(len(report.unreadable))} could not be read and {'is' if len(report.unreadable) == 1 else 'are'} "
             "not in the scores (each named above)")
    if clips.left_out:
        _err(f"{clip_count(len(clips.left_out), 'listed')} left out before decoding (each named above)")
    return EXIT_PARTIAL if report.unreadable or clips.left_out else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from lorawhisper_app.benchmarks.engine_bench import run_benchmark

    report = run_benchmark(args)
    if args.json:
        _print_json(report)
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from lorawhisper_app.core.capture import AudioCapture, find_input_device, list_input_devices

    if args.list_devices:
        devices = list_input_devices()
        if args.json:
            _print_json({"devices": [vars(d) for d in devices]})
            return 0
        for device in devices:
            print(f"{device.describe()}: {device.channels} channel(s), {device.default_samplerate:g} Hz")
        if not devices:
            print("no audio input devices found")
        return 0

    from lorawhisper_app.core.live import CAPTURE_BLOCK_S, LiveEvent, LiveSession

    find_input_device(args.device)  # a wrong device fails before the model loads
    engine = _engine(argparse.Namespace(model=args.model, device=args.compute_device, dtype=args.dtype, threads=args.threads))
    save = Path(args.save) if args.save else None
    session = LiveSession(engine, args.language, threshold=args.threshold, record_to=save)
    tty = sys.stdout.isatty() and not args.json
    width = os.get_terminal_size().columns - 1 if tty else 0
    warned = {"backlog": 0.0, "overflows": 0}

    def show(event: LiveEvent) -> None:
        if args.json:
            _print_json(event.to_dict())
            return
        probability = f" {event.probability:.2f}" if event.probability is not None else ""
        badge = f"[{event.language}{probability}{f' → {event.adapter}' if event.adapter else ''}]"
        line = f"{event.start:7.1f}-{event.end:<7.1f} {badge} {event.text}"
        if not tty:
            print(f"{event.kind:7} {line}", flush=True)
        elif event.kind == "partial":
            sys.stdout.write(f"\r\x1b[K{line[:width]}")
            sys.stdout.flush()
        else:
            print(f"\r\x1b[K{line}", flush=True)

    def feed(capture: AudioCapture, audio: np.ndarray) -> None:
        for event in session.process(audio, capture.read_available):
            show(event)
        now, backlog = time.monotonic(), capture.backlog_seconds
        if backlog > 1.0 and now - warned["backlog"] > 1.0:
            warned["backlog"] = now
            _err(f"behind by {backlog:.1f} s of audio")
        if capture.overflows > warned["overflows"]:
            warned["overflows"] = capture.overflows
            _err(f"{capture.overflows} input overflow(s): the device lost audio")
        if problem := session.untold_recording_problem():
            _err(problem)

    capture = AudioCapture(args.device, CAPTURE_BLOCK_S)
    # Ctrl+C is the way to stop: what was captured is still transcribed and kept. A second
    # one stops at once, and what there is is still saved.
    with interrupts_cancel("stopping: the last words are being transcribed (Ctrl-C again stops at once)") as stop:
        try:
            with capture:
                assert capture.device is not None
                _err(f"listening on {capture.device.describe()}; Ctrl-C stops")
                while not stop.is_set():
                    block = capture.read(timeout=CAPTURE_BLOCK_S)
                    rest = capture.read_available()
                    feed(capture, rest if block is None else np.concatenate([block, rest]))
                capture.stop()
                feed(capture, capture.read_available())
        finally:  # on an error or a second Ctrl-C too, what there is gets its finals and is saved
            try:
                for event in session.finish():
                    show(event)
            finally:
                if save is not None:
                    saved = session.save(save, args.format)
                    if args.json:
                        _print_json({"saved": {kind: str(path) for kind, path in saved.items()}})
                    else:
                        _err("saved " + " and ".join(str(path) for path in saved.values()))
    return 0


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="backbone: built-in Whisper base (default), a Hugging Face id or a local folder")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run (default: auto)")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "int8", "float32", "bfloat16", "float16"],
        help="compute type (default auto: int8 decoder on CPU, float16 on CUDA)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: one per physical core)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON lines")


def _add_routing_options(p: argparse.ArgumentParser, language_help: str) -> None:
    p.add_argument("--language", default="auto", help=language_help)
    p.add_argument("--moe", type=int, default=0, metavar="K", help="mix the adapters of the top-K detected languages")
    p.add_argument("--adapter", default=None, metavar="NAME|none", help="use this adapter (or none: the bare backbone), overriding routing")
    p.add_argument("--threshold", type=float, default=0.5, help="LID probability auto mode needs to use an adapter (default 0.5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorawhisper", description="Local speech recognition with per-language LoRA adapters.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files or folders")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, or folders to search for them")
    _add_routing_options(p, "auto (language identification) or a language code such as sw")
    p.add_argument("-f", "--format", default="txt", choices=["txt", "srt", "vtt", "json"], help="transcript format (default txt)")
    p.add_argument("-o", "--out", default=".", metavar="DIR", help="output folder (default: current folder)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each transcript")
    _add_engine_options(p)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("detect", help="identify the spoken language of files")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, or folders to search for them")
    p.add_argument("--top", type=int, default=5, help="how many languages to show (default 5)")
    _add_engine_options(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("adapters", help="list, show, import, export or remove language adapters")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list")
    a = actions.add_parser("show")
    a.add_argument("name")
    a = actions.add_parser("import")
    a.add_argument("path", help="an adapter folder or a .zip made by export")
    a.add_argument("--name", default=None, help="install under another name")
    a.add_argument("--replace", action="store_true", help="replace an installed adapter of the same name")
    a = actions.add_parser("export")
    a.add_argument("name")
    a.add_argument("dest", help="a .zip file to write, or a folder to copy the adapter into")
    a = actions.add_parser("remove")
    a.add_argument("name")
    for action in actions.choices.values():
        action.add_argument("--model", default=None, help="backbone the adapters must fit (default: built-in)")
        action.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adapters)

    p = sub.add_parser("evaluate", help="WER and CER on clips with their transcripts")
    p.add_argument("manifest", metavar="DATA", help=(
        "a JSONL manifest (path, text and language a line), or any layout `train` reads: a folder of audio files "
        "with same-name .txt transcripts, a CSV/TSV table with path and text columns, a Common Voice folder "
        "(its dev.tsv when there is one)"))
    _add_routing_options(p, "auto, a language code, or from-manifest (each clip's own language)")
    p.add_argument("--only-language", action="append", metavar="CODE", help="evaluate only clips of this language (repeatable)")
    p.add_argument("--limit", type=int, default=0, help="evaluate at most N clips")
    _add_engine_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("live", help="transcribe the microphone live, utterance by utterance")
    p.add_argument("--device", default=None, metavar="NAME", help="input device: a name, part of one, or an index (default: the default input)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument("--language", default="auto", help="auto (identify each utterance) or a language code that locks every utterance to it")
    p.add_argument("--threshold", type=float, default=0.5, help="LID probability auto mode needs to use an adapter (default 0.5)")
    p.add_argument("--save", default=None, metavar="DIR", help="keep the session's audio (FLAC) and transcript in this folder")
    p.add_argument("--format", default="json", choices=["txt", "srt", "vtt", "json"], help="transcript format for --save (default json)")
    p.add_argument("--model", default=None, help="backbone: built-in Whisper base (default), a Hugging Face id or a local folder")
    p.add_argument("--compute-device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run the model (default: auto)")
    p.add_argument("--dtype", default="auto", choices=["auto", "int8", "float32", "bfloat16", "float16"], help="compute type (default auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: one per physical core)")
    p.add_argument("--json", action="store_true", help="print JSON lines: kind, text, start, end, language, probability, adapter")
    p.set_defaults(func=cmd_live)

    add_train_parser(sub)

    p = sub.add_parser("bench", help="real-time factor against faster-whisper on the same clips")
    p.add_argument("--clips", type=int, default=4, help="how many dev clips (default 4)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per configuration (default 2)")
    p.add_argument("--dev", default=None, help="dev set folder (default ../shared/data/speech/dev)")
    _add_engine_options(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LoraWhisperError as exc:
        _err(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
