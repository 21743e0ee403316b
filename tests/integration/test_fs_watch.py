"""coordfs: .watch, the poll file (DESIGN.md, "Special files at the mount root")."""
import errno
import os
import select
import subprocess
import threading
import time

import pytest

import coordtest
from conftest_fs import mount, sh  # noqa: F401  (fixtures)


def ctl(server, *args, **kw):
    return coordtest.ok(server.hosts, *args, **kw)


class Reader:
    """bash reading .watch line by line with its read builtin; prints READY once its watches are set."""

    def __init__(self, m, specs, count):
        script = "exec 3<>.watch; %s echo READY; for i in $(seq %d); do read -r ev p z <&3 || exit 9; " \
                 "echo \"$ev $p $z\"; done" % ("".join("echo '%s' >&3; " % s for s in specs), count)
        self.p = subprocess.Popen(["bash", "-c", script], cwd=str(m.path), stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline() == "READY\n"

    def lines(self, timeout=30):
        out, _ = self.p.communicate(timeout=timeout)
        assert self.p.returncode == 0, out
        return [l.split() for l in out.splitlines()]


def test_blocking_read_returns_the_event_line(server, mount):
    m = mount(server)
    r = Reader(m, ["/x"], 3)
    ctl(server, "create", "/x", "1")
    ctl(server, "set", "/x", "2")
    ctl(server, "rm", "/x")
    ev = r.lines()
    assert [e[:2] for e in ev] == [["created", "/x"], ["changed", "/x"], ["deleted", "/x"]]
    zxids = [int(e[2], 16) for e in ev]
    assert zxids == sorted(zxids) and len(set(zxids)) == 3
    assert int(ctl(server, "srvr").split("Zxid: ")[1].split()[0], 16) >= zxids[-1]


def test_children_lines_and_recursive_watches(server, mount):
    m = mount(server)
    m.sh("mkdir -p a/b")
    r = Reader(m, ["/a", "/a/b recursive"], 4)
    m.sh("echo 1 > a/f")                 # /a: children
    m.sh("mkdir a/b/c && echo 2 > a/b/c/g")  # /a/b recursive: created c, created g (not children)
    m.sh("echo 3 > a/b/c/g")             # changed g
    ev = r.lines()
    assert [e[:2] for e in ev] == [["children", "/a"], ["created", "/a/b/c"], ["created", "/a/b/c/g"],
                                   ["changed", "/a/b/c/g"]]


def test_many_lines_at_once_are_all_read_by_bash(server, mount):
    """bash's read builtin reads a block and seeks back past the line it took: the offset is
    honoured, so lines that arrived together are not lost."""
    m = mount(server)
    m.sh("mkdir d")
    p = subprocess.Popen(["bash", "-c", "exec 3<>.watch; echo '/d' >&3; echo READY; read -r go; "
                                        "for i in $(seq 20); do read -r ev p z <&3; echo \"$ev $p\"; done"],
                         cwd=str(m.path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "READY\n"
    m.sh("for i in $(seq 20); do echo $i > d/f$i; done")  # 20 events queue up before any read
    out, _ = p.communicate("go\n", timeout=30)
    assert out.split("\n")[:20] == ["children /d"] * 20


def test_nonblocking_read_gives_eagain(server, mount):
    m = mount(server)
    fd = os.open(m.p(".watch"), os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"/n\n")
        with pytest.raises(BlockingIOError) as e:
            os.read(fd, 4096)
        assert e.value.errno == errno.EAGAIN
        ctl(server, "create", "/n")

        def got():
            try:
                return os.read(fd, 4096)
            except BlockingIOError:
                return None
        data = coordtest.wait_until(got, 10, what="a line on .watch")
        assert data.decode().startswith("created /n 0x")
    finally:
        os.close(fd)


def test_select_wakes_up_on_an_event(server, mount):
    m = mount(server)
    fd = os.open(m.p(".watch"), os.O_RDWR)
    try:
        os.write(fd, b"/s\n")
        assert select.select([fd], [], [], 0)[0] == []
        woke = {}
        started = threading.Event()

        def wait():
            started.set()
            t0 = time.monotonic()
            r, _, _ = select.select([fd], [], [], 20)
            woke["ready"] = r == [fd]
            woke["after"] = time.monotonic() - t0
        t = threading.Thread(target=wait)
        t.start()
        started.wait()
        ctl(server, "create", "/s")
        t.join(30)
        assert woke["ready"], "select did not report the line"
        assert woke["after"] < 10
        assert os.read(fd, 4096).decode().startswith("created /s ")
        # epoll sees it too
        ep = select.epoll()
        ep.register(fd, select.EPOLLIN)
        assert ep.poll(0) == []
        ctl(server, "set", "/s", "x")
        evs = ep.poll(20)
        assert evs and evs[0][0] == fd
        ep.close()
    finally:
        os.close(fd)


def test_watch_until_dropped_and_independent_instances(server, mount):
    m = mount(server)
    a = os.open(m.p(".watch"), os.O_RDWR | os.O_NONBLOCK)
    b = os.open(m.p(".watch"), os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(a, b"/w\n")
        os.write(b, b"/w\n")
        os.write(b, b"-/w\n")
        ctl(server, "create", "/w")
        ctl(server, "set", "/w", "1")
        ctl(server, "set", "/w", "2")

        def lines(fd, n):
            buf = b""

            def more():
                nonlocal buf
                try:
                    buf += os.read(fd, 4096)
                except BlockingIOError:
                    pass
                return buf.count(b"\n") >= n
            coordtest.wait_until(more, 10, what="%d lines" % n)
            return buf.decode().splitlines()
        assert [l.split()[0] for l in lines(a, 3)] == ["created", "changed", "changed"]
        with pytest.raises(BlockingIOError):
            os.read(b, 4096)  # b dropped its watch
        with pytest.raises(OSError) as e:
            os.write(b, b"-/w\n")  # not watched any more
        assert e.value.errno == errno.ENOENT
    finally:
        os.close(a)
        os.close(b)


def test_bad_watch_lines_fail_with_einval(server, mount):
    m = mount(server)
    for bad in ["relative/path", "/trailing/", "/a//b", "/x extra", "/.dot"]:
        p = m.sh("exec 3<>.watch; echo '%s' >&3" % bad, check=False)
        assert p.returncode != 0 and "Invalid argument" in p.stderr, bad


def test_cat_reads_lines_and_does_not_loop(server, mount):
    m = mount(server)
    p = subprocess.Popen(["bash", "-c", "exec 3<>.watch; echo '/c recursive' >&3; echo READY; "
                                        "timeout 3 cat <&3; true"],
                         cwd=str(m.path), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "READY\n"
    ctl(server, "create", "--dir", "/c")
    ctl(server, "create", "/c/d")
    out, _ = p.communicate(timeout=30)
    assert [l.split()[:2] for l in out.splitlines()] == [["created", "/c"], ["created", "/c/d"]]


def test_expired_after_the_daemon_was_stopped_past_its_session_timeout(make_server, mount):
    server = make_server(tickTime=500)
    m = mount(server, session_timeout=2)
    m.sh("mkdir e && setfattr -n user.coord.children -v ephemeral e && echo mine > e/lock")
    old = m.sh("cat .session").split("\n")[0]
    r = subprocess.Popen(["bash", "-c", "exec 3<>.watch; echo '/e' >&3; echo READY; "
                                        "while read -r ev rest <&3; do echo $ev; [ $ev = expired ] && break; done"],
                         cwd=str(m.path), stdout=subprocess.PIPE, text=True)
    assert r.stdout.readline() == "READY\n"
    m.stop_signal()
    try:
        # The server ends the session (and its ephemeral node) while the daemon cannot answer.
        coordtest.wait_until(lambda: coordtest.coordctl(server.hosts, "exists", "/e/lock")[0] == 1, 15,
                             what="the session to expire")
    finally:
        m.cont_signal()
    out, _ = r.communicate(timeout=30)
    assert out.split()[-1] == "expired"
    # The mount goes on with a new session.
    new = coordtest.wait_until(lambda: (m.sh("cat .session").split("\n")[0]), 15)
    assert new != old
    assert "state connected" in m.sh("cat .session")
    m.sh("echo again > e/lock2")
    assert ctl(server, "get", "/e/lock2") == "again\n"


def test_disconnected_and_reconnected_across_a_server_restart(make_server, mount):
    server = make_server(tickTime=500)
    m = mount(server, session_timeout=10)
    m.sh("echo before > f")
    r = subprocess.Popen(["bash", "-c", "exec 3<>.watch; echo '/f' >&3; echo READY; "
                                        "while read -r ev rest <&3; do echo $ev; "
                                        "[ $ev = changed ] || [ $ev = overflow ] && break; done"],
                         cwd=str(m.path), stdout=subprocess.PIPE, text=True)
    assert r.stdout.readline() == "READY\n"
    server.restart()
    # The session survived the restart. A change made on the server is announced: as its own
    # line, or, if it happened before the mount had re-armed its watch, as `overflow` (a
    # persistent watch cannot replay what it missed).
    ctl(server, "set", "/f", "after")
    out, _ = r.communicate(timeout=30)
    lines = out.split()
    assert lines[0] == "disconnected" and lines[-1] in ("changed", "overflow"), lines
    assert "reconnected" in lines or lines[-1] == "overflow", lines
    assert m.sh("cat f") == "after"


def test_tools_that_walk_the_mount_do_not_block_on_watch(server, mount, tmp_path):
    m = mount(server)
    m.sh("mkdir d && echo needle > d/f")
    assert m.sh("grep -r --exclude-dir=.history needle . | sort") == "./d/f:needle\n"
    # without the exclusion the walk also reads the kept versions (README: .history)
    assert m.sh("grep -r needle . | sort") == "./.history/d/f/1:needle\n./d/f:needle\n"
    m.sh("tar -cf %s/all.tar . && cp -r . %s/copy" % (tmp_path, tmp_path))
    assert (tmp_path / "copy" / "d" / "f").read_text() == "needle\n"
    assert (tmp_path / "copy" / ".watch").read_text() == ""
