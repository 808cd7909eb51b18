"""`make soak`: run the `make run` processes (Procfile) with beat every 5 s and fail on any ERROR/CRITICAL line.

Runs in its own VAR_DIR (var/soak, wiped first) and on its own web port, for SOAK_MINUTES (30), then
stops everything with SIGTERM as Ctrl-C would, and checks: no process exited early, no ERROR,
CRITICAL, Traceback or "Unrecoverable" line, and the web page still answered at the end.
Prints a summary; exit status 0 only when all held. The full log is var/soak/soak.log.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
BAD = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|Unrecoverable")


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    port = os.environ.get("SOAK_WEB_PORT", "8137")
    var = ROOT / "var" / "soak"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {**os.environ, "VAR_DIR": str(var), "WEB_PORT": port, "SYNC_FANOUT_SECONDS": "5", "PYTHONUNBUFFERED": "1",
           # the devnet launcher always writes var/devnet.json
           "DEVNET_STATE_FILE": str(ROOT / "var" / "devnet.json")}
    for k in ("DATABASE_URL", "CELERY_BROKER_URL", "BROKER_URL"):
        env.pop(k, None)  # the embedded defaults are what is soaked
    for step in (["manage.py", "migrate", "--noinput", "-v0"], ["manage.py", "collectstatic", "--noinput", "-v0"]):
        subprocess.run([str(PY), *step], cwd=ROOT, env=env, check=True)
    log_path = var / "soak.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(PY), "tools/run_procfile.py", "-f", "Procfile", "start", "--no-colour"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started = time.monotonic()
        early_exit = None
        web_ok = 0
        web_fail = 0
        while time.monotonic() - started < minutes * 60:
            time.sleep(10)
            if proc.poll() is not None:
                early_exit = proc.returncode
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
                    web_ok += r.status == 200
            except OSError:
                web_fail += time.monotonic() - started > 120  # the first two minutes are start-up (devnets, demo)
        ran = time.monotonic() - started
        os.killpg(proc.pid, signal.SIGINT) if proc.poll() is None else None  # Ctrl-C: honcho stops the rest
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            early_exit = "did not stop within 60 s"
    text = log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if BAD.search(line)]
    syncs = text.count("sync_wallet_chains_task") + text.count("sync_wallet_chain_task")
    print(f"soak: {ran / 60:.1f} min, {text.count('Sending due task')} beat sends, {syncs} sync task log lines, "
          f"/readyz ok {web_ok} times, failed {web_fail} times after start-up, {len(bad)} ERROR/CRITICAL lines")
    for line in bad[:20]:
        print("  " + line)
    if early_exit is not None:
        print(f"soak: the process group ended early: {early_exit}")
    return 0 if not bad and early_exit is None and not web_fail else 1


if __name__ == "__main__":
    sys.exit(main())
