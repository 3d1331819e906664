"""Logpush for the ``ai_gateway_events`` dataset: jobs (models, responses), destinations, encryption, delivery."""
