"""SDXL behind the same back-end contract, on a tiny StableDiffusionXLPipeline of random
weights (tests/support/tiny_sd.py write_tiny_sdxl): genlab's images through
``genlab.backends.resolve`` equal diffusers' for the same seed and scheduler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError


@pytest.fixture(scope="module")
def xl_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sdxl

    return write_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-xl")


def reference(folder, sampler, schedule, task="txt2img"):
    from genlab.interop.diffusers.backend import pipeline_class
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    pipe = pipeline_class("sdxl", "txt2img").from_pretrained(folder, local_files_only=True)
    if task != "txt2img":
        pipe = pipeline_class("sdxl", task)(**pipe.components)
    pipe.scheduler = diffusers_scheduler(sampler, schedule, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


@pytest.mark.parametrize(
    "sampler,schedule",
    [("euler-a", "default"), pytest.param("dpmpp-2m", "karras", marks=pytest.mark.slow)],
)
def test_sdxl_gives_diffusers_image(xl_folder, sampler, schedule):
    from genlab.backends import resolve
    from genlab.generation import GenerationRequest, parse_parameters

    backend = resolve(str(xl_folder))
    assert backend.describe().default_size == (16, 16)  # from the folder's configs
    request = GenerationRequest("a red circle", "blue", sampler, schedule=schedule, steps=3,
                                cfg_scale=6.0, seed=3, batch_size=2)  # fmt: skip
    result = backend(request)
    want = reference(xl_folder, sampler, schedule)(
        "a red circle",
        negative_prompt="blue",
        num_inference_steps=3,
        guidance_scale=6.0,
        height=16,
        width=16,
        generator=torch.Generator().manual_seed(4),
        output_type="np",
    ).images[0]  # fmt: skip  (the batch's second image: seed 3 + 1)
    assert result.images[1].size == (16, 16)
    assert np.abs(pixels(result.images[1]) - want).max() <= 2 / 255
    params = parse_parameters(result.parameters[1])
    assert params["Seed"] == "4" and params["Model"] == "tiny-xl"


@pytest.mark.slow
def test_sdxl_img2img_and_inpaint(xl_folder, tmp_path):
    from PIL import Image

    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8))
    init.save(tmp_path / "init.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[:8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    backend = resolve(str(xl_folder))
    common = {"steps": 4, "cfg_scale": 6.0, "seed": 2, "sampler": "euler"}
    run = {"prompt": "a cat", "num_inference_steps": 4, "guidance_scale": 6.0,
           "output_type": "np"}  # fmt: skip
    got = backend(GenerationRequest("a cat", init_image=str(tmp_path / "init.png"),
                                    strength=0.5, **common)).images[0]  # fmt: skip
    want = reference(xl_folder, "euler", "default", "img2img")(
        image=init, strength=0.5, generator=torch.Generator().manual_seed(2), **run
    ).images[0]
    assert np.abs(pixels(got) - want).max() <= 2 / 255
    inpaint = GenerationRequest("a cat", init_image=str(tmp_path / "init.png"),
                                mask=str(tmp_path / "mask.png"), **common)  # fmt: skip
    got = backend(inpaint).images[0]
    want = reference(xl_folder, "euler", "default", "inpaint")(
        image=init, mask_image=Image.fromarray(mask), strength=1.0, height=16, width=16,
        generator=torch.Generator().manual_seed(2), **run,
    ).images[0]  # fmt: skip
    assert np.abs(pixels(got)[:8] - want[:8]).max() <= 2 / 255
    assert np.array_equal(pixels(got)[8:], np.asarray(init)[8:] / 255)


def test_sdxl_takes_sdxl_loras_and_refuses_sd1_ones(xl_folder, tmp_path):
    """A kohya LoRA over both text encoders and the U-Net (diffusers' converter) draws
    diffusers' image; one whose header says SD 1.x is refused."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    from genlab.backends import resolve
    from genlab.generation import GenerationRequest
    from genlab.lora.adapters import adapter_state, inject

    pytest.importorskip("peft")
    pipe = reference(xl_folder, "euler", "default")
    torch.manual_seed(0)
    state = {}
    clip = ["q_proj", "k_proj", "v_proj", "out_proj"]
    for part, targets in (("unet", ["to_q", "to_k", "to_v", "to_out.0"]),
                          ("text_encoder", clip), ("text_encoder_2", clip)):  # fmt: skip
        module = getattr(pipe, part)
        inject(module, 2, 1.0, targets)
        for name, param in module.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.3)
        state |= {f"{part}.{k}": v for k, v in adapter_state(module).items()}
    kohya = convert_state_dict_to_kohya(state)
    assert any(k.startswith("lora_te2_") for k in kohya)
    save_file({k: v.contiguous() for k, v in kohya.items()}, str(tmp_path / "xl.safetensors"))
    v1 = {k: v.contiguous() for k, v in kohya.items() if k.startswith("lora_unet")}
    save_file(v1, str(tmp_path / "v1.safetensors"), metadata={"ss_base_model_version": "sd_v1"})

    ref = reference(xl_folder, "euler", "default")
    ref.load_lora_weights(str(tmp_path / "xl.safetensors"), adapter_name="xl")
    ref.set_adapters(["xl"], [0.8])
    want = ref("a dog", num_inference_steps=3, guidance_scale=5.0, height=16, width=16,
               generator=torch.Generator().manual_seed(1), output_type="np").images[0]  # fmt: skip
    backend = resolve(str(xl_folder))
    request = GenerationRequest("a dog", sampler="euler", steps=3, cfg_scale=5.0, seed=1,
                                loras=((str(tmp_path / "xl.safetensors"), 0.8),))  # fmt: skip
    assert np.abs(pixels(backend(request).images[0]) - want).max() <= 2 / 255
    with pytest.raises(GenlabError, match=r"is for Stable Diffusion 1\.x"):
        backend.check(GenerationRequest("x", loras=((str(tmp_path / "v1.safetensors"), 1),)))


def test_sdxl_emphasis_weights_both_encoders_as_webui(xl_folder):
    """(red:1.5) and [dog] computed by hand: each run tokenized alone, both encoders'
    penultimate hidden states times the weights and rescaled to their own unweighted mean,
    side by side; the pooled embedding from the unweighted tokens. diffusers' pipeline fed
    those embeddings draws genlab's image; the weights change it."""
    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    pipe = reference(xl_folder, "euler", "default")
    runs = [("a ", 1.0), ("red", 1.5), (" ", 1.0), ("dog", 1 / 1.1)]
    hidden = []
    for tok, enc in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids, w = [tok.bos_token_id], [1.0]
        for text, weight in runs:
            piece = tok(text, add_special_tokens=False).input_ids
            ids, w = ids + piece, w + [weight] * len(piece)
        ids += [tok.eos_token_id] + [tok.pad_token_id] * (77 - len(ids) - 1)
        w += [1.0] * (77 - len(w))
        with torch.no_grad():
            out = enc(torch.tensor([ids]), output_hidden_states=True)
        z = out.hidden_states[-2][0]
        zw = z * torch.tensor(w)[:, None]
        hidden.append(zw * (z.mean() / zw.mean()))
        pooled = out[0]
    embeds = torch.cat(hidden, dim=-1)[None]
    backend = resolve(str(xl_folder))
    got_embeds, got_pooled = backend.weighted_embeddings_xl(runs)
    torch.testing.assert_close(got_embeds, embeds)
    torch.testing.assert_close(got_pooled, pooled)
    plain_pooled = pipe.encode_prompt("a red dog", do_classifier_free_guidance=False)[2]
    torch.testing.assert_close(got_pooled, plain_pooled)  # the weights leave pooled alone

    request = GenerationRequest("a (red:1.5) [dog]", "blu(e:1.2)", "euler", steps=3, seed=5)
    got = pixels(backend(request).images[0])
    neg, neg_pooled = backend.weighted_embeddings_xl([("blu", 1.0), ("e", 1.2)])
    run = {"num_inference_steps": 3, "guidance_scale": 5.0, "height": 16, "width": 16,
           "output_type": "np"}  # fmt: skip
    want = pipe(prompt_embeds=embeds, pooled_prompt_embeds=pooled, negative_prompt_embeds=neg,
                negative_pooled_prompt_embeds=neg_pooled,
                generator=torch.Generator().manual_seed(5), **run).images[0]  # fmt: skip
    assert np.abs(got - want).max() <= 2 / 255
    plain = pipe("a red dog", negative_prompt="blue", generator=torch.Generator().manual_seed(5),
                 **run).images[0]  # fmt: skip
    assert np.abs(plain - want).max() > 2 / 255
    same = backend(GenerationRequest("a (red:1) dog", "blue", "euler", steps=3, seed=5))
    assert np.abs(pixels(same.images[0]) - plain).max() <= 2 / 255
