"""mount-helpers/coord-up, the README's first command: from a fresh copy of the repository it
builds, starts a local three-member ensemble, waits for a leader and mounts it; running it again
starts nothing new (and repairs what died); --down leaves no process, mount or listening port
behind, only its state folder.

The copy holds what git tracks plus new files git does not ignore (so no build/); coord-up runs
with a temporary --state, ports of its own and a temporary mountpoint, so it collides with nothing
on the machine. Whatever the test's outcome, coord-up --down runs, then any process of this
ensemble still alive is killed by PID and a mount left behind is detached.
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

import coordtest
from conftest_fs import mounted
from coordtest import wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600


def git_files():
    p = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip("not a git checkout: %s" % p.stderr.decode(errors="replace").strip())
    return [f for f in p.stdout.decode().split("\0") if f]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh copy of the repository: its files, no build."""
    dst = tmp_path_factory.mktemp("clone") / "coordfs"
    for f in git_files():
        src = ROOT / f
        if not src.is_file():
            continue  # deleted in the work tree
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / f)
    assert not (dst / "build").exists()
    assert os.access(dst / "mount-helpers" / "coord-up", os.X_OK)
    return dst


def free_run(n=3):
    """A first port with n consecutive ports free (below the ephemeral range, as free_port's)."""
    for _ in range(100):
        base = coordtest.free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind((coordtest.LOOPBACK, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of %d free ports" % n)


def listening(port):
    try:
        with socket.create_connection((coordtest.LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def pid_of(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def processes_mentioning(text):
    """PIDs of live processes whose command line mentions text."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and coordtest.pid_alive(int(d)):
            out.append(int(d))
    return out


class CoordUp:
    def __init__(self, clone, state, mnt, port, peer_port):
        self.bin = clone / "mount-helpers" / "coord-up"
        self.state, self.mnt, self.port, self.peer_port = state, mnt, port, peer_port
        self.env = {k: v for k, v in os.environ.items() if k != "COORD_BUILD_DIR"}
        self.ctl = clone / "build" / "bin" / "coordctl"
        # coord-up runs with CURVE on: coordctl uses the admin key it made
        self.ctl_env = dict(os.environ, COORD_KEY=str(state / "keys" / "admin.key"),
                            COORD_SERVER_KEY=str(state / "keys" / "service.pub"))

    def run(self, *args, timeout=120):
        p = subprocess.run([str(self.bin), "--state", str(self.state)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout, env=self.env,
                           stdin=subprocess.DEVNULL)
        return p

    def up(self, timeout=120):
        return self.run("--port", self.port, "--peer-port", self.peer_port, self.mnt, timeout=timeout)

    def member_pids(self):
        return [pid_of(self.state / ("m%d" % i) / "coordd.pid") for i in (1, 2, 3)]

    def mount_pid(self):
        return pid_of(self.state / "coordfs.pid")

    def hosts(self, i):
        return "127.0.0.1:%d" % (self.port + i - 1)

    def modes(self):
        out = []
        for i in (1, 2, 3):
            p = subprocess.run([str(self.ctl), "-s", self.hosts(i), "-t", "1000", "srvr"], capture_output=True,
                               text=True, timeout=30, env=self.ctl_env)
            out.append(next((l.split(": ", 1)[1] for l in p.stdout.splitlines() if l.startswith("Mode: ")), None))
        return out


def test_coord_up_from_a_fresh_clone_runs_once_repairs_and_down_leaves_nothing(clone, tmp_path):
    port, peer = free_run(), free_run()
    cu = CoordUp(clone, tmp_path / "state", tmp_path / "coord", port, peer)
    seen_pids = set()
    try:
        p = cu.up(timeout=BUILD_TIMEOUT)  # builds the fresh copy
        assert p.returncode == 0, p.stdout + p.stderr
        assert (clone / "build" / "bin" / "coordd").exists()
        members, mpid = cu.member_pids(), cu.mount_pid()
        seen_pids.update(members + [mpid])
        assert all(coordtest.pid_alive(x) for x in members + [mpid])
        for i in (1, 2, 3):  # each member has its own config, dataDir and myid
            d = cu.state / ("m%d" % i)
            assert (d / "data" / "myid").read_text().strip() == str(i)
            cfg = (d / "coord.cfg").read_text()
            assert "dataDir=%s" % (d / "data") in cfg and cfg.count("server.") == 3
            assert "auth=curve" in cfg and "secretKeyFile=%s" % (cu.state / "keys" / ("member%d.key" % i)) in cfg
        assert (cu.state / "keys" / "admin.key").stat().st_mode & 0o077 == 0
        assert sorted(cu.modes()) == ["follower", "follower", "leader"]
        assert mounted(cu.mnt)
        (cu.mnt / "greeting").write_text("hello\n")
        for i in (1, 2, 3):
            wait_until(lambda: subprocess.run([str(cu.ctl), "-s", cu.hosts(i), "get", "/greeting"],
                                              capture_output=True, text=True,
                                              env=cu.ctl_env).stdout == "hello\n", 10,
                       what="member %d to have /greeting" % i)
        # CURVE is on: without a key coordctl is refused, clearly; the mount's session is "admin"'s
        env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        p = subprocess.run([str(cu.ctl), "-s", cu.hosts(1), "get", "/greeting"], capture_output=True, text=True,
                           env=env, timeout=30)
        assert p.returncode == 9 and "requires a key" in p.stderr, p.stderr
        cons = "".join(subprocess.run([str(cu.ctl), "-s", cu.hosts(i), "cons"], capture_output=True, text=True,
                                      env=cu.ctl_env, timeout=30).stdout for i in (1, 2, 3))
        assert "principal=admin" in cons, cons
        st = cu.run("--status")
        assert st.returncode == 0, st.stdout
        assert st.stdout.count("running (pid") == 3 and "leader" in st.stdout and str(cu.mnt) in st.stdout

        # Twice: nothing new starts.
        p = cu.up()
        assert p.returncode == 0, p.stdout + p.stderr
        assert "already running" in p.stdout and "already mounted" in p.stdout
        assert cu.member_pids() == members and cu.mount_pid() == mpid
        assert len(processes_mentioning(str(cu.state / "m"))) == 3  # the three coordd, no more

        # Part of it dies (a member, the mount's daemon): --status says so, coord-up repairs it.
        os.kill(members[1], signal.SIGKILL)
        os.kill(mpid, signal.SIGKILL)
        wait_until(lambda: not coordtest.pid_alive(members[1]) and not coordtest.pid_alive(mpid), 10,
                   what="the killed processes to go")
        st = cu.run("--status")
        assert st.returncode == 1, st.stdout
        assert "member 2: not running" in st.stdout and "mount: none" in st.stdout
        p = cu.up()
        assert p.returncode == 0, p.stdout + p.stderr
        now = cu.member_pids()
        seen_pids.update(now + [cu.mount_pid()])
        assert now[0] == members[0] and now[2] == members[2] and now[1] != members[1]
        assert cu.mount_pid() != mpid and mounted(cu.mnt)
        assert (cu.mnt / "greeting").read_text() == "hello\n"
        assert cu.run("--status").returncode == 0
    finally:
        down = cu.run("--down")
        leftovers = [x for x in seen_pids if x and coordtest.pid_alive(x)]
        for x in leftovers:
            os.kill(x, signal.SIGKILL)
        if mounted(cu.mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(cu.mnt)], capture_output=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers == []
    assert processes_mentioning(str(cu.state)) == [] and processes_mentioning(str(cu.mnt)) == []
    assert not mounted(cu.mnt) and not cu.mnt.exists()  # it made the mountpoint, so it removed it
    assert not any(listening(x) for x in list(range(port, port + 3)) + list(range(peer, peer + 3)))
    st = cu.run("--status")
    assert st.returncode == 3, st.stdout
    # What stays is its own state folder: the data survives --down.
    assert (cu.state / "m1" / "data" / "myid").exists()
    assert not list(cu.state.glob("*/coordd.pid")) and not (cu.state / "coordfs.pid").exists()


def test_coord_up_started_twice_at_once_starts_one_ensemble(clone, tmp_path):
    if not (clone / "build" / "bin" / "coordd").exists():
        pytest.skip("needs the copy built by the test before")
    cu = CoordUp(clone, tmp_path / "state", tmp_path / "coord", free_run(), free_run())
    argv = [str(cu.bin), "--state", str(cu.state), "--port", str(cu.port), "--peer-port", str(cu.peer_port),
            str(cu.mnt)]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cu.env,
                             stdin=subprocess.DEVNULL) for _ in range(2)]
    try:
        outs = [r.communicate(timeout=120)[0] for r in runs]
        assert [r.returncode for r in runs] == [0, 0], outs
        assert len(processes_mentioning(str(cu.state / "m"))) == 3  # one ensemble
        assert len([l for l in open("/proc/mounts") if " %s " % cu.mnt in l]) == 1
        assert sum("already running" in o for o in outs) == 1
    finally:
        for r in runs:
            if r.poll() is None:
                r.kill()
                r.wait()
        down = cu.run("--down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_mentioning(str(cu.state)) == [] and not mounted(cu.mnt)


def test_coord_up_refuses_a_busy_port_and_a_bad_option(clone, tmp_path):
    if not (clone / "build" / "bin" / "coordd").exists():
        pytest.skip("needs the copy built by the test before")
    port = free_run()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((coordtest.LOOPBACK, port + 1))
        s.listen(1)
        cu = CoordUp(clone, tmp_path / "state", tmp_path / "coord", port, free_run())
        try:
            p = cu.up()
        finally:
            cu.run("--down")
    assert p.returncode == 1 and "client port %d is in use" % (port + 1) in p.stderr
    assert not processes_mentioning(str(cu.state))
    p = cu.run("--port", "x")
    assert p.returncode == 1 and "is not a port" in p.stderr
    p = cu.run("--bogus")
    assert p.returncode == 1 and "unknown option" in p.stderr
