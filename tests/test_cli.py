import json
import subprocess
import sys

import numpy as np
import pytest

from genlab.cli import main


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_sample_eval_prob_roundtrip(tmp_path, capsys):
    run_dir = tmp_path / "h"
    code, out, _ = run(["fit", "normal", "--data", "heights", "--out", str(run_dir)], capsys)
    assert code == 0 and "held-out" in out
    assert (run_dir / "model" / "model.safetensors").is_file()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["data"] == "heights" and "numpy" in meta["versions"]
    assert (run_dir / "plots" / "density.png").stat().st_size > 1000

    code, out, _ = run(["prob", str(run_dir), "x <= 160"], capsys)
    assert code == 0 and out.startswith("P(x <= 160) = 0.1")

    code, out, _ = run(["eval", str(run_dir)], capsys)
    assert code == 0 and "avg_loglik" in out
    assert json.loads((run_dir / "eval.json").read_text())["n"] == 187

    csv = tmp_path / "s.csv"
    args = ["sample", str(run_dir), "--n", "300", "--seed", "1", "--out", str(csv)]
    code, _, _ = run(args, capsys)
    x = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert code == 0 and x.shape == (300,) and 150 < x.mean() < 190
    assert csv.read_text().startswith("height_cm")


def test_gmm_on_faithful_writes_plots(tmp_path, capsys):
    run_dir = tmp_path / "f"
    args = ["fit", "gmm", "--data", "faithful", "--components", "2", "--out", str(run_dir)]
    code, out, _ = run(args, capsys)
    assert code == 0 and "EM iterations" in out
    names = {p.name for p in (run_dir / "plots").iterdir()}
    assert names == {"density.png", "responsibilities.png", "em_loglik.png"}
    png = tmp_path / "s.png"
    assert run(["sample", str(run_dir), "--n", "200", "--out", str(png)], capsys)[0] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args,message",
    [
        (["fit", "gmm", "--data", "nope", "--out", "{tmp}/x"], "Unknown dataset 'nope'"),
        (["fit", "normal", "--data", "faithful", "--out", "{tmp}/x"], "2 columns"),
        (["fit", "normal", "--data", "heights", "--components", "3", "--out", "{tmp}/x"], "gmm"),
        (["sample", "{tmp}/missing", "--n", "3", "--out", "{tmp}/s.csv"], "not a genlab run"),
        (["prob", "{tmp}/mvn", "x <= 3"], "1-D models"),
        (["fit", "gmm", "--data", "csv:{tmp}/bad.csv", "--out", "{tmp}/x"], "NaN"),
    ],
)
def test_bad_input_one_sentence_exit_2(tmp_path, capsys, args, message):
    main(["fit", "mvn", "--data", "faithful", "--out", str(tmp_path / "mvn")])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\nnan,3\n")
    capsys.readouterr()
    code, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert code == 2
    assert err.startswith("genlab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing written half-way


def test_lists(capsys):
    assert "gmm" in run(["models"], capsys)[1]
    out = run(["datasets"], capsys)[1]
    assert "faithful" in out and "heights" in out and "folder" in out


def test_console_script_help_and_exit_code(tmp_path):
    exe = [sys.executable, "-m", "genlab.cli"]
    done = subprocess.run([*exe, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "fit" in done.stdout
    for cmd in ["fit", "sample", "eval", "prob", "demo"]:
        sub = subprocess.run([*exe, cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "example" in sub.stdout
    bad = subprocess.run(
        [*exe, "eval", str(tmp_path / "none")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stderr.startswith("genlab: error:")


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from genlab.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'torch', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # about 4.5 minutes: the whole tour (make test-all runs it)
def test_demo_writes_report(tmp_path, capsys):
    code, _, _ = run(["demo", "--out", str(tmp_path / "report")], capsys)
    page = (tmp_path / "report" / "index.html").read_text()
    assert code == 0 and "Old Faithful" in page
    for src in page.split('src="')[1:]:
        assert (tmp_path / "report" / src.split('"')[0]).is_file()
    assert page.count("<img") >= 16
    for link in page.split('href="')[1:]:  # the comparisons and course pages it links exist
        assert (tmp_path / "report" / link.split('"')[0]).is_file()
    assert 'href="course/05-em/index.html"' in page
    for part in ("compare-digits/compare.html", "compare-8gaussians/compare.html",
                 "latent/latent.html", "diffusion/reverse.gif"):  # fmt: skip
        assert part in page
    assert "Every family on digits" in page and "What came shipped" in page
    digits = (tmp_path / "report" / "compare-digits" / "compare.md").read_text()
    assert digits.count("| diffusion") == 2 and "copy share" in digits


def test_demo_diffusion_section(tmp_path):
    """The shipped diffusion model's section: forward and reverse processes, the sampler
    sweep and the guidance table (small n here; the tour draws 200)."""
    from genlab.demo.models import diffusion_section

    section = diffusion_section(tmp_path, n=20)
    for name in ("forward.png", "reverse.gif", "sampler_sweep.png"):
        assert (tmp_path / "diffusion" / name).is_file()
    assert section.count("<tr>") == 6  # header, 3 classifier-free, 2 classifier scales


TRAIN_TINY = ["--set", "data.size=8", "--set", "model.width=8", "--set", "progress=false"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "vae", "--data", "digits", "--set", "bogus=1"], "Unknown training setting"),
        (["train", "vae", "--data", "digits", "--batch-size", "5000"], "fewer than the batch"),
        (
            ["train", "vae", "--data", "digits", "--set", "model.depth=3"],
            "has no setting 'model.depth'",
        ),
        (
            ["train", "vae", "--data", "digits", "--set", "fsdp=maybe"],
            "fsdp='maybe' is not yes or no",
        ),
        (["train", "nope.yaml"], "does not exist"),
        (["train", "gmm", "--data", "faithful"], "not trained by gradient steps"),
        (["train", "vae", "--data", "digits", "--resume", "/nowhere"], "incomplete or corrupt"),
    ],
)
def test_train_bad_input(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    tiny = TRAIN_TINY if "digits" in args else []
    code, _, err = run([*args, "--out", str(out), *tiny], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (out / "model").exists() and not (out / "config.yaml").exists()


def test_train_sample_eval(tmp_path, capsys):
    out = tmp_path / "vae"
    args = ["train", "vae", "--data", "digits", "--steps", "20", "--out", str(out), *TRAIN_TINY]
    code, text, _ = run(args, capsys)
    assert code == 0 and "done: 20 steps" in text
    assert (out / "samples" / "step-20.png").is_file()
    assert json.loads((out / "meta.json").read_text())["test_fraction"] == 0.2
    code, _, err = run(["train", "vae", "--data", "digits", "--out", str(out)], capsys)
    assert code == 2 and "already holds a vae run" in err
    png = tmp_path / "grid.png"
    assert run(["sample", str(out), "--n", "16", "--out", str(png)], capsys)[0] == 0
    code, text, _ = run(["eval", str(out), "--metrics", "nll,fd,kid,pr", "--n", "200"], capsys)
    result = json.loads((out / "eval.json").read_text())
    assert code == 0 and result["n_generated"] == 200
    assert {"nll", "fd", "kid", "precision", "recall"} <= set(result)
    code, _, err = run(["eval", str(out), "--metrics", "swd"], capsys)
    assert code == 2 and "not available for images" in err


def test_demo_text_to_image_section(tmp_path):
    from genlab.demo import text_to_image_section

    section = text_to_image_section(tmp_path, n=4)
    assert "held-out prompts drawn right" in section and "of 4" in section
    assert (tmp_path / "txt2img" / "heldout.png").is_file()
    assert (tmp_path / "txt2img" / "train.png").is_file()


def test_the_three_examples_of_the_reliability_issue(tmp_path, capsys):
    """--components 0 was silently fitted as 1; --n -5 ended in a traceback; --n 0 wrote an
    empty file and reported success. Each is now one sentence, exit 2, nothing written."""
    code, _, err = run(
        ["fit", "gmm", "--data", "faithful", "--components", "0", "--out", str(tmp_path / "g")],
        capsys,
    )
    assert code == 2 and "at least 1" in err and not (tmp_path / "g").exists()
    assert run(["fit", "normal", "--data", "heights", "--out", str(tmp_path / "h")], capsys)[0] == 0
    for n in ("-5", "0"):
        out = tmp_path / f"s{n}.csv"
        code, _, err = run(["sample", str(tmp_path / "h"), "--n", n, "--out", str(out)], capsys)
        assert code == 2 and "--n must be at least 1" in err and not out.exists()
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_values_found_by_the_larger_fuzzing_budget(tmp_path, capsys):
    """300 fuzzed invocations found these; each is one sentence before any work."""
    from genlab.errors import GenlabError
    from genlab.finetune.train import lora_config

    code, _, err = run(
        ["fit", "gmm", "--data", "faithful", "--tol", "nan", "--out", str(tmp_path / "g")], capsys
    )
    assert code == 2 and "tol and reg_covar must be finite" in err
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    for command in (["compare", "--families", "gmm"], ["eval-t2i", "builtin", "--n", "1"]):
        code, _, err = run([*command, "--out", str(afile)], capsys)
        assert code == 2 and "is not a folder" in err, command
    for alpha in (float("nan"), 0.0, -1.0):
        with pytest.raises(GenlabError, match="--alpha must be a positive number"):
            lora_config("builtin", str(tmp_path), alpha=alpha)


def _png_parts(path):
    """(pixel bytes, parameters chunk) of a PNG."""
    from PIL import Image

    from genlab.generation.pnginfo import read_parameters

    with Image.open(path) as im:
        return im.tobytes(), read_parameters(path)


def test_txt2img_from_png_redraws_the_same_image(tmp_path, capsys):
    """--from-png redraws an image from its own parameters: the same pixels and the same
    parameters on the CPU; a flag given explicitly overrides the PNG's value."""
    a, b, c = (str(tmp_path / f"{n}.png") for n in "abc")
    args = ["txt2img", "a red circle to the left of a blue square", "--steps", "4", "--seed", "3"]
    assert run([*args, "--cfg", "4", "--out", a], capsys)[0] == 0
    code, out, _ = run(["txt2img", "--from-png", a, "--out", b], capsys)
    assert code == 0 and f"wrote {b}" in out
    assert _png_parts(a) == _png_parts(b)

    code, _, _ = run(["txt2img", "--from-png", a, "--seed", "5", "--out", c], capsys)
    pixels, params = _png_parts(c)
    assert code == 0 and pixels != _png_parts(a)[0]
    assert "Seed: 5" in params and params.replace("Seed: 5", "Seed: 3") == _png_parts(a)[1]


def test_txt2img_from_png_names_the_loras_not_given(tmp_path, capsys):
    from PIL import Image

    from genlab.generation.pnginfo import save_png

    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    assert run(["txt2img", "a green star", "--steps", "2", "--out", a], capsys)[0] == 0
    pixels, params = _png_parts(a)
    with_loras = str(tmp_path / "lora.png")
    with Image.open(a) as im:
        save_png(im.copy(), with_loras, params + ', Lora scales: "teal: 0.8, red: 1"')
    code, _, err = run(["txt2img", "--from-png", with_loras, "--out", b], capsys)
    assert code == 0 and err.count("\n") == 1
    assert "LoRAs teal, red, not given with --lora" in err
    assert _png_parts(b) == (pixels, params)  # drawn without them

    code, _, err = run(["txt2img", "--out", b], capsys)  # neither a prompt nor a PNG
    assert code == 2 and "--from-png" in err and err.count("\n") == 1


def test_txt2img_says_an_empty_prompt_draws_unconditionally(tmp_path, capsys):
    from genlab.generation.request import UNCONDITIONAL

    code, _, err = run(["txt2img", "", "--steps", "2", "--out", str(tmp_path / "e.png")], capsys)
    assert code == 0 and f"genlab: {UNCONDITIONAL}" in err
    code, _, err = run(["txt2img", "a red circle", "--steps", "2", "--out",
                        str(tmp_path / "r.png")], capsys)  # fmt: skip
    assert code == 0 and UNCONDITIONAL not in err
    code, _, err = run(["txt2img", "a red circle", "--steps", "0", "--out",
                        str(tmp_path / "z.png")], capsys)  # fmt: skip
    assert code == 2 and "steps" in err and not (tmp_path / "z.png").exists()


def test_shipped_models_by_name(tmp_path, capsys, monkeypatch):
    """A shipped model's name works wherever a run folder is read; nothing is written into
    the package; a local folder of that name wins."""
    from genlab import assets

    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in assets.folder("ddpm-digits").iterdir())
    args = ["sample", "ddpm-digits", "--steps", "20", "--label", "3", "--n", "4", "--out", "g.png"]
    code, out, _ = run(args, capsys)
    assert code == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    guided = ["sample", "ddpm-digits", "--steps", "5", "--cfg", "0", "--classifier",
              "noisy-classifier-digits", "--label", "7", "--n", "2", "--out", "c.npy"]  # fmt: skip
    assert run(guided, capsys)[0] == 0 and np.load(tmp_path / "c.npy").shape == (2, 1, 16, 16)

    code, out, _ = run(["eval", "vae-digits", "--n", "100"], capsys)
    assert code == 0 and "IWAE" in out and "fd" in out
    assert not (assets.folder("vae-digits") / "eval.json").exists()
    assert sorted(p.name for p in assets.folder("ddpm-digits").iterdir()) == before

    code, out, _ = run(["models"], capsys)
    assert code == 0 and "ddpm-digits" in out.split("shipped")[1]
    assert all(name in out for name in assets.names())

    # a run folder named like a shipped model is that run
    assert run(["fit", "normal", "--data", "heights", "--out", "vae-digits"], capsys)[0] == 0
    code, out, _ = run(["eval", "vae-digits"], capsys)
    assert code == 0 and "avg_loglik" in out and (tmp_path / "vae-digits" / "eval.json").is_file()


def test_python_dash_m_genlab():
    done = subprocess.run([sys.executable, "-m", "genlab", "--help"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "txt2img" in done.stdout
