"""sigchain.memo.Kept: a memo that never holds more than its limit."""

from sigchain.memo import Kept


def test_a_full_memo_forgets_everything_before_keeping_the_next_value() -> None:
    memo: Kept[int, str] = Kept(3)
    assert [memo.keep(i, str(i)) for i in range(3)] == ["0", "1", "2"]
    assert dict(memo) == {0: "0", 1: "1", 2: "2"}
    assert memo.keep(3, "3") == "3"
    assert dict(memo) == {3: "3"} and memo.get(0) is None
    for i in range(100):
        memo.keep(i, "x")
        assert len(memo) <= 3
