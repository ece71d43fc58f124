"""A small reverse proxy on the loopback, like a central site's load balancer under a path prefix.

PrefixProxy(upstream_port, "/airflow", routes=("/edge_worker/", "/execution/")) forwards
http://127.0.0.1:PORT/airflow/edge_worker/... to http://127.0.0.1:UPSTREAM/edge_worker/...
(the prefix stripped), and answers 404 for any path outside its routes: a load balancer
that exposes only some of the api-server's paths to remote workers.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        self.server.seen.append(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}")

    def _forward(self) -> None:
        upstream_path = self.server.route(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if upstream_path is None:
            self.send_error(404, "not routed by this proxy")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        try:
            conn.request(self.command, upstream_path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError as error:
            self.send_error(502, f"upstream: {error}")
            return
        finally:
            conn.close()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # http.server dispatches on do_<METHOD>.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward  # noqa: N815


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port: int, prefix: str, routes: tuple[str, ...]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = upstream_port
        self.prefix = prefix.rstrip("/")
        self.routes = routes
        self.seen: list[str] = []

    def route(self, path: str) -> str | None:
        if not path.startswith(self.prefix + "/"):
            return None
        rest = path[len(self.prefix):]
        return rest if any(rest.startswith(route) for route in self.routes) else None


@contextmanager
def prefix_proxy(upstream_port: int, prefix: str, routes: tuple[str, ...]) -> Iterator[_ProxyServer]:
    """A running proxy on a free loopback port; its base URL is http://127.0.0.1:PORT + prefix."""
    server = _ProxyServer(upstream_port, prefix, routes)
    thread = threading.Thread(target=server.serve_forever, name="prefix-proxy", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
