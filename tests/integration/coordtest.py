"""coordtest: helpers for integration suites that drive real coordd servers and the real coordctl.

Reusable by later suites (ensembles, mounts): nothing here is specific to one test file.

    cfg = write_config(path, dataDir=..., clientPort=port, maxDataBytes=4096)
    srv = Server(tmp_path / "s1", maxDataBytes=4096); srv.start()   # waits for `ruok` -> imok
    rc, out, err = coordctl(srv.hosts, "create", "/a", "hello")
    srv.stop()            # SIGTERM, SIGKILL after 5 s; returns the exit status
    srv.kill()            # SIGKILL at once (a crash)

Processes are only ever signalled by their own PID. A `Procs` registry (the `procs` fixture)
stops everything a test started, even when the test failed.
"""
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 15.0     # seconds a server may take to answer `ruok`
STOP_GRACE = 5.0         # seconds between SIGTERM and SIGKILL
COORDCTL_TIMEOUT = 30.0  # seconds one coordctl call may take before the test fails


def build_dir():
    return Path(os.environ.get("COORD_BUILD_DIR") or ROOT / "build")


def binary(name):
    """Path of a built binary (build/bin/NAME); raises when it was not built."""
    p = build_dir() / "bin" / name
    if not p.exists():
        raise FileNotFoundError("%s is not built (looked for %s; build with cmake, or set COORD_BUILD_DIR)"
                                % (name, p))
    return p


def has_binary(name):
    return (build_dir() / "bin" / name).exists()


def free_port():
    """A port that was free a moment ago. Callers retry if it is taken meanwhile.

    Drawn below the kernel's ephemeral range (ip_local_port_range), never from it: a client that
    keeps reconnecting to a port nobody listens on can be handed that very port as its own source
    port and connect to itself (TCP simultaneous open), which would hold the port a test wants to
    listen on again (a Proxy's unblock)."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, low - 1))
        # never the same port twice in one run: an ensemble asks for several before binding any
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


_handed_out = set()


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value (returned) or timeout seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# Config keys that choose authentication: a Server given none of them runs with auth=none.
AUTH_KEYS = ("auth", "clientSecretKeyFile", "authorizedKeysFile", "secretKeyFile", "memberKeysFile")


def write_config(path, lines=(), **settings):
    """Write a zoo.cfg-style file: one key=value per setting (in the order given), then raw lines."""
    path = Path(path)
    text = "".join("%s=%s\n" % (k, v) for k, v in settings.items())
    text += "".join(l + "\n" for l in lines)
    path.write_text(text)
    return path


# ---- coordctl ----

def coordctl_argv(hosts, *args, timeout_ms=None):
    argv = [str(binary("coordctl")), "-s", hosts]
    if timeout_ms is not None:
        argv += ["-t", str(timeout_ms)]
    return argv + [str(a) for a in args]


def coordctl(hosts, *args, input=None, timeout=COORDCTL_TIMEOUT, timeout_ms=None, env=None):
    """Run coordctl -s HOSTS ARGS...; returns (rc, stdout, stderr) as text (bytes if input is bytes)."""
    argv = coordctl_argv(hosts, *args, timeout_ms=timeout_ms)
    text = not isinstance(input, (bytes, bytearray))
    try:
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, text=text,
                           env=env, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("coordctl did not finish within %.0f s: %s" % (timeout, shlex.join(argv))) from e
    return p.returncode, p.stdout, p.stderr


def ok(hosts, *args, **kw):
    """Run coordctl and require exit 0; returns stdout."""
    rc, out, err = coordctl(hosts, *args, **kw)
    if rc != 0:
        raise AssertionError("coordctl %s: exit %d\nstdout: %s\nstderr: %s"
                             % (shlex.join(str(a) for a in args), rc, out, err))
    return out


# ---- processes ----

class Procs:
    """Every process a test started; stop_all() signals each by its PID (TERM, then KILL)."""

    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        return self.add(subprocess.Popen([str(a) for a in argv], **kw))

    def stop_all(self):
        for p in reversed(self.procs):
            stop_process(p)
        self.procs.clear()


def stop_process(p, sig=signal.SIGTERM, grace=STOP_GRACE):
    """Send sig to p (by PID), SIGKILL after grace seconds; returns the exit status."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f:
            try:
                f.close()
            except OSError:
                pass
    return p.returncode


# ---- servers ----

def children_of(pid):
    """PIDs of the live processes whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.append(int(d))
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ServerError(AssertionError):
    pass


class Server:
    """One coordd with its own directory: DIR/coord.cfg, DIR/data, DIR/coordd.log.

    settings are config keys (dataDir and clientPort are filled in unless given); extra_lines are
    raw config lines (server.N=... for ensembles). The port is picked free at the first start and
    kept across restarts, so clients can reconnect.
    """

    def __init__(self, dir, procs=None, extra_lines=(), myid=None, port=None, **settings):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(settings.pop("dataDir", self.dir / "data"))
        self.settings = settings
        self.extra_lines = list(extra_lines)
        self.myid = myid
        self.port = port
        self.fixed_port = port is not None
        self.procs = procs
        self.proc = None
        self.cfg = self.dir / "coord.cfg"
        self.log = self.dir / "coordd.log"
        self.starts = 0

    @property
    def hosts(self):
        return "%s:%d" % (LOOPBACK, self.port)

    def write_config(self):
        s = {"dataDir": self.data_dir, "clientPort": self.port, "clientPortAddress": LOOPBACK}
        s.update(self.settings)
        if not any(k in s for k in AUTH_KEYS):
            s["auth"] = "none"  # plaintext must be said out loud; tests that want keys give them
        if self.myid is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / "myid").write_text("%d\n" % self.myid)
        return write_config(self.cfg, self.extra_lines, **s)

    def launch(self):
        """Start coordd without waiting (the log file collects stdout and stderr, appended)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.port is None:
            self.port = free_port()
        self.write_config()
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(b"==== start %d (port %d)\n" % (self.starts, self.port))
            log.flush()
            self.proc = subprocess.Popen([str(binary("coordd")), "--config", str(self.cfg)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if self.procs is not None:
            self.procs.add(self.proc)
        return self.proc

    def start(self, timeout=READY_TIMEOUT, tries=5):
        """Start and wait until ready; retries on another port if the picked one was taken."""
        for attempt in range(tries):
            self.launch()
            try:
                self.wait_ready(timeout)
                return self
            except ServerError:
                if (not self.fixed_port and self.proc.poll() is not None
                        and "cannot listen" in self.log_since_start()):
                    self.port = None  # lost a race for the port: pick another
                    continue
                raise
        raise ServerError("coordd could not get a free port in %d tries" % tries)

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll `coordctl ruok` until it says imok; fail early if coordd exits."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError("coordd exited with status %s before it was ready; its log:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            if self.ruok():
                return
            if time.monotonic() >= deadline:
                raise ServerError("coordd not ready after %.0f s; its log:\n%s" % (timeout, self.log_tail()))
            time.sleep(0.02)

    def ruok(self):
        if has_binary("coordctl"):
            rc, out, _ = coordctl(self.hosts, "ruok", timeout=10, timeout_ms=1000)
            return rc == 0 and "imok" in out
        # Only while coordctl is not built yet: ask on the wire.
        from coordwire import Wire, ADMIN, body_admin
        with Wire(self.port) as w:
            w.send(ADMIN, body_admin("ruok"))
            m = w.recv(0.5)
            return m is not None and m.err == 0 and m.data == b"imok"

    def children(self):
        """coordd's child processes (a snapshot writer while one runs)."""
        return children_of(self.proc.pid) if self.running() else []

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=STOP_GRACE):
        """SIGTERM (SIGKILL after grace s); returns the exit status."""
        return stop_process(self.proc, signal.SIGTERM, grace) if self.proc else None

    def kill(self):
        """kill -9: a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def restart(self, timeout=READY_TIMEOUT):
        self.stop()
        self.launch()
        self.wait_ready(timeout)
        return self

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self):
        """The log of the latest start only."""
        t = self.log_text()
        i = t.rfind("==== start ")
        return t[i:] if i >= 0 else t

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


class Ensemble:
    """N coordd members on loopback with server.N lines and myid files (for replication suites)."""

    def __init__(self, dir, n, procs=None, observers=(), **settings):
        self.dir = Path(dir)
        ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
        lines = []
        for i, (cp, pp, ep) in enumerate(ports, 1):
            role = ":observer" if i in observers else ""
            lines.append("server.%d=%s:%d:%d%s;%s:%d" % (i, LOOPBACK, pp, ep, role, LOOPBACK, cp))
        self.members = [Server(self.dir / ("s%d" % i), procs=procs, extra_lines=lines, myid=i,
                               port=cp, **settings)
                        for i, (cp, _pp, _ep) in enumerate(ports, 1)]

    @property
    def hosts(self):
        return ",".join(m.hosts for m in self.members)

    def start(self, timeout=READY_TIMEOUT):
        for m in self.members:
            m.launch()
        for m in self.members:
            m.wait_ready(timeout)
        return self

    def stop(self):
        return [m.stop() for m in self.members]


# ---- transaction log files ----

LOG_NAME = re.compile(r"^log\.[0-9a-f]{16}$")


def log_files(dir):
    """The transaction log files of a dataLogDir, oldest first."""
    return sorted(p for p in Path(dir).iterdir() if LOG_NAME.match(p.name))


def log_records(path):
    """(offset, size, zxid) of each framed record (u32 len | u64 xxh64 | u64 zxid | payload[len])
    up to the zero length that ends the preallocated file. Checksums are not verified."""
    data = Path(path).read_bytes()
    off, out = 0, []
    while off + 20 <= len(data):
        n = int.from_bytes(data[off:off + 4], "little")
        if n == 0:
            break
        size = 4 + 8 + 8 + n
        if off + size > len(data):
            break
        zxid = int.from_bytes(data[off + 12:off + 20], "little")
        out.append((off, size, zxid))
        off += size
    return out


# ---- coordctl output ----

def parse_stat(text):
    """`coordctl stat` output (zkCli's "key = value" lines) -> dict; hex and decimal numbers as int."""
    st = {}
    for line in text.splitlines():
        k, sep, v = line.partition(" = ")
        if not sep:
            continue
        v = v.strip()
        if re.fullmatch(r"0x[0-9a-fA-F]+", v):
            st[k] = int(v, 16)
        elif re.fullmatch(r"-?[0-9]+", v):
            st[k] = int(v)
        else:
            st[k] = v
    return st


def stat(hosts, path):
    return parse_stat(ok(hosts, "stat", path))


def ls(hosts, path):
    return ok(hosts, "ls", path).splitlines()


def get(hosts, path):
    return ok(hosts, "get", path)


def exists(hosts, path):
    rc, _, err = coordctl(hosts, "exists", path)
    assert rc in (0, 1), "exists %s: exit %d: %s" % (path, rc, err)
    return rc == 0


# ---- background coordctl ----

def read_line(f, timeout, what="a line"):
    """Read one line from a pipe within timeout seconds (raises AssertionError otherwise)."""
    import select
    fd = f.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError("timed out after %.1f s waiting for %s (got %r)" % (timeout, what, buf))
        c = os.read(fd, 1)
        if not c:
            raise AssertionError("end of file while waiting for %s (got %r)" % (what, buf))
        buf += c
    return buf.decode(errors="replace")


class Watcher:
    """`coordctl watch [-r] [-n COUNT] PATH` in the background, armed when started."""

    def __init__(self, procs, hosts, path, recursive=False, count=None, timeout=10.0, log_level=None,
                 timeout_ms=None):
        args = ["watch"] + (["-r"] if recursive else []) + (["-n", str(count)] if count else []) + [path]
        env = dict(os.environ, COORD_LOG_LEVEL=log_level) if log_level else None
        self.proc = procs.spawn(coordctl_argv(hosts, *args, timeout_ms=timeout_ms), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        self.wait_stderr(lambda l: l.strip() == "watching %s" % path, timeout,
                         "coordctl watch to say it is watching")

    def wait_stderr(self, pred, timeout=10.0, what="a line on coordctl's stderr"):
        """Read stderr lines until pred(line) holds; returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            line = read_line(self.proc.stderr, max(deadline - time.monotonic(), 0.01), what)
            if pred(line):
                return line

    def next_event(self, timeout=10.0):
        """Read one event line as it comes: (EVENT, PATH, ZXID)."""
        return parse_events(read_line(self.proc.stdout, timeout, "a watch event"))[0]

    def events_until(self, pred, timeout=10.0):
        """Read events until pred(event) is true for one; returns all read, that one last."""
        deadline = time.monotonic() + timeout
        evs = []
        while not evs or not pred(evs[-1]):
            evs.append(self.next_event(max(deadline - time.monotonic(), 0.01)))
        return evs

    def events(self, timeout=10.0):
        """Wait for the watcher to exit 0 (its -n COUNT reached); its events as (EVENT, PATH, ZXID)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("watch did not finish in %.0f s; its output so far:\n%s\n%s"
                                 % (timeout, out.decode(), err.decode()))
        assert self.proc.returncode == 0, (self.proc.returncode, err.decode())
        return parse_events(out.decode())


def parse_events(text):
    evs = []
    for line in text.splitlines():
        ev, path, zxid = line.split(" ")
        evs.append((ev, path, int(zxid, 16)))
    return evs


# ---- a TCP proxy that can cut clients off ----

class Proxy:
    """Forwards 127.0.0.1:port to target_port byte for byte (ZeroMQ runs over it unchanged).

    block() closes every forwarded connection and the listening socket, so clients get
    "connection refused" until unblock() listens again on the same port. Lets a test keep one
    client away from a server deterministically (fault suites can add delays here later).
    """

    def __init__(self, target_port, port=None):
        import threading
        self.target = target_port
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.lsock = None
        self.unblock()

    @property
    def hosts(self):
        return "%s:%d" % (LOOPBACK, self.port)

    def unblock(self):
        import threading
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOOPBACK, self.port))
        s.listen(16)
        self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, lsock):
        import threading
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection((LOOPBACK, self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.lsock is not lsock:  # blocked meanwhile
                    c.close()
                    u.close()
                    return
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def block(self):
        with self.lock:
            lsock, self.lsock = self.lsock, None
            conns, self.conns = self.conns, []
        if lsock:
            # shutdown wakes the thread blocked in accept(); close alone would leave the socket
            # listening until accept returns, and unblock() could not bind the port again
            try:
                lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lsock.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.block()


# ---- ensembles: roles, convergence (for test_ensemble*.py) ----

def admin(hosts, word, timeout_ms=1000):
    """`coordctl WORD` (ruok/srvr/mntr/cons) against hosts; the text, or None when nobody answered."""
    rc, out, _ = coordctl(hosts, word, timeout=10, timeout_ms=timeout_ms)
    return out if rc == 0 else None


def mntr(hosts):
    """`coordctl mntr` as a dict (tab-separated lines), or {} when the member did not answer."""
    out = admin(hosts, "mntr") or ""
    return dict(l.split("\t", 1) for l in out.splitlines() if "\t" in l)


def mode(hosts):
    """Mode from `coordctl srvr` (leader/follower/observer/standalone), or None when it did not answer."""
    m = re.search(r"^Mode: (\S+)$", admin(hosts, "srvr") or "", re.M)
    return m.group(1) if m else None


def running_members(ens):
    return [m for m in ens.members if m.running()]


def stable_leader(ens):
    """The leader when every running member agrees on it (exactly one says Mode leader, every other
    running member names it as leader in the same term), else None."""
    views = [(m, mntr(m.hosts)) for m in running_members(ens)]
    if not views or any(not v for _, v in views):
        return None
    leaders = [m for m, v in views if v["zk_server_state"] == "leader"]
    if len(leaders) != 1:
        return None
    lid, term = str(leaders[0].myid), views[0][1].get("coordfs_term")
    if any(v.get("coordfs_leader") != lid or v.get("coordfs_term") != term for _, v in views):
        return None
    return leaders[0]


def wait_leader(ens, timeout=15.0):
    """Poll until the running members agree on one leader; returns its Server."""
    return wait_until(lambda: stable_leader(ens), timeout, interval=0.02, what="one agreed leader")


def converged(members):
    """(zxid, digest) when every given member answers mntr with the same last zxid and tree digest."""
    vs = [mntr(m.hosts) for m in members]
    if any(not v for v in vs):
        return None
    seen = {(v["coordfs_last_zxid"], v["coordfs_tree_digest"]) for v in vs}
    return seen.pop() if len(seen) == 1 else None


def wait_converged(members, timeout=30.0):
    """Poll until the members have applied the same zxid with the same tree digest; returns (zxid, digest)."""
    return wait_until(lambda: converged(members), timeout, interval=0.05,
                      what="members %s to reach the same zxid and digest" % [m.myid for m in members])


def synced_reads(port, *paths, timeout_ms=4000):
    """One session on the member at `port`: SYNC, then GET each path, as a client reading there after
    sync does. Returns {path: data bytes, or None when the node does not exist}."""
    from coordwire import Wire, SYNC, GET, OK, ENONODE, body_get, enc_bytes
    with Wire(port) as w:
        w.connect(timeout_ms=timeout_ms)
        m = w.call(SYNC, enc_bytes(paths[0] if paths else "/"))
        assert m.err == OK, "sync on port %d: %r" % (port, m)
        out = {}
        for p in paths:
            m = w.call(GET, body_get(p))
            assert m.err in (OK, ENONODE), "get %s on port %d: %r" % (p, port, m)
            out[p] = m.data if m.err == OK else None
        w.call(CLOSE_OP)
        return out


def synced_children(port, path, timeout_ms=4000):
    """One session on the member at `port`: SYNC, then every child name of path (LIST page by page)."""
    from coordwire import Wire, SYNC, LIST, OK, body_list, enc_bytes
    names = []
    with Wire(port) as w:
        w.connect(timeout_ms=timeout_ms)
        m = w.call(SYNC, enc_bytes(path))
        assert m.err == OK, "sync on port %d: %r" % (port, m)
        after = b""
        while True:
            m = w.call(LIST, body_list(path, after=after, max_names=10000))
            assert m.err == OK, "list %s on port %d: %r" % (path, port, m)
            names += m.names
            if not m.more or not m.names:
                break
            after = m.names[-1].encode()
        w.call(CLOSE_OP)
    return names


CLOSE_OP = 3  # coordwire.CLOSE: ends a helper's session at once


def ensemble_fixture(**defaults):
    """A pytest fixture `make_ensemble(n, observers=(), name="e", **settings)` for a test module
    (`make_ensemble = ensemble_fixture(tickTime=200)`): started ensembles whose members agree on a
    leader; at teardown everything is stopped and, when the test passed, the dataDirs are removed
    (logs are preallocated in 64 MiB chunks); coordd.log files are kept."""
    import shutil
    import pytest

    @pytest.fixture
    def make_ensemble(tmp_path, procs, request):
        made = []

        def make(n, observers=(), name="e", **settings):
            e = Ensemble(tmp_path / name, n, procs=procs, observers=observers, **dict(defaults, **settings))
            made.append(e)
            e.start()
            wait_leader(e)
            return e
        yield make
        procs.stop_all()
        failed = any(getattr(request.node, "rep_" + w, None) is not None and getattr(request.node, "rep_" + w).failed
                     for w in ("setup", "call"))
        if not failed:
            for e in made:
                for m in e.members:
                    shutil.rmtree(m.data_dir, ignore_errors=True)
    return make_ensemble
