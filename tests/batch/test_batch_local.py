"""The local batch runner against the real container (nginx + gunicorn, released model) on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import requests
from golden_checks import assert_matches_golden, csv_body, golden, tolerance

from batch.batch_helpers import ROWS, listing, read_out, run, write_rows
from bench.live import REPO_ROOT, ServeRun
from pipeline.batch.errors import BadRecord, ContainerUnavailable
from pipeline.batch.splitting import MIB
from pipeline.schema import MISSING_TOKENS, SCHEMA, NumericFeature


def test_split_merge_is_exact_and_ids_are_joined(tmp_path: Path, proxy) -> None:
    n = 30_000  # ~2.5 MB: three mini-batches at MaxPayloadInMB=1
    rows = [ROWS[i % len(ROWS)] for i in range(n)]
    ids = [f"c{(i * 7919) % 104729}-{i}" for i in range(n)]  # not in numeric order
    write_rows(tmp_path / "in.csv", rows, ids)
    summary = run(tmp_path / "in.csv", tmp_path / "out", proxy.url, id_columns=("0",))
    out = read_out(tmp_path / "out" / "in.csv.out")
    assert summary.rows == n and summary.errors == 0
    assert proxy.invocations() >= 3, "the input should span several mini-batches"
    assert [r[0] for r in out] == ids  # output row i is input row i
    assert all(len(r) == 3 and r[1] in (">50K", "<=50K") for r in out)
    # Requests may arrive in any order (two in flight), but together they are the features of every
    # record exactly once, without the ID column.
    sent = Counter(line.decode() for body in proxy.bodies for line in body.splitlines())
    assert sent == Counter(",".join(r) for r in rows)


def test_output_equals_the_realtime_endpoint(tmp_path: Path, container: ServeRun) -> None:
    rows = ROWS[:300]
    write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(len(rows))])
    run(tmp_path / "in.csv", tmp_path / "out", container.url, id_columns=("0",))
    batch = read_out(tmp_path / "out" / "in.csv.out")
    for i, row in enumerate(rows):
        record = _json_record(row)
        answer = requests.post(f"{container.url}/invocations", json=record, timeout=30)
        assert answer.status_code == 200, answer.text
        realtime = answer.json()["predictions"][0]
        assert batch[i][1] == realtime["label"], (i, batch[i], realtime)
        assert abs(float(batch[i][2]) - realtime["probability"]) <= 1e-12, (i, batch[i], realtime)


def _json_record(row: list[str]) -> dict[str, object]:
    """A CSV row as a real-time JSON client sends it (numbers as numbers, "?" as null)."""
    record: dict[str, object] = {}
    for feature, value in zip(SCHEMA.features, row, strict=True):
        if value in MISSING_TOKENS:
            record[feature.name] = None
        elif isinstance(feature, NumericFeature):
            record[feature.name] = float(value)
        else:
            record[feature.name] = value
    return record


def test_output_matches_the_golden_predictions(
    tmp_path: Path, container: ServeRun, released_model_dir
) -> None:
    fixture = golden()
    cases = fixture["cases"]
    (tmp_path / "golden.csv").write_text(csv_body(cases, header=False))
    run(tmp_path / "golden.csv", tmp_path / "out", container.url)
    out = read_out(tmp_path / "out" / "golden.csv.out")
    manifest = json.loads((released_model_dir / "manifest.json").read_text())
    assert_matches_golden(
        [float(r[1]) for r in out],
        [r[0] for r in out],
        cases,
        tolerance("auto", manifest),
        float(manifest["threshold"]) if "threshold" in manifest else fixture["threshold"],
    )


def test_header_is_resent_with_every_mini_batch_and_named_ids_work(tmp_path: Path, proxy) -> None:
    n = 25_000
    rows = [ROWS[i % len(ROWS)] for i in range(n)]
    write_rows(tmp_path / "in.csv", rows, [f"id{i}" for i in range(n)], header=True)
    run(tmp_path / "in.csv", tmp_path / "out", proxy.url, id_columns=("id",))
    out = read_out(tmp_path / "out" / "in.csv.out")
    assert out[0] == ["id", "label", "probability"]
    assert [r[0] for r in out[1:]] == [f"id{i}" for i in range(n)]
    assert proxy.invocations() >= 2
    header = ",".join(SCHEMA.names).encode()
    assert all(body.split(b"\n", 1)[0] == header for body in proxy.bodies)


def test_json_lines_with_id_keys(tmp_path: Path, container: ServeRun) -> None:
    records = [_json_record(row) for row in ROWS[:50]]
    lines = [orjson.dumps({"key": f"k{i}", **r}) for i, r in enumerate(records)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run(tmp_path / "in.jsonl", tmp_path / "out", container.url, id_columns=("key",))
    out = [orjson.loads(line) for line in (tmp_path / "out" / "in.jsonl.out").read_bytes().splitlines()]
    assert [o["key"] for o in out] == [f"k{i}" for i in range(50)]
    assert all(set(o) == {"key", "label", "probability"} for o in out)


def test_empty_and_header_only_inputs(tmp_path: Path, proxy) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.csv").write_bytes(b"")
    (tmp_path / "in" / "blank.csv").write_bytes(b"\n  \n")
    (tmp_path / "in" / "header.csv").write_text("id," + ",".join(SCHEMA.names) + "\n")
    summary = run(tmp_path / "in", tmp_path / "out", proxy.url, id_columns=("id",))
    assert summary.rows == 0 and proxy.invocations() == 0
    assert (tmp_path / "out" / "empty.csv.out").read_bytes() == b""
    assert (tmp_path / "out" / "blank.csv.out").read_bytes() == b""
    assert (tmp_path / "out" / "header.csv.out").read_text() == "id,label,probability\n"


def test_truncated_last_line_fails_by_default_and_is_listed_with_skip_invalid(
    tmp_path: Path, container
) -> None:
    write_rows(tmp_path / "in.csv", ROWS[:100], [str(i) for i in range(100)])
    whole = (tmp_path / "in.csv").read_bytes()
    (tmp_path / "in.csv").write_bytes(whole[:-30])  # cut the last record mid-line, no newline
    with pytest.raises(BadRecord) as failure:
        run(tmp_path / "in.csv", tmp_path / "out", container.url, id_columns=("0",))
    assert failure.value.path == "in.csv" and failure.value.line == 100
    assert "line 100" in str(failure.value)
    assert listing(tmp_path / "out") == []  # no .out, no partial
    summary = run(tmp_path / "in.csv", tmp_path / "out", container.url, id_columns=("0",), skip_invalid=True)
    assert summary.rows == 99 and summary.errors == 1
    assert [r[0] for r in read_out(tmp_path / "out" / "in.csv.out")] == [str(i) for i in range(99)]
    errors = read_out(tmp_path / "out" / "in.csv.errors.csv")
    assert errors[0] == ["file", "line", "field", "problem", "message"]
    assert errors[1][:2] == ["in.csv", "100"]


def test_bad_records_name_file_line_and_field(tmp_path: Path, container: ServeRun) -> None:
    rows = [list(r) for r in ROWS[:40]]
    rows[16][0] = "300"  # age out of range, input line 17
    write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(40)])
    with pytest.raises(BadRecord) as failure:
        run(tmp_path / "in.csv", tmp_path / "out", container.url, id_columns=("0",))
    assert (failure.value.path, failure.value.line, failure.value.field) == ("in.csv", 17, "age")
    assert failure.value.problem == "out_of_range"
    assert str(failure.value).startswith("invalid record: in.csv line 17, field 'age': out_of_range")


def test_skip_invalid_scores_every_valid_row_beyond_the_containers_100_problem_cap(
    tmp_path: Path, proxy
) -> None:
    n = 1000
    rows = [list(ROWS[i]) for i in range(n)]
    bad = set(range(3, n, 4))  # 250 invalid rows in one mini-batch: more than the 100 reported per answer
    for i in bad:
        rows[i][SCHEMA.names.index("hours_per_week")] = "many"
    rows[500] = rows[500][:5]  # and one short row
    bad.add(500)
    write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(n)])
    summary = run(tmp_path / "in.csv", tmp_path / "out", proxy.url, id_columns=("0",), skip_invalid=True)
    assert summary.errors == len(bad) and summary.rows == n - len(bad)
    out = read_out(tmp_path / "out" / "in.csv.out")
    assert [r[0] for r in out] == [str(i) for i in range(n) if i not in bad]
    errors = read_out(tmp_path / "out" / "in.csv.errors.csv")[1:]
    assert sorted(int(e[1]) for e in errors) == sorted(i + 1 for i in bad)
    assert {e[2] for e in errors if e[1] != "501"} == {"hours_per_week"}
    assert all(e[3] == "wrong_type" for e in errors if e[1] != "501")
    assert proxy.invocations() >= 4  # answer, re-send, ... until the rest is accepted
    # The valid rows score as they do alone.
    alone = run(
        write_rows(tmp_path / "valid.csv", [ROWS[0]], ["0"]), tmp_path / "o2", proxy.url, id_columns=("0",)
    )
    assert alone.rows == 1 and read_out(tmp_path / "o2" / "valid.csv.out")[0] == out[0]


def test_a_malformed_line_is_isolated(tmp_path: Path, container: ServeRun) -> None:
    rows = [list(ROWS[i]) for i in range(64)]
    write_rows(tmp_path / "in.csv", rows)
    lines = (tmp_path / "in.csv").read_bytes().split(b"\n")
    lines[40] = b'"unterminated,' + lines[40]  # the container answers malformed_body, naming no record
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines))
    with pytest.raises(BadRecord) as failure:
        run(tmp_path / "in.csv", tmp_path / "out", container.url)
    assert failure.value.line == 41 and failure.value.problem == "malformed_body"
    summary = run(tmp_path / "in.csv", tmp_path / "out", container.url, skip_invalid=True)
    assert summary.rows == 63 and summary.errors == 1


def _exact_lines(total: int) -> list[bytes]:
    """Valid record lines whose bytes, each with "\\n", add up to exactly ``total``."""
    base = ",".join(ROWS[0]).encode() + b"\n"
    count = total // len(base)
    lines = [base] * count
    short = total - count * len(base)
    if short:  # widen the last line's age (39 -> 39.000...) by the missing bytes
        age, rest = lines[-1].split(b",", 1)
        pad = short if b"." in age else short - 1
        lines[-1] = age + (b"." if b"." not in age else b"") + b"0" * pad + b"," + rest
    assert sum(map(len, lines)) == total
    return lines


def test_max_payload_boundary(tmp_path: Path, proxy) -> None:
    limit = 1 * MIB  # the container's own MAX_PAYLOAD_MB
    (tmp_path / "at.csv").write_bytes(b"".join(_exact_lines(limit)))
    run(tmp_path / "at.csv", tmp_path / "out", proxy.url)
    assert [len(b) for b in proxy.bodies] == [limit]  # one request, exactly at the limit, accepted
    assert proxy.statuses == [200]

    proxy.bodies.clear()
    proxy.statuses.clear()
    over = _exact_lines(limit + 1)
    (tmp_path / "over.csv").write_bytes(b"".join(over))
    summary = run(tmp_path / "over.csv", tmp_path / "out", proxy.url)
    # Two requests (in flight together, so in either order): all but the last line, then the last.
    assert sorted(len(b) for b in proxy.bodies) == sorted([limit + 1 - len(over[-1]), len(over[-1])])
    assert proxy.statuses == [200, 200] and summary.rows == len(over)

    # A single line over the limit is a bad record, not an oversized request.
    (tmp_path / "huge.csv").write_bytes(b"39" + b"0" * limit + b"\n")
    with pytest.raises(BadRecord, match="record_too_large"):
        run(tmp_path / "huge.csv", tmp_path / "out", proxy.url)


@pytest.mark.parametrize("override", [None, 1])
def test_concurrency_is_honoured(tmp_path: Path, proxy, override: int | None) -> None:
    rows = [ROWS[i % len(ROWS)] for i in range(80_000)]  # ~7 MB: 7+ mini-batches of 1 MiB
    write_rows(tmp_path / "in.csv", rows)
    summary = run(tmp_path / "in.csv", tmp_path / "out", proxy.url, max_concurrent_transforms=override)
    expected = override or 2  # the container's MaxConcurrentTransforms is its worker count
    assert summary.max_concurrent_transforms == expected
    assert proxy.invocations() >= 7
    assert proxy.max_in_flight == expected


def test_retries_5xx_and_dropped_connections(tmp_path: Path, proxy) -> None:
    rows = [ROWS[i % len(ROWS)] for i in range(20_000)]
    write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(len(rows))])
    clean = run(tmp_path / "in.csv", tmp_path / "clean", proxy.url, id_columns=("0",))
    proxy.faults.extend(["503", "reset", "502"])
    faulty = run(tmp_path / "in.csv", tmp_path / "faulty", proxy.url, id_columns=("0",))
    assert faulty.retries == 3 and clean.retries == 0
    assert (tmp_path / "faulty" / "in.csv.out").read_bytes() == (
        tmp_path / "clean" / "in.csv.out"
    ).read_bytes()
    # Retries are bounded: a container that keeps failing fails the job, leaving no .out.
    proxy.faults.extend(["503"] * 10)
    with pytest.raises(ContainerUnavailable, match="failed 2 times"):
        run(tmp_path / "in.csv", tmp_path / "broken", proxy.url, id_columns=("0",), max_retries=1)
    assert listing(tmp_path / "broken") == []


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (fields 14 and 15 of its stat line)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_retry_after_a_killed_worker(tmp_path: Path, released_model_dir, proxy_factory) -> None:
    server = ServeRun(released_model_dir, tmp_path / "logs", workers=1, env={"MAX_PAYLOAD_MB": "4"})
    server.start()
    try:
        proxy = proxy_factory(server.url)
        victims: list[int] = []

        def kill_worker() -> None:
            # Only once the worker is working on this request (a 4 MiB body, ~45,000 rows, takes
            # ~100 ms of CPU): killed while nginx still receives the body, the worker would be
            # replaced before the request reaches it, which is not what this test is about.
            victim = server.gunicorn_workers()[0]
            started, deadline = _cpu_seconds(victim), time.monotonic() + 10
            while _cpu_seconds(victim) - started < 0.01 and time.monotonic() < deadline:
                time.sleep(0.001)
            victims.append(victim)
            os.kill(victim, signal.SIGKILL)

        proxy.during[2] = kill_worker
        rows = [ROWS[i % len(ROWS)] for i in range(150_000)]  # 4 requests
        write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(len(rows))])
        summary = run(tmp_path / "in.csv", tmp_path / "out", proxy.url, id_columns=("0",))
        server.remember_tree()
    finally:
        server.stop()
    assert victims, "the worker was not killed"
    assert 502 in proxy.statuses, proxy.statuses  # nginx's answer for the request the worker died on
    assert summary.retries >= 1 and summary.rows == len(rows)
    assert [r[0] for r in read_out(tmp_path / "out" / "in.csv.out")] == [str(i) for i in range(len(rows))]


def test_failed_job_leaves_only_complete_outputs_and_resume_finishes_it(tmp_path: Path, proxy) -> None:
    (tmp_path / "in").mkdir()
    write_rows(tmp_path / "in" / "a.csv", ROWS[:500], [str(i) for i in range(500)])
    rows = [list(ROWS[i % len(ROWS)]) for i in range(30_000)]
    rows[-1][0] = "-5"  # the last record of b.csv is bad: b's first mini-batches were already written
    write_rows(tmp_path / "in" / "b.csv", rows, [str(i) for i in range(len(rows))])
    with pytest.raises(BadRecord, match=r"b\.csv line 30000"):
        run(tmp_path / "in", tmp_path / "out", proxy.url, id_columns=("0",))
    assert listing(tmp_path / "out") == ["a.csv.out"]  # no b.csv.out, no hidden partial
    first = (tmp_path / "out" / "a.csv.out").stat().st_mtime_ns
    rows[-1][0] = "45"
    write_rows(tmp_path / "in" / "b.csv", rows, [str(i) for i in range(len(rows))])
    summary = run(tmp_path / "in", tmp_path / "out", proxy.url, id_columns=("0",), resume=True)
    assert [f.skipped for f in summary.files] == [True, False]
    assert (tmp_path / "out" / "a.csv.out").stat().st_mtime_ns == first
    assert len(read_out(tmp_path / "out" / "b.csv.out")) == 30_000
    assert listing(tmp_path / "out") == ["a.csv.out", "b.csv.out"]


def test_cli_reports_the_bad_record_and_exits_1(tmp_path: Path, container: ServeRun) -> None:
    rows = [list(r) for r in ROWS[:10]]
    rows[3][SCHEMA.names.index("sex")] = "7"  # not one of the categories: scored as unknown, valid
    rows[3][SCHEMA.names.index("hours_per_week")] = "lots"
    write_rows(tmp_path / "in.csv", rows, [str(i) for i in range(10)])
    command = [sys.executable, "-m", "pipeline", "batch", str(tmp_path / "in.csv"), str(tmp_path / "out"),
               "--id-columns", "0", "--container-url", container.url, "--no-progress"]  # fmt: skip
    failed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert failed.returncode == 1, failed.stderr
    assert "in.csv line 4, field 'hours_per_week': wrong_type" in failed.stderr
    assert "Traceback" not in failed.stderr
    ok = subprocess.run(
        [*command, "--skip-invalid", "--json"], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert (summary["rows"], summary["errors"]) == (9, 1)
