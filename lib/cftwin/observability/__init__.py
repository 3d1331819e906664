"""Logs powered by Workers Observability: how an account created since 2026-09-24 reads its gateway logs.

``models`` turns the gateway's stored request logs into Workers Observability events and runs a query over
them; ``responses`` serves ``POST /client/v4/accounts/{a}/workers/observability/telemetry/query``.
"""
