"""The metric families narrate exposes, as the series a query names (histograms by ``_bucket``).

One list for the tests that check the registry exposes them (tests/narrate/ops/test_metrics.py)
and that the Grafana dashboard charts each of them (tests/monitoring/test_rules.py).
"""

from __future__ import annotations

FAMILIES = frozenset(
    {
        "narrate_stage_duration_seconds_bucket",
        "narrate_llm_requests_total",
        "narrate_llm_request_duration_seconds_bucket",
        "narrate_llm_time_to_first_token_seconds_bucket",
        "narrate_llm_tokens_total",
        "narrate_llm_in_flight_requests",
        "narrate_llm_retries_total",
        "narrate_llm_failovers_total",
        "narrate_llm_fallbacks_total",
        "narrate_llm_truncations_total",
        "narrate_cache_requests_total",
        "narrate_items_total",
    }
)
