"""Writes held while a tracking store is down, written in order when it answers again."""
import pytest

from dfsweep.held_writes import HeldWrites


class Store:
    """A store that can be down: writes append to `rows`, or raise what a dead server's client raises."""
    def __init__(self):
        self.up, self.rows, self.calls = True, [], 0

    def writer(self, row):
        def write():
            self.calls += 1
            if not self.up:
                raise ConnectionRefusedError("Connection refused")
            self.rows.append(row)
        return write


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def _held(clock):
    return HeldWrites(lambda e: isinstance(e, OSError), retry_every_s=5, clock=clock)


def test_writes_go_through_while_the_store_answers():
    store, held = Store(), _held(Clock())
    for i in range(3):
        held.write("t1", store.writer(i))
    assert store.rows == [0, 1, 2] and held.pending() == set()


def test_a_store_that_is_down_holds_writes_in_order_and_gets_them_when_back(caplog):
    store, clock = Store(), Clock()
    held = _held(clock)
    held.write("t1", store.writer("start t1"))
    store.up = False
    held.write("t1", store.writer("epoch 1"))
    held.write("t2", store.writer("start t2"))
    assert store.calls == 2                      # not retried on every event: once per retry_every_s
    assert held.pending() == {"t1", "t2"} and "did not answer" in caplog.text
    store.up = True
    clock.t += 5
    held.write("t1", store.writer("epoch 2"))
    assert store.rows == ["start t1", "epoch 1", "start t2", "epoch 2"] and held.pending() == set()
    assert "answers again; 3 held writes written" in caplog.text


def test_a_refused_write_is_dropped_and_does_not_block_the_rest(caplog):
    store = Store()
    held = HeldWrites(lambda e: isinstance(e, OSError), clock=Clock())

    def refused():
        raise ValueError("INVALID_PARAMETER_VALUE: metric name too long")
    held.write("t1", refused)
    held.write("t1", store.writer("epoch 1"))
    assert store.rows == ["epoch 1"] and held.pending() == set() and "refused and dropped" in caplog.text


def test_settle_waits_for_the_store_then_names_what_it_never_took():
    store, clock = Store(), Clock()
    held = _held(clock)
    store.up = False
    held.write("t1", store.writer("end t1"))
    held.write("parent", store.writer("end parent"))
    assert held.settle(60, sleep=clock.sleep) is False and clock.t == pytest.approx(60)
    assert held.pending() == {"t1", "parent"}
    store.up = True
    assert held.settle(60, sleep=clock.sleep) is True and store.rows == ["end t1", "end parent"]
