"""LoRA fine-tuning over any back end's model: the LoRA model (``model``: a frozen base from
``genlab.backends``, adapters from ``genlab.lora``), ``genlab finetune lora`` (``train``)
and ``genlab lora fuse`` (``fuse``)."""
