"""Errors that name a problem with a user's input or request.

The CLI prints them as one line and exits non-zero; the API turns them into a 4xx JSON answer.
"""


class PidInputError(ValueError):
    """Input that cannot be used: the message names the file or value and the problem."""

    status_code = 400


class PayloadTooLargeError(PidInputError):
    """A body, file or image beyond a configured limit."""

    status_code = 413


class UnsupportedMediaError(PidInputError):
    """A file that is not one of the accepted formats."""

    status_code = 415


class NotFoundError(LookupError):
    """No diagram, stage or artifact of that name."""

    status_code = 404


class ConflictError(RuntimeError):
    """The request conflicts with the diagram's state (a run is already active)."""

    status_code = 409
