"""The web page: its parts without a server, then a live server on 127.0.0.1 driven through
gradio_client, a plain HTTP client (what it must not serve) and a real browser."""

import os
import shutil
import socket
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

gradio = pytest.importorskip("gradio", reason="the web page needs the extra genlab[webui]")

from genlab.errors import GenlabError  # noqa: E402
from genlab.generation import GenerationRequest, read_parameters  # noqa: E402
from genlab.generation.pnginfo import parse_parameters  # noqa: E402
from genlab.webui import lab, xygrid  # noqa: E402
from genlab.webui.catalog import Catalog  # noqa: E402
from genlab.webui.server import MARKER, prepare_out  # noqa: E402
from genlab.webui.studio import mask_from_editor  # noqa: E402
from genlab.webui.worker import Drawn, Preview  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PROMPT = "a red circle to the left of a blue square"


# --- the parts, no server -------------------------------------------------------------------
def test_xy_axes_typed_and_checked():
    assert xygrid.axis_values("CFG scale", "1, 3.5,7") == [1.0, 3.5, 7.0]
    assert xygrid.axis_values("prompt S/R", 'red, "blue, dark"') == ["red", "blue, dark"]
    assert xygrid.axis_values("nothing", "ignored") == [None]
    with pytest.raises(GenlabError, match="not a valid steps"):
        xygrid.axis_values("steps", "10, many")
    with pytest.raises(GenlabError, match="Unknown sampler"):
        xygrid.axis_values("sampler", "euler, plms")


def test_xy_cells_vary_one_field_each():
    base = GenerationRequest("a red circle", seed=5, steps=20, batch_size=4)
    _xs, _ys, rows = xygrid.cell_requests(base, "prompt S/R", "red, green", "steps", "5, 10, 15")
    assert (len(rows), len(rows[0])) == (3, 2)
    assert [r.prompt for r in rows[0]] == ["a red circle", "a green circle"]
    assert [row[0].steps for row in rows] == [5, 10, 15]
    assert {r.seed for row in rows for r in row} == {5} and rows[0][0].batch_size == 1
    with pytest.raises(GenlabError, match="does not occur"):
        xygrid.cell_requests(base, "prompt S/R", "blue, green", "nothing", "")
    with pytest.raises(GenlabError, match="too many"):
        xygrid.cell_requests(base, "seed", ",".join(map(str, range(9))), "steps", "1,2,3,4,5,6,7,8")


def test_xy_grid_lays_out_rows_and_columns():
    from PIL import Image

    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    grid = xygrid.draw_grid([[red, blue]], ["seed: 1", "seed: 2"], [""], cell=32)
    a = np.asarray(grid)
    assert a.shape == (20 + 32, 2 * 32, 3)  # a label row on top, no label column
    assert tuple(a[30, 5]) == (255, 0, 0) and tuple(a[30, 40]) == (0, 0, 255)


def test_output_folder_must_be_the_pages_own(tmp_path):
    mine = prepare_out(tmp_path / "out")
    assert (mine / MARKER).is_file()
    assert prepare_out(mine) == mine  # reused by a later start
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secrets.txt").write_text("x")
    with pytest.raises(GenlabError, match="holds other files"):
        prepare_out(tmp_path / "home")
    (tmp_path / "file").write_text("x")
    with pytest.raises(GenlabError, match="is a file"):
        prepare_out(tmp_path / "file")


def test_webui_command_refuses_bad_settings_in_one_sentence(tmp_path, capsys):
    from genlab.cli import main

    for args in (["--port", "-1"], ["--port", "99999"], ["--queue", "0"],
                 ["--out", "/proc/genlab/out"], ["--out", str(tmp_path / "f")]):  # fmt: skip
        (tmp_path / "f").write_text("a file, not a folder")
        assert main(["webui", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "Traceback" not in err, (args, err)


def test_mask_from_the_editor_is_what_was_painted():
    from PIL import Image

    background = Image.new("RGB", (64, 64), "gray")
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 32, 64))  # the left half painted
    image, mask = mask_from_editor({"background": background, "layers": [layer]}, 32, 32)
    assert image.size == mask.size == (32, 32)
    m = np.asarray(mask)
    assert m[:, :16].min() == 255 and m[:, 16:].max() == 0
    with pytest.raises(GenlabError, match="Paint the region"):
        mask_from_editor({"background": background, "layers": []}, 32, 32)


def test_em_steps_never_lower_the_likelihood():
    scores = [lab.em_figure("faithful", 2, k)[0] for k in (1, 2, 5)]
    assert all(s is not None for s in scores)
    from genlab.models.mixture import GaussianMixture

    history = GaussianMixture(n_components=2, max_iter=30, seed=0).fit(lab.toy_points("faithful"))
    assert np.all(np.diff(history.history_) >= -1e-9)


def test_forward_process_figure_names_alpha_bar():
    from genlab.diffusion.schedules import alpha_bar

    fig = lab.forward_figure("moons", 500)
    assert f"{float(alpha_bar('linear', 1000)[499]):.3f}" in fig.axes[0].get_title()
    with pytest.raises(GenlabError, match="t must lie"):
        lab.forward_figure("moons", 0)


def test_playground_density_of_a_mixture_is_its_log_prob():
    model = lab.fit_toy("gmm", "8gaussians", components=8)
    fig = lab.density_figure(model, "8gaussians", title="gmm", grid=20)
    assert fig.axes[0].get_title() == "gmm"
    x = lab.toy_points("8gaussians")
    assert model.score(x) > -3.0  # 8 well separated modes, unit spread: a good fit


def test_studio_streams_steps_previews_and_saved_images(tmp_path, monkeypatch):
    from genlab.webui import studio as studio_module

    monkeypatch.setattr(studio_module, "PREVIEW_EVERY", 0.0)  # a preview after every step
    studio = studio_module.Studio(Catalog(), prepare_out(tmp_path / "out"))
    request = GenerationRequest(PROMPT, steps=3, seed=2, batch_size=2)
    events = list(studio.generate(request, "builtin", "txt2img"))
    previews = [e for e in events if isinstance(e, Preview)]
    assert [e.step for e in previews] == [1, 2] and len(previews[0].images) == 2
    assert previews[0].images[0].size == (32, 32)
    done = events[-1]
    assert (
        isinstance(done, Drawn) and [p.parent for p in done.paths] == [studio.out / "txt2img"] * 2
    )
    assert [read_parameters(p) for p in done.paths] == done.result.parameters
    with pytest.raises(GenlabError, match="Unknown model"):
        list(studio.generate(request, "../runs/x", "txt2img"))


# --- a live server ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The page on 127.0.0.1 with a fitted mixture run in its runs folder."""
    from genlab.runs import fit_run
    from genlab.webui import create, launch

    root = tmp_path_factory.mktemp("webui")
    fit_run("gmm", "faithful", root / "runs" / "faithful", options={"n_components": 2})
    from genlab.finetune.train import finetune, lora_config

    cfg = lora_config("builtin", "shapes", train={"steps": 2, "batch_size": 4, "lr": 0.05})
    cfg = cfg.merge({"data.n": 8, "data.seed": 1})
    finetune(cfg, root / "runs" / "loras" / "tiny")
    app, studio = create(root / "out", runs_dir=root / "runs")
    port = _free_port()
    launch(app, studio, port=port, block=False, queue_size=4)
    yield {"url": f"http://127.0.0.1:{port}/", "root": root, "studio": studio}
    app.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def test_txt2img_endpoint_images_carry_the_request(client):
    images, text = client.predict(
        PROMPT, negative_prompt="green", sampler="euler", steps=6, cfg_scale=4.0, seed=11,
        batch_size=2, api_name="/txt2img",
    )  # fmt: skip
    assert len(images) == 2
    for image, seed in zip(images, (11, 12), strict=True):
        fields = parse_parameters(read_parameters(image["image"]))
        assert fields["Prompt"] == PROMPT and fields["Negative prompt"] == "green"
        assert (fields["Steps"], fields["Sampler"], fields["CFG scale"]) == ("6", "Euler", "4")
        assert fields["Seed"] == str(seed) and fields["Size"] == "32x32"
        assert image["caption"] == read_parameters(image["image"])
    assert text == images[0]["caption"]


def test_same_seed_same_image_and_random_seed_recorded(client):
    from PIL import Image

    a, _ = client.predict(PROMPT, steps=4, seed=3, api_name="/txt2img")
    b, _ = client.predict(PROMPT, steps=4, seed=3, api_name="/txt2img")
    assert np.array_equal(
        np.asarray(Image.open(a[0]["image"])), np.asarray(Image.open(b[0]["image"]))
    )
    _c, text = client.predict(PROMPT, steps=4, seed=-1, api_name="/txt2img")
    assert int(parse_parameters(text)["Seed"]) >= 0


def test_three_concurrent_calls_are_all_served(client):
    jobs = [client.submit(PROMPT, steps=4, seed=s, api_name="/txt2img") for s in (1, 2, 3)]
    seeds = [parse_parameters(job.result(timeout=120)[1])["Seed"] for job in jobs]
    assert seeds == ["1", "2", "3"]


def test_txt2img_with_a_lora_from_the_picker(client):
    plain, _ = client.predict(PROMPT, steps=4, seed=5, api_name="/txt2img")
    images, text = client.predict(
        PROMPT, steps=4, seed=5, loras=["loras/tiny"], lora_scale=2.0, api_name="/txt2img"
    )
    assert "Lora hashes: tiny: " in text and "Lora scales: tiny: 2" in text
    from PIL import Image

    a, b = (np.asarray(Image.open(x[0]["image"]), dtype=int) for x in (plain, images))
    assert np.abs(a - b).max() > 0
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError):
        client.predict(PROMPT, loras=["../../etc"], api_name="/txt2img")


def test_errors_show_a_message_and_the_app_keeps_serving(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="multiples of 4"):
        client.predict(PROMPT, width=36, height=30, steps=2, api_name="/txt2img")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(PROMPT, model="/etc", api_name="/txt2img")  # only the catalog loads
    images, _ = client.predict(PROMPT, steps=2, seed=0, api_name="/txt2img")
    assert len(images) == 1


def test_img2img_png_info_and_xy_endpoints(client, server):
    from gradio_client import handle_file

    images, _ = client.predict(PROMPT, steps=4, seed=7, api_name="/txt2img")
    path = images[0]["image"]
    _redrawn, text = client.predict(
        handle_file(path), "a blue circle", strength=0.5, steps=4, seed=1, api_name="/img2img"
    )
    assert parse_parameters(text)["Denoising strength"] == "0.5"
    text, fields = client.predict(handle_file(path), api_name="/png_info")
    assert fields["Prompt"] == PROMPT and fields["Seed"] == "7"
    grid, text = client.predict(
        PROMPT, x_axis="seed", x_values="1, 2", y_axis="CFG scale", y_values="1, 5", steps=3,
        api_name="/xy_plot",
    )  # fmt: skip
    from PIL import Image

    width, height = Image.open(grid).size
    assert height == 20 + 2 * 128 and width > 2 * 128  # a label row, a label column
    assert "Y: CFG scale = 1, 5" in read_parameters(grid)


def test_inpaint_endpoint_keeps_what_was_not_painted(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    images, _ = client.predict(PROMPT, steps=4, seed=9, api_name="/txt2img")
    layer = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 16, 32))  # the left half painted
    layer.save(tmp_path / "layer.png")
    editor = {
        "background": handle_file(images[0]["image"]),
        "layers": [handle_file(str(tmp_path / "layer.png"))],
        "composite": None,
        "id": None,
    }
    painted, text = client.predict(editor, "a yellow heart", steps=4, seed=1, api_name="/inpaint")
    before = np.asarray(Image.open(images[0]["image"]).convert("RGB"), dtype=int)
    after = np.asarray(Image.open(painted[0]["image"]).convert("RGB"), dtype=int)
    assert np.array_equal(before[:, 16:], after[:, 16:])  # outside the mask: kept exactly
    assert np.abs(before[:, :16] - after[:, :16]).max() > 0
    assert "Denoising strength: 1" in text


def test_only_the_output_folder_is_served(client, server):
    """/etc/passwd, a checkpoint, traversal, URL-encoded and case variants: all refused; an
    image the page made: served."""
    import httpx

    _images, _ = client.predict(PROMPT, steps=2, seed=0, api_name="/txt2img")
    made = sorted((server["studio"].out / "txt2img").glob("*.png"))[-1]
    weights = server["root"] / "runs" / "faithful" / "model" / "model.safetensors"
    assert weights.is_file()
    out = str(server["studio"].out)
    attempts = [
        "/etc/passwd",
        str(weights),
        f"{out}/../runs/faithful/model/model.safetensors",
        f"{out}/txt2img/../../runs/faithful/model/model.safetensors",
        quote("/etc/passwd", safe=""),
        quote(f"{out}/../runs/faithful/model/model.safetensors", safe=""),
        "/ETC/PASSWD",
        "/etc//passwd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "../../../../etc/passwd",
        "~/.bashrc",
        str(Path.home() / ".bashrc"),
    ]
    base = server["url"].rstrip("/")
    with httpx.Client(timeout=10) as http:
        for attempt in attempts:
            for prefix in ("/gradio_api/file=", "/gradio_api/file/", "/file=", "/static/"):
                r = http.get(base + prefix + attempt)
                assert r.status_code in (400, 403, 404), (prefix, attempt, r.status_code)
                assert b"root:" not in r.content and b"safetensors" not in r.content[:64]
        ok = http.get(f"{base}/gradio_api/file={made}")
        assert ok.status_code == 200 and ok.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_uploads_are_capped_and_bombs_refused(client, server, tmp_path):
    """An upload over 10 MB is refused; a small PNG that declares a huge image gets a
    message, not a decoded bomb; the page keeps serving."""
    import zlib

    import httpx
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    base = server["url"].rstrip("/")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(11 * 2**20))
    with httpx.Client(timeout=30) as http, big.open("rb") as f:
        r = http.post(f"{base}/gradio_api/upload", files={"files": ("big.png", f)})
    assert r.status_code == 413
    # a 1-bit 30000 x 30000 PNG: a few kB on disk, 900 megapixels once decoded
    side = 30000
    row = b"\x00" + bytes(side // 8)
    data = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    assert bomb.stat().st_size < 2**20
    with pytest.raises(AppError, match=r"exceeds limit|decompression bomb"):
        client.predict(handle_file(str(bomb)), api_name="/png_info")
    with pytest.raises(AppError, match=r"exceeds limit|decompression bomb"):
        client.predict(handle_file(str(bomb)), PROMPT, steps=2, api_name="/img2img")
    images, _ = client.predict(PROMPT, steps=2, seed=0, api_name="/txt2img")
    assert len(images) == 1


def test_model_lab_lists_runs_with_their_options(server):
    cat: Catalog = server["studio"].catalog
    assert "faithful" in cat.runs and cat.text_to_image == {
        "builtin": "builtin",
        "builtin-fast": "builtin-fast",
    }
    assert list(cat.loras) == ["loras/tiny"]
    assert lab.run_options(cat.run("faithful")) == []  # a mixture samples with no options
    out = lab.sample_run_to(cat.run("faithful"), server["studio"].path("lab", "gmm"), 50, 0, {})
    assert out.is_file() and out.is_relative_to(server["studio"].out)
    names = {o["name"] for o in lab.options_of("ddpm")}
    assert {"sampler", "steps", "cfg", "label"} <= names


# --- a real browser -------------------------------------------------------------------------
def _browser():
    if not Path(CHROMIUM).is_file():
        if os.environ.get("GENLAB_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (install Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} is missing: the browser test runs where it is installed")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_in_a_real_browser(server, tmp_path):
    """Type a prompt, press Generate: the image appears with its parameters; the PNG-info
    tab reads an uploaded image; a screenshot is kept."""
    artifacts = Path(os.environ.get("GENLAB_ARTIFACTS", "build/test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server["url"])
        page.locator("#prompt textarea").fill(PROMPT)
        page.locator("#generate").click()
        page.locator("#txt2img-gallery img").first.wait_for(timeout=60_000)
        page.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.includes('Seed: ')",
            timeout=60_000,
        )
        info = page.locator("#txt2img-info textarea").input_value()
        assert info.startswith(PROMPT) and "Sampler: DPM++ 2M" in info
        page.screenshot(path=str(artifacts / "webui-txt2img.png"))

        made = sorted((server["studio"].out / "txt2img").glob("*.png"))[-1]
        upload = tmp_path / "upload.png"
        shutil.copy(made, upload)
        page.get_by_role("tab", name="PNG info").click()
        page.locator("#pnginfo-image input[type=file]").set_input_files(str(upload))
        page.wait_for_function(
            "document.querySelector('#pnginfo-text textarea').value.includes('Seed: ')",
            timeout=30_000,
        )
        assert page.locator("#pnginfo-text textarea").input_value() == read_parameters(made)
        page.screenshot(path=str(artifacts / "webui-pnginfo.png"))

        # send a gallery image to img2img and redraw it
        page.get_by_role("tab", name="txt2img").click()
        page.locator("#txt2img-gallery img").first.click()
        page.get_by_role("button", name="send to img2img").click()
        page.locator("#img2img-prompt textarea").fill("a blue circle")
        page.get_by_role("button", name="Redraw (img2img)").click()
        page.wait_for_function(
            "document.querySelector('#img2img-info textarea').value.includes('Denoising')",
            timeout=60_000,
        )
        assert "Denoising strength: 0.6" in page.locator("#img2img-info textarea").input_value()
        page.screenshot(path=str(artifacts / "webui-img2img.png"))
        for tab, text in (("X/Y plot", "Draw the grid"), ("Train", "LoRA name"),
                          ("Model lab", "trained run"), ("Playground", "EM iteration"),
                          ("Compare", "families")):  # fmt: skip
            page.get_by_role("tab", name=tab).click()
            page.get_by_text(text, exact=True).first.wait_for(timeout=10_000)
        browser.close()


def _info(page) -> tuple[str, str]:
    """(label, text) of the txt2img tab's parameters box (it shows the progress line while
    a draw runs)."""
    box = page.locator("#txt2img-info")
    return box.locator("[data-testid='block-info']").first.inner_text(), box.locator(
        "textarea"
    ).input_value()


def _start_long_draw(page, url: str) -> None:
    """16 passes of 16 images of 20 steps: a minute or more even on a quiet machine, far
    longer than the checks below."""
    page.goto(url)
    page.locator("#prompt textarea").fill(PROMPT)
    for slider in ("#txt2img-count", "#txt2img-batch"):
        number = page.locator(f"{slider} input[type=number]")
        number.fill("16")
        number.press("Enter")
    page.locator("#generate").click()


def _until_idle(studio, seconds: float) -> float:
    """Seconds until no draw runs; fails after ``seconds``."""
    import time

    started = time.perf_counter()
    while studio.current is not None or studio.pending:
        assert time.perf_counter() - started < seconds, "the draw kept running"
        time.sleep(0.1)
    return time.perf_counter() - started


def test_live_preview_and_interrupt_in_a_real_browser(server):
    """A long draw shows its preview in the gallery with "step n/N, elapsed s, ETA s" (the
    elapsed time never goes back); Interrupt ends it within seconds, says so, and keeps
    the estimate it reached; a closed tab stops its draw and the next Generate is not kept
    waiting behind it."""
    import re
    import time

    artifacts = Path(os.environ.get("GENLAB_ARTIFACTS", "build/test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    studio = server["studio"]
    line = re.compile(r"pass \d+/16, step (\d+)/20, elapsed (\d+) s, ETA (\d+) s")
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _start_long_draw(page, server["url"])
        page.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.includes('ETA')",
            timeout=120_000,
        )
        page.locator("#txt2img-gallery img").first.wait_for(timeout=60_000)  # the preview
        label, first = _info(page)
        assert label == "progress" and line.fullmatch(first), first
        page.wait_for_function(
            f"document.querySelector('#txt2img-info textarea').value !== {first!r}",
            timeout=60_000,
        )
        _, second = _info(page)
        assert line.fullmatch(second), second
        assert int(line.fullmatch(second)[2]) >= int(line.fullmatch(first)[2])  # no reset
        page.screenshot(path=str(artifacts / "webui-preview.png"))

        page.locator("#txt2img-interrupt").click()
        clicked = time.perf_counter()
        page.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.startsWith('Interrupted')",
            timeout=60_000,
        )
        took = time.perf_counter() - clicked
        label, text = _info(page)
        assert label == "parameters"
        assert re.match(r"Interrupted at step \d+/20 of pass \d+/16", text), text
        assert took < 30, f"Interrupt took {took:.0f} s to end the draw"
        assert page.locator("#txt2img-gallery img").count() >= 1  # the estimate, kept
        _until_idle(studio, 10)
        page.screenshot(path=str(artifacts / "webui-interrupted.png"))

        # a tab closed mid-draw stops it; another tab's Generate then draws at once
        _start_long_draw(page, server["url"])
        page.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.includes('ETA')",
            timeout=120_000,
        )
        page.close()
        stopped = _until_idle(studio, 30)
        other = browser.new_page(viewport={"width": 1280, "height": 900})
        other.goto(server["url"])
        other.locator("#prompt textarea").fill(PROMPT)
        other.locator("#generate").click()
        other.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.includes('Seed: ')",
            timeout=120_000,
        )
        browser.close()
    assert stopped < 30


def test_in_a_real_browser_sizes_steps_sending_history_and_examples(server):
    """The built-in model sets the size sliders' range to its own (max 32); steps 0 is
    refused in a sentence; "send" takes the only image unclicked and shows it filling its
    box at its own size; the History tab keeps it; the Train tab's example and the Model
    lab's shipped models are offered."""
    artifacts = Path(os.environ.get("GENLAB_ARTIFACTS", "build/test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server["url"])
        for side in ("width", "height"):  # the model's own range, set once the page loads
            page.wait_for_function(
                f"(document.querySelector('#txt2img-{side} input[type=range]') || {{}}).max"
                " === '32'",
                timeout=60_000,
            )
            slider = page.locator(f"#txt2img-{side} input[type=range]")
            assert slider.get_attribute("step") == "4" and slider.get_attribute("min") == "4"

        page.locator("#prompt textarea").fill(PROMPT)
        steps = page.locator("#txt2img-steps input[type=number]")
        steps.fill("0")
        steps.press("Enter")
        page.locator("#generate").click()
        page.get_by_text("steps must be at least 1, got 0").first.wait_for(timeout=30_000)
        assert steps.input_value() == "0"  # not silently raised to 1

        steps.fill("2")
        steps.press("Enter")
        page.locator("#generate").click()
        page.wait_for_function(
            "document.querySelector('#txt2img-info textarea').value.includes('Steps: 2,')",
            timeout=60_000,
        )
        page.locator("#txt2img-send").click()  # no image clicked: the only one goes
        sent = page.locator("#img2img-image img").first
        sent.wait_for(timeout=30_000)
        natural = sent.evaluate("im => [im.naturalWidth, im.naturalHeight]")
        shown = sent.bounding_box()
        assert natural == [32, 32] and shown["width"] >= 200, (natural, shown)
        # every tab's sliders follow the model (this one is drawn once first shown)
        assert page.locator("#img2img-width input[type=range]").get_attribute("max") == "32"
        page.screenshot(path=str(artifacts / "webui-sent-to-img2img.png"))
        page.get_by_role("tab", name="inpaint").click()  # the editor got it too, enlarged
        # its zoom reads 27% while empty (an 800-px canvas), several hundred once it holds
        # the 32-px image scaled up to fill it
        page.wait_for_function(
            """() => [...document.querySelectorAll('#inpaint-editor *')].some(
                e => e.children.length === 0 && /^\\d+%$/.test(e.textContent.trim())
                && parseInt(e.textContent) >= 300)""",
            timeout=60_000,
        )
        assert not page.locator("#inpaint-editor").get_by_text("Upload an image").is_visible()
        page.screenshot(path=str(artifacts / "webui-sent-to-inpaint.png"))

        page.get_by_role("tab", name="History").click()
        page.locator("#history-gallery img").first.wait_for(timeout=30_000)
        assert page.locator("#history-gallery img").count() >= 1

        page.get_by_role("tab", name="Train").click()
        page.locator("#train-example").click()
        page.wait_for_function(
            "document.querySelector('#train-folder input').value.startsWith('example')",
            timeout=30_000,
        )
        page.get_by_role("tab", name="Model lab").click()
        page.locator("#lab-run input").click()
        page.get_by_role("option", name="shipped: ddpm-digits").wait_for(timeout=30_000)
        browser.close()


def test_page_survives_a_burst_beyond_its_queue(server, client):
    """More requests than the queue holds: each is answered or refused with 'queue is full';
    none is lost, and the page answers afterwards."""
    from gradio_client.exceptions import AppError

    answered, refused, other = [], [], []

    def one(seed: int) -> None:
        from gradio_client import Client

        try:
            Client(server["url"], verbose=False).predict(
                PROMPT, steps=2, seed=seed, api_name="/txt2img"
            )
            answered.append(seed)
        except AppError as e:
            (refused if "queue is full" in str(e).lower() else other).append(str(e))
        except Exception as e:
            (refused if "queue is full" in str(e).lower() else other).append(repr(e))

    threads = [threading.Thread(target=one, args=(s,)) for s in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert other == [] and len(answered) + len(refused) == 10 and answered
    images, _ = client.predict(PROMPT, steps=2, seed=0, api_name="/txt2img")
    assert len(images) == 1
