"""A real S3 API on loopback for rehearsals and tests: moto's server mode, standing in for the operator's R2
bucket (the twin's ``r2_endpoint_url``).

Why moto: it serves the S3 REST API over real HTTP (ListObjectsV2, PutObject, GetObject with SigV4 requests
from boto3), runs in a thread of this process with no binary to fetch, and keeps its objects in memory, so a
rehearsal leaves nothing behind. What it does not do: check the access keys (any key is accepted), so a
wrong R2 key shows only on Cloudflare.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

__all__ = ["LocalBucket"]


class LocalBucket:
    """moto's S3 server on ``127.0.0.1`` (a free port) with one bucket and a generated key pair."""

    def __init__(self, bucket: str = "aigw-logpush") -> None:
        self.bucket = bucket
        self.access_key_id = secrets.token_hex(16)
        self.secret_access_key = secrets.token_hex(32)
        self._server: Any = None
        self._client: Any = None
        self.url = ""

    def start(self) -> LocalBucket:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        if self._client is None:
            # Its own session: boto3's default one is not safe to make clients from in several threads.
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key, config=Config(s3={"addressing_style": "path"}))
        return self._client

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalBucket:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
