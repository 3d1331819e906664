"""``python -m bench.undelayed_run ARGS...``: ``aigw ARGS...`` with the twin's emulated delays off
(``cftwin.timing.NO_DELAYS``: no secret ``pending``, logs and cache writes visible at once).

For ``run_notebooks``' notes only: it splits the run's time into the runbook's own work and the waits the twin
emulates for Cloudflare (02's pending secret, the logs 03 and 04 wait for). Never a way to rehearse: the folder it
seals does not say the delays were off, so the bench throws it away.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cftwin.context
from aigw.cli import entry
from cftwin.timing import NO_DELAYS


@dataclass
class _Undelayed(cftwin.context.TwinOptions):
    log_delay_s: float = NO_DELAYS["log_delay_s"]
    cache_write_delay_s: float = NO_DELAYS["cache_write_delay_s"]
    secret_pending_s: float = NO_DELAYS["secret_pending_s"]


def main() -> int:
    # aigw.background_twin imports TwinOptions from cftwin.context when it starts the run's twin.
    cftwin.context.TwinOptions = _Undelayed  # type: ignore[misc]
    sys.argv = ["aigw", *sys.argv[1:]]
    return entry()


if __name__ == "__main__":
    sys.exit(main())
