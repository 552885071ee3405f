"""`manage.py serve`: the production server, checked before any worker starts."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chatkit import serving


class Command(BaseCommand):
    help = (
        "Serve ChatKit with uvicorn and its workers, once the configuration passes its checks. "
        "On SIGTERM, replies being written get CHATKIT_SHUTDOWN_GRACE_SECONDS to finish."
    )
    # Run below, once, with the deployment checks when DEBUG is off.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default=settings.CHATKIT_HOST, help="Default: CHATKIT_HOST (127.0.0.1)."
        )
        parser.add_argument(
            "--port", type=int, default=settings.CHATKIT_PORT, help="Default: CHATKIT_PORT (8000)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.WEB_CONCURRENCY,
            help="Worker processes. Default: WEB_CONCURRENCY (1).",
        )

    def handle(self, *args, host, port, workers, **options):
        problems = serving.problems(workers=workers)
        if problems:
            raise CommandError("Refusing to start:\n" + "\n".join(problems))
        self.check(include_deployment_checks=not settings.DEBUG, display_num_errors=False)
        serving.serve(host=host, port=port, workers=workers)
