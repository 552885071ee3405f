"""uvicorn run from code, as `manage.py serve` runs it: `python -m tests.uvicorn_from_code`
with the few options of uvicorn's command line that the live tests use."""

import argparse

import django
import uvicorn

from chatkit.logging import uvicorn_log_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--lifespan")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-proxy-headers", action="store_true")
    parser.add_argument("--no-access-log", action="store_true")
    options = parser.parse_args()

    django.setup()
    uvicorn.run(
        options.app,
        host=options.host,
        port=options.port,
        lifespan=options.lifespan,
        workers=options.workers,
        proxy_headers=False,
        access_log=not options.no_access_log,
        log_config=uvicorn_log_config(),
    )


if __name__ == "__main__":  # not again in the workers, which import this module too
    main()
