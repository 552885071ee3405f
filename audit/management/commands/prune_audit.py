"""`manage.py prune_audit`: delete audit events older than the audit log's retention period."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_prune


class Command(BaseCommand):
    help = (
        "Delete audit events older than the given number of days (default "
        "CHATKIT_AUDIT_RETENTION_DAYS). The prune is itself recorded in the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            metavar="N",
            help="Older than N days, 1 or more (default: CHATKIT_AUDIT_RETENTION_DAYS, now "
            f"{settings.CHATKIT_AUDIT_RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, days, dry_run, verbosity, **options):
        days = settings.CHATKIT_AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("The audit log's retention must be 1 day or more.")
        count = audit_prune(older_than=timedelta(days=days), dry_run=dry_run)
        if verbosity >= 1:
            done = "Dry run: would delete" if dry_run else "Deleted"
            self.stdout.write(f"{done} {count} audit event(s) older than {days} day(s).")
