"""LoRA: low-rank adapters trained on a user's images (``genlab finetune lora``), applied at
generation (``--lora DIR``) or fused into a copy of the base (``genlab lora fuse``)."""
