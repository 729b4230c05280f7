#!/usr/bin/env python3
"""Runs a command under gprof with its HTTP server on and scrapes it every N seconds.

    scrape_every.py --preload LIB --every N -- COMMAND...

COMMAND runs with LD_PRELOAD=LIB and GPROF_HTTP on a free loopback port (this script itself is
not preloaded). While it runs, every N seconds one of heap, allocs, goroutine, block and mutex is
fetched in turn (N=0: the server stays idle). Exits with COMMAND's status, so that scripts/bench
compares a scraped program with an idle one; the number of scrapes goes to stderr.
"""
import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request

PATHS = ("heap", "allocs", "goroutine", "block", "mutex")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preload", required=True)
    p.add_argument("--every", type=float, required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command")
    port = free_port()
    env = dict(os.environ, LD_PRELOAD=os.path.realpath(a.preload), GPROF_HTTP=f"127.0.0.1:{port}")
    child = subprocess.Popen(command, env=env)
    scrapes, failed = 0, 0
    if a.every > 0:
        next_at = time.monotonic() + a.every
        while child.poll() is None:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += a.every
            if child.poll() is not None:
                break
            url = f"http://127.0.0.1:{port}/debug/pprof/{PATHS[scrapes % len(PATHS)]}"
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                scrapes += 1
            except OSError:
                failed += 1  # the server not up yet, or the program exiting
    status = child.wait()
    print(f"scrape_every: {scrapes} scrapes, {failed} failed", file=sys.stderr)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
