"""Step caching (LOSSY, off by default): DeepCache (Ma, Fang and Wang, 2023, "DeepCache:
Accelerating Diffusion Models for Free"), for genlab's U-Net and, through
``interop.diffusers.deepcache``, diffusers' UNet2DConditionModel.

A U-Net's up path reads, at every level, the skip of the matching down level and the
feature coming up from below. The paper observes that the deep features change little
between adjacent sampling steps while the shallow ones carry what changes; so it splits the
network at one skip branch b (skip 0 is the stem's output, the outermost; skip S-1 the
deepest) and, between full evaluations, recomputes only the shallow path around it.

Algorithm (the paper's uniform 1:N strategy, interval N, branch b), over the network calls
k = 0, 1, 2, ... of one draw (a sampler's step with classifier-free guidance is one call,
both halves batched):

    if k mod N == 0:                                   # a full call
        run the whole U-Net
        F <- the up-path feature that enters the up block reading skip b
             (the output of everything deeper: down blocks past skip b, the middle,
             the up blocks before it)
    else:                                              # a partial call
        run the stem and the down blocks that make skips 1..b
        run the up blocks from the one reading skip b to the head, with F as the feature
        from below and the fresh skips 0..b

So N calls cost one full call and N - 1 shallow ones: ceil(calls / N) full calls a draw,
ceil(steps / N) with the samplers that call the network once a step (dpmpp-2m, euler, lcm
...; heun calls it twice).
Since it replaces features by older ones, pictures differ from the uncached draw (measured
in docs/results.md, section "Lossy speed-ups"); N = 1 is the plain network.

How it is done here: every "deep" leaf module (the down leaves making skips past b, the
middle, the up leaves before the one reading skip b) replays on a partial call the output
it gave on the last full call, without running. The network's own forward is untouched,
so the one feature that matters, the last deep up leaf's output, reaches the up leaf
reading skip b as F; the other replayed outputs only fill places the shallow path never
reads. A change of the input's shape (another batch or size) makes the next call full.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import GenlabError


@dataclass(frozen=True)
class Path:
    """A U-Net's leaves in the order its forward calls them, labelled with skips.

    ``down``: (leaf, the skip its output is, or None for a leaf inside a group whose last
    leaf makes the skip); ``middle``: the leaves between the paths; ``up``: (leaf, the skip
    it reads, or None: an attention or upsampler that follows a reading leaf).
    ``skips``: how many skips there are (the stem's included)."""

    down: Sequence[tuple[nn.Module, int | None]]
    middle: Sequence[nn.Module]
    up: Sequence[tuple[nn.Module, int | None]]
    skips: int

    def deep(self, branch: int) -> list[nn.Module]:
        """The leaves a partial call at skip branch ``branch`` does not run."""
        if not 0 <= branch < self.skips:
            raise GenlabError(
                f"The DeepCache branch must be a skip of this U-Net, 0 to {self.skips - 1} "
                f"(0: the shallowest, the fastest), got {branch}."
            )
        deep: list[nn.Module] = []
        made = 0  # the skip the down leaves so far have completed
        for leaf, skip in self.down:
            if made >= branch:  # skips 0..branch are made: the rest is deep
                deep.append(leaf)
            if skip is not None:
                made = skip
        deep.extend(self.middle)
        for leaf, reads in self.up:
            if reads == branch:
                break
            deep.append(leaf)
        return deep


@dataclass
class DeepCache:
    """The state of step caching over one draw: the call counter and each deep leaf's last
    output. ``calls`` and ``full_calls`` count the network calls made so far."""

    interval: int
    calls: int = 0
    full_calls: int = 0
    full: bool = True
    _shape: tuple | None = None
    _outputs: dict[int, Any] = field(default_factory=dict)

    def start_call(self, sample: Any) -> None:
        """Before each network call: a full one every ``interval`` calls, and whenever the
        input's shape differs from the last full call's."""
        shape = tuple(getattr(sample, "shape", ()))
        self.full = self.calls % self.interval == 0 or shape != self._shape
        if self.full:
            self.calls, self._shape = 0, shape  # count the interval from this full call
            self.full_calls += 1
        self.calls += 1

    def replay(self, leaf: nn.Module, run: Any, *args: Any, **kwargs: Any) -> Any:
        if self.full or id(leaf) not in self._outputs:
            self._outputs[id(leaf)] = out = run(*args, **kwargs)
            return out
        return self._outputs[id(leaf)]


def check_interval(interval: Any) -> int:
    """The cache interval as a whole number >= 1 (1: off), or one sentence."""
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 1000:
        raise GenlabError(
            f"The DeepCache interval must be a whole number from 1 (off) to 1000, got {interval!r}."
        )
    return interval


@contextmanager
def deep_cache(
    root: nn.Module, path: Path, interval: int, branch: int = 0
) -> Iterator[DeepCache | None]:
    """Within the block, calls of ``root`` (a U-Net whose leaves ``path`` lists) run with
    step caching: every ``interval``-th call in full, the others only the shallow path of
    skip branch ``branch``. Interval 1 changes nothing and yields None."""
    check_interval(interval)
    deep = path.deep(branch)
    if interval == 1:
        yield None
        return
    state = DeepCache(interval)

    def before(module: nn.Module, args: tuple, kwargs: dict) -> None:
        state.start_call(args[0] if args else next(iter(kwargs.values()), None))

    def replaying(leaf: nn.Module):
        run = leaf.forward  # the bound method of the class (or an earlier wrapper)
        return lambda *a, **k: state.replay(leaf, run, *a, **k)

    hook = root.register_forward_pre_hook(before, with_kwargs=True)
    had = [(leaf, "forward" in vars(leaf), vars(leaf).get("forward")) for leaf in deep]
    try:
        for leaf in deep:
            leaf.forward = replaying(leaf)
        yield state
    finally:
        hook.remove()
        for leaf, had_own, own in had:  # back to exactly what each leaf had
            if had_own:
                leaf.forward = own
            else:
                del leaf.forward


def unet_path(unet: nn.Module) -> Path:
    """The Path of genlab's ``nn.unet.UNet``: the stem makes skip 0 and each down layer
    (ResBlock or stride-2 convolution) the next; each up ResBlock reads one, deepest first,
    and an Upsample follows the level it closes."""
    from .unet import ResBlock

    down = [(layer, i + 1) for i, layer in enumerate(unet.down)]
    skips = len(down) + 1
    up: list[tuple[nn.Module, int | None]] = []
    reads = skips
    for layer in unet.up:
        if isinstance(layer, ResBlock):
            reads -= 1
            up.append((layer, reads))
        else:
            up.append((layer, None))
    return Path(down, [unet.mid1, unet.mid_attn, unet.mid2], up, skips)
