"""aigw: the runbook library for standing up a Cloudflare AI Gateway, and its local twin."""

__version__ = "0.1.0"
