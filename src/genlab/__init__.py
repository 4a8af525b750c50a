"""genlab: a workbench for generative models, from the Gaussian to Stable Diffusion.

The top-level names are re-exported lazily so that ``import genlab`` stays instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("genlab.serialization", "load"),
    "datasets": ("genlab.data", None),
    "data": ("genlab.data", None),
    "models": ("genlab.models", None),
    "Normal": ("genlab.models.gaussian", "Normal"),
    "MultivariateNormal": ("genlab.models.gaussian", "MultivariateNormal"),
    "GaussianMixture": ("genlab.models.mixture", "GaussianMixture"),
    "GenlabError": ("genlab.errors", "GenlabError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'genlab' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)
