"""A member that was down while many writes happened catches up when it starts again: by snapshot
when the leader has trimmed its log (small snapCount), from the log otherwise; its tree digest then
equals the leader's and it serves every write. (measure_catchup.py times this with 100,000 writes.)"""
import pytest

from coordtest import coordctl, ensemble_fixture, mntr, ok, synced_children, wait_converged, wait_leader
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


def test_znodes_of_the_largest_size_replicate_and_a_member_catches_up_on_them(make_ensemble):
    """A 64 MiB znode (maxDataBytes' ceiling) is one append bigger than a peer link's queue cap: it
    must still go, alone. A member down while several large znodes were written catches up from
    the log, a few entries per append (appends are capped at 1 MiB of entries, always one).
    tickTime=2000: a member busy with 64 MiB for seconds must not cost the client its session."""
    big = 64 << 20
    ens = make_ensemble(3, snapCount=100000, maxDataBytes=big, tickTime=2000, minSessionTimeout=4000,
                        maxSessionTimeout=40000)
    leader = wait_leader(ens)
    lagger = next(m for m in ens.members if m is not leader)
    data = bytes(range(256)) * (big // 256)
    ok(leader.hosts, "create", "/big", "-", input=data, timeout=120, timeout_ms=60000)
    for m in ens.members:
        assert coordctl(m.hosts, "sync", "/big", timeout=60)[0] == 0
        assert coordctl(m.hosts, "get", "/big", input=b"", timeout=60, timeout_ms=60000)[1] == data, \
            "member %d lacks the 64 MiB znode" % m.myid
    assert lagger.stop() == 0
    parts = [bytes([i]) * (3 << 20) for i in range(6)]
    for i, p in enumerate(parts):
        ok(leader.hosts, "create", "/part%d" % i, "-", input=p, timeout=60, timeout_ms=30000)
    lagger.launch()
    wait_converged(ens.members, timeout=60)
    for i, p in enumerate(parts):
        assert coordctl(lagger.hosts, "get", "/part%d" % i, input=b"", timeout=60, timeout_ms=30000)[1] == p
