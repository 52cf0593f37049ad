"""Requests schemathesis found answered with a 5xx, each now an OpenAI-shaped 4xx."""

from __future__ import annotations

import httpx

from hydite_common.devstack import Stack


def test_a_multipart_part_with_malformed_headers_is_a_400(stack: Stack) -> None:
    """A multipart part whose Content-Disposition holds control characters is a 400
    invalid_multipart, not an internal error."""
    boundary = "fuzzboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="\x15\x16"\r\n\r\nvalue\r\n--{boundary}--\r\n'
    ).encode()
    answer = httpx.post(
        stack.base_url + "/v1/images/edits",
        content=body,
        headers={
            "Authorization": f"Bearer {stack.config.master_key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_multipart"
