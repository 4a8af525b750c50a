"""Exponential moving average of a module's weights, used for sampling and saving."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` so early averages
    are not dominated by the random initialisation. Buffers are copied, not averaged.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
        self.params = {name for name, _ in net.named_parameters()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in net.state_dict().items():
            if k in self.params:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            elif self.shadow[k].shape == v.shape:
                self.shadow[k].copy_(v)
            else:  # a buffer that changes size (an EBM's replay buffer)
                self.shadow[k] = v.detach().clone()

    def state(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, "__updates__": torch.tensor(self.updates)}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        tensors = dict(tensors)
        self.updates = int(tensors.pop("__updates__"))
        for k, v in tensors.items():
            self.shadow[k] = v.clone().to(self.shadow[k].dtype)

    def copy_to(self, net: nn.Module) -> None:
        net.load_state_dict({k: v.to(net.state_dict()[k].dtype) for k, v in self.shadow.items()})
