#!/usr/bin/env python3
"""Captures tests/kube/testdata/replay from the running cluster's kube-apiserver (root).

What tests/kube/replay_test.cpp replays to kube::ListWatch, taken from the real server:
  list-page-1.json, list-page-2.json  GET .../pods?limit=3 and the page its continue token names
  watch.jsonl                         a watch from the list's resourceVersion with bookmarks:
                                      pods added, relabelled, deleted (deletionTimestamp set),
                                      and the server's BOOKMARK events between them
  status-too-old.json                 the ERROR event's Status for a watch from a compacted
                                      resourceVersion (the requested one replaced by %RV%)
  status-continue-expired.json        the 410 for a continue token after etcd's compaction

  scripts/cluster/capture-replay.py [OUT_DIR]     (default: tests/kube/testdata/replay)

The pods are bound to a Node object no kubelet serves (made here, removed after), so nothing
but this script changes them (its pods would be evicted only after the 300 s default
tolerations; the capture takes about two and a half minutes).
"""
import http.client
import json
import os
import ssl
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE = os.environ.get("NETPOL_CLUSTER_STATE", "/var/lib/netpol-cluster")
BIN = os.environ.get("NETPOL_CLUSTER_BIN", os.path.join(ROOT, "build/cluster/bin"))
PORT = int(os.environ.get("NETPOL_CLUSTER_API_PORT", "6443"))
NS = "shop"


def connection(timeout=30):
    ctx = ssl.create_default_context(cafile=f"{STATE}/pki/ca.crt")
    ctx.load_cert_chain(f"{STATE}/pki/admin.crt", f"{STATE}/pki/admin.key")
    return http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=timeout)


def call(method, path, body=None, content_type="application/json"):
    c = connection()
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def call_quietly(method, path):
    try:
        return call(method, path)[0]
    except OSError:
        return 0


def must(method, path, body=None, content_type="application/json", ok=(200, 201)):
    status, data = call(method, path, body, content_type)
    if status not in ok:
        sys.exit(f"capture-replay: {method} {path}: HTTP {status}: {data[:300]!r}")
    return data


def pod(name, labels):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"nodeName": "replay-node", "containers": [
            {"name": "app", "image": "registry.k8s.io/e2e-test-images/agnhost:2.56",
             "ports": [{"name": "http", "containerPort": 8080}]}]},
    }


def relabel(name, labels):
    must("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}", {"metadata": {"labels": labels}},
         "application/merge-patch+json")


class Watch:
    """A watch read line by line as the server sends it."""

    def __init__(self, rv, timeout_seconds=300):
        self.c = connection(timeout=timeout_seconds + 30)
        self.c.request("GET", f"/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={rv}"
                       f"&allowWatchBookmarks=true&timeoutSeconds={timeout_seconds}",
                       headers={"Accept": "application/json"})
        self.r = self.c.getresponse()
        if self.r.status != 200:
            sys.exit(f"capture-replay: watch from {rv}: HTTP {self.r.status}")
        self.lines = []

    def next(self):
        line = self.r.readline()
        if not line:
            sys.exit("capture-replay: the watch ended early")
        self.lines.append(line.decode().rstrip("\n"))
        return json.loads(line)

    def until(self, kind, limit_s):
        deadline = time.time() + limit_s
        while time.time() < deadline:
            if self.next()["type"] == kind:
                return
        sys.exit(f"capture-replay: no {kind} event in {limit_s} s")


def etcd_compact():
    out = subprocess.run(["ip", "netns", "exec", "npc-fabric", f"{BIN}/etcdctl",
                          "--endpoints=http://127.0.0.1:2379", "endpoint", "status", "-w", "json"],
                         check=True, capture_output=True, text=True).stdout
    revision = json.loads(out)[0]["Status"]["header"]["revision"]
    subprocess.run(["ip", "netns", "exec", "npc-fabric", f"{BIN}/etcdctl",
                    "--endpoints=http://127.0.0.1:2379", "compact", str(revision)],
                   check=True, capture_output=True)
    return revision


def cleanup():
    """Pods bound to the kubelet-less node are deleted at once (nothing would confirm a
    graceful deletion), then the namespace and the node."""
    status, data = call("GET", f"/api/v1/namespaces/{NS}/pods")
    if status == 200:
        for item in json.loads(data)["items"]:
            call("DELETE", f"/api/v1/namespaces/{NS}/pods/{item['metadata']['name']}?gracePeriodSeconds=0")
    call("DELETE", f"/api/v1/namespaces/{NS}")
    call("DELETE", "/api/v1/nodes/replay-node")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/kube/testdata/replay")
    cleanup()
    for _ in range(120):
        if call("GET", f"/api/v1/namespaces/{NS}")[0] == 404:
            break
        time.sleep(0.5)
    call("DELETE", "/api/v1/nodes/replay-node")
    must("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "replay-node"}})
    must("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for _ in range(60):
        if call("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/default")[0] == 200:
            break
        time.sleep(0.5)
    for name, labels in [("db-0", {"app": "db"}), ("db-1", {"app": "db"}), ("web-0", {"app": "web"}),
                         ("web-1", {"app": "web"}), ("web-2", {"app": "web", "tier": "front"})]:
        must("POST", f"/api/v1/namespaces/{NS}/pods", pod(name, labels))

    page1 = must("GET", f"/api/v1/namespaces/{NS}/pods?limit=3")
    token = json.loads(page1)["metadata"]["continue"]
    page2 = must("GET", f"/api/v1/namespaces/{NS}/pods?limit=3&continue={token}")
    rv = json.loads(page1)["metadata"]["resourceVersion"]

    w = Watch(rv)
    must("POST", f"/api/v1/namespaces/{NS}/pods", pod("web-3", {"app": "web"}))
    w.until("ADDED", 10)
    relabel("web-3", {"app": "web", "version": "v2"})
    w.until("MODIFIED", 10)
    relabel("db-0", {"app": "db", "role": "primary"})
    w.until("MODIFIED", 10)
    print("capture-replay: waiting for the server's bookmark (about a minute)", flush=True)
    w.until("BOOKMARK", 90)
    must("DELETE", f"/api/v1/namespaces/{NS}/pods/web-1?gracePeriodSeconds=0", ok=(200,))
    w.until("DELETED", 10)
    relabel("web-2", {"tier": None})
    w.until("MODIFIED", 10)
    must("POST", f"/api/v1/namespaces/{NS}/pods", pod("api-0", {"app": "api"}))
    w.until("ADDED", 10)
    relabel("api-0", {"app": "api", "team": "payments"})
    w.until("MODIFIED", 10)
    must("DELETE", f"/api/v1/namespaces/{NS}/pods/db-1?gracePeriodSeconds=0", ok=(200,))
    w.until("DELETED", 10)
    print("capture-replay: waiting for a second bookmark", flush=True)
    w.until("BOOKMARK", 90)
    w.c.close()

    # A continue token outlives etcd's compaction only as a 410.
    fresh1 = must("GET", f"/api/v1/namespaces/{NS}/pods?limit=2")
    stale = json.loads(fresh1)["metadata"]["continue"]
    must("POST", f"/api/v1/namespaces/{NS}/pods", pod("tmp-0", {"app": "tmp"}))
    must("DELETE", f"/api/v1/namespaces/{NS}/pods/tmp-0?gracePeriodSeconds=0", ok=(200,))
    etcd_compact()
    # The watch cache serves pages from its snapshots (ListFromCacheSnapshot, on by default
    # in 1.34) for as long as it keeps them: the token meets etcd's compaction once the
    # API server has restarted (its cache starts again at the current revision).
    subprocess.run([os.path.join(ROOT, "scripts/cluster/cluster.sh"), "restart", "kube-apiserver"],
                   check=True, capture_output=True)
    deadline = time.time() + 120
    while call_quietly("GET", "/readyz") != 200:
        if time.time() > deadline:
            sys.exit("capture-replay: kube-apiserver did not come back")
        time.sleep(1)
    status, expired = call("GET", f"/api/v1/namespaces/{NS}/pods?limit=2&continue={stale}")
    if status != 410:
        sys.exit(f"capture-replay: an expired continue token answered HTTP {status}: {expired[:200]!r}")

    # A watch from before the compaction: the server answers with an ERROR event.
    too_old_rv = "1"
    c = connection()
    c.request("GET", f"/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={too_old_rv}"
              f"&allowWatchBookmarks=true&timeoutSeconds=5", headers={"Accept": "application/json"})
    r = c.getresponse()
    body = r.read().decode().strip().splitlines()
    c.close()
    if r.status == 410:
        too_old = json.loads("\n".join(body))
    else:
        events = [json.loads(l) for l in body if l]
        errors = [e["object"] for e in events if e["type"] == "ERROR"]
        if not errors:
            sys.exit(f"capture-replay: a watch from resourceVersion {too_old_rv} gave no ERROR: {body[:2]}")
        too_old = errors[0]
    too_old["message"] = too_old["message"].replace(f": {too_old_rv} ", ": %RV% ", 1)

    os.makedirs(out, exist_ok=True)
    with open(f"{out}/list-page-1.json", "wb") as f:
        f.write(page1)
    with open(f"{out}/list-page-2.json", "wb") as f:
        f.write(page2)
    with open(f"{out}/watch.jsonl", "w") as f:
        f.write("\n".join(w.lines) + "\n")
    with open(f"{out}/status-continue-expired.json", "wb") as f:
        f.write(expired.strip() + b"\n")
    with open(f"{out}/status-too-old.json", "w") as f:
        f.write(json.dumps(too_old, separators=(",", ":")) + "\n")
    cleanup()
    print(f"capture-replay: {len(w.lines)} watch events, 2 list pages and 2 Status objects in {out}")


if __name__ == "__main__":
    main()
