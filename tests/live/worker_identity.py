"""`[core] hostname_callable` for the Celery workers the harness starts.

Both workers run on this one machine, so the default (the FQDN) would name
them alike; each worker's environment names it (`MOZART_LIVE_WORKER`), as two
machines' host names would.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return f"{os.environ['MOZART_LIVE_WORKER']}.{socket.gethostname()}"
