"""Logpush for AI Gateway: the job API (over ``CloudflareClient``), the operator's bucket, the RSA key pair,
and decryption of the encrypted fields of ``ai_gateway_events`` records in Python.

Sources: cloudflare-docs ``ai-gateway/observability/logging/logpush.mdx`` (key pair, encryption, the Node
decryption sample this module ports: RSA-OAEP-SHA256 unwraps a per-log AES-GCM key; fields
``{"type": "encrypted", "key", "iv", "data"}`` in base64), ``logs/logpush/logpush-job/enable-destinations/r2.mdx``
and ``s3-compatible-endpoints.mdx`` (``destination_conf``), the Logpush job API (cloudflare-python 5.9
``resources/logpush``).

**Settings** (``.dev.vars`` or the environment; never parameters):

* ``AIGW_LOGPUSH_BUCKET``: the R2 (or S3-compatible) bucket the logs go to.
* ``AIGW_LOGPUSH_ACCESS_KEY_ID`` / ``AIGW_LOGPUSH_SECRET_ACCESS_KEY``: an R2 API token's S3 keys (Object Read &
  Write on the bucket); Cloudflare writes with them, the notebook reads back with them. The secret is a secret.
* ``AIGW_LOGPUSH_ENDPOINT``: the S3 API to read the bucket from; default R2's,
  ``https://<account id>.r2.cloudflarestorage.com``. With ``AIGW_LOGPUSH_REGION`` set the destination is
  ``s3://...&endpoint=`` (an S3-compatible store) instead of ``r2://``.
* ``AIGW_LOGPUSH_PRIVATE_KEY_FILE``: the PEM file of the RSA private key that decrypts the logs; made (4096-bit,
  mode 0600) when the file does not exist.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from aigw.cloudflare import CloudflareClient
from aigw.config import ENV_FILE_NAME, VARIABLES, Secret, Settings, read_env
from aigw.errors import ConfigError

__all__ = [
    "DATASET",
    "LOGPUSH_VARIABLES",
    "BucketSettings",
    "KeyPair",
    "LogpushApi",
    "LogpushJob",
    "batch_keys",
    "decrypt_field",
    "decrypt_record",
    "job_name",
    "key_file",
    "load_bucket_settings",
    "load_or_make_key_pair",
    "public_destination",
    "read_batch",
]

DATASET: Final = "ai_gateway_events"
#: The variables this module reads (documented with the rest in ``aigw.config.VARIABLES``).
LOGPUSH_VARIABLES: Final = tuple(v for v in VARIABLES if v.startswith("AIGW_LOGPUSH_"))
_ENCRYPTED_FIELDS: Final = ("Metadata", "RequestBody", "ResponseBody")
#: R2's bucket names: 3-63 lowercase letters, digits and '-', not starting or ending with '-'.
_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_KEY_BITS: Final = 4096  # the docs' sample (modulusLength: 4096); its SPKI PEM fits logpush_public_key's 1,024


# --- the job API -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogpushJob:
    """A Logpush job as the API returns it. ``destination_conf`` holds the bucket's secret: never shown."""

    id: int
    dataset: str | None
    name: str | None
    enabled: bool
    destination_conf: str = field(repr=False)
    last_complete: str | None = None
    last_error: str | None = None
    error_message: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> LogpushJob:
        return cls(
            id=int(data.get("id") or 0), dataset=data.get("dataset"), name=data.get("name"),
            enabled=bool(data.get("enabled")), destination_conf=str(data.get("destination_conf") or ""),
            last_complete=data.get("last_complete"), last_error=data.get("last_error"),
            error_message=data.get("error_message"),
        )

    @property
    def place(self) -> str:
        """Where it writes, without credentials: ``r2://bucket/path``."""
        return public_destination(self.destination_conf)


def job_name(gateway_id: str) -> str:
    """The runbook's name for the gateway's job (Logpush names allow letters, digits, '-' and '.')."""
    return "aigw-" + gateway_id.replace("_", "-")


def public_destination(conf: str) -> str:
    parts = urlsplit(conf)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class LogpushApi:
    """The account's Logpush operations, through ``client``'s request loop (budget, retries, redaction)."""

    def __init__(self, client: CloudflareClient, secrets: tuple[Secret, ...] = ()) -> None:
        self._client = client
        self._secrets = secrets

    def _path(self, rest: str) -> str:
        return f"accounts/{self._client.account_id}/logpush/{rest}"

    def _send(self, method: str, rest: str, body: Any = None, **options: Any) -> Any:
        env = self._client._send(method, self._path(rest), body=body, secrets=self._secrets, **options)
        return env.result

    def list_jobs(self) -> list[LogpushJob]:
        return [LogpushJob.from_api(item) for item in self._send("GET", f"datasets/{DATASET}/jobs") or []]

    def create_job(self, body: Mapping[str, Any]) -> LogpushJob:
        # Not idempotent: a retried create could make a second job (the account may have only four).
        return LogpushJob.from_api(self._send("POST", "jobs", dict(body), idempotent=False))

    def update_job(self, job_id: int, body: Mapping[str, Any]) -> LogpushJob:
        return LogpushJob.from_api(self._send("PUT", f"jobs/{job_id}", dict(body)))

    def get_job(self, job_id: int) -> LogpushJob:
        return LogpushJob.from_api(self._send("GET", f"jobs/{job_id}"))

    def delete_job(self, job_id: int) -> None:
        self._send("DELETE", f"jobs/{job_id}", missing_ok=True)

    def dataset_fields(self) -> dict[str, str]:
        return dict(self._send("GET", f"datasets/{DATASET}/fields") or {})

    def validate_destination(self, destination_conf: str) -> tuple[bool, str]:
        result = self._send("POST", "validate/destination", {"destination_conf": destination_conf})
        return bool(result.get("valid")), str(result.get("message") or "")


# --- the bucket ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketSettings:
    bucket: str
    path: str
    access_key_id: str
    secret_access_key: Secret = field(repr=False)
    endpoint_url: str
    region: str | None
    account_id: str

    def destination_conf(self) -> str:
        """What the job is told (holds the secret: send it, never show it). ``{DATE}``: daily folders."""
        path = quote(self.path.strip("/"), safe="/{}")
        target = f"{self.bucket}/{path}" if path else self.bucket
        if self.region is None:
            query = {"account-id": self.account_id, "access-key-id": self.access_key_id,
                     "secret-access-key": self.secret_access_key.reveal()}
            return f"r2://{target}?{urlencode(query)}"
        query = {"region": self.region, "access-key-id": self.access_key_id,
                 "secret-access-key": self.secret_access_key.reveal(), "endpoint": self.endpoint_url}
        return f"s3://{target}?{urlencode(query)}"

    def place(self) -> str:
        return public_destination(self.destination_conf())

    def prefixes(self, days: Iterable[datetime]) -> list[str]:
        """Where the batches of ``days`` are (``{DATE}`` is ``YYYYMMDD``): list only those folders, not a
        bucket that grows by a folder a day."""
        path = self.path.strip("/")
        if "{DATE}" not in path:
            return [f"{path}/" if path else ""]
        head = path.split("{DATE}")[0]
        return sorted({head + day.strftime("%Y%m%d") for day in days})

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(  # its own session: the default one is not thread-safe
            "s3", endpoint_url=self.endpoint_url, region_name=self.region or "auto",
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key.reveal(),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )


def load_bucket_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> BucketSettings:
    """The bucket settings from ``.dev.vars`` and the environment; ``ConfigError`` naming what is missing."""
    env = read_env(settings.env_file, environ=environ)
    missing = [n for n in ("AIGW_LOGPUSH_BUCKET", "AIGW_LOGPUSH_ACCESS_KEY_ID", "AIGW_LOGPUSH_SECRET_ACCESS_KEY")
               if not env.get(n)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: 07 needs the bucket the logs go to",
                          hint=f"Create an R2 bucket and an R2 API token (Object Read & Write), put them in "
                               f"{ENV_FILE_NAME} (see .dev.vars.example)")
    bucket = env["AIGW_LOGPUSH_BUCKET"]
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"AIGW_LOGPUSH_BUCKET {bucket!r} is not a bucket name",
                          hint="Use 3-63 lowercase letters, digits and '-'")
    endpoint = env.get("AIGW_LOGPUSH_ENDPOINT") or f"https://{settings.account_id}.r2.cloudflarestorage.com"
    if urlsplit(endpoint).scheme not in {"http", "https"}:
        raise ConfigError(f"AIGW_LOGPUSH_ENDPOINT {endpoint!r} is not an http(s) URL", hint="Fix it in .dev.vars")
    return BucketSettings(
        bucket=bucket, path=env.get("AIGW_LOGPUSH_PATH", "ai-gateway/{DATE}"),
        access_key_id=env["AIGW_LOGPUSH_ACCESS_KEY_ID"],
        secret_access_key=Secret(env["AIGW_LOGPUSH_SECRET_ACCESS_KEY"], "AIGW_LOGPUSH_SECRET_ACCESS_KEY"),
        endpoint_url=endpoint.rstrip("/"), region=env.get("AIGW_LOGPUSH_REGION"), account_id=settings.account_id,
    )


def read_batch(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The records of one gzipped NDJSON object."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    text = gzip.decompress(body).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def batch_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The log batches (``*.log.gz``) under ``prefix``, in key order (time order: keys start with the time)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if str(item["Key"]).endswith(".log.gz"):
                yield str(item["Key"])


# --- keys and decryption -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    path: Path
    public_pem: str
    made: bool
    _private: Any = field(repr=False)

    def decrypt(self, value: Any) -> Any:
        return decrypt_field(self._private, value)

    def decrypt_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return decrypt_record(self._private, record)


def key_file(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """Where the logs' private key is kept (``AIGW_LOGPUSH_PRIVATE_KEY_FILE``); ``ConfigError`` when unset."""
    named = read_env(settings.env_file, environ=environ).get("AIGW_LOGPUSH_PRIVATE_KEY_FILE")
    if not named:
        raise ConfigError("AIGW_LOGPUSH_PRIVATE_KEY_FILE is not set: 07 needs a file for the logs' private key",
                          hint=f"Name a file outside the repository in {ENV_FILE_NAME}, e.g. "
                               "AIGW_LOGPUSH_PRIVATE_KEY_FILE=~/.config/aigw/logpush.pem (made if missing)")
    return Path(named).expanduser()


def load_or_make_key_pair(settings: Settings, environ: Mapping[str, str] | None = None, *,
                          make: bool = True) -> KeyPair | None:
    """The key pair whose private half is in ``AIGW_LOGPUSH_PRIVATE_KEY_FILE``; made there when the file is
    missing and ``make`` (else None)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = key_file(settings, environ)
    made = False
    if path.is_file():
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"AIGW_LOGPUSH_PRIVATE_KEY_FILE {str(path)!r} is not an unencrypted PEM private key "
                              f"({type(exc).__name__})", hint="Point it at the key 07 made, or at a new file") from None
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ConfigError(f"{str(path)!r} is not an RSA key", hint="Logpush keys are RSA; point at a new file")
    elif not make:
        return None
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        # Made readable by its owner only, before the key is written into it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        made = True
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return KeyPair(path=path, public_pem=public, made=made, _private=private)


def decrypt_field(private_key: Any, value: Any) -> Any:
    """One encrypted field's plaintext (text); a value without ``key`` is returned as it is (as the sample does)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(value, Mapping) or "key" not in value:
        return value
    aes_key = private_key.decrypt(
        base64.b64decode(value["key"]),
        padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    plain = AESGCM(aes_key).decrypt(base64.b64decode(value["iv"]), base64.b64decode(value["data"]), None)
    return plain.decode()


def decrypt_record(private_key: Any, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with Metadata, RequestBody and ResponseBody decrypted (JSON text parsed where it is JSON)."""
    out = dict(record)
    for name in _ENCRYPTED_FIELDS:
        if name in out:
            plain = decrypt_field(private_key, out[name])
            if isinstance(plain, str):
                with contextlib.suppress(ValueError):  # a body that is not JSON stays text
                    plain = json.loads(plain)
            out[name] = plain
    return out
