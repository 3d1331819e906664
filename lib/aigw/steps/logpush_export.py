"""Notebook 07: export the gateway's logs with Logpush to the operator's R2 (or S3-compatible) bucket, and
prove it: a canary request arrives in the bucket and its encrypted fields decrypt here.

``plan_export`` (reads; validates the destination) -> ``apply_export`` (makes or adopts the key pair, turns
on the gateway's ``logpush`` with its public key, creates or adopts the job) -> ``verify_export`` (the
canary, waited for with a bounded progress bar, decrypted with ``cryptography``).

Idempotent like 01: a second run finds the key file, the gateway already set and the job (by name,
``aigw-<gateway>``, writing to the same place) and changes nothing. Notebook 05's rollback deletes the job
of that name. The private key lives in the file ``AIGW_LOGPUSH_PRIVATE_KEY_FILE`` names (``.dev.vars``),
never in a parameter or an output; the bucket's secret key only inside ``destination_conf``, which is sent
and never shown.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from aigw.cloudflare import Gateway
from aigw.errors import ConfigError, NotFoundError
from aigw.evidence import Check
from aigw.gateway import DEFAULT_MODELS
from aigw.logpush import (
    DATASET,
    BucketSettings,
    KeyPair,
    LogpushApi,
    LogpushJob,
    batch_keys,
    job_name,
    key_file,
    load_bucket_settings,
    load_or_make_key_pair,
    read_batch,
)
from aigw.session import Session
from aigw.steps import checks_table, markdown_table

__all__ = ["ExportApplied", "ExportPlan", "ExportVerification", "apply_export", "plan_export", "verify_export"]

JobAction = Literal["create", "enable", "update destination", "none"]
#: What 07 asks of a job: plain RFC 3339 times (ai_gateway_events' Timestamp is "int or string").
_OUTPUT_OPTIONS: Final = {"timestamp_format": "rfc3339"}
_POLL_S: Final = 2.0


def _api(session: Session, bucket: BucketSettings) -> LogpushApi:
    return LogpushApi(session.client, (bucket.secret_access_key,))


@dataclass
class ExportPlan:
    """What 07 will change; nothing is changed yet (the destination check writes Cloudflare's test object)."""

    gateway_id: str
    bucket: BucketSettings
    key_exists: bool
    gateway_logpush: bool
    gateway_key_matches: bool
    job: LogpushJob | None
    job_action: JobAction
    destination_valid: bool
    destination_message: str
    checks: list[Check] = field(default_factory=list)

    @property
    def gateway_change(self) -> bool:
        return not (self.gateway_logpush and self.gateway_key_matches)

    def _repr_markdown_(self) -> str:
        rows = [
            ("key pair", "use the key in AIGW_LOGPUSH_PRIVATE_KEY_FILE" if self.key_exists else
             "make a 4096-bit RSA key pair in AIGW_LOGPUSH_PRIVATE_KEY_FILE"),
            ("gateway", "set logpush and logpush_public_key" if self.gateway_change else "already set (no change)"),
            ("job", f"{self.job_action}: `{job_name(self.gateway_id)}` {DATASET} -> {self.bucket.place()}"
             + (f" (job {self.job.id})" if self.job else "")),
        ]
        return (f"**Logpush plan** for gateway `{self.gateway_id}`\n\n"
                + markdown_table(["what", "change"], rows, raw=True) + "\n\n" + checks_table(self.checks))


def _adoptable(jobs: list[LogpushJob], name: str, bucket: BucketSettings) -> LogpushJob | None:
    place = bucket.place()
    mine = [j for j in jobs if j.dataset in (DATASET, None) and j.name == name]
    same_place = [j for j in mine if j.place == place]
    chosen = same_place or mine
    return chosen[0] if chosen else None


def plan_export(session: Session) -> ExportPlan:
    """Read the gateway, the key file and the account's jobs; validate the destination."""
    settings = session.settings
    try:
        bucket = load_bucket_settings(settings)
        key_file(settings)  # a missing setting is one line now, before anything is asked of Cloudflare
    except ConfigError as exc:
        if session.target != "twin":
            raise
        raise ConfigError(exc.message, hint="To rehearse, run `aigw run --notebooks 01,02,07`: it serves a local "
                                            "bucket for the twin and sets these itself") from None
    pair = load_or_make_key_pair(settings, make=False)
    client = session.client
    try:
        gateway: Gateway = client.get_gateway(settings.gateway_id)
    except NotFoundError:
        raise ConfigError(f"gateway {settings.gateway_id!r} does not exist",
                          hint="Run 01_create_gateway first (Logpush exports an existing gateway's logs)") from None
    stored_key = str(gateway.raw.get("logpush_public_key") or "").strip()
    api = _api(session, bucket)
    job = _adoptable(api.list_jobs(), job_name(settings.gateway_id), bucket)
    conf = bucket.destination_conf()
    if job is None:
        action: JobAction = "create"
    elif job.destination_conf != conf:
        action = "update destination"
    elif not job.enabled:
        action = "enable"
    else:
        action = "none"
    valid, message = api.validate_destination(conf)
    plan = ExportPlan(
        gateway_id=settings.gateway_id, bucket=bucket, key_exists=pair is not None,
        gateway_logpush=bool(gateway.logpush),
        gateway_key_matches=pair is not None and stored_key == pair.public_pem.strip(),
        job=job, job_action=action, destination_valid=valid, destination_message=message,
    )
    plan.checks.append(Check(None, "gateway collects logs (Logpush exports stored logs)",
                             "pass" if gateway.collect_logs else "fail",
                             "collect_logs is on" if gateway.collect_logs else
                             "collect_logs is off: turn it on in 01 (collect_logs = True) and run 01 again"))
    plan.checks.append(Check(None, "Logpush destination is valid", "pass" if valid else "fail",
                             f"{bucket.place()}: " + ("Cloudflare wrote its test object" if valid else
                                                      f"{message}; check the bucket name and the R2 token")))
    return plan


@dataclass
class ExportApplied:
    gateway_id: str
    key: KeyPair
    job: LogpushJob
    changes: list[str]
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        done = "; ".join(self.changes) if self.changes else "nothing to change (already set up)"
        return (f"**Logpush applied** for `{self.gateway_id}`: {done}. Job {self.job.id} `{self.job.name}` -> "
                f"{self.job.place}\n\n" + checks_table(self.checks))


def apply_export(session: Session, plan: ExportPlan) -> ExportApplied:
    """Make or adopt the key pair, set the gateway, create or adopt the job. Stops on a failed plan check."""
    failed = [c for c in plan.checks if c.status == "fail"]
    if failed:
        raise ConfigError(f"07 plan failed: {failed[0].check}: {failed[0].detail}",
                          hint="Fix it and run 07 again; nothing was changed")
    pair = load_or_make_key_pair(session.settings)
    assert pair is not None
    changes: list[str] = []
    if pair.made:
        changes.append(f"made a key pair (private key in {pair.path}, mode 0600)")
    client = session.client
    gateway = client.get_gateway(plan.gateway_id)
    stored_key = str(gateway.raw.get("logpush_public_key") or "").strip()
    if not gateway.logpush or stored_key != pair.public_pem.strip():
        client.update_gateway(plan.gateway_id, {"logpush": True, "logpush_public_key": pair.public_pem})
        changes.append("gateway: logpush on with this key" + (" (replaced another key: logs exported before "
                                                               "decrypt only with that key)" if stored_key else ""))
    api = _api(session, plan.bucket)
    conf = plan.bucket.destination_conf()
    name = job_name(plan.gateway_id)
    job = _adoptable(api.list_jobs(), name, plan.bucket)
    if job is None:
        job = api.create_job({"dataset": DATASET, "name": name, "destination_conf": conf, "enabled": True,
                              "output_options": dict(_OUTPUT_OPTIONS)})
        changes.append(f"created job {job.id}")
    elif job.destination_conf != conf or not job.enabled:
        job = api.update_job(job.id, {"destination_conf": conf, "enabled": True})
        changes.append(f"updated job {job.id} (enabled, destination)")
    gateway = client.get_gateway(plan.gateway_id)
    applied = ExportApplied(plan.gateway_id, pair, job, changes)
    now_key = str(gateway.raw.get("logpush_public_key") or "").strip()
    key_ok = bool(gateway.logpush) and now_key == pair.public_pem.strip()
    applied.checks.append(Check(None, "gateway exports with this key pair", "pass" if key_ok else "fail",
                                "logpush on; logpush_public_key is the key file's public key" if key_ok else
                                "the gateway does not hold logpush on with this public key"))
    applied.checks.append(Check(None, "Logpush job enabled for ai_gateway_events", "pass" if job.enabled else "fail",
                                f"job {job.id} `{job.name}` -> {job.place}"))
    return applied


@dataclass
class ExportVerification:
    gateway_id: str
    canary: str
    seconds: float | None
    object_key: str | None
    record: dict[str, Any] | None = field(default=None, repr=False)
    checks: list[Check] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        if self.record is None:
            head = f"**Canary not found** in the bucket (canary `{self.canary}`)."
        else:
            plain = {k: v for k, v in self.record.items() if k not in ("RequestBody", "ResponseBody")}
            head = (f"**Canary delivered** in {self.seconds:.1f} s as `{self.object_key}`; its decrypted record "
                    f"(bodies left out):\n\n```json\n{json.dumps(plain, indent=1)}\n```")
        return head + "\n\n" + checks_table(self.checks)


def _bar(total_s: float) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=round(total_s), unit="s", desc="waiting for the canary in the bucket")


def _keys(bucket: BucketSettings, client: Any, days: list[datetime]) -> Iterator[str]:
    for prefix in bucket.prefixes(days):
        yield from batch_keys(client, bucket.bucket, prefix)


def _find_canary(pair: KeyPair, bucket: BucketSettings, client: Any, seen: set[str], canary: str,
                 days: list[datetime]) -> tuple[str, dict[str, Any]] | None:
    for key in _keys(bucket, client, days):
        if key in seen:
            continue
        seen.add(key)
        for record in read_batch(client, bucket.bucket, key):
            try:
                metadata = pair.decrypt(record.get("Metadata"))
            except Exception:  # another key's record (an older key pair): not ours, not the canary
                continue
            if isinstance(metadata, str) and canary in metadata:
                return key, pair.decrypt_record(record)
    return None


def verify_export(session: Session, applied: ExportApplied, *, provider: str = "openai", model: str = "",
                  timeout_s: float = 180.0) -> ExportVerification:
    """Send a canary through the gateway and wait (at most ``timeout_s``) for it in the bucket, decrypted."""
    plan_bucket = load_bucket_settings(session.settings)
    s3 = plan_bucket.client()
    # Objects already there are not the canary's: listed once, then skipped.
    # The canary's day, and the next one in case the wait crosses midnight (UTC, as {DATE} is).
    today = datetime.now(UTC)
    days = [today, today + timedelta(seconds=timeout_s)]
    seen = set(_keys(plan_bucket, s3, days))
    canary = f"{session.run_id or 'adhoc'}-{secrets.token_hex(6)}"
    chosen = model or DEFAULT_MODELS[provider]
    probe = session.prober.probe_provider(provider, chosen, prompt=f"Reply with ok. (Logpush canary {canary})",
                                          max_tokens=8, metadata={"aigw_canary": canary})
    verification = ExportVerification(applied.gateway_id, canary, None, None)
    if not probe.ok:
        verification.checks.append(Check(None, "canary request answered", "fail",
                                         f"{provider}/{chosen}: HTTP {probe.status} {probe.excerpt}"))
        verification.checks.append(Check(None, "canary delivered by Logpush", "skip", "no canary was sent"))
        return verification
    verification.checks.append(Check(None, "canary request answered", "pass",
                                     f"{provider}/{chosen}: HTTP {probe.status}"))
    started = time.monotonic()
    found = None
    bar = _bar(timeout_s)
    try:
        while found is None:
            found = _find_canary(applied.key, plan_bucket, s3, seen, canary, days)
            elapsed = time.monotonic() - started
            bar.n = min(round(elapsed), bar.total)
            bar.refresh()
            if found is not None or elapsed >= timeout_s:
                break
            time.sleep(min(_POLL_S, max(timeout_s - elapsed, 0.0)))
    finally:
        bar.close()
    if found is None:
        job = _api(session, plan_bucket).get_job(applied.job.id)
        why = f"; the job reports: {job.error_message}" if job.error_message else ""
        verification.checks.append(Check(None, "canary delivered by Logpush", "fail",
                                         f"not in {plan_bucket.place()} within {timeout_s:.0f} s{why}"))
        return verification
    key, record = found
    verification.seconds, verification.object_key, verification.record = time.monotonic() - started, key, record
    verification.checks.append(Check(None, "canary delivered by Logpush", "pass",
                                     f"{key} after {verification.seconds:.1f} s (gzipped NDJSON)"))
    metadata = record.get("Metadata")
    meta_ok = (isinstance(metadata, dict) and metadata.get("aigw_canary") == canary
               and metadata.get("aigw_run_id") == (session.run_id or None))
    verification.checks.append(Check(None, "Metadata decrypts (RSA-OAEP-SHA256 + AES-GCM)",
                                     "pass" if meta_ok else "fail",
                                     "holds the canary tag and the run id" if meta_ok else
                                     f"decrypted to {metadata!r}"))
    request_ok = canary in json.dumps(record.get("RequestBody"))
    verification.checks.append(Check(None, "RequestBody decrypts", "pass" if request_ok else "fail",
                                     "holds the canary prompt" if request_ok else "the canary prompt is not in it"))
    response = record.get("ResponseBody")
    response_ok = isinstance(response, dict | list)
    verification.checks.append(Check(None, "ResponseBody decrypts", "pass" if response_ok else "fail",
                                     "a JSON answer" if response_ok else f"not JSON: {str(response)[:80]!r}"))
    plain_ok = (record.get("Gateway") == applied.gateway_id and record.get("Provider") == provider
                and record.get("StatusCode") == probe.status)
    verification.checks.append(Check(None, "plain fields match the request", "pass" if plain_ok else "fail",
                                     f"Gateway {record.get('Gateway')}, Provider {record.get('Provider')}, "
                                     f"StatusCode {record.get('StatusCode')}, Model {record.get('Model')}"))
    return verification
