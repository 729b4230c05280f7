#!/usr/bin/env python3
"""Runs a command under gprof with its HTTP server on and scrapes it every N seconds.

    scrape_every.py --preload LIB --every N -- COMMAND...

COMMAND runs with LD_PRELOAD=LIB and GPROF_HTTP on a free loopback port (this script itself is
not preloaded). Once the server answers, the heap profile is fetched once, whatever N: the first
answer of a process loads its symbol tables, a cost paid once per process, so both an idle and a
scraped run pay it and their ratio is the steady cost of scraping. Then, every N seconds, one of
heap, allocs, goroutine, block and mutex is fetched in turn (N=0: the server stays idle), on one
kept-alive connection, whose server thread therefore lives through all of them: the CPU time of
the server's threads (/proc/PID/task/TID/schedstat, in ns) read after the last scrape, against
the whole process's, is what serving cost the program. Exits with COMMAND's status; the scrapes
and that share go to stderr.
"""
import argparse
import http.client
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


def fetch(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/pprof/{path}", timeout=30) as r:
            r.read()
        return True
    except OSError:
        return False


def server_and_process_cpu(pid):
    """Seconds of CPU of the server's threads (libmicrohttpd names them MHD-...) and the process."""
    server = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("MHD"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                server += int(f.read().split()[0])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        process = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return server / 1e9, process


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
    for _ in range(500):  # the first answer, within 5 s
        if child.poll() is not None or fetch(port, "heap"):
            break
        time.sleep(0.01)
    cpu = None
    if a.every > 0:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        next_at = time.monotonic() + a.every
        while child.poll() is None:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += a.every
            if child.poll() is not None:
                break
            try:
                conn.request("GET", "/debug/pprof/" + PATHS[scrapes % len(PATHS)])
                conn.getresponse().read()
                scrapes += 1
                cpu = server_and_process_cpu(child.pid) or cpu
            except (OSError, http.client.HTTPException):
                failed += 1  # the program exiting
                conn.close()
    status = child.wait()
    share = f", server threads {cpu[0]:.3f} s of the process's {cpu[1]:.2f} s CPU " \
        f"({100 * cpu[0] / cpu[1]:.2f}%)" if cpu and cpu[1] > 0 else ""
    print(f"scrape_every: {scrapes} scrapes, {failed} failed{share}", file=sys.stderr)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
