"""Drives the published segment-analytics-python client for clients_python.rs.

Reads a plan on stdin:
    {"host": "http://127.0.0.1:PORT", "write_key": "...",
     "options": {...Client keyword arguments...},
     "calls": [{"method": "track", "args": {...}}, ...]}
(Python's json accepts the literal NaN, which the tests use for a property that Python
serialises as invalid JSON.)

Makes the calls, flushes the queue when not in sync mode, and prints one JSON object:
    {"version": "2.3.4",
     "results": [{"ok": true, "messageId": "..."} | {"error": "APIError", "status": 400, ...}],
     "errors": [...what the client passed to on_error...],
     "requests": [{"status": 200, "authorization": ..., "content_encoding": ..., "body_write_key": ...}]}

The client is used unmodified; the only addition is a response hook on its HTTP session,
which records each request it made and changes nothing.
"""

import gzip
import json
import sys
from importlib.metadata import version

import segment.analytics.request as segment_request
from segment.analytics import Client


def describe(error):
    """An exception as the client reported it: APIError carries status, code, message."""
    return {
        "error": type(error).__name__,
        "status": getattr(error, "status", None),
        "code": getattr(error, "code", None),
        "message": str(getattr(error, "message", error)),
    }


def record_request(requests_made):
    def hook(response, *args, **kwargs):
        request = response.request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        encoding = request.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        try:
            body_write_key = json.loads(body).get("writeKey")
        except ValueError:
            body_write_key = None
        requests_made.append(
            {
                "status": response.status_code,
                "authorization": request.headers.get("Authorization"),
                "content_encoding": encoding,
                "body_write_key": body_write_key,
            }
        )

    return hook


def main():
    plan = json.load(sys.stdin)
    requests_made = []
    segment_request._session.hooks["response"].append(record_request(requests_made))
    errors = []

    def on_error(error, batch):
        errors.append(dict(describe(error), batch_size=len(batch)))

    options = plan.get("options", {})
    client = Client(plan["write_key"], host=plan["host"], on_error=on_error, **options)
    results = []
    for call in plan["calls"]:
        try:
            ok, message = getattr(client, call["method"])(**call["args"])
            results.append({"ok": ok, "messageId": message["messageId"]})
        except Exception as error:  # reported to the test, which decides
            results.append(describe(error))
    if not options.get("sync_mode"):
        client.flush()
    json.dump(
        {
            "version": version("segment-analytics-python"),
            "results": results,
            "errors": errors,
            "requests": requests_made,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
