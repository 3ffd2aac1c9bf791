"""``python -m quadrat.service``: run the server (tests, and ``quadrat serve`` underneath).

Thin on purpose: options to :class:`ServiceSettings`, then :func:`serve`. The Typer CLI
(``quadrat serve``) is the documented entry point; this one needs nothing but the library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m quadrat.service",
        description="Serve CoralNet's deploy API over a quadrat project.",
    )
    parser.add_argument(
        "--database", required=True, help="project: SQLite file or postgresql+psycopg:// URL"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="fetch image URLs on private, loopback and link-local addresses too",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes for jobs")
    parser.add_argument(
        "--image-folder", type=Path, default=None, help="images may be named by paths under it"
    )
    args = parser.parse_args(argv)

    from quadrat.errors import QuadratError
    from quadrat.service.server import serve
    from quadrat.service.settings import ServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = ServiceSettings(
            database=args.database,
            allow_private_urls=args.allow_private_urls,
            workers=args.workers,
            image_folder=args.image_folder,
        )
        serve(settings, host=args.host, port=args.port)
    except QuadratError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
