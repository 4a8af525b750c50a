"""The exact-resume check every LoRA trainer test makes: ``steps`` straight equal ``split``
steps then ``--resume latest`` to ``steps``, bit for bit, in the adapters diffusers reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def assert_resumes_exactly(common: list[str], root: Path, steps: int, split: int,
                           straight_extra: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """Run ``genlab`` with ``common`` (a ``finetune lora`` command without --steps/--out)
    straight and split under ``root``; returns the straight run's folder."""
    from safetensors.numpy import load_file

    from genlab.cli import main

    straight, parted = root / "straight", root / "split"
    assert main([*common, "--steps", str(steps), "--out", str(straight), *straight_extra]) == 0
    assert main([*common, "--steps", str(split), "--out", str(parted)]) == 0
    assert main([*common, "--steps", str(steps), "--out", str(parted), "--resume", "latest"]) == 0
    name = "model/pytorch_lora_weights.safetensors"
    a, b = load_file(straight / name), load_file(parted / name)
    assert a.keys() == b.keys() and any(np.abs(v).max() > 0 for v in a.values())
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    return straight
