"""Sessions across an ensemble: a session outlives the member it was connected to (it moves to
another member within its timeout, its ephemeral node stays, and goes at once when the holder ends
cleanly); a dead client's ephemeral node expires exactly once, ensemble-wide, within timeout + 1 s."""
import re
import signal
import subprocess
import time

import pytest

from coordwire import OK, Wire

from coordtest import (Proxy, ensemble_fixture, coordctl, coordctl_argv, mntr, read_line, stat, wait_converged,
                       wait_leader, wait_until)

SETTINGS = dict(tickTime=200, minSessionTimeout=1000, maxSessionTimeout=10000)
TIMEOUT_MS = 2000


make_ensemble = ensemble_fixture(**SETTINGS)


@pytest.fixture
def ens(make_ensemble):
    return make_ensemble(3)


def exists_on(m, path):
    """Does member m (alone, no sync) have path? What a client connected there reads."""
    rc, _, err = coordctl(m.hosts, "exists", path)
    assert rc in (0, 1), "exists %s on member %d: exit %d: %s" % (path, m.myid, rc, err)
    return rc == 0


def hold(procs, hosts, path):
    """`coordctl -t 2000 create -e --hold PATH` in the background; returns (process, created path)."""
    p = procs.spawn(coordctl_argv(hosts, "create", "-e", "--hold", path, timeout_ms=TIMEOUT_MS),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    created = read_line(p.stdout, 10, "the --hold process to print the created path").strip()
    return p, created


def cons(m):
    """The member's `cons` four-letter word (coordctl has no command for it): one line per session."""
    with Wire(m.port) as w:
        r = w.admin("cons")
        return r.data.decode() if r.err == OK else ""


def attached_on(m, session):
    """Is the session attached to a connection on member m (its `cons` line says connected=1)?"""
    out = cons(m) if m.running() else ""
    return re.search(r"session=0x%016x timeout=\d+ connected=1" % session, out) is not None


def hold_through(procs, ens, a, path):
    """A --hold session given every member with a first, connected to a: the other members are
    reached through proxies that refuse until the session is up (the client library picks its first
    host at random), then let through so the session can move."""
    others = [m for m in ens.members if m is not a]
    proxies = [Proxy(m.port) for m in others]
    for pr in proxies:
        pr.block()
    p, created = hold(procs, ",".join([a.hosts] + [pr.hosts for pr in proxies]), path)
    for pr in proxies:
        pr.unblock()
    return p, created, proxies


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_a_session_outlives_kill_9_of_its_member_and_its_ephemeral_goes_at_once_on_clean_exit(ens, procs, role):
    leader = wait_leader(ens)
    a = leader if role == "leader" else next(m for m in ens.members if m is not leader)
    others = [m for m in ens.members if m is not a]
    p, path, proxies = hold_through(procs, ens, a, "/eph")
    try:
        session = stat(a.hosts, path)["ephemeralOwner"]
        assert session and attached_on(a, session)

        a.kill()
        killed = time.monotonic()
        # the session moves to another member within its timeout
        wait_until(lambda: any(attached_on(m, session) for m in others), TIMEOUT_MS / 1000,
                   what="session 0x%x to move off the killed member %d" % (session, a.myid))
        wait_leader(ens)
        # and lives on: its node is still there on every live member past timeout + 1 s
        while time.monotonic() - killed < TIMEOUT_MS / 1000 + 1.0:
            for m in others:
                assert exists_on(m, path), "%s vanished from member %d after its session's member died" % (
                    path, m.myid)
            time.sleep(0.1)
        assert p.poll() is None, "the holder gave up: %s" % p.stderr.read1().decode(errors="replace")
        # the killed member comes back with the node
        a.launch()
        a.wait_ready()
        wait_converged(ens.members)
        assert exists_on(a, path)

        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0
        # a clean exit closes the session: the node is gone at once on every member
        wait_until(lambda: not any(exists_on(m, path) for m in ens.members), 1.0,
                   what="%s to go on every member after its holder ended cleanly" % path)
        wait_converged(ens.members)
    finally:
        for pr in proxies:
            pr.close()


def expired_lines(m, session):
    """How often each start of member m logged the expiry of session (a restarted member replays its
    log and applies, and logs, the expiry again: once per start at most)."""
    line = "session 0x%016x expired" % session
    return [seg.count(line) for seg in m.log_text().split("==== start ")[1:]]


def check_expired_once(ens, path, session, since):
    """The dead session's node is gone on every running member within timeout + 1 s of `since`
    (monotonic); after restarting any stopped member, every member has logged its expiry, each start
    of a member at most once, holds no session or ephemeral, and the digests agree."""
    wait_until(lambda: not any(exists_on(m, path) for m in ens.members if m.running()),
               TIMEOUT_MS / 1000 + 1.0 - (time.monotonic() - since), interval=0.05,
               what="%s to go on every member within timeout + 1 s" % path)
    for m in ens.members:
        if not m.running():
            m.launch()
            m.wait_ready()
    wait_converged(ens.members)
    wait_until(lambda: all(sum(expired_lines(m, session)) >= 1 for m in ens.members), 5,
               what="every member to log the expiry of session 0x%x" % session)
    counts = {m.myid: expired_lines(m, session) for m in ens.members}
    assert all(max(c) <= 1 for c in counts.values()), \
        "expiry of 0x%x applied more than once by one start of a member (per start): %s" % (session, counts)
    for m in ens.members:
        v = mntr(m.hosts)
        assert v["zk_ephemerals_count"] == "0" and v["coordfs_session_count"] == "0", (m.myid, v)


def test_a_dead_clients_ephemeral_goes_on_every_member_within_timeout_plus_1s_and_expires_once(ens, procs):
    p, path = hold(procs, ens.hosts, "/eph")
    session = stat(ens.hosts, path)["ephemeralOwner"]
    wait_until(lambda: all(exists_on(m, path) for m in ens.members), 5, what="the node on every member")
    p.kill()
    killed = time.monotonic()
    p.wait()
    check_expired_once(ens, path, session, killed)


def test_a_dead_clients_session_expires_once_when_the_leader_is_killed_as_it_times_out(ens, procs):
    # The old leader may already have proposed the expiry when it dies; the new leader gives every
    # session a full timeout from its election (as ZooKeeper does). Either way the node goes within
    # timeout + 1 s of the election, and the expiry is applied once.
    p, path = hold(procs, ens.hosts, "/eph")
    session = stat(ens.hosts, path)["ephemeralOwner"]
    leader = wait_leader(ens)
    p.kill()
    killed = time.monotonic()
    p.wait()
    # Not a stand-in for a condition: the point is to kill the leader as the timeout runs out.
    time.sleep(max(0.0, TIMEOUT_MS / 1000 - 0.05 - (time.monotonic() - killed)))
    leader.kill()
    elected = wait_leader(ens)
    assert elected is not leader
    check_expired_once(ens, path, session, killed + TIMEOUT_MS / 1000 - 0.05)


def test_a_session_on_an_observer_lives_past_its_timeout_and_across_a_leader_kill(make_ensemble, procs):
    # The observer reports its sessions' heartbeats to the leader, and a new leader gives every
    # session a fresh timeout: the node stays while the holder lives, and goes at once when it ends.
    e = make_ensemble(5, observers=(5,))
    leader = wait_leader(e)
    observer = e.members[4]
    p, path = hold(procs, observer.hosts, "/eph")
    session = stat(observer.hosts, path)["ephemeralOwner"]
    assert attached_on(observer, session)

    def stays(members, seconds, what):
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            for m in members:
                assert exists_on(m, path), "%s vanished from member %d %s" % (path, m.myid, what)
            time.sleep(0.1)
    stays([leader, observer], TIMEOUT_MS / 1000 + 1.0, "while its holder lived")
    leader.kill()
    wait_leader(e)
    stays([observer], TIMEOUT_MS / 1000 + 1.0, "after the leader was killed")
    assert p.poll() is None and attached_on(observer, session)
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    wait_until(lambda: not any(exists_on(m, path) for m in e.members if m.running()), 1.0,
               what="%s to go on every member after its holder ended cleanly" % path)
