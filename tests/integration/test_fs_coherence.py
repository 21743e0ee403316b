"""coordfs: two mounts of one namespace stay coherent, the kernel's caches included; locks,
appends and rewrites from several hosts at once."""
import os
import subprocess
import time

import coordtest
from conftest_fs import mntr, mount, sh  # noqa: F401  (fixtures)


class Watch:
    """One .watch instance, read with plain reads (line by line, with a deadline)."""

    def __init__(self, m, *specs):
        self.fd = os.open(m.p(".watch"), os.O_RDWR | os.O_NONBLOCK)
        self.buf = b""
        for s in specs:
            os.write(self.fd, (s + "\n").encode())

    def line(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            try:
                chunk = os.read(self.fd, 4096)
                self.buf += chunk
                continue
            except BlockingIOError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("no .watch line within %.0f s (have %r)" % (timeout, self.buf))
            time.sleep(0.002)
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            l = self.line(max(0.1, deadline - time.monotonic()))
            seen.append(l)
            if pred(l):
                return l
            if time.monotonic() > deadline:
                raise AssertionError("no matching .watch line; saw %r" % seen)

    def close(self):
        os.close(self.fd)


def test_same_size_change_on_another_mount_is_seen_once_its_event_is_read(server, mount):
    """Watch ordering: after the event line, reading the path returns data at least that new, even
    though the kernel had the old contents and attributes cached (same size: no size hint)."""
    m1, m2 = mount(server), mount(server)
    m2.sh("echo v000 > f")
    w = Watch(m1, "/f")
    try:
        for i in range(1, 60):
            assert m1.sh("cat f")  # keep it hot in m1's caches
            m2.sh("echo v%03d > f" % i)
            w.wait_for(lambda l: l.startswith("changed /f "))
            assert m1.sh("cat f") == "v%03d\n" % i
            assert int(m1.sh("stat -c %s f")) == 5
    finally:
        w.close()


def test_create_delete_and_rename_on_another_mount_are_seen(server, mount):
    m1, m2 = mount(server), mount(server)
    m1.sh("mkdir d")
    assert m1.sh("cat d/new", check=False).returncode != 0  # a negative entry is now cached
    w = Watch(m1, "/d recursive")
    try:
        m2.sh("echo created > d/new")
        w.wait_for(lambda l: l.startswith("changed /d/new "))
        assert m1.sh("cat d/new") == "created\n"
        old_ino = m1.sh("stat -c %i d/new").strip()
        # Atomic config update on the other host: the name now leads to another node.
        m2.sh("echo replaced > d/tmp && mv d/tmp d/new")
        w.wait_for(lambda l: l.startswith("changed /d/new ") or l.startswith("created /d/new "))
        assert m1.sh("cat d/new") == "replaced\n"
        assert m1.sh("stat -c %i d/new").strip() != old_ino
        m2.sh("rm d/new")
        w.wait_for(lambda l: l.startswith("deleted /d/new "))
        p = m1.sh("cat d/new", check=False)
        assert p.returncode != 0 and "No such file" in p.stderr
        assert m1.sh("ls d") == ""
    finally:
        w.close()


def test_hot_cat_does_not_reach_the_server(server, mount):
    m = mount(server)
    m.sh("echo hot > f && cat f && ls -l f")
    before = int(mntr(server.hosts)["zk_packets_received"])
    t0 = time.monotonic()
    m.sh("for i in $(seq 300); do cat f > /dev/null; ls -l f > /dev/null; done")
    elapsed = time.monotonic() - t0
    after = int(mntr(server.hosts)["zk_packets_received"])
    # Only heartbeats may arrive meanwhile (one each third of the session timeout), and the
    # mntr request itself.
    allowed = 2 + int(elapsed / 3.0) + 1
    assert after - before <= allowed, "600 hot reads sent %d packets to the server" % (after - before)


def test_append_from_two_mounts_loses_no_line(server, mount):
    m1, m2 = mount(server), mount(server)
    m1.sh(": > log")
    procs = [subprocess.Popen(["bash", "-c", 'for i in $(seq 1000); do echo "%s $i" >> log; done' % tag],
                              cwd=str(m.path)) for m, tag in ((m1, "one"), (m2, "two"))]
    for p in procs:
        assert p.wait(300) == 0
    lines = m1.sh("cat log").splitlines()
    assert len(lines) == 2000
    for tag in ("one", "two"):
        mine = [int(l.split()[1]) for l in lines if l.startswith(tag + " ")]
        assert mine == list(range(1, 1001))  # each mount's lines, all there, in its order
    assert coordtest.ok(server.hosts, "get", "/log").count("\n") == 2000


def test_twenty_shells_racing_for_a_lock_on_two_mounts_exactly_one_wins(server, mount):
    m1, m2 = mount(server), mount(server)
    m1.sh("mkdir locks")
    for rnd in range(10):
        procs = []
        for i in range(20):
            m = (m1, m2)[i % 2]
            procs.append(subprocess.Popen(["bash", "-c", "set -C; echo $$ > locks/deploy"], cwd=str(m.path),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        results = [(p.pid, p.wait(60), p.stderr.read()) for p in procs]
        winners = [pid for pid, rc, _ in results if rc == 0]
        assert len(winners) == 1, "round %d: %d winners" % (rnd, len(winners))
        for pid, rc, err in results:
            if rc:
                assert b"cannot overwrite existing file" in err or b"File exists" in err, err
        assert m1.sh("cat locks/deploy").strip() == str(winners[0])
        assert m2.sh("cat locks/deploy").strip() == str(winners[0])
        m2.sh("rm locks/deploy")


def test_reader_never_sees_a_mix_of_two_versions(server, mount, tmp_path):
    """One mount rewrites a large file over and over (each version one letter, its own length);
    a reader on the other mount loops `cat` over it. Every copy is one whole version."""
    m1, m2 = mount(server), mount(server)
    m2.sh("head -c 100000 /dev/zero | tr '\\0' a > big")
    out = tmp_path / "snaps"
    out.mkdir()
    writer = subprocess.Popen(
        ["bash", "-c", "letters=(b c d e f g h i j k l m n o p q r s t u v w x y z); "
                       "for r in 1 2 3; do for i in ${!letters[@]}; do "
                       "head -c $((100000 + (i * 7919) % 60000)) /dev/zero | tr '\\0' ${letters[$i]} > big; "
                       "done; done"], cwd=str(m2.path))
    reader = subprocess.Popen(
        ["bash", "-c", "i=0; while kill -0 %d 2>/dev/null; do cat %s > %s/$i; i=$((i+1)); done" %
         (writer.pid, m1.p("big"), out)])
    assert writer.wait(300) == 0
    assert reader.wait(60) == 0
    snaps = sorted(out.iterdir())
    assert len(snaps) > 10
    letters = "abcdefghijklmnopqrstuvwxyz"
    for s in snaps:
        data = s.read_bytes()
        assert data, "%s is empty" % s.name
        ch = data[:1]
        assert data == ch * len(data), "%s mixes versions" % s.name
        i = letters.index(ch.decode()) - 1
        want = 100000 if ch == b"a" else 100000 + (i * 7919) % 60000
        assert len(data) == want, "%s: %d bytes of %r, the version had %d" % (s.name, len(data), ch, want)


def test_exchange_on_another_mount_is_followed(server, mount):
    m1, m2 = mount(server), mount(server)
    m1.sh("echo AAAA > a && echo BBBB > b && cat a b")
    w = Watch(m1, "/a", "/b")
    try:
        code = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); "
                "assert l.renameat2(-100, b'a', -100, b'b', 2) == 0")
        m2.sh("python3 -c \"%s\"" % code)
        w.wait_for(lambda l: l.startswith("changed /a "))
        w.wait_for(lambda l: l.startswith("changed /b "))
        assert m1.sh("cat a b") == "BBBB\nAAAA\n"
    finally:
        w.close()


def test_an_open_reader_keeps_its_version_while_new_opens_see_the_change(server, mount):
    """A descriptor opened before a change reads the old version to its end (with the old size),
    a new open after the event line reads the new one, and stat catches up when the old reader
    closes."""
    m1, m2 = mount(server), mount(server)
    m2.sh("head -c 50000 /dev/zero | tr '\\0' o > f")
    assert m1.sh("cat f") == "o" * 50000  # cached in m1's kernel
    w = Watch(m1, "/f")
    try:
        old = open(m1.p("f"), "rb")
        assert old.read(10) == b"o" * 10
        m2.sh("head -c 20000 /dev/zero | tr '\\0' n > f")
        w.wait_for(lambda l: l.startswith("changed /f "))
        assert m1.sh("cat f") == "n" * 20000
        assert old.read() == b"o" * 49990
        old.close()
        coordtest.wait_until(lambda: m1.sh("stat -c %s f").strip() == "20000", 10, what="stat to catch up")
        assert m1.sh("cat f") == "n" * 20000
    finally:
        w.close()


def test_a_listing_read_through_an_old_handle_is_not_kept_for_later_opens(server, mount):
    """A directory handle opened before a change and read after it must not leave its (old)
    listing in the kernel for later opens (reported by the queue recipes)."""
    m1 = mount(server)
    m2 = mount(server, name="other")
    m1.sh("mkdir q && echo 1 > q/a && ls q")
    fd = os.open(m1.p("q"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        m2.sh("echo 2 > q/b")
        coordtest.wait_until(lambda: sorted(os.listdir(m1.p("q"))) == ["a", "b"], 10, what="the change to show")
        m2.sh("echo 3 > q/c")
        # m1 heard of it (the kernel forgot q's attributes and listing) without listing q again
        coordtest.wait_until(lambda: os.stat(m1.p("q")).st_nlink == 5, 10, what="the second change")
        # the old handle reads from the start: it may see its own (old) listing...
        os.lseek(fd, 0, os.SEEK_SET)
        old = sorted(n for n in os.listdir(fd))
        assert old in (["a"], ["a", "b"], ["a", "b", "c"])
    finally:
        os.close(fd)
    # ...but a new open sees the directory as it is
    for _ in range(3):
        assert sorted(os.listdir(m1.p("q"))) == ["a", "b", "c"]
