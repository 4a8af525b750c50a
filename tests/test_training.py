"""The Trainer: exact resume, crash-safe checkpoints, the NaN guard, distributed training."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genlab.errors import GenlabError
from genlab.models.autoencoder import AE
from genlab.training import checkpoint as ckpt
from genlab.training.trainer import TrainConfig, Trainer

TINY = [
    "--data", "digits", "--set", "data.size=8", "--set", "model.width=8",
    "--set", "model.latent_dim=4", "--batch-size", "32", "--set", "ema_decay=0.9",
    "--set", "checkpoint_every=1000", "--set", "progress=false",
]  # fmt: skip


def genlab(*args, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "genlab.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, **kw)


def tensors_of(step_dir: Path) -> dict:
    out = {
        f"{p.stem}/{k}": v for p in step_dir.glob("*.safetensors") for k, v in load_file(p).items()
    }
    state = torch.load(step_dir / "state.pt", weights_only=True)
    for rank, rng in enumerate(state["rng"]):  # every process's generators
        out[f"rng/{rank}/torch"] = rng["torch"]
        out[f"rng/{rank}/numpy"] = rng["numpy"]["keys"]
        out[f"rng/{rank}/python"] = rng["python"]["internal"]
    for name, opt in state["optimizer"].items():
        for i, s in opt["state"].items():
            for k, v in s.items():
                out[f"opt/{name}/{i}/{k}"] = torch.as_tensor(v)
    out["step"] = torch.tensor(state["step"])
    return out


# 23-24 s each: in `make test-all`; CI keeps exact resume across processes through
# tests/test_interrupt.py (Ctrl-C, then --resume in a new process) and the LoRA resumes
@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "ae"])
def test_exact_resume_in_a_new_process(tmp_path, model):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert genlab("train", model, "--out", straight, "--steps", 6, *TINY).returncode == 0
    assert genlab("train", model, "--out", split, "--steps", 3, *TINY).returncode == 0
    done = genlab("train", "--out", split, "--steps", 6, "--resume", "latest")
    assert done.returncode == 0, done.stderr
    a = tensors_of(straight / "checkpoints" / "step-6")
    b = tensors_of(split / "checkpoints" / "step-6")
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    final_a, final_b = (
        load_file(straight / "model" / "model.safetensors"),
        load_file(split / "model" / "model.safetensors"),
    )
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)


@pytest.mark.slow  # 15 s: in `make test-all`, to keep CI's run under 10 minutes
def test_resume_with_more_steps_follows_the_new_schedule(tmp_path):
    """A schedule over the run's steps (linear): a run of 3 steps ends at learning rate 0;
    resumed to 4, its first resumed step takes this run's rate ((4 - 3) / 4 of lr), not the
    0 its checkpoint holds, so the weights move."""
    run = tmp_path / "run"
    sched = ["--set", "lr_scheduler=linear", "--set", "keep_last=0"]
    assert genlab("train", "vae", "--out", run, "--steps", 3, *TINY, *sched).returncode == 0
    done = genlab("train", "--out", run, "--steps", 4, "--resume", "latest")
    assert done.returncode == 0, done.stderr
    a, b = tensors_of(run / "checkpoints" / "step-3"), tensors_of(run / "checkpoints" / "step-4")
    moved = [k for k in a if k.startswith("model/") and not torch.equal(a[k], b[k])]
    assert moved


CRASH = textwrap.dedent(
    """
    import os, signal, sys, torch
    import genlab.training.checkpoint as ckpt
    from genlab.models.autoencoder import AE
    from genlab.data import load
    from genlab.training.trainer import Trainer, TrainConfig

    real_save = torch.save
    def dying_save(obj, path, *a, **k):
        real_save(obj, path, *a, **k)
        if obj["step"] == 4:  # the second checkpoint: die with its files half-renamed
            os.kill(os.getpid(), signal.SIGKILL)
    torch.save = dying_save
    torch.manual_seed(0)
    data = load("digits", size=8, scale="pm1")
    model = AE(data.shape, latent_dim=4, width=8)
    cfg = TrainConfig(steps=6, batch_size=32, checkpoint_every=2, progress=False)
    Trainer(model, data, cfg, run_dir=sys.argv[1]).train()
    """
)


def test_sigkill_during_save_keeps_previous_checkpoint(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, str(script), str(run)], timeout=300)
    assert done.returncode == -9  # killed by SIGKILL mid-save
    folder = run / "checkpoints"
    assert any(p.name.startswith(".tmp-step-4") for p in folder.iterdir())
    best = ckpt.latest(folder)
    assert best is not None and best.name == "step-2"
    tensors, state = ckpt.load_checkpoint(best)
    assert state["step"] == 2 and "model" in tensors
    # And training resumes from it.
    from genlab.data import load

    data = load("digits", size=8, scale="pm1")
    model = AE(data.shape, latent_dim=4, width=8)
    cfg = TrainConfig(steps=4, batch_size=32, checkpoint_every=2, progress=False)
    trainer = Trainer(model, data, cfg, run_dir=run, resume="latest")
    assert trainer.step == 2
    trainer.train()
    assert ckpt.latest(folder).name == "step-4"


def test_corrupt_checkpoint_is_skipped(tmp_path):
    data = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    model = AE((2,), latent_dim=1, hidden=(8,))
    cfg = TrainConfig(steps=4, batch_size=16, checkpoint_every=2, progress=False)
    Trainer(model, data, cfg, run_dir=tmp_path).train()
    newest = tmp_path / "checkpoints" / "step-4" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-3] + b"xyz")
    assert ckpt.latest(tmp_path / "checkpoints").name == "step-2"


class _Exploding(AE):
    """An AE whose loss is NaN on the steps listed in ``bad``."""

    def __init__(self, *a, bad=(), **k):
        super().__init__(*a, **k)
        self.bad, self.calls = set(bad), 0

    def training_step(self, batch, update="main"):
        self.calls += 1
        out = super().training_step(batch, update)
        if self.calls in self.bad:
            out["loss"] = out["loss"] * float("nan")
        return out


def test_nan_guard_skips_then_aborts(tmp_path):
    data = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    torch.manual_seed(0)
    model = _Exploding((2,), latent_dim=1, hidden=(8,), bad={2})
    cfg = TrainConfig(steps=3, batch_size=16, ema_decay=0, progress=False, log_every=1)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    trainer = Trainer(model, data, cfg)
    trainer.train()
    assert all(torch.isfinite(v).all() for v in model.net.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in model.net.state_dict().items())

    model = _Exploding((2,), latent_dim=1, hidden=(8,), bad=set(range(3, 100)))
    cfg = TrainConfig(steps=50, batch_size=16, max_bad_steps=4, progress=False)
    with pytest.raises(GenlabError, match="not finite for 4 steps in a row"):
        Trainer(model, data, cfg, run_dir=tmp_path / "run").train()
    assert not (tmp_path / "run" / "model").exists()


def test_skipped_step_leaves_weights_unchanged():
    data = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    model = _Exploding((2,), latent_dim=1, hidden=(8,), bad={1})
    cfg = TrainConfig(steps=1, batch_size=16, ema_decay=0, progress=False)
    before = {k: v.clone() for k, v in model.net.named_parameters()}
    Trainer(model, data, cfg).train()  # (buffers change: the AE fits its code Gaussian)
    assert all(torch.equal(before[k], v) for k, v in model.net.named_parameters())


DDP = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from safetensors.torch import save_file
    from genlab.data import load
    from genlab.models.autoencoder import AE
    from genlab.training.trainer import Trainer, TrainConfig

    class Ae(AE):  # given "nan", the loss of the second step is NaN on rank 1 only
        calls = 0
        def training_step(self, batch, update="main"):
            self.calls += 1
            out = super().training_step(batch, update)
            if "nan" in sys.argv and self.calls == 2 and dist.get_rank() == 1:
                out["loss"] = out["loss"] * float("nan")
            return out

    torch.manual_seed(0)
    data = load("digits", size=8, scale="pm1")
    model = Ae(data.shape, latent_dim=4, width=8)
    cfg = TrainConfig(steps=3, batch_size=32, ema_decay=0, progress=False, log_every=1)
    trainer = Trainer(model, data, cfg, run_dir=sys.argv[1])
    trainer.train()
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, f"{sys.argv[1]}/rank{trainer.rank}-of-{trainer.world}.safetensors")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(script: Path, *args: str, pythonpath: str | None = None) -> None:
    """Run ``script`` as two torchrun processes on gloo (one thread each); assert success."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if pythonpath:  # ahead of any the caller has
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    launch = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script), *args,
    ]  # fmt: skip
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow  # over 10 s on 2 cores: make test-all
def test_two_processes_match_one(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env)
    assert single.returncode == 0
    two_processes(script, str(tmp_path / "two"))
    r0 = load_file(tmp_path / "two" / "rank0-of-2.safetensors")
    r1 = load_file(tmp_path / "two" / "rank1-of-2.safetensors")
    one = load_file(tmp_path / "one" / "rank0-of-1.safetensors")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], one[k], rtol=1e-5, atol=1e-6)
    # Only rank 0 wrote the run files: one metrics line per step, one final model.
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "two" / "model" / "model.safetensors").is_file()


@pytest.mark.slow  # over 10 s on 2 cores: make test-all
def test_a_loss_that_is_not_finite_on_one_process_is_skipped_by_all(tmp_path):
    """The processes agree on the NaN guard (while the backward runs): both skip step 2,
    so their weights stay equal and finite."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP)
    two_processes(script, str(tmp_path), "nan")
    r0 = load_file(tmp_path / "rank0-of-2.safetensors")
    r1 = load_file(tmp_path / "rank1-of-2.safetensors")
    for k in r0:
        assert torch.equal(r0[k], r1[k]) and torch.isfinite(r0[k]).all(), k
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("skipped", 0) for r in rows] == [0, 1, 0]


@pytest.mark.slow  # 13 s: in `make test-all`, to keep CI's run under 10 minutes
def test_gan_two_updates_resume_exactly(tmp_path):
    """Both players' optimizers and schedules are checkpointed: 3 + 3 steps == 6 steps."""
    tiny = ["--data", "8gaussians", "--batch-size", "64", "--set", "checkpoint_every=1000",
            "--set", "progress=false", "--set", "model.hidden=[16,16]"]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert genlab("train", "gan", "--out", straight, "--steps", 6, *tiny).returncode == 0
    assert genlab("train", "gan", "--out", split, "--steps", 3, *tiny).returncode == 0
    assert genlab("train", "--out", split, "--steps", 6, "--resume", "latest").returncode == 0
    a = tensors_of(straight / "checkpoints" / "step-6")
    b = tensors_of(split / "checkpoints" / "step-6")
    assert any(k.startswith("opt/d/") for k in a) and any(k.startswith("opt/g/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (straight / "metrics.jsonl").read_text()
    assert "d_loss" in rows and "g_loss" in rows
    assert (straight / "plots" / "training.png").is_file()


@pytest.mark.parametrize(
    "item, key, want",
    [
        ("mixed_precision=no", ("train", "mixed_precision"), "no"),
        ("lr=1e-3", ("train", "lr"), 1e-3),
        ("seed=007", ("train", "seed"), 7),
        ("progress=off", ("train", "progress"), False),
        ("model.latent_dim=016", ("model_config", "latent_dim"), 16),
        ("model.hidden=[32, 32]", ("model_config", "hidden"), [32, 32]),
        ("data.size=016", ("data_options", "size"), 16),
    ],
)
def test_set_values_keep_the_type_of_their_setting(item, key, want):
    from genlab.training.config import TrainConfig
    from genlab.training.runfolder import resolve

    cfg = resolve("vae", "digits", sets=[item])
    section, name = key
    assert cfg[section][name] == want and type(cfg[section][name]) is type(want)
    TrainConfig.from_dict(cfg["train"])  # accepted


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    import json as _json
    import socket as _socket

    from genlab.cli import main

    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".lock"
    me = {"host": _socket.gethostname(), "pid": os.getpid(), "since": 0}
    lock.write_text(_json.dumps(me))  # a live process holds the folder
    args = ["train", "vae", "--data", "digits", "--out", str(run), "--steps", "2",
            "--set", "progress=false"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is being written by process" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock.write_text(_json.dumps({**me, "pid": int(dead.stdout)}))  # its process is gone
    assert main(args) == 0
    assert not lock.exists() and (run / "model").is_dir()  # released when done


def _disk_full_after(n_bytes):
    """A safetensors save_file that writes part of the file and then finds the disk full."""
    import errno

    def save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * n_bytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    return save_file


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    import safetensors.torch

    from genlab.errors import GenlabError
    from genlab.training import checkpoint as ckpt

    folder = tmp_path / "checkpoints"
    ckpt.save_checkpoint(folder, 1, {"model": {"w": torch.ones(3)}}, {"step": 1})
    monkeypatch.setattr(safetensors.torch, "save_file", _disk_full_after(10))
    with pytest.raises(GenlabError, match=r"no space left on device\); the earlier checkpoints"):
        ckpt.save_checkpoint(folder, 2, {"model": {"w": torch.zeros(3)}}, {"step": 2})
    assert [p.name for p in folder.iterdir()] == ["step-1"]  # no half-written folder left
    assert ckpt.latest(folder) == folder / "step-1" and ckpt.verify(folder / "step-1")


def test_a_full_disk_during_a_model_save_keeps_the_previous_model(tmp_path, monkeypatch):
    import safetensors.numpy

    import genlab
    from genlab.errors import GenlabError
    from genlab.models.gaussian import Normal

    first = Normal().fit(np.array([[1.0], [2.0], [4.0]]))
    first.save(tmp_path / "m")
    monkeypatch.setattr(safetensors.numpy, "save_file", _disk_full_after(10))
    with pytest.raises(GenlabError, match="saved there before is intact"):
        Normal().fit(np.array([[10.0], [20.0]])).save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert genlab.load(tmp_path / "m").mean_ == pytest.approx(first.mean_)
