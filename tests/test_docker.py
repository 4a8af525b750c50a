"""The Docker image, built and run with podman where no Docker daemon runs: the CPU variant of
the repository's Dockerfile from a local Debian base (``podman-here base``), then in it
``genlab txt2img`` (the PNG carries its parameters), and the page with ``--api`` answering
POST /sdapi/v1/txt2img on its port, its healthcheck passing. Slow (the first build takes
minutes; podman's layer cache makes later ones quick): ``make test-all`` runs them; the
compose file's check is fast.

``podman-here`` is found through $PODMAN_HERE or as shared/tools/podman-here in a folder
above the checkout; where it, podman or debootstrap cannot run, the test is skipped and says
why."""

import base64
import io
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/debian-base:bookworm"
IMAGE = "genlab:cpu"
PROMPT = "a red circle"


def _podman_here() -> Path | None:
    if os.environ.get("PODMAN_HERE"):
        return Path(os.environ["PODMAN_HERE"])
    for folder in REPO.parents:
        tool = folder / "shared" / "tools" / "podman-here"
        if tool.is_file():
            return tool
    return None


def _run(tool: Path, *args: str, timeout: float = 600, check: bool = True):
    done = subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        out = (done.stdout + done.stderr)[-3000:]
        raise AssertionError(
            f"podman-here {' '.join(args[:3])} ... exited {done.returncode}:\n{out}"
        )
    return done


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image():
    """podman-here's base and the CPU image built from it; skipped (with the reason) where
    podman or debootstrap cannot run here."""
    tool = _podman_here()
    if tool is None:
        pytest.skip("podman-here not found (set PODMAN_HERE or keep ../shared/tools/podman-here)")
    try:
        info = _run(tool, "info", timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"podman cannot run here: {e}")
    if info.returncode != 0:
        pytest.skip(f"podman cannot run here: {(info.stdout + info.stderr).strip()[-300:]}")
    base = _run(tool, "base", timeout=900, check=False)
    if base.returncode != 0:
        pytest.skip(f"debootstrap cannot make {BASE}: {(base.stdout + base.stderr)[-300:]}")
    started = time.monotonic()
    # docker format keeps the HEALTHCHECK (the OCI format has no field for it)
    _run(tool, "build", "--format", "docker", "--build-arg", f"BASE={BASE}", "-t", IMAGE,
         str(REPO), timeout=3600)  # fmt: skip
    print(f"\nbuilt {IMAGE} in {time.monotonic() - started:.0f} s")
    return tool


@pytest.mark.slow
def test_txt2img_in_the_image_writes_a_png_with_its_parameters(image, tmp_path):
    from PIL import Image

    out = tmp_path / "outputs"
    out.mkdir()
    out.chmod(0o777)  # the image's user (uid 1000) writes here
    draw = f'genlab txt2img "{PROMPT}" --seed 3 --out /data/outputs/a.png'
    script = f'id -un; echo "offline=$HF_HUB_OFFLINE"; {draw}'
    done = _run(image, "run", "--rm", "-v", f"{out}:/data/outputs", IMAGE, "sh", "-c", script,
                timeout=600)  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[:2] == ["genlab", "offline=1"], done.stdout  # non-root, offline
    with Image.open(out / "a.png") as im:
        text = im.info["parameters"]
    assert text.startswith(PROMPT) and "Seed: 3" in text and "Steps: 20" in text, text


@pytest.mark.slow
def test_the_page_in_the_image_serves_sdapi_txt2img_on_its_port(image, tmp_path):
    from PIL import Image

    port, name = _free_port(), f"genlab-test-{os.getpid()}"
    cmd = ["genlab", "webui", "--listen", "--api", "--port", str(port), "--models-dir",
           "/data/models", "--runs-dir", "/data/runs", "--out", "/data/outputs"]  # fmt: skip
    _run(image, "run", "-d", "--name", name, "-e", f"GENLAB_PORT={port}", IMAGE, *cmd)
    try:
        base, deadline, last = f"http://127.0.0.1:{port}", time.monotonic() + 300, None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/sdapi/v1/options", timeout=5) as r:
                    options = json.load(r)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = e
                state = _run(image, "inspect", "-f", "{{.State.Running}}", name, check=False)
                if state.stdout.strip() != "true":
                    logs = _run(image, "logs", name, check=False)
                    pytest.fail(f"the container stopped:\n{(logs.stdout + logs.stderr)[-3000:]}")
                time.sleep(2)
        else:
            logs = _run(image, "logs", name, check=False)
            pytest.fail(f"no answer on {port} ({last}):\n{(logs.stdout + logs.stderr)[-3000:]}")
        assert "sd_model_checkpoint" in options
        body = {"prompt": PROMPT, "seed": 5, "steps": 4, "width": 32, "height": 32}
        request = urllib.request.Request(
            f"{base}/sdapi/v1/txt2img", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=300) as r:
            answer = json.load(r)
        info = json.loads(answer["info"])
        assert (info["seed"], info["steps"], info["width"]) == (5, 4, 32), info
        with Image.open(io.BytesIO(base64.b64decode(answer["images"][0]))) as im:
            assert im.size == (32, 32) and "Seed: 5" in im.info["parameters"]
        # the image's own HEALTHCHECK (python's urllib inside the container) passes
        health = _run(image, "healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        _run(image, "rm", "-f", "-t", "5", name, check=False, timeout=120)


def test_the_compose_file_has_both_profiles_and_the_gpu_reservation():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    cpu, cuda = doc["services"]["genlab-cpu"], doc["services"]["genlab-cuda"]
    assert cpu["profiles"] == ["cpu"] and cuda["profiles"] == ["cuda"]
    device = cuda["deploy"]["resources"]["reservations"]["devices"][0]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    for service in (cpu, cuda):
        assert "127.0.0.1:7860:7860" in service["ports"]
        mounts = {m.split(":")[0]: m.split(":")[1] for m in service["volumes"]}
        assert set(mounts) == {f"./data/{d}" for d in ("models", "loras", "runs", "outputs")}
        assert service["command"].startswith("genlab webui --listen --api --port 7860")
        folders = "--models-dir /data/models --runs-dir /data/runs --out /data/outputs"
        assert folders in service["command"]
