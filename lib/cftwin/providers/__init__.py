"""The emulated upstream providers (OpenAI, Anthropic, Google AI Studio): formats, keys, prices, latency.

Served directly under ``/__providers__/{slug}/...`` (as if ``api.openai.com`` etc.) and called in-process
by the gateway data plane; both paths share one implementation.
"""
