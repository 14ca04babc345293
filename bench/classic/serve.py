#!/usr/bin/env python3
"""FROZEN reference launcher (issue 14): nginx -> unix socket -> gunicorn sync workers -> wsgi.py.

One sync worker per core (``SAGEMAKER_MODEL_SERVER_WORKERS`` overrides), nginx on
``SAGEMAKER_BIND_TO_PORT``. SIGTERM stops both. Only for ``bench/bench_classic.py``: it must not
change, or the ratios measured against it stop being comparable across runs.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run nginx and gunicorn until SIGTERM or until either exits."""
    run_dir = Path(tempfile.mkdtemp(prefix="classic-"))
    run_dir.chmod(0o755)  # as root, nginx's workers (nobody) must reach the socket
    port = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
    workers = os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", str(os.cpu_count() or 1))
    conf = (HERE / "nginx.conf").read_text().replace("{{RUN_DIR}}", str(run_dir)).replace("{{PORT}}", port)
    (run_dir / "nginx.conf").write_text(conf)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stop.append(signum))
    nginx = subprocess.Popen(["nginx", "-p", str(run_dir), "-c", str(run_dir / "nginx.conf")])
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "sync",
            "-w",
            workers,
            "--timeout",
            "60",
            "-b",
            f"unix:{run_dir}/gunicorn.sock",
            "--chdir",
            str(HERE),
            "wsgi:app",
        ]
    )
    while not stop and nginx.poll() is None and gunicorn.poll() is None:
        time.sleep(0.1)
    nginx.send_signal(signal.SIGQUIT)
    gunicorn.send_signal(signal.SIGTERM)
    for proc in (nginx, gunicorn):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
