"""Record the report's terminal sessions from a real run of the local cloud.

Sessions, each saved as ``captures/local/NN_name.json``: the deploy plan (a dry run, no AWS calls);
starting the stack; predictions through the local API Gateway with an API key; refused requests (no key,
a wrong key, an invalid record); and the usage plan's throttling, shown on a stack restarted with a
deliberately tight plan (the override is on the command line, so the picture says so). The stack is always
stopped at the end, even on failure.

The API key is created with the project's key store (``pipeline.local.demo.demo_key``), read into the
``API_KEY`` variable by a shown ``export`` line, and scrubbed from every output.
"""

from __future__ import annotations

from pathlib import Path

from .capture import save
from .sessions import CURL, CaptureError, expect, new_recorder, record_requests, use_key, write_samples

THROTTLE_OVERRIDES = "--set api.throttle_rate=5 --set api.throttle_burst=10"
WHERE = "LOCAL"


def record(destination: Path) -> list[Path]:
    """Run the local cloud, record the sessions into ``destination`` and stop the stack; returns the files."""
    from pipeline.local.demo import demo_key
    from pipeline.local.settings import load_local_settings
    from pipeline.local.stack import Stack

    write_samples()
    settings = load_local_settings()
    if Stack(settings).running() is not None:
        print("report: stopping the running local stack to record a fresh run")
        Stack(settings).down(quiet=True)
    recorder = new_recorder()
    saved: list[Path] = []
    try:
        expect(recorder.run("python -m pipeline deploy --dry-run"), "Dry run")
        saved.append(
            save(
                recorder.capture(
                    "00_deploy_plan",
                    "What 'deploy' would create in AWS (dry run: no AWS calls)",
                    WHERE,
                    notes="The deploy command's plan, printed without credentials; it was not executed "
                    "against AWS for this report.",
                ),
                destination,
            )
        )
        expect(recorder.run("python -m pipeline local up"), "the local stack is up")
        saved.append(save(recorder.capture("01_local_up", "Starting the local cloud", WHERE), destination))

        info = Stack(settings).running()
        if info is None:
            raise CaptureError("the local stack is not running after 'local up'")
        key_file, _ = demo_key(settings)
        exports = use_key(recorder, f"{info.gateway_url}/{info.stage}", key_file)
        saved += record_requests(recorder, exports, WHERE, destination, "the local API Gateway")

        recorder.run("python -m pipeline local down")
        expect(recorder.run(f"python -m pipeline local up {THROTTLE_OVERRIDES}"), "the local stack is up")
        recorder.run(exports)
        # Parallel, so the burst is exhausted however slow the machine is.
        expect(
            recorder.run(
                "seq 30 | xargs -P 6 -I{} curl -s -o /dev/null -w '%{http_code}\\n' "
                '-H "x-api-key: $API_KEY" "$API/health" | sort | uniq -c'
            ),
            " 429",
        )
        # After a pause long enough to refill several tokens a request passes again; the caption says
        # so, and the step carries that status, so a different outcome fails the recording and the build.
        recorder.run(f'sleep 1; {CURL} -H "x-api-key: $API_KEY" "$API/health"', expect_status=200)
        recorder.run("python -m pipeline local down")
        saved.append(
            save(
                recorder.capture(
                    "04_throttling",
                    "Throttling by the usage plan (restarted at 5 requests/s, burst 10)",
                    WHERE,
                    notes="30 requests, 6 at a time: the plan lets the burst (plus what refills meanwhile) "
                    "through and answers the rest with 429. One second later the bucket has refilled "
                    "and a request passes again (200). "
                    "The tight plan is set on the command line to make the limit visible; the deployed "
                    "default is in config/deploy.toml.",
                ),
                destination,
            )
        )
    finally:
        Stack(settings).down(quiet=True)
    return saved
