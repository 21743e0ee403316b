"""A member that was down while many writes happened catches up when it starts again: by snapshot
when the leader has trimmed its log (small snapCount), from the log otherwise; its tree digest then
equals the leader's and it serves every write. (measure_catchup.py times this with 100,000 writes.)"""
import pytest

from coordtest import Ensemble, mntr, synced_children, wait_leader
from measure_catchup import catch_up

WRITES = 20000


def start(tmp_path, procs, snap_count):
    e = Ensemble(tmp_path, 3, procs=procs, tickTime=200, minSessionTimeout=1000, maxSessionTimeout=10000,
                 snapCount=snap_count).start()
    wait_leader(e)
    return e


def check_caught_up(r):
    m, leader = r["member"], r["leader"]
    assert mntr(m.hosts)["coordfs_tree_digest"] == mntr(leader.hosts)["coordfs_tree_digest"]
    have = set(synced_children(m.port, "/bulk"))
    assert have == {p.rsplit("/", 1)[1] for p in r["paths"]}, "the caught-up member lacks writes"


@pytest.mark.parametrize("how", ["stop", "kill"], ids=["stopped", "killed"])
def test_a_member_down_for_20000_writes_catches_up_by_snapshot_when_the_log_was_trimmed(tmp_path, procs, how):
    ens = start(tmp_path, procs, snap_count=2000)
    r = catch_up(ens, WRITES, how=how)
    # the leader trimmed its log past what the member had: only a snapshot can bring it up to date
    assert "purged: a snapshot covers its records" in r["leader"].log_text()
    assert r["by_snapshot"], "no \"installed snapshot\" in the member's log:\n" + r["member"].log_tail()
    check_caught_up(r)


def test_a_member_down_for_a_few_writes_catches_up_from_the_leaders_log(tmp_path, procs):
    ens = start(tmp_path, procs, snap_count=100000)
    r = catch_up(ens, 2000)
    assert not r["by_snapshot"], "a snapshot was sent although the leader's log had every entry"
    check_caught_up(r)
