"""`manage.py purge_sessions`: delete conversations idle for longer than the retention period."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.services import audit_record
from conversations import services
from conversations.exceptions import ChatKitError
from conversations.management.arguments import age, parsed

# Younger than this, a conversation may still be going on: an age under it is a typo away from
# deleting today's conversations, so it takes --force.
FORCE_BELOW = timedelta(hours=1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Command(BaseCommand):
    help = (
        "Delete conversations (with their messages) whose last activity is older than the "
        "given age, in batches. Conversations with a reply still being written are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=age,
            metavar="AGE",
            help="Idle for longer than this: 45min, 12h, 30d, 2w; under an hour only with "
            f"--force (default: CHATKIT_RETENTION_DAYS, now {settings.CHATKIT_RETENTION_DAYS}d).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Accept an --older-than under an hour."
        )
        parser.add_argument(
            "--assistant", metavar="SLUG", help="Only this assistant's conversations."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=services.PURGE_BATCH_SIZE,
            metavar="N",
            help=f"Conversations per transaction (default {services.PURGE_BATCH_SIZE}, "
            f"at most {services.PURGE_MAX_BATCH_SIZE}).",
        )

    def handle(
        self, *args, older_than, force, assistant, dry_run, batch_size, verbosity, **options
    ):
        older_than = parsed(age, older_than, "--older-than")
        if older_than is None:
            if settings.CHATKIT_RETENTION_DAYS < 1:
                raise CommandError(
                    "CHATKIT_RETENTION_DAYS must be 1 or more; or give --older-than."
                )
            older_than = timedelta(days=settings.CHATKIT_RETENTION_DAYS)
        elif timedelta(0) < older_than < FORCE_BELOW and not (force or dry_run):
            raise CommandError(
                f"--older-than {older_than.total_seconds() / 60:g}min is under an hour: it "
                "would delete conversations that may still be going on. Add --force if that "
                "is meant (--dry-run counts them first)."
            )
        done = "would delete" if dry_run else "deleted"

        def progress(batch: services.PurgeReport, total: services.PurgeReport) -> None:
            if verbosity >= 1:
                kept = f", kept {batch.in_flight} (reply in flight)" if batch.in_flight else ""
                self.stdout.write(
                    f"batch {total.batches}: {done} {_count(batch.sessions, 'conversation')}, "
                    f"{_count(batch.messages, 'message')}{kept}"
                )

        try:
            report = services.session_purge(
                older_than=older_than,
                assistant_slug=assistant,
                batch_size=batch_size,
                dry_run=dry_run,
                on_batch=progress,
                # --verbosity 0 prints nothing but errors, the log's summary line included.
                log=verbosity >= 1,
            )
        except ChatKitError as exc:
            raise CommandError(exc.message) from None
        if not dry_run:
            audit_record(
                action=AuditEvent.Action.PURGE,
                details={
                    "cutoff": report.cutoff,
                    "older_than_seconds": older_than.total_seconds(),
                    "assistant": assistant,
                    "conversations": report.sessions,
                    "messages": report.messages,
                    "in_flight": report.in_flight,
                },
            )
        if verbosity < 1:
            return
        scope = f" (assistant {assistant})" if assistant else ""
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{done} {_count(report.sessions, 'conversation')} "
            f"and {_count(report.messages, 'message')} last active before "
            f"{report.cutoff:%Y-%m-%d %H:%M:%S %Z}{scope}; "
            f"kept {report.in_flight} with a reply in flight."
        )
