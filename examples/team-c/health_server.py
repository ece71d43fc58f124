"""Health endpoint for the Cloud Run service target (stdlib only, kept small).

A Cloud Run service must listen on $PORT. This server answers GET <path> with 200
while the worker process lives (or has not started yet) and 503 once it has died, so
the startup and liveness probes see the worker's state. It speaks just enough HTTP/1.0
for probes, on socketserver rather than http.server, to start fast and stay near 10 MB.
"""

from __future__ import annotations

import os
import socketserver
import sys
from pathlib import Path

READ_TIMEOUT = 5  # seconds: a client that sends nothing cannot hold the server


def process_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            # A zombie (state Z) has exited already.
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_state(pid_file: Path) -> str:
    """'starting', 'running' or 'dead'."""
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        return "starting"
    except (OSError, ValueError):
        return "dead"
    return "running" if process_alive(pid) else "dead"


def answer(request_line: bytes, path: str, pid_file: Path) -> tuple[int, str]:
    parts = request_line.decode("latin-1").split()
    if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
        return 405, "method not allowed\n"
    if parts[1].split("?", 1)[0] != path:
        return 404, "not found\n"
    state = worker_state(pid_file)
    return (503 if state == "dead" else 200), f"{state}\n"


REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def make_handler(path: str, pid_file: Path) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        timeout = READ_TIMEOUT

        def handle(self) -> None:
            try:
                request_line = self.rfile.readline(8192)
                while self.rfile.readline(8192).strip():  # skip the headers
                    pass
            except OSError:
                return
            code, body = answer(request_line, path, pid_file)
            data = body.encode()
            head = (f"HTTP/1.0 {code} {REASONS[code]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
            self.wfile.write(head.encode() + data)

    return Handler


class Server(socketserver.TCPServer):
    allow_reuse_address = True


def main(argv: list[str]) -> None:
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    try:
        port = int(options["--port"])
        pid_file = Path(options["--pid-file"])
    except (KeyError, ValueError):
        sys.exit("usage: health_server.py --port PORT --pid-file FILE [--path /health]")
    with Server(("", port), make_handler(options.get("--path", "/health"), pid_file)) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
