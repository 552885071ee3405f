"""`manage.py encryption_rotate`: seal all stored text with the newest key, then count."""

from django.core.management.base import BaseCommand, CommandError

from conversations import encryption, selectors, services


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the first key of CHATKIT_ENCRYPTION_KEYS "
        "(plaintext included: this is also how encryption is turned on for an existing "
        "database), in batches by primary key; then report the rows left under every other "
        "key. A key with 0 rows can be removed from CHATKIT_ENCRYPTION_KEYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=services.ROTATE_BATCH_SIZE,
            metavar="N",
            help=f"Rows per transaction (default {services.ROTATE_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--count-only", action="store_true", help="Only report the rows under each key."
        )

    def handle(self, *args, batch_size, count_only, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not count_only:
            try:
                total = services.encryption_rotate(batch_size=batch_size, progress=self._progress)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"re-encrypted {total} values")
        ring = encryption.keyring()
        primary = ring.primary[0] if ring.primary else None
        left = 0
        for column, counts in selectors.encrypted_rows_by_key().items():
            for kid, count in sorted(counts.items()):
                label = "primary key" if kid == primary else kid
                self.stdout.write(f"{column}: {count} under {label}")
                if kid != primary:
                    left += count
        self.stdout.write(
            f"{left} values under other keys or in plaintext"
            + (": the old keys can be removed" if left == 0 else "")
        )

    def _progress(self, step: services.RotateProgress) -> None:
        self.stdout.write(f"{step.column}: {step.rewritten} re-encrypted, up to id {step.last_pk}")
