"""Sharded training (``--fsdp``): each process keeps only its slice of the trainable weights,
their gradients and their optimizer state, for models that do not fit one device.

It uses torch's FSDP2 (``fully_shard``). A model names its sharding units
(``NeuralModel.fsdp_units``): the blocks, then the module whose forward the training step
calls. Each unit gathers its weights just before its own forward and backward and frees
them after, and reduce-scatters its gradients. A unit must therefore be *called*, not just
have its weights read: the outermost unit is the one the training step calls.

What the Trainer keeps whole goes through ``whole`` (gathered one tensor at a time onto the
CPU) and comes back through ``shard_like``: checkpoints, the EMA's copy in a checkpoint, the
saved model. A checkpoint of a sharded run is an ordinary one, so it resumes on any number
of processes, sharded or not. At the end of training the outermost units are swapped for
plain copies holding the whole weights (``unshard``), so sampling, plots and ``save`` see an
ordinary model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import GenlabError


def _is_sharded(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def whole(t: Any) -> Any:
    """A sharded tensor gathered whole onto the CPU (a collective: every process calls it);
    anything else as it is."""
    return t.full_tensor().cpu() if _is_sharded(t) else t


def whole_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: whole(v) for k, v in state.items()}


def shard_like(full: torch.Tensor, ref: Any) -> Any:
    """``full`` cut the way ``ref`` is sharded (each process takes its own slice; no
    communication), or ``full`` itself when ``ref`` is not sharded."""
    if not _is_sharded(ref) or full.shape != ref.shape:
        return full
    from torch.distributed.tensor import distribute_tensor

    full = full.to(device=ref.device, dtype=ref.dtype)
    return distribute_tensor(full, ref.device_mesh, ref.placements, src_data_rank=None)


def shard_state_like(full: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return {k: shard_like(v, ref[k]) if k in ref else v for k, v in full.items()}


def shardable() -> list[str]:
    """The registered models that name sharding units (that override the base's default)."""
    from ..registry import model_class, names

    return [n for n in names("neural")
            if model_class(n).fsdp_units.__qualname__ != "NeuralModel.fsdp_units"]  # fmt: skip


def whole_optimizer_state(sd: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's state dict with its sharded tensors (Adam's moments) gathered whole."""
    return {**sd, "state": {i: whole_state(s) for i, s in sd["state"].items()}}


def optimizer_state_like(sd: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A whole optimizer state dict cut the way ``optimizer``'s parameters are sharded."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {i: {k: shard_like(v, params[int(i)]) for k, v in s.items()}
             for i, s in sd["state"].items()}  # fmt: skip
    return {**sd, "state": state}


def _skeleton(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters are shapes on the meta device (no memory);
    buffers are copied (small; non-persistent ones never reach a state dict)."""
    memo: dict[int, Any] = {
        id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
        for p in module.parameters()
    }
    return copy.deepcopy(module, memo)


class Sharding:
    """The model's units sharded over every process of the run."""

    def __init__(self, model: Any, device: torch.device, world: int) -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        units = list(model.fsdp_units())
        if not units:
            raise GenlabError(
                f"--fsdp: the {model.name} model does not name sharding units; the models "
                f"that do: {', '.join(shardable())}. Train it without --fsdp."
            )
        inner = {id(m) for u in units for m in u.modules() if m is not u}
        outer = [u for u in units if id(u) not in inner]
        parents = {id(child): (parent, name) for parent in model.net.modules()
                   for name, child in parent.named_children()}  # fmt: skip
        parents[id(model.net)] = (model, "net")
        # (parent, attribute, unit, its plain copy) for the swap back at the end
        self.outer = [(*parents[id(u)], u, _skeleton(u)) for u in outer]
        self.units = units
        mesh = init_device_mesh(device.type, (world,))
        for unit in units:  # innermost first, as FSDP2 wants
            fully_shard(unit, mesh=mesh)
        loose = [k for k, p in model.net.named_parameters()
                 if p.requires_grad and not _is_sharded(p)]  # fmt: skip
        if loose:  # their gradients would never be averaged over the processes
            raise GenlabError(
                f"--fsdp: {model.name}'s sharding units leave trainable weights out "
                f"({', '.join(loose[:3])}); they must cover every trainable part."
            )

    def sync_gradients(self, sync: bool) -> None:
        """Reduce-scatter gradients after this backward (the last micro-batch of a step)
        or keep accumulating them whole on each process (the others)."""
        for unit in self.units:
            unit.set_requires_gradient_sync(sync, recurse=False)

    def unshard(self) -> None:
        """Swap the outermost units for plain modules holding the whole weights, on every
        process (a collective)."""
        for parent, name, unit, plain in self.outer:
            plain.load_state_dict(whole_state(unit.state_dict()), assign=True)
            setattr(parent, name, plain)
        self.outer = []
