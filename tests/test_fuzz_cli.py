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


# -- every --set key of every packaged recipe ------------------------------------------------

#: hostile values for a --set key: numbers out of range or not numbers, text, YAML that
#: builds objects or has the wrong shape
SET_VALUES = [*NUMBERS, "1e12", "-1", "2.5", "null", "true", "xyz", "[1, 2]", "[]", "{a: 1}",
              "[-3, 0]", "!!python/object/apply:os.system ['echo']", "'", "1" * 400]  # fmt: skip
SET_TALLY: Counter = Counter()


def recipe_keys() -> list[tuple[str, str]]:
    """(recipe, key) for every --set key of every packaged recipe: the Trainer's settings, the
    model's constructor settings (model.KEY) and the data loader's (data.KEY)."""
    from genlab.training.config import SETTINGS
    from genlab.training.runconfig import data_settings, model_settings
    from genlab.training.runfolder import load_recipe, recipe_names

    out = []
    for name in recipe_names():
        recipe = load_recipe(name)
        keys = [o.name for o in SETTINGS]
        keys += [f"model.{o.name}" for o in model_settings(recipe["model"])]
        keys += [f"data.{o.name}" for o in data_settings(recipe["data"])]
        out += [(name, key) for key in keys]
    return out


RECIPE_KEYS = recipe_keys()


def one_line_refusal(code: int, err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    return code == 2 and len(lines) == 1 and len(lines[0].split("error:", 1)[1].strip()) > 5


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=SLOW_OK)  # fmt: skip
@given(data=st.data())
def test_every_set_key_of_every_recipe_is_checked_before_work(tmp_path, data, monkeypatch):
    """A hostile --set value is refused in one sentence naming its key, before any work; a
    value accepted builds its model and data (the run's own code) and stops where the Trainer
    would start: what the schema lets through must not break the constructors."""
    recipe, key = data.draw(st.sampled_from(RECIPE_KEYS), label="key")
    value = data.draw(st.sampled_from(SET_VALUES), label="value")
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"
    argv = ["train", recipe, "--set", f"{key}={value}", "--out", str(out)]
    from genlab.training import trainer

    def no_work(*a, **k):
        raise AssertionError("checked")  # the config was accepted: nothing more to see here

    monkeypatch.setattr(trainer.Trainer, "__init__", no_work)
    try:
        code, err = run(argv)
    except AssertionError:
        code, err = 0, ""
    SET_TALLY["total"] += 1
    assert "Traceback" not in err and code in (0, 2), (argv, code, err)
    if code == 2:
        SET_TALLY["refused"] += 1
        assert one_line_refusal(code, err), (argv, err)
        assert not out.exists() or not any(out.iterdir()), (argv, "wrote before refusing")
    else:
        SET_TALLY["accepted"] += 1


# -- hostile run folders ---------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (print, ("UNPICKLED",))


def hostile_variants() -> dict[str, object]:
    import pickle

    return {
        "brace": b"{", "list": b"[1]", "empty-object": b"{}", "empty": b"",
        "binary": bytes(range(256)),
        "python-tag": b"!!python/object/apply:os.system ['echo PWNED']\n", "truncated": "half",
        "pickle": pickle.dumps({"step": _Evil()}), "link-to-passwd": "/etc/passwd",
        "link-to-folder": "/", "missing": None, "a-folder": "dir",
    }  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-base")
    argv = ["train", "vae", "--data", "moons", "--steps", "2", "--batch-size", "16",
            "--set", "data.n=200", "--out", str(root / "run")]  # fmt: skip
    assert run(argv)[0] == 0
    return root / "run"


def hostile_copy(base: Path, folder: Path, rel: str, variant: str) -> Path:
    """A copy of ``base`` with its file ``rel`` replaced by ``variant``; a checkpoint file's
    manifest is updated to match, so the bytes reach the loader instead of being skipped."""
    import hashlib

    run_dir = folder / "run"
    shutil.copytree(base, run_dir, symlinks=True)
    path, content = run_dir / rel, hostile_variants()[variant]
    path.unlink()
    if variant.startswith("link"):
        path.symlink_to(content)
    elif content == "dir":
        path.mkdir()
    elif content == "half":
        data = (base / rel).read_bytes()
        path.write_bytes(data[: max(1, len(data) // 2)])
    elif content is not None:
        path.write_bytes(content)
    manifest = path.parent / "manifest.json"
    if rel.startswith("checkpoints/") and path.name != "manifest.json" and path.is_file() \
            and not path.is_symlink():  # fmt: skip
        doc = json.loads(manifest.read_text())
        doc["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest.write_text(json.dumps(doc))
    return run_dir


FOLDER_TALLY: Counter = Counter({"written_outside": 0})
PASSWD = Path("/etc/passwd")  # the target of the "link-to-passwd" variant


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


PASSWD_SHA = _sha256(PASSWD)


def files_outside(folder: Path, tmp_path: Path) -> set[tuple[str, int]]:
    """The files (name, mtime) of the scratch cwd and of tmp_path outside ``folder``: a
    command told to work in ``folder`` must leave them alone."""
    found = set()
    for root in (Path.cwd(), tmp_path):
        for p in root.rglob("*"):
            if p.is_file() and folder not in p.parents:
                found.add((str(p), p.stat().st_mtime_ns))
    return found


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=SLOW_OK)  # fmt: skip
@given(data=st.data())
def test_hostile_run_folders_are_refused_in_one_sentence(trained_run, tmp_path, data, capfd):
    """Each file of a run replaced by each hostile variant (links included): train --resume
    latest, sample and eval work or refuse in one sentence naming what is wrong; nothing is
    unpickled and torch's advice to load a file unsafely is never shown."""
    files = sorted(str(p.relative_to(trained_run)) for p in trained_run.rglob("*") if p.is_file())
    rel = data.draw(st.sampled_from(files), label="file")
    variant = data.draw(st.sampled_from(sorted(hostile_variants())), label="variant")
    command = data.draw(st.sampled_from(["train", "sample", "eval"]), label="command")
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    run_dir = hostile_copy(trained_run, folder, rel, variant)
    argv = {
        "train": ["train", "--resume", "latest", "--steps", "3", "--out", str(run_dir)],
        "sample": ["sample", str(run_dir), "--n", "5", "--out", str(folder / "s.csv")],
        "eval": ["eval", str(run_dir)],
    }[command]
    before = files_outside(folder, tmp_path)
    code, err = run(argv)
    seen = capfd.readouterr()
    FOLDER_TALLY["total"] += 1
    written = files_outside(folder, tmp_path) - before
    FOLDER_TALLY["written_outside"] += len(written)
    assert not written, (rel, variant, command, "wrote outside its folder", written)
    assert _sha256(PASSWD) == PASSWD_SHA, (rel, variant, command, "changed a linked target")
    FOLDER_TALLY["ok" if code == 0 else "refused" if code == 2 else "other"] += 1
    assert "UNPICKLED" not in seen.out + seen.err + err, (rel, variant, command)
    assert "weights_only" not in err and "Traceback" not in err, (rel, variant, command, err)
    assert code in (0, 2), (rel, variant, command, code, err)
    if code == 2:
        assert one_line_refusal(code, err), (rel, variant, command, err)
    shutil.rmtree(folder, ignore_errors=True)


RECIPE_SHAPES = {
    "data-list": "model: vae\ndata: [1, 2]\n",
    "train-list": "model: vae\ndata: moons\ntrain: [1, 2]\n",
    "plain-text": "just a sentence\n", "a-list": "[1, 2]\n",
    "python-tag": "!!python/object/apply:os.system ['echo PWNED']\n",
    "model-list": "model: [vae]\ndata: moons\n",
    "settings-list": "model: vae\ndata: moons\nmodel_config: 3\n",
    "binary": "\udcff\udcfe", "unknown": "model: vae\ndata: moons\nfoo: 1\n",
    "bad-step": "model: vae\ndata: moons\ntrain: {steps: 2.5}\n", "no-model": "data: moons\n",
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(RECIPE_SHAPES))
def test_recipes_of_the_wrong_shape_are_refused_naming_the_file(tmp_path, shape):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(RECIPE_SHAPES[shape].encode("utf-8", "surrogateescape"))
    code, err = run(["train", str(recipe), "--out", str(tmp_path / "run")])
    assert one_line_refusal(code, err) and "Traceback" not in err, err
    assert "recipe" in err.lower(), err


def test_report_the_run_config_counts():
    """Runs after the two fuzzers above and records what they tried."""
    repo = Path(__file__).resolve().parents[1]
    folder = Path(os.environ.get("GENLAB_ARTIFACTS", repo / "build" / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"budget": EXAMPLES, "set_keys": len(RECIPE_KEYS), "set_values": len(SET_VALUES),
           "set": dict(SET_TALLY), "run_folders": dict(FOLDER_TALLY)}  # fmt: skip
    (folder / "fuzz-runconfig.json").write_text(json.dumps(doc))
    print(json.dumps(doc))
    assert SET_TALLY["total"] >= 1 and FOLDER_TALLY.get("other", 0) == 0
    assert FOLDER_TALLY["written_outside"] == 0
