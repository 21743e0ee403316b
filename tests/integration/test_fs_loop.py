"""coordfs's request loop (fs/loop.c): hot requests are answered by the reader thread itself, any
other by a pool; a request that waits on the server never holds up the others."""
import os
import signal
import subprocess
import time

from conftest_fs import mount  # noqa: F401  (fixture)
from coordtest import wait_until


def test_a_request_waiting_on_the_server_does_not_hold_up_cached_reads(server, mount):
    m = mount(server, session_timeout=30)
    m.sh("echo cached > f && mkdir d && echo x > d/g && cat f")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        # uncached: each has to ask the (stopped) server, so each waits
        waiting = [subprocess.Popen(["cat", m.p("d", "g")], stdout=subprocess.PIPE),
                   subprocess.Popen(["ls", m.p("d")], stdout=subprocess.PIPE),
                   subprocess.Popen(["stat", m.p("nothere")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
        time.sleep(0.3)
        assert all(p.poll() is None for p in waiting)
        # cached: answered at once, over and over, while those wait
        t0 = time.monotonic()
        for _ in range(200):
            with open(m.p("f")) as fh:
                assert fh.read() == "cached\n"
        assert time.monotonic() - t0 < 5
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
        time.sleep(0.2)
        m.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: m.proc.poll() is not None, 20, what="coordfs to exit on SIGTERM")
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    waiter.wait(timeout=30)
    assert waiter.returncode != 0
