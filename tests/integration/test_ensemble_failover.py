"""Leader failover under a steady write load: kill -9 of the leader (7 times, the killed member
restarted and caught up each time) or SIGTERM (the leader hands over first) loses no acknowledged
write: every one is on every member afterwards and the tree digests agree. A client on a follower
stays there; a client on the leader resumes its session on another member and resends.

The time from the stop to the next acknowledged write is printed, not asserted (speed is measured
by benchmarks and by measure_failover.py, whose figures are the ones to quote)."""
import pytest

from coordtest import Ensemble, ok, wait_leader
from coordwire import CLOSE, CREATE, KIND_REPLY, OK, Wire, body_create
from measure_failover import check_all_present, ensemble_settings, figures, run_case

SESSION_MS = 4000
KILL_ROUNDS = 7
TERM_ROUNDS = 3


@pytest.fixture
def ens(tmp_path, procs):
    e = Ensemble(tmp_path, 3, procs=procs, **ensemble_settings(200, SESSION_MS)).start()
    wait_leader(e)
    return e


def report(capsys, title, gaps, lines):
    with capsys.disabled():  # the figures belong in the test output, also under -q
        print("\n" + "\n".join(lines))
        print("  %s: %s" % (title, figures(gaps)))


@pytest.mark.parametrize("case", ["follower", "leader"], ids=["client-on-follower", "client-on-leader"])
def test_leader_kill_9_under_write_load_loses_no_acknowledged_write(ens, capsys, case):
    lines = []
    gaps, paths = run_case(ens, case, KILL_ROUNDS, how="kill", log=lines.append, timeout_ms=SESSION_MS)
    report(capsys, "leader kill -9 -> next acknowledged write, client on the %s" % case, gaps, lines)
    assert len(gaps) == KILL_ROUNDS
    check_all_present(ens, paths)


@pytest.mark.parametrize("case", ["follower", "leader"], ids=["client-on-follower", "client-on-leader"])
def test_leader_sigterm_hands_over_to_a_new_leader_and_loses_no_acknowledged_write(ens, capsys, case):
    lines = []
    gaps, paths = run_case(ens, case, TERM_ROUNDS, how="term", log=lines.append, timeout_ms=SESSION_MS)
    report(capsys, "leader SIGTERM -> next acknowledged write, client on the %s" % case, gaps, lines)
    check_all_present(ens, paths)


def test_writes_in_flight_through_a_follower_when_the_leader_is_killed_are_each_applied_once(ens):
    # 5,000 creates pipelined (200 in flight) through a follower; the leader is killed -9 at the
    # 1,000th acknowledgement, with writes in every stage (forwarded, logged, committed, answered).
    # The follower hands the unanswered ones to the new leader: each must succeed exactly once
    # (a create applied twice would fail with "node exists").
    n, window, kill_at = 5000, 200, 1000
    leader = wait_leader(ens)
    follower = next(m for m in ens.members if m is not leader)
    ok(ens.hosts, "mkdir", "/pipe")
    paths = ["/pipe/p%05d" % i for i in range(n)]
    inflight, acked, errors = {}, set(), []
    with Wire(follower.port) as w:
        w.connect(timeout_ms=SESSION_MS)
        todo = iter(paths)
        more = True
        while more or inflight:
            while more and len(inflight) < window:
                p = next(todo, None)
                if p is None:
                    more = False
                    break
                inflight[w.send(CREATE, body_create(p, b"v"))] = p
            m = w.recv(10.0)
            assert m is not None, "no reply for 10 s with %d writes in flight (%d acknowledged)" % (
                len(inflight), len(acked))
            p = inflight.pop(m.xid, None) if m.kind == KIND_REPLY else None
            if p is None:
                continue
            if m.err == OK:
                acked.add(p)
            else:
                errors.append((p, m))
            if len(acked) == kill_at and leader.running():
                leader.kill()
        w.call(CLOSE)
    assert not errors, "%d writes failed across the leader change, e.g. %s" % (len(errors), errors[:3])
    assert len(acked) == n
    new_leader = wait_leader(ens)
    assert new_leader is not leader
    leader.launch()
    leader.wait_ready()
    check_all_present(ens, paths, parent="/pipe")
