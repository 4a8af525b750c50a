"""The command line fuzzed (Hypothesis, seeded): every subcommand from a fast baseline, one of
its options or arguments replaced by a hostile value (0, negatives, NaN, inf, overflow, text
where a number goes, empty strings, missing files, folders where files go, files where
folders go, unwritable paths). Each invocation must work or end with exit code 2 and one
sentence, never a traceback, and a refused one leaves no output behind. The options are read
from the parser itself, so a new option is fuzzed the day it lands. The budget is
GENLAB_FUZZ_EXAMPLES (CI: 20; `make test-all`: 300); the counts land in
build/test-artifacts/fuzz.json for the reliability sheet in docs/results.md."""

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from genlab.cli import build_parser, main  # noqa: E402
from genlab.cli.common import seed  # noqa: E402

EXAMPLES = int(os.environ.get("GENLAB_FUZZ_EXAMPLES", "20"))
NUMBERS = ["0", "-5", "nan", "inf", "-inf", "1e309", "abc", "", "3.5", "-0", "٣"]
#: not fuzzed: they serve forever (webui) or take minutes when they work (demo)
EXCLUDED = {"webui": "starts a server that runs until stopped", "demo": "a 3-minute tour"}
TALLY: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def scratch_cwd(tmp_path_factory):
    """Run in a scratch folder: a fuzzed relative path ("nan", "-") must not land in the
    repository (a run folder named nan once did)."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the baselines need: a fitted run, images, a caption folder, a LoRA."""
    from PIL import Image

    from genlab.runs import fit_run

    root = tmp_path_factory.mktemp("fuzz")
    fit_run("gmm", "faithful", root / "run", options={"n_components": 2}, plots=False)
    fit_run("normal", "heights", root / "heights", plots=False)
    from genlab.generation.pnginfo import save_png

    save_png(Image.new("RGB", (32, 32), "gray"), root / "init.png", "a grey square\nSteps: 2")
    Image.new("L", (32, 32), 255).save(root / "mask.png")
    (root / "imgs").mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(root / "imgs" / f"{i}.png")
    (root / "text.txt").write_text("not an image")
    (root / "a-folder").mkdir()
    assert main(["finetune", "lora", "--data", str(root / "imgs"), "--caption", "a thing",
                 "--steps", "1", "--out", str(root / "lora")]) == 0  # fmt: skip
    return root


def baselines(w: Path, out: Path) -> dict[str, list[str]]:
    """A fast invocation of every subcommand (it must succeed as written)."""
    img = ["--steps", "2", "--out", str(out / "x.png")]
    return {
        "fit": ["fit", "gmm", "--data", "faithful", "--components", "2", "--out", str(out / "r")],
        "train": [
            "train",
            "vae",
            "--data",
            "moons",
            "--steps",
            "2",
            "--batch-size",
            "16",
            "--out",
            str(out / "t"),  # not the folder fit writes: a run is never written over
        ],
        "sample": ["sample", str(w / "run"), "--n", "10", "--out", str(out / "s.csv")],
        "eval": ["eval", str(w / "run")],
        "prob": ["prob", str(w / "heights"), "x <= 160"],
        "png-info": ["png-info", str(w / "init.png")],
        "txt2img": ["txt2img", "a red circle", *img],
        "img2img": ["img2img", str(w / "init.png"), "a red circle", *img],
        "inpaint": ["inpaint", str(w / "init.png"), str(w / "mask.png"), "a red circle", *img],
        "finetune": [
            "finetune",
            "lora",
            "--data",
            str(w / "imgs"),
            "--caption",
            "a thing",
            "--steps",
            "1",
            "--out",
            str(out / "l"),
        ],
        "lora": ["lora", "fuse", str(w / "lora"), "--out", str(out / "fused")],
        "eval-t2i": ["eval-t2i", "builtin", "--n", "1", "--steps", "1", "--out", str(out / "e")],
        "course": ["course", "2", "--quick", "--out", str(out / "course")],
        "models": ["models"],
        "datasets": ["datasets"],
        "compare": [
            "compare",
            "--steps",
            "2",
            "--seeds",
            "1",
            "--n",
            "50",
            "--families",
            "gmm",
            "--no-lr-sweep",
            "--out",
            str(out / "c"),
        ],
    }


def hostile_paths(w: Path, out: Path) -> list[str]:
    return [
        str(out / "missing" / "deeper" / "x.png"), str(w / "a-folder"), str(w / "text.txt"),
        "/proc/genlab/x.png", "", "-", str(w / "init.png"), str(w / "run" / "meta.json"),
    ]  # fmt: skip


def subcommands() -> dict:
    parser = build_parser()
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def slots(command: str) -> list[tuple[str | int, str]]:
    """(flag or positional index, kind) of every argument of ``command``: kind is "int",
    "float" or "text"."""
    out, position = [], 1
    for action in subcommands()[command]._actions:
        if action.dest == "help" or action.nargs == 0:
            continue
        kind = {int: "int", seed: "int", float: "float"}.get(action.type, "text")
        if action.option_strings:
            out.append((action.option_strings[0], kind))
        else:
            out.append((position, kind))
            position += 1
    return out


def mutate(argv: list[str], slot: str | int, value: str) -> list[str]:
    argv = list(argv)
    if isinstance(slot, int):
        if slot < len(argv):
            argv[slot] = value
        return argv
    if slot in argv:
        argv[argv.index(slot) + 1] = value
        return argv
    return [*argv, slot, value]


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: a usage line and one error sentence, exit 2
            code = e.code
    return code, err.getvalue()


def test_every_baseline_works(world, tmp_path):
    for name, argv in baselines(world, tmp_path).items():
        code, err = run(argv)
        assert code == 0, (name, err[-500:])
    assert set(subcommands()) == set(baselines(world, tmp_path)) | set(EXCLUDED)


SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=SLOW_OK)  # fmt: skip
@given(data=st.data())
def test_fuzzed_invocations_work_or_refuse_in_one_sentence(world, tmp_path, data):
    out = Path(tempfile.mkdtemp(dir=tmp_path))
    command = data.draw(st.sampled_from(sorted(baselines(world, out))), label="command")
    argv = baselines(world, out)[command]
    options = slots(command)
    if options:
        slot, kind = data.draw(st.sampled_from(options), label="argument")
        pool = NUMBERS if kind != "text" else [*hostile_paths(world, out), "nan", "", "é\x00"]
        value = data.draw(st.sampled_from(pool), label="value")
        argv = mutate(argv, slot, value)
    code, err = run(argv)
    TALLY["total"] += 1
    TALLY["ok" if code == 0 else "refused" if code == 2 else "other"] += 1
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = [line for line in err.strip().splitlines() if "error:" in line]
        assert len(lines) == 1 and len(lines[0].split("error:", 1)[1].strip()) > 5, (argv, err)
        left = [p for p in out.rglob("*") if p.is_file()]
        assert not left, (argv, left)
    shutil.rmtree(out, ignore_errors=True)


def test_report_the_count():
    """Runs after the fuzzing above (file order) and records what it tried."""
    repo = Path(__file__).resolve().parents[1]  # the cwd is a scratch folder here
    folder = Path(os.environ.get("GENLAB_ARTIFACTS", repo / "build" / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fuzz.json").write_text(json.dumps({"budget": EXAMPLES, **TALLY}))
    print(f"fuzzed {TALLY['total']} invocations: {TALLY['ok']} worked, "
          f"{TALLY['refused']} refused with exit 2, {TALLY['other']} other")  # fmt: skip
    assert TALLY["total"] >= 1 and TALLY["other"] == 0
