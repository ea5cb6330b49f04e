"""PUT a file to a presigned URL (stdlib urllib), with a few retries.

The instance holds no credentials: the controller presigns one URL per object, so the
agent can write exactly that key and nothing else.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path


class UploadError(Exception):
    """The upload failed for good (bad URL, missing file, repeated HTTP errors)."""


def put_file(
    url: str, path: Path, content_type: str = "application/json", attempts: int = 4
) -> None:
    """Upload `path` to `url`; retry transient failures with a short backoff."""
    if not url.startswith(("http://", "https://")):
        raise UploadError("upload URL must be http(s)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UploadError(f"cannot read {path}: {exc.strerror}") from exc
    last = ""
    for attempt in range(attempts):
        req = urllib.request.Request(
            url, data=data, method="PUT", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                if 200 <= resp.status < 300:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(min(2.0**attempt, 10.0))
    raise UploadError(f"upload of {path.name} failed: {last}")
