"""``destination_conf`` for the object stores the twin can deliver to: R2 (``r2://``) and S3-compatible
endpoints (``s3://...&endpoint=``), and the S3 client that writes to them.

Formats (cloudflare-docs ``logs/logpush/logpush-job/enable-destinations/r2.mdx`` and
``s3-compatible-endpoints.mdx``, 2026)::

    r2://<BUCKET>/<PATH>/{DATE}?account-id=<ACCOUNT_ID>&access-key-id=<ID>&secret-access-key=<SECRET>
    s3://<BUCKET>/<PATH>?region=<REGION>&access-key-id=<ID>&secret-access-key=<SECRET>&endpoint=<ENDPOINT>

``{DATE}`` becomes the day, ``YYYYMMDD`` (``api-configuration.mdx``). An ``s3://`` destination without
``endpoint`` is Amazon S3 itself, which needs an ownership challenge and a bucket policy for Cloudflare.

The twin delivers only on loopback, so that nothing leaves the machine:

* ASSUMPTION: ``r2://`` goes to the twin's ``TwinOptions.r2_endpoint_url`` (the S3 API of a local server
  standing in for R2, where Cloudflare would use ``https://<account-id>.r2.cloudflarestorage.com``).
* ASSUMPTION: ``endpoint=`` may carry a scheme (``http://127.0.0.1:9000``) for a rehearsal; without one
  it is ``https://``, as Cloudflare documents it (a host, "the URL without the bucket name or path").
* An endpoint that is not loopback, and Amazon S3 itself, fail validation in the twin ("the twin does not
  deliver off this machine"): stricter than Cloudflare, never more lenient.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from cftwin.validation import is_loopback_host

if TYPE_CHECKING:
    from cftwin.context import LogpushRuntime

__all__ = ["Destination", "DestinationError", "parse_destination", "s3_client"]

_SCHEMES: Final = ("r2", "s3")
#: What Cloudflare writes to prove it can write (documented for HTTP destinations: a gzipped
#: ``test.txt.gz`` holding ``{"content":"tests"}``). ASSUMPTION: object stores get the same object.
VALIDATION_OBJECT: Final = "test.txt.gz"
VALIDATION_CONTENT: Final = b'{"content":"tests"}'


class DestinationError(ValueError):
    """A ``destination_conf`` that is malformed, or that the twin cannot reach."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    bucket: str
    #: The path inside the bucket, ``{DATE}`` unreplaced, without leading or trailing ``/``.
    path: str
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str

    def prefix(self, day: datetime) -> str:
        path = self.path.replace("{DATE}", day.strftime("%Y%m%d"))
        return f"{path}/" if path else ""

    @property
    def same_place(self) -> tuple[str, str, str]:
        """What makes two destinations the same place (``validate/destination/exists``): not the keys."""
        return (self.scheme, self.bucket, self.path)


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name) or [""]
    return values[0].strip()


def parse_destination(conf: Any, *, r2_endpoint_url: str) -> Destination:
    """The destination ``conf`` names; ``DestinationError`` with one line saying what is wrong."""
    if not isinstance(conf, str) or not conf.strip():
        raise DestinationError("destination_conf is required")
    parts = urlsplit(conf.strip())
    if parts.scheme not in _SCHEMES:
        raise DestinationError(
            f"destination_conf scheme {parts.scheme or '(none)'!r} is not one the twin delivers to; use r2:// or s3://"
        )
    bucket = parts.netloc
    if not bucket:
        raise DestinationError("destination_conf names no bucket")
    query = parse_qs(parts.query, keep_blank_values=True)
    path = parts.path.strip("/")
    key_id, secret = _one(query, "access-key-id"), _one(query, "secret-access-key")
    if parts.scheme == "r2":
        account = _one(query, "account-id")
        missing = [n for n, v in (("account-id", account), ("access-key-id", key_id),
                                  ("secret-access-key", secret)) if not v]
        if missing:
            raise DestinationError(f"r2 destination_conf is missing {', '.join(missing)}")
        if not r2_endpoint_url:
            raise DestinationError("the twin has no R2 endpoint (TwinOptions.r2_endpoint_url); it cannot reach R2")
        endpoint, region = r2_endpoint_url, "auto"
    else:
        region, endpoint = _one(query, "region"), _one(query, "endpoint")
        if not region:
            raise DestinationError("s3 destination_conf is missing region")
        if not endpoint:
            raise DestinationError("the twin does not deliver to Amazon S3 itself (off this machine); "
                                   "give an S3-compatible endpoint= on loopback")
        if not key_id or not secret:
            raise DestinationError("s3 destination_conf with endpoint= needs access-key-id and secret-access-key")
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
    host = urlsplit(endpoint).hostname or ""
    if not is_loopback_host(host):
        raise DestinationError(f"the twin does not deliver off this machine (endpoint host {host!r} is not loopback)")
    return Destination(parts.scheme, bucket, path, endpoint.rstrip("/"), region, key_id, secret)


def s3_client(destination: Destination, runtime: LogpushRuntime) -> Any:
    """A boto3 S3 client for ``destination`` (path-style addressing: a loopback endpoint has no DNS).

    Made once per endpoint and key (a client costs a few hundred milliseconds to make; once made it is safe to
    share between threads), under a lock: making clients from boto3's default session is not thread-safe."""
    import boto3
    from botocore.config import Config

    region = destination.region if destination.region != "auto" else "us-east-1"
    cache_key = (destination.endpoint_url, region, destination.access_key_id, destination.secret_access_key)
    with runtime.lock:
        client = runtime.clients.get(cache_key)
        if client is None:
            client = boto3.client(
                "s3", endpoint_url=destination.endpoint_url, region_name=region,
                aws_access_key_id=destination.access_key_id, aws_secret_access_key=destination.secret_access_key,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                              connect_timeout=5, read_timeout=10),
            )
            runtime.clients[cache_key] = client
        return client


def write_validation_object(destination: Destination, day: datetime, runtime: LogpushRuntime) -> None:
    """Write Cloudflare's test object where the logs will go; any S3 error propagates."""
    client = s3_client(destination, runtime)
    client.put_object(Bucket=destination.bucket, Key=destination.prefix(day) + VALIDATION_OBJECT,
                      Body=gzip.compress(VALIDATION_CONTENT), ContentEncoding="gzip")
