"""Admin endpoints for logs (mounted under ``/__twin__``): bulk seeding and the truth about what is stored.

* ``POST /logs/seed`` ``{account_id, gateway_id, count, seed?, start?, end?, providers?}`` ->
  201 ``{inserted, generated: {count, tokens_in, tokens_out, cost}, stats}``
* ``GET /logs/stats?account_id=&gateway_id=`` -> totals, and the same per provider and per model

Seeded logs are synthetic but shaped like real traffic: the emulated providers' models and list
prices (``providers.pricing``), long-tailed token counts and latencies, a few cache hits (no cost),
and some 4xx/5xx failures (no tokens). ``seed`` makes the values repeatable; ids are always new.
Errors are ``{"error": "<one line>"}`` with 400 / 404, as the rest of the admin API.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cftwin import jsonbody
from cftwin.adminauth import admin_error
from cftwin.context import TwinContext, twin_context
from cftwin.gateways.models import get_gateway
from cftwin.logs.models import format_timestamp, insert_log_tuples, log_stats, parse_timestamp, ulid_at
from cftwin.providers.pricing import MODELS, cost_usd

__all__ = ["MAX_SEED_COUNT", "SeedSpec", "generate_seed_rows", "routes"]

MAX_SEED_COUNT: Final = 1_000_000
_CHUNK: Final = 20_000
#: Share of traffic per provider when a seed does not name its providers.
_PROVIDER_WEIGHTS: Final = {"openai": 0.45, "anthropic": 0.30, "google-ai-studio": 0.25}
#: Models the seeder favours, when the pricing table lists them.
_FAVOURED: Final = {
    "openai": ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-5-mini"),
    "anthropic": ("claude-3-5-haiku", "claude-sonnet-4-5", "claude-haiku-4-5"),
    "google-ai-studio": ("gemini-2.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"),
}
#: (status, cumulative share): mostly 200, then rate limits, bad requests, upstream errors.
_STATUSES: Final = ((200, 0.90), (429, 0.94), (400, 0.97), (500, 0.99), (401, 1.0))
_TEAMS: Final = ("search", "support", "billing", "research")
# Not rows.LIST_FIELDS, though it starts alike: the columns a seeded log fills (no custom_cost, no request_type).
# Nor aigw.cloudflare.LOG_FIELDS: the twin imports nothing from aigw (docs/ARCHITECTURE.md).
_SEED_COLUMNS: Final = (
    "id",
    "created_at",
    "provider",
    "model",
    "model_type",
    "path",
    "duration",
    "success",
    "cached",
    "status_code",
    "tokens_in",
    "tokens_out",
    "cost",
    "metadata",
    "step",
    "request_content_type",
    "response_content_type",
)


class _BadRequest(Exception):
    pass


class SeedSpec:
    """A validated seed request."""

    def __init__(self, body: dict[str, Any]) -> None:
        account_id, gateway_id, count = body.get("account_id"), body.get("gateway_id"), body.get("count")
        if not isinstance(account_id, str) or not account_id:
            raise _BadRequest("account_id must be a non-empty string")
        if not isinstance(gateway_id, str) or not gateway_id:
            raise _BadRequest("gateway_id must be a non-empty string")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEED_COUNT:
            raise _BadRequest(f"count must be an integer from 1 to {MAX_SEED_COUNT}")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _BadRequest("seed must be an integer")
        end = self._time(body, "end", datetime.now(UTC))
        try:
            start = self._time(body, "start", end - timedelta(days=7))
        except OverflowError:
            raise _BadRequest("end is too early for the default start (end - 7 days)") from None
        if start > end:
            raise _BadRequest("start must not be after end")
        providers = body.get("providers")
        if providers is None:
            providers = list(_PROVIDER_WEIGHTS)
        if (
            not isinstance(providers, list)
            or not providers
            or not all(isinstance(p, str) and p in MODELS for p in providers)
        ):
            raise _BadRequest(f"providers must be a non-empty list of {', '.join(MODELS)}")
        self.account_id: str = account_id
        self.gateway_id: str = gateway_id
        self.count: int = count
        self.seed: int | None = seed
        self.start = start
        self.end = end
        self.providers: list[str] = list(dict.fromkeys(providers))

    @staticmethod
    def _time(body: dict[str, Any], name: str, default: datetime) -> datetime:
        raw = body.get(name)
        if raw is None:
            return default
        if not isinstance(raw, str):
            raise _BadRequest(f"{name} must be an RFC 3339 date-time")
        try:
            value = parse_timestamp(raw)
            format_timestamp(value)
        except ValueError:
            raise _BadRequest(f"{name} must be an RFC 3339 date-time") from None
        return value


def _path(provider: str, model: str) -> str:
    if provider == "anthropic":
        return "v1/messages"
    if provider == "google-ai-studio":
        return f"v1beta/models/{model}:generateContent"
    return "chat/completions"


def generate_seed_rows(spec: SeedSpec) -> list[tuple[Any, ...]]:
    """``spec.count`` rows in ``_SEED_COLUMNS`` order, oldest first."""
    rng = random.Random(spec.seed)
    ids = random.Random()  # ids never repeat, even for a repeated seed
    start_ms = int(spec.start.timestamp() * 1000)
    span_ms = max(0, int(spec.end.timestamp() * 1000) - start_ms)
    times = sorted(start_ms + int(rng.random() * (span_ms + 1)) for _ in range(spec.count))
    weights = [_PROVIDER_WEIGHTS.get(p, 0.2) for p in spec.providers]
    models = {
        p: [m for m in _FAVOURED.get(p, ()) if m in MODELS[p]] or sorted(MODELS[p]) for p in spec.providers
    }
    providers = rng.choices(spec.providers, weights=weights, k=spec.count)
    stamp_cache: dict[int, str] = {}
    team_metadata = [json.dumps({"team": team}, separators=(",", ":")) for team in _TEAMS]
    rows: list[tuple[Any, ...]] = []
    lognorm, uniform, choice, roll = rng.lognormvariate, rng.uniform, rng.choice, rng.random
    for ms, provider in zip(times, providers, strict=True):
        model = choice(models[provider])
        r = roll()
        status = _STATUSES[-1][0]
        for code, share in _STATUSES:
            if r < share:
                status = code
                break
        success = status < 400
        cached = success and roll() < 0.08
        if success:
            tokens_in: int | None = max(1, min(200_000, int(lognorm(6.0, 1.0))))
            tokens_out: int | None = max(1, min(32_000, int(lognorm(5.0, 0.9))))
            # ASSUMPTION: a cache hit costs nothing (no provider call), though its tokens are reported.
            cost = 0.0 if cached else cost_usd(provider, model, tokens_in, tokens_out)
            duration = int(uniform(3, 40)) if cached else int(150 + (tokens_out or 0) * uniform(4, 15))
        else:
            tokens_in = tokens_out = None
            cost = 0.0
            duration = int(uniform(20, 400)) if status != 500 else int(uniform(500, 30_000))
        stamp = stamp_cache.get(ms)
        if stamp is None:
            stamp = stamp_cache[ms] = format_timestamp(datetime.fromtimestamp(ms / 1000, UTC))
        metadata = choice(team_metadata) if roll() < 0.5 else None
        rows.append(
            (
                ulid_at(ms, ids.getrandbits(80)),
                stamp,
                provider,
                model,
                "chat",
                _path(provider, model),
                duration,
                int(success),
                int(cached),
                status,
                tokens_in,
                tokens_out,
                cost,
                metadata,
                0,
                "application/json",
                "application/json",
            )
        )
    return rows


def _seed(context: TwinContext, spec: SeedSpec) -> dict[str, Any]:
    rows = generate_seed_rows(spec)
    inserted = 0
    for offset in range(0, len(rows), _CHUNK):
        inserted += insert_log_tuples(
            context.db, spec.account_id, spec.gateway_id, _SEED_COLUMNS, rows[offset : offset + _CHUNK]
        )
    tokens_in_at, tokens_out_at, cost_at = (_SEED_COLUMNS.index(c) for c in ("tokens_in", "tokens_out", "cost"))
    generated = {
        "count": len(rows),
        "tokens_in": sum(r[tokens_in_at] or 0 for r in rows),
        "tokens_out": sum(r[tokens_out_at] or 0 for r in rows),
        "cost": sum(r[cost_at] for r in rows),
    }
    return {
        "inserted": inserted,
        "generated": generated,
        "stats": log_stats(context.db, spec.account_id, spec.gateway_id),
    }


async def seed_logs(request: Request) -> Response:
    raw = await request.body()
    try:
        body = jsonbody.loads(raw) if raw.strip() else {}
    except ValueError:
        return admin_error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return admin_error(400, "the body must be a JSON object")
    try:
        spec = SeedSpec(body)
    except _BadRequest as exc:
        return admin_error(400, str(exc))
    context = twin_context(request)
    if get_gateway(context.db, spec.account_id, spec.gateway_id) is None:
        return admin_error(404, f"no gateway {spec.gateway_id!r} in account {spec.account_id!r}; create it first")
    # Seconds of work for large counts: off the event loop, so that the twin keeps answering.
    result = await run_in_threadpool(_seed, context, spec)
    return JSONResponse(result, status_code=201)


async def logs_stats(request: Request) -> Response:
    account_id = request.query_params.get("account_id", "")
    gateway_id = request.query_params.get("gateway_id", "")
    if not account_id or not gateway_id:
        return admin_error(400, "account_id and gateway_id are required query parameters")
    context = twin_context(request)
    if get_gateway(context.db, account_id, gateway_id) is None:
        return admin_error(404, f"no gateway {gateway_id!r} in account {account_id!r}")
    return JSONResponse(log_stats(context.db, account_id, gateway_id))


routes: list[BaseRoute] = [
    Route("/logs/seed", seed_logs, methods=["POST"]),
    Route("/logs/stats", logs_stats, methods=["GET"]),
]
