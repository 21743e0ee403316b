"""coordfs: .history, the read-only view of each znode's kept versions (DESIGN.md, "Special files";
issue 9), through real shell tools on a real mount."""
import errno
import os

import pytest

import coordtest
from conftest_fs import mount, sh  # noqa: F401  (fixtures)


def ctl(server, *args, **kw):
    return coordtest.ok(server.hosts, *args, **kw)


def version_of(server, path):
    return coordtest.parse_stat(ctl(server, "stat", path))["dataVersion"]


def err_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def test_fifteen_writes_keep_the_last_ten_and_cp_rolls_back(server, mount):
    m = mount(server)
    m.sh("mkdir app")
    for i in range(1, 16):
        m.sh("echo 'config v%d' > app/config" % i)
    cur = version_of(server, "/app/config")
    # created empty (version 0) by the first open, then 15 commits
    assert cur == 15
    hist = m.p(".history", "app", "config")
    listed = sorted(int(n) for n in os.listdir(hist))
    assert listed == list(range(cur - 9, cur + 1)), listed   # the default historyDepth: 10, current included
    for v in listed:
        assert m.sh("cat .history/app/config/%d" % v) == "config v%d\n" % v
        assert os.stat(os.path.join(hist, str(v))).st_size == len("config v%d\n" % v)
    for v in range(0, cur - 9):
        assert err_of(os.stat, os.path.join(hist, str(v))) == errno.ENOENT
        assert err_of(open, os.path.join(hist, str(v))) == errno.ENOENT
    assert err_of(os.stat, os.path.join(hist, "99")) == errno.ENOENT
    assert err_of(os.stat, os.path.join(hist, "07")) == errno.ENOENT   # only the plain number names it
    # the rollback idiom: a new version equal to the old one
    m.sh("cp .history/app/config/8 app/config")
    assert version_of(server, "/app/config") == cur + 1
    assert ctl(server, "get", "/app/config") == "config v8\n"
    assert m.sh("cat app/config") == "config v8\n"
    listed = sorted(int(n) for n in os.listdir(hist))
    assert listed == list(range(cur - 8, cur + 2))
    assert m.sh("cat .history/app/config/%d" % (cur + 1)) == "config v8\n"
    assert err_of(open, os.path.join(hist, str(cur - 9))) == errno.ENOENT  # pushed out by the rollback


def test_hidden_at_the_root_and_mirrors_the_directories(server, mount):
    m = mount(server)
    m.sh("mkdir -p app/db && echo a > app/config && echo b > app/db/url && echo top > top")
    assert ".history" not in m.sh("ls").split()
    assert ".history" in m.sh("ls -a").split()
    assert sorted(m.sh("ls .history").split()) == ["app", "top"]
    assert sorted(m.sh("ls .history/app").split()) == ["config", "db"]
    assert m.sh("ls .history/app/db") == "url\n"
    assert m.sh("ls .history/app/db/url") == "0\n1\n"   # created empty at open, then written
    assert m.sh("cat .history/app/db/url/1") == "b\n"
    assert os.path.isdir(m.p(".history", "app", "config"))  # every znode is a directory of versions
    assert err_of(open, m.p(".history", "app", "config")) == errno.EISDIR
    assert err_of(os.listdir, m.p(".history", "nothere")) == errno.ENOENT
    # the tools that walk a tree see plain files and directories
    found = sh("cd %s && find . | sort" % m.p(".history", "app"))
    assert found.split() == [".", "./config", "./config/0", "./config/1", "./db", "./db/url", "./db/url/0",
                             "./db/url/1"]
    # a deleted node's history goes with it
    m.sh("rm app/config")
    assert err_of(os.listdir, m.p(".history", "app", "config")) == errno.ENOENT
    assert m.sh("ls .history/app") == "db\n"


def test_a_directory_with_data_shows_its_versions_next_to_its_children(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo x > d/0 && echo y > d/other")
    # a plain directory: only its children
    assert sorted(m.sh("ls .history/d").split()) == ["0", "other"]
    ctl(server, "set", "/d", "dir data 1")
    ctl(server, "set", "/d", "dir data 2")
    # versions 0..2 of /d's own data; the child named "0" wins over version 0
    names = m.sh("ls -p .history/d").split()
    assert sorted(names) == ["0/", "1", "2", "other/"]
    assert m.sh("cat .history/d/2") == "dir data 2"
    assert m.sh("cat .history/d/0/1") == "x\n"
    assert coordtest.ok(server.hosts, "get", "-v", "0", "/d") == ""


def test_writes_anywhere_under_history_are_erofs(server, mount):
    m = mount(server)
    m.sh("mkdir app && echo one > app/config && echo two > app/config")
    h = ".history/app/config"
    for cmd in ["echo x > %s/1" % h, "echo x >> %s/1" % h, "echo x > %s/new" % h, "rm %s/1" % h,
                "rm -r .history/app", "mkdir %s/d" % h, "mkdir .history/app/d", "touch %s/1" % h,
                "touch %s/new" % h, "mv app/config %s/x" % h, "mv %s/1 app/x" % h, "truncate -s 0 %s/1" % h,
                "setfattr -n user.coord.data -v x .history/app", "ln -s x %s/l" % h]:
        r = m.sh(cmd, check=False)
        assert r.returncode != 0, cmd
        assert "Read-only file system" in r.stderr, (cmd, r.stderr)
    fd = os.open(m.p(h, "1"), os.O_RDONLY)
    os.close(fd)
    assert err_of(os.open, m.p(h, "1"), os.O_RDWR) == errno.EROFS
    assert err_of(os.open, m.p(h, "1"), os.O_WRONLY) == errno.EROFS
    # .history itself stays, like the other special names
    assert err_of(os.rmdir, m.p(".history")) == errno.EPERM
    assert err_of(os.rename, m.p(".history"), m.p("h")) == errno.EPERM
    assert m.sh("cat app/config") == "two\n"
    assert m.sh("ls %s" % h).split() == ["0", "1", "2"]


def test_an_open_version_reads_as_it_was_at_open(server, mount):
    m = mount(server)
    m.sh("echo first > f && echo second > f")
    with open(m.p(".history", "f", "1"), "rb") as f:
        assert f.read(3) == b"fir"
        for i in range(12):                   # push version 1 out of the kept ones
            m.sh("echo v%d > f" % i)
        assert f.read() == b"st\n"
    assert err_of(open, m.p(".history", "f", "1")) == errno.ENOENT


def test_history_depth_zero_lists_no_versions(make_server, mount):
    server = make_server(historyDepth=0)
    m = mount(server)
    m.sh("mkdir app && echo a > app/config && echo b > app/config")
    assert m.sh("ls .history/app") == "config\n"
    assert m.sh("ls -A .history/app/config") == ""
    assert err_of(open, m.p(".history", "app", "config", "2")) == errno.ENOENT
    assert err_of(open, m.p(".history", "app", "config", "1")) == errno.ENOENT
