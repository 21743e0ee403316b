"""A member that was down while many writes happened catches up when it starts again: by snapshot
when the leader has trimmed its log (small snapCount), from the log otherwise; its tree digest then
equals the leader's and it serves every write. (measure_catchup.py times this with 100,000 writes.)"""
import pytest

from coordtest import ensemble_fixture, mntr, synced_children, wait_converged, wait_leader
from coordwire import CLOSE, Wire, pipelined_creates
from measure_catchup import catch_up, write_many

WRITES = 20000


make_ensemble = ensemble_fixture(tickTime=200, minSessionTimeout=1000, maxSessionTimeout=10000)


def check_caught_up(r):
    m, leader = r["member"], r["leader"]
    assert mntr(m.hosts)["coordfs_tree_digest"] == mntr(leader.hosts)["coordfs_tree_digest"]
    have = set(synced_children(m.port, "/bulk"))
    assert have == {p.rsplit("/", 1)[1] for p in r["paths"]}, "the caught-up member lacks writes"


@pytest.mark.parametrize("how,during", [("stop", False), ("kill", True)],
                         ids=["stopped-before", "killed-9-during"])
def test_a_member_down_for_20000_writes_catches_up_by_snapshot_when_the_log_was_trimmed(make_ensemble, how, during):
    ens = make_ensemble(3, snapCount=2000)
    r = catch_up(ens, WRITES, how=how, during=during)
    # the leader trimmed its log past what the member had: only a snapshot can bring it up to date
    assert "purged: a snapshot covers its records" in r["leader"].log_text()
    assert r["by_snapshot"], "no \"installed snapshot\" in the member's log:\n" + r["member"].log_tail()
    check_caught_up(r)


def test_a_member_down_for_a_few_writes_catches_up_from_the_leaders_log(make_ensemble):
    ens = make_ensemble(3, snapCount=100000)
    r = catch_up(ens, 2000)
    assert not r["by_snapshot"], "a snapshot was sent although the leader's log had every entry"
    check_caught_up(r)


def test_an_observer_down_for_20000_writes_catches_up_by_snapshot(make_ensemble):
    ens = make_ensemble(5, observers=(5,), snapCount=2000)
    r = catch_up(ens, WRITES, lagger=ens.members[4])
    assert r["by_snapshot"], "no \"installed snapshot\" in the observer's log:\n" + r["member"].log_tail()
    check_caught_up(r)


def test_a_member_started_while_writes_go_on_catches_up_and_matches_the_leaders_digest(make_ensemble):
    ens = make_ensemble(3, snapCount=2000)
    leader = wait_leader(ens)
    lagger = next(m for m in ens.members if m is not leader)
    assert lagger.stop() == 0
    paths = write_many(leader.port, "/bulk", 10000)
    more = ["/bulk/m%07d" % i for i in range(10000)]
    with Wire(leader.port) as w:
        w.connect(timeout_ms=10000)
        lagger.launch()  # it gets a snapshot and then the log while the writes go on
        acked = pipelined_creates(w, more, window=200, timeout=30.0)
        w.call(CLOSE)
    assert len(acked) == len(more)
    lagger.wait_ready()
    wait_converged(ens.members)
    assert "installed snapshot" in lagger.log_since_start()
    check_caught_up(dict(member=lagger, leader=leader, paths=paths + more))
