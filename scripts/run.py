"""Run the whole embedded platform in one terminal: web server, Celery worker, Celery beat.

``make run`` calls this after migrating and loading the demo. Ctrl-C (or any one
process dying) stops every process it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CELERY = str(Path(PYTHON).with_name("celery"))


def commands(port: int) -> dict[str, list[str]]:
    return {
        "web": [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [CELERY, "-A", "mcoms", "worker", "--pool=solo", "--loglevel=INFO",
                   "--hostname=worker@%h"],
        "beat": [CELERY, "-A", "mcoms", "beat", "--loglevel=INFO",
                 "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                 f"--schedule={ROOT / 'var' / 'celerybeat-schedule'}"],
    }


def stop(procs: dict[str, subprocess.Popen], grace: float = 10.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _terminate_like_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen] = {}
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    try:
        for name, cmd in commands(args.port).items():
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env)
        print(f"\nMCOMS is starting at http://127.0.0.1:{args.port}/ (Ctrl-C stops everything)\n",
              flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the rest.",
                          flush=True)
                    return proc.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
