"""maxDataBytes: data over the server's limit fails cleanly (exit 6, EFBIG), changes nothing, and the
server goes on serving; data at the limit is fine."""
import pytest

from coordtest import coordctl, exists, get, ok, stat

LIMIT = 4096
EX_INVALID = 6


@pytest.fixture
def h(make_server):
    return make_server(maxDataBytes=LIMIT).hosts


def test_data_of_exactly_max_data_bytes_is_accepted(h):
    ok(h, "create", "/a", "-", input="x" * LIMIT)
    assert stat(h, "/a")["dataLength"] == LIMIT
    ok(h, "set", "/a", "-", input="y" * LIMIT)
    assert get(h, "/a") == "y" * LIMIT


def test_create_over_max_data_bytes_fails_with_exit_6_and_creates_nothing(h):
    rc, out, err = coordctl(h, "create", "/a", "-", input="x" * (LIMIT + 1))
    assert rc == EX_INVALID, err
    assert "maxDataBytes" in err
    assert not exists(h, "/a")


def test_set_over_max_data_bytes_fails_with_exit_6_and_keeps_old_data(h):
    ok(h, "create", "/a", "old")
    rc, _, err = coordctl(h, "set", "/a", "-", input="x" * (LIMIT + 1))
    assert rc == EX_INVALID, err
    assert get(h, "/a") == "old"
    assert stat(h, "/a")["dataVersion"] == 0


def test_append_past_max_data_bytes_fails_with_exit_6_and_keeps_old_data(h):
    ok(h, "create", "/a", "-", input="x" * (LIMIT - 10))
    rc, _, err = coordctl(h, "append", "/a", "-", input="y" * 11)
    assert rc == EX_INVALID, err
    assert get(h, "/a") == "x" * (LIMIT - 10)
    ok(h, "append", "/a", "-", input="y" * 10)
    assert stat(h, "/a")["dataLength"] == LIMIT


def test_multi_with_one_oversize_op_applies_nothing(h):
    big = "z" * (LIMIT + 1)
    rc, _, err = coordctl(h, "multi", "create /a small", "create /b " + big)
    assert rc == EX_INVALID, err
    assert not exists(h, "/a") and not exists(h, "/b")


def test_data_far_over_the_limit_fails_cleanly_and_server_keeps_serving(h):
    # 2 MiB: past the server's frame limit too (maxDataBytes + 1 MiB); must not loop or hang.
    rc, _, err = coordctl(h, "create", "/huge", "-", input="h" * (2 << 20), timeout=20)
    assert rc == EX_INVALID, err
    assert not exists(h, "/huge")
    ok(h, "create", "/after", "fine")
    assert get(h, "/after") == "fine"
