"""User-facing errors.

Anything a user can fix (a bad file, flag, key or value) raises :class:`UserError` with one line that says
what is wrong, where, and how to fix it. The command line prints that line and exits with status 2; it
never shows a traceback for such a mistake.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""

    exit_code = 2
