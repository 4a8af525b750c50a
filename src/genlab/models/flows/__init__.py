"""Normalizing flows: invertible transforms with tractable log-determinants."""
