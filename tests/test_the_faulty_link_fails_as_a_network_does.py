"""The fault tests' link (tests/support/faults.py) does what its docstring promises: a cut resets
every connection, also one whose request is still waiting for its answer, and refuses new ones
until restored. Without that, a worker waits on its own timeout and the e2e fault tests measure
the link instead of the worker (a CI run timed out so: edge3's worker waited 300 s, aiohttp's timeout, and exited)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support.faults import FaultyLink

ANSWER_AFTER = 1.5  # s the upstream takes to answer: the cut comes while a request waits


@pytest.fixture
def slow_upstream() -> Iterator[int]:
    """A server that answers each request after ANSWER_AFTER seconds; its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer(conn: socket.socket) -> None:
        with conn:
            while conn.recv(100):
                time.sleep(ANSWER_AFTER)
                try:
                    conn.sendall(b"answer")
                except OSError:
                    return

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def ask(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=10 * ANSWER_AFTER)
    client.sendall(b"request")
    return client


def test_a_request_waiting_for_its_answer_is_reset_by_a_cut(slow_upstream: int) -> None:
    link = FaultyLink(slow_upstream)
    with ask(link.port) as client:
        time.sleep(ANSWER_AFTER / 3)
        link.cut()
        with pytest.raises(ConnectionResetError):
            client.recv(100)


def test_a_cut_link_refuses_new_connections_until_restored(slow_upstream: int) -> None:
    link = FaultyLink(slow_upstream)
    link.cut()
    with ask(link.port) as client, pytest.raises(ConnectionResetError):
        client.recv(100)
    assert link.refused == 1
    link.restore()
    with ask(link.port) as client:
        assert client.recv(100) == b"answer"


def test_a_blackholed_request_goes_through_once_restored(slow_upstream: int) -> None:
    link = FaultyLink(slow_upstream)
    link.blackhole()
    with ask(link.port) as client:
        client.settimeout(ANSWER_AFTER)
        with pytest.raises(TimeoutError):
            client.recv(100)
        link.restore()
        client.settimeout(10 * ANSWER_AFTER)
        assert client.recv(100) == b"answer"
