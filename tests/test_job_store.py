"""The batch queue on disk: round trips, atomic replacement, corrupt files, and a queue
that survives its writer being killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorawhisper_app.core.job_store import (
    Job,
    JobStatus,
    JobStore,
    StoreError,
    default_jobs_dir,
    result_from_dict,
)
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.routing import RoutingOptions

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_result(path: str = "/audio/talk.opus", text: str = "habari ya asubuhi") -> TranscriptionResult:
    route = Route("auto", "sw", 0.91, {"sw-base": 1.0}, "sw", None)
    segments = [Segment(0.0, 2.5, f" {text}"), Segment(2.5, 4.0, " asante sana")]
    return TranscriptionResult(path, 4.2, segments, route, {"sw": 0.91, "en": 0.05})


def test_result_round_trips_through_its_dict() -> None:
    result = make_result()
    again = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.text == result.text


def test_job_round_trips_and_ignores_unknown_keys() -> None:
    job = Job("/audio/a.wav", RoutingOptions(moe_k=2), duration=3.5, error=None)
    data = job.to_dict()
    assert data["status"] == "queued" and data["routing"]["moe_k"] == 2
    assert Job.from_dict({**json.loads(json.dumps(data)), "added_by_a_newer_version": 1}) == job


def test_queue_and_edited_transcripts_survive_a_reload(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs")
    assert not store.root.exists()  # nothing is written before there is something to keep
    done = Job("/audio/a.opus", RoutingOptions("sw"), JobStatus.DONE, detected_language="sw")
    failed = Job("/audio/b.opus", status=JobStatus.FAILED, error="b.opus: corrupt or truncated audio")
    cancelled = Job("/audio/c.opus", status=JobStatus.CANCELLED)
    store.save([done, failed, cancelled])
    edited = make_result("/audio/a.opus")
    edited.segments[0] = Segment(0.0, 2.5, "habari za asubuhi (edited)")
    store.save_result(done.id, edited)

    loaded = JobStore(tmp_path / "jobs").load()
    assert loaded.jobs == [done, failed, cancelled]
    assert loaded.interrupted == [] and loaded.notice is None
    assert store.load_result(done.id) == edited
    assert "(edited)" in store.load_result(done.id).text
    store.delete_result(done.id)
    with pytest.raises(StoreError, match="missing"):
        store.load_result(done.id)


def test_unfinished_jobs_come_back_interrupted(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    queued = Job("/a.wav")
    running, saved = Job("/b.wav", status=JobStatus.RUNNING), Job("/c.wav", status=JobStatus.RUNNING)
    store.save([queued, running, saved])
    store.save_result(saved.id, make_result("/c.wav"))  # killed after the transcript, before the queue
    loaded = store.load()
    assert [job.status for job in loaded.jobs] == [JobStatus.INTERRUPTED, JobStatus.INTERRUPTED, JobStatus.DONE]
    assert loaded.interrupted == [queued.id, running.id]
    assert loaded.jobs[2].finished is not None
    # Still unfinished at the next start: offered again.
    store.save(loaded.jobs)
    assert store.load().interrupted == [queued.id, running.id]
    assert loaded.jobs[0].requeued().status is JobStatus.QUEUED


def test_a_failed_write_keeps_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore(tmp_path)
    store.save([Job("/first.wav")])
    before = store.queue_path.read_bytes()

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        store.save([Job("/first.wav"), Job("/second.wav")])
    assert store.queue_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queue.json"]  # no temp file left behind


TORN = b'{"jobs": [{"path": "/a.wav", "sta'


@pytest.mark.parametrize("content", [TORN, b"\xff\xfe\x00garbage", b'{"jobs": 3}', b"[]"])
def test_a_corrupt_queue_is_moved_aside(tmp_path: Path, content: bytes) -> None:
    store = JobStore(tmp_path)
    store.queue_path.write_bytes(content)
    loaded = store.load()
    assert loaded.jobs == [] and loaded.notice is not None
    aside = list(tmp_path.glob("queue.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert str(aside[0]) in loaded.notice
    assert not store.queue_path.exists()
    store.save([Job("/new.wav")])
    assert [job.path for job in store.load().jobs] == ["/new.wav"]


def test_a_corrupt_transcript_is_moved_aside(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.result_path("abc").parent.mkdir(parents=True)
    store.result_path("abc").write_text('{"path": "/a.wav", "segments": [')
    with pytest.raises(StoreError, match="unreadable"):
        store.load_result("abc")
    assert len(list(store.result_path("abc").parent.glob("abc.json.corrupt-*"))) == 1


def test_the_data_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(tmp_path))
    assert default_jobs_dir() == tmp_path / "jobs"
    assert JobStore().root == tmp_path / "jobs"
    monkeypatch.delenv("LORAWHISPER_DATA_DIR")
    assert default_jobs_dir().name == "jobs" and tmp_path not in default_jobs_dir().parents


# The writer: adds jobs one by one, marks one running and one done (with its transcript),
# then keeps rewriting the queue as fast as it can until it is killed.
CRASHING_WRITER = r"""
import sys
from lorawhisper_app.core.job_store import Job, JobStatus, JobStore
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
store = JobStore(sys.argv[1])
jobs = []
for name in ("a", "b", "c", "d"):
    jobs.append(Job(f"/audio/{name}.opus"))
    store.save(jobs)
jobs[0].status = JobStatus.DONE
store.save_result(jobs[0].id, TranscriptionResult("/audio/a.opus", 1.0, [Segment(0, 1, "done before the crash")],
                                                  Route("auto", "sw", 0.9)))
jobs[1].status = JobStatus.RUNNING
store.save(jobs)
print("ready", flush=True)
n = 0
while True:
    n += 1
    jobs[3].error = "x" * (n % 5000)  # files of changing length: a torn write would show
    store.save(jobs)
"""


def test_a_queue_killed_mid_write_reloads_with_interrupted_jobs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it rewrite the queue many times, then kill it wherever it is
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert writer.returncode == -signal.SIGKILL

    loaded = JobStore(tmp_path).load()
    assert loaded.notice is None  # never a torn file
    assert [Path(job.path).stem for job in loaded.jobs] == ["a", "b", "c", "d"]
    statuses = [job.status for job in loaded.jobs]
    assert statuses == [JobStatus.DONE] + [JobStatus.INTERRUPTED] * 3
    assert loaded.interrupted == [job.id for job in loaded.jobs[1:]]
    assert JobStore(tmp_path).load_result(loaded.jobs[0].id).text == "done before the crash"
    assert not list(tmp_path.rglob("*.tmp")), "load sweeps the temp files of a killed writer"


def test_the_store_does_not_import_qt() -> None:
    code = "import sys, lorawhisper_app.core.job_store; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "False"
