"""Stable Diffusion through diffusers: folders (``model_index.json``) and original-layout
single ``.safetensors`` files, offline and from safetensors only; webui's samplers as
diffusers schedulers; a checkpoint as the frozen base of a LoRA. diffusers is imported only
when a model is loaded."""
