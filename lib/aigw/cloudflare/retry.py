"""The retry policy of one operation: attempts, backoff, deadlines, and check-before-retry.

``RetryLoop.send`` repeats ``Transport.attempt`` while it fails in a way worth repeating (429, 5xx, no
answer), with jittered exponential backoff and ``Retry-After``, bounded by the operation's deadline. A
429 that says how long the budget is blocked (``Retry-After``, up to 300 s: Cloudflare blocks until its
five-minute window ends) is waited out even past that deadline, never past the run's, with log lines
saying so. A non-idempotent request whose outcome is unknown (sent, then a timeout, a dropped connection
or a 5xx) is never blindly repeated: ``recover`` checks first whether it took effect and returns what it
made (also when the repeat is refused as a duplicate: a 409, AI Gateway's 7001, Secrets Store's 1003).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aigw._http import ClientStats, Clock, RetryPolicy, Sleep
from aigw.cloudflare.budget import RequestBudget
from aigw.cloudflare.envelope import Envelope, with_note
from aigw.cloudflare.transport import Failure, Request, Transport
from aigw.errors import (
    AigwError,
    CloudflareError,
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    QuotaExceededError,
    TransportError,
)

__all__ = ["Limits", "Recover", "RetryLoop"]

logger = logging.getLogger("aigw.cloudflare")

#: A 429 wait this long is shown as it goes (a log line at the start, then every _PROGRESS_EVERY_S).
_LONG_WAIT_S: Final = 10.0
_PROGRESS_EVERY_S: Final = 30.0

#: Given the operation's deadline, the envelope of what an earlier attempt made, or None if it made nothing.
Recover = Callable[[float], Envelope | None]


@dataclass(frozen=True)
class Limits:
    """The client's knobs as they are when an operation starts (they are public and may be changed)."""

    policy: RetryPolicy
    budget: RequestBudget
    timeout: float
    deadline_s: float
    run_deadline_at: float | None


@dataclass
class _Operation:
    """How far one operation got."""

    request: Request
    limits: Limits
    deadline_at: float
    #: How long a spent API budget may hold the operation up.
    wait_limit_at: float
    attempt: int = 0
    unknown_outcome: bool = False


def _give_up(error: AigwError, note: str, otherwise: type[AigwError]) -> AigwError:
    """``error`` with ``note`` added: a Cloudflare answer keeps its class, no answer becomes ``otherwise``."""
    if isinstance(error, CloudflareError):
        return with_note(error, note)
    return otherwise(f"{error.message} ({note})", hint=error.hint)


class RetryLoop:
    """Repeats a request's attempts until one answers, the policy gives up, or the deadline passes."""

    def __init__(self, transport: Transport, stats: ClientStats, *, clock: Clock, sleep: Sleep,
                 seed: int | None = None) -> None:
        self._transport = transport
        self._stats = stats
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def send(
        self,
        request: Request,
        limits: Limits,
        *,
        recover: Recover | None = None,
        missing_ok: bool = False,
        deadline_at: float | None = None,
    ) -> Envelope:
        """One operation: attempts, retries and the check-before-retry recovery.

        ``missing_ok``: a 404 after a retry means an earlier attempt already deleted the thing.
        ``deadline_at`` (a ``clock`` instant) replaces the operation's own deadline (``limits.deadline_s``).
        """
        op = self._start(request, limits, deadline_at)
        while True:
            op.attempt += 1
            found = self._check_first(op, recover)
            if found is not None:
                return found
            self._check_deadline(op)
            outcome = self._attempt(op, recover, missing_ok)
            if isinstance(outcome, Envelope):
                return outcome
            op.unknown_outcome = op.unknown_outcome or outcome.maybe_applied
            self._pause(op, outcome)

    def _start(self, request: Request, limits: Limits, deadline_at: float | None) -> _Operation:
        if deadline_at is None:
            deadline_at = self._clock() + limits.deadline_s
        # Without a run's deadline, a spent API budget may hold an operation up one window more.
        wait_limit_at = (limits.run_deadline_at if limits.run_deadline_at is not None
                         else deadline_at + limits.policy.max_retry_after_s)
        return _Operation(request, limits, deadline_at, wait_limit_at)

    def _check_first(self, op: _Operation, recover: Recover | None) -> Envelope | None:
        """Before repeating a request that may have taken effect: did it?"""
        if not op.unknown_outcome or recover is None:
            return None
        found = recover(op.deadline_at)
        if found is None:
            self._stats.count_recovery("absent")
            return None
        self._stats.count_recovery("took_effect")
        logger.info("%s %s had taken effect; recovered without repeating it", op.request.method, op.request.shown)
        return found

    def _check_deadline(self, op: _Operation) -> None:
        if op.deadline_at - self._clock() <= 0:
            request = op.request
            raise DeadlineExceededError(
                f"{request.method} {request.shown} ran out of its {op.limits.deadline_s:g} s deadline after "
                f"{op.attempt - 1} attempt(s)",
                hint="Cloudflare is slow or unreachable; run again later (re-running is safe)",
            )

    def _attempt(self, op: _Operation, recover: Recover | None, missing_ok: bool) -> Envelope | Failure:
        limits = op.limits
        try:
            return self._transport.attempt(op.request, budget=limits.budget, timeout=limits.timeout,
                                           deadline_at=op.deadline_at, attempt=op.attempt)
        except (ConflictError, QuotaExceededError):
            # After a lost answer, "already exists" (or, for the one store an account may have,
            # maximum_stores_exceeded) may be this very request's doing: check, and adopt it.
            if op.unknown_outcome and recover is not None:
                found = recover(op.deadline_at)
                if found is not None:
                    self._stats.count_recovery("took_effect")
                    return found
            raise
        except NotFoundError as missing:
            if missing_ok and op.attempt > 1:
                # A retried delete whose first attempt went through: the goal is reached.
                self._stats.count_recovery("already_gone")
                return Envelope(missing.status, None)
            raise

    def _backoff(self, policy: RetryPolicy, retry: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return policy.backoff(retry, self._rng, retry_after)

    def _pause(self, op: _Operation, failure: Failure) -> None:
        """Wait before the next attempt, or raise when there is to be none."""
        if op.attempt >= op.limits.policy.attempts:
            raise _give_up(failure.error, f"gave up after {op.attempt} attempts", TransportError) from None
        delay = self._backoff(op.limits.policy, op.attempt, failure.retry_after)
        blocked = failure.reason == "429" and failure.retry_after is not None
        if blocked:
            self._extend_for_budget(op, failure, delay)
        if self._clock() + delay >= op.deadline_at:
            note = f"no time left in the {op.limits.deadline_s:g} s deadline to retry after {op.attempt} attempt(s)"
            raise _give_up(failure.error, note, DeadlineExceededError) from None
        self._stats.count_retry(failure.reason)
        if blocked and delay >= _LONG_WAIT_S:
            self._wait_out_budget(op.request, delay)
        else:
            logger.info("retrying %s %s after %s in %.2f s (attempt %d)",
                        op.request.method, op.request.shown, failure.reason, delay, op.attempt)
            self._sleep(delay)

    def _extend_for_budget(self, op: _Operation, failure: Failure, delay: float) -> None:
        """A spent budget blocks every call until its window ends: waiting it out is the only way on, so
        the wait may pass this operation's deadline, not the run's."""
        ready_at = self._clock() + delay + op.limits.timeout
        if ready_at > op.wait_limit_at:
            assert isinstance(failure.error, CloudflareError)
            raise with_note(failure.error, f"the API budget is blocked for {delay:.0f} s more, past the "
                                           f"run's deadline") from None
        op.deadline_at = max(op.deadline_at, ready_at)

    def _wait_out_budget(self, request: Request, delay: float) -> None:
        """Sleep ``delay`` seconds for the API budget's window to end, saying so as the wait goes on."""
        logger.warning("Cloudflare's API budget is spent (429 on %s %s): waiting %.0f s for its window to end",
                       request.method, request.shown, delay)
        left = delay
        while left > 0:
            step = min(left, _PROGRESS_EVERY_S)
            self._sleep(step)
            left -= step
            if left > 0:
                logger.warning("still waiting for Cloudflare's API budget: %.0f s left", left)
