"""Argument types for the management commands, parsed by argparse itself.

They raise CommandError, not argparse's ArgumentTypeError: a bad value then stops the command
with its documented message and exit status (1), before anything is done.
"""

import re
from datetime import timedelta

from django.core.management.base import CommandError

_AGE = re.compile(r"([0-9]+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(value: str) -> timedelta:
    """An age such as `45m`, `12h`, `30d` or `2w`."""
    match = _AGE.fullmatch(value.strip())
    if match is None:
        raise CommandError(f"--older-than {value!r}: use a number and a unit, like 45m, 12h, 30d.")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise CommandError(f"--older-than {value!r} is too large.") from None
