"""The web page against a hostile client, through raw HTTP against a launched server: a foreign
Host and Origin, every queue function called with paths outside the allowed roots, symlinks in
served folders, an oversized X/Y plot, an abandoned long job followed by a small one, and
unreadable model files in --models-dir."""

import io
import json
import os
import pickle
import socket
import struct
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest

gradio = pytest.importorskip("gradio", reason="the web page needs the extra genlab[webui]")
import httpx  # noqa: E402

from genlab.errors import GenlabError  # noqa: E402
from genlab.webui import lab, training, xygrid  # noqa: E402
from genlab.webui.catalog import Catalog  # noqa: E402
from genlab.webui.guard import split_host  # noqa: E402

PROMPT = "a red circle to the left of a blue square"
FRIEND = "http://friend.test:3000"
#: in the names of the files outside every allowed root: no message may ever show one
MARKER = "XYZ123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A page with a run whose plots/ holds a link to a file outside, a models folder of
    unreadable .safetensors files, and a datasets folder with a good folder, a link to a
    folder outside and a folder holding a link to a file outside."""
    import torch
    from safetensors.torch import save_file

    from genlab.runs import fit_run
    from genlab.webui import create, launch

    root = tmp_path_factory.mktemp("websec")
    outside = root / "outside"
    _png(outside / f"secret-{MARKER}.png", (255, 0, 255))
    (outside / f"notes-{MARKER}.txt").write_text("a secret caption")
    run = root / "runs" / "faithful"
    fit_run("gmm", "faithful", run, options={"n_components": 2})
    _png(run / "plots" / "ok.png", (0, 255, 0))
    os.symlink(outside / f"secret-{MARKER}.png", run / "plots" / "leak.png")
    models = root / "models"
    models.mkdir()
    save_file({"model.diffusion_model.w": torch.zeros(64)}, str(models / "whole.safetensors"))
    good = (models / "whole.safetensors").read_bytes()
    (models / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (models / "huge-header.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    (models / "pickled.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    (models / "whole.safetensors").unlink()  # a whole one would be offered (and need a config)
    datasets = root / "datasets"
    _png(datasets / "good" / "a.png", (10, 20, 30))
    os.symlink(outside, datasets / "escape")
    _png(datasets / "linked" / "b.png", (1, 2, 3))
    os.symlink(outside / f"secret-{MARKER}.png", datasets / "linked" / "c.png")
    app, studio = create(root / "out", models_dir=models, runs_dir=root / "runs",
                         datasets_dir=datasets)  # fmt: skip
    port = _free_port()
    launch(app, studio, port=port, block=False, queue_size=8, allowed_hosts=("box.test",),
           cors_allow_origins=(FRIEND,))  # fmt: skip
    yield {"base": f"http://127.0.0.1:{port}", "port": port, "root": root, "studio": studio,
           "outside": outside, "datasets": datasets}  # fmt: skip
    app.close()


def _config(base: str) -> dict:
    r = httpx.get(f"{base}/config", timeout=30)
    assert r.status_code == 200
    return r.json()


def _fn_index(config: dict, api_name: str) -> int:
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def queue_call(base: str, fn_index: int, data: list, *, wait: float = 120.0) -> list[dict]:
    """One raw queue call: join, then read the event stream to its end; the messages."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    messages: list[dict] = []
    with httpx.Client(timeout=wait) as http:
        r = http.post(f"{base}/gradio_api/queue/join", json=body)
        if r.status_code != 200:
            return [{"msg": "refused", "status": r.status_code, "text": r.text}]
        params = {"session_hash": session}
        with http.stream("GET", f"{base}/gradio_api/queue/data", params=params) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                messages.append(message)
                if message.get("msg") in ("process_completed", "unexpected_error"):
                    break
    return messages


def outcome(messages: list[dict]) -> tuple[bool, str]:
    """(success, error message) of a call's messages."""
    last = messages[-1]
    if last.get("msg") != "process_completed":
        return False, json.dumps(last)
    output = last.get("output") or {}
    return bool(last.get("success")), str(output.get("error") or "")


def _one_sentence(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text and len(text) < 300


# --- the Host check and CORS ------------------------------------------------------------------
def test_split_host_reads_names_ports_and_ipv6():
    assert split_host("LocalHost:7860") == ("localhost", "7860")
    assert split_host("[::1]:80") == ("[::1]", "80") and split_host("[::1]") == ("[::1]", None)
    assert split_host("box.test") == ("box.test", None)


def test_a_foreign_host_is_refused_and_no_foreign_origin_gets_cors(site):
    base, port = site["base"], site["port"]
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    with httpx.Client(timeout=30) as http:
        for method, path in (("GET", "/"), ("GET", "/config"), ("POST", "/gradio_api/upload"),
                             ("POST", "/gradio_api/queue/join"),
                             ("GET", "/gradio_api/queue/data?session_hash=x")):  # fmt: skip
            r = http.request(method, base + path, headers=evil)
            assert r.status_code == 400, (path, r.status_code)
            assert "access-control-allow-origin" not in r.headers
            assert _one_sentence(r.text) and "Host" in r.text
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "box.test"):
            assert http.get(base + "/config", headers={"Host": host}).status_code == 200, host
        for host in ("localhost:1", "localhost", f"127.0.0.2:{port}", f"box.test.evil:{port}",
                     f"localhost.:{port}"):  # fmt: skip
            assert http.get(base + "/config", headers={"Host": host}).status_code == 400, host
        # a foreign page on the right Host (a form post, a fetch): no CORS, no state change;
        # on an allowed name that is not localhost Gradio itself would echo the Origin
        for host in (f"127.0.0.1:{port}", "box.test"):
            headers = {"Host": host, "Origin": "http://evil.example"}
            r = http.get(base + "/config", headers=headers)
            assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
            preflight = {**headers, "Access-Control-Request-Method": "POST"}
            r = http.options(base + "/gradio_api/queue/join", headers=preflight)
            assert "access-control-allow-origin" not in r.headers
            r = http.post(base + "/gradio_api/queue/join", headers=headers, json={})
            assert r.status_code == 403 and _one_sentence(r.text)
            r = http.post(base + "/gradio_api/upload", headers=headers,
                          files={"files": ("a.png", b"x")})  # fmt: skip
            assert r.status_code == 403
        # the page's own origin works; an origin named by --cors-allow-origins gets CORS
        own = {"Origin": f"http://127.0.0.1:{port}"}
        assert http.post(base + "/gradio_api/queue/join", headers=own, json={}).status_code == 422
        r = http.get(base + "/config", headers={"Origin": FRIEND})
        assert r.headers.get("access-control-allow-origin") == FRIEND
    # no Host header at all (HTTP/1.0 style), through http.client
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", "/config", skip_host=True)
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()


# --- the Train tab never reads a path a request names ------------------------------------------
def test_training_folders_only_by_name_inside_the_datasets_folder(tmp_path):
    datasets = tmp_path / "datasets"
    _png(datasets / "good" / "a.png", (1, 2, 3))
    outside = tmp_path / "outside"
    _png(outside / "x.png", (3, 2, 1))
    os.symlink(outside, datasets / "escape")
    (datasets / "linked").mkdir()
    os.symlink(outside / "x.png", datasets / "linked" / "x.png")
    assert training.dataset_folder(datasets, "good") == (datasets / "good").resolve()
    # the shipped example first; the link out is not offered
    assert training.dataset_names(datasets) == [training.EXAMPLE_DATASET, "good", "linked"]
    for name in ("escape", "../outside", str(outside), "/etc", "~", "", ".", "good/../.."):
        with pytest.raises(GenlabError) as e:
            training.dataset_folder(datasets, name)
        assert str(outside) not in str(e.value) and "/etc" not in str(e.value)
    with pytest.raises(GenlabError, match="links to files outside") as e:
        training.dataset_folder(datasets, "linked")
    assert str(outside) not in str(e.value)
    with pytest.raises(GenlabError, match="uploaded images or its shipped example only"):
        training.dataset_folder(None, "good")
    big = datasets / "big"
    big.mkdir()
    for i in range(training.MAX_DATASET_FILES + 1):
        (big / f"{i}.txt").touch()
    with pytest.raises(GenlabError, match="more than"):
        training.dataset_folder(datasets, "big")
    uploads = tmp_path / "uploads"
    _png(uploads / "u.png", (0, 0, 0))
    got = training.gather_images([str(uploads / "u.png")], None, tmp_path / "t", uploads=(uploads,))
    assert (got / "u.png").is_file()
    with pytest.raises(GenlabError, match="uploaded to this page"):
        training.gather_images([str(outside / "x.png")], None, tmp_path / "t2", uploads=(uploads,))
    assert not (tmp_path / "t2").exists()


def _hostile_payload(kind: str, value: str):
    if kind in ("file", "image", "uploadbutton"):
        return {"path": value, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
    if kind == "imageeditor":
        background = {"path": value, "meta": {"_type": "gradio.FileData"}}
        return {"background": background, "layers": [], "composite": None, "id": None}
    if kind == "checkboxgroup":
        return [value]
    return value


#: component types whose value a request may fill with a path
PATH_SLOTS = {"textbox", "dropdown", "file", "image", "imageeditor", "json", "checkboxgroup"}


def test_every_queue_function_refuses_paths_outside_the_allowed_roots(site):
    """Each function of the queue, each input that can carry a path (prompts and captions
    are text, not paths), called with /etc, the home folder, a folder outside every root, a
    datasets name that links outside, and traversal: no training starts, and no message
    shows a file found there or the target of a link."""
    base, outside = site["base"], site["outside"]
    config = _config(base)
    components = {c["id"]: c for c in config["components"]}
    home = str(Path.home())
    hostile = ["/etc", home, "~", str(outside), "escape", "../outside", "linked"]
    forbidden = [MARKER, "/etc/", home + "/", str(outside) + "/"]
    loras = site["root"] / "runs" / "loras"
    before = sorted(loras.rglob("*")) if loras.exists() else []
    train_fn = None
    calls = 0
    for dep in config["dependencies"]:
        inputs = [components.get(i, {}) for i in dep["inputs"]]
        labels = [str(c.get("props", {}).get("label") or "") for c in inputs]
        if any(label.startswith("or a folder") for label in labels):
            train_fn = dep["id"]
        defaults = [c.get("props", {}).get("value") for c in inputs]
        for slot, component in enumerate(inputs):
            kind = component.get("type")
            label = labels[slot]
            if kind not in PATH_SLOTS or "prompt" in label or "caption" in label:
                continue
            for value in hostile:
                data = list(defaults)
                data[slot] = _hostile_payload(kind, value)
                messages = queue_call(base, dep["id"], data)
                calls += 1
                text = json.dumps(messages)
                for bad in forbidden:
                    assert bad not in text, (dep["id"], label, value, bad, text[-400:])
                success, error = outcome(messages)
                if dep["id"] == train_fn:
                    assert not success, (label, value)
                    if label.startswith("or a folder"):
                        assert "/" not in error.replace("--datasets-dir", "") or (
                            "not in the list of choices" in error  # Gradio's check, first
                        ), error
    assert train_fn is not None and calls > 50
    after = sorted(loras.rglob("*")) if loras.exists() else []
    assert after == before  # nothing trained, nothing copied
    # neither uploads nor a folder: our sentence, naming no path
    messages = queue_call(
        base, train_fn, [None, None, "", "my-lora", "builtin", 4, 10, 1e-3, False, False]
    )  # fmt: skip (the last: buckets)
    success, error = outcome(messages)
    assert not success and "Upload images" in error and "/" not in error


# --- served files stay inside their folder ------------------------------------------------------
def _far(a: tuple, b: tuple) -> bool:
    return sum(abs(int(x) - int(y)) for x, y in zip(a, b, strict=True)) > 60


def test_a_plot_linked_outside_the_run_is_not_served(site):
    run = site["root"] / "runs" / "faithful"
    figures = dict((name, image) for image, name in lab.run_figures(run))
    assert "ok" in figures and "leak" not in figures
    assert tuple(np.asarray(figures["ok"])[0, 0]) == (0, 255, 0)
    for image in figures.values():  # no picture is the secret's magenta
        assert tuple(np.asarray(image)[0, 0]) != (255, 0, 255)
    # through the page: the lab's run view (a private queue function), its images fetched raw
    base = site["base"]
    config = _config(base)
    components = {c["id"]: c for c in config["components"]}
    show = next(
        d["id"] for d in config["dependencies"]
        if [components[i].get("props", {}).get("label") for i in d["inputs"]] == ["trained run"]
        and len(d["outputs"]) == 2
    )  # fmt: skip
    success, error = outcome(messages := queue_call(base, show, ["faithful"]))
    assert success, error
    gallery = messages[-1]["output"]["data"][1]
    captions = [item.get("caption") for item in gallery]
    assert "ok" in captions and "leak" not in captions and MARKER not in json.dumps(messages)
    from PIL import Image

    with httpx.Client(timeout=30) as http:
        for item in gallery:
            r = http.get(base + "/gradio_api/file=" + item["image"]["path"])
            assert r.status_code == 200
            pixel = Image.open(io.BytesIO(r.content)).convert("RGB").getpixel((0, 0))
            assert _far(pixel, (255, 0, 255))  # served lossy (webp): colours are near
            assert item.get("caption") != "ok" or not _far(pixel, (0, 255, 0))
        # a link inside the output folder to a file outside is not served either
        out = site["studio"].out
        (out / "txt2img").mkdir(exist_ok=True)
        link = out / "txt2img" / "link.png"
        if not link.is_symlink():
            os.symlink(site["outside"] / f"secret-{MARKER}.png", link)
        r = http.get(f"{base}/gradio_api/file={link}")
        assert r.status_code in (403, 404) and r.content[:4] != b"\x89PNG"


def test_run_summary_does_not_follow_a_link_outside(tmp_path):
    from genlab.webui.catalog import run_summary

    (tmp_path / "secret.json").write_text(json.dumps({"token": "s3cret"}))
    (tmp_path / "run").mkdir()
    os.symlink(tmp_path / "secret.json", tmp_path / "run" / "meta.json")
    (tmp_path / "run" / "eval.json").write_text(json.dumps({"nll": 1.5}))
    summary = run_summary(tmp_path / "run")
    assert "s3cret" not in json.dumps(summary) and summary["eval"] == {"nll": 1.5}


# --- bounded work, and a job whose client left stops --------------------------------------------
def test_xy_axes_and_total_work_are_bounded():
    from genlab.generation import GenerationRequest

    base = GenerationRequest(PROMPT, steps=20)
    with pytest.raises(GenlabError, match=r"1\.\.150, got 1000"):
        xygrid.cell_requests(base, "steps", "10, 1000", "nothing", "")
    for axis, text in (("CFG scale", "5, 25"), ("CFG scale", "nan"), ("seed", "1, -5"),
                       ("seed", "99999999999999999999999"), ("steps", "0")):  # fmt: skip
        with pytest.raises(GenlabError, match="must lie in"):
            xygrid.axis_values(axis, text)
    big = GenerationRequest(PROMPT, steps=150, width=1024, height=1024)
    with pytest.raises(GenlabError, match="more work"):
        xygrid.cell_requests(big, "seed", "1,2,3,4,5,6,7,8", "CFG scale", "1,2,3,4,5,6,7,8")
    _xs, _ys, rows = xygrid.cell_requests(base, "seed", "1,2,3,4,5,6,7,8", "steps", "150, 2")
    assert len(rows) * len(rows[0]) == 16 and rows[0][0].steps == 150


def test_an_oversized_xy_request_is_refused_in_one_sentence(site):
    base = site["base"]
    config = _config(base)
    fn = _fn_index(config, "xy_plot")
    seeds = ",".join(str(i) for i in range(8))
    for x_values, y_axis, y_values, extra in (
        (seeds, "steps", ",".join(["1000"] * 8), {}),  # the 1000 steps x 64 cells
        (",".join(str(i) for i in range(9)), "CFG scale", "1,2,3,4,5,6,7,8", {}),  # 72 cells
        (seeds, "steps", ",".join(["150"] * 8), {"width": 1024, "height": 1024}),  # the work
    ):
        data = _xy_inputs(config, x_values=x_values, y_axis=y_axis, y_values=y_values, **extra)
        started = time.perf_counter()
        success, error = outcome(queue_call(base, fn, data))
        assert not success and _one_sentence(error), error
        assert time.perf_counter() - started < 30


def _xy_inputs(config: dict, **given) -> list:
    """The xy_plot function's inputs by their labels on the page, defaults elsewhere."""
    fn = _fn_index(config, "xy_plot")
    dep = next(d for d in config["dependencies"] if d["id"] == fn)
    components = {c["id"]: c for c in config["components"]}
    labels = {"x_values": "X values", "y_axis": "Y axis", "y_values": "Y values",
              "x_axis": "X axis", "width": "width", "height": "height", "steps": "steps",
              "prompt": "prompt"}  # fmt: skip
    inputs = [components[i].get("props", {}) for i in dep["inputs"]]
    data = [c.get("value") for c in inputs]
    for name, value in given.items():
        data[[c.get("label") for c in inputs].index(labels[name])] = value
    return data


def test_an_abandoned_long_job_stops_and_a_small_one_finishes_in_seconds(site):
    """An X/Y plot of 64 cells of 150 steps at the built-in model's 32 x 32 (the grid takes
    several times the bound below) is joined, watched until it draws, and its client disconnects; a
    2-step txt2img sent next finishes within seconds: the grid stopped at its next step."""
    base = site["base"]
    config = _config(base)
    fn = _fn_index(config, "xy_plot")
    seeds = ",".join(str(i) for i in range(8))
    data = _xy_inputs(config, prompt=PROMPT, x_values=seeds, y_axis="steps",
                      y_values=",".join(["150"] * 8), width=32, height=32)  # fmt: skip
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None}
    with httpx.Client(timeout=120) as http:
        assert http.post(f"{base}/gradio_api/queue/join", json=body).status_code == 200
        params = {"session_hash": session}
        with http.stream("GET", f"{base}/gradio_api/queue/data", params=params) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:]).get("msg")
                    assert msg != "process_completed", line  # it must still be drawing
                    if msg in ("process_generating", "progress"):
                        break  # drawing: now the client leaves
    time.sleep(0.5)
    txt2img = _fn_index(config, "txt2img")
    dep = next(d for d in config["dependencies"] if d["id"] == txt2img)
    components = {c["id"]: c for c in config["components"]}
    inputs = [components[i].get("props", {}) for i in dep["inputs"]]
    small = [c.get("value") for c in inputs]
    small[0] = PROMPT
    small[[c.get("label") for c in inputs].index("steps")] = 2
    started = time.perf_counter()
    success, error = outcome(queue_call(base, txt2img, small, wait=60))
    took = time.perf_counter() - started
    assert success, error
    assert took < 20, f"the small request waited {took:.0f} s behind an abandoned job"


def _long_grid(base: str, config: dict) -> dict:
    """A join body for an X/Y plot that takes minutes (64 cells of 150 steps at 32 x 32)."""
    seeds = ",".join(str(i) for i in range(8))
    data = _xy_inputs(config, prompt=PROMPT, x_values=seeds, y_axis="steps",
                      y_values=",".join(["150"] * 8), width=32, height=32)  # fmt: skip
    return {"data": data, "fn_index": _fn_index(config, "xy_plot"),
            "session_hash": uuid.uuid4().hex, "event_data": None}  # fmt: skip


def _small_draw_seconds(base: str, config: dict) -> float:
    """Seconds a 2-step txt2img sent now takes to finish (it waits behind any job)."""
    txt2img = _fn_index(config, "txt2img")
    dep = next(d for d in config["dependencies"] if d["id"] == txt2img)
    components = {c["id"]: c for c in config["components"]}
    inputs = [components[i].get("props", {}) for i in dep["inputs"]]
    small = [c.get("value") for c in inputs]
    small[0] = PROMPT
    small[[c.get("label") for c in inputs].index("steps")] = 2
    started = time.perf_counter()
    success, error = outcome(queue_call(base, txt2img, small, wait=60))
    assert success, error
    return time.perf_counter() - started


def _when_drawing(studio, timeout: float = 60.0) -> None:
    end = time.perf_counter() + timeout
    while studio.current is None or studio.current.step < 1:
        assert time.perf_counter() < end, "the long job never started drawing"
        time.sleep(0.05)


def test_a_join_whose_client_never_listens_stops_within_seconds(site):
    """A client joins the queue with a long grid and never opens the event stream: Gradio
    never notices it; the draw's check of who listens stops it after the grace time, and a
    small request sent next finishes in seconds."""
    from genlab.webui.clients import GRACE

    base, studio = site["base"], site["studio"]
    config = _config(base)
    r = httpx.post(f"{base}/gradio_api/queue/join", json=_long_grid(base, config), timeout=30)
    assert r.status_code == 200
    _when_drawing(studio)
    started = time.perf_counter()
    while studio.current is not None:
        assert time.perf_counter() - started < GRACE + 10, "the unheard grid kept drawing"
        time.sleep(0.05)
    took = _small_draw_seconds(base, config)
    assert took < 20, f"the small request waited {took:.0f} s behind an unheard job"


def test_clients_that_listen_are_served_to_the_end_by_either_stream(site, monkeypatch):
    """With a grace time far shorter than the draw, a client listening on the session's
    stream (/queue/data) and one on the REST form's own stream (/call/NAME/EVENT, no session
    hash given) both get their images: only a client that is not listening is stopped."""
    base, studio = site["base"], site["studio"]
    monkeypatch.setattr(studio.clients, "grace", 0.2)
    config = _config(base)
    txt2img = _fn_index(config, "txt2img")
    dep = next(d for d in config["dependencies"] if d["id"] == txt2img)
    components = {c["id"]: c for c in config["components"]}
    inputs = [components[i].get("props", {}) for i in dep["inputs"]]
    labels = [c.get("label") for c in inputs]
    data = [c.get("value") for c in inputs]
    data[0] = PROMPT
    data[labels.index("steps")] = 60  # about 1.3 s on a quiet machine: several grace times
    data[labels.index("seed (-1: random)")] = 3
    started = time.perf_counter()
    success, error = outcome(queue_call(base, txt2img, data, wait=300))
    assert success, error
    assert time.perf_counter() - started > 0.6  # longer than the grace time: the rule applied
    with httpx.Client(timeout=300) as http:
        r = http.post(f"{base}/gradio_api/call/txt2img", json={"data": data})
        assert r.status_code == 200, r.text
        event_id = r.json()["event_id"]
        with http.stream("GET", f"{base}/gradio_api/call/txt2img/{event_id}") as stream:
            events = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert events[-1] == "event: complete", events


def test_cancel_stops_the_job_and_a_malformed_cancel_is_one_sentence(site):
    """Gradio's /cancel: a body without the job's fields answers 400 with one sentence (not
    Gradio's 422 validation dump); the client's own cancel of a long grid it watches ends
    the stream and the draw within seconds."""
    from genlab.webui.clients import BAD_CANCEL

    base, studio = site["base"], site["studio"]
    for body in ({}, {"session_hash": "x"}, [1], "cancel"):
        r = httpx.post(f"{base}/gradio_api/cancel", json=body, timeout=30)
        assert (r.status_code, r.text) == (400, BAD_CANCEL), r.text
        assert _one_sentence(r.text)
    config = _config(base)
    body = _long_grid(base, config)
    with httpx.Client(timeout=120) as http:
        joined = http.post(f"{base}/gradio_api/queue/join", json=body)
        assert joined.status_code == 200
        event_id = joined.json()["event_id"]
        params = {"session_hash": body["session_hash"]}
        with http.stream("GET", f"{base}/gradio_api/queue/data", params=params) as stream:
            lines = stream.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    if json.loads(line[5:]).get("msg") in ("process_generating", "progress"):
                        break  # drawing: now cancel it
            _when_drawing(studio)
            cancel = {"session_hash": body["session_hash"], "fn_index": body["fn_index"],
                      "event_id": event_id}  # fmt: skip
            started = time.perf_counter()
            r = http.post(f"{base}/gradio_api/cancel", json=cancel)
            assert r.status_code == 200, r.text
            for line in lines:  # the stream ends (Gradio completes a cancelled event)
                if line.startswith("data:") and "process_completed" in line:
                    break
    while studio.current is not None:
        assert time.perf_counter() - started < 10, "the cancelled grid kept drawing"
        time.sleep(0.05)
    took = _small_draw_seconds(base, config)
    assert took < 20, f"the small request waited {took:.0f} s behind a cancelled job"


# --- unreadable model files -----------------------------------------------------------------------
def test_unreadable_safetensors_are_listed_with_their_reason_and_the_page_serves(site):
    cat: Catalog = site["studio"].catalog
    assert set(cat.unreadable) == {
        "truncated.safetensors", "huge-header.safetensors", "pickled.safetensors",
    }  # fmt: skip
    assert "pickle" in cat.unreadable["pickled.safetensors"]
    assert "header too large" in cat.unreadable["huge-header.safetensors"]
    assert "incomplete" in cat.unreadable["truncated.safetensors"]
    assert list(cat.text_to_image) == ["builtin", "builtin-fast"]
    config = _config(site["base"])
    shown = [c for c in config["components"] if c.get("props", {}).get("elem_id")
             == "unreadable-models"]  # fmt: skip
    assert "pickled.safetensors" in shown[0]["props"]["value"]
    again = Catalog.scan(site["root"] / "models", None)  # a rescan does not raise either
    assert set(again.unreadable) == set(cat.unreadable)


def test_webui_refuses_bad_security_flags_in_one_sentence(tmp_path, capsys):
    from genlab.cli import main

    (tmp_path / "f").write_text("a file, not a folder")
    out = ["--out", str(tmp_path / "out")]
    for args in (["--cors-allow-origins", "evil.example"], ["--allowed-hosts", "a/b"],
                 ["--datasets-dir", str(tmp_path / "f")],
                 ["--datasets-dir", str(tmp_path / "missing")]):  # fmt: skip
        assert main(["webui", *out, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "Traceback" not in err, (args, err)
