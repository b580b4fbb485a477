"""Errors that name a problem with a user's input.

The CLI prints them as one line and exits non-zero; the API turns them into a 4xx JSON answer.
"""


class PidInputError(ValueError):
    """Input that cannot be used: the message names the file or value and the problem."""
