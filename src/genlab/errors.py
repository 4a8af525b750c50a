"""Errors a user can fix. The CLI prints their message as one sentence and exits with code 2."""


class GenlabError(Exception):
    """Bad input from the user: data, flags, files. Programming errors stay ordinary exceptions."""


class DataError(GenlabError, ValueError):
    """Data that cannot be used as given (NaN/inf values, wrong shape, no usable files)."""
