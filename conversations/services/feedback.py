"""The visitor's rating of a reply."""

from conversations.exceptions import NotAReply, NotFound, ReplyInFlight
from conversations.models import Message, Session


def message_feedback_set(
    *, session: Session, seq: int, rating: str | None, comment: str = ""
) -> Message:
    """Record (or with `rating=None`, clear) the visitor's rating of a reply."""
    message = session.messages.filter(seq=seq).first()
    if message is None:
        raise NotFound("Message not found.")
    if message.role != Message.Role.ASSISTANT:
        raise NotAReply()
    if message.status == Message.Status.STREAMING:
        raise ReplyInFlight("This reply is still being written.")
    message.feedback_rating = rating or ""
    message.feedback_comment = comment if rating else ""
    message.save(update_fields=["feedback_rating", "feedback_comment"])
    return message
