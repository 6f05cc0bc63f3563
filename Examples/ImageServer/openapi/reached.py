"""Reads schemathesis' HAR report and fails unless the run reached a real job through every job route: a
200 or 202 (or the 409 of an unfinished job's result) from each, which only the owner's session gets."""
import json
import re
import sys
from collections import defaultdict

entries = json.load(open(sys.argv[1]))["log"]["entries"]
reached = defaultdict(set)
routes = {
    r"^/jobs/[^/]+$": "job",
    r"^/jobs/[^/]+/events$": "events",
    r"^/jobs/[^/]+/result$": "result",
    r"^/jobs/[^/]+/preview$": "preview",
    r"^/jobs/[^/]+/description$": "description",
}
for entry in entries:
    path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?")[0]
    for pattern, name in routes.items():
        if re.match(pattern, path):
            reached[name + " " + entry["request"]["method"]].add(entry["response"]["status"])
print("job routes reached, by status:", {name: sorted(codes) for name, codes in sorted(reached.items())})
missing = [
    name
    for name in ["job GET", "job DELETE", "events GET", "result GET"]
    if not reached[name] & {200, 202, 409}
]
if missing:
    sys.exit(f"the run never reached a real job through: {', '.join(missing)}")
