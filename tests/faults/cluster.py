"""cluster: a coordd ensemble whose members each run in their own network namespace.

    net = Net(run_id); cl = Cluster(net, workdir, n=3, procs=procs, tickTime=200)
    cl.start()                    # every member up and answering ruok
    cl.leader()                   # the member that says Mode: leader (None when none or two)
    cl.kill(m) / cl.start_member(m) / cl.pause(m) / cl.resume(m)
    cl.ctl("get", "/x")           # coordctl from the control host (never partitioned)

Members are stopped by PID (SIGTERM, SIGKILL after a grace period) through the Procs registry of
tests/integration/coordtest.py, which this module reuses for binaries, configs and logs.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import coordtest  # noqa: E402
from coordtest import Procs, binary, log_files, log_records, stop_process, write_config  # noqa: E402,F401

CLIENT_PORT, PEER_PORT, ELECTION_PORT = 2181, 2888, 3888


class Member:
    def __init__(self, cluster, mid, host, dir):
        self.cluster = cluster
        self.id = mid
        self.host = host
        self.dir = Path(dir)
        self.data_dir = self.dir / "data"
        self.log_dir = self.dir / "log"
        self.cfg = self.dir / "coord.cfg"
        self.logfile = self.dir / "coordd.log"
        self.proc = None
        self.paused = False
        self.starts = 0
        self.tmpfs = None  # size while dataLogDir is a small tmpfs (full-disk nemesis)

    @property
    def name(self):
        return self.host.name

    @property
    def addr(self):
        return "%s:%d" % (self.host.ip, CLIENT_PORT)

    def write_config(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "myid").write_text("%d\n" % self.id)
        s = {"dataDir": self.data_dir, "dataLogDir": self.log_dir, "clientPort": CLIENT_PORT,
             "clientPortAddress": self.host.ip, "auth": "none"}  # the fault tests run plaintext
        s.update(self.cluster.settings)
        write_config(self.cfg, self.cluster.server_lines, **s)

    def launch(self):
        assert not self.running(), "%s already running" % self.name
        self.write_config()
        self.starts += 1
        with open(self.logfile, "ab") as log:
            log.write(b"==== start %d\n" % self.starts)
            log.flush()
            self.proc = self.host.popen([binary("coordd"), "--config", self.cfg], stdout=log, stderr=log)
        self.paused = False
        self.cluster.procs.add(self.proc)
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9; a paused member is killed too (SIGKILL works on a stopped process)."""
        if self.running():
            self.proc.kill()
            self.proc.wait()
        self.paused = False

    def stop(self, grace=5.0):
        if self.paused:
            self.resume()
        return stop_process(self.proc, signal.SIGTERM, grace) if self.proc else None

    def pause(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.running() and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def admin(self, word, timeout_ms=1000):
        """A four-letter word asked from the control host; None when the member does not answer."""
        rc, out, _ = self.cluster.ctl_at(self.addr, word, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 5)
        return out if rc == 0 else None

    def mode(self):
        out = self.admin("srvr", 500) if self.running() and not self.paused else None
        if not out:
            return None
        m = re.search(r"^Mode: (\S+)", out, re.M)
        return m.group(1) if m else None

    def mntr(self):
        out = self.admin("mntr", 1000)
        if not out:
            return None
        return dict(l.split("\t", 1) for l in out.splitlines() if "\t" in l)

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


class Cluster:
    def __init__(self, net, workdir, n=3, procs=None, ctl_host=None, **settings):
        self.net = net
        self.workdir = Path(workdir)
        self.procs = procs or Procs()
        self.settings = settings
        self.ctl_host = ctl_host or net.hosts.get("ctl") or net.add_host("ctl", "x")
        self.members = []
        for i in range(1, n + 1):
            h = net.add_host("m%d" % i, "m")
            self.members.append(Member(self, i, h, self.workdir / ("m%d" % i)))
        self.server_lines = ["server.%d=%s:%d:%d;%s:%d" % (m.id, m.host.ip, PEER_PORT, ELECTION_PORT,
                                                            m.host.ip, CLIENT_PORT)
                             for m in self.members]

    @property
    def hosts(self):
        return ",".join(m.addr for m in self.members)

    def member(self, name_or_id):
        for m in self.members:
            if m.id == name_or_id or m.name == name_or_id:
                return m
        raise KeyError(name_or_id)

    def start(self, timeout=20.0):
        for m in self.members:
            if not m.running():
                m.launch()
        self.wait_leader(timeout)
        for m in self.members:
            self.wait_ready(m, timeout)
        return self

    def start_member(self, m, wait=True, timeout=20.0):
        m.launch()
        if wait:
            self.wait_ready(m, timeout)

    def wait_ready(self, m, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            if not m.running():
                raise AssertionError("%s exited with %s; its log:\n%s" % (m.name, m.proc.returncode, m.log_tail()))
            out = m.admin("ruok", 500)
            if out and "imok" in out:
                return
            if time.monotonic() > deadline:
                raise AssertionError("%s not ready after %.0f s; its log:\n%s" % (m.name, timeout, m.log_tail()))
            time.sleep(0.05)

    def modes(self):
        return {m.name: m.mode() for m in self.members}

    def leader(self):
        leaders = [m for m in self.members if m.mode() == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_leader(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            ld = self.leader()
            if ld:
                return ld
            if time.monotonic() > deadline:
                raise AssertionError("no single leader after %.0f s: %s" % (timeout, self.modes()))
            time.sleep(0.05)

    def ctl_at(self, hosts, *args, timeout_ms=None, timeout=30.0, input=None):
        """coordctl -s HOSTS ARGS from the control host: (rc, stdout, stderr); rc 124 on timeout."""
        argv = self.ctl_host.argv(coordtest.coordctl_argv(hosts, *args, timeout_ms=timeout_ms))
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "", "timed out after %.0f s" % timeout
        return p.returncode, p.stdout, p.stderr

    def ctl(self, *args, **kw):
        return self.ctl_at(self.hosts, *args, **kw)

    def ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        if rc != 0:
            raise AssertionError("coordctl %s: exit %d: %s" % (" ".join(map(str, args)), rc, err.strip()))
        return out

    def converged(self):
        """(True, zxid) when every running member reports the same last zxid and tree digest."""
        seen = {}
        for m in self.members:
            if not m.running():
                continue
            st = m.mntr()
            if not st:
                return False, "%s does not answer" % m.name
            seen[m.name] = (st.get("coordfs_last_zxid"), st.get("coordfs_tree_digest"))
        vals = set(seen.values())
        return (len(vals) == 1), seen

    def wait_converged(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            ok, seen = self.converged()
            if ok:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError("members did not converge in %.0f s: %s" % (timeout, seen))
            time.sleep(0.2)

    def zxid(self, m):
        st = m.mntr() if m.running() and not m.paused else None
        return int(st["coordfs_last_zxid"], 16) if st and "coordfs_last_zxid" in st else None

    def wait_caught_up(self, m, timeout=20.0):
        """Wait until m has applied at least what the other members had when this was called."""
        target = max((z for z in (self.zxid(o) for o in self.members if o is not m) if z is not None), default=0)
        deadline = time.monotonic() + timeout
        while True:
            z = self.zxid(m)
            if z is not None and z >= target:
                return z
            if time.monotonic() > deadline:
                raise AssertionError("%s at zxid %s did not catch up with %#x in %.0f s"
                                     % (m.name, z if z is None else hex(z), target, timeout))
            time.sleep(0.05)

    def stop_all(self):
        for m in self.members:
            if m.proc is not None:
                m.resume()
                stop_process(m.proc, signal.SIGKILL if not m.running() else signal.SIGTERM, 3.0)

    # ---- the full-disk nemesis: dataLogDir on a small tmpfs, filled and freed ----

    def mount_small_disk(self, m, size_mib=32):
        """Mount a tmpfs of size_mib MiB on m's dataLogDir (before m first starts)."""
        assert not m.running() and not m.tmpfs
        m.log_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mib, "cfz-tmpfs",
                        str(m.log_dir)], check=True, capture_output=True)
        m.tmpfs = size_mib

    def fill_disk(self, m):
        """Fill m's dataLogDir to the last byte (a file `fill`, never named like a log file)."""
        fd = os.open(m.log_dir / "fill", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for size in (1 << 20, 4096, 1):
                chunk = b"\xff" * size
                try:
                    while os.write(fd, chunk) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free_disk(self, m):
        try:
            (m.log_dir / "fill").unlink()
        except FileNotFoundError:
            pass

    def unmount_small_disk(self, m):
        """Unmount m's tmpfs (m must not be running); returns the error text or ''."""
        if not m.tmpfs:
            return ""
        p = subprocess.run(["umount", str(m.log_dir)], capture_output=True, text=True)
        if p.returncode != 0:
            p = subprocess.run(["umount", "-l", str(m.log_dir)], capture_output=True, text=True)
        m.tmpfs = None
        return p.stderr.strip() if p.returncode else ""
