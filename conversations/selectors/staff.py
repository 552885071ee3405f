"""What the admin reads about conversations: their numbers, search, filters and transcripts."""

from django.contrib.admin.utils import lookup_spawns_duplicates
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Coalesce
from django.utils.text import smart_split, unescape_string_literal

from conversations.models import Message, Session

# A conversation's numbers, aggregated over its messages.
CONVERSATION_NUMBERS = {
    "message_count": Count("pk"),
    "total_tokens": Coalesce(Sum("prompt_tokens"), 0) + Coalesce(Sum("completion_tokens"), 0),
    "error_count": Count("pk", filter=Q(status=Message.Status.ERROR)),
    "up_count": Count("pk", filter=Q(feedback_rating=Message.Rating.UP)),
    "down_count": Count("pk", filter=Q(feedback_rating=Message.Rating.DOWN)),
}


def conversation_numbers(*, session_ids: list[int]) -> dict[int, dict[str, int]]:
    """CONVERSATION_NUMBERS of each of these conversations, from one aggregate query.

    A page of the admin's list costs this one query whatever it holds; annotating the list's
    queryset instead would join every message into each count the admin runs.
    """
    rows = (
        Message.objects.filter(session__in=session_ids)
        .order_by()
        .values("session_id")
        .annotate(**CONVERSATION_NUMBERS)
    )
    numbers = {row.pop("session_id"): row for row in rows}
    none = dict.fromkeys(CONVERSATION_NUMBERS, 0)
    return {pk: numbers.get(pk, none) for pk in session_ids}


def conversation_number(name: str) -> Coalesce:
    """One of CONVERSATION_NUMBERS as a subquery on the conversation at hand, to sort by."""
    messages = Message.objects.filter(session=OuterRef("pk")).order_by().values("session")
    return Coalesce(Subquery(messages.annotate(n=CONVERSATION_NUMBERS[name]).values("n")), 0)


def conversations_having(
    sessions: QuerySet[Session], *, message: Q, present: bool = True
) -> QuerySet[Session]:
    """The conversations with (or without) a message matching `message`, as a subquery: a join
    would list a conversation once per matching message."""
    matching = Exists(Message.objects.filter(message, session=OuterRef("pk")))
    return sessions.filter(matching if present else ~matching)


def conversation_search(
    sessions: QuerySet[Session], *, term: str, fields: list[str]
) -> QuerySet[Session]:
    """Django admin's search (every word must match one of `fields`), shaped for indexes.

    Django ORs the fields' conditions together, across a join to the messages; PostgreSQL then
    reads every conversation. Here each word becomes the ids that match it, one query per
    field (each served by its index: unique, or trigram), put together with UNION ALL;
    `pk IN (...)` joins only those. No join, so no duplicates either. `fields` are written as
    the admin's `search_fields` (`=` an exact match).
    """
    lookups = [_search_lookup(field) for field in fields]
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        first, *others = [_matching_ids(lookup, bit) for lookup in lookups]
        sessions = sessions.filter(pk__in=first.union(*others, all=True))
    return sessions


def _search_lookup(field: str) -> str:
    """The ORM lookup Django's admin makes of a `search_fields` entry."""
    # "=" is an exact match (Django's is iexact): ids are case-sensitive, and the unique
    # index serves an exact match only.
    prefixes = {"^": "istartswith", "=": "exact", "@": "search"}
    if field[0] in prefixes:
        return f"{field[1:]}__{prefixes[field[0]]}"
    return f"{field}__icontains"


def _matching_ids(lookup: str, bit: str) -> QuerySet:
    """The ids of the conversations in which `lookup` matches `bit`."""
    opts = Session._meta
    if not lookup_spawns_duplicates(opts, lookup):
        return Session.objects.filter(**{lookup: bit}).order_by().values("pk")
    # Across a reverse foreign key (messages__content): the related rows' foreign keys.
    relation, rest = lookup.split(LOOKUP_SEP, 1)
    reverse = opts.get_field(relation)
    related = reverse.related_model._default_manager.filter(**{rest: bit})
    return related.order_by().values(reverse.field.attname)


def conversations_size(sessions: QuerySet[Session]) -> tuple[int, int]:
    """How many conversations, and messages in them: what a deletion would take."""
    messages = Message.objects.filter(session__in=sessions.values("pk")).count()
    return sessions.count(), messages


def session_transcript(*, session: Session) -> QuerySet[Message]:
    """A conversation's messages, in order."""
    return session.messages.order_by("seq")
