#!/usr/bin/env python3
"""docs/CONFORMANCE.md's ClusterNetworkPolicy tables from a conformance-cnp.sh run.

  scripts/cluster/conformance-cnp-report.py build/cluster/reports/LABEL

Reads LABEL/test.json (go test -json of the suite's binary; results and log lines),
LABEL/output.log (each test's seconds, from its `--- PASS: name (Ns)` line) and
LABEL/report.yaml (the suite's own ConformanceReport) and prints, in Markdown: the profile's result as the suite
reports it, one row per test (result, seconds, subtests passed/failed, SCTP pokes not run
on this kernel) and, under each failed test, its failed subtests.
"""
import json
import os
import re
import sys

TOP = "TestConformanceProfiles"


def load_events(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def summarize(events):
    tests, order, sctp = {}, [], {}
    for ev in events:
        name = ev.get("Test", "")
        parts = name.split("/")
        if len(parts) < 2 or parts[0] != TOP:
            continue
        top = parts[1]
        if top not in tests:
            tests[top] = {"result": "?", "seconds": 0.0, "subs": {}}
            order.append(top)
        t = tests[top]
        action = ev.get("Action")
        if action == "output" and "SCTP POKE NOT RUN" in ev.get("Output", ""):
            sctp[top] = sctp.get(top, 0) + 1
        if action in ("pass", "fail", "skip"):
            if len(parts) == 2:
                t["result"] = action
            elif len(parts) == 3:
                t["subs"][parts[2]] = action
    return tests, order, sctp


def seconds_by_test(path):
    """Each test's seconds from go test's `--- PASS: TestX/Name (12.34s)` lines."""
    result = {}
    line_re = re.compile(r"--- (?:PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = line_re.search(line)
            if m:
                result[m.group(1)] = float(m.group(2))
    return result


def profile_line(report_path):
    if not os.path.exists(report_path):
        return "no report.yaml (the suite did not finish)"
    with open(report_path, encoding="utf-8") as f:
        text = f.read()
    # The report is small YAML (no parser needed): each channel's first `result:` after it.
    parts = []
    for channel in ("standard", "experimental"):
        m = re.search(channel + r":\n(?:[ ]{4,}.*\n)*?[ ]{4}result: (\w+)", text)
        parts.append(f"{channel} {m.group(1) if m else '?'}")
    return "report.yaml: ClusterNetworkPolicy profile " + ", ".join(parts)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    tests, order, sctp = summarize(load_events(os.path.join(d, "test.json")))
    secs = seconds_by_test(os.path.join(d, "output.log"))
    for n in order:
        tests[n]["seconds"] = secs.get(f"{TOP}/{n}", 0.0)
    seconds = open(os.path.join(d, "seconds")).read().strip() if os.path.exists(
        os.path.join(d, "seconds")) else "?"
    passed = [n for n in order if tests[n]["result"] == "pass" and tests[n]["subs"]]
    failed = [n for n in order if tests[n]["result"] == "fail"]
    skipped = [n for n in order if n not in passed and n not in failed]
    subs = [a for n in passed + failed for a in tests[n]["subs"].values()]
    print(f"`{d}`: {len(passed)} of {len(passed) + len(failed)} tests that ran passed "
          f"({subs.count('pass')} of {len(subs)} subtests); "
          f"{len(skipped)} skipped; {sum(sctp.values())} SCTP pokes not run; "
          f"run time {seconds} s; {profile_line(os.path.join(d, 'report.yaml'))}\n")
    print("| test | result | s | subtests passed | SCTP pokes not run |")
    print("|---|---|---|---|---|")
    for n in order:
        t = tests[n]
        subs = t["subs"]
        ok = sum(1 for a in subs.values() if a == "pass")
        result = {"pass": "passed", "fail": "FAILED", "skip": "skipped"}.get(t["result"], t["result"])
        if t["result"] == "pass" and not subs:
            result = "skipped (SCTP only)"
        print(f"| {n} | {result} | {t['seconds']:.0f} | {ok}/{len(subs)} | {sctp.get(n, 0)} |")
    for n in failed:
        bad = [s for s, a in tests[n]["subs"].items() if a == "fail"]
        if bad:
            print(f"\n{n} failed subtests: " + "; ".join(s.replace("_", " ") for s in bad))


if __name__ == "__main__":
    main()
