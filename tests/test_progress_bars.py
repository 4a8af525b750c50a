"""Long loops show a progress bar on a terminal's stderr (issue 31): DDPM sampling from
BAR_FROM steps (the demo's digits draws, ``genlab course 9``'s 1,000 steps) and the
variational bound's T network calls; short draws and non-terminals stay silent."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from genlab.models.ddpm_sampling import BAR_FROM


class Terminal(io.StringIO):
    """stderr as a terminal: tqdm's disable=None shows its bar only where isatty()."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tiny():
    import torch

    from genlab.models.diffusion import DDPM

    torch.manual_seed(0)
    return DDPM((1, 8, 8), channels=(8, 8), attention=False, timesteps=BAR_FROM)


def test_long_draws_show_a_bar_on_a_terminal(tiny, monkeypatch):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    tiny.sample(2, seed=0, sampler="ddpm", steps=BAR_FROM)
    assert "sampling" in err.getvalue() and f"/{BAR_FROM}" in err.getvalue()
    short = Terminal()
    monkeypatch.setattr(sys, "stderr", short)
    tiny.sample(2, seed=0, steps=BAR_FROM - 1)
    assert short.getvalue() == ""


def test_the_bound_shows_a_bar_and_no_bar_off_a_terminal(tiny, monkeypatch):
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    bound = tiny.elbo(x, levels=17)
    assert "bound" in err.getvalue() and f"/{BAR_FROM}" in err.getvalue()
    log = io.StringIO()  # a log file: no bar, and the same number
    monkeypatch.setattr(sys, "stderr", log)
    assert np.allclose(tiny.elbo(x, levels=17).numpy(), bound.numpy())
    assert log.getvalue() == ""
