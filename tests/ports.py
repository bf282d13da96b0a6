"""Ports for the servers the tests and benchmarks start: a free one, and who listens on it.

BentoML binds with SO_REUSEPORT, so a server started on a port another process already listens on (an e2e check, a
second test run) starts without an error and the kernel spreads connections over both listeners: the caller would
read the other server's answers. `foreign_listeners` finds such sockets from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_sockets(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on `port` (any address, IPv4 or IPv6), from /proc/net."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    found.add(int(fields[9]))
    return found


def process_group(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (a server started with start_new_session=True leads its own)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name (2nd field) may hold spaces: the fields after its closing parenthesis are fixed
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                members.append(int(stat.parent.name))
    return members


def socket_inodes(pids: list[int]) -> set[int]:
    """Inodes of the sockets the processes `pids` hold open."""
    found: set[int] = set()
    for pid in pids:
        with contextlib.suppress(OSError):  # a process may exit meanwhile
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if (target := os.readlink(fd)).startswith("socket:["):
                        found.add(int(target[8:-1]))
    return found


def foreign_listeners(port: int, pgid: int) -> set[int]:
    """The sockets listening on `port` that no process of group `pgid` holds (empty where /proc cannot tell)."""
    if not Path("/proc/net/tcp").exists():
        return set()
    return listening_sockets(port) - socket_inodes(process_group(pgid))


def shared_port_message(port: int, foreign: set[int]) -> str:
    return (
        f"port {port} has {len(foreign)} listening socket(s) of another process beside this server's: "
        "its answers would be mixed with theirs (SO_REUSEPORT)"
    )
