"""API token operations: is the token active, and is it a user's or an account's."""

from __future__ import annotations

from aigw.cloudflare.base import ClientBase
from aigw.cloudflare.results import TokenStatus, as_object
from aigw.errors import AuthenticationError, CloudflareError, NotFoundError

__all__ = ["TokenOperations"]


class TokenOperations(ClientBase):
    def verify_token(self) -> TokenStatus:
        """The API token's status (``GET /user/tokens/verify``).

        An account-owned token is not a user token: when the user endpoint says 401, the account's
        ``/accounts/{a}/tokens/verify`` is asked; if that fails too, the first error stands, unless the
        account id names no account (7003): then that is what to fix.
        """
        try:
            env = self._send("GET", "user/tokens/verify")
            return TokenStatus.from_api(as_object(env, "a token", "GET", "/user/tokens/verify"), "user")
        except AuthenticationError as first:
            return self._verify_account_token(first)

    def _verify_account_token(self, first: AuthenticationError) -> TokenStatus:
        path = self._account("tokens/verify")
        try:
            env = self._send("GET", path)
        except NotFoundError as missing:
            if missing.status != 400 or 7003 not in missing.codes:
                raise first from None  # not "Could not route to ...": the endpoint, not the account
            raise NotFoundError(
                f"account {self.account_id} does not exist: {missing.message}", status=missing.status,
                errors=missing.errors, method=missing.method, path=missing.path,
                hint="Check CLOUDFLARE_ACCOUNT_ID (dashboard: Account Home > account menu > Copy account ID)",
            ) from None
        except CloudflareError:
            raise first from None
        return TokenStatus.from_api(as_object(env, "a token", "GET", "/" + path), "account")
