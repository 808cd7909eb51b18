"""Run a Procfile with honcho, giving processes time to stop cleanly (`make run`, `make soak`).

honcho SIGKILLs whatever still runs 5 s after its SIGTERM (a module constant, no option). A Celery worker
stopping mid-task needs its grace period (WORKER_STOP_TIMEOUT_SECONDS) plus a few seconds of cold
shutdown to hand the task back, so the wait here is that grace plus PROCFILE_KILL_MARGIN_SECONDS (10).
Usage: python tools/run_procfile.py -f Procfile start
"""

import os
import sys

import honcho.manager
from honcho.command import main

honcho.manager.KILL_WAIT = int(os.environ.get("WORKER_STOP_TIMEOUT_SECONDS", "3")) + int(
    os.environ.get("PROCFILE_KILL_MARGIN_SECONDS", "10")
)

if __name__ == "__main__":
    sys.argv[0] = "honcho"
    sys.exit(main())
