"""stable-diffusion-webui's HTTP API over genlab, against real launched servers over HTTP: the
``webuiapi`` package (models, samplers, txt2img, img2img, inpainting, png_info, progress,
interrupt), a SillyTavern-style session in plain HTTP with and without basic auth, bad
input answered in one sentence, a full queue, the Host guard, and the page's studio and the
API sharing one queue. The built-in model at 32x32 with 2 steps keeps it fast."""

import base64
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the page needs the extra genlab[webui]")
webuiapi = pytest.importorskip("webuiapi", reason="the test extra installs webuiapi")
import httpx  # noqa: E402

from genlab.generation import prompt_loras  # noqa: E402

PROMPT = "a red circle to the left of a blue square"
SMALL = {"width": 32, "height": 32, "steps": 2}
USERS = {"tavern": "s3cret", "other": "pw2"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The page with --api (models: the built-in one and a copy of it named "other"), and
    the API alone (--nowebui) behind basic auth."""
    from genlab.pipelines.text_to_image import builtin_folder
    from genlab.webui import create, launch
    from genlab.webui.api import serve_api
    from genlab.webui.catalog import Catalog
    from genlab.webui.studio import Studio

    root = tmp_path_factory.mktemp("api")
    shutil.copytree(builtin_folder(), root / "models" / "other")
    app, studio = create(root / "out", models_dir=root / "models", runs_dir=None)
    port = _free_port()
    launch(app, studio, port=port, block=False, queue_size=8, api=True)
    auth_port = _free_port()
    studio2 = Studio(Catalog.scan(root / "models", None), root / "out2")
    server = serve_api(studio2, port=auth_port, auth=USERS, queue_size=8, block=False)
    yield {"port": port, "studio": studio, "auth_port": auth_port, "auth_server": server}
    server.should_exit = True
    app.close()


@pytest.fixture
def client(servers):
    return webuiapi.WebUIApi(host="127.0.0.1", port=servers["port"], sampler="DPM++ 2M")


def _one_sentence(text: str) -> bool:
    return isinstance(text, str) and text.endswith(".") and 0 < len(text) < 400


def test_prompt_loras_are_parsed_out_of_the_prompt():
    assert prompt_loras("a cat <lora:teal:0.8>, blue") == ("a cat, blue", (("teal", 0.8),))
    assert prompt_loras("<lora:a> x <LORA:b:-1>") == ("x", (("a", 1.0), ("b", -1.0)))
    assert prompt_loras("plain") == ("plain", ())
    from genlab.errors import GenlabError

    for bad in ("x <lora:a:nan>", "x <lora:a:big>"):
        with pytest.raises(GenlabError, match="WEIGHT"):
            prompt_loras(bad)


def test_webuiapi_lists_and_switches_models_and_samplers(client):
    assert client.util_get_model_names() == ["builtin", "builtin-fast", "other"]
    samplers = client.util_get_sampler_names()
    assert {"Euler a", "DPM++ 2M", "DDIM"} <= set(samplers)
    assert {"karras", "automatic"} <= set(client.util_get_scheduler_names())
    client.util_set_model("Other")  # webuiapi lower-cases and matches the closest title
    assert client.util_get_current_model() == "other"
    client.util_set_model("builtin")
    assert client.util_get_current_model() == "builtin"
    for model in client.get_sd_models():  # names, never paths
        assert not model["filename"].startswith("/") and model["title"] == model["filename"]
    assert client.get_loras() == []
    assert [u["name"] for u in client.get_upscalers()] == ["None", "Lanczos", "Nearest"]
    assert "Latent" in [m["name"] for m in client.get_latent_upscale_modes()]
    assert client.get_embeddings() == {"loaded": {}, "skipped": {}}
    for name in ("get_sd_vae", "get_prompt_styles"):
        assert getattr(client, name)() == []
    memory = client.get_memory()
    assert set(memory) == {"ram", "cuda"}
    flags = client.get_cmd_flags()
    assert flags["api"] is True and not any("/" in str(v) for v in flags.values())


def test_webuiapi_txt2img_echoes_seed_steps_cfg_in_info_and_png(client):
    r = client.txt2img(prompt=PROMPT, seed=7, cfg_scale=3, scheduler="Karras", **SMALL)
    assert len(r.images) == 1 and r.image.size == (32, 32)
    info = r.info
    assert (info["seed"], info["all_seeds"], info["steps"], info["cfg_scale"]) == (7, [7], 2, 3)
    assert info["sampler_name"] == "DPM++ 2M" and info["sd_model_name"] == "genlab-shapes"
    assert len(info["sd_model_hash"]) == 10 and info["width"] == info["height"] == 32
    text = r.image.info["parameters"]
    assert "Seed: 7" in text and "Steps: 2" in text and "CFG scale: 3" in text
    assert "Schedule type: Karras" in text and info["infotexts"] == [text]
    read = client.png_info(r.image)
    assert read.info == text
    assert (read.parameters["Seed"], read.parameters["Size-1"]) == ("7", "32")
    again = client.txt2img(prompt=PROMPT, seed=7, cfg_scale=3, scheduler="Karras", **SMALL)
    assert np.array_equal(np.asarray(again.image), np.asarray(r.image))  # same seed, same image


def test_webuiapi_img2img_and_inpaint_keep_pixels_outside_the_mask(client):
    from PIL import Image

    source = client.txt2img(prompt=PROMPT, seed=3, **SMALL).image.convert("RGB")
    r = client.img2img(images=[source], prompt="a green triangle", denoising_strength=0.6,
                       seed=5, **SMALL)  # fmt: skip
    assert r.image.size == (32, 32) and r.info["denoising_strength"] == 0.6
    assert "Denoising strength: 0.6" in r.image.info["parameters"]
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 12, 32))  # regenerate the left 12 columns
    r = client.img2img(images=[source], mask_image=mask, prompt="a green triangle",
                       denoising_strength=1.0, mask_blur=2, seed=5, **SMALL)  # fmt: skip
    out, before = np.asarray(r.image.convert("RGB")), np.asarray(source)
    assert np.array_equal(out[:, 20:], before[:, 20:])  # beyond the mask and its blur
    assert not np.array_equal(out[:, :12], before[:, :12])


def test_webuiapi_txt2img_with_hires_fix(client, servers):
    r = client.txt2img(prompt=PROMPT, seed=2, enable_hr=True, hr_scale=2, denoising_strength=0.3,
                       hr_upscaler=webuiapi.HiResUpscaler.Latent, hr_second_pass_steps=1,
                       **SMALL)  # fmt: skip
    assert r.image.size == (64, 64)
    text = r.image.info["parameters"]
    assert "Size: 32x32" in text and "Denoising strength: 0.3" in text
    assert "Hires upscale: 2, Hires steps: 1, Hires upscaler: Latent" in text
    assert r.info["extra_generation_params"]["Hires upscaler"] == "Latent"
    assert r.info["denoising_strength"] == 0.3
    r = client.txt2img(prompt=PROMPT, seed=2, enable_hr=True, hr_resize_x=48, hr_resize_y=40,
                       hr_upscaler="Lanczos", denoising_strength=0.3, **SMALL)  # fmt: skip
    assert r.image.size == (48, 40) and "Hires resize: 48x40" in r.image.info["parameters"]
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    names = [u["name"] for u in httpx.get(f"{base}/upscalers", timeout=30).json()]
    modes = [m["name"] for m in httpx.get(f"{base}/latent-upscale-modes", timeout=30).json()]
    assert {"Lanczos", "Nearest"} <= set(names) and "Latent" not in names
    assert {"Latent", "Latent (bicubic antialiased)", "Latent (nearest-exact)"} <= set(modes)


def _png(text: str):
    from io import BytesIO

    from PIL import Image

    return Image.open(BytesIO(base64.b64decode(text)))


def test_the_second_pass_sampler_and_prompts_are_the_librarys(servers):
    """hr_sampler_name / hr_prompt / hr_negative_prompt draw the image genlab's library draws
    with the same settings, another than without them, recorded as webui records them."""
    from genlab.backends import load_backend
    from genlab.generation import GenerationRequest
    from genlab.generation.hires import HiresFix

    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    body = {"prompt": PROMPT, "seed": 2, "cfg_scale": 5, "sampler_name": "DPM++ 2M",
            "enable_hr": True, "hr_scale": 2, "hr_upscaler": "Lanczos",
            "hr_second_pass_steps": 2, "denoising_strength": 0.5, **SMALL}  # fmt: skip
    own = {"hr_sampler_name": "Euler", "hr_scheduler": "Use same scheduler",
           "hr_prompt": "a blue square", "hr_negative_prompt": "red",
           "hr_checkpoint_name": "Use same checkpoint"}  # fmt: skip
    r = httpx.post(f"{base}/txt2img", json=body | own, timeout=120)
    assert r.status_code == 200, r.text
    image = _png(r.json()["images"][0])
    text = image.info["parameters"]
    assert "Hires sampler: Euler" in text and "Hires prompt: a blue square" in text
    assert "Hires negative prompt: red" in text and "Hires schedule type" not in text
    extra = json.loads(r.json()["info"])["extra_generation_params"]
    assert extra["Hires sampler"] == "Euler" and extra["Hires prompt"] == "a blue square"
    hires = HiresFix(2, "Lanczos", 2, 0.5, sampler="euler", prompt="a blue square",
                     negative_prompt="red")  # fmt: skip
    direct = load_backend("builtin")(GenerationRequest(
        PROMPT, sampler="dpmpp-2m", steps=2, cfg_scale=5.0, seed=2, width=32, height=32,
        hires=hires,
    ))  # fmt: skip
    got = np.asarray(image.convert("RGB"), dtype=int)
    assert np.array_equal(got, np.asarray(direct.images[0], dtype=int))
    plain = httpx.post(f"{base}/txt2img", json=body, timeout=120).json()
    other = np.asarray(_png(plain["images"][0]).convert("RGB"), dtype=int)
    assert np.abs(got - other).mean() > 1  # the second pass's own settings drew another image
    # the current model named by its title is the same checkpoint; another one is refused
    r = httpx.post(f"{base}/txt2img", json=body | {"hr_checkpoint_name": "builtin"}, timeout=120)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{base}/txt2img", json=body | {"hr_checkpoint_name": "other"}, timeout=120)
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert _one_sentence(detail) and "hr_checkpoint_name" in detail, detail


def test_webuiapi_inpaint_only_masked_draws_the_crop_at_the_requested_size(client):
    from PIL import Image

    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (60, 30, 72, 42))  # a 12x12 square: far smaller than the picture
    r = client.img2img(images=[source], mask_image=mask, prompt="a green triangle", seed=5,
                       denoising_strength=0.9, mask_blur=2, inpaint_full_res=True,
                       inpaint_full_res_padding=4, **SMALL)  # fmt: skip
    assert r.image.size == (96, 64)  # the picture keeps its size ...
    assert "Size: 32x32" in r.image.info["parameters"]  # ... the crop was drawn at 32x32
    out, before = np.asarray(r.image.convert("RGB")), np.asarray(source)
    touched = np.zeros((64, 96), bool)
    touched[30 - 8 : 42 + 8, 60 - 8 : 72 + 8] = True  # the square and its blur's reach
    assert np.array_equal(out[~touched], before[~touched])
    assert not np.array_equal(out[32:40, 62:70], before[32:40, 62:70])


def test_progress_during_a_job_and_interrupt(client, servers):
    done = {}
    job = threading.Thread(target=lambda: done.setdefault(
        "r", client.txt2img(prompt=PROMPT, seed=1, width=32, height=32, steps=400)))  # fmt: skip
    job.start()
    deadline, seen = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        p = client.get_progress()
        if p["state"]["sampling_step"] >= 1:
            seen = p
            break
        time.sleep(0.2)
    assert seen is not None, "no progress reported"
    assert seen["state"]["job_count"] >= 1 and seen["state"]["sampling_steps"] == 400
    assert 0 < seen["progress"] < 1
    deadline = time.monotonic() + 60  # a preview is decoded once a second
    while seen["current_image"] is None and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = client.get_progress()
    assert seen["current_image"] is not None
    base64.b64decode(seen["current_image"])
    assert client.interrupt() == {}
    job.join(120)
    assert not job.is_alive(), "the interrupted job did not stop"
    r = done["r"]
    assert r.info["interrupted"] is True and len(r.images) == 1  # the estimate reached
    idle = client.get_progress()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0


def _tavern_session(base: str, auth=None) -> dict:
    """What SillyTavern asks, in its order, then one image on a model named per request."""
    with httpx.Client(base_url=base, auth=auth, timeout=300) as c:
        options = c.get("/options")
        assert options.status_code == 200, options.text
        assert "sd_model_checkpoint" in options.json()
        assert "DPM++ 2M" in [s["name"] for s in c.get("/samplers").json()]
        assert "Karras" in [s["label"] for s in c.get("/schedulers").json()]
        titles = [m["title"] for m in c.get("/sd-models").json()]
        assert "other" in titles
        r = c.post("/txt2img", json={
            "prompt": PROMPT, "negative_prompt": "blurry", "seed": 11, "sampler_name": "Euler a",
            "scheduler": "Automatic", "cfg_scale": 4, "override_settings": {
                "sd_model_checkpoint": "other"}, "override_settings_restore_afterwards": True,
            **SMALL})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert c.get("/options").json()["sd_model_checkpoint"] == options.json()[
            "sd_model_checkpoint"]  # fmt: skip
        return body


def test_a_sillytavern_session_over_plain_http(servers):
    body = _tavern_session(f"http://127.0.0.1:{servers['port']}/sdapi/v1")
    info = json.loads(body["info"])
    assert info["sd_model_name"] == "other" and info["seed"] == 11
    assert body["parameters"]["sd_model_checkpoint"] == "other"
    png = base64.b64decode(body["images"][0])
    assert b"Negative prompt: blurry" in png and b"Sampler: Euler a" in png


def test_the_same_session_with_basic_auth(servers):
    base = f"http://127.0.0.1:{servers['auth_port']}/sdapi/v1"
    for auth in (None, ("tavern", "wrong"), ("nobody", "s3cret")):
        r = httpx.get(f"{base}/options", auth=auth)
        assert r.status_code == 401 and _one_sentence(r.json()["detail"])
        assert r.headers["www-authenticate"].startswith("Basic")
    r = httpx.post(f"{base}/txt2img", json={"prompt": "x", **SMALL})
    assert r.status_code == 401
    _tavern_session(base, auth=("tavern", "s3cret"))
    client = webuiapi.WebUIApi(port=servers["auth_port"], username="other", password="pw2")
    assert "sd_model_checkpoint" in client.get_options()


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"prompt": "x", "sampler_name": "Euler z"}, "Euler a"),
        ({"prompt": "x", "steps": 0}, "steps"),
        ({"prompt": "x", "steps": "many"}, "steps"),
        ({"prompt": "x", "width": 33, "height": 32, "steps": 2}, "multiples"),
        ({"prompt": "x", "width": 64, "height": 64, "steps": 2}, "trained at 32x32"),
        ({"prompt": "x", "width": 99999, "height": 32}, "width"),
        ({"prompt": "x", "batch_size": 1000}, "batch_size"),
        ({"prompt": "x", "seed": 2**40}, "seed"),
        ({"prompt": "x", "enable_hr": True, "hr_upscaler": "ESRGAN_4x"}, "hires upscaler"),
        ({"prompt": "x", "enable_hr": True, "hr_sampler_name": "Euler z"}, "hires sampler"),
        ({"prompt": "x", "enable_hr": True, "hr_scheduler": "often"}, "hires schedule"),
        ({"prompt": "x", "enable_hr": True, "hr_checkpoint_name": "nowhere"}, "checkpoint"),
        ({"prompt": "x", "enable_hr": True, "hr_prompt": "y <lora:teal:1>"}, "hr_prompt"),
        ({"prompt": "x <lora:nowhere:1>"}, "LoRA"),
        ({"prompt": "x", "override_settings": {"sd_model_checkpoint": "/etc/passwd"}}, "model"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_input_is_a_4xx_in_one_sentence(servers, payload, needle):
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    r = httpx.post(f"{base}/txt2img", json=payload, timeout=120)
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"]
    assert _one_sentence(detail) and needle in detail, detail
    assert "/etc" not in detail


def test_raw_bad_bodies_and_images(servers):
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    headers = {"content-type": "application/json"}
    for raw in (b"{not json", b'{"prompt": "x", "cfg_scale": NaN}', b""):
        r = httpx.post(f"{base}/txt2img", content=raw, headers=headers)
        assert 400 <= r.status_code < 500 and _one_sentence(r.json()["detail"]), r.text
    bad_image = {"prompt": "x", "init_images": ["not base64 at all!"], **SMALL}
    for body in (bad_image, {"prompt": "x", **SMALL}, {"image": "AAAA"}):
        url = f"{base}/png-info" if "image" in body else f"{base}/img2img"
        r = httpx.post(url, json=body)
        assert 400 <= r.status_code < 500 and _one_sentence(r.json()["detail"]), r.text
    r = httpx.post(f"{base}/options", json={"sd_model_checkpoint": "../../etc"})
    assert r.status_code == 400
    assert httpx.get(f"{base}/progress").status_code == 200  # the server serves on


def test_a_full_queue_is_503(servers):
    base = f"http://127.0.0.1:{servers['auth_port']}/sdapi/v1"
    api = servers["auth_server"].api
    api.active = api.queue_size
    try:
        r = httpx.post(f"{base}/txt2img", json={"prompt": "x", **SMALL}, auth=("tavern", "s3cret"))
    finally:
        api.active = 0
    assert r.status_code == 503 and _one_sentence(r.json()["detail"])


def test_the_guard_covers_the_api(servers):
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    r = httpx.get(f"{base}/options", headers={"host": "evil.test"})
    assert r.status_code == 400
    r = httpx.post(f"{base}/interrupt", headers={"origin": "http://evil.test"})
    assert r.status_code == 403
    r = httpx.get(f"{base}/options", headers={"origin": "http://evil.test"})
    assert "access-control-allow-origin" not in r.headers


def test_the_page_and_the_api_share_one_queue_in_order(servers):
    """A job of the page (its studio, as the page's handlers call it) and one of the API at
    once: both served, the page's first because it took the lock first."""
    import contextlib

    from genlab.generation import GenerationRequest
    from genlab.webui.worker import Drawn

    studio = servers["studio"]
    finished = []

    def page_job():
        request = GenerationRequest(PROMPT, steps=40, seed=2, width=32, height=32)
        with contextlib.closing(studio.generate(request, "builtin", "txt2img")) as events:
            for event in events:
                if isinstance(event, Drawn):
                    finished.append(("page", event.paths))

    page = threading.Thread(target=page_job)
    page.start()
    while studio.current is None:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    waiting = {}

    def api_job():
        r = httpx.post(f"{base}/txt2img", json={"prompt": PROMPT, "seed": 4, **SMALL}, timeout=300)
        waiting["status"] = r.status_code
        finished.append(("api", r.status_code))

    api = threading.Thread(target=api_job)
    api.start()
    deadline = time.monotonic() + 30
    while studio.pending < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    state = httpx.get(f"{base}/progress").json()["state"]
    assert state["job_count"] == 2, (state, studio.pending, finished, waiting)
    page.join(300)
    api.join(300)
    assert [who for who, _ in finished] == ["page", "api"]
    assert finished[0][1][0].is_file() and waiting["status"] == 200


def test_lone_surrogates_and_deep_nesting_are_one_sentence(servers):
    """A prompt holding a lone surrogate (valid JSON, not Unicode a tokenizer reads) and a
    body of 100,000 nested arrays are 400 with one sentence, not the server's 500."""
    base = f"http://127.0.0.1:{servers['port']}/sdapi/v1"
    for field in ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"):
        body = {"prompt": PROMPT, "steps": 3, "enable_hr": True, "hr_scale": 2, field: "a \ud800"}
        raw = json.dumps(body)  # ensure_ascii: the surrogate travels as \ud800
        r = httpx.post(f"{base}/txt2img", content=raw,
                       headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
        assert r.status_code == 400 and "not valid text" in r.json()["detail"], (field, r.text)
    deep = '{"prompt": "x", "hr_prompt": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = httpx.post(f"{base}/txt2img", content=deep,
                   headers={"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert r.status_code in (400, 422) and r.json()["detail"], r.text
