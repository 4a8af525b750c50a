"""The web page under use, against 127.0.0.1 only: start-up, round trip and load.

    python benchmarks/webui_load.py                       # 20 users for 60 s
    python benchmarks/webui_load.py --users 5 --seconds 20 --round-trips 10

1. Start-up: seconds from launching ``genlab webui`` to the page answering HTTP 200, for
   ``--starts`` pages started one after another (median and range), then the page used below.
2. Round trip: txt2img through the page's API (gradio_client, built-in model, 20 steps,
   dpmpp-2m, one image, previews on) one request at a time, against the same request drawn by
   the library in this process (its peer: the same pipeline without the page). Prints the
   medians and their ratio.
3. Load: ``--users`` clients each sending txt2img requests back to back for ``--seconds``;
   every request is counted as answered, refused with "queue full", or failed (lost). Then
   one more request checks that the page still answers. Prints throughput and the p50/p95
   latency of the answered requests.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PROMPT = "a red circle to the left of a blue square"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(out: str, port: int, queue: int) -> tuple[subprocess.Popen, float]:
    """The page in a child process, and the seconds until it answers."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "genlab.cli", "webui", "--out", out, "--port", str(port),
           "--runs-dir", out, "--queue", str(queue)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError as e:
            if proc.poll() is not None:
                why = proc.stderr.read().decode()[-2000:]
                raise SystemExit(f"the page did not start: {why}") from e
            time.sleep(0.05)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def round_trips(url: str, n: int) -> tuple[float, float]:
    """Median seconds of a page round trip and of the same draw in the library."""
    from gradio_client import Client

    from genlab.backends import load_backend
    from genlab.generation import GenerationRequest

    client = Client(url, verbose=False)
    client.predict(PROMPT, steps=20, seed=0, api_name="/txt2img")  # warm
    page = []
    for i in range(n):
        t = time.perf_counter()
        client.predict(PROMPT, steps=20, seed=i, api_name="/txt2img")
        page.append(time.perf_counter() - t)
    pipe = load_backend("builtin")
    pipe(GenerationRequest(PROMPT, steps=20))  # warm
    library = []
    for i in range(n):
        t = time.perf_counter()
        pipe(GenerationRequest(PROMPT, steps=20, seed=i))
        library.append(time.perf_counter() - t)
    return statistics.median(page), statistics.median(library)


def load(url: str, users: int, seconds: float) -> dict:
    from gradio_client import Client

    answered: list[float] = []
    refused: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def user(k: int) -> None:
        client = Client(url, verbose=False)
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                client.predict(PROMPT, steps=20, seed=1000 * k + i, api_name="/txt2img")
                with lock:
                    answered.append(time.perf_counter() - t)
            except Exception as e:
                with lock:
                    (refused if "queue is full" in str(e).lower() else failed).append(repr(e))
                time.sleep(0.5)  # a refused user waits a little before asking again
            i += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    alive = Client(url, verbose=False).predict(PROMPT, steps=20, seed=0, api_name="/txt2img")
    return {
        "wall": wall,
        "answered": len(answered),
        "refused": len(refused),
        "failed": failed,
        "throughput": len(answered) / wall,
        "p50": percentile(answered, 0.5) if answered else float("nan"),
        "p95": percentile(answered, 0.95) if answered else float("nan"),
        "alive": len(alive[0]) == 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--round-trips", type=int, default=20)
    ap.add_argument("--queue", type=int, default=16, help="the page's queue size")
    ap.add_argument("--starts", type=int, default=5, help="cold starts timed first (median)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    starts = []
    for _ in range(args.starts):
        with tempfile.TemporaryDirectory() as out:
            proc, ready = start(out, free_port(), args.queue)
            starts.append(ready)
            proc.terminate()
            proc.wait(timeout=30)
    if starts:
        print(
            f"start-up: median {statistics.median(starts):.2f} s of {len(starts)} starts "
            f"({min(starts):.2f}-{max(starts):.2f} s) (target 5 s)"
        )
    with tempfile.TemporaryDirectory() as out:
        port = free_port()
        proc, ready = start(out, port, args.queue)
        url = f"http://127.0.0.1:{port}/"
        try:
            print(f"start-up: page answers {ready:.2f} s after `genlab webui` (target 5 s)")
            page, library = round_trips(url, args.round_trips)
            print(
                f"round trip, 20 steps, 1 image: page {page:.3f} s, library {library:.3f} s "
                f"(median of {args.round_trips}); page / library = {page / library:.2f}x "
                "(target: page <= 1 s)"
            )
            r = load(url, args.users, args.seconds)
            print(
                f"load: {args.users} users for {args.seconds:g} s (queue {args.queue}): "
                f"{r['answered']} answered, {r['refused']} refused (queue full), "
                f"{len(r['failed'])} lost; {r['throughput']:.2f} images/s; latency p50 "
                f"{r['p50']:.2f} s, p95 {r['p95']:.2f} s; alive afterwards: {r['alive']}"
            )
            for f in r["failed"][:5]:
                print("  lost:", f)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
