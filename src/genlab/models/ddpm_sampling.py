"""Sampling a DDPM: pick the sampler and its noise levels, encode the labels as a Condition,
wrap the denoiser in classifier-free and classifier guidance, run the sampler. The model's
own ``sample`` (composed of genlab.diffusion's pure parts; no pipeline above it)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..conditioning import Condition
from ..diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance
from ..diffusion.samplers import SAMPLERS
from ..diffusion.schedules import STEP_SCHEDULES
from ..errors import GenlabError
from ..options import CALLBACK, Option, resolve

SPACINGS = STEP_SCHEDULES[1:]

OPTIONS = (
    Option("sampler", str, "dpmpp-2m", "sampling algorithm", choices=tuple(SAMPLERS)),
    Option(
        "steps", int, 20, "sampling steps (network evaluations: 2x for heun)", low=1, high=10_000
    ),
    Option("spacing", str, "trailing", "which noise levels the steps visit", choices=SPACINGS),
    Option("eta", float, 0.0, "ddim only: 0 deterministic, 1 as noisy as DDPM", low=0, high=1),
    Option(
        "variance",
        str,
        "posterior",
        "ddpm only: reverse-step variance, the posterior's beta_tilde_t or beta_t",
        choices=("posterior", "beta"),
    ),
    Option("label", int, None, "the class to draw (class-conditional models)", low=0),
    Option("cfg", float, 1.0, "classifier-free guidance scale (0: unconditional, 1: conditional)"),
    Option("classifier", object, None, "a noise-aware classifier, or its run folder"),
    Option("cg_scale", float, 1.0, "classifier guidance scale", low=0),
    CALLBACK,
)


class DDPMSampling:
    """Draw samples from a DDPM: ``DDPMSampling(model)(n, seed=0, sampler="heun")``."""

    options = OPTIONS

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, n: int, *, cond: Any = None, seed: int | None = None, **given: Any):
        from ..seeding import seeded

        model = self.model
        opts = resolve(model.name, self.options, given)
        if opts["eta"] and opts["sampler"] != "ddim":
            raise GenlabError("eta applies to the ddim sampler only.")
        if opts["variance"] != "posterior" and opts["sampler"] != "ddpm":
            raise GenlabError("variance applies to the ddpm sampler only.")
        classifier = load_classifier(opts["classifier"], model.data_shape)
        label = opts["label"] if opts["label"] is not None else _labels_of(cond)
        cond = self.condition(label, n, classifier)
        model.net.eval()
        g = seeded(seed)
        sigmas = model.sigmas(opts["steps"], opts["spacing"])
        x = torch.randn((n, *model.data_shape), generator=g) * sigmas[0]
        denoiser = self.denoiser(n, opts["cfg"], classifier, opts["cg_scale"])
        extra = {"ddim": {"eta": opts["eta"]}, "ddpm": {"variance": opts["variance"]}}
        sampler = SAMPLERS[opts["sampler"]]
        with progress_bar(len(sigmas) - 1, opts["callback"]) as callback:
            return sampler(
                denoiser, x, sigmas, cond=cond, generator=g, callback=callback,
                **extra.get(opts["sampler"], {}),
            )  # fmt: skip

    def denoiser(self, n: int, cfg: float, classifier, cg_scale: float) -> nn.Module:
        """The model's denoiser wrapped in the guidance asked for."""
        denoiser: nn.Module = self.model.net
        if self.model.conditional:
            denoiser = ClassifierFreeGuidance(denoiser, cfg, Condition.unconditional(n))
        if classifier is not None:
            classifier.net.eval()
            denoiser = ClassifierGuidance(denoiser, classifier.net, cg_scale)
        return denoiser

    def condition(self, label: Any, n: int, classifier) -> Condition | None:
        """``n`` labels as a Condition, checked against the classes this model (or its
        classifier) knows; None when no label is asked for."""
        if label is None:
            if classifier is not None:
                raise GenlabError("Classifier guidance needs the class to draw: give --label.")
            return None
        models = (self.model, classifier)
        known = [m.num_classes for m in models if m is not None and m.conditional]
        if not known:
            raise GenlabError(
                "This model was trained without labels; drop --label, or guide it with a "
                "noise-aware classifier (--classifier)."
            )
        classes = min(known)  # a label must mean something to the model and the classifier
        labels = torch.as_tensor(label).long().expand(n).clone()
        if int(labels.min()) < 0 or int(labels.max()) >= classes:
            raise GenlabError(f"Labels must lie in 0..{classes - 1}.")
        return Condition.from_labels(labels)


def _labels_of(cond: Any) -> Any:
    """``cond`` given to sample(): a Condition, or labels (an int or one per sample)."""
    return cond.labels if isinstance(cond, Condition) else cond


def load_classifier(classifier: Any, data_shape: tuple[int, ...]):
    """A NoisyClassifier given as a model or a run/model folder, checked to fit the data."""
    if classifier is None:
        return None
    if isinstance(classifier, str | Path):
        from ..serialization import load

        classifier = load(classifier)
    if getattr(classifier, "name", "") != "noisy-classifier":
        raise GenlabError("--classifier must be a noise-aware classifier (noisy-classifier).")
    if tuple(classifier.data_shape) != tuple(data_shape):
        raise GenlabError(
            f"The classifier was trained on shape {tuple(classifier.data_shape)}, "
            f"this diffusion model on {tuple(data_shape)}."
        )
    return classifier


#: from this many network calls a draw (or a bound) shows a progress bar on a terminal
#: (1,000-step sampling of digits takes minutes on a CPU; 20 steps take a second)
BAR_FROM = 100


@contextmanager
def progress_bar(steps: int, callback: Any, desc: str = "sampling"):
    """The sampler's callback: the caller's, and a progress bar for long loops, on stderr
    as the CLI's other bars (plain tqdm: tqdm.auto also imports its notebook and asyncio
    parts). tqdm shows it only on a terminal, so logs and tests stay clean."""
    if steps < BAR_FROM:
        yield callback
        return
    from tqdm import tqdm

    with tqdm(total=steps, desc=desc, leave=False, disable=None) as bar:

        def both(d: dict) -> None:
            bar.update(1)
            if callback is not None:
                callback(d)

        yield both
