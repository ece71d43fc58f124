"""Start-up steps of the Edge worker container (stdlib only).

    python3 startup.py worker-name PREFIX
        Print a worker name unique to this instance: PREFIX-<10 hex>. The suffix
        is derived from the Cloud Run instance id (metadata server); where there
        is none, it is random. The name is the key of the central worker table,
        so two live instances must never share it.

    python3 startup.py wait-for-api RPCAPI_URL SECONDS
        Wait until GET <api base>/health answers 200, at most SECONDS.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

METADATA_ID_URL = "http://metadata.google.internal/computeMetadata/v1/instance/id"


def instance_id(url: str, timeout: float = 1.0) -> str | None:
    """The Cloud Run instance id, or None outside Google Cloud."""
    if not url:
        return None
    request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})  # noqa: S310 - http metadata URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - fixed http URL
            value = response.read().decode().strip()
    except (OSError, ValueError):
        return None
    return value or None


def worker_name(prefix: str) -> str:
    found = instance_id(os.environ.get("EDGE_METADATA_URL", METADATA_ID_URL))
    suffix = hashlib.sha256(found.encode()).hexdigest()[:10] if found else secrets.token_hex(5)
    return f"{prefix}-{suffix}"


def health_url(rpcapi_url: str) -> str:
    return rpcapi_url.removesuffix("/rpcapi") + "/health"


def wait_for_api(rpcapi_url: str, seconds: float) -> bool:
    url = health_url(rpcapi_url)
    deadline = time.monotonic() + seconds
    last_error = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - URL validated at render time
                if response.status == 200:
                    print(f"startup: Edge API is up at {url}", file=sys.stderr)
                    return True
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            last_error = str(getattr(error, "reason", error))
        if time.monotonic() >= deadline:
            print(
                f"startup: Edge API not reachable at {url} after {seconds:g} s ({last_error})",
                file=sys.stderr,
            )
            return False
        time.sleep(1)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "worker-name":
        print(worker_name(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "wait-for-api":
        return 0 if wait_for_api(argv[1], float(argv[2])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
