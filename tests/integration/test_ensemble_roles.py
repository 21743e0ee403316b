"""Ensembles started from config files: a write on any member is read on every member after sync
there; exactly one member says Mode leader, the others follower or observer; an observer never
leads, however many leaders are killed."""
import pytest

from coordtest import (ensemble_fixture, mntr, mode, ok, stable_leader, synced_reads, wait_converged, wait_leader,
                       wait_until)

SETTINGS = dict(tickTime=200, minSessionTimeout=1000, maxSessionTimeout=10000)


make_ensemble = ensemble_fixture(**SETTINGS)


def modes(ens):
    return {m.myid: mode(m.hosts) for m in ens.members if m.running()}


@pytest.mark.parametrize("n,observers", [(3, ()), (5, (5,))], ids=["3-members", "5-members-1-observer"])
def test_exactly_one_member_says_mode_leader_the_others_follower_or_observer(make_ensemble, n, observers):
    ens = make_ensemble(n, observers)
    leader = wait_leader(ens)
    got = modes(ens)
    want = {m.myid: "leader" if m is leader else "observer" if m.myid in observers else "follower"
            for m in ens.members}
    assert got == want
    assert list(got.values()).count("leader") == 1


@pytest.mark.parametrize("n,observers", [(3, ()), (5, (5,))], ids=["3-members", "5-members-1-observer"])
def test_a_write_on_any_member_is_read_on_every_member_after_sync_there(make_ensemble, n, observers):
    ens = make_ensemble(n, observers)
    paths = []
    for m in ens.members:  # followers, the leader and the observer all take writes
        path = "/from%d" % m.myid
        assert ok(m.hosts, "create", path, "written on member %d" % m.myid).strip() == path
        paths.append(path)
        # right after the write, every member that syncs reads it
        for r in ens.members:
            assert synced_reads(r.port, path)[path] == b"written on member %d" % m.myid, \
                "member %d after sync does not return the write made on member %d" % (r.myid, m.myid)
    for m in ens.members:  # an update through the next member, read everywhere after sync
        ok(ens.members[m.myid % n].hosts, "set", "/from%d" % m.myid, "updated")
    for r in ens.members:
        assert set(synced_reads(r.port, *paths).values()) == {b"updated"}
    wait_converged(ens.members)


def test_an_observer_never_becomes_leader_when_leaders_are_killed_repeatedly(make_ensemble):
    ens = make_ensemble(5, observers=(5,))
    observer = ens.members[4]
    seen = []
    for round in range(6):
        leader = wait_leader(ens)
        assert leader is not observer
        ok(observer.hosts, "create", "/before-kill-%d" % round)  # the observer is as up to date as it gets
        leader.kill()

        def new_leader():
            # polled through the election: the observer must say observer at every look
            m = mode(observer.hosts)
            assert m == "observer", "the observer says Mode %s while the ensemble elects" % m
            return stable_leader(ens)
        after = wait_until(new_leader, 15, what="a new leader after killing member %d" % leader.myid)
        assert after is not observer and after is not leader
        seen.append(after.myid)
        ok(observer.hosts, "create", "/after-kill-%d" % round)
        leader.launch()
        leader.wait_ready()
        wait_converged(ens.members)
        assert mode(observer.hosts) == "observer"
    assert observer.myid not in seen
    assert "leading the ensemble" not in observer.log_text()
    for m in ens.members:
        data = synced_reads(m.port, *["/%s-kill-%d" % (w, r) for r in range(6) for w in ("before", "after")])
        assert all(v is not None for v in data.values()), "member %d misses writes: %s" % (m.myid, data)


def test_the_leaders_mntr_lists_every_member_with_its_role_and_no_lag_once_converged(make_ensemble):
    ens = make_ensemble(5, observers=(5,))
    for m in ens.members:
        ok(m.hosts, "create", "/m%d" % m.myid)
    leader = wait_leader(ens)
    wait_converged(ens.members)

    def lines():
        v = mntr(leader.hosts)
        got = {int(k.split(".")[1]): val.split() for k, val in v.items() if k.startswith("coordfs_member.")}
        return got if all(g[2] == "lag=0" for g in got.values()) else None
    got = wait_until(lines, 10, what="the leader to see every member with lag 0")
    assert {i: (g[0], g[3]) for i, g in got.items()} == {
        m.myid: ("leader" if m is leader else "observer" if m.myid == 5 else "follower", "up") for m in ens.members}
    v = mntr(leader.hosts)
    assert v["zk_followers"] == "4" and v["zk_synced_followers"] == "4"
    for m in ens.members:
        if m is not leader:
            assert not any(k.startswith("coordfs_member.") for k in mntr(m.hosts)), \
                "only the leader knows its members' lag"
