"""Secrets Store: stores and secrets (``models`` / ``responses``). Values are write-only through the API."""
