"""One exception type for problems a user can fix: the scripts print its message as one line and exit 1."""

from __future__ import annotations

import os
import reprlib


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


_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
for _limit, _value in {"maxlevel": 2, "maxtuple": 4, "maxlist": 4, "maxarray": 4, "maxdict": 4, "maxset": 4,
                       "maxfrozenset": 4, "maxdeque": 4, "maxstring": 80, "maxlong": 40, "maxother": 80}.items():
    setattr(_SHORT, _limit, _value)


def short(value: object) -> str:
    """`value` as a message quotes it: text as it is up to 80 characters, anything else as its repr with a few
    elements per level, in time bounded whatever the value holds (a shared list of 2**34 leaves, a 10 MB name)."""
    if isinstance(value, str):
        return value if len(value) <= 80 else f"{value[:60]}... ({len(value):,} characters)"
    return _SHORT.repr(value)
