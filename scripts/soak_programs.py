#!/usr/bin/env python3
"""Real programs under their own load tools, without and with gprof, compared run by run.

Called by scripts/soak (which installs the packages and builds the library first):

    soak_programs.py TARGET --lib /abs/build/libgprof.so [--configs LIST] [--keep DIR]
                     [--seconds S] [--dump-every S] [--keep-profiles]

TARGET: redis, nginx, postgres, node, java, make. `--help` says what each runs and compares.
The profile checks (`go tool pprof -raw`) and the dump-signal sender are soak_compare.py's.

Python 3.11 standard library only.
"""

import argparse
import collections
import glob
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_compare as sc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (preload gprof?, extra environment); `http` gets GPROF_HTTP on a free port.
CONFIGS = {name: sc.CONFIGS[name] for name in
           ("bare", "jemalloc", "libc", "jemalloc-rate1", "libc-rate1", "all-rate1", "cpu250")}
CONFIGS["http"] = (True, {"GPROF_HTTP": "(a free port)"})

RTMIN3 = signal.SIGRTMIN + 3
PG_BIN = "/usr/lib/postgresql/15/bin"

say = sc.say


free_port = sc.free_port


def wait_port(port, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Run:
    """One configuration's run of a target: its directories, its environments (with and without
    gprof), the processes it started, and what it found."""

    def __init__(self, target, name, args):
        self.name = name
        self.args = args
        self.preload, extra = CONFIGS[name]
        self.work = tempfile.mkdtemp(prefix=f"soak-{target.name}-{name}-")
        os.chmod(self.work, 0o755)  # workers running as nobody or postgres reach their files
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.bare_env = {k: v for k, v in os.environ.items()
                         if k != "LD_PRELOAD" and not k.startswith("GPROF_")}
        self.env = dict(self.bare_env)
        # Created by gprof itself (1777) unless the target says where.
        self.profiles = target.profiles_dir(self) or os.path.join(self.work, "profiles")
        self.http_port = None
        self.signal = target.dump_signal
        if self.preload:
            self.env["LD_PRELOAD"] = args.lib
            self.env["GPROF_OUTPUT"] = os.path.join(self.profiles, "gprof")
            if self.signal != signal.SIGUSR2:
                self.env["GPROF_SIGNAL"] = f"RTMIN+{self.signal - signal.SIGRTMIN}"
            self.env.update(extra)
            if "GPROF_HTTP" in extra:
                self.http_port = free_port()
                self.env["GPROF_HTTP"] = f"127.0.0.1:{self.http_port}"
        # For the control commands (nginx -s, pg_ctl): under gprof, but not serving HTTP, as an
        # administrator's shell would not set GPROF_HTTP for them (they would find the server's
        # address taken and say so).
        self.control_env = {k: v for k, v in self.env.items() if k != "GPROF_HTTP"}
        self.procs = []
        self.checks = []     # (what, ok, detail)
        self.result = {}     # what the target measured

    def check(self, what, ok, detail=""):
        self.checks.append((what, bool(ok), detail))
        if not ok:
            say(f"{self.name}: FAILED {what} {detail}")

    def log(self, name):
        return os.path.join(self.logs, name + ".log")

    def popen(self, argv, name, gprof=True, user=None, cwd=None, stdin=subprocess.DEVNULL,
              env=None):
        """Starts argv with its stdout and stderr in logs/<name>.log (appended)."""
        e = dict(env if env is not None else (self.env if gprof else self.bare_env))
        kw = {}
        if user:
            pw = pwd.getpwnam(user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            e.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
        out = open(self.log(name), "ab")
        p = subprocess.Popen(argv, env=e, cwd=cwd or self.work, stdin=stdin, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True, **kw)
        out.close()
        self.procs.append(p)
        return p

    def call(self, argv, name, gprof=False, timeout=600, **kw):
        """Runs argv to its end; returns (exit code, its output)."""
        with open(self.log(name), "ab") as f:
            f.write(f"$ {' '.join(argv)}\n".encode())
        p = self.popen(argv, name, gprof=gprof, **kw)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            sc.kill_tree(p.pid)
            p.wait()
            rc = "timeout"
        with open(self.log(name), encoding="utf-8", errors="replace") as f:
            return rc, f.read()

    def gprof_lines(self):
        """The `gprof:` lines in every log of the run (the programs' own logs included)."""
        lines = []
        for path in glob.glob(os.path.join(self.work, "**", "*.log"), recursive=True):
            if "usr2" in os.path.basename(path):
                continue  # the start with the default signal, whose line is checked apart
            with open(path, encoding="utf-8", errors="replace") as f:
                lines += [l.strip() for l in f if l.startswith("gprof:")]
        return lines

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                sc.kill_tree(p.pid)
                p.wait()
        # Daemons adopted as this process's (pg_ctl's postmaster) are reaped here: no Popen
        # waits for them.
        mine = {p.pid for p in self.procs}
        for e in os.listdir("/proc"):
            try:
                with open(f"/proc/{e}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] == "Z" and int(fields[1]) == os.getpid() and int(e) not in mine:
                    os.waitpid(int(e), os.WNOHANG)
            except (OSError, ValueError, IndexError):
                pass


# ---------------------------------------------------------------------------------------------
# Targets. Each: packages, dump_signal, prepare(keep, args), run(r) filling r.result and
# r.checks; r.result["signature"] is compared with bare's.


class Target:
    name = "?"
    packages = ()
    dump_signal = signal.SIGUSR2
    unit = "s"
    describe = ""

    def profiles_dir(self, r):
        return None

    def prepare(self, keep, args):
        pass


class Redis(Target):
    name = "redis"
    packages = ("redis-server", "redis-tools")
    unit = "requests/s"
    describe = ("redis-server (--rdb-key-save-delay 100: each BGSAVE child lives about a second, "
                "long enough to be sent a dump signal) under redis-benchmark (-c 20 -r 10000, "
                "set,get,incr,lpush,rpop,sadd,hset,lrange_100) with BGSAVE every 3 s; then a "
                "deterministic data set (FLUSHALL, 20000 SET, 2000 RPUSH, 2000 HSET through "
                "redis-cli --pipe), DBSIZE and DEBUG DIGEST, a last BGSAVE, and the digest of "
                "that dump loaded by a redis-server without gprof. Compared: the digest and "
                "DBSIZE; failed: error replies (INFO errorstats); checked: the last BGSAVE ok, "
                "the reloaded digest.")

    def prepare(self, keep, args):
        self.pipe = os.path.join(keep, "redis-data.resp")

        def cmd(*a):
            return "*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a)
        with open(self.pipe, "w", newline="") as f:
            for i in range(20000):
                f.write(cmd("SET", f"key:{i}", f"value-{i * 7919 % 100003}"))
            for i in range(2000):
                f.write(cmd("RPUSH", f"list:{i % 50}", f"item-{i}"))
                f.write(cmd("HSET", f"hash:{i % 40}", f"field-{i}", str(i * i)))

    def info(self, port, section):
        p = subprocess.run(["redis-cli", "-p", str(port), "INFO", section], capture_output=True,
                           text=True, timeout=60)
        d = {}
        for line in p.stdout.splitlines():
            k, _, v = line.strip().partition(":")
            d[k] = v
        return d

    def wait_bgsave(self, port, seconds=120):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.info(port, "persistence").get("rdb_bgsave_in_progress") == "0":
                return True
            time.sleep(0.2)
        return False

    def run(self, r):
        port = free_port()
        data = os.path.join(r.work, "data")
        os.makedirs(data)
        server = r.popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", data,
                          "--enable-debug-command", "yes", "--rdb-key-save-delay", "100",
                          "--daemonize", "no", "--logfile", ""], "redis-server")
        r.check("redis-server listens", wait_port(port))
        cli = ["redis-cli", "-p", str(port)]
        stop = threading.Event()
        bgsaves = []

        def saver():
            while not stop.wait(3):
                p = subprocess.run(cli + ["BGSAVE"], capture_output=True, text=True, timeout=60)
                bgsaves.append(p.stdout.strip())
        t = threading.Thread(target=saver, daemon=True)
        n = max(2000, int(2500 * r.args.seconds))
        start = time.monotonic()
        t.start()
        rc, out = r.call(["redis-benchmark", "-p", str(port), "-c", "20", "-r", "10000", "-n",
                          str(n), "-t", "set,get,incr,lpush,rpop,sadd,hset,lrange_100", "--csv"],
                         "redis-benchmark", timeout=1800)
        elapsed = time.monotonic() - start
        stop.set()
        t.join()
        r.check("redis-benchmark exit 0", rc == 0, str(rc))
        rows = re.findall(r'"([A-Z][A-Z_0-9 ()a-z]*)","([\d.]+)"', out)
        # (lrange_100 adds its own LPUSH test)
        r.check("redis-benchmark reported every test", len(rows) == 9, f"{len(rows)} rows")
        r.result["throughput"] = 9 * n / elapsed
        started = sum(1 for b in bgsaves if b.startswith("Background saving started"))
        self.wait_bgsave(port)
        errors = self.info(port, "errorstats")
        failed = sum(int(m) for v in errors.values() for m in re.findall(r"count=(\d+)", v))
        # A BGSAVE asked for while the previous one runs is refused with an error reply: the
        # soak's own doing, not a failed request.
        refused = sum(1 for b in bgsaves if "already in progress" in b)
        failed -= refused
        # The deterministic data set, then its digest, then the BGSAVE child's file.
        subprocess.run(cli + ["FLUSHALL"], capture_output=True, timeout=60)
        with open(self.pipe, "rb") as f:
            p = subprocess.run(cli + ["--pipe"], stdin=f, capture_output=True, text=True,
                               timeout=300)
        r.check("redis-cli --pipe: no error", "errors: 0" in p.stdout, p.stdout.strip()[-80:])
        dbsize = subprocess.run(cli + ["DBSIZE"], capture_output=True, text=True).stdout.strip()
        digest = subprocess.run(cli + ["DEBUG", "DIGEST"], capture_output=True,
                                text=True).stdout.strip()
        p = subprocess.run(cli + ["BGSAVE"], capture_output=True, text=True)
        started += p.stdout.startswith("Background saving started")
        self.wait_bgsave(port)
        pers = self.info(port, "persistence")
        r.check("last BGSAVE ok", pers.get("rdb_last_bgsave_status") == "ok",
                pers.get("rdb_last_bgsave_status"))
        forks = int(self.info(port, "stats").get("total_forks", "0"))
        subprocess.run(cli + ["SHUTDOWN", "NOSAVE"], capture_output=True, timeout=60)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        r.check("redis-server exit 0", server.returncode == 0, str(server.returncode))
        # The child's dump, loaded by a redis-server without gprof.
        port2 = free_port()
        check_dir = os.path.join(r.work, "reload")
        os.makedirs(check_dir)
        shutil.copy(os.path.join(data, "dump.rdb"), check_dir)
        other = r.popen(["redis-server", "--port", str(port2), "--bind", "127.0.0.1",
                         "--save", "", "--dir", check_dir, "--enable-debug-command", "yes",
                         "--daemonize", "no", "--logfile", ""], "redis-reload", gprof=False)
        wait_port(port2)
        end = time.monotonic() + 60
        while time.monotonic() < end and self.info(port2, "persistence").get("loading") != "0":
            time.sleep(0.1)
        reloaded = subprocess.run(["redis-cli", "-p", str(port2), "DEBUG", "DIGEST"],
                                  capture_output=True, text=True).stdout.strip()
        subprocess.run(["redis-cli", "-p", str(port2), "SHUTDOWN", "NOSAVE"],
                       capture_output=True)
        other.wait(timeout=60)
        r.check("the BGSAVE child's file holds the same data", reloaded == digest,
                f"{reloaded} vs {digest}")
        r.result.update(failed=failed,
                        signature=f"DBSIZE {dbsize}, DEBUG DIGEST {digest[:12]}",
                        forks=forks, bgsaves=started, refused=refused, main_pid=server.pid)
        r.check("every BGSAVE forked", forks >= started, f"{forks} forks, {started} BGSAVEs")

    def pids_note(self, r, pids):
        children = len(pids - {r.result.get("main_pid")})
        return (f"parent {'yes' if r.result.get('main_pid') in pids else 'NO'}, "
                f"{children} of {r.result.get('forks', '?')} BGSAVE children")


class Nginx(Target):
    name = "nginx"
    packages = ("nginx-light", "apache2-utils")
    dump_signal = RTMIN3
    unit = "requests/s"
    describe = ("nginx (master as root, 2 workers as nobody, daemon off) serving a 20 KiB file "
                "and a 404 under ab -c 8 (two runs), with `nginx -s reload` twice during the "
                "load; GPROF_SIGNAL=RTMIN+3 (nginx takes SIGUSR2 for its binary upgrade: a "
                "start with the default signal must give gprof's step-aside line). Failed: "
                "ab's failed and non-2xx requests. Checked: a file from the master and from "
                "every worker that received a dump signal.")

    def conf(self, r, port):
        root = os.path.join(r.work, "www")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("".join(f"line {i}\n" for i in range(2000)))
        os.chmod(root, 0o755)
        path = os.path.join(r.work, f"nginx-{port}.conf")
        with open(path, "w") as f:
            f.write(f"""user nobody nogroup;
worker_processes 2;
daemon off;
pid {r.work}/nginx-{port}.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {r.work}/tmp;
    proxy_temp_path {r.work}/tmp;
    fastcgi_temp_path {r.work}/tmp;
    uwsgi_temp_path {r.work}/tmp;
    scgi_temp_path {r.work}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
        return path

    def start(self, r, port, env_override=None, name="nginx"):
        conf = self.conf(r, port)
        p = r.popen(["nginx", "-c", conf, "-p", r.work], name, env=env_override)
        ok = wait_port(port)
        return p, conf, ok

    def stop(self, r, p, conf, env_override=None):
        r.call(["nginx", "-c", conf, "-p", r.work, "-s", "quit"], "nginx-quit",
               env=env_override or r.control_env)
        try:
            return p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sc.kill_tree(p.pid)
            p.wait()
            return "timeout"

    def run(self, r):
        if r.preload and r.name == "jemalloc":
            # The default dump signal: nginx's own SIGUSR2 handler wins, and gprof says so.
            env = {k: v for k, v in r.env.items() if k != "GPROF_SIGNAL"}
            env["GPROF_OUTPUT"] = os.path.join(r.work, "usr2", "gprof")
            port = free_port()
            p, conf, ok = self.start(r, port, env, "nginx-usr2")
            time.sleep(1)
            rc = self.stop(r, p, conf, env)
            with open(r.log("nginx-usr2"), errors="replace") as f:
                said = [l for l in f if l.startswith("gprof:")]
            r.check("default GPROF_SIGNAL: gprof steps aside in one line",
                    ok and rc == 0 and len(said) == 1 and "signal 12" in said[0],
                    "".join(said).strip())
        port = free_port()
        master, conf, ok = self.start(r, port)
        r.check("nginx listens", ok)
        workers = set()
        stop = threading.Event()

        def watch():  # every worker the master had, before and after the reloads
            while not stop.wait(0.2):
                for e in os.listdir("/proc"):
                    if e.isdigit():
                        try:
                            with open(f"/proc/{e}/stat") as f:
                                if int(f.read().rsplit(")", 1)[1].split()[1]) == master.pid:
                                    workers.add(int(e))
                        except (OSError, ValueError, IndexError):
                            pass
        w = threading.Thread(target=watch, daemon=True)
        w.start()
        if r.preload:
            # The master first, alone: the files of the run go into the directory gprof makes
            # for it (1777), where the workers (nobody) write theirs.
            os.kill(master.pid, RTMIN3)
            end = time.monotonic() + 30
            while time.monotonic() < end and not os.path.isdir(r.profiles):
                time.sleep(0.1)
            r.check("the master's dump made the output directory", os.path.isdir(r.profiles))
        n = max(2000, int(5000 * r.args.seconds))
        reloads = []

        def reloader():
            for _ in range(2):
                time.sleep(max(1.0, r.args.seconds / 3))
                reloads.append(r.call(["nginx", "-c", conf, "-p", r.work, "-s", "reload"],
                                      "nginx-reload", env=r.control_env)[0])
        rl = threading.Thread(target=reloader, daemon=True)
        failed = 0
        total_time = 0.0
        rl.start()
        for url, expect in ((f"http://127.0.0.1:{port}/index.html", 200),
                            (f"http://127.0.0.1:{port}/missing", 404)):
            count = n if expect == 200 else n // 4
            rc, out = r.call(["ab", "-q", "-n", str(count), "-c", "8", "-r", url], "ab",
                             timeout=1800)
            r.check(f"ab exit 0 ({expect})", rc == 0, str(rc))
            m = re.search(r"^Complete requests:\s+(\d+)", out.split(url)[-1], re.M)
            done = int(m.group(1)) if m else 0
            fails = re.findall(r"^Failed requests:\s+(\d+)", out, re.M)
            non2xx = re.findall(r"^Non-2xx responses:\s+(\d+)", out, re.M)
            t = re.findall(r"^Time taken for tests:\s+([\d.]+)", out, re.M)
            f = int(fails[-1]) if fails else count
            if expect == 200:
                f += int(non2xx[-1]) if non2xx else 0
                total_time += float(t[-1]) if t else 0
                r.result["throughput"] = done / float(t[-1]) if t and float(t[-1]) else 0
            else:
                f += count - (int(non2xx[-1]) if non2xx else 0)  # every answer a 404
            failed += f + (count - done)
            with open(r.log("ab"), "a") as fh:
                fh.write(f"\n# {url}: {done} complete, {f} failed\n")
        rl.join()
        r.check("nginx -s reload exit 0 (twice)", reloads == [0, 0], str(reloads))
        time.sleep(1.5)  # the dumper reaches the last workers
        stop.set()
        w.join()
        rc = self.stop(r, master, conf)
        r.check("nginx master exit 0", rc == 0, str(rc))
        r.result.update(failed=failed, signature="ab: every answer 200 (or 404) of the same length",
                        main_pid=master.pid, workers=workers)

    def pids_note(self, r, pids):
        signaled = r.result.get("signaled", set())
        workers = r.result.get("workers", set())
        missing = sorted((signaled & workers) - pids)
        r.check("every signaled worker wrote a file", not missing, str(missing))
        return (f"master {'yes' if r.result.get('main_pid') in pids else 'NO'}, "
                f"{len(pids & workers)} of {len(workers)} workers "
                f"({len(signaled & workers)} signaled)")


class Postgres(Target):
    name = "postgres"
    packages = ("postgresql",)
    dump_signal = RTMIN3
    unit = "TPS"
    describe = ("PostgreSQL 15 as user postgres: a cluster made once by initdb, copied per run; "
                "pg_ctl start under gprof (GPROF_SIGNAL=RTMIN+3: PostgreSQL takes SIGUSR2, and a "
                "start with the default signal must give gprof's step-aside line), pgbench -i "
                "-s 4 and pgbench -c 4 -j 2 -T <seconds> (not under gprof), then its invariant "
                "(sum of account balances = sum of history deltas, same for tellers and "
                "branches), pg_ctl stop -m fast. Failed: pgbench's failed transactions and "
                "ERROR/FATAL/PANIC lines or crashed backends in the server log.")

    def profiles_dir(self, r):
        return os.path.join(r.work, "pg", "profiles")  # in postgres's own directory

    def prepare(self, keep, args):
        self.template = os.path.join(keep, "pg-template")
        if os.path.isdir(self.template):
            shutil.rmtree(self.template)
        os.makedirs(self.template)
        shutil.chown(self.template, "postgres", "postgres")
        p = subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D",
                            self.template + "/data", "-A", "trust", "--no-sync", "-E", "UTF8"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit("initdb failed: " + p.stderr)

    def ctl(self, r, data, sock, port, action, env=None, name="pg_ctl"):
        argv = [f"{PG_BIN}/pg_ctl", "-D", data, "-w", "-t", "120"]
        if action == "start":
            argv += ["-l", os.path.join(r.work, "pg", f"{name}-server.log"), "-o",
                     f"-p {port} -k {sock} -c listen_addresses=''", "start"]
            if r.http_port and env is None:
                # GPROF_HTTP for the postmaster alone, not pg_ctl: a wrapper adds it.
                wrapper = os.path.join(r.work, "pg", "postgres-http")
                with open(wrapper, "w") as f:
                    f.write(f"#!/bin/sh\nGPROF_HTTP={r.env['GPROF_HTTP']} exec "
                            f"{PG_BIN}/postgres \"$@\"\n")
                os.chmod(wrapper, 0o755)
                argv[1:1] = ["-p", wrapper]
        else:
            argv += ["-m", "fast", "stop"]
        return r.call(argv, name, user="postgres", env=env or r.control_env)[0]

    def psql(self, r, sock, port, sql):
        p = subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", sock,
                            "-p", str(port), "-d", "postgres", "-At", "-c", sql],
                           capture_output=True, text=True, env=r.bare_env)
        return p.stdout.strip()

    def run(self, r):
        pg = os.path.join(r.work, "pg")
        os.makedirs(pg)
        shutil.chown(pg, "postgres", "postgres")
        data = os.path.join(pg, "data")
        subprocess.run(["cp", "-a", self.template + "/data", data], check=True)
        sock = pg
        if r.preload and r.name == "jemalloc":
            env = {k: v for k, v in r.env.items() if k != "GPROF_SIGNAL"}
            env["GPROF_OUTPUT"] = os.path.join(pg, "usr2", "gprof")
            port = free_port()
            rc1 = self.ctl(r, data, sock, port, "start", env, "pg-usr2")
            rc2 = self.ctl(r, data, sock, port, "stop", env, "pg-usr2")
            with open(os.path.join(pg, "pg-usr2-server.log"), errors="replace") as f:
                said = [l for l in f if l.startswith("gprof:")]
            r.check("default GPROF_SIGNAL: gprof steps aside in one line per process",
                    rc1 == 0 and rc2 == 0 and said and all("signal 12" in l for l in said),
                    f"{len(said)} lines: {said[0].strip() if said else ''}")
        port = free_port()
        r.check("pg_ctl start", self.ctl(r, data, sock, port, "start") == 0)
        pgbench = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pgbench", "-h", sock, "-p",
                   str(port), "postgres"]
        rc, out = r.call(pgbench[:-1] + ["-i", "-s", "4", "-q", "postgres"], "pgbench-init")
        r.check("pgbench -i", rc == 0, out.strip()[-200:])
        seconds = r.args.pgbench_seconds or r.args.seconds
        rc, out = r.call(pgbench[:-1] + ["-c", "4", "-j", "2", "-T", str(int(seconds)),
                                         "postgres"], "pgbench", timeout=1800)
        r.check("pgbench exit 0", rc == 0, str(rc))
        tps = re.search(r"^tps = ([\d.]+) \(without initial", out, re.M)
        failed = re.search(r"^number of failed transactions: (\d+)", out, re.M)
        processed = re.search(r"^number of transactions actually processed: (\d+)", out, re.M)
        r.result["throughput"] = float(tps.group(1)) if tps else 0
        sums = self.psql(r, sock, port, "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = "
                         "(SELECT sum(delta) FROM pgbench_history) AND (SELECT sum(tbalance) "
                         "FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history) AND "
                         "(SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM "
                         "pgbench_history), (SELECT count(*) FROM pgbench_accounts)")
        r.check("pgbench's invariant holds", sums.startswith("t|"), sums)
        r.check("pg_ctl stop", self.ctl(r, data, sock, port, "stop") == 0)
        with open(os.path.join(pg, "pg_ctl-server.log"), errors="replace") as f:
            server_log = f.read()
        bad = [l for l in server_log.splitlines()
               if re.search(r"\b(ERROR|FATAL|PANIC):|terminated by signal|"
                            r"terminating any other active", l)]
        r.result.update(failed=(int(failed.group(1)) if failed else 1) + len(bad),
                        signature=f"accounts {sums.partition('|')[2]}, invariant "
                                  f"{'holds' if sums.startswith('t|') else 'BROKEN'}",
                        transactions=int(processed.group(1)) if processed else 0)
        if bad:
            with open(r.log("server-problems"), "w") as f:
                f.write("\n".join(bad) + "\n")
            r.check("server log: no ERROR, FATAL, PANIC or crashed backend", False, bad[0])

    def pids_note(self, r, pids):
        return f"{len(pids)} processes (postmaster, its children and backends)"


NODE_SCRIPT = r"""
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
function work(seed, n) {
  // Allocates: strings, objects, arrays, maps; a checksum of what was built.
  let m = new Map(), sum = 0, x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const o = { id: i, name: 'item-' + x.toString(36), tags: [x % 7, x % 11, x % 13] };
    m.set(o.name, o);
    if (m.size > 5000) m.delete(m.keys().next().value);
    sum = (sum + JSON.stringify(o).length * (i % 97)) % 1000000007;
  }
  return sum;
}
if (isMainThread) {
  const n = parseInt(process.argv[2] || '400000');
  let done = 0; const results = [];
  for (let w = 0; w < 4; w++) {
    const worker = new Worker(__filename, { workerData: { seed: w + 1, n } });
    worker.on('message', (v) => { results[w] = v; if (++done === 4) {
      console.log('workers', results.join(' '), 'main', work(99, n / 2)); } });
    worker.on('error', (e) => { console.error('worker error', e); process.exitCode = 1; });
  }
} else {
  parentPort.postMessage(work(workerData.seed, workerData.n));
}
"""


class Node(Target):
    name = "node"
    packages = ()
    describe = ("node (V8: JIT code without unwind tables) running a script whose 4 worker "
                "threads and main thread build strings, objects and maps (n = 20000 x seconds) "
                "and print checksums. Compared: the output; failed: a non-zero exit.")

    def prepare(self, keep, args):
        self.script = os.path.join(keep, "soak-alloc.js")
        with open(self.script, "w") as f:
            f.write(NODE_SCRIPT)
        self.node = shutil.which("node") or "/usr/bin/node"

    def run(self, r):
        start = time.monotonic()
        rc, out = r.call([self.node, self.script, str(int(20000 * r.args.seconds))], "node",
                         gprof=True, timeout=1800)
        r.result["seconds_taken"] = time.monotonic() - start
        lines = [l for l in out.splitlines() if l.startswith("workers")]
        r.check("node exit 0", rc == 0, str(rc))
        r.result.update(failed=0 if rc == 0 else 1, signature=lines[0] if lines else "no output")


JAVA_SOURCE = r"""
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class Soak {
    static final Object lock = new Object();
    static long shared = 0;
    static int len(String s) { return s.length(); }  // a null s: NullPointerException
    public static void main(String[] args) throws Exception {
        int threads = 48, rounds = Integer.parseInt(args[0]);
        AtomicLong npes = new AtomicLong();
        long[] sums = new long[threads];
        List<Thread> all = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int id = t;
            Thread th = new Thread(() -> {
                long sum = 0;
                List<String> keep = new ArrayList<>();
                for (int i = 0; i < rounds; i++) {
                    String s = (i % 5 == 0) ? null : ("v" + (i * 31 + id));
                    try { sum += len(s); } catch (NullPointerException e) { npes.incrementAndGet(); }
                    keep.add("x" + i);
                    if (keep.size() > 1000) keep.clear();
                    if (i % 100 == 0) synchronized (lock) { shared += i; }
                }
                sums[id] = sum;
            }, "soak-" + t);
            all.add(th);
            th.start();
        }
        for (Thread th : all) th.join();
        long total = 0;
        for (long s : sums) total += s;
        System.out.println("threads " + threads + " sum " + total + " npes " + npes.get()
                           + " shared " + shared);
    }
}
"""


class Java(Target):
    name = "java"
    packages = ("openjdk-17-jdk-headless",)
    dump_signal = RTMIN3
    describe = ("a JVM (OpenJDK 17: SIGSEGV-based null checks, its own signal chaining, its "
                "threads) running 48 threads that allocate strings, take a monitor and catch "
                "NullPointerExceptions (rounds = 50000 x seconds / 10 per thread); "
                "GPROF_SIGNAL=RTMIN+3 (HotSpot takes SIGUSR2 to suspend threads). Compared: "
                "the output (sums and the count of exceptions caught).")

    def prepare(self, keep, args):
        self.dir = os.path.join(keep, "java")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "Soak.java"), "w") as f:
            f.write(JAVA_SOURCE)
        subprocess.run(["javac", "-d", self.dir, os.path.join(self.dir, "Soak.java")],
                       check=True)

    def run(self, r):
        start = time.monotonic()
        rc, out = r.call(["java", "-cp", self.dir, "Soak",
                          str(int(5000 * r.args.seconds))], "java", gprof=True, timeout=1800)
        r.result["seconds_taken"] = time.monotonic() - start
        lines = [l for l in out.splitlines() if l.startswith("threads")]
        r.check("java exit 0", rc == 0, str(rc))
        crash = glob.glob(os.path.join(r.work, "hs_err_pid*.log"))
        r.check("no JVM crash report", not crash, " ".join(crash))
        r.result.update(failed=0 if rc == 0 else 1, signature=lines[0] if lines else "no output")


class Make(Target):
    name = "make"
    packages = ("googletest", "cmake", "make", "g++")
    describe = ("googletest and googlemock from Debian's googletest package (/usr/src/"
                "googletest): cmake (not under gprof) then make -j2 under gprof (make, sh, g++, "
                "cc1plus, as, ar: every process). Compared: the 4 object files and 4 static "
                "libraries, byte for byte (their SHA-256, as cmp would).")

    def run(self, r):
        build = os.path.join(r.work, "build")
        rc, _ = r.call(["cmake", "-S", "/usr/src/googletest", "-B", build], "cmake")
        r.check("cmake", rc == 0)
        start = time.monotonic()
        rc, out = r.call(["make", "-j2", "-C", build], "make", gprof=True, timeout=3600)
        r.result["seconds_taken"] = time.monotonic() - start
        r.check("make exit 0", rc == 0, str(rc))
        objects = {os.path.relpath(p, build): file_sha(p)
                   for p in glob.glob(os.path.join(build, "**", "*.o"), recursive=True)
                   + glob.glob(os.path.join(build, "lib", "*.a"))}
        r.result.update(failed=0 if rc == 0 else 1, objects=objects,
                        signature=f"{len(objects)} objects and archives, sha256 of all "
                                  + hashlib.sha256(repr(sorted(objects.items())).encode())
                                  .hexdigest()[:12])


TARGETS = {t.name: t for t in (Redis(), Nginx(), Postgres(), Node(), Java(), Make())}


# ---------------------------------------------------------------------------------------------


def run_config(target, name, args):
    r = Run(target, name, args)
    say(f"{target.name} {name}: start in {r.work}")
    dumper = scraper = None
    if r.preload and args.dump_every:
        dumper = sc.Dumper("GPROF_OUTPUT=" + r.env["GPROF_OUTPUT"], args.dump_every, r.signal,
                           lib=args.lib)
        dumper.start()
    if r.http_port:
        scraper = sc.Scraper(r.http_port, os.path.join(r.work, "scrapes"), r.log("scrapes"))
        scraper.start()
    start = time.monotonic()
    try:
        target.run(r)
    except Exception as e:  # noqa: BLE001 -- a broken run is a failed check, not a traceback
        r.check("the run completed", False, f"{type(e).__name__}: {e}")
    finally:
        if dumper:
            dumper.stop.set()
            dumper.join()
        if scraper:
            scraper.stop.set()
            scraper.join()
        r.cleanup()
    r.result["seconds"] = time.monotonic() - start
    r.result["signals"] = dumper.signals if dumper else None
    r.result["signaled"] = dumper.pids if dumper else set()
    if r.preload:
        files = sc.profile_files(r.profiles)
        opened, problems, checked = sc.check_profiles(files)
        scrape_files = scraper.files if scraper else []
        scraped_ok, scrape_problems, _ = sc.check_profiles(scrape_files)
        problems += scrape_problems
        pids = set()
        for f in files:
            m = re.search(r"\.(\d+)\.\d{4,}\.[^/]*\.pb\.gz$", f)
            if m:
                pids.add(int(m.group(1)))
        r.result.update(files=len(files), scraped=len(scrape_files), opened=opened,
                        checked=checked, scraped_ok=scraped_ok,
                        problems=problems, pids=len(pids))
        r.result["pids_note"] = target.pids_note(r, pids) if hasattr(target, "pids_note") else ""
        r.check("every profile opens in go tool pprof without a warning", not problems,
                "; ".join(f"{os.path.basename(p)}: {w}" for p, w in problems[:3]))
        r.check("profiles written", files, "none")
        if scraper:
            # (make's cmake step runs before the server starts)
            answered, failed, before, after = scraper.failures()
            r.check("every HTTP request answered while the program ran",
                    answered and failed == 0,
                    f"{answered} answered, {failed} failed between the first and last "
                    f"answer, {before} before, {after} after")
    lines = r.gprof_lines()
    r.result["gprof_lines"] = [l for l in lines if not l.startswith("gprof: wrote ")]
    r.result["checks"] = r.checks
    r.result["work"] = r.work
    say(f"{target.name} {name}: done in {r.result['seconds']:.0f}s, "
        f"{sum(1 for c in r.checks if not c[1])} failed checks")
    if not args.keep_profiles:
        shutil.rmtree(r.work, ignore_errors=True)
    return r.result


def table(target, configs, results, args):
    out = []
    w = out.append
    base = results.get("bare", {})
    w(f"# soak: {target.name}, without and with gprof\n")
    w(target.describe + "\n")
    w("| | " + " | ".join(configs) + " |")
    w("|---|" + "---|" * len(configs))

    def row(label, fn):
        cells = []
        for c in configs:
            try:
                cells.append(fn(c, results[c]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("?")
        w(f"| {label} | " + " | ".join(cells) + " |")
    row("failed (requests, transactions, errors)", lambda c, x: str(x["failed"]))
    row("same result as bare", lambda c, x: "-" if c == "bare" else
        ("yes" if x["signature"] == base["signature"] else "**NO**"))
    if target.unit == "s":
        row("seconds taken", lambda c, x: f"{x['seconds_taken']:.1f}")
        row("time ratio to bare", lambda c, x: f"{x['seconds_taken'] / base['seconds_taken']:.2f}")
    else:
        row(f"throughput ({target.unit})", lambda c, x: f"{x['throughput']:.0f}")
        row("throughput ratio to bare",
            lambda c, x: f"{x['throughput'] / base['throughput']:.2f}")
    row("profiles written", lambda c, x: "-" if c == "bare" else str(x["files"]))
    row("of which opened by `go tool pprof` without warning",
        lambda c, x: "-" if c == "bare" else (
            str(x["opened"]) if x.get("checked", x["files"]) == x["files"]
            else f"{x['opened']} of {x['checked']} checked"))
    row("HTTP answers fetched / opened without warning",
        lambda c, x: f"{x['scraped']} / {x['scraped_ok']}" if x.get("scraped") else "-")
    row("processes with profiles", lambda c, x: "-" if c == "bare" else str(x["pids"]))
    row("dump signals sent", lambda c, x: str(x["signals"]) if x.get("signals") else "-")
    row("`gprof:` lines (not `wrote`)", lambda c, x: str(len(x["gprof_lines"])))
    row("checks failed", lambda c, x: str(sum(1 for k in x["checks"] if not k[1])))
    w("")
    w(f"bare: {base.get('signature', '?')}")
    for c in configs:
        x = results[c]
        if x.get("pids_note"):
            w(f"{c}: processes with profiles: {x['pids_note']}")
    w("")
    failures = 0
    for c in configs:
        x = results[c]
        if c != "bare" and x.get("signature") != base.get("signature"):
            failures += 1
            w(f"{c}: result differs: {x.get('signature')}")
        for what, ok, detail in x.get("checks", []):
            if not ok:
                failures += 1
                w(f"{c}: FAILED {what}: {detail}")
        if x.get("failed"):
            failures += 1
            w(f"{c}: {x['failed']} failed")
        if x.get("gprof_lines"):
            counted = collections.Counter(re.sub(r"\d+", "N", l) for l in x["gprof_lines"])
            w(f"{c}: `gprof:` lines other than `wrote`:")
            for l, k in counted.most_common(6):
                w(f"    {k:5d}x {l[:220]}")
    w("")
    w(f"Logs and this table: {args.keep}")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.keep, f"{target.name}.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="", flush=True)
    return 1 if failures else 0


def summary(targets, configs, all_results, args):
    """One row per target: per configuration "failed / same / ratio / profiles"."""
    out = ["# soak: every target, without and with gprof", "",
           "Each cell: failed; same result as bare; throughput (or 1 / time) ratio to bare; "
           "profiles written (all opened by `go tool pprof -raw` without warning unless said).",
           "", "| target | bare | " + " | ".join(c for c in configs if c != "bare") + " |",
           "|---|" + "---|" * len(configs)]
    for t in targets:
        res = all_results.get(t.name)
        if not res:
            continue
        base = res["bare"]

        def ratio(x):
            try:
                if t.unit == "s":
                    return base["seconds_taken"] / x["seconds_taken"]
                return x["throughput"] / base["throughput"]
            except (KeyError, ZeroDivisionError):
                return float("nan")
        if t.unit == "s":
            bare_cell = f"{base.get('failed', '?')} failed, {base.get('seconds_taken', 0):.1f} s"
        else:
            bare_cell = (f"{base.get('failed', '?')} failed, "
                         f"{base.get('throughput', 0):.0f} {t.unit}")
        cells = [bare_cell]
        for c in configs:
            if c == "bare":
                continue
            x = res[c]
            bad = sum(1 for k in x.get("checks", []) if not k[1])
            cell = (f"{x.get('failed', '?')}; "
                    f"{'same' if x.get('signature') == base.get('signature') else '**differs**'}"
                    f"; {ratio(x):.2f}; {x.get('files', '?')}")
            if x.get("opened") != x.get("checked", x.get("files")):
                cell += f" ({x.get('opened')} opened)"
            if x.get("checked", x.get("files")) != x.get("files"):
                cell += f" ({x.get('checked')} checked)"
            if bad:
                cell += f"; **{bad} checks failed**"
            cells.append(cell)
        out.append(f"| {t.name} | " + " | ".join(cells) + " |")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.keep, "summary.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="", flush=True)


def main():
    targets_help = "\n".join(f"  {t.name:9s} {t.describe}" for t in TARGETS.values())
    p = argparse.ArgumentParser(
        prog="scripts/soak",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs a real program under its own load tool without and with gprof and "
                    "compares what it reports.",
        epilog=f"""\
configurations: bare (no gprof), jemalloc (gprof's defaults), libc (GPROF_ALLOCATOR=libc),
jemalloc-rate1 and libc-rate1 (GPROF_MEM_PROFILE_RATE=1), all-rate1 (heap, block and mutex at
rate 1), cpu250 (GPROF_CPU_HZ=250), http (GPROF_HTTP on a free port, whose heap, goroutine,
allocs?seconds=1, profile?seconds=1 and mutex answers are fetched every 3 s). Every gprof run:
a dump signal every --dump-every seconds to each of its processes, and every profile written
or fetched opened with `go tool pprof -raw`, which must say nothing.

targets:
{targets_help}

Exit status 0 when every run matches bare and passes its checks, 1 otherwise, 2 on bad usage.""")
    p.add_argument("target", choices=[*TARGETS, "all"])
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--keep", metavar="DIR")
    p.add_argument("--seconds", type=float, default=10,
                   help="length of the load (default 10; pgbench's -T, the others scale)")
    p.add_argument("--pgbench-seconds", type=float, metavar="S",
                   help="pgbench's -T for the postgres target (default: --seconds)")
    p.add_argument("--dump-every", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--keep-profiles", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--lib", required=True, help=argparse.SUPPRESS)
    args = p.parse_args()
    configs = [c for c in re.split(r"[,\s]+", args.configs) if c]
    bad = [c for c in configs if c not in CONFIGS]
    if bad:
        p.error(f"unknown configuration {' '.join(bad)} (known: {', '.join(CONFIGS)})")
    if "bare" not in configs:
        configs.insert(0, "bare")
    configs.sort(key=lambda c: c != "bare")
    if os.geteuid() != 0:
        p.error("run as root (the targets start servers as other users)")
    args.keep = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(
        prefix=f"soak-{args.target}-")
    os.makedirs(args.keep, exist_ok=True)
    targets = list(TARGETS.values()) if args.target == "all" else [TARGETS[args.target]]

    # Daemons that leave their parent (pg_ctl's postmaster) stay this process's descendants,
    # which the dump signal's sender finds (PR_SET_CHILD_SUBREAPER).
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    sc.default_interrupt_signals()
    status = 0
    all_results = {}
    for target in targets:
        say(f"soak {target.name}: configs {', '.join(configs)}; output in {args.keep}")
        target.prepare(args.keep, args)
        results = {}
        try:
            for c in configs:
                results[c] = run_config(target, c, args)
        except KeyboardInterrupt:
            return 130
        all_results[target.name] = results
        status |= table(target, configs, results, args)
    if len(targets) > 1:
        summary(targets, configs, all_results, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
