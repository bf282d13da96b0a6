"""A local S3-compatible object store for the tests: moto's server (`moto_server`, PyPI `moto[s3]`), listening on
127.0.0.1, with one bucket. It speaks the S3 REST API that MLflow's S3 artifact repository (boto3) uses against AWS,
MinIO or Ceph; only the endpoint and the keys differ, and those are what `server_env()` gives the tracking server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.serving_harness import free_port, http

REGION = "us-east-1"


class S3Store:
    """`moto_server` in its own process group; `bucket` created; stopped by its own pid."""

    def __init__(self, folder: Path, bucket: str = "memoria-artifacts") -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log = folder / "moto-server.log"
        # moto accepts any keys; a real store's would come from the team's secrets
        self.keys = {"AWS_ACCESS_KEY_ID": "memoria-test", "AWS_SECRET_ACCESS_KEY": "memoria-test-secret"}
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=open(self.log, "wb"),  # noqa: SIM115 - stays open for the server's lifetime
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while http("GET", self.endpoint + "/")[0] == 0:
            assert time.time() < deadline and self.proc.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.2)
        self.client().create_bucket(Bucket=bucket)

    def server_env(self) -> dict[str, str]:
        """What the tracking server's process needs to store artifacts in this bucket."""
        return {**self.keys, "MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **_lower(self.keys))

    def keys_under(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _lower(keys: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": keys["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"]}


@contextlib.contextmanager
def s3_store(folder: Path) -> Iterator[S3Store]:
    store = S3Store(folder)
    try:
        yield store
    finally:
        store.stop()
