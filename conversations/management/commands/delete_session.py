"""`manage.py delete_session ID [ID ...]`: erase conversations, e.g. on a visitor's request;
`delete_session --user ID [--assistant SLUG]`: every conversation of one signed-in visitor."""

from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.services import audit_record
from conversations import services
from conversations.exceptions import AssistantNotFound


class Command(BaseCommand):
    help = (
        "Delete the given conversations and all their messages, by the id the visitor's "
        "browser holds; or with --user, every conversation of one signed-in visitor. Fails "
        "(and keeps it) when a reply is still being written in one."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Ids are URL-safe base64, so one in 64 begins with "-" and would pass for an option.
        kwargs.setdefault(
            "epilog",
            "An id may begin with '-': put '--' before the ids (delete_session -- ID ...).",
        )
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "ids",
            nargs="*",
            metavar="ID",
            help="A conversation's id (after '--' if it begins with '-').",
        )
        parser.add_argument(
            "--user",
            metavar="ID",
            help="Instead of ids: every conversation of the signed-in visitor with this user "
            "id (the `sub` of the host site's token), a data-subject request.",
        )
        parser.add_argument(
            "--assistant",
            metavar="SLUG",
            help="With --user: only the conversations with this assistant.",
        )

    def handle(self, *args, ids, user, assistant, verbosity, **options):
        if user is not None:
            if ids:
                raise CommandError("Give conversation ids or --user, not both.")
            return self.user_delete(user, assistant, verbosity)
        if assistant is not None:
            raise CommandError("--assistant goes with --user.")
        if not ids:
            raise CommandError("Give at least one conversation id, or --user.")
        # Only the ids typed here are ever printed: nothing of what the conversations hold.
        report = services.session_delete_many(sessions=ids)
        # By database id: the ids typed here are the visitors' credentials.
        audit_record(
            action=AuditEvent.Action.ERASURE,
            conversation=report.deleted_ids[0] if len(report.deleted_ids) == 1 else None,
            details={
                "conversations": report.deleted_ids,
                "not_found": len(report.not_found),
                "in_flight": len(report.in_flight),
            },
        )
        for public_id in report.deleted if verbosity >= 1 else ():
            self.stdout.write(f"deleted: {public_id}")
        for public_id in report.not_found:
            self.stderr.write(f"not found (never existed or already deleted): {public_id}")
        for public_id in report.in_flight:
            self.stderr.write(f"not deleted, a reply is being written: {public_id}")
        failed = len(report.not_found) + len(report.in_flight)
        if failed:
            later = " (run again once the reply has ended)" if report.in_flight else ""
            raise CommandError(
                f"{failed} of {failed + len(report.deleted)} conversations not deleted{later}."
            )

    def user_delete(self, user: str, assistant: str | None, verbosity: int) -> None:
        if not user:
            raise CommandError("--user needs a user id.")
        try:
            report = services.visitor_sessions_delete(visitor_sub=user, assistant_slug=assistant)
        except AssistantNotFound:
            raise CommandError(f"No assistant {assistant!r}.") from None
        # Counts only: a conversation's public id is its visitor's secret.
        if verbosity >= 1:
            self.stdout.write(f"deleted {len(report.deleted)} conversations of user {user!r}")
        if report.in_flight:
            raise CommandError(
                f"{len(report.in_flight)} conversations not deleted, a reply is being written "
                "(run again once it has ended)."
            )
