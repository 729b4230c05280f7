#!/usr/bin/env python3
"""scripts/bench: what gprof costs, beside plain allocators and other profilers, told from noise.

  scripts/bench                      # the default workloads, each under its set's configs, 5 rounds
  scripts/bench --quick              # 3 rounds at scale 0.25, still interleaved
  scripts/bench --workloads mixed --configs glibc,gprof-libc --rounds 9
  scripts/bench --baseline OTHER/libgprof.so   # every gprof config beside the same config of
                                               # another build: before and after, in one run
  scripts/bench --list               # the known configs, workloads and ratios

Each workload belongs to a set (alloc, locks, short) and runs under the configs of that set, or
under --configs when given. Runs are interleaved: each round runs every workload under each of its
configs once, in reverse order on every other round, so every ratio is taken pair by pair: the
two runs of one round, seconds apart (A, B in one round, B, A in the next). A ratio is reported as
the median of its rounds' ratios with their quartiles and range, so a difference can be told from
the noise of a shared machine: "slower" or "faster" only when every pair agrees, "!" when the
lower quartile is above the target. Each run is measured for wall time, CPU time (user + system,
of the workload and every process it waited for), minor page faults and maximum RSS; it must exit
0 within the time limit and print the same result line as the workload's other runs. Progress
goes to stderr, the report (markdown) to stdout; a failed run makes the exit status 1.

Adding a workload or a config is a line in the tables below (and, for a new set, its name in the
configs' sets); a target is a line of RATIOS.
"""
import argparse
import fnmatch
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time

# Configurations: (name, the sets of workloads it runs in by default ("" only when named),
# LD_PRELOAD ("" none), command prefix ("" none), environment). @BUILD@, @LIBDIR@ and @TMP@ are
# substituted. A config whose library or prefix command is missing is skipped with a message.
# --baseline LIB adds, beside each config that preloads @BUILD@/libgprof.so ("gprof..."), its twin
# ("base...") with LIB and the same settings.
GPROF = "@BUILD@/libgprof.so"
JEMALLOC = "@LIBDIR@/libjemalloc.so.2"
# The HTTP server's configs preload gprof through this prefix, which scrapes the program.
SCRAPE = "@PYTHON@ test/bench/scrape_every.py --preload " + GPROF + " --every "
CONFIGS = [
    ("glibc", "alloc,locks,short,cpu,api", "", "", ""),
    ("jemalloc", "alloc,short", JEMALLOC, "", ""),
    ("gprof", "alloc,short,cpu", GPROF, "", "GPROF_MEM_PROFILE_RATE=0 GPROF_AT_EXIT=0"),
    ("gprof-libc", "alloc", GPROF, "",
     "GPROF_MEM_PROFILE_RATE=0 GPROF_AT_EXIT=0 GPROF_ALLOCATOR=libc"),
    ("gprof-default", "alloc,locks,short,api", GPROF, "", "GPROF_OUTPUT=@TMP@/gprof"),
    ("gprof-nolocks", "locks", GPROF, "",
     "GPROF_BLOCK_PROFILE_RATE=0 GPROF_MUTEX_PROFILE_FRACTION=0 GPROF_OUTPUT=@TMP@/gprof"),
    ("gprof-sampling", "", GPROF, "", "GPROF_AT_EXIT=0"),
    ("gprof-rate1", "", GPROF, "", "GPROF_MEM_PROFILE_RATE=1 GPROF_OUTPUT=@TMP@/gprof"),
    ("gprof-cpu100", "cpu", GPROF, "",
     "GPROF_MEM_PROFILE_RATE=0 GPROF_CPU_HZ=100 GPROF_OUTPUT=@TMP@/gprof"),
    ("jemalloc-thp", "", JEMALLOC, "", "MALLOC_CONF=thp:always"),
    ("jeprof", "alloc,short", JEMALLOC, "",
     "MALLOC_CONF=prof:true,lg_prof_sample:19,prof_final:true,prof_prefix:@TMP@/jeprof"),
    ("jeprof-all", "", JEMALLOC, "",
     "MALLOC_CONF=prof:true,lg_prof_sample:0,prof_final:true,prof_prefix:@TMP@/jeprof"),
    ("tcmalloc", "alloc", "@LIBDIR@/libtcmalloc.so.4", "", "TCMALLOC_SAMPLE_PARAMETER=524288"),
    ("heaptrack", "", "", "heaptrack -r -o @TMP@/heaptrack.%p", ""),
    ("gperftools-cpu", "cpu", "@LIBDIR@/libprofiler.so.0", "",
     "CPUPROFILE=@TMP@/gperftools.prof CPUPROFILE_FREQUENCY=100"),
    ("gprof-http", "http", "", SCRAPE + "0 --", "GPROF_AT_EXIT=0"),
    ("gprof-scraped", "http", "", SCRAPE + "1 --", "GPROF_AT_EXIT=0"),
]

# Workloads: (name, run by default, set, command, environment, per run). "per run" is "COUNT UNIT"
# at scale 1 (a pair's difference is then also printed per UNIT), or "". @SCALE@ is 1 (0.25 with
# --quick, or --scale), @LONG@ four times that (a run of several seconds, for per-second events);
# @PYTHON@ is Debian's /usr/bin/python3 (not a pyenv/venv shim, which would put a shell script
# under LD_PRELOAD and heaptrack).
B = "@BUILD@/test/bench/"
WORKLOADS = [
    ("churn2", True, "alloc", B + "bench_churn 2 @SCALE@", "", ""),
    ("churn4", True, "alloc", B + "bench_churn 4 @SCALE@", "", ""),
    ("mixed", True, "alloc", B + "bench_mixed @SCALE@", "", ""),
    ("python", True, "alloc", "@PYTHON@ test/bench/alloc_heavy.py @SCALE@",
     "PYTHONMALLOC=malloc", ""),
    ("tasks", False, "alloc", B + "bench_tasks @SCALE@", "", "320 thread"),
    ("locks2", True, "locks", B + "bench_locks contended 2 @SCALE@", "", ""),
    ("locks2x4", True, "locks", B + "bench_locks contended 2 @SCALE@ 4", "", ""),
    ("locks4", False, "locks", B + "bench_locks contended 4 @SCALE@", "", ""),
    ("uncontended", True, "locks", B + "bench_locks uncontended @SCALE@", "", "100000000 pair"),
    ("uncontended-single", False, "locks", B + "bench_locks uncontended-single @SCALE@", "",
     "100000000 pair"),
    ("true", True, "short", B + "bench_spawn @SCALE@ /bin/true", "", "100 process"),
    ("python-start", True, "short", B + "bench_spawn @SCALE@ @PYTHON@ -c pass", "",
     "100 process"),
    ("git-version", False, "short", B + "bench_spawn @SCALE@ /usr/bin/git --version", "",
     "100 process"),
    ("make-cxx", False, "short", "test/bench/make_cxx.sh @SCALE@ @TMP@", "", ""),
    ("fork", False, "short", B + "bench_fork @SCALE@", "", "200 fork"),
    ("cpu", False, "cpu", B + "bench_cpu_work @SCALE@", "", ""),
    ("api", False, "api", B + "bench_api_calls @SCALE@", "", ""),
    ("churn2-long", False, "http", B + "bench_churn 2 @LONG@", "", ""),
]
# A workload's result line starts with one of these words; it must be the same in every run of
# the workload (the workloads are deterministic), whatever else a prefix command prints.
RESULT_WORDS = ("churn", "mixed", "alloc_heavy", "tasks", "locks", "spawn", "fork", "cpuwork",
                "api", "build")

# Targets: (numerator, denominator, target, workloads (globs)). A target is a ratio ("1.05") or,
# for a workload with a per-run count, a difference per unit ("+1ns", "+1.5ms"); "" none. For a
# pair of configs the first row whose globs match the workload applies. Shown where both ran.
RATIOS = [
    ("gprof", "jemalloc", "1.03", "*"),
    ("gprof-libc", "glibc", "1.03", "*"),
    ("gprof", "glibc", "+1.5ms", "true,python-start,git-version"),
    ("gprof", "glibc", "", "*"),
    ("jemalloc", "glibc", "", "true,python-start,git-version"),
    ("gprof-default", "glibc", "", "api"),  # without gprof the calls are skipped: ns in stderr
    ("gprof-default", "glibc", "+1ns", "uncontended*"),
    ("gprof-default", "glibc", "1.05", "locks*"),
    ("gprof-default", "glibc", "+1.5ms", "true,python-start,git-version"),
    ("gprof-default", "glibc", "1.03", "make-cxx"),
    ("gprof-default", "glibc", "1.10", "*"),
    ("gprof-nolocks", "glibc", "", "*"),
    ("gprof-default", "gprof-nolocks", "1.05", "*"),
    ("gprof-default", "jemalloc", "1.05", "churn*,mixed,python"),
    ("gprof-default", "jemalloc", "", "*"),
    ("gprof-default", "jeprof", "1.00", "*"),
    ("gprof-default", "tcmalloc", "", "*"),
    ("gprof-sampling", "jemalloc", "1.05", "*"),
    ("gprof-rate1", "heaptrack", "0.50", "*"),
    ("gprof-rate1", "jeprof-all", "", "*"),
    ("gprof-cpu100", "gprof", "1.01", "*"),
    ("gprof-scraped", "gprof-http", "1.01", "*"),
    ("gprof-cpu100", "gperftools-cpu", "", "*"),
    ("gperftools-cpu", "glibc", "", "*"),
]


def default_libdir():
    try:
        arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        arch = ""
    d = f"/usr/lib/{arch or 'x86_64-linux-gnu'}"
    return d if os.path.isdir(d) else "/usr/lib/x86_64-linux-gnu"


class Config:
    def __init__(self, name, sets, preload, prefix, env):
        self.name, self.preload, self.prefix, self.env = name, preload, prefix, env
        self.sets = set(sets.split(",")) if sets else set()


class Workload:
    def __init__(self, name, default, wset, command, env, per):
        self.name, self.default, self.set, self.command, self.env = name, default, wset, \
            command, env
        self.count, self.unit = (None, None)
        if per:
            count, self.unit = per.split()
            self.count = float(count)


def parse_args():
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="3 rounds at scale 0.25")
    p.add_argument("--scale", type=float, default=None, help="workload size (default 1)")
    p.add_argument("--configs",
                   help="configs to run, comma-separated (default: each workload's set's)")
    p.add_argument("--workloads",
                   help="workloads to run, comma-separated (default: those marked so)")
    p.add_argument("--timeout", type=int, default=600, help="per-run limit in seconds (600)")
    p.add_argument("--baseline", metavar="LIB",
                   help="another libgprof.so: each gprof config again over it (base...)")
    p.add_argument("--no-dump", action="store_true",
                   help="skip the dump and symbolize measurements")
    p.add_argument("--list", action="store_true", help="list configs, workloads and ratios")
    # Handled by the scripts/bench wrapper; accepted here so that one command line serves both.
    p.add_argument("--no-install", action="store_true", help="don't install missing packages")
    p.add_argument("--no-build", action="store_true", help="don't run meson (use build/)")
    a = p.parse_args()
    if a.rounds is None:
        a.rounds = 3 if a.quick else 5
    if a.scale is None:
        a.scale = 0.25 if a.quick else 1.0
    if a.rounds < 1 or a.scale <= 0 or a.timeout < 1:
        p.error("--rounds, --scale and --timeout must be positive")
    return a


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="gprof-bench.")
        self.libdir = default_libdir()
        python = "/usr/bin/python3"
        self.python = python if os.access(python, os.X_OK) else shutil.which("python3")
        self.baseline = os.path.realpath(args.baseline) if args.baseline else None
        self.configs = {r[0]: Config(*r) for r in CONFIGS}
        self.workloads = {r[0]: Workload(*r) for r in WORKLOADS}
        self.ratios = [list(r) for r in RATIOS]
        self.results = {}  # (workload, config, round) -> dict
        self.expect = {}  # workload -> result lines
        self.failures = 0

    def subst(self, s):
        for k, v in (("@BUILD@", "build"), ("@LIBDIR@", self.libdir), ("@TMP@", self.tmp),
                     ("@SCALE@", f"{self.args.scale:g}"),
                     ("@LONG@", f"{4 * self.args.scale:g}"), ("@PYTHON@", self.python)):
            s = s.replace(k, v)
        return s

    def twin(self, name):
        """The --baseline twin of a gprof config: the same settings over the other library."""
        c = self.configs[name]
        t = Config("base" + name[len("gprof"):], "", self.baseline, c.prefix, c.env)
        t.env = c.env.replace("@TMP@/gprof", "@TMP@/base")
        return t

    def runnable(self, c):
        pre = self.subst(c.preload)
        if pre and not os.path.isfile(pre):
            print(f"bench: skipping {c.name}: {pre} not found", file=sys.stderr)
            return False
        command = self.subst(c.prefix).split()[:1]
        if command and shutil.which(command[0]) is None:
            print(f"bench: skipping {c.name}: {command[0]} not found", file=sys.stderr)
            return False
        return True

    def plan(self):
        """The workloads in order, each with its configs in order (twins beside their configs)."""
        a = self.args
        names = a.workloads.split(",") if a.workloads else \
            [w for w, x in self.workloads.items() if x.default]
        for n in names:
            if n not in self.workloads:
                sys.exit(f"bench: unknown workload '{n}' (known: {','.join(self.workloads)})")
        chosen = a.configs.split(",") if a.configs else None
        for n in chosen or []:
            if n not in self.configs:
                sys.exit(f"bench: unknown config '{n}' (known: {','.join(self.configs)})")
        ok = {}
        plan = []
        for w in names:
            cs = chosen or [c for c, x in self.configs.items() if self.workloads[w].set in x.sets]
            out = []
            for c in cs:
                if c not in ok:
                    ok[c] = self.runnable(self.configs[c])
                if not ok[c]:
                    continue
                out.append(c)
                if self.baseline and self.configs[c].preload == GPROF:
                    t = self.twin(c)
                    self.configs.setdefault(t.name, t)
                    out.append(t.name)
            if out:
                plan.append((w, out))
        if not plan:
            sys.exit("bench: nothing to run")
        return plan

    # -------------------------------------------------------------------------------------------
    def run_one(self, w, c, r):
        wl, cf = self.workloads[w], self.configs[c]
        # The workload's own settings go through `env`, so that they apply to it alone:
        # /usr/bin/time reports its maximum RSS and minor faults (wait4's own figures would count
        # the bench's Python image, which a child inherits until it execs).
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        sets = [self.subst(kv) for kv in (wl.env + " " + cf.env).split()]
        if cf.preload:
            sets.append("LD_PRELOAD=" + os.path.realpath(self.subst(cf.preload)))
        cmd = self.subst(cf.prefix).split() + self.subst(wl.command).split()
        out_path, err_path = os.path.join(self.tmp, "out"), os.path.join(self.tmp, "err")
        rss_path = os.path.join(self.tmp, "rss")
        measure = [TIME, "-f", "%M %R", "-o", rss_path] if TIME else []
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(measure + ["env"] + sets + cmd, env=env, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
            timed_out = threading.Event()

            def kill():
                timed_out.set()
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            timer = threading.Timer(self.args.timeout, kill)
            timer.start()
            _, status, ru = os.wait4(p.pid, 0)
            t1 = time.perf_counter()
            timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
        rss, faults = ru.ru_maxrss, ru.ru_minflt
        try:
            with open(rss_path) as f:
                rss, faults = (int(x) for x in f.read().split()[-2:])
        except (OSError, ValueError):
            pass
        res = {"wall": t1 - t0, "cpu": ru.ru_utime + ru.ru_stime, "faults": faults, "rss": rss,
               "ok": False}
        with open(out_path, errors="replace") as f:
            lines = [x for x in f.read().splitlines() if x.split(" ", 1)[0] in RESULT_WORDS]
        why = None
        if timed_out.is_set():
            why = f"timed out after {self.args.timeout}s"
        elif p.returncode != 0:
            why = f"exit status {p.returncode}"
        elif not lines:
            why = "no result line on stdout"
        elif w in self.expect and lines != self.expect[w]:
            why = f"result differs: expected {self.expect[w]}, got {lines}"
        if why:
            self.failures += 1
            print(f"bench: FAILED: {w} under {c} (round {r}): {why}", file=sys.stderr)
            print(f"  command: {' '.join(sets + cmd)}", file=sys.stderr)
            with open(err_path, errors="replace") as f:
                for line in f.read().splitlines()[-15:]:
                    print(f"  | {line}", file=sys.stderr)
        else:
            self.expect.setdefault(w, lines)
            res["ok"] = True
        self.results[(w, c, r)] = res
        print(f"  {w:<14} {c:<14} {res['wall']:8.3f}s {res['cpu']:8.3f}s CPU "
              f"{res['faults']:8d} faults {res['rss']:8d} KB  {'ok' if res['ok'] else 'FAILED'}",
              file=sys.stderr)

    def run(self, plan):
        a = self.args
        print(f"bench: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} "
              f"CPUs, {os.uname().release}, rounds={a.rounds} scale={a.scale:g}", file=sys.stderr)
        for r in range(1, a.rounds + 1):
            print(f"bench: round {r}/{a.rounds}", file=sys.stderr)
            for w, cs in plan:
                for c in (cs if r % 2 else reversed(cs)):
                    self.run_one(w, c, r)

    # -------------------------------------------------------------------------------------------
    def values(self, w, c, key):
        return [v[key] for (w2, c2, _), v in self.results.items()
                if w2 == w and c2 == c and v["ok"]]

    def pairs(self, w, num, den, f):
        """f(numerator's run, denominator's run) for each round in which both ran well."""
        out = []
        for r in range(1, self.args.rounds + 1):
            a, b = self.results.get((w, num, r)), self.results.get((w, den, r))
            if a and b and a["ok"] and b["ok"]:
                out.append(f(a, b))
        return out

    def ratio_rows(self, plan):
        """(workload, numerator, denominator, target) for every ratio whose configs both ran."""
        table = list(self.ratios)
        if self.baseline:
            # Before beside after: each gprof ratio again with the baseline's twin, and each gprof
            # config against its twin.
            extra = []
            for num, den, tgt, globs in table:
                t = [x if not x.startswith("gprof") else "base" + x[len("gprof"):]
                     for x in (num, den)]
                if t != [num, den]:
                    extra.append([t[0], t[1], tgt, globs])
            table += extra
            table += [[c, "base" + c[len("gprof"):], "", "*"] for c in self.configs
                      if c.startswith("gprof")]
        out = []
        for w, cs in plan:
            seen = set()
            for num, den, tgt, globs in table:
                if num in cs and den in cs and (num, den) not in seen and \
                        any(fnmatch.fnmatchcase(w, g) for g in globs.split(",")):
                    seen.add((num, den))
                    out.append((w, num, den, tgt))
        return out

    def report(self, plan):
        a = self.args
        print(f"Rounds: {a.rounds}, scale {a.scale:g}. Medians over the rounds; CPU = user + "
              "system seconds; faults = minor page faults; RSS = the largest of the runs.")
        print()
        print("| workload | config | wall s | min | max | CPU s | faults | max RSS MB | runs |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for w, cs in plan:
            for c in cs:
                n = sum(1 for (w2, c2, _) in self.results if w2 == w and c2 == c)
                wall = self.values(w, c, "wall")
                if not wall:
                    print(f"| {w} | {c} | - | - | - | - | - | - | 0/{n} ! |")
                    continue
                cpu, faults = self.values(w, c, "cpu"), self.values(w, c, "faults")
                rss = max(self.values(w, c, "rss")) / 1024
                mark = "" if len(wall) == n else " !"
                print(f"| {w} | {c} | {statistics.median(wall):.3f} | {min(wall):.3f} | "
                      f"{max(wall):.3f} | {statistics.median(cpu):.3f} | "
                      f"{statistics.median(faults):.0f} | {rss:.1f} | {len(wall)}/{n}{mark} |")
        rr = self.ratio_rows(plan)
        if not rr:
            return
        print()
        print("Ratios pair by pair: each pair is one round's two runs of the workload; wall: "
              "median [quartiles] (range) of the pairs' ratios; CPU: median [quartiles]; faults: "
              "median. Verdict: slower or faster when every pair agrees, else ~ (not told from "
              "noise); \"!\" when the lower quartile is above the target, \"?\" when only the "
              "median is. Per unit: the difference of each pair's wall times per unit of work, "
              "median [quartiles].")
        print()
        print("| workload | ratio | target | wall | CPU | faults | per unit | pairs | verdict |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for w, num, den, tgt in rr:
            wl = self.workloads[w]
            wall = self.pairs(w, num, den, lambda x, y: x["wall"] / y["wall"])
            if not wall:
                continue
            cpu = self.pairs(w, num, den, lambda x, y: x["cpu"] / y["cpu"] if y["cpu"] else 0)
            flt = self.pairs(w, num, den, lambda x, y: x["faults"] / max(y["faults"], 1))
            scale = wl.count * a.scale if wl.count else None
            per = self.pairs(w, num, den, lambda x, y: (x["wall"] - y["wall"]) / scale) \
                if scale else None
            print(f"| {w} | {num} / {den} | {tgt or '-'} | {spread(wall)} | {spread(cpu, False)} | "
                  f"{statistics.median(flt):.2f} | "
                  f"{spread_time(per, wl.unit) if per else '-'} | {len(wall)} | "
                  f"{verdict(wall, per, tgt)} |")

    def extras(self):
        """The dump and symbolize measurements (no pairs: what one process spends)."""
        many = os.path.join(ROOT, "build/test/bench/bench_many_stacks")
        if os.access(many, os.X_OK):
            print()
            print("Dump with many distinct stacks (gprof, GPROF_MEM_PROFILE_RATE=1):")
            print()
            d = os.path.join(self.tmp, "dump")
            os.makedirs(d, exist_ok=True)
            env = dict(os.environ, LD_PRELOAD=os.path.join(ROOT, "build/libgprof.so"),
                       GPROF_MEM_PROFILE_RATE="1", GPROF_LOG="0", GPROF_AT_EXIT="0",
                       GPROF_OUTPUT=os.path.join(d, "gprof"))
            self.indent([many, d], env, "the dump benchmark")
            for f in sorted(os.listdir(d)):
                if f.endswith(".heap.pb.gz"):
                    size = os.path.getsize(os.path.join(d, f)) / 1048576
                    print(f"    file size: {size:.1f} MiB")
                    break
        sym = os.path.join(ROOT, "build/test/bench/bench_symbolize")
        if os.access(sym, os.X_OK):
            print()
            print("Symbolizing a dump (distinct addresses over libc's text; cache = resolved "
                  "addresses kept):")
            print()
            self.indent([sym, "5000", "10000", "100000"], dict(os.environ),
                        "the symbolize benchmark")

    def indent(self, cmd, env, what):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        for line in p.stdout.splitlines():
            print(f"    {line}")
        if p.returncode != 0:
            print(f"bench: {what} failed:\n{p.stderr}", file=sys.stderr)
            self.failures += 1


def quartiles(xs):
    xs = sorted(xs)
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def spread(xs, full=True):
    lo, med, hi = quartiles(xs)
    if not full:
        return f"{med:.3f} [{lo:.3f}-{hi:.3f}]"
    return f"{med:.3f} [{lo:.3f}-{hi:.3f}] ({min(xs):.3f}-{max(xs):.3f})"


def time_text(s):
    a = abs(s)
    for unit, f in (("s", 1), ("ms", 1e3), ("us", 1e6)):
        if a >= 1 / f:
            return f"{s * f:+.2f} {unit}"
    return f"{s * 1e9:+.1f} ns"


def spread_time(xs, unit):
    lo, med, hi = quartiles(xs)
    return f"{time_text(med)} [{time_text(lo)}, {time_text(hi)}] per {unit}"


def target_seconds(tgt):
    m = re.fullmatch(r"\+([0-9.]+)(ns|us|ms|s)", tgt)
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]


def verdict(ratios, per, tgt):
    # A sign test: every one of n pairs on the same side happens by chance with probability 2^-n
    # each way (1/16 for 5 pairs, 1/256 for 9).
    n, k = len(ratios), sum(1 for r in ratios if r > 1)
    v = f"slower ({n}/{n})" if k == n else f"faster ({n}/{n})" if k == 0 else f"~ ({k}/{n} slower)"
    if not tgt:
        return v
    t = target_seconds(tgt)
    if t is not None:
        if not per:
            return v
        lo, med, _ = quartiles(per)
    else:
        t = float(tgt)
        lo, med, _ = quartiles(ratios)
    if lo > t:
        return v + " !"
    if med > t:
        return v + " ?"
    return v


def main():
    args = parse_args()
    b = Bench(args)
    try:
        if args.list:
            for title, table in (("configs (name, sets, preload, prefix, environment)", CONFIGS),
                                 ("workloads (name, default, set, command, environment, per run)",
                                  WORKLOADS),
                                 ("targets (numerator, denominator, target, workloads)", RATIOS)):
                print(title + ":")
                for row in table:
                    print("  " + " | ".join(str(x) if x != "" else "-" for x in row))
            return 0
        os.chdir(ROOT)
        for prog in ("bench_churn", "bench_mixed", "bench_locks", "bench_spawn"):
            if not os.access(f"build/test/bench/{prog}", os.X_OK):
                sys.exit(f"bench: build/test/bench/{prog} was not built")
        plan = b.plan()
        print("bench: " + "; ".join(f"{w}: {','.join(cs)}" for w, cs in plan), file=sys.stderr)
        b.run(plan)
        b.report(plan)
        if not args.no_dump:
            b.extras()
        if b.failures:
            print(f"\nbench: {b.failures} run(s) failed; see the messages above.", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
