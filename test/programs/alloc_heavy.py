"""An allocation-heavy Python workload for the e2e suite: dicts, lists, strings, bytes, a json
round trip, regexes, sorting and a little class churn. Prints deterministic checksums (nothing
depends on hash randomisation), so its output with and without gprof must be identical."""
import collections
import hashlib
import json
import re
import sys

def build_records(n):
    records = []
    for i in range(n):
        records.append({
            "id": i,
            "name": "record-%06d-%s" % (i, "x" * (i % 37)),
            "tags": ["t%d" % (i * j % 101) for j in range(i % 13)],
            "score": (i * 2654435761) % 1000003 / 7.0,
            "nested": {"a": list(range(i % 20)), "b": str(i) * (i % 5)},
        })
    return records

class Node:
    __slots__ = ("key", "children")

    def __init__(self, key):
        self.key = key
        self.children = []

def build_tree(depth, fanout, prefix=""):
    node = Node(prefix)
    if depth:
        node.children = [build_tree(depth - 1, fanout, prefix + str(k)) for k in range(fanout)]
    return node

def walk(node):
    total = len(node.key)
    for c in node.children:
        total += walk(c)
    return total

def main():
    digest = hashlib.sha256()
    records = build_records(15000)
    text = json.dumps(records, sort_keys=True)
    digest.update(text.encode())
    back = json.loads(text)
    assert back == records
    digest.update(json.dumps(back[::7], sort_keys=True, indent=1).encode())

    words = re.findall(r"record-(\d+)-(x*)", text)
    counts = collections.Counter(len(x) for _, x in words)
    digest.update(repr(sorted(counts.items())).encode())

    big = []
    for round_ in range(5):
        chunk = [("%d:" % k) * (k % 50) for k in range(20000)]
        big.append("".join(chunk))
        del chunk
    digest.update("|".join(s[:1000] for s in big).encode())

    d = {}
    for i in range(100000):
        d["k%d" % (i * 7 % 100003)] = i
    for i in range(0, 100000, 3):
        d.pop("k%d" % (i * 7 % 100003), None)
    digest.update(repr(sum(d.values())).encode())

    blobs = [bytes(range(256)) * (i % 64 + 1) for i in range(3000)]
    digest.update(b"".join(blobs[::11]))

    tree = build_tree(6, 5)
    digest.update(str(walk(tree)).encode())

    items = sorted(records, key=lambda r: (-len(r["tags"]), r["name"]))
    digest.update("".join(r["name"] for r in items[:500]).encode())

    print("records", len(records), "dict", len(d), "sha256", digest.hexdigest())
    return 0

if __name__ == "__main__":
    sys.exit(main())
