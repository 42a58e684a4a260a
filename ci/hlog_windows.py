#!/usr/bin/env python3
"""Split one tag of an HdrHistogram interval log into the intervals that
overlap any of a run's job windows and the rest, with HdrHistogram's Python
reader (package hdrhistogram), and print the count and p99 of each side as
JSON. tests/jobs.rs uses it as an independent check of the report's
"p99 during jobs" table.

usage: hlog_windows.py LOG TAG STARTED_S WARMUP_S INTERVAL_S START-END ...

STARTED_S is the variant's start after the log's StartTime; WARMUP_S, the
interval length and the windows are seconds after the variant's start. An
interval is warm-up when its middle falls in the warm-up; it is during a job
when it overlaps the window [start, end) (a window of no length counts as
1 ms). Quantiles follow HdrHistogram's definition, as in hlog_counts.py."""
import sys, json, math
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

path, tag = sys.argv[1], sys.argv[2]
started, warmup, interval = (float(x) for x in sys.argv[3:6])
windows = [tuple(float(x) for x in w.split("-")) for w in sys.argv[6:]]

log_start = None
with open(path) as f:
    for line in f:
        if line.startswith("#[StartTime:"):
            log_start = float(line.split()[1])
            break
if log_start is None:
    sys.exit(f"{path}: no #[StartTime: ...] line")

lowest, highest = 1000, 3600 * 10**9
inside = HdrHistogram(lowest, highest, 3)
outside = HdrHistogram(lowest, highest, 3)
reader = HistogramLogReader(path, HdrHistogram(lowest, highest, 3))
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    if h.get_tag() != tag:
        continue
    # The reader gives absolute milliseconds (the log's BaseTime added).
    t = h.get_start_time_stamp() / 1000.0 - log_start - started
    if t + interval / 2 < warmup:
        continue
    during = any(t < max(e, s + 1e-3) and t + interval > s for s, e in windows)
    (inside if during else outside).add(h)


def p99(h):
    n = h.get_total_count()
    if n == 0:
        return None
    want = max(1, math.ceil(0.99 * n))
    seen = 0
    for item in h.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= want:
            return h.get_highest_equivalent_value(item.value_iterated_to)


print(json.dumps({
    "inside": {"count": inside.get_total_count(), "p99": p99(inside)},
    "outside": {"count": outside.get_total_count(), "p99": p99(outside)},
}))
