"""Diffusion models in four small parts: schedules, networks, denoisers, samplers."""
