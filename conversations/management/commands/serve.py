"""`manage.py serve`: the production server, checked before any worker starts."""

import logging

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from chatkit import serving
from conversations import services

logger = logging.getLogger(__name__)


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
        parser.add_argument(
            "--no-access-log",
            dest="access_log",
            action="store_false",
            help="No line per request (a turn still logs its own).",
        )

    def handle(self, *args, host, port, workers, access_log, **options):
        problems = serving.problems(workers=workers)
        # Django's system checks, as lines of the log (JSON with LOG_FORMAT=json), errors
        # refusing the start like the problems above.
        for message in checks.run_checks(include_deployment_checks=not settings.DEBUG):
            if message.is_serious():
                problems.append(str(message))
            elif not message.is_silenced():
                logger.warning("%s", message)
        if not problems:  # a database to read: the key is checked against its canary
            problems.extend(services.encryption_canary_check())
        if problems:
            raise CommandError("Refusing to start:\n" + "\n".join(problems))
        connections.close_all()  # the check's connection: the workers open their own
        serving.serve(host=host, port=port, workers=workers, access_log=access_log)
