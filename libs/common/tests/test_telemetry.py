"""JSON log lines: one object per line, redacted, with the request id of the task serving one."""

from __future__ import annotations

import asyncio
import logging

import orjson

from hydite_common.telemetry import LOGGED_REQUEST_ID, JsonFormatter


def _line(message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("hydite.test", logging.WARNING, __file__, 1, message, args, None)
    parsed: dict[str, object] = orjson.loads(JsonFormatter("dataplane").format(record))
    return parsed


def test_a_line_logged_while_serving_names_the_request_and_no_key() -> None:
    """Inside a request's task the line has its id; outside, none; a key is cut to its prefix."""

    async def serve(request_id: str) -> dict[str, object]:
        LOGGED_REQUEST_ID.set(request_id)
        await asyncio.sleep(0)
        return _line("retrying with key %s", "sk-hydite-0123456789abcdef")

    async def main() -> list[dict[str, object]]:
        return list(await asyncio.gather(serve("req-1"), serve("req-2")))

    first, second = asyncio.run(main())
    assert (first["request_id"], second["request_id"]) == ("req-1", "req-2")
    assert "0123456789abcdef" not in str(first["msg"]) and first["service"] == "dataplane"
    assert "request_id" not in _line("outside any request")
