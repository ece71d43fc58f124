"""Cloud Storage as a worker on Cloud Run sees it: a metadata server that hands out the runtime
service account's token, and the Cloud Storage JSON API (gcp-storage-emulator from PyPI) behind a
recording front that plays IAM. The front answers 401 to a call without that token, and 403 to a
call the grant deploy.sh makes does not allow, judged by the permission model the gcloud
stand-in uses (tests/gcloud_stub/permissions.py): roles/storage.objectUser with the condition
resource.name.startsWith(".../objects/PREFIX"), so no bucket read and no listing, and a
replaced object needs delete as well as create.

    with cloud_storage(bucket, prefix, logs) as gcs:
        worker env: gcs.worker_env()   (GCE_METADATA_HOST, GCE_METADATA_IP, STORAGE_EMULATOR_HOST)
        gcs.objects(prefix), gcs.read(name), gcs.calls, gcs.uploads, gcs.token_requests
        gcs.upload_delay = 2.0 (a slow link), gcs.upload_arrived (set when an upload reaches it)
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gcloud_stub.permissions import Request, bucket_request, granting, object_request

from support import harness

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that closes its kept-alive connection is normal here, not an error to print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class CloudStorage:
    bucket: str
    prefix: str  # the objects the runtime service account may read and write
    emulator_port: int
    project: str = "my-gcp-project"
    service_account: str = "team-c-edge@my-gcp-project.iam.gserviceaccount.com"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token_requests: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "METHOD PATH -> STATUS" through the front
    uploads: list[tuple[str, str]] = field(default_factory=list)  # (object name, sha256 of its bytes), stored
    upload_delay: float = 0.0  # seconds an upload waits before it is stored: a slow link
    upload_arrived: threading.Event = field(default_factory=threading.Event)
    unauthorized: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)  # "METHOD PATH": outside the prefix
    metadata_url: str = ""
    storage_url: str = ""
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def worker_env(self) -> dict[str, str]:
        """What Cloud Run gives an instance, pointed here: google-auth finds the metadata server
        (Application Default Credentials), google-cloud-storage the JSON API."""
        host = self.metadata_url.removeprefix("http://")
        return {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "STORAGE_EMULATOR_HOST": self.storage_url}

    # ------------------------------------------------------------------ reading what landed

    def objects(self, prefix: str = "") -> list[str]:
        query = urllib.parse.urlencode({"prefix": prefix})
        url = f"http://127.0.0.1:{self.emulator_port}/storage/v1/b/{self.bucket}/o?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return sorted(item["name"] for item in json.load(response).get("items", []))

    def read(self, name: str) -> str:
        quoted = urllib.parse.quote(name, safe="")
        url = f"http://127.0.0.1:{self.emulator_port}/download/storage/v1/b/{self.bucket}/o/{quoted}?alt=media"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()

    def grant(self) -> str:
        """The runtime account's binding on the log bucket, as deploy.sh makes it (a world's "held")."""
        condition = f'resource.name.startsWith("projects/_/buckets/{self.bucket}/objects/{self.prefix}")'
        return f"bucket:gs://{self.bucket}|roles/storage.objectUser|serviceAccount:{self.service_account}|{condition}"

    def requests_of(self, method: str, path: str, body: bytes | None) -> list[Request]:
        """The permission checks Cloud Storage makes for one JSON API call
        (https://cloud.google.com/storage/docs/access-control/iam-json)."""
        parts = urllib.parse.urlsplit(path)
        route = parts.path.removeprefix("/download").removeprefix("/upload")
        base = f"/storage/v1/b/{self.bucket}/o"
        if route.startswith(base + "/"):
            name = urllib.parse.unquote(route[len(base) + 1:])
            permission = {"GET": "storage.objects.get", "DELETE": "storage.objects.delete"}.get(
                method, "storage.objects.update")
            return [object_request(permission, self.bucket, name)]
        if route == base and method == "POST":  # an upload: the name is in the query or the metadata part
            in_query = urllib.parse.parse_qs(parts.query).get("name", [])
            in_metadata = [n.decode() for n in re.findall(rb'"name"\s*:\s*"([^"]+)"', body or b"")]
            name = (in_query + in_metadata + [""])[0]
            requests = [object_request("storage.objects.create", self.bucket, name)]
            if name in self.objects(name):  # replacing an object needs delete too
                requests.append(object_request("storage.objects.delete", self.bucket, name))
            return requests
        if route == base:
            prefix = urllib.parse.parse_qs(parts.query).get("prefix", [""])[0]
            return [bucket_request("storage.objects.list", self.bucket, list_prefix=prefix)]
        return [bucket_request("storage.buckets.get", self.bucket)]

    def allowed(self, method: str, path: str, body: bytes | None) -> bool:
        world = {"held": [self.grant()], "projects": [self.project]}
        member = f"serviceAccount:{self.service_account}"
        return all(granting(world, member, request) for request in self.requests_of(method, path, body))

    # ------------------------------------------------------------------ the servers

    def serve(self) -> None:
        self.metadata_url = self._start(self._metadata_handler())
        self.storage_url = self._start(self._storage_handler())

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> str:
        server = _QuietServer(("127.0.0.1", harness.free_port()), handler)
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    def _metadata_handler(self) -> type[BaseHTTPRequestHandler]:
        gcs = self

        class Metadata(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: str, content_type: str = "application/text") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.headers.get("Metadata-Flavor") != "Google":
                    self.reply(403, "Missing Metadata-Flavor:Google header.")
                    return
                path = urllib.parse.urlsplit(self.path).path
                # google-auth asks for "default" first, then by the account's email.
                path = path.replace(f"/service-accounts/{gcs.service_account}/", "/service-accounts/default/")
                account = "/computeMetadata/v1/instance/service-accounts/default"
                if path == "/":
                    self.reply(200, "computeMetadata/\n")
                elif path == "/computeMetadata/v1/project/project-id":
                    self.reply(200, gcs.project)
                elif path == f"{account}/":
                    info = {"aliases": ["default"], "email": gcs.service_account,
                            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                    self.reply(200, json.dumps(info), "application/json")
                elif path == f"{account}/email":
                    self.reply(200, gcs.service_account)
                elif path == f"{account}/token":
                    gcs.token_requests.append(self.path)
                    token = {"access_token": gcs.token, "expires_in": 3599, "token_type": "Bearer"}
                    self.reply(200, json.dumps(token), "application/json")
                else:
                    self.reply(404, "not served by this stand-in")

        return Metadata

    def _storage_handler(self) -> type[BaseHTTPRequestHandler]:
        gcs = self

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.headers.get("Authorization") != f"Bearer {gcs.token}":
                    gcs.unauthorized.append(f"{self.command} {self.path}")
                    self.refuse(401, "no or wrong bearer token")
                    return
                if not gcs.allowed(self.command, self.path, body):
                    gcs.denied.append(f"{self.command} {urllib.parse.urlsplit(self.path).path}")
                    self.refuse(403, f"{gcs.service_account} does not have storage access here")
                    return
                if self.command == "POST":
                    gcs.upload_arrived.set()
                    time.sleep(gcs.upload_delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection("127.0.0.1", gcs.emulator_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                path = urllib.parse.urlsplit(self.path).path
                gcs.calls.append(f"{self.command} {path} -> {response.status}")
                if self.command == "POST" and response.status == 200 and path.startswith("/upload/"):
                    name = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("name", [""])[0]
                    gcs.uploads.append((name, hashlib.sha256(body or b"").hexdigest()))
                if response.status == 404 and path.startswith("/download/"):
                    # Cloud Storage's own words for a missing object, which the log handlers look for
                    # ("No such object"); the emulator answers without them.
                    name = urllib.parse.unquote(path.rsplit("/o/", 1)[1])
                    self.refuse(404, f"No such object: {gcs.bucket}/{name}", text=True)
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def refuse(self, status: int, message: str, text: bool = False) -> None:
                error = {"error": {"code": status, "message": message}}
                data = message.encode() if text else json.dumps(error).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=UTF-8" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one  # noqa: N815

        return Front


@contextmanager
def cloud_storage(bucket: str, prefix: str, logs: Path) -> Iterator[CloudStorage]:
    """The emulator (in memory, with `bucket`) and its metadata server and front, for one test."""
    port = harness.free_port()
    emulator = harness.start(
        "gcp-storage-emulator",
        [str(Path(sys.executable).parent / "gcp-storage-emulator"), "start", "--host", "127.0.0.1",
         "--port", str(port), "--in-memory", "--default-bucket", bucket],
        {"PATH": str(Path(sys.executable).parent)}, logs,
    )
    gcs = CloudStorage(bucket, prefix, port)
    try:
        harness.wait_until("the Cloud Storage emulator", lambda: _lists(gcs), timeout=30)
        gcs.serve()
        yield gcs
    finally:
        gcs.close()
        emulator.stop()


def _lists(gcs: CloudStorage) -> bool:
    try:
        gcs.objects()
    except OSError:
        return False
    return True

