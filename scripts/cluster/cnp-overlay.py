#!/usr/bin/env python3
"""The two SCTP-only changes the network-policy-api conformance suite needs on this kernel.

This kernel has no SCTP sockets (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with
EPROTONOSUPPORT), so upstream's suite cannot run here unchanged:

  1. Its base pods carry `agnhost porter` containers serving SCTP; porter exits when it
     cannot listen, so the StatefulSets never become Ready and the whole suite stops in
     setup. They are left out of base/manifests.yaml (nothing else is changed there).
  2. Its subtests mix SCTP pokes among TCP and UDP ones; an SCTP poke fails in the client
     pod before any packet is sent. kubernetes.PokeServer logs an SCTP poke as
     "SCTP POKE NOT RUN" with what it expected and returns, so the subtest's TCP and UDP
     pokes still run. conformance-cnp-report.py counts them per test.
  3. The four SCTP-only tests (CNP{Admin,Baseline}Tier{Ingress,Egress}SCTP) must be
     reported as skipped, not passed: the suite's Options.SkipTests does that, but its test
     binary has no flag for it, so utils/flags gains `-skip-tests` (comma-separated short
     names) and suite.New adds those names to SkipTests.

Nothing else in the suite is changed. The module is copied from the module cache into
OUT_DIR/network-policy-api (under build/, never into the repository; `go build -overlay`
refuses files in the module cache) and the edits are made there; build-components.sh
builds the test binary with a `replace` of the module by that copy:

  cnp-overlay.py MODULE_DIR OUT_DIR   -> OUT_DIR/network-policy-api (edited copy)
"""
import os
import re
import shutil
import sys

SCTP_PORTERS = 10  # two per StatefulSet, five StatefulSets


def strip_sctp_porters(text: str) -> str:
    """Drops every container item (`        - name:` and its deeper-indented lines) whose env
    sets SERVE_SCTP_PORT_*."""
    out, item, removed = [], [], 0

    def flush() -> None:
        nonlocal removed
        if any("SERVE_SCTP_PORT_" in line for line in item):
            removed += 1
        else:
            out.extend(item)
        item.clear()

    for line in text.split("\n"):
        if line.startswith("        - name: "):
            flush()
            item.append(line)
        elif item and line.startswith("          "):
            item.append(line)
        else:
            flush()
            out.append(line)
    flush()
    if removed != SCTP_PORTERS:
        sys.exit(f"cnp-overlay: expected {SCTP_PORTERS} SCTP porter containers, found {removed}")
    return "\n".join(out)


def skip_sctp_pokes(text: str) -> str:
    signature = re.compile(
        r"(func PokeServer\(t \*testing\.T, [^)]*protocol, targetHost string, "
        r"targetPort int32, timeoutConfig config\.TimeoutConfig, shouldConnect bool\) \{\n)")
    if len(signature.findall(text)) != 1:
        sys.exit("cnp-overlay: kubernetes.PokeServer's signature is not the one expected")
    guard = (
        '\tif protocol == "sctp" {\n'
        '\t\tt.Logf("SCTP POKE NOT RUN (this kernel has no SCTP sockets): %s/%s -> %s:%d '
        'shouldConnect=%v", clientNamespace, clientPod, targetHost, targetPort, shouldConnect)\n'
        "\t\treturn\n"
        "\t}\n")
    return signature.sub(lambda m: m.group(1) + guard, text)


def exactly_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        sys.exit(f"cnp-overlay: {what} is not the one expected")
    return text.replace(old, new)


def add_skip_tests_flag(text: str) -> str:
    return exactly_once(
        text, "\n// Required for Conformance Profiles\n",
        '\nvar SkipTests = flag.String("skip-tests", "", '
        '"Comma-separated short names of tests to skip (reported as skipped)")\n'
        "\n// Required for Conformance Profiles\n", "utils/flags/flag.go")


def use_skip_tests_flag(text: str) -> str:
    text = exactly_once(
        text, '\t"sigs.k8s.io/network-policy-api/conformance/utils/config"\n',
        '\t"sigs.k8s.io/network-policy-api/conformance/utils/config"\n'
        '\t"sigs.k8s.io/network-policy-api/conformance/utils/flags"\n', "suite.go's imports")
    return exactly_once(
        text, "SkipTests:         sets.New(s.SkipTests...),",
        "SkipTests:         sets.New(append(s.SkipTests, strings.FieldsFunc(*flags.SkipTests, "
        "func(r rune) bool { return r == ',' })...)...),", "suite.New's SkipTests")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    module, out = sys.argv[1], os.path.join(os.path.abspath(sys.argv[2]), "network-policy-api")
    if os.path.exists(out):
        shutil.rmtree(out)
    # The module cache's files are read-only; the copy's must be writable to be edited.
    shutil.copytree(module, out, copy_function=shutil.copyfile)
    for rel, edit in (("conformance/base/manifests.yaml", strip_sctp_porters),
                      ("conformance/utils/kubernetes/helper.go", skip_sctp_pokes),
                      ("conformance/utils/flags/flag.go", add_skip_tests_flag),
                      ("conformance/utils/suite/suite.go", use_skip_tests_flag)):
        path = os.path.join(out, rel)
        with open(path, encoding="utf-8") as f:
            text = edit(f.read())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
