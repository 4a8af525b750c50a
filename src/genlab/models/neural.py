"""Base class of the models built from torch modules and trained by the Trainer.

A neural model owns one ``nn.Module`` (``self.net``) and declares every hook the Trainer
calls, each with a default here (as scikit-learn's BaseMixture declares its template steps):

    conditions(data)               -> Condition of every training sample, or None
    training_data(data)            -> (inputs, Condition or None) the steps draw batches from
    updates()                      -> [(name, parameters)], one optimizer each, in order
                                      (parameters: a list, or parameter groups as dicts
                                      with "params" and optionally "lr" and "name")
    training_step(batch, update)   -> {"loss": ..., other metrics}; batch: Batch(x, cond)
    fsdp_units()                   -> the modules ``--fsdp`` shards (none: not shardable)
    after_training(x)              -> work after the last step (fit a latent Gaussian ...)
    run_plots(x)                   -> {name: figure} for the run folder's plots/
    held_out_metrics(data)         -> genlab eval's figures for a part that generates nothing

``frozen`` names children of ``self.net`` that do not train: the Trainer gives only the
trainable parameters to the optimizers, the EMA and checkpoints. ``external`` names the
frozen parts that have a home of their own (a pip package's pretrained text encoder): they
load from there when the model is built, and ``save`` leaves them out; other frozen parts
(latent diffusion's autoencoder) are saved with the model, as a Stable Diffusion checkpoint
carries its VAE.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..base import GenerativeModel
from ..conditioning import Condition
from ..errors import DataError, GenlabError
from ..options import Option
from ..seeding import randn_like, seeded
from ..training.batch import Batch

__all__ = ["Batch", "NeuralModel", "label_condition", "randn_like", "seeded"]


class NeuralModel(GenerativeModel):
    #: The Trainer's defaults for this family (a recipe or --set overrides them).
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 128,
        "steps": 3000,
        "ema_decay": 0.0,
    }
    #: The constructor's settings (``--set model.KEY=VALUE``) that need more than their
    #: default's type: ranges and choices, as ``sample_options`` declares sampling options.
    #: The rest are typed from the defaults (genlab.options.signature_schema); checked
    #: before any work by the run config.
    config_schema: tuple[Option, ...] = ()
    #: Children of ``self.net`` that stay frozen (a pretrained autoencoder, a text encoder).
    frozen: tuple[str, ...] = ()
    #: Frozen children loaded from elsewhere when the model is built, never saved with it.
    external: tuple[str, ...] = ()
    #: How many samples the Trainer draws for the run folder's preview grid.
    preview_count: int = 64

    def __init__(self, data_shape: tuple[int, ...] | list[int], **hparams: Any) -> None:
        self.data_shape = tuple(int(s) for s in data_shape)
        self.hparams = hparams  # what config.yaml records; also readable as attributes
        for key, value in hparams.items():
            setattr(self, key, value)
        self.net: nn.Module = nn.Module()

    # --- shape checks -----------------------------------------------------------------
    def as_batch(self, x: Any) -> torch.Tensor:
        """``x`` as a float32 tensor of this model's sample shape, or a clear DataError."""
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        t = t.to(torch.float32)
        if tuple(t.shape[1:]) != self.data_shape:
            kind = "images" if len(self.data_shape) == 3 else "samples"
            raise DataError(
                f"This {self.name} model expects {kind} of shape {self.data_shape}, "
                f"got {tuple(t.shape[1:])}."
            )
        return t

    # --- the hooks the Trainer calls ----------------------------------------------------
    def conditions(self, data: Any) -> Condition | None:
        """The condition of every training sample (a Dataset's labels, captions ...), or
        None for a model trained unconditionally."""
        return None

    def training_data(self, data: Any) -> tuple[torch.Tensor, Condition | None]:
        """What the training steps draw their batches from: the inputs (row i is sample i)
        and their condition. By default the data itself and ``conditions(data)``; latent
        diffusion encodes images to latents once and pairs each with each of its captions."""
        x = self.as_batch(data.x if hasattr(data, "x") else data)
        return x, self.conditions(data)

    def updates(self) -> list[tuple[str, list[nn.Parameter]]]:
        """The optimizer updates of one training step, in order, with the parameters each
        moves. One by default; a GAN has two (discriminator, then generator). An update
        may give parameter groups instead of a list (a LoRA's U-Net and text-encoder rates;
        see ``training.trainer.param_groups``)."""
        return [("main", self.trainable_parameters())]

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        """{"loss": scalar to minimise for ``update``, other metrics (detached)}."""
        raise NotImplementedError(f"{type(self).__name__} does not implement training_step().")

    def fsdp_units(self) -> list[nn.Module]:
        """What ``--fsdp`` shards, innermost first: blocks, then the module the training step
        calls (its forward gathers what no block holds). Empty: the model cannot be sharded."""
        return []

    def after_training(self, x: torch.Tensor) -> None:
        """Called once after the last step with the training inputs (weights are final)."""

    def run_plots(self, x: np.ndarray) -> dict[str, Any]:
        """Figures that explain this trained model, by file stem (the Trainer saves them)."""
        return {}

    def held_out_metrics(self, data: Any) -> dict[str, Any]:
        """What ``genlab eval`` reports for a part that generates nothing (a classifier's
        accuracy, an autoencoder's reconstruction), measured on held-out ``data``."""
        raise NotImplementedError(f"{type(self).__name__} has no held-out metrics.")

    def fit(self, data: Any, config: Any = None) -> NeuralModel:
        """Train in memory with the Trainer (no run folder); ``config``: TrainConfig or dict."""
        from ..training.trainer import TrainConfig, Trainer

        cfg = config if isinstance(config, TrainConfig) else TrainConfig.make(self, config)
        Trainer(self, data, cfg).train()
        return self

    # --- trainable and frozen parts ------------------------------------------------------
    def is_frozen(self, key: str) -> bool:
        """Whether a parameter or buffer name of ``self.net`` belongs to a frozen part."""
        return _within(key, self.frozen)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for k, p in self.net.named_parameters() if not self.is_frozen(k)]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers of the trainable parts: what checkpoints and saves hold."""
        return {k: v for k, v in self.net.state_dict().items() if not self.is_frozen(k)}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not self.is_frozen(k)]
        if missing or unexpected:
            raise GenlabError(
                f"The saved weights do not fit this {self.name} model "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})."
            )

    # --- persistence ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"data_shape": list(self.data_shape), **self.hparams}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """What ``save`` writes: every weight but the external parts'."""
        state = self.net.state_dict()
        return {
            k: v.detach().cpu().numpy() for k, v in state.items() if not _within(k, self.external)
        }

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not _within(k, self.external)]
        if missing or unexpected:
            raise GenlabError(
                f"The saved weights do not fit this {self.name} model "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})."
            )


def _within(key: str, parts: tuple[str, ...]) -> bool:
    """Whether a state-dict key lies in one of the named children."""
    return any(key == f or key.startswith(f + ".") for f in parts)


def label_condition(model: NeuralModel, data: Any) -> Condition:
    """The labels of a Dataset as a Condition, checked against the model's classes."""
    y = getattr(data, "y", None)
    if y is None:
        raise DataError(
            f"This {model.name} model is class-conditional and needs labelled data; "
            "this dataset has no labels."
        )
    classes = model.num_classes
    low, high = int(np.min(y)), int(np.max(y))
    if low < 0 or high >= classes:
        raise DataError(
            f"The labels run from {low} to {high}; this {model.name} model "
            f"knows classes 0..{classes - 1} (set model.num_classes)."
        )
    return Condition.from_labels(np.asarray(y))
