"""Provider reputation, 0–1000, from the seed's formula, in integer arithmetic.

    score = (uptime·0.4 + response·0.2 + completion·0.3 + (1 − disputes)·0.1) · 1000
            − penalties + rewards, clamped to 0..1000

Each term is kept in basis points (0..10000) so the score is exact and reproducible; a
provider without data on a term gets full marks on it (new providers start at 1000 and
lose points by evidence, not by absence of it).
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000
MAX_SCORE = 1000


@dataclass(frozen=True)
class ReputationStats:
    total_jobs: int = 0          # jobs that reached an outcome (completed or resolved)
    completed_jobs: int = 0      # of those, completed without provider fault
    disputes: int = 0            # resolved disputes not decided as the renter's fault
    accepted_jobs: int = 0
    response_seconds_total: int = 0  # created → accepted, summed over accepted jobs
    uptime_seconds: int = 0      # reported by the oracle
    expected_seconds: int = 0
    penalty: int = 0
    bonus: int = 0


def _ratio_bps(num: int, den: int, default: int) -> int:
    if den <= 0:
        return default
    return max(0, min(BPS, num * BPS // den))


def terms_bps(stats: ReputationStats, response_max_seconds: int) -> dict[str, int]:
    uptime = _ratio_bps(stats.uptime_seconds, stats.expected_seconds, BPS)
    if stats.accepted_jobs > 0:
        avg = stats.response_seconds_total // stats.accepted_jobs
        response = BPS - _ratio_bps(min(avg, response_max_seconds), response_max_seconds, 0)
    else:
        response = BPS
    completion = _ratio_bps(stats.completed_jobs, stats.total_jobs, BPS)
    disputes = _ratio_bps(stats.disputes, stats.total_jobs, 0)
    return {"uptime": uptime, "response": response, "completion": completion, "disputes": disputes}


def score(stats: ReputationStats, response_max_seconds: int = 3600) -> int:
    t = terms_bps(stats, response_max_seconds)
    # weights 4:2:3:1 out of 10, times 1000 / BPS  ==  / 100
    base = (4 * t["uptime"] + 2 * t["response"] + 3 * t["completion"] + (BPS - t["disputes"])) // 100
    return max(0, min(MAX_SCORE, base - stats.penalty + stats.bonus))
