"""Reading Server-Sent Events the way a browser does: line by line, as they arrive."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    name: str  # "message", "delta", "done", "error", or "ping" for a `: ping` comment
    data: Any = None


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Events from SSE lines (without their line ends), each as soon as its blank line comes."""
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith(":"):
            yield Event("ping", line[1:].strip())
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))


def parse_text(text: str) -> list[Event]:
    return list(parse(text.split("\n")))
