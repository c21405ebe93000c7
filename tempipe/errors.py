"""User-facing errors.

Every failure a user can cause (a bad file, a missing calibration, a foreign model file)
raises a :class:`TempipeError` subclass whose message says what was wrong and what to do.
The CLI and the app show the message; a batch records it and goes on with other images.
"""


class TempipeError(Exception):
    """Base class of every error tempipe raises for bad input."""


class InputFileError(TempipeError, ValueError):
    """A micrograph file cannot be read: missing, empty, corrupt, not an image, wrong shape."""


class CalibrationError(TempipeError, ValueError):
    """A pixel size or scale-bar value is invalid (not positive, not finite, unknown unit)."""


class ParameterError(TempipeError, ValueError):
    """An argument has a wrong type, shape or value."""


class ModelError(TempipeError, RuntimeError):
    """A model file is missing, foreign or from an incompatible version."""


class StoreError(TempipeError, RuntimeError):
    """The dataset store cannot do what was asked: no such dataset, busy, unreadable file."""
