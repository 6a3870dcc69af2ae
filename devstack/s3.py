"""A local S3 server on loopback (moto), so Tansu's ``s3://`` storage engine keeps what the broker
acknowledged across a ``kill -9`` of the broker.

moto keeps its objects in memory: the broker may die and restart, the S3 server must not.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from devstack.processes import ManagedProcess, StackError, free_port

__all__ = ["S3Server", "start_s3_server"]

_DUMMY_KEY = "airstream-test"


@dataclass
class S3Server:
    """A running moto S3 server; :meth:`new_bucket` makes a bucket, :meth:`broker_env` the
    variables Tansu's ``s3://`` engine reads."""

    endpoint: str
    process: ManagedProcess

    def new_bucket(self, prefix: str = "tansu") -> str:
        """Create a bucket with a fresh name and return the name."""
        bucket = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self._client().create_bucket(Bucket=bucket)
        return bucket

    def object_keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket`` (first 1000)."""
        return [entry["Key"] for entry in self._client().list_objects_v2(Bucket=bucket).get("Contents", [])]

    def broker_env(self) -> dict[str, str]:
        """What Tansu needs to use this server: endpoint, plain HTTP, dummy credentials."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": _DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        """Stop the server (its objects are gone with it)."""
        self.process.stop(timeout=5)

    def _client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=_DUMMY_KEY,
            aws_secret_access_key=_DUMMY_KEY,
            region_name="us-east-1",
        )

    def __enter__(self) -> S3Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _moto_server() -> str:
    candidate = Path(sys.executable).parent / "moto_server"
    if not candidate.exists():
        raise StackError("moto_server is not installed: pip install 'moto[server]' (it is in airstream[dev])")
    return str(candidate)


def start_s3_server(work_dir: Path, timeout: float = 30.0) -> S3Server:
    """Start ``moto_server`` on a free loopback port; logs to ``work_dir/moto.log``."""
    import httpx

    for attempt in range(2):  # a free port may be taken before moto binds it: once more
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = ManagedProcess.start(
            "moto_server", [_moto_server(), "-H", "127.0.0.1", "-p", str(port)], log_path=work_dir / "moto.log"
        )
        try:
            process.wait_until(
                lambda endpoint=endpoint: httpx.get(endpoint, timeout=1).status_code < 500,  # type: ignore[misc]
                timeout=timeout,
                what=f"the S3 server on {endpoint}",
            )
        except StackError:
            process.stop(timeout=5)
            if attempt:
                raise
            continue
        return S3Server(endpoint, process)
    raise AssertionError("unreachable")
