"""``aigw.steps.polling.PollSchedule``: soon during the first seconds of a wait, then less often."""

from __future__ import annotations

from aigw.steps import logs_analysis
from aigw.steps.polling import PollSchedule


def test_a_schedule_reads_often_at_first_then_less_often() -> None:
    schedule = PollSchedule(fast_s=0.25, fast_for_s=5.0, slow_s=0.5)
    assert [schedule.pause(t) for t in (0.0, 4.99, 5.0, 60.0)] == [0.25, 0.25, 0.5, 0.5]


def test_a_sixty_second_wait_stays_a_small_share_of_the_api_budget() -> None:
    # 04's schedule, as check_run_logs sleeps it (a read, 0.1 s, a read, then the schedule): at most 132 reads of
    # Cloudflare's 1,200 per 5 minutes.
    schedule, waited, reads = logs_analysis._RUN_LOGS_POLL, 0.1, 2
    while waited < 60.0:
        waited += schedule.pause(waited)
        reads += 1
    assert reads <= 132
