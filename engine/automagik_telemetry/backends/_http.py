"""One POST with the 0.1 backends' retry rule: 5xx answers and network errors are retried with
exponential back-off (``backoff_base * 2**attempt`` seconds), other answers are final."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3

log = logging.getLogger("automagik_telemetry.backends")


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None  # None: no answer (network trouble)
    detail: str


def post(
    pool: urllib3.PoolManager,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    attempts: int,
    backoff_base: float,
) -> Answer:
    last = Answer(False, None, "not sent")
    for attempt in range(max(attempts, 1)):
        try:
            response = pool.request(
                "POST",
                url,
                body=body,
                headers=dict(headers),
                timeout=urllib3.Timeout(total=timeout),
                retries=False,
                redirect=False,
            )
        except Exception as exc:  # the network, a bad URL: reported, never raised
            last = Answer(False, None, f"{type(exc).__name__}: {exc}")
        else:
            text = response.data[:300].decode("utf-8", "replace").strip()
            exception = response.headers.get("X-ClickHouse-Exception-Code")
            if response.status == 200 and not exception:
                return Answer(True, 200, "")
            last = Answer(False, response.status, f"HTTP {response.status}: {text}")
            if response.status < 500 and response.status != 200:
                return last
        if attempt < attempts - 1:
            time.sleep(backoff_base * (2**attempt))
    return last
