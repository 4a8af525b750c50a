"""Latent consistency distillation (Luo et al., 2023, "Latent Consistency Models", Algorithm 1):
a few-step student of a trained text-to-image latent diffusion model, with classifier-free
guidance folded in.

The student f(x, sigma, c) learns the map from any point of the guided teacher's
probability-flow ODE to that trajectory's end, the clean latents. Each step:

    x0, c        a training latent and its caption (the teacher's own data)
    t            a point of the skipping grid t = k - 1, 2k - 1, ..., T - 1 (k = ``skip``)
    x_t          = x0 + sigma_t eps                        (the variance-exploding view)
    D_w          = D(x_t, u) + w (D(x_t, c) - D(x_t, u))   the teacher under guidance w
    x_prev       = D_w + (sigma_prev / sigma_t) (x_t - D_w) one DDIM step of k timesteps
    loss         = |f_theta(x_t, sigma_t, c) - f_target(x_prev, sigma_prev, c)|^2

with ``f_target`` an exponential moving average of the student (decay ``target_decay``,
LCM's 0.95), and at the grid's end (t_prev = 0) the boundary condition f(x, sigma_min) = x
in its place. The student starts as a copy of the teacher's U-Net and keeps its
parameterization (an eps network read as x0 = x - sigma eps): at the smallest noise level
that is x up to 1% of its noise estimate, so LCM's c_skip / c_out wrapper is left out.

The guidance scale is fixed in training (``guidance``, the teacher's own default of 5), so
the student draws with one network call a step and no unconditional half: its sampling
defaults are LCM's multistep consistency sampler (``samplers.sample_lcm``), ``sample_steps``
steps on the trailing grid (999, 749, 499, 249 for 4: all points of the skipping grid for
k = 50), and cfg 1. The run's model is this class; ``scripts/ship_fewstep.py`` writes the
student alone as a plain latent-diffusion model with those defaults (``builtin-fast``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..conditioning import Condition
from ..diffusion.schedules import sigma_from_alpha_bar
from ..errors import GenlabError
from ..options import Option
from .latent_diffusion import LatentDiffusion
from .neural import Batch


def teacher_folder(spec: str) -> Path:
    """The model folder of the teacher ``spec``: "builtin" (the shipped text-to-image model,
    checked against its card) or a latent-diffusion run or model folder."""
    from ..serialization import model_dir

    if spec == "builtin":
        from ..assets import checked_folder

        return checked_folder("txt2img-shapes")
    if not Path(spec).exists():
        raise GenlabError(f"The teacher {spec} does not exist: give 'builtin' or a "
                          "latent-diffusion run or model folder.")  # fmt: skip
    return model_dir(Path(spec))


class LatentConsistencyDistillation(LatentDiffusion):
    """Parameters: ``teacher`` ("builtin" or a latent-diffusion folder: its config builds the
    student, its weights start it), ``guidance`` (the CFG scale folded in), ``skip`` (k,
    timesteps a DDIM step of the teacher spans), ``target_decay`` (the target network's EMA
    decay), ``sample_steps`` (the student's default steps)."""

    name = "latent-consistency"
    config_schema = (
        Option("guidance", float, 5.0, "the CFG scale folded into the student", low=0.0),
        Option("skip", int, 50, "timesteps one teacher DDIM step spans", low=1, high=1000),
        Option("target_decay", float, 0.95, "EMA decay of the target network", low=0.0, high=1.0),
        Option("sample_steps", int, 4, "the student's default sampling steps", low=1, high=1000),
    )
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 2e-4,
        "batch_size": 64,
        "steps": 300,
        "ema_decay": 0.99,
        "warmup_steps": 30,
    }
    preview_count = 16

    def __init__(
        self,
        data_shape,
        teacher: str = "builtin",
        guidance: float = 5.0,
        skip: int = 50,
        target_decay: float = 0.95,
        sample_steps: int = 4,
    ) -> None:
        import yaml
        from safetensors.torch import load_file

        from ..serialization import CONFIG, WEIGHTS

        folder = teacher_folder(str(teacher))
        doc = yaml.safe_load((folder / CONFIG).read_text())
        if doc.get("model") != "latent-diffusion":
            raise GenlabError(f"The teacher {teacher} is not a latent-diffusion model.")
        config = {k: v for k, v in doc["config"].items() if k not in ("data_shape", "sampling")}
        if [int(s) for s in doc["config"]["data_shape"]] != [int(s) for s in data_shape]:
            raise GenlabError(f"The teacher draws {doc['config']['data_shape']} images; the "
                              f"data are {list(data_shape)}.")  # fmt: skip
        timesteps = int(config.get("timesteps", 1000))
        if timesteps % skip:
            raise GenlabError(f"skip must divide the teacher's {timesteps} timesteps, got {skip}.")
        sampling = {"sampler": "lcm", "steps": sample_steps, "cfg": 1.0}
        super().__init__(data_shape, **config, sampling=sampling)
        self.student_config = {**config, "sampling": self.sampling}
        # the student starts as the teacher (its fp16 weights, widened to float32)
        state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}
        self.load_state_arrays({k: v.numpy() for k, v in state.items()})
        self.net.teacher = copy.deepcopy(self.net.denoiser).requires_grad_(False)
        self.net.target = copy.deepcopy(self.net.denoiser).requires_grad_(False)
        self.frozen = (*self.frozen, "teacher", "target")
        # built from the teacher's folder each time, never saved with the student
        self.external = (*self.external, "teacher", "target")
        self.hparams = {
            "teacher": str(teacher),
            "guidance": float(guidance),
            "skip": int(skip),
            "target_decay": float(target_decay),
            "sample_steps": int(sample_steps),
        }
        self.teacher, self.guidance, self.skip = str(teacher), float(guidance), int(skip)
        self.target_decay, self.sample_steps = float(target_decay), int(sample_steps)
        self._target_started = False

    @torch.no_grad()
    def update_target(self) -> None:
        """target = mu target + (1 - mu) student, on the student's latest weights. The target
        is no trainable part, so checkpoints do not hold it: the first step of a process
        starts it from the student (the teacher on a fresh run; on ``--resume``, the resumed
        student, which the target would have been within about 1 / (1 - mu) = 20 steps)."""
        student = dict(self.net.denoiser.named_parameters())
        if not self._target_started:
            self.net.target.load_state_dict(self.net.denoiser.state_dict())
            self._target_started = True
        for name, p in self.net.target.named_parameters():
            p.lerp_(student[name].detach().to(p.dtype), 1 - self.target_decay)

    def training_step(self, batch: Batch, update: str = "main") -> dict[str, torch.Tensor]:
        # the previous optimizer step has moved the student: the target follows it first
        self.update_target()
        student, teacher, target = self.net.denoiser, self.net.teacher, self.net.target
        z0, cond = batch.x, batch.cond
        n, k = len(z0), self.skip
        sigmas = sigma_from_alpha_bar(student.alpha_bar.double()).to(z0.dtype)
        points = len(sigmas) // k
        t = (torch.randint(0, points, (n,), device=z0.device) + 1) * k - 1
        t_prev = (t - k).clamp(min=0)
        s, s_prev = sigmas[t], sigmas[t_prev]
        per = lambda v: v.view(-1, *[1] * (z0.dim() - 1))  # noqa: E731
        x = z0 + per(s) * torch.randn_like(z0)
        with torch.no_grad():
            both = Condition.cat([cond, Condition.unconditional(n, z0.device)])
            c, u = teacher(torch.cat([x, x]), torch.cat([s, s]), both).chunk(2)
            guided = u + self.guidance * (c - u)
            x_prev = guided + per(s_prev / s) * (x - guided)
            aim = target(x_prev, s_prev, cond)
            aim = torch.where(per(t_prev == 0), x_prev, aim)  # f(x, sigma_min) = x
        loss = (student(x, s, cond) - aim).pow(2).flatten(1).mean(1)
        return {"loss": loss.mean()}

    def student(self) -> LatentDiffusion:
        """The student alone as a plain latent-diffusion model with its sampling defaults
        (what ``builtin-fast`` ships): the same weights, no teacher, no target."""
        model = LatentDiffusion(self.data_shape, **self.student_config)
        arrays = {k: v for k, v in self.state_arrays().items()}
        model.load_state_arrays(arrays)
        return model
