"""User-facing errors: one actionable line, non-zero exit, no traceback.

Raise :class:`UserError` for anything the user can fix (bad flag, missing
file, corrupt checkpoint). The CLI prints ``sbnn: error: <message>`` and exits
with status 2; any other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input the user can fix. The message must say what was wrong and what to do."""
