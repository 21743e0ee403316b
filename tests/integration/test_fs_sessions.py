"""coordfs: one mount is one session (DESIGN.md, "Sessions"); mounting and unmounting."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import coordtest
from conftest_fs import mount, mounted, sh  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "mount-helpers" / "mount.coordfs"


def exists(server, path):
    return coordtest.coordctl(server.hosts, "exists", path)[0] == 0


def test_ephemeral_lock_goes_at_once_on_umount(make_server, mount):
    server = make_server(tickTime=500)
    m1, m2 = mount(server, session_timeout=10), mount(server, session_timeout=10)
    m1.sh("mkdir locks && setfattr -n user.coord.children -v ephemeral locks && echo $$ > locks/deploy")
    assert m2.sh("cat locks/deploy").strip()
    t0 = time.monotonic()
    assert m1.unmount() == 0
    coordtest.wait_until(lambda: m2.sh("test -e locks/deploy", check=False).returncode != 0, 5,
                         what="the lock to disappear for mount 2")
    assert time.monotonic() - t0 < 5  # far less than the 10 s session timeout


def test_ephemeral_lock_goes_within_the_session_timeout_after_kill_9(make_server, mount):
    server = make_server(tickTime=500)
    timeout = 2
    m1, m2 = mount(server, session_timeout=timeout), mount(server)
    m1.sh("mkdir locks && setfattr -n user.coord.children -v ephemeral locks && echo $$ > locks/deploy")
    assert m2.sh("cat locks/deploy").strip()
    t0 = time.monotonic()
    m1.kill()
    coordtest.wait_until(lambda: m2.sh("test -e locks/deploy", check=False).returncode != 0, timeout + 5,
                         what="the lock to disappear for mount 2")
    assert time.monotonic() - t0 <= timeout + 1.0


def test_session_and_cluster_files(server, mount):
    m = mount(server, session_timeout=7)
    s = dict(l.split(" ", 1) for l in m.sh("cat .session").splitlines())
    assert s["session"].startswith("0x") and int(s["session"], 16) != 0
    assert s["timeout_ms"] == "7000"
    assert s["state"] == "connected"
    assert s["server"] == server.hosts
    assert s["last_zxid"].startswith("0x")
    c = m.sh("cat .cluster").splitlines()
    assert c[0].split() == ["SERVER", "ID", "MODE", "ZXID", "LAG", "HEALTH"]
    row = c[1].split()
    assert row[0] == server.hosts and row[2] == "standalone" and row[3].startswith("0x")
    assert row[5:] == ["up", "connected"]
    assert c[2:] == ["connected %s" % server.hosts]
    assert m.sh("stat -c %s .session").strip() == "0"  # generated: its size is not known to stat
    p = m.sh("echo x > .session", check=False)
    assert p.returncode != 0


def test_unreachable_servers_give_a_clear_error(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    port = coordtest.free_port()
    p = subprocess.run([str(coordtest.binary("coordfs")), "127.0.0.1:%d" % port, str(d), "-o", "session_timeout=1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "coordfs: cannot reach any server in 127.0.0.1:%d within 1 s" % port in p.stderr
    assert not mounted(d)


def test_bad_arguments(tmp_path):
    bin = str(coordtest.binary("coordfs"))
    p = subprocess.run([bin], capture_output=True, text=True)
    assert p.returncode == 2 and "usage: coordfs" in p.stderr
    p = subprocess.run([bin, "127.0.0.1:2181", str(tmp_path), "-o", "session_timeout=abc"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "session_timeout: 'abc'" in p.stderr
    p = subprocess.run([bin, "127.0.0.1:2181", str(tmp_path / "nope")], capture_output=True, text=True)
    assert p.returncode == 1 and "mount point" in p.stderr
    p = subprocess.run([bin, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "session_timeout=SECONDS" in p.stdout


def test_background_mode_returns_once_mounted(server, tmp_path):
    d = tmp_path / "bg"
    d.mkdir()
    log = tmp_path / "bg.log"
    p = subprocess.run([str(coordtest.binary("coordfs")), server.hosts, str(d), "-o", "logfile=%s" % log],
                       capture_output=True, text=True, timeout=30)
    try:
        assert p.returncode == 0, p.stderr
        assert mounted(d)  # already mounted when the command returns
        assert sh("echo bg > %s/f && cat %s/f" % (d, d)) == "bg\n"
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)
    coordtest.wait_until(lambda: "unmounting" in log.read_text(), 10, what="the daemon to stop")
    assert not mounted(d)


@pytest.fixture
def mount_helper_installed():
    """/sbin/mount.coordfs -> this checkout's helper, for the duration of the test."""
    target = Path("/sbin/mount.coordfs")
    if os.geteuid() != 0:
        pytest.skip("needs root to install /sbin/mount.coordfs")
    if target.exists() or target.is_symlink():
        if target.resolve() != HELPER.resolve():
            pytest.skip("/sbin/mount.coordfs belongs to another installation")
        yield target
        return
    target.symlink_to(HELPER)
    try:
        yield target
    finally:
        target.unlink()


def test_mount_t_coordfs_and_an_fstab_line(server, tmp_path, mount_helper_installed):
    env = dict(os.environ, COORDFS=str(coordtest.binary("coordfs")))
    d = tmp_path / "coord"
    d.mkdir()
    try:
        sh("mount -t coordfs %s %s -o session_timeout=5" % (server.hosts, d), env=env)
        assert mounted(d)
        sh("echo via-mount > %s/f" % d)
        assert coordtest.ok(server.hosts, "get", "/f") == "via-mount\n"
        sh("umount %s" % d)
        coordtest.wait_until(lambda: not mounted(d), 10, what="umount")
        fstab = tmp_path / "fstab"
        fstab.write_text("%s %s coordfs session_timeout=5,_netdev,noauto 0 0\n" % (server.hosts, d))
        sh("mount -T %s %s" % (fstab, d), env=env)
        assert mounted(d)
        assert sh("cat %s/f" % d) == "via-mount\n"
        assert server.hosts in sh("grep ' %s ' /proc/mounts" % d)
        sh("umount %s" % d)
    finally:
        if mounted(d):
            subprocess.run(["umount", "-l", str(d)], capture_output=True)
    assert not mounted(d)


def test_sigterm_unmounts_and_closes_the_session(make_server, mount):
    server = make_server(tickTime=500)
    m1, m2 = mount(server, session_timeout=10), mount(server)
    m1.sh("mkdir e && setfattr -n user.coord.children -v ephemeral e && echo 1 > e/x")
    m1.proc.terminate()
    assert m1.proc.wait(15) == 0
    assert not mounted(m1.path)
    coordtest.wait_until(lambda: not exists(server, "/e/x"), 5, what="the ephemeral node to go")


def test_stopping_the_mount_does_not_hang_on_an_unreachable_ensemble(make_server, mount):
    server = make_server(tickTime=500)
    m = mount(server, session_timeout=10)
    coordtest.ok(server.hosts, "create", "/cold", "x")  # not in the mount's caches yet
    server.kill()
    reader = subprocess.Popen(["cat", m.p("cold")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    coordtest.wait_until(lambda: "fuse" in open("/proc/%d/wchan" % reader.pid).read()
                         or "request_wait" in open("/proc/%d/wchan" % reader.pid).read(), 10,
                         what="cat to wait on the mount")
    t0 = time.monotonic()
    m.proc.terminate()
    m.proc.wait(15)
    assert time.monotonic() - t0 < 10
    assert reader.wait(15) != 0  # the read fails rather than hanging
    m.cleanup_dead()
    assert not mounted(m.path)
