#!/usr/bin/env python3
"""Decode an HdrHistogram interval log with HdrHistogram's Python reader
(package hdrhistogram) and print, per tag, the total count, the number of
intervals and the largest value, as JSON. The driver tests use it as an
independent check of latency.hlog."""
import sys, json
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
ref = HdrHistogram(1000, 3600 * 10**9, 3)
reader = HistogramLogReader(sys.argv[1], ref)
totals = {}
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag()
    t = totals.setdefault(tag, {"count": 0, "intervals": 0, "max": 0})
    t["count"] += h.get_total_count()
    t["intervals"] += 1
    t["max"] = max(t["max"], h.get_max_value())
print(json.dumps(totals, sort_keys=True))
