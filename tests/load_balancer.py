"""A real load balancer in front of several `bentoml serve` replicas: Debian's HAProxy (`make cluster-tools` installs
it; the tests that need it fail, not skip, without it).

Round robin over the replicas, each health-checked on /readyz (a replica still loading or with a refused bundle
gets no traffic), a failed connection retried on another replica, and every answer marked with the replica that
gave it (`X-Memoria-Replica`), beside the service's own `X-Memoria-Model`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.serving_harness import free_port

REPLICA_HEADER = "X-Memoria-Replica"


def haproxy_config(port: int, replicas: dict[str, int], health_check: bool = True) -> str:
    check = " check" if health_check else ""
    servers = "\n".join(f"    server {name} 127.0.0.1:{p}{check}" for name, p in replicas.items())
    return f"""global
    maxconn 2048

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # a connection refused by a replica that just went away is tried again, on another replica; so is a request
    # whose process died holding it (SIGKILL, OOM: an empty response), which is safe for predictions (no side
    # effect; HAProxy keeps the request in its buffer for that)
    retries 3
    option redispatch
    retry-on conn-failure empty-response
    option http-keep-alive

frontend memoria
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
    http-response set-header {REPLICA_HEADER} %[srv_name]
{servers}
"""


class HAProxy:
    """`haproxy -db` (foreground) over `replicas` (name -> port on 127.0.0.1), stopped by its own pid."""

    def __init__(self, replicas: dict[str, int], folder: Path, health_check: bool = True) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        assert os.path.exists(binary), "haproxy is missing: `make cluster-tools` installs Debian's (as root)"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = folder / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, replicas, health_check))
        self.log = folder / "haproxy.log"
        check = subprocess.run([binary, "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(self.config)],
            stdout=open(self.log, "wb"),  # noqa: SIM115 - stays open for the proxy's lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
