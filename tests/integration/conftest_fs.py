"""conftest_fs: real coordfs mounts for the test_fs_* suites (servers come from coordtest/conftest).

    def test_x(server, mount):
        m1 = mount(server)                 # coordfs HOSTS DIR -f, waits until mounted
        m1.sh("echo hi > f && cat f")      # bash -c in the mount's directory; returns stdout
        m1.kill()                          # kill -9 the daemon (the dead mount is cleaned up)

Every mount is unmounted (fusermount3 -u, lazily if busy) and its coordfs stopped by PID at
teardown, pass or fail. Nothing waits with a bare sleep: conditions are polled with deadlines.
"""
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

import coordtest
from coordtest import wait_until

SH_TIMEOUT = 60.0


def mounted(path):
    """True if path is a coordfs mount point now (from /proc/mounts)."""
    path = os.path.realpath(str(path))
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[1] == path and parts[2] == "fuse.coordfs":
                return True
    return False


def sh(cmd, cwd=None, check=True, timeout=SH_TIMEOUT, input=None, env=None):
    """bash -c CMD; returns stdout (check) or the CompletedProcess (check=False)."""
    try:
        p = subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           input=input, env=env, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("bash -c %s did not finish within %.0f s" % (shlex.quote(cmd), timeout)) from e
    if not check:
        return p
    if p.returncode != 0:
        raise AssertionError("bash -c %s: exit %d\nstdout: %s\nstderr: %s"
                             % (shlex.quote(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def mntr(hosts):
    """The server's mntr answer as a dict."""
    out = coordtest.ok(hosts, "mntr")
    d = {}
    for line in out.splitlines():
        k, _, v = line.partition("\t")
        d[k] = v
    return d


class Mount:
    """One coordfs process in the foreground (-f) serving one mount point."""

    def __init__(self, hosts, path, procs, session_timeout=None, opts=()):
        self.hosts = hosts
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.procs = procs
        self.session_timeout = session_timeout
        self.opts = list(opts)
        self.log = self.path.parent / (self.path.name + ".log")
        self.proc = None

    def argv(self):
        o = list(self.opts)
        if self.session_timeout is not None:
            o.append("session_timeout=%g" % self.session_timeout)
        argv = [str(coordtest.binary("coordfs")), self.hosts, str(self.path), "-f"]
        if o:
            argv += ["-o", ",".join(o)]
        return argv

    def start(self, timeout=20.0):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.procs.add(self.proc)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("coordfs exited with %s before mounting; its log:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            return mounted(self.path)
        wait_until(up, timeout, what="coordfs to mount %s" % self.path)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def p(self, *names):
        """A path inside the mount."""
        return str(self.path.joinpath(*names))

    def sh(self, cmd, **kw):
        kw.setdefault("cwd", str(self.path))
        return sh(cmd, **kw)

    def unmount(self, timeout=15.0):
        """fusermount3 -u (lazy if busy), then wait for coordfs to exit; returns its status."""
        if mounted(self.path):
            r = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True, text=True)
            if r.returncode != 0 and mounted(self.path):
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return coordtest.stop_process(self.proc)

    def kill(self):
        """kill -9 the daemon, as a crash; the dead mount point is detached."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.cleanup_dead()

    def cleanup_dead(self):
        if mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True)

    def stop_signal(self):
        self.proc.send_signal(signal.SIGSTOP)

    def cont_signal(self):
        self.proc.send_signal(signal.SIGCONT)

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def teardown(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
            except ProcessLookupError:
                pass
        self.unmount()
        self.cleanup_dead()
        if self.proc is not None:
            coordtest.stop_process(self.proc)


@pytest.fixture
def mount(tmp_path, procs):
    """mount(server_or_hosts, name=None, session_timeout=None, opts=()) -> a started Mount."""
    made = []

    def make(server, name=None, session_timeout=None, opts=()):
        hosts = server if isinstance(server, str) else server.hosts
        m = Mount(hosts, tmp_path / (name or "mnt%d" % (len(made) + 1)), procs,
                  session_timeout=session_timeout, opts=opts)
        made.append(m)
        return m.start()
    yield make
    for m in reversed(made):
        m.teardown()
    for m in made:
        assert not mounted(m.path), "%s is still mounted" % m.path


def wait_for(pred, timeout=10.0, what="condition"):
    return wait_until(pred, timeout, what=what)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def now():
    return time.monotonic()
