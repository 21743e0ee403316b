"""Every coordctl operation against a real standalone coordd: results, Stat changes, exit codes.

Exit codes (coordctl --help): 0 ok, 1 no node, 2 usage, 3 exists, 4 bad version, 5 not empty,
6 invalid (bad path, too long, too large, ephemeral parent, parent is a file, policy), 7 connection.
"""
import os
import random
import subprocess

import pytest

from coordtest import coordctl, coordctl_argv, exists, free_port, get, ls, ok, stat

EX_NONODE, EX_USAGE, EX_EXISTS, EX_BADVERSION, EX_NOTEMPTY, EX_INVALID, EX_CONN = 1, 2, 3, 4, 5, 6, 7


@pytest.fixture
def h(server):
    """The server's host:port for coordctl -s."""
    return server.hosts


# ---- create ----

def test_create_prints_path_and_get_returns_data_exactly(h):
    assert ok(h, "create", "/a", "hello world") == "/a\n"
    assert get(h, "/a") == "hello world"  # no newline added
    st = stat(h, "/a")
    assert st["kind"] == "file"
    assert st["dataLength"] == 11 and st["dataVersion"] == 0 and st["ephemeralOwner"] == 0


def test_create_without_data_makes_empty_file(h):
    ok(h, "create", "/empty")
    assert get(h, "/empty") == ""
    assert stat(h, "/empty")["dataLength"] == 0


def test_create_reads_binary_data_from_stdin(h):
    data = bytes(range(256)) * 4  # NULs and every byte value
    rc, out, err = coordctl(h, "create", "/bin", "-", input=data)
    assert rc == 0, err
    rc, out, err = coordctl(h, "get", "/bin", input=b"")
    assert rc == 0 and out == data


def test_create_existing_node_fails_with_exit_3_and_keeps_data(h):
    ok(h, "create", "/a", "first")
    rc, out, err = coordctl(h, "create", "/a", "second")
    assert rc == EX_EXISTS
    assert "/a" in err and out == ""
    assert get(h, "/a") == "first"


def test_create_under_missing_parent_fails_with_exit_1(h):
    rc, _, err = coordctl(h, "create", "/no/such", "x")
    assert rc == EX_NONODE, err
    assert not exists(h, "/no")


def test_create_under_a_file_fails_with_exit_6(h):
    ok(h, "create", "/f", "data")
    rc, _, err = coordctl(h, "create", "/f/child")
    assert rc == EX_INVALID, err
    assert stat(h, "/f")["numChildren"] == 0


def test_create_dir_makes_a_directory_that_takes_children(h):
    ok(h, "create", "--dir", "/d")
    assert stat(h, "/d")["kind"] == "dir"
    ok(h, "create", "/d/x", "1")
    assert ls(h, "/d") == ["x"]


def test_sequential_create_appends_ten_digits_from_parent_cversion(h):
    ok(h, "create", "--dir", "/q")
    ok(h, "create", "/q/other")           # cversion 1
    ok(h, "rm", "/q/other")               # cversion 2
    out = ok(h, "create", "-s", "/q/job-", "a")
    assert out == "/q/job-0000000002\n"
    out2 = ok(h, "create", "-s", "/q/job-", "b")
    assert out2 == "/q/job-0000000003\n"
    assert ls(h, "/q") == ["job-0000000002", "job-0000000003"]
    assert get(h, "/q/job-0000000003") == "b"


def test_ephemeral_create_is_gone_when_coordctl_exits(h):
    # One coordctl process is one session, closed cleanly at exit: the ephemeral goes with it.
    assert ok(h, "create", "-e", "/eph", "x") == "/eph\n"
    assert not exists(h, "/eph")


def test_ephemeral_node_has_owner_and_cannot_have_children(h, procs):
    p = procs.spawn(coordctl_argv(h, "create", "-e", "--hold", "/eph", "x"), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "/eph\n"
    st = stat(h, "/eph")
    assert st["ephemeralOwner"] != 0
    rc, _, err = coordctl(h, "create", "/eph/child")
    assert rc == EX_INVALID, err
    assert stat(h, "/eph")["numChildren"] == 0


def test_ephemeral_sequential_create_gets_suffix_and_owner(h, procs):
    ok(h, "create", "--dir", "/locks")
    p = procs.spawn(coordctl_argv(h, "create", "-e", "-s", "--hold", "/locks/lock-"), stdout=subprocess.PIPE,
                    text=True)
    name = p.stdout.readline().strip()
    assert name == "/locks/lock-0000000000"
    assert stat(h, name)["ephemeralOwner"] != 0


def test_children_policy_sequential_makes_every_created_file_sequential(h):
    ok(h, "create", "--dir", "--children=sequential", "/jobs")
    assert stat(h, "/jobs")["children"] == "sequential"
    assert ok(h, "create", "/jobs/job", "1") == "/jobs/job0000000000\n"
    assert ok(h, "create", "/jobs/job", "2") == "/jobs/job0000000001\n"
    assert ls(h, "/jobs") == ["job0000000000", "job0000000001"]


def test_children_policy_ephemeral_makes_every_created_file_ephemeral(h, procs):
    ok(h, "mkdir", "--children=ephemeral", "/members")
    assert stat(h, "/members")["children"] == "ephemeral"
    ok(h, "create", "/members/m1", "x")     # created by a session that then closed
    assert ls(h, "/members") == []
    p = procs.spawn(coordctl_argv(h, "create", "--hold", "/members/m2"), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "/members/m2\n"
    assert stat(h, "/members/m2")["ephemeralOwner"] != 0


def test_children_policy_ephemeral_sequential(h):
    ok(h, "create", "--dir", "--children=ephemeral,sequential", "/es")
    assert stat(h, "/es")["children"] == "ephemeral,sequential"
    out = ok(h, "multi", "create /es/n a", "create /es/n b")
    assert out.split() == ["/es/n0000000000", "/es/n0000000001"]
    assert ls(h, "/es") == []  # ephemeral: gone with the session


def test_children_policy_needs_dir_and_a_known_name(h):
    rc, _, _ = coordctl(h, "create", "--children=sequential", "/x")
    assert rc == EX_USAGE
    rc, _, _ = coordctl(h, "create", "--dir", "--children=bogus", "/x")
    assert rc == EX_USAGE
    assert not exists(h, "/x")


@pytest.mark.parametrize("path", ["a", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a\x01b",
                                  "/a\x7fb", "/.watch"])
def test_create_with_bad_path_fails_with_exit_6_and_creates_nothing(h, path):
    rc, out, err = coordctl(h, "create", path, "x")
    assert rc == EX_INVALID, (path, rc, err)
    assert out == ""
    assert ls(h, "/") == []


def test_name_too_long_fails_with_exit_6_and_255_bytes_is_fine(h):
    rc, _, err = coordctl(h, "create", "/" + "n" * 256)
    assert rc == EX_INVALID, err
    ok(h, "create", "/" + "n" * 255)
    assert ls(h, "/") == ["n" * 255]


# ---- get / set / append ----

def test_get_missing_node_fails_with_exit_1(h):
    rc, out, err = coordctl(h, "get", "/nope")
    assert rc == EX_NONODE and out == "" and "/nope" in err


def test_set_replaces_data_and_bumps_data_version_and_mzxid(h):
    ok(h, "create", "/a", "one")
    before = stat(h, "/a")
    ok(h, "set", "/a", "two!")
    after = stat(h, "/a")
    assert get(h, "/a") == "two!"
    assert after["dataVersion"] == before["dataVersion"] + 1
    assert after["mZxid"] > before["mZxid"]
    assert after["cZxid"] == before["cZxid"]
    assert after["pZxid"] == before["pZxid"]
    assert after["dataLength"] == 4
    assert after["ino"] == before["ino"]


def test_set_with_matching_version_succeeds_and_stale_version_fails_with_exit_4(h):
    ok(h, "create", "/a", "v0")
    ok(h, "set", "-v", "0", "/a", "v1")
    rc, _, err = coordctl(h, "set", "-v", "0", "/a", "stale")
    assert rc == EX_BADVERSION, err
    assert get(h, "/a") == "v1"
    assert stat(h, "/a")["dataVersion"] == 1


def test_set_missing_node_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "set", "/nope", "x")
    assert rc == EX_NONODE
    assert not exists(h, "/nope")


def test_append_adds_to_data_atomically_and_bumps_version(h):
    ok(h, "create", "/log", "a\n")
    ok(h, "append", "/log", "b\n")
    ok(h, "append", "/log", "c\n")
    assert get(h, "/log") == "a\nb\nc\n"
    assert stat(h, "/log")["dataVersion"] == 2


def test_append_to_missing_node_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "append", "/nope", "x")
    assert rc == EX_NONODE


# ---- stat: ZooKeeper's field semantics ----

def test_stat_of_new_node_has_equal_zxids_and_zero_versions(h):
    ok(h, "create", "/a", "x")
    st = stat(h, "/a")
    assert st["cZxid"] == st["mZxid"] == st["pZxid"] > 0
    assert st["dataVersion"] == st["cversion"] == st["aclVersion"] == 0
    assert st["numChildren"] == 0 and st["ephemeralOwner"] == 0
    assert st["children"] == "none"


def test_child_create_and_delete_move_parent_cversion_numchildren_pzxid_not_mzxid(h):
    ok(h, "create", "--dir", "/p")
    p0 = stat(h, "/p")
    ok(h, "create", "/p/c1")
    c1 = stat(h, "/p/c1")
    p1 = stat(h, "/p")
    assert p1["cversion"] == p0["cversion"] + 1
    assert p1["numChildren"] == 1
    assert p1["pZxid"] == c1["cZxid"] > p0["pZxid"]
    assert p1["mZxid"] == p0["mZxid"] and p1["dataVersion"] == p0["dataVersion"]
    ok(h, "create", "/p/c2")
    ok(h, "rm", "/p/c1")
    p2 = stat(h, "/p")
    assert p2["cversion"] == p0["cversion"] + 3
    assert p2["numChildren"] == 1
    assert p2["pZxid"] > stat(h, "/p/c2")["cZxid"]
    assert p2["mZxid"] == p0["mZxid"]


def test_set_on_child_does_not_change_parent_stat(h):
    ok(h, "create", "--dir", "/p")
    ok(h, "create", "/p/c", "1")
    before = stat(h, "/p")
    ok(h, "set", "/p/c", "2")
    after = stat(h, "/p")
    for k in ("cversion", "numChildren", "pZxid", "mZxid", "dataVersion"):
        assert after[k] == before[k], k


def test_inode_numbers_are_unique_and_never_reused(h):
    inos = set()
    for i in range(3):
        ok(h, "create", "/n%d" % i)
        inos.add(stat(h, "/n%d" % i)["ino"])
    ok(h, "rm", "/n0")
    ok(h, "create", "/n0")
    inos.add(stat(h, "/n0")["ino"])
    assert len(inos) == 4


def test_stat_missing_node_fails_with_exit_1(h):
    rc, out, _ = coordctl(h, "stat", "/nope")
    assert rc == EX_NONODE and out == ""


# ---- ls ----

def test_ls_lists_children_sorted_bytewise(h):
    names = ["b", "a10", "a9", "A", "_x", "a", "z", "0", "é"]
    ok(h, "create", "--dir", "/d")
    for n in random.Random(7).sample(names, len(names)):
        ok(h, "create", "/d/" + n)
    assert ls(h, "/d") == sorted(names, key=lambda s: s.encode())


def test_ls_of_root_and_of_empty_dir(h):
    assert ls(h, "/") == []
    ok(h, "mkdir", "/e")
    assert ls(h, "/") == ["e"]
    assert ls(h, "/e") == []


def test_ls_returns_every_child_of_a_list_longer_than_one_page(h):
    # The server pages child lists (4096 names by default); coordctl must fetch all pages.
    ok(h, "mkdir", "/big")
    names = ["c%05d" % i for i in range(5000)]
    for k in range(0, len(names), 1000):
        ok(h, "multi", *["create /big/" + n for n in names[k:k + 1000]])
    assert ls(h, "/big") == names
    assert stat(h, "/big")["numChildren"] == 5000


def test_ls_long_shows_kind_length_version(h):
    ok(h, "mkdir", "/d")
    ok(h, "mkdir", "/d/sub")
    ok(h, "create", "/d/f", "12345")
    ok(h, "set", "/d/f", "123")
    lines = [l.split() for l in ok(h, "ls", "-l", "/d").splitlines()]
    assert lines == [["file", "3", "1", "f"], ["dir", "0", "0", "sub"]]


def test_ls_missing_node_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "ls", "/nope")
    assert rc == EX_NONODE


# ---- rm ----

def test_rm_deletes_node(h):
    ok(h, "create", "/a")
    ok(h, "rm", "/a")
    assert not exists(h, "/a")


def test_rm_missing_node_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "rm", "/nope")
    assert rc == EX_NONODE


def test_rm_node_with_children_fails_with_exit_5_and_removes_nothing(h):
    ok(h, "mkdir", "/d")
    ok(h, "create", "/d/c")
    rc, _, err = coordctl(h, "rm", "/d")
    assert rc == EX_NOTEMPTY, err
    assert ls(h, "/d") == ["c"]


def test_rm_with_stale_version_fails_with_exit_4_and_matching_version_deletes(h):
    ok(h, "create", "/a", "0")
    ok(h, "set", "/a", "1")
    rc, _, _ = coordctl(h, "rm", "-v", "0", "/a")
    assert rc == EX_BADVERSION
    assert exists(h, "/a")
    ok(h, "rm", "-v", "1", "/a")
    assert not exists(h, "/a")


def test_rm_recursive_deletes_whole_subtree_only(h):
    ok(h, "mkdir", "-p", "/t/a/b/c")
    ok(h, "create", "/t/a/f", "x")
    ok(h, "create", "/t/a/b/g", "y")
    ok(h, "create", "/keep", "z")
    ok(h, "rm", "-r", "/t")
    assert not exists(h, "/t")
    assert ls(h, "/") == ["keep"]


def test_rm_recursive_missing_node_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "rm", "-r", "/nope")
    assert rc == EX_NONODE


# ---- mv ----

def test_mv_renames_keeping_data_version_and_ino(h):
    ok(h, "create", "/a", "payload")
    ok(h, "set", "/a", "payload2")
    before = stat(h, "/a")
    ok(h, "mv", "/a", "/b")
    assert not exists(h, "/a")
    assert get(h, "/b") == "payload2"
    after = stat(h, "/b")
    assert after["dataVersion"] == before["dataVersion"]
    assert after["ino"] == before["ino"]


def test_mv_replaces_existing_target_atomically(h):
    # The atomic config update: echo new > f.tmp && mv f.tmp f
    ok(h, "create", "/cfg", "old")
    ok(h, "create", "/cfg.tmp", "new")
    ok(h, "mv", "/cfg.tmp", "/cfg")
    assert get(h, "/cfg") == "new"
    assert ls(h, "/") == ["cfg"]


def test_mv_into_other_directory_moves_child_counts(h):
    ok(h, "mkdir", "/src", "/dst")
    ok(h, "create", "/src/f", "x")
    ok(h, "mv", "/src/f", "/dst/g")
    assert ls(h, "/src") == [] and ls(h, "/dst") == ["g"]
    assert stat(h, "/src")["numChildren"] == 0 and stat(h, "/dst")["numChildren"] == 1
    assert get(h, "/dst/g") == "x"


def test_mv_noreplace_onto_existing_fails_with_exit_3_and_changes_nothing(h):
    ok(h, "create", "/a", "A")
    ok(h, "create", "/b", "B")
    rc, _, err = coordctl(h, "mv", "--noreplace", "/a", "/b")
    assert rc == EX_EXISTS, err
    assert get(h, "/a") == "A" and get(h, "/b") == "B"
    ok(h, "mv", "--noreplace", "/a", "/c")
    assert ls(h, "/") == ["b", "c"]


def test_mv_exchange_swaps_both_nodes(h):
    ok(h, "create", "/a", "A")
    ok(h, "create", "/b", "B")
    ino_a = stat(h, "/a")["ino"]
    ok(h, "mv", "--exchange", "/a", "/b")
    assert get(h, "/a") == "B" and get(h, "/b") == "A"
    assert stat(h, "/b")["ino"] == ino_a


def test_mv_exchange_with_missing_target_fails_with_exit_1(h):
    ok(h, "create", "/a", "A")
    rc, _, _ = coordctl(h, "mv", "--exchange", "/a", "/missing")
    assert rc == EX_NONODE
    assert get(h, "/a") == "A" and not exists(h, "/missing")


def test_mv_missing_source_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "mv", "/nope", "/b")
    assert rc == EX_NONODE
    assert not exists(h, "/b")


def test_mv_to_missing_parent_fails_with_exit_1_and_keeps_source(h):
    ok(h, "create", "/a", "A")
    rc, _, _ = coordctl(h, "mv", "/a", "/no/b")
    assert rc == EX_NONODE
    assert get(h, "/a") == "A"


def test_mv_noreplace_and_exchange_together_is_a_usage_error(h):
    ok(h, "create", "/a")
    rc, _, _ = coordctl(h, "mv", "--noreplace", "--exchange", "/a", "/b")
    assert rc == EX_USAGE


# ---- exists, sync ----

def test_exists_says_by_exit_status_only(h):
    rc, out, err = coordctl(h, "exists", "/a")
    assert (rc, out, err) == (EX_NONODE, "", "")
    ok(h, "create", "/a")
    rc, out, err = coordctl(h, "exists", "/a")
    assert (rc, out, err) == (0, "", "")


def test_sync_succeeds_and_a_read_after_it_sees_the_write(h):
    ok(h, "create", "/a", "x")
    ok(h, "sync", "/a")
    assert get(h, "/a") == "x"


# ---- multi ----

def test_multi_applies_all_ops_in_one_transaction(h):
    ok(h, "create", "/old", "o")
    ok(h, "create", "/chk", "c")
    out = ok(h, "multi", "create /m1 one", "create /m2 two words", "set /old new data", "delete /chk")
    assert out.split() == ["/m1", "/m2"]
    assert get(h, "/m1") == "one" and get(h, "/m2") == "two words" and get(h, "/old") == "new data"
    assert not exists(h, "/chk")
    # one transaction: one zxid for every change
    assert stat(h, "/m1")["cZxid"] == stat(h, "/m2")["cZxid"] == stat(h, "/old")["mZxid"]


MULTI_FAILURES = [
    ("set /missing x", EX_NONODE),
    ("create /keep again", EX_EXISTS),
    ("check -v 7 /keep", EX_BADVERSION),
    ("delete /dir", EX_NOTEMPTY),
    ("create /keep/child", EX_INVALID),
]


def check_failed_multi(h, ops, code, failing):
    ok(h, "create", "/keep", "k")
    ok(h, "mkdir", "/dir")
    ok(h, "create", "/dir/c")
    before = {p: stat(h, p) for p in ("/", "/keep", "/dir")}
    rc, out, err = coordctl(h, "multi", *ops)
    # nothing applied, whatever the reply
    assert not exists(h, "/new1") and not exists(h, "/new2")
    assert get(h, "/keep") == "k"
    assert ls(h, "/") == ["dir", "keep"] and ls(h, "/dir") == ["c"]
    assert {p: stat(h, p) for p in before} == before
    # and the failing op is named, with its exit code
    assert out == ""
    assert (rc, "op %d " % failing in err) == (code, True), err


@pytest.mark.parametrize("bad,code", MULTI_FAILURES, ids=[c[0].split()[0] + str(c[1]) for c in MULTI_FAILURES])
def test_multi_with_one_failing_op_changes_nothing_and_exits_with_its_code(h, bad, code):
    check_failed_multi(h, ["create /new1 a", "set /keep changed", bad], code, 3)


# Regression: the reply once gave the ops after the failing one sub-op 0, which the client refused
# as malformed (coordctl exit 8 instead of the failing op's code).
def test_multi_failing_before_its_last_op_exits_with_the_failing_ops_code(h):
    check_failed_multi(h, ["create /new1 a", "set /missing x", "create /new2 b"], EX_NONODE, 2)


def test_multi_ops_see_the_effects_of_earlier_ops(h):
    out = ok(h, "multi", "create --dir /d", "create /d/f x", "set -v 0 /d/f y", "check -v 1 /d/f")
    assert out.split() == ["/d", "/d/f"]
    assert get(h, "/d/f") == "y"


def test_multi_with_unknown_op_is_a_usage_error_and_sends_nothing(h):
    rc, _, _ = coordctl(h, "multi", "create /a", "frobnicate /b")
    assert rc == EX_USAGE
    assert not exists(h, "/a")


# ---- mkdir ----

def test_mkdir_p_creates_missing_ancestors_as_directories(h):
    ok(h, "mkdir", "-p", "/a/b/c")
    for p in ("/a", "/a/b", "/a/b/c"):
        assert stat(h, p)["kind"] == "dir"
    ok(h, "mkdir", "-p", "/a/b/c")  # existing is fine with -p
    ok(h, "mkdir", "-p", "/a/b/d")
    assert ls(h, "/a/b") == ["c", "d"]


def test_mkdir_existing_without_p_fails_with_exit_3(h):
    ok(h, "mkdir", "/a")
    rc, _, _ = coordctl(h, "mkdir", "/a")
    assert rc == EX_EXISTS


def test_mkdir_without_parent_fails_with_exit_1(h):
    rc, _, _ = coordctl(h, "mkdir", "/a/b")
    assert rc == EX_NONODE
    assert not exists(h, "/a")


# ---- admin words ----

def test_ruok_says_imok(h):
    assert ok(h, "ruok").strip() == "imok"


def test_srvr_says_mode_standalone_and_counts_nodes(h):
    ok(h, "mkdir", "/x")
    out = ok(h, "srvr")
    assert "Mode: standalone" in out.splitlines()
    assert "Node count: 2" in out.splitlines()


def test_mntr_reports_znode_count_and_state(h):
    ok(h, "mkdir", "-p", "/a/b")
    lines = dict(l.split("\t", 1) for l in ok(h, "mntr").splitlines() if "\t" in l)
    assert lines["zk_server_state"] == "standalone"
    assert int(lines["zk_znode_count"]) == 3


# ---- command line and connection errors ----

def test_unknown_command_and_bad_option_are_usage_errors(h):
    assert coordctl(h, "frobnicate")[0] == EX_USAGE
    assert coordctl(h, "get", "--bogus", "/a")[0] == EX_USAGE
    assert coordctl(h, "set", "-v", "x", "/a", "d")[0] == EX_USAGE


def test_no_server_listening_fails_with_exit_7():
    port = free_port()
    rc, _, err = coordctl("127.0.0.1:%d" % port, "get", "/a", timeout_ms=1000)
    assert rc == EX_CONN, err


# ---- edge cases of the namespace ----

def test_root_cannot_be_deleted_or_created(h):
    rc, _, err = coordctl(h, "rm", "/")
    assert rc == EX_INVALID, err
    assert coordctl(h, "create", "/")[0] == EX_EXISTS


def test_rm_recursive_of_root_empties_the_tree_but_keeps_root(h):
    ok(h, "mkdir", "-p", "/a/b")
    ok(h, "create", "/c", "x")
    ok(h, "rm", "-r", "/")
    assert ls(h, "/") == []
    assert stat(h, "/")["numChildren"] == 0


def test_sequential_create_of_a_path_ending_in_slash_names_the_node_by_number(h):
    ok(h, "mkdir", "/q")
    assert ok(h, "create", "-s", "/q/") == "/q/0000000000\n"
    assert ls(h, "/q") == ["0000000000"]


def test_mv_into_its_own_subtree_fails_with_exit_6(h):
    ok(h, "mkdir", "/a")
    rc, _, err = coordctl(h, "mv", "/a", "/a/b")
    assert rc == EX_INVALID, err
    assert ls(h, "/") == ["a"] and ls(h, "/a") == []


def test_mv_onto_itself_changes_nothing(h):
    ok(h, "create", "/a", "x")
    before = stat(h, "/a")
    ok(h, "mv", "/a", "/a")
    assert stat(h, "/a") == before and get(h, "/a") == "x"


def test_mv_of_a_node_with_children_fails_with_exit_5(h):
    ok(h, "mkdir", "/a")
    ok(h, "create", "/a/f")
    rc, _, err = coordctl(h, "mv", "/a", "/z")
    assert rc == EX_NOTEMPTY, err
    assert ls(h, "/") == ["a"] and ls(h, "/a") == ["f"]


def test_mv_under_a_file_fails_with_exit_6(h):
    ok(h, "create", "/f", "x")
    ok(h, "create", "/g", "y")
    rc, _, err = coordctl(h, "mv", "/g", "/f/g")
    assert rc == EX_INVALID, err
    assert get(h, "/g") == "y"


def test_mkdir_p_through_a_file_fails_with_exit_6(h):
    ok(h, "create", "/f", "x")
    rc, _, err = coordctl(h, "mkdir", "-p", "/f/y/z")
    assert rc == EX_INVALID, err
    assert stat(h, "/f")["numChildren"] == 0


def test_a_node_may_hold_data_and_children(h):
    ok(h, "create", "--dir", "/d", "dir data")
    ok(h, "create", "/d/c", "child")
    ok(h, "set", "/d", "new dir data")
    assert get(h, "/d") == "new dir data" and ls(h, "/d") == ["c"]


def test_host_list_with_a_dead_member_first_still_serves(h):
    dead = "127.0.0.1:%d" % free_port()
    hosts = dead + "," + h
    assert ok(hosts, "create", "/a", "x") == "/a\n"
    assert ok(hosts, "get", "/a", timeout_ms=3000) == "x"
    assert ok(hosts, "ruok", timeout_ms=1000).strip() == "imok"


def deep_path(total):
    """A path of exactly `total` bytes made of 255-byte components (the last one shorter)."""
    parts, left = [], total
    while left > 0:
        n = min(255, left - 1)
        parts.append("x" * n)
        left -= n + 1
    return "/" + "/".join(parts)


def test_path_of_4096_bytes_is_fine(h):
    p = deep_path(4096)
    assert len(p.encode()) == 4096
    ok(h, "mkdir", "-p", p.rsplit("/", 1)[0])
    assert ok(h, "create", p, "deep") == p + "\n"
    assert get(h, p) == "deep"


# Regression: a path over 4096 bytes was once sent as is and refused by the server's decoder as a
# malformed frame (coordctl exit 8); the client library now refuses it with ENAMETOOLONG (exit 6)
# before sending, as it does for data over the size limit.
def test_path_over_4096_bytes_fails_with_exit_6_name_too_long(h):
    p = deep_path(4097)
    got = {}
    for cmd in ("create", "get", "stat", "exists"):
        rc, out, err = coordctl(h, cmd, p)
        got[cmd] = (rc, "too long" in err)
    assert got == {cmd: (EX_INVALID, True) for cmd in got}, got


def test_invalid_utf8_path_fails_with_exit_6(h):
    rc, _, err = coordctl(h, "create", os.fsdecode(b"/bad\xffname"), "x", input=b"")  # bytes out
    assert rc == EX_INVALID, err
    assert ls(h, "/") == []


def test_sequential_name_leaves_room_for_the_suffix(h):
    ok(h, "mkdir", "/q")
    rc, _, err = coordctl(h, "create", "-s", "/q/" + "n" * 246)
    assert rc == EX_INVALID and "too long" in err, err
    out = ok(h, "create", "-s", "/q/" + "n" * 245)
    assert out == "/q/" + "n" * 245 + "0000000000\n"


def test_successive_lock_holders_get_increasing_czxid_fencing_tokens(h):
    tokens = []
    for i in range(3):
        ok(h, "create", "/lock", "holder %d" % i)
        tokens.append(stat(h, "/lock")["cZxid"])
        ok(h, "rm", "/lock")
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_thousand_ephemerals_of_one_session_go_together_when_it_closes(h):
    ok(h, "mkdir", "/e")
    out = ok(h, "multi", *["create -e /e/n%04d" % i for i in range(1000)])
    assert len(out.split()) == 1000
    # coordctl closed its session on exit: every ephemeral is gone already
    assert ls(h, "/e") == []
    assert stat(h, "/e")["numChildren"] == 0


def test_multi_sequential_creates_get_consecutive_names(h):
    ok(h, "mkdir", "/q")
    out = ok(h, "multi", "create -s /q/j a", "create -s /q/j b")
    assert out.split() == ["/q/j0000000000", "/q/j0000000001"]
