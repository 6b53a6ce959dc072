"""The one family of errors a user can see. The CLI prints any of them as one line and exits with its code;
anything else reaching the CLI is a bug (and keeps its traceback).

Exit codes: 0 ok, 1 a bug, 2 usage or config, 3 bad input data, 4 serving, 5 training.
"""
from __future__ import annotations


class ArenaRayError(Exception):
    """Base of every user-facing error; the message names the file, record or key at fault."""

    exit_code = 1


class ConfigError(ArenaRayError):
    """A config file, an override or a command-line option is wrong; the message names the key."""

    exit_code = 2


class InputError(ArenaRayError):
    """Bad input data (a file, record or field); the message names the file and record."""

    exit_code = 3


class ServingError(ArenaRayError):
    """A model could not be served or reached."""

    exit_code = 4


class TrainingError(ArenaRayError):
    """Training could not start or finish (a bad checkpoint, no usable data, a failed run)."""

    exit_code = 5
