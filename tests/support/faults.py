"""A link between the workers and the central site that fails as a network does.

FaultyLink(upstream_port) is a TCP relay on the loopback: the workers' Edge API (and, on
Airflow 3, their tasks' Execution API) URLs point at its port, and it forwards each connection
to the central site's. cut() resets every open connection (RST) and every new one until
restore(), which is what a client sees of a load balancer or an API server that is gone:
"connection reset by peer" or "connection refused", never a mocked answer. blackhole() is a
path that drops packets instead: until restore() nothing passes either way, bytes already
sent and new connections wait (as TCP holds and retransmits them), so a client waits on its
own timeouts; at restore() what still waits goes through.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field


@dataclass
class FaultyLink:
    upstream_port: int
    port: int = 0
    refused: int = 0  # connections reset while cut
    cuts: list[tuple[float, float | None]] = field(default_factory=list)  # (cut, restored) monotonic times
    _listener: socket.socket | None = None
    _down: threading.Event = field(default_factory=threading.Event)
    _flowing: threading.Event = field(default_factory=threading.Event)  # cleared while blackholed
    _open: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._flowing.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """`url` (on the central site's port) through this link."""
        return url.replace(f":{self.upstream_port}/", f":{self.port}/", 1)

    def cut(self) -> None:
        self._down.set()
        self.cuts.append((time.monotonic(), None))
        with self._lock:
            doomed, self._open = list(self._open), set()
        for conn in doomed:
            _reset(conn)

    def blackhole(self) -> None:
        self._flowing.clear()
        self.cuts.append((time.monotonic(), None))

    def restore(self) -> None:
        self._down.clear()
        self._flowing.set()
        if self.cuts and self.cuts[-1][1] is None:
            self.cuts[-1] = (self.cuts[-1][0], time.monotonic())

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.cut()
        self._flowing.set()  # what waits on a blackhole is reset, not left waiting

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if self._down.is_set():
                self.refused += 1
                _reset(client)
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._flowing.wait()  # a connection made while blackholed goes through once the path is back
        if self._down.is_set():
            _reset(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self._lock:  # under the lock: a cut() either sees this pair or has already set _down
            if self._down.is_set():
                _reset(client)
                _reset(upstream)
                return
            self._open |= {client, upstream}
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            for conn in (source, sink):
                if self._down.is_set():
                    _reset(conn)
                    continue
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


def _reset(conn: socket.socket) -> None:
    """Close with an RST, as a vanished peer does.

    close() alone is not enough when another thread waits in recv() on the socket: Linux keeps
    the connection until that recv() returns, so a client whose request was in flight would
    wait on its own timeout (aiohttp's: 300 s) instead of seeing the reset. shutdown(SHUT_RD)
    wakes that recv() and sends nothing; the close then aborts the connection.
    """
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.shutdown(socket.SHUT_RD)
    conn.close()
