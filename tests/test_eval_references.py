"""Sample quality is measured against held-out references, never the training split:
`genlab eval --metrics fd` and the guidance sweep use the images `genlab compare` uses
(digits part "models", its held-out 20%: 288 digits no generator and not the feature
network trained on)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from genlab.errors import GenlabError

ROOT = Path(__file__).resolve().parents[1]


def compare_references():
    from genlab.evaluation.compare import _load

    _, train, held_out = _load("digits")
    return train, held_out


def test_eval_fd_uses_compares_held_out_references():
    from genlab.assets import load_shipped
    from genlab.evaluation.evaluate import evaluate_run
    from genlab.evaluation.features import digits_features
    from genlab.evaluation.metrics import frechet_distance

    result = evaluate_run("vae-digits", metrics=("fd",), n=64)
    train, held_out = compare_references()
    assert result["n_reference"] == len(held_out.x) == 288
    assert result["reference"].startswith("held-out split (288 images)")
    fake = np.asarray(load_shipped("vae-digits").sample(64, seed=0))
    want = frechet_distance(digits_features(held_out.x), digits_features(fake))
    against_train = frechet_distance(digits_features(train.x), digits_features(fake))
    assert result["fd"] == pytest.approx(want, rel=1e-6)
    assert abs(want - against_train) > 1e-3 * want  # the two references do differ


def test_eval_fd_without_a_held_out_split_is_refused():
    from genlab.assets import load_shipped
    from genlab.evaluation.evaluate import evaluate

    train, _ = compare_references()
    with pytest.raises(GenlabError, match="held-out split"):
        evaluate(load_shipped("vae-digits"), train.x, None, ("fd",), n=8)


def test_guidance_sweep_compares_with_the_held_out_split():
    spec = importlib.util.spec_from_file_location(
        "guidance_sweep", ROOT / "benchmarks" / "guidance_sweep.py"
    )
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    model, held_out, shipped = sweep.references("ddpm-digits")
    _, want = compare_references()
    assert shipped and model.name == "ddpm"
    assert np.array_equal(held_out.x, want.x)
