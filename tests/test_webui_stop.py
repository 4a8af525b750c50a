"""Stopping a draw, without a server: the page's Interrupt and Skip (the HTTP API's one
mechanism, ``Studio.interrupt``, scoped to the page's session), the batch count Skip moves
along, the progress line's ETA, a draw whose client stopped listening, and the ASGI
middleware that notes the event streams and reads /cancel. A scripted back end stands in
for a model, so each test takes a fraction of a second."""

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass

import pytest
from PIL import Image

from genlab.errors import Cancelled, GenlabError
from genlab.generation import GenerationRequest
from genlab.generation.result import GenerationResult, cancel_check
from genlab.webui import clients as clients_module
from genlab.webui import studio as studio_module
from genlab.webui.catalog import Catalog
from genlab.webui.clients import BAD_CANCEL, Clients, ClientWatch, stream_key
from genlab.webui.handlers import Caller, Controls, Handlers, progress_line
from genlab.webui.server import prepare_out
from genlab.webui.studio import Interrupted, Studio
from genlab.webui.worker import Preview, Step

PROMPT = "a red circle"


@dataclass
class _Progress:
    step: int
    steps: int
    shade: int
    n: int = 1

    def preview(self):
        return [Image.new("RGB", (8, 8), (self.shade, 0, 0))] * self.n


class Scripted:
    """A back end that takes ``pause`` seconds a step and draws flat images whose red is its
    seed; it reports progress and checks ``cancel`` after every step, as the real ones do."""

    def __init__(self, pause: float = 0.02) -> None:
        self.pause, self.calls = pause, []

    def check(self, request):
        return request

    def __call__(self, request, progress=None, cancel=None):
        self.calls.append(request.seed)
        stop = cancel_check(cancel)
        for i in range(request.steps):
            time.sleep(self.pause)
            if progress is not None:
                progress(_Progress(i + 1, request.steps, request.seed % 256, request.batch_size))
            stop()
        images = [Image.new("RGB", (8, 8), (s % 256, 0, 0)) for s in request.seeds]
        return GenerationResult(images, list(request.seeds), [f"seed {s}" for s in request.seeds])


@pytest.fixture
def studio(tmp_path, monkeypatch):
    s = Studio(Catalog(runs_dir=str(tmp_path / "runs")), prepare_out(tmp_path / "out"))
    backend = Scripted()
    monkeypatch.setattr(s, "pipeline", lambda model: backend)
    monkeypatch.setattr(studio_module, "PREVIEW_EVERY", 0.0)
    monkeypatch.setattr(studio_module, "PROGRESS_EVERY", 0.0)
    s.backend = backend
    return s


def _when(condition, timeout: float = 5.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < end, "timed out"
        time.sleep(0.005)


# --- the studio -------------------------------------------------------------------------------
def test_interrupt_keeps_the_estimate_and_stops_only_its_owners_draw(studio):
    request = GenerationRequest(PROMPT, steps=400, seed=7)
    events = studio.generate(request, "builtin", "txt2img", owner="tab-a")
    first = next(events)  # drawing
    assert isinstance(first, Step | Preview)
    assert studio.interrupt("interrupt", owner="tab-b") is False  # another tab's button
    assert studio.current is not None and not studio.current.stop.is_set()
    started = time.perf_counter()
    assert studio.interrupt("interrupt", owner="tab-a") is True
    with pytest.raises(Interrupted) as stopped:
        for _ in events:
            pass
    assert time.perf_counter() - started < 2.0
    assert stopped.value.reason == "interrupt"
    assert stopped.value.images[0].getpixel((0, 0)) == (7, 0, 0)  # the estimate it reached
    assert studio.current is None and studio.jobs == set() and studio.pending == 0
    assert not studio.lock.locked()
    assert studio.interrupt("interrupt") is False  # nothing runs now


def test_the_apis_interrupt_stops_whichever_draw_runs(studio):
    events = studio.generate(GenerationRequest(PROMPT, steps=400), "builtin", None, owner="tab")
    next(events)
    assert studio.interrupt("skip") is True  # owner None: the running draw, as webui's
    with pytest.raises(Interrupted, match="skip"):
        list(events)


def test_a_draw_waiting_for_the_lock_leaves_at_once_when_its_owner_interrupts(studio):
    with studio.lock:  # another job draws
        events = studio.generate(GenerationRequest(PROMPT, steps=5), "builtin", None, owner="t")
        got: list = []
        thread = threading.Thread(target=lambda: got.append(_drain(events)))
        thread.start()
        _when(lambda: len(studio.jobs) == 1)
        assert studio.interrupt("interrupt", owner="t")
        thread.join(timeout=2)
        assert not thread.is_alive()
    assert isinstance(got[0], Interrupted) and got[0].images == []
    assert studio.backend.calls == []  # it never drew


def _drain(events):
    try:
        return list(events)
    except BaseException as e:
        return e


def test_a_draw_whose_client_stopped_listening_is_cancelled(studio):
    gone = threading.Event()
    events = studio.generate(GenerationRequest(PROMPT, steps=1000), "builtin", None,
                             owner="t", present=lambda: not gone.is_set())  # fmt: skip
    next(events)
    gone.set()
    started = time.perf_counter()
    with pytest.raises(Cancelled) as e:
        list(events)
    assert not isinstance(e.value, Interrupted)
    assert time.perf_counter() - started < 2.0
    assert studio.current is None and not studio.lock.locked()


# --- the page's handlers ----------------------------------------------------------------------
def test_skip_ends_one_pass_and_the_next_goes_on(studio):
    page = Handlers(studio)
    controls = Controls(PROMPT, steps=60, seed=10, batch_size=2, batch_count=3)
    views = page.txt2img(controls, caller=Caller("tab"))
    skipped = False
    for view in views:
        if not skipped and view.status and view.status.startswith("pass 1/3, step 5/"):
            assert page.interrupt("tab", "skip")
            skipped = True
        last = view
    assert skipped
    # pass 1 (seeds 10, 11) skipped: its estimates kept, labelled, not saved; passes 2 and 3 whole
    assert studio.backend.calls == [10, 12, 14]
    captions = [caption for _, caption in last.gallery]
    assert captions[2:] == [f"seed {s}" for s in range(12, 16)]
    assert captions[0] == captions[1] and re.fullmatch(r"skipped at step (\d+)/60 \(not saved\)",
                                                        captions[0])  # fmt: skip
    assert [isinstance(item, str) for item, _ in last.gallery] == [False] * 2 + [True] * 4
    assert re.match(r"Skipped at step \d+/60 of pass 1/3 after \d+ s", last.info)
    assert last.info.endswith("seed 12")
    assert len(list((studio.out / "txt2img").glob("*.png"))) == 4


def test_interrupt_ends_the_job_and_keeps_the_passes_finished(studio):
    page = Handlers(studio)
    controls = Controls(PROMPT, steps=40, seed=0, batch_count=4)
    last = None
    for view in page.txt2img(controls, caller=Caller("tab")):
        if view.status and view.status.startswith("pass 2/4, step 3/"):
            assert page.interrupt("tab", "interrupt")
        last = view
    assert studio.backend.calls == [0, 1]  # passes 3 and 4 never started
    captions = [c for _, c in last.gallery]
    assert captions[0] == "seed 0" and len(captions) == 2
    assert re.fullmatch(r"interrupted at step \d+/40 \(not saved\)", captions[1])
    assert re.match(r"Interrupted at step \d+/40 of pass 2/4 after ", last.info)
    assert "the images finished are kept" in last.info and last.info.endswith("seed 0")
    assert page.interrupt(None) is False  # a page without a session stops nobody's


def test_previews_carry_the_progress_line_and_the_timer_never_resets(studio):
    page = Handlers(studio)
    views = list(page.txt2img(Controls(PROMPT, steps=6, seed=0, batch_count=2),
                              caller=Caller("t")))  # fmt: skip
    lines = [v.status for v in views if v.status]
    assert lines[0].startswith("pass 1/2, step 1/6, elapsed ") and "ETA " in lines[0]
    assert any(line.startswith("pass 2/2, step 6/6") for line in lines)
    elapsed = [int(line.split("elapsed ")[1].split(" s")[0]) for line in lines]
    assert elapsed == sorted(elapsed)  # from the press, across passes
    previews = [v for v in views if v.gallery and "preview" in v.gallery[-1][1]]
    assert previews and previews[0].gallery[-1][1] == "preview, step 1/6"
    assert views[-1].status is None and views[-1].info == "seed 0"
    assert [c for _, c in views[-1].gallery] == ["seed 0", "seed 1"]


def test_the_progress_line_counts_the_passes_left_in_its_eta():
    event = Step(5, 20, elapsed=2.5)  # 0.5 s a step
    assert progress_line(0, 1, event, 3.0) == "step 5/20, elapsed 3 s, ETA 8 s"
    assert progress_line(0, 3, event, 3.0) == "pass 1/3, step 5/20, elapsed 3 s, ETA 28 s"
    assert progress_line(2, 3, Preview(20, 20, [], 9.0), 30.0).endswith("ETA 0 s")


def test_batch_count_is_bounded(studio):
    page = Handlers(studio)
    with pytest.raises(GenlabError, match="batch count is 0"):
        list(page.txt2img(Controls(PROMPT, batch_count=0)))
    with pytest.raises(GenlabError, match="more work"):
        list(page.txt2img(Controls(PROMPT, steps=150, batch_size=16, width=1024, height=1024,
                                   batch_count=2)))  # fmt: skip


def test_a_client_that_left_ends_the_page_job_quietly(studio):
    page = Handlers(studio)
    here = threading.Event()
    here.set()
    views = page.txt2img(Controls(PROMPT, steps=1000), caller=Caller("t", here.is_set))
    next(views)
    here.clear()
    assert list(views) == []  # nobody to show anything to; no error either
    assert not studio.lock.locked()


# --- who is listening -------------------------------------------------------------------------
def test_present_while_a_stream_is_open_and_for_the_grace_time_after(monkeypatch):
    clients = Clients(grace=0.2)
    never = clients.present("s1")
    assert never()  # young: its client may not have opened its stream yet
    time.sleep(0.25)
    assert not never()  # joined, never listened
    clients.opened("s2")
    listening = clients.present("s2", "ev2", since=time.monotonic() - 10)
    time.sleep(0.25)
    assert listening()
    clients.closed("s2")
    assert listening()  # a reconnect takes a moment
    time.sleep(0.25)
    assert not listening()
    rest = clients.present(None, "ev3")  # the REST form listens on the event's own stream
    clients.opened("ev3")
    time.sleep(0.25)
    assert rest()


def test_a_cancel_stops_the_jobs_begun_before_it_only():
    clients = Clients(grace=5)
    clients.opened("s")
    old = clients.present("s", "e1")
    clients.cancel("s", "e1")
    assert not old()
    time.sleep(0.01)
    new = clients.present("s", "e2")  # the next Generate of the same tab
    assert new()


def test_keys_closed_long_ago_are_forgotten(monkeypatch):
    monkeypatch.setattr(clients_module, "KEEP", 10)
    clients = Clients(grace=0.001)
    for i in range(30):
        clients.opened(f"s{i}")
        clients.closed(f"s{i}")
        time.sleep(0.002)
    clients.opened("live")
    assert len(clients._seen) <= 12 and clients._open["live"] == 1


def test_stream_keys_of_the_event_stream_routes():
    def scope(path, query=b"", method="GET"):
        return {"type": "http", "method": method, "path": path, "query_string": query}

    assert stream_key(scope("/gradio_api/queue/data", b"session_hash=abc")) == "abc"
    assert stream_key(scope("/gradio_api/call/txt2img/ev1")) == "ev1"
    assert stream_key(scope("/gradio_api/call/v2/txt2img/ev2")) == "ev2"
    assert stream_key(scope("/gradio_api/call/txt2img", method="POST")) is None
    assert stream_key(scope("/gradio_api/queue/join", method="POST")) is None
    assert stream_key(scope("/gradio_api/queue/data")) is None


def _asgi(app, scope, body=b""):
    """Run ``app`` on one request; (status, body text)."""
    sent: list[dict] = []
    parts = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, text.decode()


def test_client_watch_counts_streams_and_reads_cancel():
    clients = Clients(grace=60)
    seen: list = []

    async def gradio(scope, receive, send):  # Gradio's part: notes what reaches it
        message = await receive()
        seen.append((scope["path"], message.get("body", b"")))
        seen.append(clients._open.get("abc", 0))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    watch = ClientWatch(gradio, clients)
    data = {"type": "http", "method": "GET", "path": "/gradio_api/queue/data",
            "query_string": b"session_hash=abc", "headers": []}  # fmt: skip
    assert _asgi(watch, data) == (200, "ok")
    assert seen[1] == 1 and clients._open.get("abc", 0) == 0  # open while it streamed

    cancel = {"type": "http", "method": "POST", "path": "/gradio_api/cancel", "headers": []}
    for bad in (b"", b"{", b"[]", b'{"session_hash": "abc"}',
                b'{"session_hash": "abc", "fn_index": "1", "event_id": "e"}'):  # fmt: skip
        status, text = _asgi(watch, cancel, bad)
        assert (status, text) == (400, BAD_CANCEL), bad
    job = clients.present("abc", "e9", since=time.monotonic() - 1)
    good = json.dumps({"session_hash": "abc", "fn_index": 3, "event_id": "e9"}).encode()
    assert _asgi(watch, cancel, good) == (200, "ok")
    assert seen[-2] == ("/gradio_api/cancel", good)  # Gradio got the body, unchanged
    assert not job()  # and the draw stops at its next step
    big = b'{"session_hash": "' + b"x" * clients_module.MAX_CANCEL_BODY + b'"}'
    assert _asgi(watch, cancel, big)[0] == 413
