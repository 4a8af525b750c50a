"""Prompt emphasis in stable-diffusion-webui's syntax: the parser's corner cases, and the
weights reaching the tokens."""

from __future__ import annotations

import pytest
import torch

from genlab.text.emphasis import apply_weights, char_weights, parse_emphasis, token_weights

W = 1.1


@pytest.mark.parametrize(
    "prompt, want",
    [
        ("a red circle", [("a red circle", 1.0)]),
        ("a (red) circle", [("a ", 1.0), ("red", W), (" circle", 1.0)]),
        ("a ((red)) circle", [("a ", 1.0), ("red", W * W), (" circle", 1.0)]),
        ("a [red] circle", [("a ", 1.0), ("red", 1 / W), (" circle", 1.0)]),
        ("a (red:1.5) circle", [("a ", 1.0), ("red", 1.5), (" circle", 1.0)]),
        ("(red: 0.5 )", [("red", 0.5)]),
        ("((red:2) star)", [("red", 2 * W), (" star", W)]),
        ("[(red:2)]", [("red", 2 / W)]),
        (r"a \(red\) circle", [("a (red) circle", 1.0)]),
        (r"\[x\] \\", [("[x] \\", 1.0)]),
        ("(open bracket", [("open bracket", W)]),
        ("[open", [("open", 1 / W)]),
        ("stray) and ]", [("stray) and ]", 1.0)]),
        ("red:1.5)", [("red:1.5)", 1.0)]),
        ("time: 12", [("time: 12", 1.0)]),
        ("", [("", 1.0)]),
        ("()", [("", 1.0)]),
        ("(a [b) c]", [("a ", W), ("b", 1.0), (" c", 1 / W)]),
    ],
)
def test_parse_emphasis(prompt, want):
    got = parse_emphasis(prompt)
    assert [t for t, _ in got] == [t for t, _ in want]
    assert [w for _, w in got] == pytest.approx([w for _, w in want])


def test_char_weights_and_token_weights():
    text, weights = char_weights("a (red:1.5) star")
    assert text == "a red star" and weights[2:5] == [1.5] * 3 and weights[0] == 1.0
    spans = [(0, 0), (0, 1), (2, 5), (6, 10), (0, 0)]  # start, a, red, star, padding
    assert token_weights(spans, weights).tolist() == [1.0, 1.0, 1.5, 1.0, 1.0]


def test_apply_weights_keeps_the_mean():
    torch.manual_seed(0)
    tokens, mask = torch.rand(4, 8) + 0.5, torch.tensor([True, True, True, False])
    out = apply_weights(tokens, mask, torch.tensor([1.0, 2.0, 1.0, 1.0]))
    assert out[:3].mean() == pytest.approx(tokens[:3].mean().item())
    assert (out[1] / out[0]).mean() > (tokens[1] / tokens[0]).mean()  # relatively louder


@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_encoders_weight_the_emphasised_word(name):
    from genlab.text import text_encoder

    enc = text_encoder(name)
    plain, _, _ = enc.encode(["a red star"])
    text, weights = char_weights("a (red:1.5) star")
    emphasised, _, _ = enc.encode([text], [weights])
    ratio = (emphasised[0].norm(dim=1) / plain[0].norm(dim=1)).tolist()
    spans = enc.tokenize([text]).spans[0]
    red = next(i for i, (a, b) in enumerate(spans) if text[a:b] == "red")
    assert ratio[red] == pytest.approx(max(ratio))
    assert ratio[red] > 1.2 * min(r for i, r in enumerate(ratio) if i != red)
