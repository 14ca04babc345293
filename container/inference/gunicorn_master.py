"""The gunicorn master ``serve`` runs: gunicorn's own, minus its pauses between the first workers.

gunicorn sleeps a random 0-100 ms after forking each worker so that workers which import the app
themselves do not all do it at once. Here the app is loaded once in the master before any fork
(``preload_app``), so the first workers are forked back to back: the last one used to be up a mean
50 ms later for nothing. Replacements of dead workers keep gunicorn's pacing.

``serve`` calls :func:`main` in the process it forks for the master (``container/serve``,
``_become_gunicorn``); ``python -m inference.gunicorn_master`` with gunicorn's usual arguments runs
the same master by hand.
"""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.arbiter import Arbiter


class PreloadedArbiter(Arbiter):
    """gunicorn's arbiter; the first workers are forked without a pause."""

    def spawn_workers(self) -> None:
        """Fork the missing workers: all at once at start-up, with gunicorn's pauses after that."""
        if self.WORKERS or not self.cfg.preload_app:
            super().spawn_workers()
            return
        for _ in range(self.num_workers):
            self.spawn_worker()


class ModelServerApplication(WSGIApplication):
    """gunicorn's WSGI application runner, with :class:`PreloadedArbiter` as its master."""

    def run(self) -> None:
        """gunicorn's ``BaseApplication.run`` (the options that ``Application.run`` handles
        first, such as ``--check-config`` or ``--daemon``, are not used by ``serve``)."""
        try:
            PreloadedArbiter(self).run()
        except RuntimeError as exc:
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)


def main() -> None:
    """Parse gunicorn's command line and run the master until it exits."""
    ModelServerApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()


if __name__ == "__main__":
    main()
