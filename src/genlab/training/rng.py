"""Every random number generator a training process uses, as tensors and numbers only, so a
checkpoint stores it in state.pt (read back with ``weights_only=True``) and a resumed run
draws exactly what the uninterrupted one would have: torch's CPU generator, every CUDA
device's, numpy's global generator and Python's ``random``."""

from __future__ import annotations

import random

import numpy as np
import torch


def get_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the global one)
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def set_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
