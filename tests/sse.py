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


def outline(events: Iterable[Event]) -> list[str]:
    """Event names, each run of deltas as one "delta…": text that arrives in a burst may be
    sent as one delta or several."""
    names: list[str] = []
    for event in events:
        name = "delta…" if event.name == "delta" else event.name
        if not (name == "delta…" and names and names[-1] == name):
            names.append(name)
    return names


def delta_text(events: Iterable[Event]) -> str:
    return "".join(event.data["text"] for event in events if event.name == "delta")


def read_text(events: Iterator[Event], expected: str) -> None:
    """Read deltas until their text is `expected` (it may come in any number of pieces)."""
    text = ""
    while text != expected:
        event = next(events)
        assert event.name == "delta", (event, text)
        text += event.data["text"]
        assert expected.startswith(text), (text, expected)
