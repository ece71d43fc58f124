"""A stand-in for the Cloud Run Admin API v2 (worker pools) and the metadata server's token.

It serves what the central site's scaler and fleet view call, records every PATCH per worker
pool, and turns the requested
instance count into real local workers: the rendered entrypoint.sh, started through
harness.start_worker. On a scale-in it stops the newest workers with SIGTERM, as Cloud Run
stops instances (which ones is Cloud Run's choice; the newest is as good as any).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import harness

POOL_PATH = re.compile(r"^/v2/projects/([^/]+)/locations/([^/]+)/workerPools/([^/?]+)(\?.*)?$")


@dataclass
class Instance:
    worker: harness.Worker
    started: float
    stopped: float | None = None


@dataclass
class WorkerPoolStandIn:
    """One worker pool: `start_instance(n)` starts the n-th instance; PATCHes set the count."""

    name: str
    start_instance: Callable[[int], harness.Worker]
    patches: list[int] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started_total: int = 0

    # ------------------------------------------------------------------ the instances

    def set_count(self, count: int) -> None:
        with self._lock:
            self.patches.append(count)
            self.count = count
            running = [i for i in self.instances if i.stopped is None]
            for _ in range(count - len(running)):
                self._started_total += 1
                self.instances.append(Instance(self.start_instance(self._started_total), time.monotonic()))
            stopping = running[count:] if count < len(running) else []
            for instance in reversed(stopping):  # the newest first
                instance.stopped = time.monotonic()
        for instance in stopping:  # Cloud Run answers at once and stops the instances after
            threading.Thread(target=instance.worker.stop, daemon=True).start()

    def running(self) -> list[Instance]:
        return [i for i in self.instances if i.stopped is None]

    def instance_seconds(self, until: float) -> float:
        return sum((i.stopped or until) - i.started for i in self.instances)

    def close(self) -> None:
        for instance in self.instances:
            if instance.stopped is None:
                instance.stopped = time.monotonic()
            instance.worker.stop()


@dataclass
class CloudRunStandIn:
    """The API for several worker pools, on one loopback port: one token, each pool by its name."""

    pools: dict[str, WorkerPoolStandIn]
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    refused: list[str] = field(default_factory=list)
    reads: int = 0
    _server: ThreadingHTTPServer | None = None

    def serve(self) -> str:
        """Start serving on a free loopback port; its base URL (for the run API and the metadata server)."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def refuse(self, status: int, code: str, why: str) -> None:
                api.refused.append(f"{self.command} {self.path}: {why}")
                self.reply(status, {"error": {"code": status, "status": code}})

            def pool(self) -> WorkerPoolStandIn | None:
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    self.refuse(401, "UNAUTHENTICATED", "no or wrong bearer token")
                    return None
                match = POOL_PATH.match(self.path)
                if not match or match.group(3) not in api.pools:
                    self.refuse(404, "NOT_FOUND", "no such worker pool")
                    return None
                return api.pools[match.group(3)]

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    if self.headers.get("Metadata-Flavor") != "Google":
                        self.refuse(403, "PERMISSION_DENIED", "token request without Metadata-Flavor: Google")
                        return
                    self.reply(200, {"access_token": api.token, "expires_in": 3599, "token_type": "Bearer"})
                    return
                if (pool := self.pool()) is not None:
                    api.reads += 1
                    scaling = {"manualInstanceCount": pool.count} if pool.count else {}  # proto3 JSON omits 0
                    self.reply(200, {"name": pool.name, "scaling": scaling})

            def do_PATCH(self) -> None:  # noqa: N802
                if (pool := self.pool()) is None:
                    return
                if "updateMask=scaling.manualInstanceCount" not in self.path:
                    self.refuse(400, "INVALID_ARGUMENT", "updateMask is not scaling.manualInstanceCount")
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                count = body.get("scaling", {}).get("manualInstanceCount")
                if not isinstance(count, int) or count < 0:
                    self.refuse(400, "INVALID_ARGUMENT", f"body without scaling.manualInstanceCount: {body}")
                    return
                pool.set_count(count)
                self.reply(200, {"name": "operations/stand-in", "done": False})

        self._server = ThreadingHTTPServer(("127.0.0.1", harness.free_port()), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        for pool in self.pools.values():
            pool.close()
