"""HTTP plumbing in front of the API views."""

from asgiref.sync import markcoroutinefunction

from conversations.api.errors import error_response, is_api_path


class RequireContentLengthMiddleware:
    """Answer 411 to API requests whose body comes chunked, without a Content-Length.

    DRF reads a body only as far as Content-Length says, so a chunked one would look empty and
    be judged "field required". Reverse proxies (nginx's default) send the length anyway.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if chunked and "CONTENT_LENGTH" not in request.META and is_api_path(request):
            return error_response(
                request,
                status=411,
                code="length_required",
                message="Send the request body with a Content-Length header.",
            )
        return await self.get_response(request)
