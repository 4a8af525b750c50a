"""Pipelines: the layer between a trained model and a front end. A pipeline owns sampler
choice, guidance, condition encoding and component loading; the model keeps its network,
schedule and loss (as diffusers separates pipelines from models)."""
