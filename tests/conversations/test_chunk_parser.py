"""The relay's own reading of a Chat Completions stream: Server-Sent Events in pieces."""

import json

import pytest

from conversations.llm import ChunkParser, LLMError


def chunk(content: str | None = None, finish: str | None = None, **extra) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {"model": "m-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps({**body, **extra}).encode() + b"\n\n"


USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}\n\n'
STREAM = (
    b": keep-alive\n\n"
    + chunk("", role="assistant")
    + chunk("Hello")
    + chunk(", wörld")
    + chunk(" ✓")
    + chunk(finish="stop")
    + USAGE
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_text_and_usage_whatever_the_pieces_the_network_cuts(size):
    parser = ChunkParser("asked-for")
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    text = "".join(parser.feed(piece) for piece in pieces) + parser.end()
    finish = parser.finish()

    assert text == "Hello, wörld ✓"  # a character split across reads comes out whole
    assert (finish.model, finish.finish_reason) == ("m-1", "stop")
    assert (finish.prompt_tokens, finish.completion_tokens) == (7, 3)
    assert parser.done


def test_a_burst_read_at_once_is_one_piece_of_text():
    parser = ChunkParser("m")
    assert parser.feed(chunk("a") + chunk("b") + chunk("c")) == "abc"


def test_crlf_line_ends_and_data_split_over_lines():
    parser = ChunkParser("m")
    event = (
        b'data: {"choices": [{"delta": {"content": "x"},\r\n'
        b'data: "finish_reason": "stop"}]}\r\n\r\n'
    )
    assert parser.feed(event) == "x"
    assert parser.finish().finish_reason == "stop"


def test_a_body_ending_without_the_last_blank_line_keeps_its_text():
    parser = ChunkParser("m")
    assert parser.feed(chunk("a") + chunk("b", finish="stop").rstrip(b"\n")) == "a"
    assert parser.end() == "b"
    assert parser.finish().finish_reason == "stop"


def test_no_finish_reason_is_an_incomplete_reply():
    parser = ChunkParser("m")
    parser.feed(chunk("half a"))
    with pytest.raises(LLMError) as raised:
        parser.finish()
    assert raised.value.code == "upstream_incomplete"


@pytest.mark.parametrize(
    "event",
    [
        b"data: {not json\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
    ],
)
def test_an_event_that_is_not_a_chunk_fails_the_stream(event):
    parser = ChunkParser("m")
    with pytest.raises(LLMError) as raised:
        parser.feed(chunk("a") + chunk("b") + event + chunk("never"))
    assert raised.value.code == "upstream_stream_failed"
    assert parser.unsent == "ab"  # the text that came before it is not lost


def test_values_of_the_wrong_type_are_ignored():
    parser = ChunkParser("asked-for")
    odd = {"model": 7, "usage": {"prompt_tokens": "7", "completion_tokens": True}}
    text = parser.feed(chunk(finish="stop", **odd) + b'data: {"choices": [{"delta": "x"}, 3]}\n\n')
    finish = parser.finish()
    assert text == ""
    assert (finish.model, finish.prompt_tokens, finish.completion_tokens) == (
        "asked-for",
        None,
        None,
    )


def test_nothing_after_done_counts():
    parser = ChunkParser("m")
    assert parser.feed(chunk("a", finish="stop") + b"data: [DONE]\n\n" + chunk("late")) == "a"
