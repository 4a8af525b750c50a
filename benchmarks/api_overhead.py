"""The HTTP API's cost: a 20-step built-in image through ``POST /sdapi/v1/txt2img`` against
the same request as a library call (median of ``--repeats`` each, after one warm-up each),
then ``--clients`` clients posting txt2img for ``--seconds`` seconds through the API (with
``--load-steps`` steps: the load test counts requests, not image quality), every request
accounted for (answered 200, or refused, or failed), the server alive after, p50/p95 latency.

    python benchmarks/api_overhead.py                       # 5 repeats, 20 clients, 60 s
    python benchmarks/api_overhead.py --repeats 3 --seconds 30

The API runs as ``genlab webui --nowebui`` does (studio, lock, guard, uvicorn) in this process,
its queue as long as the number of clients, so none is refused.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import threading
import time

PROMPT = "a red circle to the left of a blue square"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, load average {load:.1f} at start")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--load-steps", type=int, default=4)
    parser.add_argument("--out", default=None, help="output folder (a fresh temporary one)")
    args = parser.parse_args()

    import tempfile

    import httpx

    from genlab.generation import GenerationRequest
    from genlab.webui.api import serve_api
    from genlab.webui.catalog import Catalog
    from genlab.webui.studio import Studio

    print(machine())
    out = args.out or tempfile.mkdtemp(prefix="genlab-api-bench-")
    studio = Studio(Catalog.scan(None, None), out)
    backend = studio.pipeline("builtin")
    request = GenerationRequest(PROMPT, steps=args.steps, seed=1)
    body = {"prompt": PROMPT, "steps": args.steps, "seed": 1, "sampler_name": "DPM++ 2M",
            "cfg_scale": 5}  # fmt: skip

    def library() -> float:
        """The call in a fresh thread, as the server makes it: on a loaded 2-core machine
        torch's main thread ran this 20-step image 100x slower than any other thread did
        (29 s against 0.3 s), which would flatter the API beyond reason."""
        took = []

        def call() -> None:
            t = time.perf_counter()
            with studio.lock:
                backend(backend.check(request))
            took.append(time.perf_counter() - t)

        worker = threading.Thread(target=call)
        worker.start()
        worker.join()
        return took[0]

    port = _free_port()
    server = serve_api(studio, port=port, queue_size=max(16, args.clients), block=False)
    base = f"http://127.0.0.1:{port}/sdapi/v1"
    client = httpx.Client(base_url=base, timeout=600)

    def api() -> float:
        t = time.perf_counter()
        r = client.post("/txt2img", json=body)
        r.raise_for_status()
        return time.perf_counter() - t

    library(), api()  # warm-up: weights loaded, first-call costs paid on both sides
    lib, web = [], []
    for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits both
        lib.append(library())
        web.append(api())
    lib_m, web_m = statistics.median(lib), statistics.median(web)
    print(f"\n{args.steps}-step built-in image, median of {args.repeats}:")
    print(f"  library call  {lib_m:.3f} s   (all: {', '.join(f'{x:.2f}' for x in lib)})")
    print(f"  HTTP API      {web_m:.3f} s   (all: {', '.join(f'{x:.2f}' for x in web)})")
    ratio = web_m / lib_m
    print(f"  ratio API / library: {ratio:.3f} (overhead {100 * (ratio - 1):+.1f}%)")

    load_body = body | {"steps": args.load_steps}
    deadline = time.monotonic() + args.seconds
    latencies: list[float] = []
    outcomes = {"sent": 0, "ok": 0, "refused": 0, "failed": 0}
    guard = threading.Lock()

    def one_client(i: int) -> None:
        with httpx.Client(base_url=base, timeout=900) as c:
            while time.monotonic() < deadline:
                with guard:
                    outcomes["sent"] += 1
                t = time.perf_counter()
                try:
                    r = c.post("/txt2img", json=load_body | {"seed": i})
                    kind = "ok" if r.status_code == 200 and r.json()["images"] else "refused"
                except Exception:
                    kind = "failed"
                with guard:
                    outcomes[kind] += 1
                    if kind == "ok":
                        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    alive = client.get("/progress").status_code == 200
    lost = outcomes["sent"] - outcomes["ok"]
    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    print(f"\n{args.clients} clients for {args.seconds:.0f} s ({args.load_steps}-step images; "
          f"the last requests drained, {wall:.0f} s in all):")  # fmt: skip
    print(f"  sent {outcomes['sent']}, answered 200 {outcomes['ok']}, refused "
          f"{outcomes['refused']}, failed {outcomes['failed']}, lost {lost}")  # fmt: skip
    print(f"  throughput {outcomes['ok'] / wall:.2f} images/s; latency p50 "
          f"{statistics.median(latencies):.1f} s, p95 {q[18]:.1f} s")  # fmt: skip
    print(f"  server alive after: {alive}")
    server.should_exit = True


if __name__ == "__main__":
    main()
