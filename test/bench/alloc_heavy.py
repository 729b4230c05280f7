#!/usr/bin/env python3
"""Allocation-heavy Python workload for allocator benchmarks.

Builds and discards dicts, lists, tuples and strings of varied sizes with a
fixed seed. Run with PYTHONMALLOC=malloc so every object goes through the C
allocator (otherwise pymalloc serves objects <= 512 B itself).
Usage: alloc_heavy.py [scale=1.0]
"""
import random
import sys


def main() -> int:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    if not scale > 0:
        print("usage: alloc_heavy.py [scale=1.0]", file=sys.stderr)
        return 2
    rng = random.Random(12345)
    rounds = int(60_000 * scale)
    live: list = [None] * 512
    total = 0
    for i in range(rounds):
        k = rng.randrange(len(live))
        kind = i % 4
        if kind == 0:
            n = rng.randrange(1, 64)
            obj = {f"key{j}_{i}": j * i for j in range(n)}
            total += len(obj)
        elif kind == 1:
            n = rng.randrange(1, 256)
            obj = [(j, str(j)) for j in range(n)]
            total += len(obj)
        elif kind == 2:
            n = rng.randrange(1, 4096)
            obj = "x" * n + str(i)
            obj = obj.upper().replace("X", "yz")
            total += len(obj)
        else:
            parts = [str(rng.random()) for _ in range(rng.randrange(1, 32))]
            obj = ",".join(parts).split(",")
            total += len(obj)
        live[k] = obj
    print(f"alloc_heavy rounds={rounds} total={total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
