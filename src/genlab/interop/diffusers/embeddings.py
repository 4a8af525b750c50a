"""Textual-inversion embeddings as stable-diffusion-webui keeps them: one ``.safetensors``
file a name in an embeddings folder, the file's stem being the word a prompt uses. A 1.x
file holds one tensor (``emb_params``, or ``string_to_param.*`` as a flattened ``.pt``),
(vectors, width) or (width,); an SDXL file holds ``clip_l`` and ``clip_g``, one tensor for
each of SDXL's two text encoders. An embedding whose widths do not fit the model's encoders
is skipped, as webui skips it, and a prompt that names it is refused.

Installing follows diffusers' ``load_textual_inversion``: each vector becomes a token of its
own added to the tokenizer, with its row in the encoder's token embedding, and the name in
a prompt becomes those tokens; so the image is the one diffusers gives (tested)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import GenlabError

#: the pipeline's (tokenizer, text encoder) of each encoder an embedding file names
PARTS = {"clip_l": ("tokenizer", "text_encoder"), "clip_g": ("tokenizer_2", "text_encoder_2")}


@dataclass(frozen=True)
class Embedding:
    """``vectors``: encoder name ("clip_l", "clip_g") -> (n, width) tensor."""

    name: str
    vectors: dict[str, Any]

    @property
    def count(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])

    @property
    def widths(self) -> dict[str, int]:
        return {k: int(v.shape[-1]) for k, v in self.vectors.items()}

    def placeholders(self) -> list[str]:
        """The added tokens standing for the vectors (lower case: CLIP lower-cases text)."""
        word = re.sub(r"\W", "-", self.name.lower())
        return [f"<emb-{word}-{i}>" for i in range(self.count)]

    def webui_entry(self) -> dict[str, Any]:
        """The entry of ``/sdapi/v1/embeddings`` (webui: shape = the vectors' total width;
        a .safetensors file records no training step or checkpoint)."""
        return {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                "shape": sum(self.widths.values()), "vectors": self.count}  # fmt: skip


def read_embedding(path: str | Path) -> Embedding:
    """The embedding in one webui ``.safetensors`` file, checked (one sentence otherwise)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise GenlabError(f"{path.name}: genlab reads embeddings in safetensors only.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise GenlabError(
            f"{path.name} is not a readable safetensors embedding ({str(e).splitlines()[0]})."
        ) from None
    if "clip_l" in state and "clip_g" in state:
        vectors = {"clip_l": state["clip_l"], "clip_g": state["clip_g"]}
    elif len(state) == 1:
        vectors = {"clip_l": next(iter(state.values()))}
    else:
        raise GenlabError(
            f"{path.name} holds {len(state)} tensors; an embedding holds one (emb_params) or "
            "clip_l and clip_g (SDXL)."
        )
    vectors = {k: (v[None] if v.ndim == 1 else v).float() for k, v in vectors.items()}
    if any(v.ndim != 2 for v in vectors.values()) or len(
        {v.shape[0] for v in vectors.values()}
    ) != 1:  # fmt: skip
        raise GenlabError(f"{path.name}'s tensors are not (vectors, width) of one length.")
    return Embedding(path.stem, vectors)


def encoder_widths(folder: str | Path) -> dict[str, int]:
    """The width of each text encoder of a diffusers folder, by the embedding files' names
    for them (a 1.x model's one encoder is "clip_l")."""
    widths = {}
    for key, (_, part) in PARTS.items():
        config = Path(folder) / part / "config.json"
        if config.is_file():
            widths[key] = int(json.loads(config.read_text())["hidden_size"])
    return widths


def fit_error(emb: Embedding, widths: dict[str, int]) -> str | None:
    """Why ``emb`` does not fit encoders of ``widths``, in one sentence; None if it fits."""
    if emb.widths == widths:
        return None
    have = " + ".join(f"{k} {w}" for k, w in emb.widths.items())
    want = " + ".join(f"{k} {w}" for k, w in widths.items())
    return (
        f"The embedding {emb.name} is for text encoders of width {have}; this model's are "
        f"{want} (an embedding trained for another base)."
    )


@dataclass
class Embeddings:
    """The embeddings of one folder for one model: ``loaded`` fit it, ``skipped`` (name ->
    the sentence why) do not, or could not be read."""

    loaded: dict[str, Embedding]
    skipped: dict[str, tuple[str, Embedding | None]]

    @classmethod
    def scan(cls, folder: str | Path | None, widths: dict[str, int]) -> Embeddings:
        loaded: dict[str, Embedding] = {}
        skipped: dict[str, tuple[str, Embedding | None]] = {}
        if folder is None or not Path(folder).is_dir():
            return cls(loaded, skipped)
        for path in sorted(Path(folder).rglob("*.safetensors")):
            try:
                emb = read_embedding(path)
            except GenlabError as e:
                skipped[path.stem] = (str(e), None)
                continue
            why = fit_error(emb, widths)
            if why is None:
                loaded[emb.name] = emb
            else:
                skipped[emb.name] = (why, emb)
        return cls(loaded, skipped)

    def webui_listing(self) -> dict[str, Any]:
        """``/sdapi/v1/embeddings``' answer (names and shapes only: no paths)."""
        return {
            "loaded": {n: e.webui_entry() for n, e in self.loaded.items()},
            "skipped": {n: e.webui_entry() if e is not None else dict.fromkeys(
                ("step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"))
                for n, (_, e) in self.skipped.items()},
        }  # fmt: skip

    def install(self, pipe: Any) -> None:
        """Add each loaded embedding's vectors to the pipeline's tokenizers and encoders
        (diffusers' way: new tokens, new rows of the token embedding)."""
        import torch

        for key, (tok_name, enc_name) in PARTS.items():
            tok, encoder = getattr(pipe, tok_name, None), getattr(pipe, enc_name, None)
            if tok is None or encoder is None:
                continue
            new = [(t, v) for e in self.loaded.values()
                   for t, v in zip(e.placeholders(), e.vectors[key], strict=True)
                   if t not in tok.get_vocab()]  # fmt: skip
            if not new:
                continue
            tok.add_tokens([t for t, _ in new])
            encoder.resize_token_embeddings(len(tok), mean_resizing=False)
            table = encoder.get_input_embeddings().weight
            with torch.no_grad():
                for t, v in new:
                    row = tok.convert_tokens_to_ids(t)
                    table[row] = v.to(device=table.device, dtype=table.dtype)

    def rewrite(self, prompt: str) -> str:
        """``prompt`` with each embedding's name (a whole word) replaced by its tokens; a
        name of a skipped embedding is refused in one sentence."""
        for name, (why, _) in self.skipped.items():
            if _word(name).search(prompt):
                raise GenlabError(why)
        for name, emb in self.loaded.items():
            prompt = _word(name).sub(" ".join(emb.placeholders()), prompt)
        return prompt


def _word(name: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
