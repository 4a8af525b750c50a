"""Run folders against a hostile or careless user (issue 26, data loss and output paths):
writes never follow a link planted in a run folder; every command that writes a run refuses
a folder holding another run unless --overwrite, takes the run lock and refuses an empty
--out; a kill during the first checkpoint leaves a folder --resume latest restarts; model/
carries a sha256 manifest checked on load; output paths are judged before any work; a full
disk is one sentence; seeds outside [0, 2^32) are refused with the range."""

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genlab.cli import main

TINY = ["--set", "data.size=8", "--set", "model.width=8", "--set", "progress=false"]


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_sentence(err: str) -> bool:
    return err.startswith("genlab: error: ") and err.count("\n") == 1 and "Traceback" not in err


def train(out, capsys, *more, steps=4):
    args = ["train", "vae", "--data", "digits", "--steps", steps, "--out", out, *TINY, *more]
    return run(args, capsys)


@pytest.fixture
def vae_run(tmp_path, capsys):
    out = tmp_path / "vae"
    code, _, err = train(out, capsys, "--set", "checkpoint_every=2")
    assert code == 0, err
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- 1. links in a run folder --------------------------------------------------------------------
def test_a_linked_config_is_neither_read_nor_written_by_resume(vae_run, tmp_path, capsys):
    outside = tmp_path / "outside.yaml"
    outside.write_text((vae_run / "config.yaml").read_text())
    before = outside.read_bytes()
    (vae_run / "config.yaml").unlink()
    (vae_run / "config.yaml").symlink_to(outside)
    code, _, err = train(vae_run, capsys, "--resume", "latest", steps=6)
    assert code == 2 and one_sentence(err) and "symbolic link" in err and "config.yaml" in err
    assert outside.read_bytes() == before


def test_a_linked_metrics_file_gets_nothing_appended(vae_run, tmp_path, capsys):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("mine\n")
    (vae_run / "metrics.jsonl").unlink()
    (vae_run / "metrics.jsonl").symlink_to(outside)
    code, _, err = train(vae_run, capsys, "--resume", "latest", steps=6)
    assert code == 2 and one_sentence(err) and "metrics.jsonl" in err
    assert outside.read_text() == "mine\n"


def test_a_linked_checkpoints_folder_or_sample_is_refused(vae_run, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (vae_run / "samples" / "step-4.png").unlink()
    (vae_run / "samples" / "step-4.png").symlink_to(elsewhere / "picture.png")
    code, _, err = train(vae_run, capsys, "--resume", "latest", steps=6)
    assert code == 2 and one_sentence(err) and "step-4.png" in err
    assert list(elsewhere.iterdir()) == []


def test_the_writers_themselves_do_not_follow_links(tmp_path):
    """Below the folder check: a whole-file write replaces a link, an append refuses one."""
    from genlab.errors import GenlabError
    from genlab.runfiles import append_line, write_text
    from genlab.runs import write_json

    target = tmp_path / "target.txt"
    target.write_text("keep")
    for name in ("meta.json", "config.yaml", f".meta.json.tmp-{os.getpid()}"):
        (tmp_path / name).symlink_to(target)
    write_json(tmp_path / "meta.json", {"a": 1})
    write_text(tmp_path / "config.yaml", "b: 2\n")
    assert target.read_text() == "keep"
    assert not (tmp_path / "meta.json").is_symlink() and json.loads(
        (tmp_path / "meta.json").read_text()
    ) == {"a": 1}
    (tmp_path / "metrics.jsonl").symlink_to(target)
    with pytest.raises(GenlabError, match="symbolic link"):
        append_line(tmp_path / "metrics.jsonl", "{}")
    assert target.read_text() == "keep"


# --- 2. one rule for every command that writes a run -------------------------------------------
def test_fit_refuses_a_trained_run_and_overwrite_replaces_it(vae_run, capsys):
    before = snapshot(vae_run)
    code, _, err = run(["fit", "normal", "--data", "heights", "--out", vae_run], capsys)
    assert code == 2 and one_sentence(err) and "already holds a vae run" in err
    assert "--overwrite" in err
    assert snapshot(vae_run) == before  # model/ and meta.json intact, nothing added
    args = ["fit", "normal", "--data", "heights", "--out", vae_run, "--overwrite"]
    assert run(args, capsys)[0] == 0
    assert json.loads((vae_run / "meta.json").read_text())["model"] == "normal"
    left = {p.name for p in vae_run.iterdir()}
    assert not left & {"checkpoints", "config.yaml", "metrics.jsonl", "samples"}  # no mix


def test_fit_refuses_a_fitted_run_too(tmp_path, capsys):
    out = tmp_path / "h"
    assert run(["fit", "normal", "--data", "heights", "--out", out], capsys)[0] == 0
    before = snapshot(out)
    code, _, err = run(["fit", "mvn", "--data", "faithful", "--out", out], capsys)
    assert code == 2 and one_sentence(err) and "already holds a normal run" in err
    assert snapshot(out) == before


def test_a_locked_folder_is_refused_by_fit_and_train_before_work(tmp_path, capsys, monkeypatch):
    import genlab.runs.fit
    import genlab.training.runfolder

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(genlab.runs.fit, "build_model", no_work)
    monkeypatch.setattr(genlab.training.runfolder, "build", no_work)
    out = tmp_path / "busy"
    out.mkdir()
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": 0}  # alive: this process
    (out / ".lock").write_text(json.dumps(me))
    for args in (["fit", "normal", "--data", "heights"], ["train", "vae", "--data", "digits"]):
        code, _, err = run([*args, "--out", out], capsys)
        assert code == 2 and one_sentence(err) and "is being written by process" in err
    assert [p.name for p in out.iterdir()] == [".lock"]


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "normal", "--data", "heights"],
        ["train", "vae", "--data", "digits", *TINY],
        ["finetune", "lora", "--data", "{tmp}"],
    ],
)
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    for out in ("", "  "):
        code, _, err = run([*args, "--out", out], capsys)
        assert code == 2 and one_sentence(err) and "--out is empty" in err
    assert list(tmp_path.iterdir()) == []


# --- 3. a kill during the first checkpoint ----------------------------------------------------
KILLED = """
import os, sys
from pathlib import Path
from genlab.training import checkpoint
def killed(tmp, step, tensors, state):  # dies half-way through writing the first checkpoint
    (Path(tmp) / "model.safetensors").write_bytes(b"half")
    os._exit(9)
checkpoint._write = killed
from genlab.cli import main
main(sys.argv[1:])
"""


def test_a_kill_during_the_first_checkpoint_leaves_a_folder_resume_accepts(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "vae", "--data", "digits", "--steps", "4", "--out", str(out), *TINY,
            "--set", "checkpoint_every=2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", KILLED, *argv], env=env, capture_output=True)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    assert not any((out / "checkpoints").glob("step-*"))  # the kill left no checkpoint
    assert any((out / "checkpoints").glob(".tmp-step-2-*")) and (out / ".lock").exists()

    code, _, err = run(argv, capsys)  # train without --resume: told what to do
    assert code == 2 and one_sentence(err) and "--resume latest" in err and "--overwrite" in err

    code, text, err = run([*argv, "--resume", "latest"], capsys)
    assert code == 0 and "done: 4 steps" in text
    assert "no complete checkpoint; starting again from step 0" in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4"]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and not (out / ".lock").exists()


def test_resume_latest_never_restarts_over_a_fitted_run(tmp_path, capsys):
    out = tmp_path / "h"
    assert run(["fit", "normal", "--data", "heights", "--out", out], capsys)[0] == 0
    before = snapshot(out)
    code, _, err = train(out, capsys, "--resume", "latest")
    assert code == 2 and one_sentence(err) and "did not make" in err
    assert snapshot(out) == before


def test_a_left_over_old_model_is_cleaned_by_the_next_save(tmp_path):
    import genlab
    from genlab.models.gaussian import Normal

    path = tmp_path / "model"
    Normal().fit(np.array([[1.0], [2.0], [4.0]])).save(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    for left in (f".model.old-{dead}", f".model.tmp-{dead}"):  # what kills leave
        (tmp_path / left).mkdir()
        (tmp_path / left / "model.safetensors").write_bytes(b"stale")
    Normal().fit(np.array([[10.0], [20.0]])).save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert genlab.load(path).mean_ == pytest.approx(15.0)


def test_model_folder_has_a_manifest_checked_on_load(tmp_path, capsys):
    out = tmp_path / "h"
    assert run(["fit", "normal", "--data", "heights", "--out", out, "--seed", "3"], capsys)[0] == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
    weights = out / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of a weight: still a readable safetensors file
    weights.write_bytes(bytes(data))
    code, _, err = run(["sample", out, "--n", "5", "--out", tmp_path / "s.csv"], capsys)
    assert code == 2 and one_sentence(err) and "model.safetensors does not match" in err
    assert not (tmp_path / "s.csv").exists()


# --- 4. output paths before work; a full disk ----------------------------------------------------
COMMANDS = {  # command line without --out; the function that would start the work
    "train": (["train", "vae", "--data", "digits", *TINY], "genlab.training.runfolder.build"),
    "fit": (["fit", "normal", "--data", "heights"], "genlab.runs.fit.build_model"),
    "sample": (["sample", "{run}", "--n", "5"], "genlab.serialization.load"),
    "txt2img": (
        ["txt2img", "a red circle", "--steps", "1"],
        "genlab.backends.load_backend",
    ),
    "course": (["course", "2", "--quick"], "genlab.course.run_step"),
}
FILE_COMMANDS = {"sample": ".csv", "txt2img": ".png"}


def bad_outs(tmp_path: Path, command: str) -> dict[str, str]:
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    suffix = FILE_COMMANDS.get(command, "")
    outs = {
        "/proc": f"/proc/genlab-x{suffix}",
        "a file as a folder": str(a_file / f"x{suffix}") if suffix else str(a_file),
        "/dev/null": f"/dev/null/x{suffix}" if suffix else "/dev/null",
        "300 characters": str(tmp_path / ("n" * 300 + suffix)),
    }
    if os.geteuid() != 0:  # root writes into a read-only folder all the same
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        outs["read-only"] = str(ro / f"x{suffix}")
    return outs


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_output_paths_are_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    import importlib

    args, work = COMMANDS[command]
    module, _, name = work.rpartition(".")

    def no_work(*a, **k):
        raise AssertionError(f"{command} started its work before checking --out")

    monkeypatch.setattr(importlib.import_module(module), name, no_work)
    run_dir = tmp_path / "h"
    if command == "sample":
        assert main(["fit", "normal", "--data", "heights", "--out", str(run_dir)]) == 0
    args = [a.replace("{run}", str(run_dir)) for a in args]
    for what, out in bad_outs(tmp_path, command).items():
        code, _, err = run([*args, "--out", out], capsys)
        assert code == 2 and one_sentence(err), (what, err)


@pytest.mark.parametrize("command", ["train", "fit", "course"])
def test_a_regular_file_as_the_out_folder_is_left_alone(tmp_path, capsys, command):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, _, err = run([*COMMANDS[command][0], "--out", target], capsys)
    assert code == 2 and one_sentence(err) and "not a folder" in err
    assert target.read_text() == "mine"


def test_a_full_disk_during_a_checkpoint_says_so(tmp_path, monkeypatch, capsys):
    import torch

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    code, _, err = train(out, capsys, "--set", "checkpoint_every=2")
    assert code == 2 and one_sentence(err) and "no space left on device" in err
    assert str(out / "checkpoints" / "step-2") in err and "inline_container" not in err


def test_torchs_own_disk_full_message_becomes_the_sentence(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError from its zip writer; the disk is
    asked, and the sentence says what happened."""
    import shutil

    import torch

    from genlab.errors import GenlabError
    from genlab.training import checkpoint as ckpt

    def full(*a, **k):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0\n"
            "PytorchStreamWriter failed writing file data/0: file write failed"
        )

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=4096))
    with pytest.raises(GenlabError) as e:
        ckpt.save_checkpoint(tmp_path / "c", 1, {"model": {"w": torch.ones(2)}}, {"step": 1})
    assert "no space left on device" in str(e.value) and "inline_container" not in str(e.value)
    assert "step-1" in str(e.value) and not list((tmp_path / "c").iterdir())


@pytest.mark.parametrize("suffix", [".png", ".csv"])
def test_a_full_disk_while_writing_samples_says_so(tmp_path, monkeypatch, capsys, suffix):
    import genlab.viz.plots

    run_dir = tmp_path / "h"
    assert main(["fit", "normal", "--data", "heights", "--out", str(run_dir)]) == 0

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(genlab.viz.plots, "save", full)
    monkeypatch.setattr(np, "savetxt", full)
    out = tmp_path / f"s{suffix}"
    code, _, err = run(["sample", run_dir, "--n", "20", "--out", out], capsys)
    assert code == 2 and one_sentence(err)
    assert f"Could not write {out} (no space left on device)" in err and not out.exists()


def test_a_full_disk_while_writing_a_png_of_txt2img_says_so(tmp_path, monkeypatch, capsys):
    import genlab.generation.output

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(genlab.generation.output, "save_result", full)
    out = tmp_path / "x.png"
    code, _, err = run(["txt2img", "a red circle", "--steps", "1", "--out", out], capsys)
    last = err.rsplit("\r", 1)[-1]  # after the progress bar
    assert code == 2 and one_sentence(last) and "no space left on device" in last
    assert str(out) in last


# --- 5. seeds --------------------------------------------------------------------------------
SEEDED = {
    "fit": ["fit", "normal", "--data", "heights", "--out", "x"],
    "sample": ["sample", "x", "--out", "x.csv"],
    "train": ["train", "vae", "--data", "digits", "--out", "x"],
    "txt2img": ["txt2img", "a red circle"],
    "finetune": ["finetune", "lora", "--data", "x", "--out", "x"],
    "eval-t2i": ["eval-t2i", "builtin"],
    "course": ["course", "2"],
}


@pytest.mark.parametrize("command", sorted(SEEDED))
@pytest.mark.parametrize("value", ["-1", "99999999999999999999999", "4294967296", "1.5", "x"])
def test_a_seed_outside_the_range_is_refused_with_the_range(capsys, command, value):
    assert main([*SEEDED[command], "--seed", value]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1  # one line
    assert "from 0 to 4294967295" in err and value in err


@pytest.mark.parametrize("command", sorted(SEEDED))
def test_every_seed_in_the_range_is_taken(command):
    from genlab.cli import build_parser

    for value in (0, 7, 2**32 - 1):
        args = build_parser().parse_args([*SEEDED[command], "--seed", str(value)])
        assert args.seed == value


def test_the_largest_seed_fits_and_samples(tmp_path, capsys):
    out = tmp_path / "h"
    args = ["fit", "gmm", "--data", "faithful", "--components", "2", "--seed", str(2**32 - 1)]
    assert run([*args, "--out", out], capsys)[0] == 0
    code, _, err = run(["sample", out, "--n", "5", "--seed", 2**32 - 1, "--out",
                        tmp_path / "s.csv"], capsys)  # fmt: skip
    assert code == 0, err


def test_no_leftover_probe_files(tmp_path, capsys):
    """The writability probe leaves nothing behind, in the folder or beside it."""
    from genlab.runfiles import check_file, check_folder

    check_folder(tmp_path / "new" / "deeper")
    check_file(tmp_path / "f.csv")
    assert list(tmp_path.iterdir()) == []


# --- found by the fuzzers at make test-all's budget (300 examples) --------------------------------
@pytest.mark.parametrize("damage", [b"{", b"{}", b"\x80\x81binary", b'{"step": "x"}\n[1]\n'])
def test_a_damaged_metrics_log_does_not_lose_a_resumed_training(vae_run, capsys, damage):
    """A resumed run appends to metrics.jsonl and draws its training curve from it at the
    end: a log a crash cut or a hand damaged costs the curve's bad rows, not the run."""
    (vae_run / "metrics.jsonl").write_bytes(damage)
    code, _, err = train(vae_run, capsys, "--resume", "latest", steps=6)
    assert code == 0, err
    assert (vae_run / "plots" / "training.png").is_file()
    assert json.loads((vae_run / "summary.json").read_text())["steps"] == 6


def test_lora_fuse_refuses_a_file_as_its_out_folder(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, _, err = run(["lora", "fuse", tmp_path / "no-lora", "--out", target], capsys)
    assert code == 2 and one_sentence(err) and "not a folder" in err
    assert target.read_text() == "mine"
