"""One Trainer for every neural model: accelerate, EMA, checkpoints, exact resume."""
