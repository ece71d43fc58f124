"""Health endpoint for the Cloud Run service target (stdlib only).

A Cloud Run service must listen on $PORT. This server answers GET <path> with
200 while the worker process lives (or has not started yet) and 503 once it has
died, so the startup and liveness probes see the worker's state.
"""

from __future__ import annotations

import argparse
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


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


def make_handler(path: str, pid_file: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] != path:
                self._answer(404, "not found\n")
                return
            state = worker_state(pid_file)
            self._answer(503 if state == "dead" else 200, f"{state}\n")

        def _answer(self, code: int, body: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Probes every few seconds would flood the log: stay quiet."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/health")
    parser.add_argument("--pid-file", type=Path, required=True)
    args = parser.parse_args()
    server = HTTPServer(("", args.port), make_handler(args.path, args.pid_file))
    server.serve_forever()


if __name__ == "__main__":
    main()
