"""The metric names a PromQL expression reads (what rules and dashboard panels depend on).

Good enough for hcp's own expressions: label matchers, strings, ranges and grouping
clauses are cut out first, then every remaining identifier that is not a PromQL function
or keyword is a metric name.
"""

from __future__ import annotations

import re

_WORDS = """
and or unless by without on ignoring group_left group_right offset bool atan2
sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week
day_of_year days_in_month delta deriv exp floor histogram_quantile holt_winters hour idelta
increase irate label_join label_replace ln log2 log10 minute month predict_linear rate resets
round scalar sgn sort sort_desc sqrt time timestamp vector year avg_over_time min_over_time
max_over_time sum_over_time count_over_time quantile_over_time stddev_over_time
stdvar_over_time last_over_time present_over_time inf nan Inf NaN
"""
_KEYWORDS = frozenset(_WORDS.split())

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)")
_NUMBER_UNIT = re.compile(r"\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)\b")
_GRAFANA_VARS = re.compile(r"\$\{?\w+\}?")


def metric_names(expr: str) -> set[str]:
    text = _GRAFANA_VARS.sub("1", expr)
    text = _STRINGS.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER_UNIT.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        word = m.group(1)
        if word in _KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names
