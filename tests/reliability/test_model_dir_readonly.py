"""SageMaker mounts /opt/ml/model read-only: the server must never write there.

The model directory is bind-mounted read-only onto itself in a private mount namespace
(``unshare -m``), so even root gets EROFS for any write; serve must start, answer every kind of request
and stop cleanly. Independently, the tree's open file descriptors are checked for write access into
the directory, and every file's size, mtime, ctime and inode are compared before and after.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import requests

from bench.live import RECORD, ServeRun

_ACCESS_MODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int, int]]:
    entries = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        entries[str(path.relative_to(root))] = (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            st.st_mode,
        )
    return entries


def _read_only_mount_prefix(model_dir: Path) -> list[str]:
    """``unshare -m`` + a read-only bind mount of ``model_dir`` onto itself, then exec the command."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(model_dir)]


def _writable_fds_into(pids: list[int], root: Path) -> list[str]:
    found = []
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
                flags = int(
                    (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().split("flags:")[1].split()[0], 8
                )
            except (OSError, IndexError, ValueError):
                continue
            if target.startswith(str(root)) and flags & _ACCESS_MODE != os.O_RDONLY:
                found.append(f"pid {pid} fd {fd.name} -> {target} (flags {flags:o})")
    return found


def test_serving_never_writes_to_the_model_directory(
    start_serve, quick_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(quick_model_dir, tmp_path / "opt-ml-model"))
    probe = subprocess.run(
        [*_read_only_mount_prefix(model_dir), "sh", "-c", f"! touch {model_dir}/probe 2>/dev/null"],
        capture_output=True,
        check=False,
    )
    # The read-only mount needs CAP_SYS_ADMIN (root in this environment and in CI); the
    # descriptor and snapshot checks below run either way.
    read_only = probe.returncode == 0
    before = _snapshot(model_dir)
    server: ServeRun = start_serve(
        model_dir, workers=2, prefix=_read_only_mount_prefix(model_dir) if read_only else None
    )
    if read_only:
        mounts = Path(f"/proc/{server.pid}/mountinfo").read_text()
        line = next(entry for entry in mounts.splitlines() if f" {model_dir} " in entry)
        assert " ro," in line or " ro " in line, line
    requests_sent = [
        requests.post(f"{server.url}/invocations", json=[RECORD] * 50, timeout=10),
        requests.post(
            f"{server.url}/invocations",
            data="39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States\n",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            timeout=10,
        ),
        requests.post(f"{server.url}/invocations", data=b"{not json", timeout=10),
        requests.get(f"{server.url}/ping", timeout=10),
        requests.get(f"{server.url}/execution-parameters", timeout=10),
    ]
    assert [r.status_code for r in requests_sent] == [200, 200, 400, 200, 200]
    assert _writable_fds_into(server.tree(), model_dir) == []
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0, server.stderr()[-2000:]
    logs = server.stdout() + server.stderr()
    assert "Read-only file system" not in logs
    assert "EROFS" not in logs
    assert _snapshot(model_dir) == before
    if not read_only:
        warnings.warn(
            "no read-only bind mount (needs CAP_SYS_ADMIN): checked descriptors and file metadata only",
            stacklevel=1,
        )
