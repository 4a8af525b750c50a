"""LoRA: the merge formula against peft's own layers, exact restore, training only the
adapters of the built-in model, save / load / fuse, captions, the command line, resume."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("peft", reason="LoRA needs the extra genlab[lora]")

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.lora.adapters import adapter_state, applied, fuse, inject, pairs


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(6, 8)
        self.conv = nn.Conv2d(8, 8, 1)
        self.other = nn.Linear(8, 8)

    def forward(self, x):
        h = self.q(x)
        h = self.conv(h[:, :, None, None])[:, :, 0, 0]
        return self.other(h)


def _randomised(module: nn.Module) -> None:
    """Adapters with B != 0 (peft starts B at zero: an untrained adapter changes nothing)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ".lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_merged_weights_give_peft_layers_output():
    torch.manual_seed(0)
    base = Tiny()
    adapted = copy.deepcopy(base)
    assert inject(adapted, rank=2, alpha=3.0, targets=["q", "conv"]) == 2
    _randomised(adapted)
    x = torch.randn(5, 6)
    with torch.no_grad():
        expected = adapted(x)
        state = adapter_state(adapted)
        assert set(pairs(state)) == {"q", "conv"}
        with applied(base, [(state, 3.0 / 2)]):
            got = base(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_applied_restores_the_exact_weights_and_adds_several():
    torch.manual_seed(1)
    base = Tiny()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    adapted = copy.deepcopy(base)
    inject(adapted, 2, 2.0, ["q"])
    _randomised(adapted)
    state = adapter_state(adapted)
    x = torch.randn(3, 6)
    with torch.no_grad():
        with applied(base, [(state, 0.5), (state, 0.5)]):
            twice_half = base(x)
        with applied(base, [(state, 1.0)]):
            once = base(x)
    torch.testing.assert_close(twice_half, once, rtol=1e-5, atol=1e-5)
    for k, v in base.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(GenlabError, match="does not have"):
        with applied(nn.Linear(2, 2), [(state, 1.0)]):
            pass
    with pytest.raises(GenlabError, match="No layer"):
        inject(Tiny(), 2, 2.0, ["nothing_like_this"])


def test_fuse_is_applied_for_good():
    torch.manual_seed(2)
    base = Tiny()
    adapted = copy.deepcopy(base)
    inject(adapted, 2, 2.0, ["q", "conv"])
    _randomised(adapted)
    state = adapter_state(adapted)
    x = torch.randn(4, 6)
    with torch.no_grad(), applied(base, [(state, 0.7)]):
        expected = base(x)
    assert fuse(base, state, 0.7) == 2
    with torch.no_grad():
        torch.testing.assert_close(base(x), expected)


# --- the built-in model --------------------------------------------------------------------
def _captioned_folder(root, n: int = 6, caption_every: int = 2):
    from PIL import Image

    from genlab.data import load

    data = load("shapes", n=n, seed=3, scale="unit")
    root.mkdir()
    for i, (x, r) in enumerate(zip(data.x, data.records, strict=True)):
        image = (x.transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(image).save(root / f"{i}.png")
        if i % caption_every == 0:
            (root / f"{i}.txt").write_text(r["captions"][0] + "\n")
    return data


def test_captioned_folder_reads_side_captions_and_a_default(tmp_path):
    from genlab.data import load
    from genlab.errors import DataError

    data = _captioned_folder(tmp_path / "imgs")
    ds = load("folder", path=tmp_path / "imgs", captioned=True, caption="a picture")
    assert len(ds.records) == 6 and not ds.info["skipped"]  # the .txt files are captions
    assert ds.records[0]["captions"] == [data.records[0]["captions"][0]]
    assert ds.records[1]["captions"] == ["a picture"]
    with pytest.raises(DataError, match="has no caption"):
        load("folder", path=tmp_path / "imgs", captioned=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LoRA of the built-in model trained 4 steps by the command line."""
    root = tmp_path_factory.mktemp("lora")
    _captioned_folder(root / "imgs")
    code = main(["finetune", "lora", "--data", str(root / "imgs"), "--caption", "a picture",
                 "--steps", "4", "--lr", "0.01", "--out", str(root / "run")])  # fmt: skip
    assert code == 0
    return root


def test_only_the_adapters_train_and_the_file_is_small(trained):
    from genlab import load
    from genlab.pipelines.text_to_image import load_model
    from genlab.serialization import WEIGHTS

    lora = load(trained / "run")
    base, _, digest = load_model("builtin")
    assert lora.hparams["base_sha256"] == digest
    adapted = {  # peft keeps a wrapped layer's own weights under base_layer
        k.replace(".base_layer.", "."): v
        for k, v in lora.net.denoiser.state_dict().items()
        if ".lora_" not in k
    }
    for key, value in base.net.denoiser.state_dict().items():  # the base is untouched
        assert torch.equal(value, adapted[key]), key
    assert any(np.abs(v).max() > 0 for k, v in lora.state_arrays().items() if "lora_B" in k)
    assert (trained / "run" / "model" / WEIGHTS).stat().st_size < 400_000


def test_lora_changes_the_image_fuse_equals_it_and_a_wrong_base_is_refused(trained, tmp_path):
    from PIL import Image

    from genlab.generation import read_parameters

    run, out = trained / "run", tmp_path
    args = ["txt2img", "a red circle", "--seed", "1", "--steps", "6"]
    assert main([*args, "--out", str(out / "base.png")]) == 0
    assert main([*args, "--lora", str(run), "--lora-scale", "3", "--out", str(out / "l.png")]) == 0
    assert main(["lora", "fuse", str(run), "--scale", "3", "--out", str(out / "fused")]) == 0
    assert main([*args, "--model", str(out / "fused"), "--out", str(out / "f.png")]) == 0
    base, lora, fused = (
        np.asarray(Image.open(out / f), dtype=int) for f in ("base.png", "l.png", "f.png")
    )
    assert np.abs(lora - base).max() > 0
    assert np.abs(lora - fused).max() <= 1  # fused weights are the same sum, rounded once
    assert "Lora hashes: " in read_parameters(out / "l.png")
    # a LoRA of another base: refused with one sentence
    assert main([*args, "--model", str(out / "fused"), "--lora", str(run),
                 "--out", str(out / "x.png")]) == 2  # fmt: skip
    assert main([*args, "--lora", str(out / "nothing"), "--out", str(out / "y.png")]) == 2
    assert main([*args, "--lora", str(run), "--lora-scale", "1", "--lora-scale", "2",
                 "--out", str(out / "z.png")]) == 2  # fmt: skip


def test_resume_continues_exactly(trained, tmp_path):
    """4 steps then 4 more by --resume latest give the adapters 8 straight steps give."""
    from genlab import load

    common = ["finetune", "lora", "--data", str(trained / "imgs"), "--caption", "a picture",
              "--lr", "0.01"]  # fmt: skip
    assert main([*common, "--steps", "8", "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--steps", "4", "--out", str(tmp_path / "split")]) == 0
    assert main([*common, "--steps", "8", "--out", str(tmp_path / "split"),
                 "--resume", "latest"]) == 0  # fmt: skip
    a, b = load(tmp_path / "straight").state_arrays(), load(tmp_path / "split").state_arrays()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_page_training_cancels_with_a_checkpoint_and_resumes(trained, tmp_path):
    """The Train page's job: cancel mid-run keeps a checkpoint, resume finishes the run."""
    from genlab.finetune.train import lora_config
    from genlab.webui.training import LoraTraining, check_name, gather_images
    from genlab.webui.worker import Step, Stopped, Trained

    with pytest.raises(GenlabError, match="Name the LoRA"):
        check_name("../../etc")
    with pytest.raises(GenlabError, match="Upload images"):
        gather_images([], "", tmp_path / "x")
    files = sorted(str(p) for p in (trained / "imgs").iterdir())
    data = gather_images(files, "", tmp_path / "copied", uploads=(trained / "imgs",))
    assert len(list(data.glob("*.png"))) == 6 and len(list(data.glob("*.txt"))) == 3
    cfg = lora_config("builtin", str(data), caption="a picture",
                      train={"steps": 40, "checkpoint_every": 1000, "progress": False})  # fmt: skip
    job = LoraTraining()
    events = []
    for event in job.run(cfg, tmp_path / "run", resume=False):
        events.append(event)
        if isinstance(event, Step) and event.step == 3:
            job.cancel.set()  # the worker stops at the end of the step it is in
    stopped = events[-1]
    assert isinstance(stopped, Stopped) and 3 <= stopped.step < 40
    assert (tmp_path / "run" / "checkpoints" / f"step-{stopped.step}").is_dir()
    last = list(job.run(cfg, tmp_path / "run", resume=True))[-1]
    assert isinstance(last, Trained) and last.summary["steps"] == 40


def test_tampered_loras_are_refused_with_a_sentence(trained, tmp_path, capsys):
    """A LoRA someone else made: truncated weights, another model's config, a rank that is
    not a number, broken YAML, an adapter that does not fit; each refused, nothing drawn."""
    import shutil

    from safetensors.numpy import load_file, save_file

    def copy(name):
        shutil.copytree(trained / "run" / "model", tmp_path / name)
        return tmp_path / name

    weights = copy("truncated") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    config = copy("other") / "config.yaml"
    config.write_text(config.read_text().replace("model: lora", "model: gan"))
    config = copy("rank") / "config.yaml"
    config.write_text(config.read_text().replace("rank: 4", "rank: four"))
    (copy("yaml") / "config.yaml").write_text("model: [lora\n")
    weights = copy("shape") / "model.safetensors"
    arrays = load_file(str(weights))
    key = next(k for k in arrays if "lora_A" in k)
    arrays[key] = arrays[key][:, :3].copy()
    save_file(arrays, str(weights))
    for name in ("truncated", "other", "rank", "yaml", "shape"):
        out = tmp_path / f"{name}.png"
        code = main(["txt2img", "x", "--steps", "2", "--lora", str(tmp_path / name),
                     "--out", str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and not out.exists(), name
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1 and "Traceback" not in err, (name, err)


def test_lora_export_of_a_builtin_lora_is_one_sentence(trained, tmp_path, capsys):
    """kohya's and diffusers' layouts name Stable Diffusion's layers: a LoRA of genlab's own
    model is refused in one sentence, nothing written (Stable Diffusion LoRAs export in
    tests/test_stable_diffusion.py)."""
    out = tmp_path / "x.safetensors"
    assert main(["lora", "export", str(trained / "run"), "--out", str(out)]) == 2
    assert "kohya and diffusers files are for Stable Diffusion" in capsys.readouterr().err
    assert main(["lora", "export", str(trained / "run"), "--scale", "2", "--out", str(out)]) == 2
    assert "--scale applies to lora fuse" in capsys.readouterr().err
    assert not out.exists()
