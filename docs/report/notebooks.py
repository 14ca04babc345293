"""Execute the project notebooks (nbclient + ipykernel) and save them with their outputs.

``python -m docs.report.notebooks [NAME ...]`` runs ``notebooks/*.ipynb`` top to bottom in a fresh kernel
whose working directory is ``notebooks/`` (as when a person opens them in Jupyter) and writes them back
with outputs, only if every cell succeeded. CI runs the same function into a scratch directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import paths

NOTEBOOK_DIR = paths.ROOT / "notebooks"
NOTEBOOKS = ("01_eda.ipynb", "02_model_development.ipynb", "03_deploy_and_predict.ipynb")
CELL_TIMEOUT_SECONDS = 600


def execute(
    source: Path,
    destination: Path | None = None,
    *,
    timeout: int = CELL_TIMEOUT_SECONDS,
    env: Mapping[str, str] | None = None,
) -> float:
    """Run every cell of ``source``; write the executed notebook to ``destination`` (default: in place).

    Raises ``nbclient.exceptions.CellExecutionError`` (with the failing cell's traceback) if a cell
    fails; then nothing is written. Returns the wall time in seconds.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    started = time.monotonic()
    previous = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})  # the kernel inherits the environment of this process
    try:
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,  # keep committed notebooks free of per-run timestamps
            resources={"metadata": {"path": str(source.parent)}},
        ).execute()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    elapsed = time.monotonic() - started
    target = destination or source
    tmp = target.with_name(target.name + ".part")
    nbformat.write(notebook, tmp)
    tmp.replace(target)
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    """Execute the named notebooks (default: all three) in place."""
    parser = argparse.ArgumentParser(
        prog="python -m docs.report.notebooks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebook file names in notebooks/")
    args = parser.parse_args(argv)
    for name in args.names:
        path = NOTEBOOK_DIR / name
        print(f"executing {path.relative_to(paths.ROOT)} ...", flush=True)
        seconds = execute(path)
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
