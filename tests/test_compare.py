"""genlab compare: marks by the written thresholds, ties the seeds cannot resolve, and a
small run that is the same on a rerun."""

import math

import numpy as np
import pytest

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.evaluation.compare import compare
from genlab.evaluation.compare_report import fidelity_ranks, marks, write_report


def _entry(nll=None, swd=(0.04, 0.005), modes=(8.0, 0.0), diverged=0, rate=(2e4, 1.0), sweep=None):
    summary = {"nll": nll, "swd": swd, "modes_hit": modes, "diverged": diverged,
               "samples_per_s": rate}  # fmt: skip
    return {"summary": summary, "lr_sweep": sweep or {}, "runs": [{}, {}, {}]}


def test_marks_follow_the_written_thresholds():
    good = marks(_entry(nll=(1.05, 0.01)), true_nll=1.0)
    assert good == {"likelihood": "good", "stability": "good", "fidelity": "good",
                    "speed": "good"}  # fmt: skip
    assert marks(_entry(), true_nll=1.0)["likelihood"] == "none"
    assert marks(_entry(nll=(1.4, 0.01)), 1.0)["likelihood"] == "fair"
    assert marks(_entry(nll=(2.0, 0.01)), 1.0)["likelihood"] == "poor"
    assert marks(_entry(modes=(7.0, 0.5)), 1.0)["fidelity"] == "fair"  # a mode dropped
    assert marks(_entry(swd=(0.3, 0.01)), 1.0)["fidelity"] == "poor"
    assert marks(_entry(diverged=1), 1.0)["stability"] == "poor"
    swept = _entry(
        sweep={0.3: {"swd": 0.12, "diverged": None}, 3.0: {"swd": 0.05, "diverged": None}}
    )
    assert marks(swept, 1.0)["stability"] == "fair"  # 3x worse at a third of the rate
    assert marks(_entry(rate=(500.0, 1.0)), 1.0)["speed"] == "poor"


def test_overlapping_intervals_are_ties():
    report = {"families": {
        "a": _entry(swd=(0.10, 0.02)), "b": _entry(swd=(0.11, 0.02)), "c": _entry(swd=(0.5, 0.01)),
    }}  # fmt: skip
    assert fidelity_ranks(report) == {"a": "1", "b": "1 (tie)", "c": "3"}


def test_a_small_comparison_is_the_same_on_a_rerun(tmp_path):
    kw = {
        "seeds": 2,
        "steps": 15,
        "n": 300,
        "families": ("gmm", "gan", "realnvp"),
        "lr_sweep": False,
    }
    first, second = compare("8gaussians", **kw), compare("8gaussians", **kw)
    assert list(first["families"]) == ["Gaussian mixture (EM)", "GAN", "RealNVP flow"]
    gmm = first["families"]["Gaussian mixture (EM)"]["summary"]
    assert abs(gmm["nll"][0] - first["true_nll"]) < 0.1  # EM finds the 8 modes
    assert gmm["modes_hit"][0] == 8 and gmm["nfe"] == 0
    assert first["families"]["GAN"]["summary"]["nll"] is None
    assert first["families"]["RealNVP flow"]["summary"]["nll_kind"].startswith("exact")
    for label in first["families"]:
        for a, b in zip(first["families"][label]["runs"], second["families"][label]["runs"],
                        strict=True):  # fmt: skip
            for key in ("swd", "mmd", "nll", "final_loss"):
                assert (a.get(key) == b.get(key)) or (
                    a.get(key) is not None and math.isclose(a[key], b[key], rel_tol=1e-9)
                ), (label, key)
    path = write_report(first, tmp_path, "genlab compare (test)", "test machine")
    text = path.read_text()
    assert "| Gaussian mixture (EM) |" in text and "poor above" in text
    assert (tmp_path / "compare.html").is_file() and (tmp_path / "compare-samples.png").is_file()
    assert np.isfinite(first["families"]["GAN"]["summary"]["swd"][0])


def test_compare_command_refuses_what_it_cannot_measure(tmp_path):
    assert main(["compare", "--data", "heights", "--out", str(tmp_path)]) == 2
    assert main(["compare", "--families", "nothing", "--out", str(tmp_path)]) == 2
    assert main(["compare", "--shipped", "--out", str(tmp_path)]) == 2  # 2-D: none shipped
    with pytest.raises(GenlabError, match="seeds"):
        compare(seeds=0)
    with pytest.raises(GenlabError, match="shipped"):
        compare("digits", seeds=2, shipped=True)


def test_digits_comparison_against_unseen_references(tmp_path):
    """Digits: references held out from every model and from the feature network; FD with
    its floor and interval, memorisation, classes, bits/dim, ranks with ties."""
    kw = {"seeds": 1, "steps": 10, "n": 120, "families": ("gmm", "vae"), "lr_sweep": False,
          "nll_n": 20}  # fmt: skip
    report = compare("digits", **kw)
    assert report["n_train"] == 1150 and report["n_test"] == 288
    assert 0 < report["fd_floor"] < 100
    gmm = report["families"]["Gaussian mixture (EM)"]
    run = gmm["runs"][0]
    assert run["n_generated"] == 120 and run["n_reference"] == 288 and run["n_nll"] == 20
    assert run["nll_kind"].startswith("exact") and np.isfinite(run["bits_per_dim"])
    # one trained model: FD's interval is the bootstrap's, not a missing one
    assert gmm["summary"]["fd"][1] == run["fd_half"] > 0
    # EM with 10 components draws every digit and does not copy its training images
    assert run["classes_covered"] == 10 and run["copy_share"] < 0.1
    vae = report["families"]["VAE"]["runs"][0]  # 10 steps: far from trained
    assert vae["fd"] > run["fd"] and vae["nll_kind"].startswith("IWAE")
    path = write_report(report, tmp_path, "genlab compare (test)", "test machine")
    text = path.read_text()
    assert "FD floor" in text and "| VAE |" in text and "copy share" in text
    assert (tmp_path / "compare-samples.png").is_file()


def test_shipped_digits_models_are_measured_without_training():
    report = compare("digits", seeds=1, shipped=True, n=100, nll_n=10,
                     families=("gan", "realnvp"), lr_sweep=False)  # fmt: skip
    for label, entry in report["families"].items():
        run = entry["runs"][0]
        assert run["curve"] == [] and run["train_seconds"] > 10, label  # the card's time
        # trained: every digit drawn, and FD far from an untrained network's (> 100x floor)
        assert run["classes_covered"] >= 8 and run["fd"] < 25 * report["fd_floor"], label
    realnvp = report["families"]["RealNVP flow"]["runs"][0]
    assert realnvp["nll_kind"].startswith("dequantized") and 0.5 < realnvp["bits_per_dim"] < 3


def test_the_quick_tour_draws_diffusion_with_the_few_step_sampler():
    """The quick demo's digits comparison samples the shipped DDPM with the sampler sweep's
    best few-step sampler (issue 29), says which in its text, and --full keeps the 1,000
    ancestral steps."""
    from genlab.demo.models import compare_settings, few_step_note
    from genlab.evaluation.compare import (
        ANCESTRAL,
        FEW_STEP,
        FEW_STEP_LABEL,
        families_for,
        with_few_steps,
    )
    from genlab.generation.request import WEBUI_SAMPLERS

    quick, full = compare_settings("digits", full=False), compare_settings("digits", full=True)
    assert quick["few_step"] and quick["shipped"] and not full["few_step"]
    assert ANCESTRAL in {f.label for f in families_for("digits")}  # what --full draws
    swapped = {f.label: f for f in with_few_steps(families_for("digits"))}
    assert ANCESTRAL not in swapped
    fast = swapped[FEW_STEP_LABEL]
    assert fast.options == FEW_STEP and fast.nfe == FEW_STEP["steps"] <= 10
    assert fast.recipe == "ddpm-digits" and fast.trains is None  # the same shipped model
    assert swapped["diffusion, DPM++ 2M 20 steps"].trains == FEW_STEP_LABEL
    name = WEBUI_SAMPLERS[FEW_STEP["sampler"]]
    assert FEW_STEP_LABEL == f"diffusion, {name} {FEW_STEP['steps']} steps"
    note = few_step_note(FEW_STEP)
    assert f"{name} at {FEW_STEP['steps']} network evaluations" in note and "--full" in note


@pytest.mark.slow  # the shipped DDPM's bound on one image: 1,000 network calls
def test_a_few_step_comparison_measures_the_shipped_ddpm_at_few_steps():
    from genlab.evaluation.compare import FEW_STEP, FEW_STEP_LABEL

    report = compare("digits", seeds=1, shipped=True, n=40, nll_n=1, families=("ddpm",),
                     lr_sweep=False, few_step=True)  # fmt: skip
    assert list(report["families"]) == [FEW_STEP_LABEL, "diffusion, DPM++ 2M 20 steps"]
    run = report["families"][FEW_STEP_LABEL]["runs"][0]
    assert run["nfe"] == FEW_STEP["steps"] and run["classes_covered"] >= 8
    assert run["fd"] < 25 * report["fd_floor"] and report["few_step"]
