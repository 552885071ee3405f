"""Request body parsing with a hard cap on size."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class CappedJSONParser(JSONParser):
    """JSON bodies up to CHATKIT_MAX_BODY_BYTES; larger ones are refused with 413.

    The cap is counted on the bytes read, not the Content-Length header, which a chunked
    request does not send.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.CHATKIT_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            # What a database can't store is refused here, not as a 500 later: numbers too
            # large for a float (1e400 parses as inf) and lone surrogates ("\udfff").
            json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise ParseError("The request body is not valid JSON.") from exc
        return data


def _reject_constant(name: str):
    # NaN and Infinity are not JSON.
    raise ValueError(f"{name} is not valid JSON")
