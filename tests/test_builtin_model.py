"""The text-to-image model shipped inside the package: its card, and that it works offline
at once and draws what it is asked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genlab.backends import generate
from genlab.generation import GenerationRequest, parse_parameters, read_parameters
from genlab.pipelines.text_to_image import builtin_folder
from genlab.training.checkpoint import sha256


def test_card_matches_the_shipped_weights():
    folder = builtin_folder()
    card = json.loads((folder / "card.json").read_text())
    weights = folder / "model.safetensors"
    assert card["sha256"] == sha256(weights)
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total <= 20 * 2**20  # at most 20 MB in all
    assert card["recipes"] == ["kl-autoencoder-shapes", "txt2img-shapes"]
    assert card["training_seconds"]["unet"] > 0 and card["adherence"]["heldout"]["overall"] > 0


def test_txt2img_builtin_offline(tmp_path):
    from genlab.cli import main

    out = tmp_path / "out.png"
    prompt = "a red circle to the left of a blue square"
    assert main(["txt2img", prompt, "--seed", "1", "--out", str(out)]) == 0
    params = parse_parameters(read_parameters(out))
    assert params["Model"] == "genlab-shapes" and len(params["Model hash"]) == 10
    assert params["Prompt"] == prompt and params["Size"] == "32x32"


def test_builtin_model_draws_what_it_is_asked():
    """Scenes the detector reads back: a held-out colour-shape pair and a held-out relation
    among them (eval-t2i measures the same on hundreds of prompts)."""
    from genlab.evaluation.scene_detector import detect, judge

    def one(colour, shape, position, size="large"):
        return {"things": [{"colour": colour, "shape": shape, "size": size}], "position": position}

    cases = [
        ("a large red circle on the left", one("red", "circle", "left")),
        ("a large green star in the centre", one("green", "star", "centre")),  # held out
        ("a small blue square at the top", one("blue", "square", "top", "small")),
        ("a yellow triangle, right, large", one("yellow", "triangle", "right")),
    ]
    right = 0
    for prompt, scene in cases:
        images = generate(GenerationRequest(prompt, seed=0, batch_size=4)).images
        right += sum(judge(scene, detect(np.asarray(im)))["overall"] for im in images)
    # 16 of 16 on the CI machine (the seeds fix the images; margin for other CPUs' rounding)
    assert right >= 13, right


def test_builtin_model_reaches_the_adherence_its_card_states():
    """In CI's default run: 40 prompts a split (seed 1, not the card's seed), judged as
    eval-t2i judges. The two shares must be consistent: the 99% Wilson interval of what 40
    prompts show must reach the lower end of the card's 95% interval (200 prompts). With
    the card's 98.0% [95.0%, 99.2%] held out and 100% [98.1%, 100%] seen, 34 of 40 held-out
    prompts right or fewer fails, and 36 of 40 seen or fewer: 1.4% and 0.7% of prompt sets
    for a model at the low end of its card's interval; 35% and 58% for one 10 points below
    the card (88% held out, 90% seen); more the further it falls."""
    from genlab.evaluation.text_to_image import evaluate_text_to_image, wilson

    card = json.loads((builtin_folder() / "card.json").read_text())
    n = 40
    report = evaluate_text_to_image("builtin", n=n, seed=1, references=False)
    for split in ("heldout", "seen"):
        right = round(report[split]["accuracy"]["overall"] * n)
        low = card["adherence_interval_95"][split]["overall"][0]
        assert wilson(right, n, z=2.576)[1] >= low, (split, right, low)


def test_emphasis_moves_the_image_the_way_the_word_says():
    """One object, two colour words: the first wins plainly (17 of 24 red, 2 of 12 blue here);
    "(blue:1.5)" turns it blue and "[red]" weakens red (measured by the detector)."""
    from genlab.backends import load_backend
    from genlab.evaluation.scene_detector import detect
    from genlab.generation.images import image_batch
    from genlab.models.latent_sampling import draw_latents

    pipe = load_backend("builtin")

    def blue_count(prompt: str, n: int = 12) -> int:
        latents, _ = draw_latents(
            pipe.model, [prompt] * n, [""] * n, list(range(n)), width=32, height=32
        )
        found = [detect(im) for im in image_batch(pipe.model.decode(latents))]
        return sum(bool(f) and f[0].colour == "blue" for f in found)

    plain = blue_count("a large red blue circle in the centre")
    louder = blue_count("a large red (blue:1.5) circle in the centre")
    softer = blue_count("a large [red] blue circle in the centre")
    assert plain <= 4 and louder >= 10 and softer >= plain, (plain, louder, softer)


def test_builtin_model_names_what_it_cannot_draw_and_refuses_tiled_sizes(tmp_path, capsys):
    """One line on stderr for words and counts outside its vocabulary and for a cut prompt
    (no Python warning with a file path); a size above the trained 32x32 is refused in one
    sentence, before any work, by check() (which the CLI, the page and the API call)."""
    import warnings

    from genlab.backends import load_backend
    from genlab.cli import main
    from genlab.errors import GenlabError
    from genlab.generation import GenerationRequest

    pipe = load_backend("builtin")
    assert pipe.describe().max_size == (32, 32)
    with pytest.raises(GenlabError, match="trained at 32x32") as e:
        pipe.check(GenerationRequest("a red circle", steps=2, width=64, height=64))
    assert "\n" not in str(e.value) and "64x64" in str(e.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the truncation says so in info, not as a warning
        result = pipe(GenerationRequest("three teal cars " + "red " * 80, steps=2))
    notice = result.info["notice"]
    assert '"teal"' in notice and '"cars"' in notice and "3 objects" in notice
    assert "77 tokens" in notice and "\n" not in notice
    assert "notice" not in pipe(GenerationRequest("a red circle", steps=2)).info
    out = tmp_path / "o.png"
    assert main(["txt2img", "a blue car", "--steps", "2", "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "genlab:" in line]
    assert len(err) == 1 and '"car"' in err[0]
    assert main(["txt2img", "x", "--width", "128", "--out", str(tmp_path / "b.png")]) == 2
    assert "trained at 32x32" in capsys.readouterr().err
