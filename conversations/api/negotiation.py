"""Content negotiation that never answers 406."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JSONWhateverAccepted(DefaultContentNegotiation):
    """The view's first renderer (JSON in the API) when the `Accept` header matches none.

    A client asking for a stream the standard way, `Accept: text/event-stream`, must get the
    stream or, before it starts, a JSON error; a 406 would tell it nothing it can act on.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
