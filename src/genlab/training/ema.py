"""Exponential moving average of a model's trainable weights, used for sampling and saving."""

from __future__ import annotations

import torch


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    ``state`` is the model's trainable state (parameters and buffers of the parts that
    train; frozen parts are never averaged); ``params`` names its parameters, which are
    averaged, while buffers are copied. The effective decay warms up as
    ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the random
    initialisation.
    """

    def __init__(self, state: dict[str, torch.Tensor], params: set[str], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in state.items()}
        self.params = params

    @torch.no_grad()
    def update(self, state: dict[str, torch.Tensor]) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in state.items():
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

    def averaged(self, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The shadow weights in the dtypes and on the devices of ``like``."""
        return {k: v.to(like[k]) for k, v in self.shadow.items()}
