import itertools

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from cases import views
from numbadask.cpu.layout import plan_walk


def walked_values(a: np.ndarray, axes: tuple[int, ...], reduced_inward: bool = False) -> dict[int, list]:
    """Visit the walk in pure Python: output position -> values (the test oracle)."""
    w = plan_walk(a, axes, reduced_inward=reduced_inward)
    grouped: dict[int, list] = {}
    for index in itertools.product(*(range(n) for n in w.sizes)):
        offset = w.base + sum(i * s for i, s in zip(index, w.strides))
        out = sum(i * o for i, o in zip(index, w.out_strides))
        grouped.setdefault(out, []).append(w.buf[offset])
    return grouped


def expected_values(a: np.ndarray, axes: tuple[int, ...]) -> dict[int, list]:
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.moveaxis(a, kept, list(range(len(kept))))
    flat = moved.reshape(int(np.prod([a.shape[i] for i in kept], dtype=int)), -1)
    return {m: list(row) for m, row in enumerate(flat)}


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    view=st.sampled_from(["c", "reversed-strided", "transposed", "sliced", "fortran", "broadcast"]),
    data=st.data(),
)
def test_walk_visits_every_element_once_at_its_output(shape, view, data):
    base = np.arange(np.prod(shape) * 8, dtype=np.float64).reshape(*shape[:-1], shape[-1] * 8)
    base = base.reshape((1,) * (3 - base.ndim) + base.shape)
    a = views(base)[view]
    assume(a.size > 0)  # empty chunks never reach a walk (the caller returns zeros)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, a.ndim - 1)))))
    got = walked_values(a, axes)
    want = expected_values(a, axes)
    assert sorted(got) == sorted(want)
    for m in want:
        assert sorted(got[m]) == sorted(want[m])
    # Reduced axes moved inward: the same values, met by each output in the same order.
    assert walked_values(a, axes, reduced_inward=True) == got


def test_reduced_axes_move_next_to_a_contiguous_kept_row():
    """(time, lat, lon) sliced along lon, reduced over time: walked (lat, time, lon),
    so the kernels fold every time step of a lat row in one visit; contiguous chunks
    and CUDA's walks (no reduced_inward) keep memory order."""
    a = np.zeros((3, 8, 100))[:, :, 1:]
    w = plan_walk(a, (0,), reduced_inward=True)
    assert w.sizes.tolist() == [8, 3, 99] and w.strides.tolist() == [100, 800, 1] and w.out_strides.tolist() == [99, 0, 1]
    assert plan_walk(a, (0,)).sizes.tolist() == [3, 8, 99]
    w = plan_walk(np.zeros((3, 8, 100)), (0,), reduced_inward=True)
    assert w.sizes.tolist() == [3, 800] and w.out_strides.tolist() == [0, 1]
    w = plan_walk(np.zeros((4, 5, 6, 7))[..., 1:], (0, 2), reduced_inward=True)
    assert w.sizes.tolist() == [5, 4, 6, 6] and w.out_strides.tolist() == [6, 0, 0, 1]


def test_contiguous_full_reduction_is_one_axis():
    w = plan_walk(np.zeros((4, 5, 6)), (0, 1, 2))
    assert w.sizes.tolist() == [120] and w.strides.tolist() == [1]


def test_square_chunk_of_c_array_keeps_contiguous_rows_innermost():
    big = np.zeros((8, 16))
    w = plan_walk(big[2:6, 4:8], (0, 1))
    assert w.sizes.tolist() == [4, 4] and w.strides.tolist() == [16, 1]


def test_buffer_is_a_view_not_a_copy():
    a = np.zeros((6, 6))[::2, ::-1]
    w = plan_walk(a, (0,))
    assert np.shares_memory(w.buf, a)
