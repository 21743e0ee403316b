"""The default fault schedules: every nemesis at least once, against the CAS-register, append,
sequential-create and ephemeral workloads, each history checked whole. About 4 minutes."""
import pytest

import harness

CLIENTS = ("cas", "cas", "append", "create")

# name: (schedule, members, duration, clients)
SCHEDULES = {
    "kill_leader": ("2:kill=leader 4:restart 6:kill=leader 8:restart", 3, 10, CLIENTS),
    "kill_follower": ("2:kill=follower 5:restart", 3, 8, CLIENTS),
    "kill_minority": ("2:kill=minority 5:restart", 5, 8, CLIENTS),
    # pauses longer than the session (2 s) and election (0.4-0.8 s) timeouts
    "pause_leader": ("2:pause=leader 6:resume", 3, 10, CLIENTS),
    "pause_follower": ("2:pause=follower 6:resume", 3, 9, CLIENTS),
    "isolate_leader": ("2:part=leader 6:heal", 3, 10, CLIENTS),
    "majority_minority": ("2:part=halves 6:heal", 5, 10, CLIENTS),
    "bridge": ("2:part=bridge 7:heal", 5, 10, CLIENTS),
    "link_down_leader": ("2:down=leader 5:heal", 3, 8, CLIENTS),
    "torn_tail": ("2:torn=follower/mid 5:torn=leader/partial 8:torn=follower/partial", 3, 11, CLIENTS),
    "disk_full": ("2:disk=follower 5:free 6:disk=leader 9:free", 3, 11, CLIENTS),
    "ephemerals_across_leader_kill": ("3:kill=leader 5:restart", 3, 10, ("eph", "eph", "cas")),
    "locks_across_partitions": ("2:part=leader 5:heal 7:pause=leader 10:resume 12:part=halves 15:heal", 3, 17,
                                ("lock", "lock", "lock", "lock", "cas")),
    # Regression: a leader once answered a read index with its commit index without confirming it
    # still led, so a deposed leader that had not yet stepped down served `sync` + read stale
    # values. Now a read index waits for a quorum's heartbeat round (server/raft.c confirm_reads).
    # Isolating the leader again and again, with readers pinned to every member, caught it in
    # every run before the fix.
    "sync_reads_across_leader_isolation": (
        "1:part=leader 3:heal 4.5:part=leader 6.5:heal 8:part=leader 10:heal 11.5:part=leader 13.5:heal "
        "15:part=halves 17:heal", 3, 18, ("cas", "read", "cas", "read")),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_keeps_every_guarantee(run_schedule, name):
    schedule, members, duration, clients = SCHEDULES[name]
    run_schedule(name, schedule, members=members, duration=duration, clients=clients, seed=1)


# Random schedules with fixed seeds: a mix of every fault kind, replayable with tests/faults/run.
@pytest.mark.parametrize("seed", [7])
def test_random_schedule(run_schedule, seed):
    import random
    sched = harness.random_schedule(random.Random(seed), 20, 3)
    run_schedule("random_%d" % seed, sched, members=3, duration=20,
                 clients=("cas", "cas", "append", "create", "eph", "lock"), seed=seed)
