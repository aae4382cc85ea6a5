"""Compare a peer project's test file run without and with ``numbadask.accelerate()``.

Usage: python ci/compare_junit.py LABEL PLAIN_XML ACCELERATED_XML OUT_DIR SECONDS

Reads the two junit XML files ci/peer_suite.sh wrote, prints each run's counts, the
regressions (tests that pass without accelerate() and fail, error, skip or are missing
with it) and the tests accelerate() fixes, and writes OUT_DIR/regressions.txt (their
ids, one a line) and OUT_DIR/regressions-errors.txt (each one's message and traceback
from the accelerated run).  Exits 1 when there is a regression, or when a run left no
XML or the plain run passed nothing (a broken setup would otherwise pass vacuously).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def results(path: str) -> dict[str, tuple[str, str, str]]:
    """Test id -> (outcome, message, text) for every testcase in a junit XML file."""
    res = {}
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome, message, text = "passed", "", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message, text = child.get("message") or "", child.text or ""
                break
            if child.tag == "skipped":
                outcome, message = "skipped", child.get("message") or ""
        res[name] = (outcome, message, text)
    return res


def counts(res: dict[str, tuple[str, str, str]]) -> dict[str, int]:
    return {k: sum(v[0] == k for v in res.values()) for k in ("passed", "failed", "skipped")}


def main(label: str, plain_xml: str, accel_xml: str, out: str, seconds: str) -> int:
    missing = [p for p in (plain_xml, accel_xml) if not Path(p).is_file()]
    if missing:
        print(f"{label}: no junit XML from a run: {', '.join(missing)} (did pytest start?)")
        return 1
    plain, accel = results(plain_xml), results(accel_xml)
    regressions = sorted(n for n, v in plain.items() if v[0] == "passed" and accel.get(n, ("missing",))[0] != "passed")
    fixed = sorted(n for n, v in accel.items() if v[0] == "passed" and plain.get(n, ("",))[0] == "failed")
    print(f"{label} without accelerate(): {counts(plain)}")
    print(f"{label} with accelerate():    {counts(accel)}")
    print(f"regressions (pass without, not with): {len(regressions)}; fixed: {len(fixed)}; both runs: {seconds} s")
    with open(f"{out}/regressions.txt", "w") as ids, open(f"{out}/regressions-errors.txt", "w") as errors:
        for n in regressions:
            outcome, message, text = accel.get(n, ("missing", "", ""))
            first = message.strip().splitlines()[0] if message.strip() else ""
            print(f"  REGRESSION {n} ({outcome}){': ' + first[:300] if first else ''}")
            ids.write(n + "\n")
            errors.write(f"=== {n} ({outcome})\n{message}\n{text}\n\n")
    if counts(plain)["passed"] == 0:
        print(f"{label}: nothing passed without accelerate(): the suite did not run")
        return 1
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
