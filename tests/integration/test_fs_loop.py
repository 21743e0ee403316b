"""coordfs's request loop (fs/loop.c): hot requests are answered by the reader thread itself, any
other by a pool; a request that waits on the server never holds up the others."""
import os
import signal
import subprocess

from conftest_fs import mount  # noqa: F401  (fixture)
from coordtest import wait_until


def waiting_on_fuse(pid):
    """The process sleeps in the kernel waiting for coordfs's answer to a FUSE request."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            w = f.read()
    except OSError:
        return False
    return "request_wait_answer" in w or "fuse" in w


def test_a_request_waiting_on_the_server_does_not_hold_up_cached_reads(server, mount):
    m = mount(server, session_timeout=30)
    m.sh("echo cached > f && mkdir d && echo x > d/g && cat f")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        # uncached: each has to ask the (stopped) server, so each waits
        waiting = [subprocess.Popen(["cat", m.p("d", "g")], stdout=subprocess.PIPE),
                   subprocess.Popen(["ls", m.p("d")], stdout=subprocess.PIPE),
                   subprocess.Popen(["stat", m.p("nothere")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
        wait_until(lambda: all(waiting_on_fuse(p.pid) for p in waiting), 20,
                   what="the uncached requests to wait in coordfs")
        # cached: answered, over and over, while those wait (a held-up read would hang here
        # until the server is resumed: the timeout only turns that hang into a failure)
        reads = subprocess.run(["sh", "-c", 'for i in $(seq 200); do cat "$1"; done', "sh", m.p("f")],
                               stdout=subprocess.PIPE, timeout=60)
        assert reads.stdout == b"cached\n" * 200
        assert all(p.poll() is None for p in waiting)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    for p in waiting:
        p.wait(timeout=30)
    assert waiting[0].stdout.read() == b"x\n"
    assert waiting[1].stdout.read() == b"g\n"
    assert waiting[2].returncode != 0


def test_many_slow_requests_at_once_all_finish(server, mount):
    m = mount(server)
    m.sh("mkdir d")
    # 80 creates and reads in parallel: more than the pool's first threads, all through workers
    out = m.sh("for i in $(seq 80); do (echo $i > d/f$i && cat d/f$i) & done; wait")
    assert sorted(int(x) for x in out.split()) == list(range(1, 81))
    assert len(os.listdir(m.p("d"))) == 80


def test_sigterm_while_requests_wait_ends_the_mount(server, mount):
    m = mount(server, session_timeout=30)
    m.sh("echo x > f")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        waiter = subprocess.Popen(["cat", m.p("g")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: waiting_on_fuse(waiter.pid), 20, what="cat to wait in coordfs")
        m.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: m.proc.poll() is not None, 20, what="coordfs to exit on SIGTERM")
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    waiter.wait(timeout=30)
    assert waiter.returncode != 0
