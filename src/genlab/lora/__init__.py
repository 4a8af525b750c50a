"""LoRA adapters, below every back end: injected into a U-Net's attention projections
(``adapters``), read from a LoRA folder without its base and applied for one draw
(``files``). Training and fusing a LoRA live in ``genlab.finetune``."""
