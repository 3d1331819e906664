"""Secrets Store operations: the account's store and the secrets in it (values are write-only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aigw.cloudflare.base import ClientBase
from aigw.cloudflare.envelope import Envelope
from aigw.cloudflare.pages import pages
from aigw.cloudflare.results import Store, StoreSecret, as_object
from aigw.config import Secret

__all__ = ["SecretsStoreOperations"]


class SecretsStoreOperations(ClientBase):
    def _store_path(self, store_id: str | None = None, rest: str = "") -> str:
        path = "secrets_store/stores"
        if store_id is not None:
            path += f"/{quote(store_id, safe='')}"
        if rest:
            path += f"/{rest}"
        return self._account(path)

    # -- stores ----------------------------------------------------------------------------------------------

    def list_stores(self) -> list[Store]:
        return [Store.from_api(item) for item in self._list_all(self._store_path())]

    def find_store(self, name: str) -> Store | None:
        return next((store for store in self.list_stores() if store.name == name), None)

    def get_store(self, store_id: str) -> Store:
        path = self._store_path(store_id)
        env = self._send("GET", path)
        return Store.from_api(as_object(env, "a store", "GET", "/" + path))

    def create_store(self, name: str) -> Store:
        path = self._store_path()
        recover = self._recover_from_list(path, lambda item: item.get("name") == name)
        env = self._send("POST", path, body={"name": name}, idempotent=False, recover=recover)
        result = env.result[0] if isinstance(env.result, list) and env.result else env.result
        return Store.from_api(as_object(Envelope(env.status, result), "a store", "POST", "/" + path))

    def delete_store(self, store_id: str, force: bool = False) -> None:
        """Delete the store; a store that still holds secrets needs ``force`` (else ``ConflictError``)."""
        params = [("force", "true")] if force else None
        self._send("DELETE", self._store_path(store_id), params=params, missing_ok=True)

    # -- secrets ---------------------------------------------------------------------------------------------

    def list_secrets(self, store_id: str, search: str | None = None) -> list[StoreSecret]:
        params = [("search", search)] if search else []
        items = self._list_all(self._store_path(store_id, "secrets"), params)
        return [StoreSecret.from_api(item, store_id) for item in items]

    def find_secret(self, store_id: str, name: str) -> StoreSecret | None:
        return next((s for s in self.list_secrets(store_id, search=name) if s.name == name), None)

    def get_secret(self, store_id: str, secret_id: str) -> StoreSecret:
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        env = self._send("GET", path)
        return StoreSecret.from_api(as_object(env, "a secret", "GET", "/" + path), store_id)

    def create_secret(
        self,
        store_id: str,
        name: str,
        value: Secret,
        scopes: Sequence[str] = ("ai_gateway",),
        comment: str | None = None,
    ) -> StoreSecret:
        """Store ``value`` as secret ``name`` (Cloudflare takes a JSON array of secrets; this sends one)."""
        item: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if comment is not None:
            item["comment"] = comment
        path = self._store_path(store_id, "secrets")

        def recover(deadline_at: float) -> Envelope | None:
            # Searched by name, and read only until found: a store may hold many secrets.
            for page in pages(self._get(path, deadline_at), path, [("search", name)]):
                found = next((entry for entry in page if entry.get("name") == name), None)
                if found is not None:
                    return Envelope(200, found)
            return None

        item["value"] = value.reveal()
        env = self._send("POST", path, body=[item], idempotent=False, recover=recover, secrets=(value,))
        result = env.result
        if isinstance(result, list):
            result = next((r for r in result if isinstance(r, Mapping) and r.get("name") == name), None)
        return StoreSecret.from_api(as_object(Envelope(env.status, result), "a secret", "POST", "/" + path), store_id)

    def update_secret(
        self, store_id: str, secret_id: str, value: Secret | None = None, comment: str | None = None
    ) -> StoreSecret:
        """PATCH the secret: a new value (rotation) and/or comment. Repeating it is harmless."""
        body: dict[str, Any] = {}
        if comment is not None:
            body["comment"] = comment
        if value is not None:
            body["value"] = value.reveal()
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        extra = (value,) if value is not None else ()
        env = self._send("PATCH", path, body=body, secrets=extra)
        return StoreSecret.from_api(as_object(env, "a secret", "PATCH", "/" + path), store_id)

    def delete_secret(self, store_id: str, secret_id: str) -> None:
        path = self._store_path(store_id, f"secrets/{quote(secret_id, safe='')}")
        self._send("DELETE", path, missing_ok=True)
