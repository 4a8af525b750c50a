"""Generative models. Each is registered by name in ``genlab.registry.MODELS``."""
