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

# Only units nobody can misread: no "m" (minutes or months?) and no bare number, since a
# deletion command cannot undo the mistake.
_AGE = re.compile(r"([0-9]+)(min|h|d|w)")
_UNITS = {"min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_USE = "use a number and one of the units min, h, d, w, like 45min, 12h, 30d, 2w"


def age(value: str) -> timedelta:
    """An age such as `45min`, `12h`, `30d` or `2w`."""
    text = value.strip()
    match = _AGE.fullmatch(text)
    if match is None:
        hint = ""
        if re.fullmatch(r"[0-9]+m", text):
            hint = " ('m' could be minutes or months: write min for minutes)"
        elif re.fullmatch(r"[0-9]+(mo|mon|months?)", text):
            hint = " (months differ in length: write days or weeks, like 30d or 4w)"
        raise argparse.ArgumentTypeError(f"{value!r}: {_USE}{hint}.")
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
