"""The production server behind `manage.py serve`: uvicorn with its workers, stopping in order.

uvicorn's own process manager runs the workers (`uvicorn.workers`, for gunicorn, is
deprecated). On SIGTERM uvicorn stops accepting and waits for open connections, but tells
the requests nothing; each serving process here starts draining first (chatkit.draining), so
replies being written get the grace period and then end themselves, and uvicorn's own wait is
bounded by the grace plus a margin.
"""

import contextlib
import logging
import signal
import sys
import threading

import uvicorn
from django.conf import settings
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from chatkit import draining
from chatkit.logging import uvicorn_log_config

logger = logging.getLogger(__name__)

APPLICATION = "chatkit.asgi:application"
# Past the grace period: for cut-off replies to be stored and their last event sent, even
# when each must wait its turn for a pooled connection (DB_POOL_TIMEOUT).
SHUTDOWN_MARGIN_SECONDS = 5.0


def shutdown_margin() -> float:
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    return max(SHUTDOWN_MARGIN_SECONDS, pool["timeout"] + 2) if pool else SHUTDOWN_MARGIN_SECONDS


EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def problems(*, workers: int) -> list[str]:
    """What stops `serve` from starting `workers` workers, one sentence each (the settings
    have refused everything else already)."""
    found = []
    if workers < 1:
        found.append("--workers (WEB_CONCURRENCY) must be at least 1")
    if (
        workers > 1
        and not settings.DEBUG
        and settings.CHATKIT_RATELIMIT_ENABLED
        and not settings.REDIS_URL
    ):
        found.append(
            f"REDIS_URL must be set to run {workers} workers, or every rate limit would count "
            "per worker"
        )
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    budget = settings.CHATKIT_DB_CONNECTION_BUDGET
    if pool and budget and workers * pool["max_size"] > budget:
        found.append(
            f"{workers} workers x DB_POOL_MAX_SIZE {pool['max_size']} = "
            f"{workers * pool['max_size']} PostgreSQL connections, over "
            f"CHATKIT_DB_CONNECTION_BUDGET ({budget}): run fewer workers, give each a smaller "
            "pool, or raise the budget if PostgreSQL's max_connections allows"
        )
    return found


class ServeConfig(uvicorn.Config):
    """uvicorn's configuration, which also sets up each serving process for shutdown.

    uvicorn loads the application in the process that serves it (each worker, under the
    process manager) once its Server listens for SIGTERM and SIGINT: draining is chained onto
    that handler there. An application that fails to load stops the whole server instead of
    being restarted forever.
    """

    def load(self) -> None:
        try:
            super().load()
        except Exception:
            logger.exception("the application failed to load")
            sys.exit(STARTUP_FAILURE)  # the process manager stops, rather than restart it
        drain_on_exit_signals()


def drain_on_exit_signals() -> None:
    """Start draining before uvicorn's Server handles SIGTERM or SIGINT (in this process)."""
    if threading.current_thread() is not threading.main_thread():
        return  # uvicorn's Server does not listen for signals there either
    for sig in EXIT_SIGNALS:
        server_handler = signal.getsignal(sig)
        if not isinstance(getattr(server_handler, "__self__", None), uvicorn.Server):
            # tests/canaries/test_private_apis.py says so before an upgrade gets here.
            logger.error("uvicorn's Server does not handle %s: replies will not drain", sig.name)
            continue

        def drain_then_stop(signum, frame, server_handler=server_handler) -> None:
            draining.begin(settings.CHATKIT_SHUTDOWN_GRACE_SECONDS)
            server_handler(signum, frame)

        signal.signal(sig, drain_then_stop)


def _exit_when_stopped(signum, frame) -> None:
    # uvicorn's Server raises the signal it caught again once it has stopped, for the process
    # to die of it: having stopped in order, we exit 0 instead. (Before the Server listens, a
    # SIGTERM stops us just as well.)
    sys.exit(0)


def serve(*, host: str, port: int, workers: int, access_log: bool = True) -> None:
    """Run the server until it is told to stop; exits non-zero if it could not start."""
    grace = settings.CHATKIT_SHUTDOWN_GRACE_SECONDS
    config = ServeConfig(
        APPLICATION,
        host=host,
        port=port,
        workers=workers,
        lifespan="off",  # Django answers none
        # The client's address comes from CHATKIT_TRUSTED_PROXIES alone, one policy.
        proxy_headers=False,
        timeout_graceful_shutdown=grace + shutdown_margin(),
        # Settings' LOGGING, in uvicorn's parent and in each worker before it loads the app:
        # LOG_FORMAT and LOG_LEVEL for every line, access lines with the client's IP hash.
        log_config=uvicorn_log_config(),
        access_log=access_log,
    )
    if workers > 1:
        manager = Multiprocess(config, sockets=[config.bind_socket()])
        manager.run()
        if any(process.exitcode == STARTUP_FAILURE for process in manager.processes):
            sys.exit(STARTUP_FAILURE)
        return
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, _exit_when_stopped)
    with contextlib.suppress(KeyboardInterrupt):  # the SIGINT uvicorn raises again, once stopped
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
