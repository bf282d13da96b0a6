"""The HTTP tests' harness refuses a server whose port another process also listens on (tests/serving_harness.py):
BentoML binds with SO_REUSEPORT, so such a server starts without an error and the kernel spreads connections over
both listeners, and a test would read another server's answers (a stray e2e check, a second test run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.serving_harness as harness
from tests.ports import free_port, listening_sockets, process_group, socket_inodes
from tests.serving_harness import Server, http

# A stand-in for another process's server: listens with SO_REUSEPORT, answers 200 to every GET.
OTHER_SERVER = """
import http.server, socket, sys
class Reuse(http.server.HTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"someone else")
    def log_message(self, *args): pass
server = Reuse(("127.0.0.1", int(sys.argv[1])), Answer)
print("listening", flush=True)
server.serve_forever()
"""


@pytest.fixture
def other_server() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", OTHER_SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        yield port, proc
    finally:
        proc.kill()
        proc.wait()


def test_the_listeners_on_a_port_are_told_apart_by_process(other_server: tuple[int, subprocess.Popen[str]]) -> None:
    port, proc = other_server
    theirs = listening_sockets(port)
    assert len(theirs) == 1 and theirs <= socket_inodes([proc.pid])
    assert proc.pid in process_group(os.getpgid(0))  # started without a session of its own: in this test's group
    with socket.socket() as ours:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        ours.bind(("127.0.0.1", port))  # accepted: the port is shared, as BentoML's bind shares it
        ours.listen()
        both = listening_sockets(port)
        assert len(both) == 2 and both - theirs <= socket_inodes([os.getpid()])
        assert not (both - theirs) & socket_inodes([proc.pid])


def test_a_server_sharing_its_port_with_another_process_is_refused(
    store: dict[str, str],
    tmp_path: Path,
    other_server: tuple[int, subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, _ = other_server
    monkeypatch.setattr(harness, "free_port", lambda: port)
    server = Server({**store, "MEMORIA_WORKERS": "1"}, tmp_path / "serve.log")
    try:
        with pytest.raises(AssertionError, match="SO_REUSEPORT"):
            server.wait_ready()
        assert server.proc.poll() is None  # it did start: nothing but this check would have said a word
    finally:
        server.stop()
    assert http("GET", f"http://127.0.0.1:{port}/readyz")[1] == "someone else"
