"""What the API's views share: their base class, input validation, the time format, a
visitor's session."""

import inspect

from adrf.views import APIView
from django.utils import timezone

from conversations import policy, selectors
from conversations.api import serializers as s
from conversations.models import Session

# On every answer that carries a conversation's text: no browser or proxy keeps a copy (a
# shared computer's cache, a CDN told to cache the API) of what a visitor wrote.
NO_STORE = {"Cache-Control": "no-store"}


class AsyncAPIView(APIView):
    """adrf's APIView, with DRF's `initial` (content negotiation, authentication, permissions,
    throttles) run on the event loop: adrf runs it in a thread. The API authenticates nobody,
    lets anyone through and throttles nothing in DRF (rate limits are the policy's), so there
    it is CPU work only."""

    async def async_dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = self.http_method_not_allowed
            if method in self.http_method_names:
                handler = getattr(self, method, handler)
            response = handler(request, *args, **kwargs)
            if inspect.isawaitable(response):  # DRF's `options` and the 405 are sync: CPU only
                response = await response
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


def now_iso() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def session_read(visitor: policy.Visitor, public_id: str, query_params) -> dict:
    """`GET /api/v1/sessions/{id}`'s body: one database step (session, then its page)."""
    session = policy.session_reachable(visitor, public_id)
    page = validated(s.SessionPageSerializer, query_params)
    return session_body(session, before=page.get("before"))


def session_body(session: Session, *, before: int | None = None, new: bool = False) -> dict:
    """A session as v1 shows it, with its newest page of messages (none for a new one)."""
    messages, has_more = (
        ([], False) if new else selectors.session_messages_page(session=session, before=before)
    )
    return s.SessionSerializer(
        {
            "id": session.public_id,
            "assistant": session.assistant.slug,
            "created_at": session.created_at,
            "messages": messages,
            "has_more": has_more,
        }
    ).data
