"""The gateway data plane: ``/v1/{account_id}/{gateway_id}/...`` as ``gateway.ai.cloudflare.com``.

Per request: find the gateway (``default`` is created on first use), check ``cf-aig-authorization``
(authenticated gateways), rate limit, look in the cache, resolve the provider key (the request's own,
else BYOK from Secrets Store), call the emulated provider in-process (with timeout, retries and
injected faults), and write one log (group-committed, visible before the response is sent).

Modules: ``responses`` (the endpoints and the pipeline), ``options`` (the ``cf-aig-*`` headers),
``keys`` (BYOK resolution), ``cache``, ``ratelimit``, ``compat`` (OpenAI format to and from each
provider's), ``logwriter``, ``errors`` (``AiGatewayError`` bodies), ``admin`` (``/__twin__`` routes).
"""
