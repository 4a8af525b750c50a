"""Errors a user can fix. The CLI prints their message as one sentence and exits with code 2."""


class GenlabError(Exception):
    """Bad input from the user: data, flags, files. Programming errors stay ordinary exceptions."""


class DataError(GenlabError, ValueError):
    """Data that cannot be used as given (NaN/inf values, wrong shape, no usable files)."""


class Cancelled(Exception):
    """Raised inside long work (a training step, a sampling step) when its front end asked it
    to stop: the work ends cleanly at that point (a training run writes its checkpoint)."""
