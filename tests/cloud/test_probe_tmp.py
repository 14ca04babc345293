from iam_lifecycle import moto_environment, realtime_lifecycle, serverless_lifecycle
import collections
def test_probe(tmp_path):
    with moto_environment() as mp:
        run = realtime_lifecycle(tmp_path / "rt", mp)
        run2 = serverless_lifecycle(tmp_path / "sl", mp)
    ops = collections.Counter((c.service, c.operation) for c in run.calls + run2.calls)
    for k, v in sorted(ops.items()): print(k, v)
    print(run.log, run2.log, run.docker)
