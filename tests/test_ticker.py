"""Progress lines: silent for short work, one line every few seconds for long work, and a last line."""
from dfsweep.ticker import Ticker


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _run(seconds_per_item: float, n: int = 10):
    clock, lines = Clock(), []
    t = Ticker(n, "decoding", every_s=5, quiet_s=2, emit=lines.append, clock=clock)
    for _ in range(n):
        clock.t += seconds_per_item
        t.tick()
    t.close()
    return lines


def test_short_work_prints_nothing():
    assert _run(0.1) == []


def test_long_work_prints_every_few_seconds_and_at_the_end():
    lines = _run(1.5)          # 15 s: first line after 2 s, then every 5 s, then the last
    assert lines[0] == "decoding: 2/10 (20%), 3s"
    assert lines[-1] == "decoding: 10/10 (100%), 15s"
    assert 3 <= len(lines) <= 5
