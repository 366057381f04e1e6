"""One exception type for problems a user can fix: the scripts print its message as one line and exit 1."""


class UserError(Exception):
    """A bad input (file, key or value); the message names it and says what was expected."""
