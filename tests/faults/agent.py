#!/usr/bin/python3
"""agent: one client test host's workload, run inside that host's network namespace.

    nsenter --net=/run/netns/NS /usr/bin/python3 agent.py SPEC.json

SPEC (JSON): name, hosts ("ip:port,..."), members (["ip:port", ...]), coordctl (path), threads,
seed, duration (seconds of issuing operations), session_timeout_ms, op_timeout (seconds after
which a coordctl is killed and its operation counted indeterminate), out (history file), and
workload: {"kind": "cas", "keys": [...]} | {"kind": "append", "keys": [...]} |
{"kind": "create", "parent": "/c"}.

The history file gets two JSON lines per operation, written and flushed as they happen:
  {"i": ID, "p": PROC, "f": FUNC, "k": KEY, "a": ARG, "t0": T}            when invoked
  {"i": ID, "r": "ok"|"fail"|"info", "v": VALUE, "t1": T, "rc": RC, ...}  when it completed
T is CLOCK_MONOTONIC (the same clock in every namespace). An operation whose completion line is
missing (the agent died) is indeterminate. Reads are sync + get on one member through the wire
client (tests/integration/coordwire.py) and linearizable if sync is; every write goes through
coordctl, the real client library with its failover and exactly-once resends.

Every loop is bounded by the duration; the agent stops by itself.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import coordwire as cw  # noqa: E402

STOP = threading.Event()


class History:
    def __init__(self, path, name):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()
        self.n = 0
        self.name = name

    def invoke(self, proc, f, k, a):
        with self.lock:
            self.n += 1
            i = "%s:%d" % (self.name, self.n)
            self.f.write(json.dumps({"i": i, "p": proc, "f": f, "k": k, "a": a, "t0": time.monotonic()}) + "\n")
        return i

    def complete(self, i, r, v=None, **extra):
        rec = {"i": i, "r": r, "v": v, "t1": time.monotonic()}
        rec.update(extra)
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")


class Reader:
    """Linearizable reads: a wire session on one member, SYNC then GET; moves on failure."""

    def __init__(self, spec, rnd):
        self.members = spec["members"]
        self.rnd = rnd
        self.timeout = spec.get("read_timeout", 2.0)
        self.session_ms = spec.get("session_timeout_ms", 2000) * 2
        self.w = None
        self.last = 0.0

    def _open(self):
        host, port = self.rnd.choice(self.members).rsplit(":", 1)
        w = cw.Wire(int(port), host=host)
        try:
            m = w.call(cw.CONNECT, cw.body_connect(timeout_ms=self.session_ms), timeout=self.timeout)
            if m.err:
                raise cw.WireError("connect: %r" % m)
            w.session_id = m.session_id
        except Exception:
            w.close()
            raise
        self.w = w
        self.addr = "%s:%s" % (host, port)
        self.last = time.monotonic()

    def drop(self):
        if self.w:
            try:
                self.w.send(cw.CLOSE)
            except Exception:
                pass
            self.w.close()
            self.w = None

    def session(self):
        """Open a session (outside any operation's interval); False when none could be had."""
        if self.w is None:
            try:
                self._open()
            except Exception:
                return False
        return True

    def read(self, path):
        """(version, data) read after a sync, or raise (the read then did not happen as far as the
        checker is concerned)."""
        w = self.w
        m = w.call(cw.SYNC, cw.enc_bytes(path), timeout=self.timeout)
        if m.err:
            raise cw.WireError("sync: %r" % m)
        m = w.call(cw.GET, cw.body_get(path), timeout=self.timeout)
        if m.err:
            raise cw.WireError("get: %r" % m)
        return m.stat["version"], m.data.decode()


def _exists(self, path):
    w = self.w
    m = w.call(cw.SYNC, cw.enc_bytes(path), timeout=self.timeout)
    if m.err:
        raise cw.WireError("sync: %r" % m)
    m = w.call(cw.EXISTS, cw.body_get(path), timeout=self.timeout)
    if m.err not in (cw.OK, cw.ENONODE):
        raise cw.WireError("exists: %r" % m)
    return m.err == cw.OK


Reader.exists = _exists


def dump(spec):
    """Final state, read after sync on one member: {"keys": {path: [version, data]}, "children":
    {parent: [[name, data], ...]}} as JSON on stdout."""
    r = Reader(spec, random.Random(0))
    r.members = [spec["member"]]
    r.timeout = 10.0
    if not r.session():
        print(json.dumps({"error": "no session"}))
        return
    out = {"keys": {}, "children": {}}
    w = r.w
    for k in spec.get("keys", []):
        t0 = time.monotonic()
        m = w.call(cw.SYNC, cw.enc_bytes(k), timeout=10)
        m = w.call(cw.GET, cw.body_get(k), timeout=10)
        out["keys"][k] = [m.stat["version"], m.data.decode(errors="replace"), t0, time.monotonic()] if m.err == 0 \
            else None
    for parent in spec.get("parents", []):
        w.call(cw.SYNC, cw.enc_bytes(parent), timeout=10)
        names, after = [], b""
        while True:
            m = w.call(cw.LIST, cw.body_list(parent, after=after), timeout=10)
            if m.err:
                break
            names += m.names
            if not m.more:
                break
            after = m.names[-1].encode()
        kids = []
        for n in names:
            m = w.call(cw.GET, cw.body_get(parent + "/" + n), timeout=10)
            kids.append([n, m.data.decode(errors="replace") if m.err == 0 else None])
        out["children"][parent] = kids
    r.drop()
    print(json.dumps(out))


class Client:
    def __init__(self, spec, hist, proc, rnd):
        self.spec = spec
        self.hist = hist
        self.proc = proc
        self.rnd = rnd
        self.ctl = [spec["coordctl"], "-s", spec["hosts"], "-t", str(spec.get("session_timeout_ms", 2000))]
        self.op_timeout = spec.get("op_timeout", 8.0)
        self.seq = 0

    def value(self):
        self.seq += 1
        return "%s.%d" % (self.proc, self.seq)

    def coordctl(self, f, k, a, args, input=None):
        """Run one coordctl write as an operation: ok (exit 0), fail (a definite refusal), or info."""
        i = self.hist.invoke(self.proc, f, k, a)
        try:
            p = subprocess.run(self.ctl + args, capture_output=True, text=True, timeout=self.op_timeout,
                               input=input, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.hist.complete(i, "info", rc=-1, err="killed after %.0f s" % self.op_timeout)
            return None
        err = p.stderr.strip()[-300:]
        if p.returncode == 0:
            self.hist.complete(i, "ok", p.stdout.strip() or None, rc=0)
        elif p.returncode in (1, 3, 4, 5, 6):
            self.hist.complete(i, "fail", rc=p.returncode, err=err)
        elif p.returncode == 8:
            # a server-side error (disk full, not ready): the contract says not applied; the
            # checkers test that, and say so separately if it is the only way a history fits
            self.hist.complete(i, "fail", rc=8, err=err)
        else:
            self.hist.complete(i, "info", rc=p.returncode, err=err)
        return p.returncode

    def run(self, deadline):
        kind = self.spec["workload"]["kind"]
        getattr(self, "loop_" + kind)(deadline)

    def loop_cas(self, deadline):
        keys = self.spec["workload"]["keys"]
        reader = Reader(self.spec, self.rnd)
        try:
            while time.monotonic() < deadline and not STOP.is_set():
                k = self.rnd.choice(keys)
                ver = None
                if reader.session():
                    i = self.hist.invoke(self.proc, "read", k, None)
                    try:
                        ver, val = reader.read(k)
                        self.hist.complete(i, "ok", [ver, val], at=reader.addr)
                    except Exception as e:
                        # a read that failed changed nothing: it is left out of the history
                        self.hist.complete(i, "info", err=str(e)[:200], drop=True)
                        reader.drop()
                else:
                    time.sleep(0.05)
                r = self.rnd.random()
                if ver is None or r < 0.1:
                    v = self.value()
                    if r < 0.05 or ver is None:
                        self.coordctl("write", k, v, ["set", k, v])
                    else:  # a CAS on a guessed version: usually refused
                        g = max(0, (ver or 0) + self.rnd.choice((-1, 1, 2)))
                        self.coordctl("cas", k, [g, v], ["set", "-v", str(g), k, v])
                else:
                    v = self.value()
                    self.coordctl("cas", k, [ver, v], ["set", "-v", str(ver), k, v])
        finally:
            reader.drop()

    def loop_read(self, deadline):
        """Readers only, each thread pinned to one member (thread t on member t mod n), so every
        member, an isolated old leader included, always has sync + get readers."""
        keys = self.spec["workload"]["keys"]
        reader = Reader(self.spec, self.rnd)
        reader.members = [self.spec["members"][self.tindex % len(self.spec["members"])]]
        try:
            while time.monotonic() < deadline and not STOP.is_set():
                if not reader.session():
                    time.sleep(0.1)
                    continue
                k = self.rnd.choice(keys)
                i = self.hist.invoke(self.proc, "read", k, None)
                try:
                    ver, val = reader.read(k)
                    self.hist.complete(i, "ok", [ver, val], at=reader.addr)
                except Exception as e:
                    self.hist.complete(i, "info", err=str(e)[:200], drop=True)
                    reader.drop()
                time.sleep(0.005)
        finally:
            reader.drop()

    def loop_append(self, deadline):
        keys = self.spec["workload"]["keys"]
        while time.monotonic() < deadline and not STOP.is_set():
            k = self.rnd.choice(keys)
            v = self.value()
            self.coordctl("append", k, v, ["append", k, v + ","])

    def loop_eph(self, deadline):
        """Hold an ephemeral node (`create -e --hold`), then end its session: kill -9 (it must go
        within the session timeout + 1 s) or SIGTERM (a clean close: it goes at once). The time it
        is first seen gone comes from sync + exists on the wire."""
        parent = self.spec["workload"]["parent"]
        reader = Reader(self.spec, self.rnd)
        limit = self.spec.get("session_timeout_ms", 2000) / 1000.0 + 8.0
        try:
            while time.monotonic() < deadline and not STOP.is_set():
                path = "%s/%s" % (parent, self.value())
                i = self.hist.invoke(self.proc, "hold", path, None)
                h = subprocess.Popen(self.ctl + ["create", "-e", "--hold", path, "x"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                line = b""
                import select
                if select.select([h.stdout], [], [], self.op_timeout)[0]:
                    line = h.stdout.readline()
                if not line.strip():
                    h.kill()
                    h.wait()
                    self.hist.complete(i, "info", how="not-acknowledged")
                    continue
                acked = time.monotonic()
                time.sleep(self.rnd.uniform(0.3, 2.0))
                how = "kill9" if self.rnd.random() < 0.7 else "term"
                if h.poll() is not None:
                    how = "exited-%d" % h.returncode  # its session ended by itself (expired)
                    dead = time.monotonic()
                else:
                    dead = time.monotonic()
                    h.send_signal(9 if how == "kill9" else 15)
                h.wait()
                h.stdout.close()
                h.stderr.close()
                gone = None
                until = dead + limit
                while time.monotonic() < until and not STOP.is_set():
                    if reader.session():
                        t = time.monotonic()
                        try:
                            if not reader.exists(path):
                                gone = t  # the check started before it answered "gone"
                                break
                        except Exception:
                            reader.drop()
                    time.sleep(0.1)
                self.hist.complete(i, "ok", acked=acked, dead=dead, gone=gone, how=how, end=time.monotonic())
        finally:
            reader.drop()

    def loop_lock(self, deadline):
        """Lock holders: `create -e --hold LOCK TOKEN`; exactly one creator wins (the others get
        exit 3 and retry). A holder believes it holds the lock from the acknowledgement until it
        decides to release (SIGTERM: a clean close) or coordctl tells it the session is gone (exit
        7). Its fencing token is the lock node's czxid, read (sync + get) on the wire and kept only
        if the node still holds this holder's token."""
        lock = self.spec["workload"]["lock"]
        reader = Reader(self.spec, self.rnd)
        import select
        try:
            while time.monotonic() < deadline and not STOP.is_set():
                token = self.value()
                i = self.hist.invoke(self.proc, "lock", lock, token)
                h = subprocess.Popen(self.ctl + ["create", "-e", "--hold", lock, token], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                line = b""
                if select.select([h.stdout], [], [], self.op_timeout)[0]:
                    line = h.stdout.readline()
                if not line.strip():
                    if h.poll() is None:
                        h.kill()
                    rc = h.wait()
                    h.stdout.close()
                    h.stderr.close()
                    self.hist.complete(i, "fail" if rc == 3 else "info", rc=rc)
                    time.sleep(self.rnd.uniform(0.02, 0.1))
                    continue
                start = time.monotonic()
                czxid = None
                if reader.session():
                    try:
                        w = reader.w
                        m = w.call(cw.SYNC, cw.enc_bytes(lock), timeout=reader.timeout)
                        m = w.call(cw.GET, cw.body_get(lock), timeout=reader.timeout)
                        if m.err == 0 and m.data.decode() == token:
                            czxid = m.stat["czxid"]
                    except Exception:
                        reader.drop()
                hold_until = start + self.rnd.uniform(0.2, 1.5)
                end_reason = "released"
                while True:
                    left = hold_until - time.monotonic()
                    if left <= 0:
                        break
                    if h.poll() is not None:
                        break
                    time.sleep(min(left, 0.02))
                if h.poll() is not None:
                    end = time.monotonic()
                    end_reason = "expired" if h.returncode == 7 else "exited-%d" % h.returncode
                else:
                    end = time.monotonic()  # it stops believing before it lets go
                    h.send_signal(15)
                    try:
                        h.wait(self.op_timeout)
                    except subprocess.TimeoutExpired:
                        h.kill()
                        h.wait()
                h.stdout.close()
                h.stderr.close()
                self.hist.complete(i, "ok", start=start, end=end, token=czxid, end_reason=end_reason)
        finally:
            reader.drop()

    def loop_create(self, deadline):
        parent = self.spec["workload"]["parent"]
        while time.monotonic() < deadline and not STOP.is_set():
            v = self.value()
            # a sequential create: a request applied twice would leave two nodes with this data
            self.coordctl("create", parent, v, ["create", "-s", parent + "/i-", v])


def main():
    if sys.argv[1] == "--dump":
        dump(json.loads(Path(sys.argv[2]).read_text()))
        return
    spec = json.loads(Path(sys.argv[1]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    hist = History(spec["out"], spec["name"])
    deadline = time.monotonic() + spec["duration"]
    threads = []
    for t in range(spec.get("threads", 1)):
        rnd = random.Random("%s/%s/%d" % (spec.get("seed", 0), spec["name"], t))
        c = Client(spec, hist, "%s.%d" % (spec["name"], t), rnd)
        c.tindex = t
        th = threading.Thread(target=c.run, args=(deadline,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(spec["duration"] + spec.get("op_timeout", 8.0) + 30)
    hist.f.close()
    os._exit(0)


if __name__ == "__main__":
    main()
