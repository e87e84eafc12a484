"""Run the whole embedded platform in one terminal: web server, Celery worker, Celery beat,
the demo site's edge agent polling a simulated RS485 bus through the real edge API, and,
unless ``CALIN_BASE_URL`` points at a real one, a fake Calin head-end for relays and tokens.

``make run`` calls this after migrating and loading the demo. Ctrl-C (or any one
process dying) stops every process it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
        "worker": [
            CELERY,
            "-A",
            "mcoms",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--hostname=worker@%h",
        ],
        "beat": [
            CELERY,
            "-A",
            "mcoms",
            "beat",
            "--loglevel=INFO",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
        ],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def edge_commands(port: int, env: dict) -> dict[str, list[str]]:
    """The simulated bus and the edge agent for the demo gateway (none without the demo)."""
    bus = f"socket://127.0.0.1:{free_port()}"
    prepared = subprocess.run(
        [PYTHON, "manage.py", "demo_edge", "--port", str(port), "--bus", bus],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if prepared.returncode != 0:
        print(f"No demo edge agent: {prepared.stderr.strip().splitlines()[-1:]}", flush=True)
        return {}
    print(prepared.stdout.strip().splitlines()[0], flush=True)
    meters = prepared.stdout.strip().splitlines()[-1]
    var = Path(env.get("MCOMS_VAR_DIR") or ROOT / "var")
    return {
        "bus": [PYTHON, "-m", "edge_agent", "simulate", "--listen", bus, "--meters", meters],
        "edge": [PYTHON, "-m", "edge_agent", "run", "--config", str(var / "edge" / "config.yaml")],
    }


def calin_command(env: dict) -> dict[str, list[str]]:
    """The demo's fake Calin head-end on a free port, and its address for the others.

    Left out when the environment already names a head-end (``CALIN_BASE_URL``).
    """
    if env.get("CALIN_BASE_URL"):
        return {}
    from metering.steering import fake_calin

    port = free_port()
    env.update(
        CALIN_BASE_URL=f"http://127.0.0.1:{port}/api",
        CALIN_COMPANY=fake_calin.COMPANY,
        CALIN_USER=fake_calin.USER,
        CALIN_PASSWORD=fake_calin.PASSWORD,
        CALIN_POS_USER=fake_calin.POS_USER,
        CALIN_POS_PASSWORD=fake_calin.POS_PASSWORD,
        CALIN_POS_VEND_PASSWORD=fake_calin.VEND_PASSWORD,
    )
    return {"calin": [PYTHON, "-m", "metering.steering.fake_calin", "--port", str(port)]}


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
        for name, cmd in calin_command(env).items():  # first: the others need its address
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env)
        for name, cmd in commands(args.port).items():
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env)
        for name, cmd in edge_commands(args.port, env).items():
            procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env)
        print(
            f"\nMCOMS is starting at http://127.0.0.1:{args.port}/ (Ctrl-C stops everything)\n",
            flush=True,
        )
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"{name} exited with code {proc.returncode}; stopping the rest.", flush=True
                    )
                    return proc.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        # Stopping already: a second Ctrl-C, or a SIGTERM while the children wind down
        # (slow on a loaded machine), must not cut the stopping short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
