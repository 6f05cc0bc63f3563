#!/usr/bin/env python3
"""Checks the grants that several demo replicas, run as separate processes against one database, printed:
every fencing number is used once, no slot has two calls running at once, and never more than SLOTS calls run
at once across the replicas. Usage: check-cluster-grants.py SLOTS LOG [LOG...]"""
import re
import sys

slots = int(sys.argv[1])
pattern = re.compile(r"cluster grant task=(\S+) slot=(\d+) fence=(\d+) start=([\d.]+) end=([\d.]+)")
grants = []
for path in sys.argv[2:]:
    found = [m.groups() for m in map(pattern.search, open(path)) if m]
    if not found:
        sys.exit(f"{path}: no cluster grants: the replica ran no GPU call through the cluster")
    grants += [(task, int(slot), int(fence), float(start), float(end)) for task, slot, fence, start, end in found]

fences = [g[2] for g in grants]
if len(set(fences)) != len(fences):
    sys.exit("a fencing number was granted twice")
if any(not 0 <= g[1] < slots for g in grants):
    sys.exit(f"a slot outside 0..<{slots}")
for slot in range(slots):
    on_slot = sorted((g for g in grants if g[1] == slot), key=lambda g: g[3])
    for before, after in zip(on_slot, on_slot[1:]):
        if after[3] < before[4]:
            sys.exit(f"slot {slot}: {after[0]} started before {before[0]} ended")
        if after[2] < before[2]:
            sys.exit(f"slot {slot}: {after[0]} has a smaller fence than {before[0]}, which ran before it")
events = sorted([(g[3], 1) for g in grants] + [(g[4], -1) for g in grants], key=lambda e: (e[0], e[1]))
running = most = 0
for _, change in events:
    running += change
    most = max(most, running)
if most > slots:
    sys.exit(f"{most} calls ran at once on {slots} slots")
replicas = len(sys.argv) - 2
print(f"checked {len(grants)} grants from {replicas} processes: fences unique, slots never shared, "
      f"at most {most} of {slots} running at once")
