"""One exception type for problems a user can fix: the scripts print its message as one line and exit 1."""

from __future__ import annotations

import os


class UserError(Exception):
    """A bad input (file, key or value); the message names it and says what was expected."""


def key_mismatch(path: str | os.PathLike, keys: set[str], expected: set[str], what: str) -> str:
    """One line for a checkpoint whose state_dict is not the model's: how many keys are unexpected and missing
    against `what`, and the first few of each."""
    unexpected, missing = sorted(keys - expected), sorted(expected - keys)
    return (
        f"{path}: state_dict does not match {what}: {len(unexpected)} unexpected key(s) "
        f"{unexpected[:3]}, {len(missing)} missing key(s) {missing[:3]}"
    )
