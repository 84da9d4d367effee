from hypothesis import given
from hypothesis import strategies as st

from exportd.s3.part_buffer import PartBuffer


@given(
    data=st.binary(max_size=200),
    cuts=st.lists(st.integers(1, 60), max_size=12),
    part_size=st.integers(1, 40),
)
def test_parts_are_the_bytes_in_order_cut_at_the_part_size(
    data: bytes, cuts: list[int], part_size: int
) -> None:
    buffer = PartBuffer(part_size)
    parts: list[bytearray] = []
    offset = 0
    for size in [*cuts, len(data)]:
        view = memoryview(data[offset : offset + size])
        offset += len(view)
        while view:
            view = buffer.fill(view)
            if buffer.full:
                parts.append(buffer.take())
    if buffer:
        parts.append(buffer.take(refill=False))
    # Each part handed over keeps its bytes while later ones are written.
    assert b"".join(parts) == data
    assert all(len(p) == part_size for p in parts[:-1])
    assert all(0 < len(p) <= part_size for p in parts)


def test_a_part_taken_is_not_written_to_again() -> None:
    buffer = PartBuffer(4)
    buffer.fill(memoryview(b"abcd"))
    first = buffer.take()
    buffer.fill(memoryview(b"efgh"))
    assert first == b"abcd"
    assert buffer.take() == b"efgh"
