"""harness: run one fault schedule against a fresh ensemble and check the whole history.

A schedule is a replayable string of timed steps, seconds after the workload starts:

    "2:kill=leader 5:restart 7:part=leader 11:heal"

  kill=T        kill -9 of T (leader, follower, minority, or mN); `restart` starts every killed member
  pause=T       SIGSTOP of T; `resume` sends SIGCONT to every paused member
  part=P        iptables partition: leader (isolate the leader), halves (majority/minority), bridge
                (two sides that cannot talk, one member that sees both), mN (isolate one); `heal`
  down=T        T's link on the bridge down (`heal` brings it up)
  torn=T[/mid|/partial]   kill -9 of T, its last log file torn (mid: cut in the middle of the last
                record; partial: half a record written after it), restart, and wait until the
                ensemble converged again (a torn record may be one T had acknowledged: a lost
                write on one disk, which Raft survives only while the others hold it)
  disk=T        fill T's dataLogDir (a small tmpfs) to the last byte; `free` removes the filler

Clients live on their own hosts; client i's home is member i mod n, and the even ones share
their home's side of a partition (the odd ones see every member). The run: build the hosts and
the ensemble, create the keys, run the agents for `duration` seconds while the nemesis plays the
schedule, heal everything, wait until every member has the same last zxid and tree digest, read
the final state, and run the checkers. Returns a RunResult with figures and violations.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checker  # noqa: E402
from checker import INF, Op  # noqa: E402
from cluster import Cluster, binary, log_files, log_records, stop_process  # noqa: E402
from net import PREFIX, Net  # noqa: E402

PY = "/usr/bin/python3"
SESSION_MS = 2000
DEFAULT_SETTINGS = {"tickTime": 200, "minSessionTimeout": 1000, "maxSessionTimeout": 10000, "snapCount": 300}
STEP = re.compile(r"^(\d+(?:\.\d+)?):([a-z]+)(?:=([A-Za-z0-9/]+))?$")
FAULT_KINDS = ("kill-leader", "kill-follower", "kill-minority", "pause-leader", "pause-follower",
               "part-leader", "part-halves", "part-bridge", "part-member", "link-down", "torn-tail",
               "disk-full")


def parse_schedule(text):
    steps = []
    for tok in text.split():
        m = STEP.match(tok)
        if not m:
            raise ValueError("bad schedule step %r (want T:action[=arg])" % tok)
        steps.append((float(m.group(1)), m.group(2), m.group(3)))
    for _, action, _ in steps:
        if action not in ("kill", "restart", "pause", "resume", "part", "heal", "down", "torn", "disk", "free"):
            raise ValueError("unknown action %r" % action)
    return sorted(steps, key=lambda s: s[0])


def random_schedule(rnd, duration, members):
    """A random schedule: faults of every kind, each healed before the next starts."""
    t = 1.0 + rnd.random()
    steps = []
    kinds = ["kill", "pause", "part", "down", "torn", "disk"]
    while t < duration - 3:
        kind = rnd.choice(kinds)
        length = rnd.uniform(1.5, 5.0)
        if kind == "kill":
            what = rnd.choice(["leader", "follower"] + (["minority"] if members >= 5 else []))
            steps += ["%.1f:kill=%s" % (t, what), "%.1f:restart" % (t + length)]
        elif kind == "pause":
            what = rnd.choice(["leader", "follower"])
            steps += ["%.1f:pause=%s" % (t, what), "%.1f:resume" % (t + length)]
        elif kind == "part":
            what = rnd.choice(["leader", "halves", "bridge", "m%d" % rnd.randint(1, members)])
            steps += ["%.1f:part=%s" % (t, what), "%.1f:heal" % (t + length)]
        elif kind == "down":
            steps += ["%.1f:down=%s" % (t, rnd.choice(["leader", "follower"])), "%.1f:heal" % (t + length)]
        elif kind == "torn":
            steps += ["%.1f:torn=%s/%s" % (t, rnd.choice(["leader", "follower"]), rnd.choice(["mid", "partial"]))]
            length = 2.0
        elif kind == "disk":
            steps += ["%.1f:disk=%s" % (t, rnd.choice(["leader", "follower"])), "%.1f:free" % (t + length)]
        t += length + rnd.uniform(1.0, 3.0)
    return " ".join(steps)


class Figures:
    """What a run adds up to: printed at the end of a pytest session and of tests/faults/run."""

    def __init__(self):
        self.schedules = 0
        self.ops = 0
        self.ops_unknown = 0
        self.faults = {}
        self.violations = []
        self.seconds = 0.0

    def add(self, res):
        self.schedules += 1
        self.ops += res.ops_checked
        self.ops_unknown += res.ops_unknown
        for k, n in res.faults.items():
            self.faults[k] = self.faults.get(k, 0) + n
        self.violations += [dict(v, schedule=res.name) for v in res.violations]
        self.seconds += res.seconds

    def lines(self):
        out = ["fault figures: %d schedules, %d operations checked (%d with unknown outcome), %.0f s"
               % (self.schedules, self.ops, self.ops_unknown, self.seconds),
               "  faults injected: " + (", ".join("%s %d" % kv for kv in sorted(self.faults.items())) or "none"),
               "  violations: %d" % len(self.violations)]
        for v in self.violations:
            out.append("    [%s] %s: %s" % (v["schedule"], v["kind"], v["what"]))
        return out


FIGURES = Figures()


class RunResult:
    def __init__(self, name):
        self.name = name
        self.ops_checked = 0
        self.ops_unknown = 0
        self.faults = {}
        self.violations = []
        self.seconds = 0.0
        self.artifacts = None
        self.stats = {}

    def summary(self):
        return "%s: %d ops checked, faults %s, %d violations, %.1f s; %s" % (
            self.name, self.ops_checked, self.faults, len(self.violations), self.seconds,
            " ".join("%s=%s" % kv for kv in sorted(self.stats.items())))


class Run:
    """One schedule on a fresh ensemble. Use as a context manager (everything is removed at exit,
    pass or fail; a failing run's files are kept under artifacts_dir)."""

    def __init__(self, name, schedule, seed=1, members=3, clients=("cas", "cas", "append", "create"),
                 threads=2, duration=15.0, artifacts_dir=None, settings=None, log=print, small_disk=None):
        self.name = name
        self.schedule_text = schedule
        self.steps = parse_schedule(schedule)
        self.seed = seed
        self.rnd = random.Random("nemesis/%s" % seed)
        self.n = members
        self.client_kinds = list(clients)
        self.threads = threads
        self.duration = duration
        self.settings = dict(DEFAULT_SETTINGS, **(settings or {}))
        self.log = log or (lambda *a: None)
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self.small_disk = any(a == "disk" for _, a, _ in self.steps) if small_disk is None else small_disk
        self.res = RunResult(name)
        self.events = []     # (t, what) of the nemesis, t monotonic
        self.intervals = []  # (start, end) of every fault, for the ephemeral checker's grace
        self.open_faults = []
        self.killed = set()  # members killed by the nemesis (a crash otherwise is a finding)
        self.agents = []
        self.keys = ["/r/%d" % i for i in range(3)]
        self.net = None
        self.cl = None
        self.workdir = None

    # ---- setup and teardown ----

    def __enter__(self):
        self.t_start = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="%s-run-" % PREFIX))
        self.net = Net("%d%s" % (os.getpid() % 10000, "".join(random.choice("abcdefghij") for _ in range(3))))
        try:
            self.cl = Cluster(self.net, self.workdir, n=self.n, **self.settings)
            if self.small_disk:
                for m in self.cl.members:
                    self.cl.mount_small_disk(m, 24)
            self.client_hosts = [self.net.add_host("c%d" % (i + 1)) for i in range(len(self.client_kinds))]
            self.cl.start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, et, ev, tb):
        errors = []
        for p in self.agents:
            try:
                stop_process(p, signal.SIGKILL, 2.0)
            except Exception as e:
                errors.append("agent: %s" % e)
        if self.cl:
            try:
                self.cl.stop_all()
            except Exception as e:
                errors.append("members: %s" % e)
            self.cl.procs.stop_all()
            for m in self.cl.members:
                err = self.cl.unmount_small_disk(m)
                if err:
                    errors.append("umount %s: %s" % (m.log_dir, err))
        if self.net:
            try:
                self.net.destroy()
            except Exception as e:
                errors.append(str(e))
        keep = et is not None or self.res.violations
        if keep and self.artifacts_dir and self.workdir:
            dest = self.artifacts_dir / self.name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(self.workdir, dest, ignore=shutil.ignore_patterns("log.*", "snapshot.*", "fill"))
            self.res.artifacts = str(dest)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.res.seconds = time.monotonic() - self.t_start
        if errors and et is None:
            raise RuntimeError("cleanup: " + "; ".join(errors))
        return False

    # ---- the nemesis ----

    def note(self, what):
        self.events.append((time.monotonic(), what))
        self.log("  %6.2f  %s" % (time.monotonic() - self.t0, what))

    def count(self, kind):
        self.res.faults[kind] = self.res.faults.get(kind, 0) + 1

    def resolve(self, target):
        """A member (or members) named by a step: leader, follower, minority, mN."""
        ms = self.cl.members
        live = [m for m in ms if m.running() and not m.paused]
        if target == "leader":
            ld = self.cl.leader()
            return [ld] if ld else [self.rnd.choice(live or ms)]
        if target == "follower":
            ld = self.cl.leader()
            fs = [m for m in live if m is not ld]
            return [self.rnd.choice(fs or ms)]
        if target == "minority":
            k = (len(ms) - 1) // 2
            return self.rnd.sample(ms, k)
        return [self.cl.member(target)]

    def client_cuts(self, member_pairs):
        """Extend cuts between members to the clients that follow their home member."""
        pairs = list(member_pairs)
        cut = {}
        for a, b in member_pairs:
            cut.setdefault(a, set()).add(b)
            cut.setdefault(b, set()).add(a)
        for i, h in enumerate(self.client_hosts):
            if i % 2:
                continue
            home = self.cl.members[i % self.n].name
            for m in cut.get(home, ()):
                pairs.append((h.name, m))
        return pairs

    def partition(self, how):
        names = [m.name for m in self.cl.members]
        if how == "leader" or re.fullmatch(r"m\d+", how):
            iso = self.resolve(how)[0].name
            groups = [[iso], [n for n in names if n != iso]]
            pairs = [(iso, n) for n in names if n != iso]
            self.count("part-leader" if how == "leader" else "part-member")
        elif how == "halves":
            sh = names[:]
            self.rnd.shuffle(sh)
            k = len(sh) // 2
            groups = [sh[:k], sh[k:]]
            pairs = [(a, b) for a in groups[0] for b in groups[1]]
            self.count("part-halves")
        elif how == "bridge":
            sh = names[:]
            self.rnd.shuffle(sh)
            bridge, rest = sh[0], sh[1:]
            k = len(rest) // 2
            groups = [rest[:k], [bridge], rest[k:]]
            pairs = [(a, b) for a in rest[:k] for b in rest[k:]]
            self.count("part-bridge")
        else:
            raise ValueError("unknown partition %r" % how)
        self.net.cut(self.client_cuts(pairs))
        self.note("partition %s: %s" % (how, " | ".join(",".join(g) for g in groups)))

    def tear(self, m, how):
        m.kill()
        files = log_files(m.log_dir)
        if not files:
            self.note("torn %s: no log file" % m.name)
        else:
            f = files[-1]
            recs = log_records(f)
            if not recs:
                self.note("torn %s: %s has no records" % (m.name, f.name))
            elif how == "mid":
                off, size, zxid = recs[-1]
                cut = off + max(1, size // 2)
                os.truncate(f, cut)
                self.note("torn %s: %s cut at byte %d, in the middle of zxid %#x (%d bytes)"
                          % (m.name, f.name, cut, zxid, size))
            else:
                off, size, zxid = recs[-1]
                data = f.read_bytes()[off:off + size]
                end = off + size
                with open(f, "r+b") as fh:
                    fh.seek(end)
                    fh.write((size - 20).to_bytes(4, "little") + data[4:4 + size // 2])
                self.note("torn %s: half a record written at byte %d of %s after zxid %#x"
                          % (m.name, end, f.name, zxid))
        self.cl.start_member(m, wait=False)
        self.count("torn-tail")

    def step(self, action, arg):
        cl = self.cl
        if action == "kill":
            for m in self.resolve(arg):
                role = m.mode() or "?"
                m.kill()
                self.killed.add(m.name)
                self.note("kill -9 %s (%s)" % (m.name, role))
            self.count("kill-" + (arg if arg in ("leader", "follower", "minority") else "member"))
            self.open_faults.append(time.monotonic())
        elif action == "restart":
            for m in cl.members:
                if not m.running():
                    cl.start_member(m, wait=False)
                    self.note("restart %s" % m.name)
            self.close_faults()
        elif action == "pause":
            for m in self.resolve(arg):
                role = m.mode() or "?"
                m.pause()
                self.note("SIGSTOP %s (%s)" % (m.name, role))
            self.count("pause-" + (arg if arg in ("leader", "follower") else "member"))
            self.open_faults.append(time.monotonic())
        elif action == "resume":
            for m in cl.members:
                if m.paused:
                    m.resume()
                    self.note("SIGCONT %s" % m.name)
            self.close_faults()
        elif action == "part":
            self.partition(arg)
            self.open_faults.append(time.monotonic())
        elif action == "down":
            m = self.resolve(arg)[0]
            self.net.link_down(m.name)
            self.note("link down %s" % m.name)
            self.count("link-down")
            self.open_faults.append(time.monotonic())
        elif action == "heal":
            self.net.heal()
            self.note("heal the network")
            self.close_faults()
        elif action == "torn":
            target, _, how = (arg or "follower").partition("/")
            m = self.resolve(target)[0]
            t = time.monotonic()
            self.tear(m, how or "mid")
            try:
                cl.wait_ready(m, 20)
                z = cl.wait_caught_up(m, 20)
                self.note("%s back and caught up (zxid %#x)" % (m.name, z))
            except AssertionError as e:
                self.violation("unavailable", "after the torn-tail restart of %s: %s" % (m.name, str(e)[:500]))
            self.intervals.append((t, time.monotonic()))
        elif action == "disk":
            m = self.resolve(arg)[0]
            if not m.tmpfs:
                raise ValueError("disk=%s: %s has no small disk" % (arg, m.name))
            cl.fill_disk(m)
            self.note("disk full: %s (%s)" % (m.name, m.mode() or "?"))
            self.count("disk-full")
            self.open_faults.append(time.monotonic())
        elif action == "free":
            for m in cl.members:
                if m.tmpfs:
                    cl.free_disk(m)
            self.note("disk space freed")
            self.close_faults()

    def close_faults(self):
        now = time.monotonic()
        for t in self.open_faults:
            self.intervals.append((t, now))
        self.open_faults = []

    def heal_all(self):
        self.net.heal()
        for m in self.cl.members:
            m.resume()
            if m.tmpfs:
                self.cl.free_disk(m)
        for m in self.cl.members:
            if not m.running():
                if m.name not in self.killed:
                    self.violation("crash", "%s exited with status %s without being killed; its log ends:\n%s"
                                   % (m.name, m.proc.returncode, m.log_tail(20)))
                self.cl.start_member(m, wait=False)
        self.close_faults()
        self.note("healed: every member running, network whole, disks free")

    def violation(self, kind, what, **more):
        v = dict(kind=kind, what=what, **more)
        self.res.violations.append(v)
        self.log("  VIOLATION %s: %s" % (kind, what))

    # ---- the run ----

    def agent_spec(self, i, kind):
        spec = {"name": "c%d" % (i + 1), "hosts": self.cl.hosts, "members": [m.addr for m in self.cl.members],
                "coordctl": str(binary("coordctl")), "threads": self.threads,
                "seed": self.seed, "duration": self.duration, "session_timeout_ms": SESSION_MS, "op_timeout": 8.0,
                "out": str(self.workdir / ("history-c%d.jsonl" % (i + 1)))}
        if kind in ("cas", "read"):
            spec["workload"] = {"kind": kind, "keys": self.keys}
            if kind == "read":
                spec["threads"] = self.n
        elif kind == "append":
            spec["workload"] = {"kind": "append", "keys": ["/a/0"]}
        elif kind == "create":
            spec["workload"] = {"kind": "create", "parent": "/c"}
        elif kind == "eph":
            spec["workload"] = {"kind": "eph", "parent": "/e"}
        elif kind == "lock":
            spec["workload"] = {"kind": "lock", "lock": "/l/lock"}
        else:
            raise ValueError(kind)
        return spec

    def execute(self):
        cl = self.cl
        cl.ok("mkdir", "-p", "/r", "/a", "/c", "/e", "/l")
        for k in self.keys:
            cl.ok("create", k, "init")
        cl.ok("create", "/a/0", "")
        self.log("%s: schedule %r seed %s, %d members, clients %s"
                 % (self.name, self.schedule_text, self.seed, self.n, ",".join(self.client_kinds)))
        for i, kind in enumerate(self.client_kinds):
            spec = self.agent_spec(i, kind)
            sp = self.workdir / ("agent-c%d.json" % (i + 1))
            sp.write_text(json.dumps(spec))
            with open(self.workdir / ("agent-c%d.log" % (i + 1)), "wb") as lf:
                self.agents.append(self.client_hosts[i].popen([PY, HERE / "agent.py", sp], stdout=lf, stderr=lf))
        self.t0 = time.monotonic()
        for at, action, arg in self.steps:
            delay = self.t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                self.step(action, arg)
            except Exception as e:
                self.note("step %s=%s failed: %s" % (action, arg, e))
                raise
        left = self.t0 + self.duration - time.monotonic()
        if left > 0:
            time.sleep(left)
        self.heal_all()
        for p in self.agents:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                self.violation("agent", "a client agent did not finish within 60 s of the workload's end")
                p.kill()
                p.wait()
        try:
            self.cl.wait_leader(30)
            for m in self.cl.members:
                self.cl.wait_ready(m, 30)
            digests = self.cl.wait_converged(30)
            self.note("converged: %s" % next(iter(digests.values()), None).__repr__())
        except AssertionError as e:
            self.violation("unavailable" if "converge" not in str(e) else "divergence", str(e)[:1500])
        self.check()
        return self.res

    def final_state(self):
        ld = self.cl.leader() or self.cl.members[0]
        spec = {"member": ld.addr, "members": [ld.addr], "keys": self.keys + ["/a/0"], "parents": ["/c"], "session_timeout_ms": 10000}
        sp = self.workdir / "dump.json"
        sp.write_text(json.dumps(spec))
        p = subprocess.run(self.cl.ctl_host.argv([PY, HERE / "agent.py", "--dump", sp]), capture_output=True,
                           text=True, timeout=120)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise AssertionError("final read failed: %s %s" % (p.stdout, p.stderr))

    def check(self):
        ops = checker.load_history(sorted(self.workdir.glob("history-*.jsonl")))
        (self.workdir / "history.txt").write_text("\n".join(repr(o) for o in ops) + "\n")
        (self.workdir / "schedule.txt").write_text("%s\nseed %s, t0 %.3f (CLOCK_MONOTONIC)\n%s\n" % (
            self.schedule_text, self.seed, self.t0, "\n".join("%.3f %s" % (t - self.t0, w) for t, w in self.events)))
        try:
            final = self.final_state()
        except (AssertionError, subprocess.TimeoutExpired) as e:
            self.violation("unavailable", "final read: %s" % e)
            return
        # the final reads join the CAS history as reads (they follow a sync on the leader)
        for k in self.keys:
            v = final["keys"].get(k)
            if v is not None:
                ops.append(Op("final:" + k, "final", "read", k, None, v[2], v[3], "ok", [v[0], v[1]]))
        cas_ops = [o for o in ops if o.f in ("read", "write", "cas")]
        v, st = checker.check_cas(cas_ops)
        self.res.stats["cas"] = st
        for x in v:
            self.violation(x.pop("kind"), x.pop("what"), **x)
        n_checked = st["ops"]
        unknown = st["unknown"]
        app = [o for o in ops if o.f == "append"]
        if app:
            data = (final["keys"].get("/a/0") or [0, ""])[1]
            items = [x for x in data.split(",") if x]
            for x in checker.check_set(app, items, "append"):
                self.violation(x.pop("kind"), "append: " + x.pop("what"), **x)
            n_checked += len(app)
            unknown += sum(1 for o in app if o.r == "info")
        cr = [o for o in ops if o.f == "create"]
        if cr:
            kids = final["children"].get("/c", [])
            items = [d for _, d in sorted(kids)]
            for x in checker.check_set(cr, items, "create"):
                self.violation(x.pop("kind"), "create: " + x.pop("what"), **x)
            where = {d: "/c/" + n for n, d in kids}
            for o in cr:
                if o.r == "ok" and o.v and where.get(o.a) not in (None, o.v):
                    self.violation("create-path", "create of %r said %s but the data is in %s"
                                   % (o.a, o.v, where.get(o.a)), op=repr(o))
            n_checked += len(cr)
            unknown += sum(1 for o in cr if o.r == "info")
        holds = [o for o in ops if o.f == "hold"]
        if holds:
            self.check_holds(holds)
            n_checked += len(holds)
        locks = [o for o in ops if o.f == "lock"]
        if locks:
            self.check_locks(locks)
            n_checked += len(locks)
        self.res.ops_checked = n_checked
        self.res.ops_unknown = unknown

    def check_holds(self, holds):
        recs = []
        text = {}
        for o in ops_hold_records(self.workdir):
            text[o["i"]] = o
        for o in holds:
            r = text.get(o.id)
            if not r or o.r != "ok" or not r.get("how", "").startswith(("kill9", "term")):
                continue
            dead, gone = r["dead"], r["gone"]
            # the clock starts after the last fault that was under way while the session died
            start = dead
            for a, b in self.intervals:
                if a <= dead + SESSION_MS / 1000 + 1 and b >= dead:
                    start = max(start, b)
            recs.append({"path": o.k, "dead": start, "died": dead, "gone": gone, "end": r["end"],
                         "how": r["how"]})
        for x in checker.check_ephemerals(recs, SESSION_MS / 1000.0, grace=0.0):
            self.violation(x.pop("kind"), x.pop("what"), **x)


def _check_locks(self, locks):
    recs = {r["i"]: r for r in ops_hold_records(self.workdir, "end_reason")}
    holds = []
    for o in locks:
        r = recs.get(o.id)
        if o.r != "ok" or not r:
            continue
        holds.append({"holder": o.proc + "/" + o.a, "start": r["start"], "end": r["end"], "token": r.get("token"),
                      "end_reason": r["end_reason"]})
    # fencing is checked among the holds whose token could be read; overlap among all
    with_token = [h for h in holds if h["token"] is not None]
    v = [x for x in checker.check_locks(with_token, SESSION_MS / 1000.0) if x["kind"] == "fencing"]
    v += [x for x in checker.check_locks([dict(h, token=0) for h in holds], SESSION_MS / 1000.0)
          if x["kind"] == "mutex"]
    self.res.stats["locks"] = {"holds": len(holds), "with_token": len(with_token)}
    for x in v:
        self.violation(x.pop("kind"), "lock: " + x.pop("what"), **x)


Run.check_locks = _check_locks


def ops_hold_records(workdir, field="how"):
    for f in sorted(Path(workdir).glob("history-*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if field in rec:
                yield rec


def run_schedule(name, schedule, artifacts_dir=None, figures=FIGURES, **kw):
    """Run one schedule from start to end; returns its RunResult (added to figures)."""
    with Run(name, schedule, artifacts_dir=artifacts_dir, **kw) as run:
        try:
            res = run.execute()
        except Exception:
            run.res.violations.append({"kind": "harness", "what": traceback.format_exc()[-2000:]})
            res = run.res
    if figures is not None:
        figures.add(res)
    return res
