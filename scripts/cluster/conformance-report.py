#!/usr/bin/env python3
"""docs/CONFORMANCE.md's tables from ginkgo's JSON reports (conformance.sh writes them).

  scripts/cluster/conformance-report.py build/cluster/reports/LABEL/report.json ...

Prints, per report, a summary line and one row per spec that ran (name, result, seconds),
and the specs skipped by the focus's own skip pattern (SCTP), in Markdown.
"""
import json
import sys


def rows(path):
    with open(path) as f:
        suites = json.load(f)
    specs = []
    for suite in suites:
        for spec in suite.get("SpecReports", []):
            if spec.get("LeafNodeType") != "It":
                continue
            name = " ".join(spec.get("ContainerHierarchyTexts") or []) + " " + spec.get("LeafNodeText", "")
            if "[sig-network] Netpol" not in name:
                continue
            runtime = spec.get("RunTime", 0) / 1e9
            specs.append((name.strip(), spec.get("State", "?"), runtime))
    return suites, sorted(specs)


for path in sys.argv[1:]:
    suites, specs = rows(path)
    ran = [s for s in specs if s[1] not in ("skipped", "pending")]
    passed = [s for s in ran if s[1] == "passed"]
    skipped = [s for s in specs if s[1] == "skipped"]
    total = sum(s.get("RunTime", 0) for s in suites) / 1e9
    print(f"`{path}`: {len(passed)} of {len(ran)} specs that ran passed; "
          f"{len(skipped)} skipped; suite run time {total / 60:.1f} min\n")
    print("| spec | result | s |")
    print("|---|---|---|")
    for name, state, seconds in ran:
        print(f"| {name} | {state} | {seconds:.0f} |")
    if skipped:
        print()
        print("Skipped (`--skip=SCTPConnectivity`: this kernel has no SCTP sockets):")
        print()
        for name, _, _ in skipped:
            print(f"- {name}")
    print()
