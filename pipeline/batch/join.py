"""``JoinSource=Input`` for the local runner: each output line is the caller's IDs next to the prediction.

The container answers one line per record (CSV ``label,probability``; JSON Lines
``{"label": ..., "probability": ...}``). SageMaker appends that to the whole input row and the
``OutputFilter`` keeps the ID columns and the last two cells; the result is the same as putting the
ID cells in front of the container's line, which is what is done here.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.batch.errors import BatchError
from pipeline.batch.records import JSONLINES

OUTPUT_COLUMNS = ("label", "probability")


def join_output(body: bytes, ids: Sequence[bytes], fmt: str, has_ids: bool, where: str) -> bytes:
    """The ``.out`` lines for one answered mini-batch (``ids[i]`` belongs to the i-th record)."""
    lines = body.splitlines()
    if len(lines) != len(ids):
        raise BatchError(
            f"{where}: the container answered {len(lines)} lines for {len(ids)} records; "
            "Batch Transform needs one output line per input line"
        )
    if not has_ids:
        return body if body.endswith(b"\n") else body + b"\n"
    if fmt == JSONLINES:
        return b"".join(b"{" + i + b"," + line[1:] + b"\n" for i, line in zip(ids, lines, strict=True))
    return b"\n".join(map(b",".join, zip(ids, lines, strict=True))) + b"\n"


def output_header(id_header: bytes | None) -> bytes:
    """The ``.out`` header for an input with a header: its ID column names, then label,probability."""
    tail = ",".join(OUTPUT_COLUMNS).encode()
    return (id_header + b"," + tail if id_header else tail) + b"\n"
