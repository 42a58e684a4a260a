#!/usr/bin/env python3
"""Decode HdrHistogram interval logs with HdrHistogram's Python reader
(package hdrhistogram) and print, per tag, the total count, the number of
intervals, the largest value, and the p50 and p99 of the union of every
interval of every log given (in the log's unit), as JSON. The driver tests
use it as an independent check of latency.hlog; the shard test to compute
the exact quantiles of its shards' union.

Quantiles follow HdrHistogram's definition (the Java and Rust
implementations): the highest value equivalent to the smallest recorded
value whose cumulative count reaches ceil(q * total)."""
import sys, json, math
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

totals = {}
unions = {}
for path in sys.argv[1:]:
    ref = HdrHistogram(1000, 3600 * 10**9, 3)
    reader = HistogramLogReader(path, ref)
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        tag = h.get_tag()
        t = totals.setdefault(tag, {"count": 0, "intervals": 0, "max": 0})
        t["count"] += h.get_total_count()
        t["intervals"] += 1
        t["max"] = max(t["max"], h.get_max_value())
        u = unions.setdefault(tag, HdrHistogram(1000, 3600 * 10**9, 3))
        u.add(h)


def quantile(h, q):
    n = h.get_total_count()
    want = max(1, math.ceil(q * n))
    seen = 0
    for item in h.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= want:
            return h.get_highest_equivalent_value(item.value_iterated_to)
    return 0


for tag, u in unions.items():
    totals[tag]["p50"] = quantile(u, 0.5)
    totals[tag]["p99"] = quantile(u, 0.99)
print(json.dumps(totals, sort_keys=True))
