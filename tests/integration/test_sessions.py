"""Sessions: an ephemeral node lives as long as its session. A killed holder's node goes when the
session times out (within timeout + 1 s); a holder that ends cleanly takes it away at once."""
import signal
import subprocess
import time

import pytest

from coordtest import coordctl_argv, exists, ok, read_line, stat, wait_until

TIMEOUT_MS = 2000


@pytest.fixture
def h(make_server):
    # ZooKeeper's bounds: minSessionTimeout defaults to 2 ticks; allow a 2 s session.
    return make_server(tickTime=500, minSessionTimeout=1000, maxSessionTimeout=10000).hosts


def hold(procs, h, path, *flags, stdin=subprocess.DEVNULL, timeout_ms=TIMEOUT_MS):
    """Start `coordctl -t MS create -e --hold PATH` and wait until it printed the created path."""
    p = procs.spawn(coordctl_argv(h, "create", "-e", "--hold", *flags, path, timeout_ms=timeout_ms),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin)
    created = read_line(p.stdout, 10, "the --hold process to print the created path").strip()
    assert exists(h, created)
    return p, created


def test_killed_holders_ephemeral_goes_within_session_timeout_plus_one_second(h, procs):
    p, path = hold(procs, h, "/eph")
    owner = stat(h, path)["ephemeralOwner"]
    assert owner != 0
    p.kill()
    killed = time.monotonic()
    p.wait()
    # kill -9 closes nothing: the session lives on until it times out
    assert exists(h, path)
    wait_until(lambda: not exists(h, path), TIMEOUT_MS / 1000 + 1.0 - (time.monotonic() - killed),
               interval=0.05, what="%s to go after its holder was killed" % path)


def test_expiry_removes_only_the_dead_sessions_ephemerals(h, procs):
    ok(h, "mkdir", "/m")
    dead, dpath = hold(procs, h, "/m/dead")
    live, lpath = hold(procs, h, "/m/live")
    ok(h, "create", "/m/persistent", "p")
    dead.kill()
    dead.wait()
    wait_until(lambda: not exists(h, dpath), TIMEOUT_MS / 1000 + 1.0, interval=0.05,
               what="the killed holder's node to go")
    assert exists(h, lpath) and exists(h, "/m/persistent")
    assert live.poll() is None  # the live holder's session is untouched


def test_holder_ended_by_sigterm_removes_its_node_at_once(h, procs):
    p, path = hold(procs, h, "/eph")
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    # closed cleanly: gone at once, far sooner than the 2 s timeout
    wait_until(lambda: not exists(h, path), 1.0, what="%s to go after SIGTERM" % path)


def test_holder_ended_by_sigint_removes_its_node_at_once(h, procs):
    p, path = hold(procs, h, "/eph")
    p.send_signal(signal.SIGINT)
    assert p.wait(5) == 0
    wait_until(lambda: not exists(h, path), 1.0, what="%s to go after SIGINT" % path)


def test_holder_whose_stdin_closes_removes_its_node_at_once(h, procs):
    p, path = hold(procs, h, "/eph", stdin=subprocess.PIPE)
    assert p.poll() is None
    p.stdin.close()
    assert p.wait(5) == 0
    wait_until(lambda: not exists(h, path), 1.0, what="%s to go after stdin closed" % path)


def test_holder_keeps_node_while_alive_past_the_session_timeout(h, procs):
    # Heartbeats keep the session: the node is still there after twice the timeout.
    p, path = hold(procs, h, "/eph")
    deadline = time.monotonic() + 2 * TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        assert exists(h, path)
        time.sleep(0.2)
    assert p.poll() is None


def test_ephemeral_sequential_holders_get_distinct_increasing_names(h, procs):
    ok(h, "mkdir", "/lock")
    holders = [hold(procs, h, "/lock/n-", "-s") for _ in range(3)]
    names = [n for _, n in holders]
    assert names == ["/lock/n-0000000000", "/lock/n-0000000001", "/lock/n-0000000002"]
    # the lowest holder lets go: only its node goes
    holders[0][0].send_signal(signal.SIGTERM)
    wait_until(lambda: not exists(h, names[0]), 1.0, what="the first lock node to go")
    assert exists(h, names[1]) and exists(h, names[2])


def test_session_timeout_is_clamped_to_the_servers_bounds(h):
    out = ok(h, "session", timeout_ms=100)
    assert "timeout = 1000 ms" in out.splitlines()
    out = ok(h, "session", timeout_ms=60000)
    assert "timeout = 10000 ms" in out.splitlines()


@pytest.fixture
def srv(make_server):
    return make_server(tickTime=500, minSessionTimeout=1000, maxSessionTimeout=10000)


def test_session_and_its_ephemeral_survive_a_server_restart_while_the_holder_lives(srv, procs):
    h = srv.hosts
    p, path = hold(procs, h, "/eph", timeout_ms=4000)
    owner = stat(h, path)["ephemeralOwner"]
    srv.kill()
    srv.launch()
    srv.wait_ready()
    # the holder reconnects and resumes its session: the node stays past the session timeout
    deadline = time.monotonic() + 4 + 1.5
    while time.monotonic() < deadline:
        assert exists(h, path), "the live holder's ephemeral node went after a server restart"
        time.sleep(0.2)
    assert p.poll() is None
    assert stat(h, path)["ephemeralOwner"] == owner
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    wait_until(lambda: not exists(h, path), 1.0, what="the node to go when its holder ends")


def test_ephemeral_of_a_holder_that_died_with_the_server_goes_after_restart(srv, procs):
    h = srv.hosts
    p, path = hold(procs, h, "/eph")
    p.kill()
    srv.kill()
    p.wait()
    srv.launch()
    srv.wait_ready()
    restarted = time.monotonic()
    # the session was restored with the tree; nobody resumes it, so it expires
    wait_until(lambda: not exists(h, path), TIMEOUT_MS / 1000 + 1.0 - (time.monotonic() - restarted),
               interval=0.05, what="the dead session's node to go after the restart")


def test_holder_cut_off_past_its_timeout_loses_its_node_and_exits_7(srv, procs):
    from coordtest import Proxy
    px = Proxy(srv.port)
    try:
        p, path = hold(procs, px.hosts, "/eph")
        px.block()
        wait_until(lambda: not exists(srv.hosts, path), TIMEOUT_MS / 1000 + 1.0, interval=0.05,
                   what="the cut-off holder's node to go")
        px.unblock()
        # back in touch, the holder learns its session expired, says so and exits 7
        assert p.wait(15) == 7
        assert "expired" in p.stderr.read().decode()
        assert not exists(srv.hosts, path)
    finally:
        px.close()


def test_watcher_whose_session_expires_says_so_and_exits_7(srv, procs):
    from coordtest import Proxy, Watcher
    px = Proxy(srv.port)
    try:
        w = Watcher(procs, px.hosts, "/w", timeout_ms=TIMEOUT_MS)
        ok(srv.hosts, "create", "/w")
        assert w.next_event()[:2] == ("created", "/w")
        px.block()
        # the server expires the session after its timeout; then the watcher is let back in
        wait_until(lambda: "coordfs_session_count\t0" in ok(srv.hosts, "mntr"), TIMEOUT_MS / 1000 + 1.0,
                   interval=0.05,
                   what="the watcher's session to expire")
        px.unblock()
        assert w.proc.wait(15) == 7
        assert "expired" in w.proc.stderr.read().decode()
    finally:
        px.close()


def test_mntr_counts_sessions_and_ephemerals_of_live_holders(h, procs):
    def mntr():
        return dict(l.split("\t", 1) for l in ok(h, "mntr").splitlines() if "\t" in l)
    a, _ = hold(procs, h, "/a")
    b, _ = hold(procs, h, "/b")
    m = mntr()
    assert (m["coordfs_session_count"], m["zk_ephemerals_count"]) == ("2", "2")
    a.send_signal(signal.SIGTERM)
    assert a.wait(5) == 0
    m = mntr()
    assert (m["coordfs_session_count"], m["zk_ephemerals_count"]) == ("1", "1")
