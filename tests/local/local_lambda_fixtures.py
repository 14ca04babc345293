"""Lambda handlers that misbehave on purpose, run by the local gateway's real worker processes.

Selected per request by the ``X-Test-Behaviour`` header, so one gateway can exercise them all.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    behaviour = (event.get("headers") or {}).get("X-Test-Behaviour", "echo")
    if behaviour == "echo":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(
                {
                    "event": event,
                    "pid": os.getpid(),
                    "env": {
                        k: v for k, v in os.environ.items() if k.startswith(("AWS_", "ENDPOINT_", "LOCAL_"))
                    },
                    "remaining_ms": context.get_remaining_time_in_millis(),
                    "request_id": context.aws_request_id,
                }
            ),
        }
    if behaviour == "extra-key":  # the classic mistake: a key API Gateway does not know
        return {"statusCode": 500, "message": "something failed"}
    if behaviour == "string-status":
        return {"statusCode": "200", "body": "ok"}
    if behaviour == "dict-body":
        return {"statusCode": 200, "body": {"not": "a string"}}
    if behaviour == "not-a-dict":
        return ["statusCode", 200]
    if behaviour == "raise":
        raise RuntimeError("the handler failed")
    if behaviour == "sleep":
        time.sleep(30)
        return {"statusCode": 200, "body": "late"}
    if behaviour == "binary":
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png"},
            "body": "iVBORw0K",
            "isBase64Encoded": True,
        }
    return {"statusCode": 400, "body": f"unknown behaviour {behaviour}"}
