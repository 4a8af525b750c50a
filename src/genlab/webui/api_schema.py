"""The bodies of stable-diffusion-webui's HTTP API (``/sdapi/v1/*``) as pydantic models: the
field names and types its clients send and read (webui's ``modules/api/models.py`` is the
reference), so that SillyTavern, the ``webuiapi`` package and the like talk to genlab
unchanged. Fields genlab has no use for are accepted and left unused (a client sends
webui's whole payload: scripts, face restoration ...); the ones it does use are checked
again where the request is built, with one sentence when they cannot be drawn."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    # webui's clients send every field of webui's processing objects; unknown ones are ignored
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class Txt2ImgRequest(_Body):
    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] | None = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    sampler_name: str | None = None
    sampler_index: str | None = None  # webui's older name of sampler_name
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    #: None: the model's own size (webui's default, 512, suits Stable Diffusion 1.x only)
    width: int | None = None
    height: int | None = None
    restore_faces: bool | None = None
    tiling: bool | None = None
    enable_hr: bool = False
    #: with enable_hr, the second pass's strength (None: webui's 0.75)
    denoising_strength: float | None = None
    hr_scale: float = 2.0
    hr_upscaler: str | None = None  # None: "Latent", as webui's default latent mode
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    # the second pass's own sampler, scheduler and prompts (empty: the first pass's); its
    # model must be the first pass's (another one is refused rather than ignored)
    hr_checkpoint_name: str | None = None
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    #: genlab's own (webui has none): LOSSY step caching's interval (1: off) and skip branch
    deepcache: int = 1
    deepcache_branch: int = 0


class Img2ImgRequest(Txt2ImgRequest):
    init_images: list[str] | None = None
    resize_mode: int = 0
    denoising_strength: float | None = 0.75
    mask: str | None = None
    mask_blur: int | None = None
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: float | None = None
    include_init_images: bool = False


class ImageResponse(BaseModel):
    images: list[str] | None = Field(default=None, description="base64 PNGs")
    parameters: dict[str, Any]
    info: str


class ProgressResponse(BaseModel):
    progress: float
    eta_relative: float
    state: dict[str, Any]
    current_image: str | None = None
    textinfo: str | None = None


class PNGInfoRequest(_Body):
    image: str


class PNGInfoResponse(BaseModel):
    info: str
    items: dict[str, Any]
    parameters: dict[str, Any]


class SDModelItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str  # a catalog name, never a path on the server
    config: str | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, str]


class SchedulerItem(BaseModel):
    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float | None = None
    need_inner_model: bool | None = None


class LoraItem(BaseModel):
    name: str
    alias: str
    path: str  # the catalog name again: no endpoint returns a path on the server
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpscalerItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float | None = None


class LatentUpscalerModeItem(BaseModel):
    name: str


class SDVaeItem(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model_name: str
    filename: str


class PromptStyleItem(BaseModel):
    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class EmbeddingsResponse(BaseModel):
    loaded: dict[str, Any]
    skipped: dict[str, Any]


class MemoryResponse(BaseModel):
    ram: dict[str, Any]
    cuda: dict[str, Any]
