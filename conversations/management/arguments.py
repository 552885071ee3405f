"""Argument types for the management commands, parsed by argparse itself.

A bad value stops the command before anything is done, with argparse's message and exit
status (2), as for any argument the parser refuses; through `call_command` it is a
CommandError. A value given to `call_command` as a keyword skips argparse: `handle()` passes
it through `parsed()`.
"""

import argparse
import re
from datetime import timedelta

from django.core.management.base import CommandError

_AGE = re.compile(r"([0-9]+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(value: str) -> timedelta:
    """An age such as `45m`, `12h`, `30d` or `2w`."""
    match = _AGE.fullmatch(value.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r}: use a number and a unit, like 45m, 12h, 30d.")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{value!r} is too large.") from None


def parsed(kind, value, option: str):
    """`value` as `kind` parses it, when it came as text past argparse (a keyword to
    `call_command`); a bad one is a CommandError naming the option."""
    if not isinstance(value, str):
        return value
    try:
        return kind(value)
    except argparse.ArgumentTypeError as exc:
        raise CommandError(f"{option} {exc}") from None
