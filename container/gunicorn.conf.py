"""Gunicorn configuration for the model server; every value comes from inference.settings.

``serve`` runs ``gunicorn -c gunicorn.conf.py wsgi:app`` with ``SERVE_RUN_DIR`` set. Sync workers:
scoring is CPU-bound and nginx buffers slow clients, so one request per worker process is right.
They are gunicorn's sync worker with a shorter path for nginx's requests (``LeanSyncWorker``).
"""

import contextlib
import gc
import grp
import os
import sys

from inference.request_log import log_event
from inference.settings import load_settings

_settings = load_settings()

bind = f"unix:{_settings.gunicorn_socket}"
# The socket is 0777, but only its run directory's owner and group (nginx's workers) can reach it.
umask = 0o000
workers = _settings.workers
# gunicorn's sync worker with a short path for nginx's plain POST /invocations (inference/lean_worker.py).
worker_class = "inference.lean_worker.LeanSyncWorker"
timeout = _settings.gunicorn_timeout_s
graceful_timeout = max(1, int(_settings.shutdown_grace_s))
keepalive = 2
preload_app = True  # load the model once in the master; workers share it copy-on-write
accesslog = None  # the app writes one JSON line per request instead
errorlog = "-"
loglevel = _settings.log_level
proc_name = "model-server"
capture_output = False
control_socket_disable = True  # gunicorn >= 25 would otherwise create ~/.gunicorn/gunicorn.ctl
# Heartbeat files on tmpfs: a disk-backed /tmp (Docker's overlay) can stall them and kill workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else str(_settings.run_dir)  # noqa: S108


def _unprivileged_group() -> str:
    for name in ("nogroup", "nobody"):
        with contextlib.suppress(KeyError):
            return grp.getgrnam(name).gr_name
    raise RuntimeError("neither group 'nogroup' nor 'nobody' exists for the gunicorn workers")


def _readable_by_anyone(path: str) -> bool:
    """True if ``path`` and every directory above it can be read (and entered) by any user."""
    current = os.path.realpath(path)
    while True:
        if os.stat(current).st_mode & 0o005 != 0o005:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


if os.geteuid() == 0:
    # SageMaker starts the container as root. The master keeps root (it loaded the model before the
    # fork); the workers, which parse untrusted request bodies, switch to nobody and the run
    # directory's group (nginx's workers), which is all they need: socket, heartbeat, ready file.
    # Only when the Python installation is readable by them (in the image it is; a Python under
    # /root on a developer's machine is not, and a worker's lazy imports, Flask's among them, would
    # fail).
    from importlib.util import find_spec

    _flask_origin = find_spec("flask").origin  # where the packages are, without importing Flask
    _code_dirs = (os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(_flask_origin or "")))
    if all(_readable_by_anyone(d) for d in (*_code_dirs, os.path.dirname(os.path.abspath(__file__)))):
        user = "nobody"
        group = _unprivileged_group()
    else:
        log_event("warning", "workers_keep_root", reason="the Python installation is not readable by nobody")


def when_ready(server):
    """The model is loaded (``preload_app``) and no worker is forked yet: drop what loading it left
    behind (the tables' build arrays, the verification batch) and hand those pages back, so the
    master keeps only what the workers share."""
    from pipeline.heap import release_freed_memory

    # The young generations hold what loading left behind; a full collection would also walk every
    # module's objects, ~20 ms of start-up, and found nothing more (gc.freeze follows in pre_fork).
    gc.collect(1)
    release_freed_memory()


def pre_fork(server, worker):
    """Move everything allocated so far (the model) out of the GC's reach before forking.

    Otherwise the first collection in each worker touches every object header and copy-on-write
    duplicates the model's pages in every worker.
    """
    gc.freeze()


def post_fork(server, worker):
    """Pin native thread pools to one thread in this worker (the environment did it at load time;
    threadpoolctl also covers pools a library creates later), and pin glibc's heap thresholds."""
    from threadpoolctl import threadpool_limits

    from pipeline.heap import pin_heap_thresholds

    worker.thread_limits = threadpool_limits(limits=1)
    pin_heap_thresholds()  # a large request's buffers go back to the OS when freed (pipeline.heap)
    log_event("info", "worker_started", worker_pid=worker.pid)


def post_worker_init(worker):
    """Tell nginx the server is ready (it then answers /ping itself) once a worker has booted with a
    loaded, self-checked model. A broken model never writes it: the app answers /ping with the reason."""
    from inference.readiness import write_ready_file

    state = worker.wsgi.model_state
    if state is not None and state.ready and not _settings.ready_file.exists():
        write_ready_file(_settings.ready_file)


def worker_abort(worker):
    """Called when the master kills a worker for exceeding the timeout (SIGABRT).

    Leave at once: gunicorn would otherwise unwind the request with SystemExit and answer it with its
    own HTML 500 page; a closed connection makes nginx answer its JSON 502 instead.
    """
    log_event("error", "worker_timeout", worker_pid=worker.pid, timeout_seconds=timeout)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(1)


def worker_exit(server, worker):
    """Leave the worker with ``os._exit``, skipping C/C++ static destructors.

    Native libraries initialised in the master before the fork (ONNX Runtime keeps a thread there)
    can deadlock in their destructors in a forked child, which would turn every graceful shutdown
    into a wait for SIGKILL. Python-level state needs no cleanup here: the request log writes
    straight to the file descriptor, and the standard streams are flushed below.
    """
    error = sys.exc_info()[1]
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    else:
        code = 0 if error is None else 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    for handler in server.log.error_log.handlers:
        handler.flush()
    os._exit(code)
