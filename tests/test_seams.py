"""The seams between models, Trainer and front ends: declared hooks, typed sampling options,
frozen parts, the registry's kinds, the diffusion pipeline, figures returned by plots."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genlab
import genlab.data as gd
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.models.autoencoder import AE
from genlab.models.neural import NeuralModel
from genlab.registry import KINDS, MODELS, model_class, names
from genlab.training.trainer import TrainConfig, Trainer

FAST = {"steps": 3, "batch_size": 32, "progress": False}


def test_every_model_has_one_kind_and_neural_models_declare_every_hook():
    assert {e.kind for e in MODELS.values()} <= set(KINDS)
    assert KINDS == ("classical", "latent", "neural")  # no kind declared and never used
    assert names("classical") == ["normal", "mvn", "gmm", "pixel-gmm", "ppca"]
    assert names("latent") == ["linear-vae", "gplvm"]
    hooks = ("conditions", "updates", "training_step", "after_training", "run_plots")
    for name in names("neural"):
        cls = model_class(name)
        assert issubclass(cls, NeuralModel), name
        for hook in hooks:
            assert callable(getattr(cls, hook)), (name, hook)
        # the sampling schema is declared data, not probed
        assert all(o.name.isidentifier() for o in cls.sample_options)


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("vae", {"sampler": "ddim"}, "has no sampling option 'sampler'; it takes: noise"),
        ("gan", {"steps": 3}, "has no sampling option 'steps'; it takes none"),
        ("ddpm", {"stpes": 3}, "has no sampling option 'stpes'"),
        ("ddpm", {"steps": 0}, "steps must be at least 1"),
        ("ddpm", {"sampler": "plms"}, "Unknown sampler 'plms'"),
        ("ddpm", {"cfg": float("nan")}, "cfg must be a finite number"),
        ("ddpm", {"sampler": "euler", "eta": 0.5}, "eta applies to the ddim sampler only"),
        ("ae", {"latent": "uniform"}, "Unknown latent 'uniform'"),
    ],
)
def test_sampling_options_are_checked(name, options, message):
    cls = model_class(name)
    model = cls((2,), hidden=[8])
    with pytest.raises(GenlabError, match=message):
        model.sample(4, seed=0, **options)


def test_sampling_options_describe_controls():
    ddpm = model_class("ddpm")
    described = {o.name: o.describe() for o in ddpm.sample_options}
    from genlab.diffusion.samplers import SAMPLERS

    want = list(SAMPLERS)
    assert want[:6] == ["ddpm", "ddim", "euler", "heun", "dpmpp-2m", "euler-a"]
    assert described["sampler"]["choices"] == want
    assert described["steps"] == {**described["steps"], "type": "int", "default": 20, "low": 1}
    # strings from a command line or a web form are typed by the schema
    vae = model_class("vae")((2,), hidden=[8])
    torch.manual_seed(0)
    a = vae.sample(5, seed=1, noise="false")
    b = vae.sample(5, seed=1, noise=False)
    assert torch.equal(a, b)


def test_sample_cli_refuses_an_option_the_model_does_not_take(tmp_path, capsys):
    run = tmp_path / "vae"
    args = ["train", "vae", "--data", "moons", "--out", str(run), "--steps", "2",
            "--set", "progress=false", "--set", "model.hidden=[8]"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    code = main(
        ["sample", str(run), "--n", "4", "--sampler", "ddim", "--out", str(tmp_path / "s.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no sampling option 'sampler'" in err and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists()
    code = main(["sample", str(run), "--n", "4", "--option", "noise=false",
                 "--out", str(tmp_path / "s.csv")])  # fmt: skip
    assert code == 0 and (tmp_path / "s.csv").is_file()


class _FrozenEncoderAE(AE):
    """An AE whose encoder is a frozen pretrained part with a home of its own (as a text
    encoder from a pip package is): frozen and external."""

    frozen = ("enc",)
    external = ("enc",)


class _FrozenSavedEncoderAE(AE):
    """Frozen but not external (as latent diffusion's autoencoder): saved with the model."""

    frozen = ("enc",)


def test_frozen_parts_that_are_not_external_travel_with_the_model(tmp_path):
    data = gd.load("digits", size=8, scale="pm1")
    torch.manual_seed(0)
    model = _FrozenSavedEncoderAE(data.shape, latent_dim=4, width=8)
    trainer = Trainer(model, data, TrainConfig(steps=2, batch_size=32, progress=False), tmp_path)
    trainer.train()
    for path in (tmp_path / "checkpoints" / "step-2").glob("*.safetensors"):
        assert not any(k.startswith("enc.") for k in load_file(path)), path  # not trained
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert any(k.startswith("enc.") for k in saved)
    torch.testing.assert_close(genlab.load(tmp_path).encode(data.x[:4]), model.encode(data.x[:4]))


def test_frozen_parts_are_not_trained_averaged_or_saved(tmp_path):
    data = gd.load("digits", size=8, scale="pm1")
    torch.manual_seed(0)
    model = _FrozenEncoderAE(data.shape, latent_dim=4, width=8)
    enc_before = {k: v.clone() for k, v in model.net.enc.state_dict().items()}
    dec_before = {k: v.clone() for k, v in model.net.dec.state_dict().items()}
    cfg = TrainConfig(steps=3, batch_size=32, ema_decay=0.9, progress=False)
    trainer = Trainer(model, data, cfg, run_dir=tmp_path)
    optimized = {id(p) for g in trainer.opts["main"].param_groups for p in g["params"]}
    assert optimized == {id(p) for p in model.net.dec.parameters()}
    assert not any(k.startswith("enc.") for k in trainer.ema.shadow)
    trainer.train()
    assert all(torch.equal(v, model.net.enc.state_dict()[k]) for k, v in enc_before.items())
    assert any(not torch.equal(v, model.net.dec.state_dict()[k]) for k, v in dec_before.items())
    for path in (tmp_path / "checkpoints" / "step-3").glob("*.safetensors"):
        assert not any(k.startswith("enc.") for k in load_file(path)), path
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert saved and not any(k.startswith("enc.") for k in saved)
    # resuming loads the trainable state into a model whose frozen part came from elsewhere
    again = _FrozenEncoderAE(data.shape, latent_dim=4, width=8)
    again.net.enc.load_state_dict(enc_before)
    Trainer(again, data, TrainConfig(steps=3, batch_size=32, ema_decay=0.9, progress=False),
            run_dir=tmp_path, resume="latest")  # fmt: skip


def test_evaluation_reads_capability_flags():
    from genlab.evaluation.evaluate import nll

    data = gd.load("moons")
    gan = model_class("gan")((2,), hidden=[8])
    with pytest.raises(GenlabError, match="has no likelihood"):
        nll(gan, data.x[:10])
    torch.manual_seed(0)
    vae = model_class("vae")((2,), hidden=[8]).fit(data, FAST)
    value, kind = nll(vae, data.x[:10])
    assert np.isfinite(value) and kind.startswith("IWAE")
    ddpm = model_class("ddpm")((2,), hidden=[16])
    assert ddpm.has_log_prob and not ddpm.has_elbo
    image_ddpm = model_class("ddpm")((1, 8, 8), channels=[8, 16])
    assert image_ddpm.has_elbo and not image_ddpm.has_log_prob and image_ddpm.nll_sample_cap == 100


def test_the_diffusion_pipeline_owns_sampling_and_the_model_answers_through_it():
    from genlab.models.ddpm_sampling import DDPMSampling

    torch.manual_seed(0)
    model = model_class("ddpm")((2,), hidden=[16], num_classes=3)
    a = model.sample(6, seed=2, steps=4, label=1, cfg=2.0)
    b = DDPMSampling(model)(6, seed=2, steps=4, label=1, cfg=2.0)
    assert torch.equal(a, b)
    per_sample = model.sample(3, seed=2, steps=4, cond=torch.tensor([0, 1, 2]))
    assert per_sample.shape == (3, 2)
    with pytest.raises(GenlabError, match=r"Labels must lie in 0..2"):
        model.sample(2, seed=0, label=3)


def test_plots_return_figures_and_write_nothing(tmp_path, monkeypatch):
    from genlab.runs import fit_plots
    from genlab.viz import plots

    monkeypatch.chdir(tmp_path)
    data = gd.load("faithful")
    gmm = model_class("gmm")(2, seed=0).fit(data)
    figures = fit_plots(gmm, data)
    assert set(figures) == {"density", "responsibilities", "em_loglik"}
    assert list(tmp_path.iterdir()) == []  # nothing written
    path = plots.save(figures["density"], tmp_path / "d.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    grid = plots.image_grid(np.zeros((4, 1, 8, 8)))
    assert grid.size == (4 * 19, 4 * 19)


def test_genlab_models_lists_kinds(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "gmm" in out and "classical" in out and "neural" in out


def test_fit_runs_ask_the_model_for_metrics_and_plots(tmp_path):
    """No switch on model.name: a run's diagnostics are the model's fit_metrics(), its
    figures the density plots by dimension plus its own run_plots()."""
    from genlab.runs import fit_run

    gmm = fit_run("gmm", "faithful", tmp_path / "g", options={"n_components": 2, "seed": 0})
    assert {"n_iter", "converged", "train_avg_loglik", "test_avg_loglik"} <= set(gmm)
    assert {p.rsplit("/", 1)[-1] for p in gmm["plots"]} == {
        "density.png", "responsibilities.png", "em_loglik.png"
    }  # fmt: skip
    mvn = fit_run("mvn", "faithful", tmp_path / "m")
    assert "n_iter" not in mvn
    assert {p.rsplit("/", 1)[-1] for p in mvn["plots"]} == {"density.png", "surface3d.png"}
    ppca = fit_run("ppca", "csv:" + str(_table(tmp_path)), tmp_path / "p", options={})
    assert "n_iter" not in ppca and ppca["plots"] == []  # 5-D: no density picture
    assert np.isfinite(ppca["test_avg_loglik"])
    pixels = fit_run("pixel-gmm", "digits", tmp_path / "d", options={"n_components": 2})
    assert pixels["n_iter"] >= 1 and [p.rsplit("/", 1)[-1] for p in pixels["plots"]] == [
        "em_loglik.png"
    ]
    assert main(["sample", str(tmp_path / "d"), "--n", "4", "--out", str(tmp_path / "d.png")]) == 0


def _table(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 2)) @ rng.standard_normal((2, 5))
    x += 0.1 * rng.standard_normal((100, 5))
    path = tmp_path / "t.csv"
    np.savetxt(path, x, delimiter=",", header="a,b,c,d,e", comments="")
    return path


def test_latent_models_are_fitted_by_their_own_optimiser_not_genlab_fit(tmp_path):
    from genlab.runs import build_model

    with pytest.raises(GenlabError, match="'linear-vae' is not fitted in closed form or by EM"):
        build_model("linear-vae", {})


def test_the_gplvm_without_gpytorch_is_one_sentence(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_gpytorch(name, *a, **k):
        if name == "gpytorch" or name.startswith("gpytorch."):
            raise ImportError("No module named 'gpytorch'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_gpytorch)
    with pytest.raises(GenlabError, match=r"^The GPLVM needs GPyTorch, which is not installed"):
        model_class("gplvm")()


def test_the_playground_asks_the_model_for_a_density():
    from genlab.webui import lab

    gan = model_class("gan")((2,), hidden=[8])
    with pytest.raises(GenlabError, match="A gan model has no exact density to draw"):
        lab._log_prob(gan, np.zeros((3, 2)))
    flow = model_class("realnvp")((2,), hidden=[8])  # float64 points: the model converts
    assert lab._log_prob(flow, np.zeros((3, 2))).shape == (3,)


def test_no_flag_or_kind_is_declared_and_never_read():
    from genlab.base import GenerativeModel

    assert not hasattr(GenerativeModel, "has_energy")
    assert all(names(kind) for kind in KINDS)  # every kind has models
