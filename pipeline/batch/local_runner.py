"""The local batch runner: Batch Transform's semantics against a real container on this machine.

For each input file, in order: read the header (if any), split the records on line boundaries into
mini-batches of at most ``MaxPayloadInMB``, keep ``MaxConcurrentTransforms`` requests in flight, and
write ``<input name>.out`` with one line per record in input order, the caller's ID columns joined
to label and probability. Memory stays bounded: at most ``MaxConcurrentTransforms + 2`` mini-batches
exist at a time, whatever the input size.

Outputs are atomic: a file is written under a hidden ``.partial`` name and renamed to ``.out`` only
when every one of its records is accounted for; a failed job removes its partial file, so every
``.out`` present is complete (``--resume`` relies on that).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.batch.bad_records import ErrorRow, errors_header, errors_lines, header_problem, record_problems
from pipeline.batch.byte_records import split_leading_ids
from pipeline.batch.container_client import ContainerClient
from pipeline.batch.errors import BadRecord, BatchError, ContainerRejected
from pipeline.batch.join import join_output, output_header
from pipeline.batch.progress import BatchProgress
from pipeline.batch.records import (
    CSV,
    CsvSplitter,
    JsonLinesSplitter,
    RecordProblem,
    csv_cells,
    format_of,
    is_header,
    resolve_id_columns,
    splitter_for,
)
from pipeline.batch.splitting import MiniBatch, input_files, limit_bytes, mini_batches, read_start
from pipeline.heap import pin_heap_thresholds


@dataclass(frozen=True)
class LocalJob:
    """One local batch job."""

    input: Path
    output: Path
    container_url: str
    id_columns: tuple[str, ...] = ()
    content_type: str | None = None
    skip_invalid: bool = False
    max_payload_mb: int | None = None
    """Override of the container's MaxPayloadInMB (None: ask /execution-parameters)."""
    max_concurrent_transforms: int | None = None
    """Override of the container's MaxConcurrentTransforms (None: ask /execution-parameters)."""
    max_retries: int = 3
    resume: bool = False
    progress: bool = True


@dataclass
class FileResult:
    """What the job did with one input file."""

    input: str
    output: str
    rows: int = 0
    errors: int = 0
    errors_file: str | None = None
    skipped: bool = False


@dataclass
class JobSummary:
    """The end-of-job summary (also what ``--json`` prints and the benchmark records)."""

    files: list[FileResult] = field(default_factory=list)
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0
    max_payload_mb: int = 0
    max_concurrent_transforms: int = 0
    input_bytes: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}


@dataclass
class _FileContext:
    label: str
    fmt: str
    splitter: CsvSplitter | JsonLinesSplitter
    has_ids: bool
    sent_header: bytes | None
    header_line: int | None


@dataclass
class _BatchResult:
    output: bytes
    rows: int
    raw_bytes: int
    errors: list[ErrorRow]


def run_local_job(job: LocalJob, say: Callable[[str], None] = print) -> JobSummary:
    """Run ``job`` to completion; raises BatchError (BadRecord, ContainerUnavailable...) on failure."""
    pin_heap_thresholds()  # mini-batch buffers go back to the OS when freed: memory stays bounded
    files = input_files(job.input)
    root = job.input if job.input.is_dir() else job.input.parent
    client = ContainerClient(job.container_url, 1, max_retries=job.max_retries)
    params = client.execution_parameters()
    client.close()
    payload_mb = job.max_payload_mb or params.max_payload_mb
    concurrent = job.max_concurrent_transforms or params.max_concurrent_transforms
    overridden = job.max_payload_mb or job.max_concurrent_transforms
    source = "overridden" if overridden else "from the container's /execution-parameters"
    summary = JobSummary(max_payload_mb=payload_mb, max_concurrent_transforms=concurrent)
    summary.input_bytes = sum(p.stat().st_size for p in files)
    say(
        f"batch: {len(files)} input file(s), {summary.input_bytes:,} bytes; MaxPayloadInMB={payload_mb}, "
        f"MaxConcurrentTransforms={concurrent} ({source})"
    )
    job.output.mkdir(parents=True, exist_ok=True)
    client = ContainerClient(job.container_url, concurrent, max_retries=job.max_retries)
    runner = _Runner(job, client, limit_bytes(payload_mb), concurrent)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrent, thread_name_prefix="batch") as pool:
            runner.pool = pool
            with BatchProgress(summary.input_bytes, enabled=job.progress) as progress:
                for path in files:
                    rel = path.relative_to(root)
                    progress.describe(str(rel))
                    result = runner.run_file(path, rel, progress)
                    summary.files.append(result)
                    summary.rows += result.rows
                    summary.errors += result.errors
    finally:
        summary.seconds = time.perf_counter() - started
        summary.requests, summary.retries = client.requests, client.retries
        client.close()
    return summary


class _Runner:
    def __init__(self, job: LocalJob, client: ContainerClient, limit: int, concurrent: int) -> None:
        self.job = job
        self.client = client
        self.limit = limit
        # One mini-batch ready beyond those in flight keeps the container busy; each batch held is
        # ~6 MB of body plus its per-line objects, so a deeper queue only costs memory.
        self.window = concurrent + 1
        self.pool: ThreadPoolExecutor | None = None

    # --- one file ------------------------------------------------------------------------------

    def run_file(self, path: Path, rel: Path, progress: BatchProgress) -> FileResult:
        out_path = self.job.output / rel.parent / f"{rel.name}.out"
        errors_path = self.job.output / rel.parent / f"{rel.name}.errors.csv"
        result = FileResult(input=str(path), output=str(out_path))
        if self.job.resume and out_path.is_file():
            result.skipped = True
            progress.advance(path.stat().st_size, 0)
            return result
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = out_path.with_name(f".{out_path.name}.partial")
        errors_partial = errors_path.with_name(f".{errors_path.name}.partial")
        try:
            with open(path, "rb") as fh, open(partial, "wb") as out, open(errors_partial, "wb") as err:
                err.write(errors_header())
                self._stream(fh, str(rel), out, err, result, progress)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, out_path)
            if result.errors:
                os.replace(errors_partial, errors_path)
                result.errors_file = str(errors_path)
            else:
                errors_partial.unlink()
                with contextlib.suppress(FileNotFoundError):
                    errors_path.unlink()  # a stale list from an earlier run would be misleading
        except BaseException:
            for leftover in (partial, errors_partial):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            raise
        return result

    def _stream(
        self,
        fh: IO[bytes],
        label: str,
        out: IO[bytes],
        err: IO[bytes],
        result: FileResult,
        progress: BatchProgress,
    ) -> None:
        fmt = format_of(Path(label), self.job.content_type)
        start, number = read_start(fh, fmt == CSV, lambda line: is_header(line, fmt))
        progress.advance(start.consumed, 0)
        if start.empty:
            return
        header_cells = csv_cells(start.header) if start.header is not None else None
        try:
            ids = resolve_id_columns(self.job.id_columns, fmt, header_cells)
        except ValueError as exc:
            raise BatchError(f"{label}: {exc}") from None
        splitter = splitter_for(fmt, ids)
        sent_header = None
        if start.header is not None:
            try:
                id_header, sent_header = splitter.header(start.header)
            except RecordProblem as problem:
                raise BadRecord(
                    label, start.header_line, problem.field, problem.problem, problem.message
                ) from None
            out.write(output_header(id_header if ids.any else None))
        ctx = _FileContext(label, fmt, splitter, ids.any, sent_header, start.header_line)
        header_cost = len(sent_header) + 1 if sent_header is not None else 0
        batches = mini_batches(fh, self.limit, header_cost, number)
        for done in self._ordered(batches, ctx):
            out.write(done.output)
            if done.errors:
                err.write(errors_lines(done.errors))
            result.rows += done.rows
            result.errors += len(done.errors)
            progress.advance(done.raw_bytes, done.rows)

    def _ordered(self, batches: Iterator[MiniBatch], ctx: _FileContext) -> Iterator[_BatchResult]:
        """Results in input order while up to MaxConcurrentTransforms batches are being scored."""
        assert self.pool is not None
        pending: deque[Future[_BatchResult]] = deque()
        try:
            for batch in batches:
                pending.append(self.pool.submit(self._process, batch, ctx))
                while len(pending) >= self.window or (pending and pending[0].done()):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            for future in pending:  # let running requests end before the caller removes files
                with contextlib.suppress(BaseException):
                    future.result()

    # --- one mini-batch (worker threads) -------------------------------------------------------

    def _process(self, batch: MiniBatch, ctx: _FileContext) -> _BatchResult:
        errors: list[ErrorRow] = []
        for number, problem in batch.problems:
            self._bad(ctx, number, problem.field, problem.problem, problem.message, errors)
        if not batch.pieces:
            return _BatchResult(b"", 0, batch.raw_bytes, errors)
        whole = self._score_whole(batch, ctx)
        if whole is not None:
            return _BatchResult(whole[0], whole[1], batch.raw_bytes, errors)
        ids: list[bytes] = []
        features: list[bytes] = []
        numbers: list[int] = []
        lines = batch.lines
        fast = ctx.splitter.split_many(lines)
        if fast is not None:
            ids, features = fast
            numbers = batch.numbers
        else:
            split = ctx.splitter.split
            for line, number in zip(lines, batch.numbers, strict=True):
                try:
                    i, f = split(line)
                except RecordProblem as problem:
                    self._bad(ctx, number, problem.field, problem.problem, problem.message, errors)
                    continue
                ids.append(i)
                features.append(f)
                numbers.append(number)
        output, rows = self._score(ctx, ids, features, numbers, errors)
        return _BatchResult(output, rows, batch.raw_bytes, errors)

    def _score_whole(self, batch: MiniBatch, ctx: _FileContext) -> tuple[bytes, int] | None:
        """The common case without a Python object per line (see pipeline.batch.byte_records).

        CSV whose ID columns lead and whose lines are unquoted and long enough, answered 200 with
        one line per record. None otherwise, and the per-line path (which names bad records and
        scores the rest) takes the batch, sending it again if it was sent.
        """
        if ctx.fmt != CSV or not isinstance(ctx.splitter, CsvSplitter) or not ctx.splitter.leading:
            return None
        head = ctx.sent_header + b"\n" if ctx.sent_header is not None else b""
        split = split_leading_ids(batch.records, len(ctx.splitter.ids), head)
        if split is None:
            return None
        first, last = batch.first_and_last
        where = f"{ctx.label} lines {first}-{last}"
        answer = self.client.invoke(split.payload, ctx.fmt, ctx.fmt, where)
        if answer.status != 200:
            if answer.status != 400:
                raise _rejected(where, answer)
            return None
        output = split.join(answer.body)
        return None if output is None else (output, split.n_records)

    def _score(
        self,
        ctx: _FileContext,
        ids: list[bytes],
        features: list[bytes],
        numbers: list[int],
        errors: list[ErrorRow],
    ) -> tuple[bytes, int]:
        """Score records; bad ones go to ``errors`` (or raise BadRecord), the others are scored."""
        while features:
            where = f"{ctx.label} lines {numbers[0]}-{numbers[-1]}"
            head = ctx.sent_header + b"\n" if ctx.sent_header is not None else b""
            payload = head + b"\n".join(features) + b"\n"
            answer = self.client.invoke(payload, ctx.fmt, ctx.fmt, where)
            if answer.status == 200:
                return join_output(answer.body, ids, ctx.fmt, ctx.has_ids, where), len(features)
            error = answer.error()
            if answer.status != 400:
                raise _rejected(where, answer)
            in_header = header_problem(error)
            if in_header is not None:
                raise BadRecord(
                    ctx.label, ctx.header_line, in_header.get("field"), str(in_header.get("problem")),
                    str(in_header.get("message")),
                )  # fmt: skip
            named = record_problems(error, len(features))
            if not named:
                return self._bisect(ctx, ids, features, numbers, errors, error)
            for index in sorted(named):
                detail = named[index]
                self._bad(
                    ctx, numbers[index], detail.get("field"), str(detail.get("problem") or error.get("code")),
                    str(detail.get("message") or error.get("message")), errors,
                )  # fmt: skip
            keep = [i for i in range(len(features)) if i not in named]
            ids, features, numbers = (
                [ids[i] for i in keep],
                [features[i] for i in keep],
                [numbers[i] for i in keep],
            )
        return b"", 0

    def _bisect(
        self,
        ctx: _FileContext,
        ids: list[bytes],
        features: list[bytes],
        numbers: list[int],
        errors: list[ErrorRow],
        error: dict[str, Any],
    ) -> tuple[bytes, int]:
        """A 400 that names no record (a malformed body): halve until the bad lines are isolated."""
        if len(features) == 1:
            self._bad(ctx, numbers[0], None, str(error.get("code")), str(error.get("message")), errors)
            return b"", 0
        mid = len(features) // 2
        left = self._score(ctx, ids[:mid], features[:mid], numbers[:mid], errors)
        right = self._score(ctx, ids[mid:], features[mid:], numbers[mid:], errors)
        return left[0] + right[0], left[1] + right[1]

    def _bad(
        self,
        ctx: _FileContext,
        line: int,
        field_name: str | None,
        problem: str,
        message: str,
        errors: list[ErrorRow],
    ) -> None:
        if not self.job.skip_invalid:
            raise BadRecord(ctx.label, line, field_name, problem, message)
        errors.append(ErrorRow(ctx.label, line, field_name, problem, message))


def _rejected(where: str, answer: Any) -> ContainerRejected:
    """The job-ending error for an answer that is neither 200 nor a 400 naming records."""
    error = answer.error()
    hint = "; lower --max-payload-mb" if answer.status == 413 else ""
    return ContainerRejected(
        f"{where}: the container answered {answer.status} {error.get('code')}: {error.get('message')}{hint}"
    )
