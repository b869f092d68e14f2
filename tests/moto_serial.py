"""moto's DynamoDB server answering one request at a time: `python tests/moto_serial.py HOST PORT`.

`python -m moto.server` serves requests on threads, and moto checks a put's condition and then
stores the item without a lock, so two conditional puts racing over one item can both succeed
(seen here: 30 upserts of one session by 3 processes, the stored version 28 and 2 runs lost,
about once in ten runs under load). DynamoDB makes a conditional put atomic; serving one request
at a time makes moto's do the same, so the tests exercise our code and not moto's race.
"""

from __future__ import annotations

import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)


if __name__ == "__main__":
    main()
