"""A stand-in for the Cloud Run Admin API v2 (one worker pool) and the metadata server's token.

It serves what the central site's scaler calls, records every PATCH, and turns the requested
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
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    patches: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _started_total: int = 0

    # ------------------------------------------------------------------ the server

    def serve(self) -> str:
        """Start serving on a free loopback port; its base URL (for the run API and the metadata server)."""
        pool = self

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

            def authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {pool.token}":
                    pool.refused.append(f"{self.command} {self.path}: no or wrong bearer token")
                    self.reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                    return False
                return True

            def pool_path(self) -> bool:
                match = POOL_PATH.match(self.path)
                if not match or match.group(3) != pool.name:
                    pool.refused.append(f"{self.command} {self.path}: not this worker pool")
                    self.reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    if self.headers.get("Metadata-Flavor") != "Google":
                        pool.refused.append("token request without Metadata-Flavor: Google")
                        self.reply(403, {})
                        return
                    self.reply(200, {"access_token": pool.token, "expires_in": 3599, "token_type": "Bearer"})
                    return
                if self.authorized() and self.pool_path():
                    scaling = {"manualInstanceCount": pool.count} if pool.count else {}  # proto3 JSON omits 0
                    self.reply(200, {"name": pool.name, "scaling": scaling})

            def do_PATCH(self) -> None:  # noqa: N802
                if not (self.authorized() and self.pool_path()):
                    return
                if "updateMask=scaling.manualInstanceCount" not in self.path:
                    pool.refused.append(f"PATCH {self.path}: updateMask is not scaling.manualInstanceCount")
                    self.reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                count = body.get("scaling", {}).get("manualInstanceCount")
                if not isinstance(count, int) or count < 0:
                    pool.refused.append(f"PATCH body without scaling.manualInstanceCount: {body}")
                    self.reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
                    return
                pool.set_count(count)
                self.reply(200, {"name": "operations/stand-in", "done": False})

        self._server = ThreadingHTTPServer(("127.0.0.1", harness.free_port()), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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
        if self._server is not None:
            self._server.shutdown()
        for instance in self.instances:
            if instance.stopped is None:
                instance.stopped = time.monotonic()
            instance.worker.stop()
