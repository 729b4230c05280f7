#!/usr/bin/env python3
"""Runs a program's own test suite without and with gprof and compares the results test by test.

Called by scripts/soak (which installs the packages and builds the library first):

    soak_compare.py python --lib /abs/build/libgprof.so [--modules "..."] [--configs LIST]
                           [--keep DIR] [--dump-every SECONDS] [--env NAME=VALUE]
                           [--keep-profiles]

`--help` says what it runs and prints.

Python 3.11 standard library only.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

DEFAULT_MODULES = ("test_threading test_subprocess test_signal test_os test_multiprocessing_fork "
                   "test_concurrent_futures test_sqlite3 test_mmap test_faulthandler test_socket "
                   "test_json test_re test_pickle test_dict test_list test_posix "
                   "test_threadsignals")

# Tests left out by default (--ignore): they hang on these machines with or without gprof.
DEFAULT_IGNORE = ("*ThreadedVSOCKSocketStreamTest*",)  # test_socket: AF_VSOCK without a host

RATE1 = {"GPROF_MEM_PROFILE_RATE": "1"}
# name -> (preload gprof?, extra environment)
CONFIGS = {
    "bare": (False, {}),
    "jemalloc": (True, {}),
    "libc": (True, {"GPROF_ALLOCATOR": "libc"}),
    "jemalloc-rate1": (True, dict(RATE1)),
    "libc-rate1": (True, {"GPROF_ALLOCATOR": "libc", **RATE1}),
    "all-rate1": (True, {**RATE1, "GPROF_BLOCK_PROFILE_RATE": "1",
                         "GPROF_MUTEX_PROFILE_FRACTION": "1"}),
    "cpu250": (True, {"GPROF_CPU_HZ": "250"}),
    "cpu250-timer": (True, {"GPROF_CPU_HZ": "250", "GPROF_CPU_TIMER": "1"}),
    # GPROF_HTTP on a free port, its answers fetched every 3 s (Scraper). regrtest's main process
    # serves; the worker that runs the tests, and every process they start, find the address
    # taken by an ancestor and serve nothing (silently, which the comparison checks).
    "http": (True, {"GPROF_HTTP": "(a free port)"}),
}

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's 3.11, which libpython3.11-testsuite matches

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.0f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Running


def default_interrupt_signals():
    """SIGINT and SIGQUIT as a terminal gives them: a soak started in the background (a shell
    without job control ignores them for it) would pass SIG_IGN to every test, and a suite's
    SIGINT tests would then fail with gprof and without alike, or not, depending on how each run
    was started. Python's own handler becomes SIG_DFL in the children it starts."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def base_environment():
    """The caller's environment without anything that would preload or configure gprof or steer
    Python (a pyenv PYTHONPATH, say), so that `bare` is bare."""
    env = {}
    for k, v in os.environ.items():
        if k == "LD_PRELOAD" or k.startswith("GPROF_") or k.startswith("PYTHON"):
            continue
        env[k] = v
    env["PYTHONMALLOC"] = "malloc"
    return env


def catches(pid, sig=signal.SIGUSR2):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


class Dumper(threading.Thread):
    """Every `period` seconds sends `sig` (gprof's dump signal, SIGUSR2 by default) to every
    process whose environment holds `needle` (that run's unique GPROF_OUTPUT=...) and that catches
    it (SigCgt in /proc/PID/status): a process between exec and gprof's constructor would be
    killed by it (default action), which is the soak's doing, not gprof's."""

    def __init__(self, needle, period, sig=signal.SIGUSR2, lib=None):
        super().__init__(daemon=True)
        self.needle = b"\0" + needle.encode() + b"\0"
        self.period = period
        self.sig = sig
        self.lib = lib
        self.stop = threading.Event()
        self.signals = 0
        self.pids = set()

    def descendants(self, entries, me):
        """This process's descendants (soak_programs.py makes it their subreaper, so daemons
        that left their parent are among them)."""
        kids = collections.defaultdict(list)
        for e in entries:
            if e.isdigit():
                try:
                    with open(f"/proc/{e}/stat") as f:
                        kids[int(f.read().rsplit(")", 1)[1].split()[1])].append(int(e))
                except (OSError, ValueError, IndexError):
                    pass
        out, todo = set(), [me]
        while todo:
            for k in kids.get(todo.pop(), []):
                if k not in out:
                    out.add(k)
                    todo.append(k)
        return out

    def maps_lib(self, pid):
        with open(f"/proc/{pid}/maps") as f:
            return any(line.rstrip().endswith(self.lib) for line in f)

    def run(self):
        me = os.getpid()
        while not self.stop.wait(self.period):
            try:
                entries = os.listdir("/proc")
            except OSError:
                continue
            # With lib: also this process's descendants that map it, whose environment may not
            # show the needle any more (nginx, redis and PostgreSQL move it to rewrite their
            # process titles).
            mine = self.descendants(entries, me) if self.lib else set()
            for e in entries:
                if not e.isdigit() or int(e) == me:
                    continue
                try:
                    with open(f"/proc/{e}/environ", "rb") as f:
                        data = b"\0" + f.read()
                    if not data.endswith(b"\0"):
                        data += b"\0"
                    ours = self.needle in data or (int(e) in mine and self.maps_lib(e))
                    if ours and catches(e, self.sig):
                        os.kill(int(e), self.sig)
                        self.signals += 1
                        self.pids.add(int(e))
                except (OSError, ValueError):
                    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scraper(threading.Thread):
    """GPROF_HTTP's answers, fetched every `period` seconds as Parca would: heap, goroutine,
    allocs over 1 s, a 1 s CPU profile and mutex; each answer kept in out_dir for go tool pprof,
    each failure written to error_log."""

    PATHS = ("heap", "goroutine", "allocs?seconds=1", "profile?seconds=1", "mutex")

    def __init__(self, port, out_dir, error_log, period=3.0):
        super().__init__(daemon=True)
        self.port = port
        self.out_dir = out_dir
        self.error_log = error_log
        self.period = period
        self.stop = threading.Event()
        self.answers = []  # each request in turn: answered?
        self.files = []

    def run(self):
        os.makedirs(self.out_dir, exist_ok=True)
        n = 0
        while not self.stop.wait(self.period):
            for path in self.PATHS:
                url = f"http://127.0.0.1:{self.port}/debug/pprof/{path}"
                try:
                    with urllib.request.urlopen(url, timeout=10) as resp:
                        body = resp.read()
                    n += 1
                    f = os.path.join(self.out_dir, f"{n:04d}.{path.split('?')[0]}.pb.gz")
                    with open(f, "wb") as fh:
                        fh.write(body)
                    self.files.append(f)
                    self.answers.append(True)
                except Exception as e:  # noqa: BLE001 -- any failure is counted and logged
                    self.answers.append(False)
                    with open(self.error_log, "a") as fh:
                        fh.write(f"{url}: {e}\n")

    def failures(self):
        """(answered, failed, before, after): requests before the first answer may have come
        before the program started serving, those after the last one after it ended (a run that
        ends during a 1 s profile): only a failure between two answers counts."""
        answered = [i for i, ok in enumerate(self.answers) if ok]
        first, last = (answered[0], answered[-1]) if answered else (0, -1)
        failed = self.answers[first:last + 1].count(False)
        return len(answered), failed, first, len(self.answers) - last - 1


def pprof_command():
    """pprof itself (what `go tool pprof` runs), without the go command's start-up each time."""
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    try:
        tooldir = subprocess.run([go, "env", "GOTOOLDIR"], capture_output=True, text=True,
                                 timeout=60).stdout.strip()
        if tooldir and os.access(os.path.join(tooldir, "pprof"), os.X_OK):
            return [os.path.join(tooldir, "pprof")]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return [go, "tool", "pprof"]


def pprof_says(cmd, paths):
    """What `pprof -raw paths...` prints on stderr (empty: no warning)."""
    try:
        r = subprocess.run([*cmd, "-raw", *paths], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=600)
        said = r.stderr.decode(errors="replace").strip()
        if r.returncode != 0 and not said:
            said = f"exit code {r.returncode}"
        return said
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def check_profiles(paths, jobs=2, group=40, group_bytes=1 << 20, budget_bytes=1 << 30):
    """Opens the files with `go tool pprof -raw`, which must print nothing on stderr: returns
    (opened without warning, [(path, first line of what pprof said)], files opened). Files of
    one kind are opened together, up to `group` at a time (pprof merges them, and says which file
    it could not read); a group with anything said is opened again file by file, so each warning
    is charged to its own file. Every file, unless one kind's files pass its share of
    `budget_bytes` (rate 1 with a dump every second leaves tens of thousands of files, gigabytes,
    which pprof reads at a few MB/s): of that kind every k-th file in name order (each process's
    dumps in turn), k the smallest that keeps within the share."""
    cmd = pprof_command()
    problems = []
    lock = threading.Lock()
    by_kind = collections.defaultdict(list)
    for p in paths:
        by_kind[re.sub(r"^.*\.(\w+)\.pb\.gz$", r"\1", os.path.basename(p))].append(p)
    share = budget_bytes // max(1, len(by_kind))
    for kind, files in by_kind.items():
        total = sum(file_size(f) for f in files)
        if total > share:
            by_kind[kind] = files[::-(-total // share)]
    checked = sum(len(files) for files in by_kind.values())
    # Groups of at most `group` files and `group_bytes` compressed bytes: pprof merges large
    # profiles (rate 1, a compiler's every allocation) slowly, a group of them slower than apart.
    todo = []
    for files in by_kind.values():
        chunk, size = [], 0
        for f in files:
            n = file_size(f)
            if chunk and (len(chunk) >= group or size + n > group_bytes):
                todo.append(chunk)
                chunk, size = [], 0
            chunk.append(f)
            size += n
        if chunk:
            todo.append(chunk)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                chunk = todo.pop()
            if not pprof_says(cmd, chunk):
                continue
            for path in chunk:
                said = pprof_says(cmd, [path])
                if said:
                    with lock:
                        problems.append((path, said.splitlines()[0]))

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return checked - len(problems), problems, checked


def profile_files(directory):
    """The profiles under directory (gprof's finished files, not its temporary ones)."""
    out = []
    for d, _, files in os.walk(directory):
        out += [os.path.join(d, f) for f in files if f.endswith(".pb.gz")]
    return sorted(out)


def kill_tree(root):
    """SIGKILL `root` and every process descended from it (regrtest puts its workers in sessions
    of their own, so the process group is not enough). Stops the tree first so that no one
    forks away while it is being collected."""
    def children():
        kids = collections.defaultdict(list)
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    with open(f"/proc/{e}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    kids[ppid].append(int(e))
                except (OSError, ValueError, IndexError):
                    pass
        return kids
    seen = set()
    for _ in range(3):   # again, for what forked while being stopped
        kids, todo = children(), [root]
        while todo:
            pid = todo.pop()
            if pid not in seen:
                seen.add(pid)
                try:
                    os.kill(pid, signal.SIGSTOP)
                except OSError:
                    pass
            todo.extend(kids.get(pid, []))
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


PROGRESS_RE = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test_\w+) (.*)$")


def run_config(name, args, modules):
    preload, extra = CONFIGS[name]
    keep = args.keep
    log_path = os.path.join(keep, f"{name}.log")
    xml_path = os.path.join(keep, f"{name}.xml")
    for p in (log_path, xml_path, os.path.join(keep, f"{name}.info")):
        if os.path.exists(p):
            os.unlink(p)
    work = tempfile.mkdtemp(prefix=f"soak-{name}-")
    env = base_environment()
    info = {"modules": " ".join(modules), "work": work, "profiles": None, "signals": None}
    if preload:
        profiles = os.path.join(work, "profiles")
        os.makedirs(profiles)
        env["LD_PRELOAD"] = args.lib
        env["GPROF_OUTPUT"] = os.path.join(profiles, "gprof")
        env.update(extra)
        env.update(args.env)
        info["profiles"] = profiles
    port = None
    if "GPROF_HTTP" in extra:
        port = free_port()
        env["GPROF_HTTP"] = f"127.0.0.1:{port}"
    ignores = [a for pattern in args.ignore for a in ("--ignore", pattern)]
    # A test's time limit: regrtest's 15 minutes, four times that where every allocation is
    # sampled (test_multiprocessing_fork takes 2.5 minutes alone here, and about 4 times as long
    # at rate 1 on a loaded machine): a run cut short by the soak's own limit says nothing.
    timeout = 900 * (4 if extra.get("GPROF_MEM_PROFILE_RATE") == "1" else 1)
    cmd = [SYSTEM_PYTHON, "-m", "test", "-j1", "--timeout", str(timeout), "--junit-xml", xml_path,
           *ignores, *modules]
    shown_env = " ".join(f"{k}={v}" for k, v in env.items()
                         if k in ("LD_PRELOAD", "PYTHONMALLOC") or k.startswith("GPROF_"))
    say(f"{name}: start in {work}: {shown_env} {' '.join(cmd[:6])} ... ({len(modules)} modules)")
    dumper = scraper = None
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(f"# cwd: {work}\n# env: {shown_env}\n# cmd: {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        if preload and args.dump_every:
            dumper = Dumper("GPROF_OUTPUT=" + env["GPROF_OUTPUT"], args.dump_every)
            dumper.start()
        if port:
            scraper = Scraper(port, os.path.join(work, "scrapes"),
                              os.path.join(keep, f"{name}.scrapes.log"))
            scraper.start()
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                log.write(line)
                log.flush()
                m = PROGRESS_RE.search(line.rstrip("\n"))
                if m and m.group(1) in modules:
                    say(f"{name}: {line.strip()}")
            rc = proc.wait()
        except KeyboardInterrupt:
            say(f"{name}: interrupted; killing regrtest (pid {proc.pid}) and its descendants")
            kill_tree(proc.pid)
            proc.wait()
            shutil.rmtree(work, ignore_errors=True)
            # regrtest's own working directory, which it removes when it ends normally
            for d in glob.glob(os.path.join(tempfile.gettempdir(), f"test_python_{proc.pid}*")):
                shutil.rmtree(d, ignore_errors=True)
            raise
        finally:
            if dumper:
                dumper.stop.set()
                dumper.join()
            if scraper:
                scraper.stop.set()
                scraper.join()
    info["rc"] = rc
    info["seconds"] = time.monotonic() - start
    if dumper:
        info["signals"] = dumper.signals
    if info["profiles"]:
        size = 0
        others = []  # anything but a finished profile (a temporary file left behind)
        for d, _, files in os.walk(info["profiles"]):
            for f in files:
                size += file_size(os.path.join(d, f))
                if not f.endswith(".pb.gz"):
                    others.append(f)
        profiles = profile_files(info["profiles"])
        info["files"], info["bytes"] = len(profiles), size
        info["others"] = f"{len(others)}: {' '.join(sorted(others)[:5])}" if others else 0
        opened, problems, checked = check_profiles(profiles)
        info["opened"] = opened if checked == len(profiles) else f"{opened} of {checked} checked"
        if scraper:
            scraped_ok, scrape_problems, _ = check_profiles(scraper.files)
            problems += scrape_problems
            answered, failed, _, _ = scraper.failures()
            info["http"] = f"{answered} answered, {failed} failed, {scraped_ok} opened"
            info["http_failed"] = failed if answered else "no answer"
        info["pprof_problems"] = "; ".join(f"{os.path.basename(p)}: {w}"
                                           for p, w in problems[:5]) or None
    say(f"{name}: done, exit code {rc}, {info['seconds']:.0f}s")
    if args.keep_profiles:
        say(f"{name}: kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(keep, f"{name}.info"), "w") as f:
        for k, v in info.items():
            f.write(f"{k}={v}\n")
    return info


def read_info(keep, name):
    info = {}
    try:
        with open(os.path.join(keep, f"{name}.info")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                info[k] = None if v == "None" else v
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# Parsing


def module_status(text):
    """regrtest's progress text after the module name -> (status, detail)."""
    text = text.split(" -- running:")[0].strip()
    for prefix, status in (("passed", "passed"), ("failed (env changed)", "env-changed"),
                           ("failed", "failed"), ("skipped", "skipped"),
                           ("crashed", "crashed"), ("timed out", "timed-out"),
                           ("ran no tests", "no-tests"), ("interrupted", "interrupted")):
        if text.startswith(prefix):
            return status, text
    return "unknown", text


def crash_detail(lines, start):
    """What the worker's output after a crash line says: faulthandler's "Fatal Python error" or
    "Timeout" line, and the innermost test function in the traceback that follows."""
    what, where = None, None
    for line in lines[start:start + 400]:
        if PROGRESS_RE.search(line):
            break
        if what is None and (line.startswith("Fatal Python error:") or
                             re.match(r"Timeout \(\d", line)):
            what = line.strip()
        m = re.match(r'\s+File "(.*/test/[^"]*)", line (\d+) in (test\w*)$', line)
        if what and m and where is None:
            where = f"{m.group(3)} ({os.path.basename(m.group(1))}:{m.group(2)})"
        if what and where:
            break
    return "".join(f"; {x}" for x in (what, where) if x)


def parse_log(path, modules):
    """Module-level results from regrtest's output: {module: (status, detail)}, plus the
    overall 'Tests result' line and the lines printed by gprof."""
    mods, summary, gprof_lines = {}, None, []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return mods, "no log", gprof_lines
    with f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("gprof:"):
            gprof_lines.append(line)
        m = PROGRESS_RE.search(line)
        if m and m.group(1) in modules and m.group(1) not in mods:
            status, detail = module_status(m.group(2))
            if status in ("crashed", "timed-out"):
                detail += crash_detail(lines, i + 1)
            mods[m.group(1)] = (status, detail)
        m = re.match(r"== Tests result: (.*) ==$", line)
        if m:
            summary = m.group(1)
    # The end-of-run summary ("N tests failed:" followed by indented names) as a cross-check
    # for modules whose progress line was not found.
    heading = None
    for line in lines:
        m = re.match(r"(?:All )?\d+ tests? (OK\.|failed:|skipped:|altered the execution "
                     r"environment:|run no tests:)$", line)
        if m:
            heading = {"OK.": "passed", "failed:": "failed", "skipped:": "skipped",
                       "run no tests:": "no-tests"}.get(m.group(1), "env-changed")
            continue
        if heading and line.startswith("    "):
            for mod in line.split():
                if mod in modules and mod not in mods:
                    mods[mod] = (heading, "from the summary")
            continue
        heading = None
    return mods, summary, gprof_lines


def test_status(tc):
    if tc.find("failure") is not None:
        return "failure"
    if tc.find("error") is not None:
        return "error"
    if tc.find("skipped") is not None:
        return "skipped"
    if tc.get("outcome") == "UNEXPECTED_SUCCESS":
        return "unexpected-success"
    if tc.find("output") is not None:
        return "expected-failure"
    return "passed"


def test_message(tc):
    for tag in ("failure", "error", "skipped"):
        e = tc.find(tag)
        if e is not None:
            msg = (e.get("message") or e.text or "").strip()
            lines = [l.rstrip() for l in msg.splitlines() if l.strip()]
            # message = traceback.format_exception(type, value, None): a chain of exceptions,
            # the last one (the test's) after the last "During handling..."/"The above
            # exception...", without its traceback
            start = 0
            for i, l in enumerate(lines):
                if l.startswith(("During handling of the above exception",
                                 "The above exception was the direct cause")):
                    start = i + 1
            while start < len(lines) and (lines[start].startswith("Traceback (") or
                                          lines[start][:1].isspace()):
                start += 1
            return " / ".join(l.strip() for l in lines[start:] if l.strip() != "---")
    return ""


def module_of(test_id, modules):
    for mod in modules:
        if test_id.startswith(f"test.{mod}.") or test_id.startswith(f"{mod}."):
            return mod
    return None


def parse_xml(path, modules):
    """{module: {test id: (status, message)}}; None when the file is missing or unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    out = collections.defaultdict(dict)
    for suite in suites:
        cases = []
        for tc in suite.iter("testcase"):
            name = tc.get("name", "?")
            cls = tc.get("classname")
            cases.append((f"{cls}.{name}" if cls else name, tc))
        # A suite holds one module's tests: name it after the module most of its ids start with
        # (test_multiprocessing_fork runs classes defined in test._test_multiprocessing).
        votes = collections.Counter(module_of(i, modules) for i, _ in cases)
        votes.pop(None, None)
        suite_mod = votes.most_common(1)[0][0] if votes else "?"
        for test_id, tc in cases:
            mod = module_of(test_id, modules) or suite_mod
            key, n = test_id, 1
            while key in out[mod]:
                n += 1
                key = f"{test_id}#{n}"
            out[mod][key] = (test_status(tc), test_message(tc))
    return out


COUNT_AS = {"passed": 0, "expected-failure": 0, "failure": 1, "error": 1,
            "unexpected-success": 1, "skipped": 2}


def counts(tests):
    c = [0, 0, 0]
    for status, _ in tests.values():
        c[COUNT_AS[status]] += 1
    return c


# ---------------------------------------------------------------------------------------------
# Comparing


def compare(args, modules, configs, infos):
    results = {}
    for name in configs:
        mods, summary, gprof_lines = parse_log(os.path.join(args.keep, f"{name}.log"), modules)
        tests = parse_xml(os.path.join(args.keep, f"{name}.xml"), modules)
        results[name] = {"mods": mods, "summary": summary, "gprof": gprof_lines,
                         "tests": tests if tests is not None else {},
                         "xml": tests is not None}
    base = results["bare"]
    diffs = []          # (config, module, test id, bare status, status, message)
    marked = set()      # (config, module)
    for name in configs:
        if name == "bare":
            continue
        r = results[name]
        for mod in modules:
            bs = base["mods"].get(mod, ("missing", "no result line"))
            cs = r["mods"].get(mod, ("missing", "no result line"))
            if bs[0] != cs[0]:
                diffs.append((name, mod, f"{mod} (module)", bs[0], cs[0], cs[1]))
                marked.add((name, mod))
            bt = base["tests"].get(mod, {})
            ct = r["tests"].get(mod, {})
            for tid in sorted(set(bt) | set(ct)):
                b = bt.get(tid, ("missing", ""))
                c = ct.get(tid, ("missing", ""))
                if b[0] != c[0]:
                    diffs.append((name, mod, tid, b[0], c[0], c[1]))
                    marked.add((name, mod))
        extra = sorted(set(r["tests"]) - set(modules))
        for mod in extra:   # tests not attributable to a requested module ("?")
            bt, ct = base["tests"].get(mod, {}), r["tests"][mod]
            for tid in sorted(set(bt) | set(ct)):
                b, c = bt.get(tid, ("missing", "")), ct.get(tid, ("missing", ""))
                if b[0] != c[0]:
                    diffs.append((name, mod, tid, b[0], c[0], c[1]))

    out = []
    w = out.append
    w(f"# soak: python test suite, without and with gprof\n")
    w(f"Cells: passed/failed/skipped test cases from the junit XML (errors count as failed), "
      f"then regrtest's module result when it is not `passed`; `*` marks a cell whose results "
      f"differ from `bare`.\n")
    head = ["module", *configs]
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    totals = {n: [0, 0, 0] for n in configs}
    for mod in modules:
        row = [mod]
        for name in configs:
            r = results[name]
            c = counts(r["tests"].get(mod, {}))
            for i in range(3):
                totals[name][i] += c[i]
            cell = "/".join(map(str, c))
            st = r["mods"].get(mod, ("missing", ""))[0]
            if st != "passed":
                cell += f" {st}"
            if (name, mod) in marked:
                cell += " *"
            row.append(cell)
        w("| " + " | ".join(row) + " |")
    w("| **total** | " + " | ".join("/".join(map(str, totals[n])) for n in configs) + " |")
    w("")
    w("| run | " + " | ".join(configs) + " |")
    w("|" + "---|" * (len(configs) + 1))
    w("| regrtest result | " + " | ".join(
        f"{results[n]['summary'] or 'none'} (exit {infos[n].get('rc', '?')})" for n in configs)
      + " |")
    w("| junit XML | " + " | ".join("yes" if results[n]["xml"] else "**missing**"
                                    for n in configs) + " |")
    w("| seconds | " + " | ".join(
        f"{float(infos[n]['seconds']):.0f}" if infos[n].get("seconds") else "?" for n in configs)
      + " |")
    w("")

    ndiff_mod = sum(1 for d in diffs if d[2].endswith(" (module)"))
    w(f"## Results that differ from bare: {len(diffs) - ndiff_mod} tests, {ndiff_mod} modules\n")
    # Every difference goes to diffs.tsv; the report folds more than FOLD tests of one module
    # with the same change (a crashed module loses all its tests) into one row.
    FOLD = 5
    with open(os.path.join(args.keep, "diffs.tsv"), "w") as f:
        f.write("config\tmodule\ttest\tbare\tstatus\tmessage\n")
        for d in diffs:
            f.write("\t".join(x.replace("\t", " ").replace("\n", " ") for x in d) + "\n")
    groups = collections.Counter((d[0], d[1], d[3], d[4]) for d in diffs
                                 if not d[2].endswith(" (module)"))
    if diffs:
        w("| config | test | bare | status | message |")
        w("|---|---|---|---|---|")
        folded = set()
        for name, mod, tid, b, c, msg in diffs:
            key = (name, mod, b, c)
            if not tid.endswith(" (module)") and groups[key] > FOLD:
                if key in folded:
                    continue
                folded.add(key)
                every = groups[key] == len(results["bare" if c == "missing" else name]
                                           ["tests"].get(mod, {}))
                tid = f"{groups[key]} tests of {mod}{' (all)' if every else ''}"
                msg = (f"first: {msg}; " if msg else "") + "each in diffs.tsv"
            msg = msg.replace("|", "\\|")
            if len(msg) > 200:
                msg = msg[:200] + "..."
            w(f"| {name} | {tid} | {b} | {c} | {msg} |")
    else:
        w("none")
    w("")

    gconfigs = [n for n in configs if CONFIGS[n][0]]
    if gconfigs:
        w("## gprof's traces per run\n")
        w("| config | profiles | bytes | opened by `go tool pprof -raw` without warning | "
          "other files | `gprof:` lines | of which not `gprof: wrote` | SIGUSR2 sent | HTTP |")
        w("|---|---|---|---|---|---|---|---|---|")
        for n in gconfigs:
            info = infos[n]
            g = results[n]["gprof"]
            other = [l for l in g if not l.startswith("gprof: wrote ")]
            w(f"| {n} | {info.get('files', '?')} | {info.get('bytes', '?')} | "
              f"{info.get('opened', '?')} | {info.get('others', '?')} | {len(g)} | "
              f"{len(other)} | "
              f"{info.get('signals') or '-'} | {info.get('http') or '-'} |")
        w("")
        for n in gconfigs:
            failed = infos[n].get("http_failed")
            if failed is not None and str(failed) != "0":
                w(f"{n}: HTTP requests between two answers failed: {failed} "
                  f"({n}.scrapes.log)")
                diffs.append((n, "-", "http", "-", "failed requests", str(failed)))
        for n in gconfigs:
            if infos[n].get("pprof_problems"):
                w(f"{n}: `go tool pprof` said: {infos[n]['pprof_problems']}")
                diffs.append((n, "-", "profiles", "-", "pprof warning",
                              infos[n]["pprof_problems"]))
        for n in gconfigs:
            other = [l for l in results[n]["gprof"] if not l.startswith("gprof: wrote ")]
            if other:
                # distinct messages with the numbers (pids, addresses) folded
                c = collections.Counter(re.sub(r"\d+", "N", l) for l in other)
                w(f"{n}: distinct `gprof:` lines other than `wrote`:")
                for l, k in c.most_common(10):
                    w(f"    {k:6d}x {l[:200]}")
                w("")
    w(f"Logs, junit XML and this table: {args.keep}")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.keep, "table.md"), "w") as f:
        f.write(text)
    print()
    print(text, end="", flush=True)
    return 1 if diffs else 0


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(
        prog="scripts/soak",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs a program's own test suite without and with gprof and compares every "
                    "test's result with the run without gprof (`bare`).",
        epilog=f"""\
configurations:
  bare            no LD_PRELOAD
  jemalloc        LD_PRELOAD=libgprof.so, gprof's defaults
  libc            GPROF_ALLOCATOR=libc
  jemalloc-rate1  GPROF_MEM_PROFILE_RATE=1
  libc-rate1      GPROF_ALLOCATOR=libc GPROF_MEM_PROFILE_RATE=1
  all-rate1       GPROF_MEM_PROFILE_RATE=1 GPROF_BLOCK_PROFILE_RATE=1
                  GPROF_MUTEX_PROFILE_FRACTION=1
  cpu250          GPROF_CPU_HZ=250 (perf events where allowed)
  cpu250-timer    GPROF_CPU_HZ=250 GPROF_CPU_TIMER=1
  http            GPROF_HTTP=127.0.0.1:<a free port>, whose heap, goroutine, allocs?seconds=1,
                  profile?seconds=1 and mutex answers are fetched every 3 s and opened with
                  go tool pprof (regrtest's main process serves; its worker and the tests'
                  processes find the address taken and must say nothing)

Every run: PYTHONMALLOC=malloc {SYSTEM_PYTHON} -m test -j1 --timeout 900 --junit-xml FILE
MODULES (--timeout 3600 at GPROF_MEM_PROFILE_RATE=1), in a fresh temporary directory, one run after the other; the gprof runs with
GPROF_OUTPUT=<that directory>/profiles/gprof. `bare` always runs first (if it is left out of
--configs, the bare.log/bare.xml of the same modules already in --keep DIR are used, else it
is added).

default modules:
  {DEFAULT_MODULES}

--dump-every S: every S seconds send SIGUSR2 (gprof's dump signal) to every process whose
environment holds the run's GPROF_OUTPUT and which catches SIGUSR2 (SigCgt in /proc/PID/status;
a process that does not catch it yet, between exec and gprof's start, would die of it). A test
that installs its own SIGUSR2 handler (test_signal, test_threadsignals...) receives that signal
too and may then fail: such a difference comes from the soak, not from gprof.

Output: the table (one row per module, one column per configuration), every test whose status
differs from bare, and per gprof run the files written under its profiles directory and the
`gprof:` lines in its output. Written also to DIR/table.md; DIR/<config>.log holds each run's
whole output, DIR/<config>.xml its junit XML. Exit status: 0 when no test differs from bare,
1 otherwise, 2 on bad usage.""")
    p.add_argument("program", choices=["python"], help="whose test suite to run")
    p.add_argument("--modules", default=DEFAULT_MODULES,
                   help="space-separated test modules (default: see below), or `wide`: the "
                        "modules listed in scripts/soak_python_modules.txt")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help="comma-separated configurations (default: all): " + ",".join(CONFIGS))
    p.add_argument("--keep", metavar="DIR",
                   help="directory for logs, XML and table.md (default: a new one under /tmp)")
    p.add_argument("--dump-every", metavar="SECONDS", type=float, default=0,
                   help="send SIGUSR2 to the gprof runs' processes every SECONDS (default: off)")
    p.add_argument("--env", metavar="NAME=VALUE", action="append", default=[],
                   help="extra environment for every gprof run (repeatable), e.g. GPROF_LOG=0")
    p.add_argument("--keep-profiles", action="store_true",
                   help="keep each run's temporary directory (with its profiles)")
    p.add_argument("--no-build", action="store_true",
                   help="use build/libgprof.so as it is (default: build it first, incrementally)")
    p.add_argument("--ignore", metavar="PATTERN", action="append", default=None,
                   help="a test name pattern to leave out (regrtest's --ignore; repeatable; "
                        "default: " + " ".join(DEFAULT_IGNORE) + ", which hangs here without "
                        "gprof too)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the runs of the same modules already in --keep DIR (each "
                        "configuration's .log, .xml and .info) and run only the others: the "
                        "table again, or a configuration added to it")
    p.add_argument("--lib", required=True, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.ignore is None:
        args.ignore = list(DEFAULT_IGNORE)
    modules = args.modules.replace(",", " ").split()
    if modules == ["wide"]:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "soak_python_modules.txt")) as f:
            modules = " ".join(x for x in f if not x.startswith("#")).split()
    configs = [c for c in re.split(r"[,\s]+", args.configs) if c]
    bad = [c for c in configs if c not in CONFIGS]
    if bad or not configs or not modules:
        p.error(f"unknown configuration {' '.join(bad)} (known: {', '.join(CONFIGS)})"
                if bad else "nothing to run")
    configs = list(dict.fromkeys(configs))
    env = {}
    for e in args.env:
        k, eq, v = e.partition("=")
        if not eq or not k:
            p.error(f"--env wants NAME=VALUE, not {e!r}")
        env[k] = v
    args.env = env
    if args.dump_every < 0:
        p.error("--dump-every must be positive")
    if not os.path.isabs(args.lib) or not os.path.exists(args.lib):
        p.error(f"no library at {args.lib}")
    if args.keep:
        args.keep = os.path.abspath(args.keep)
        os.makedirs(args.keep, exist_ok=True)
    else:
        args.keep = tempfile.mkdtemp(prefix="soak-python-")

    def kept(name):
        return (os.path.exists(os.path.join(args.keep, f"{name}.log")) and
                read_info(args.keep, name).get("modules") == " ".join(modules))

    run = [c for c in configs if not (args.reuse and kept(c))]
    if "bare" in configs:
        configs.remove("bare")
    elif kept("bare"):
        pass  # reuse the bare run of the same modules
    else:
        run.insert(0, "bare")
    run.sort(key=lambda c: c != "bare")
    configs.insert(0, "bare")

    say(f"soak python: {len(modules)} modules, configs {', '.join(run)}; output in {args.keep}")
    for name in configs:
        if name not in run:
            say(f"{name}: reusing {args.keep}/{name}.log and {name}.xml")
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    default_interrupt_signals()
    infos = {}
    try:
        for name in run:
            infos[name] = run_config(name, args, modules)
    except KeyboardInterrupt:
        return 130
    for name in configs:
        if name not in infos:
            infos[name] = read_info(args.keep, name)
    return compare(args, modules, configs, infos)


if __name__ == "__main__":
    sys.exit(main())
