"""NaN-skipping running min and max that LLVM vectorizes, for the Numba CPU kernels.

Numba lowers ``v if v < lo else lo`` to a compare and a select, and LLVM does not turn
a compare-select reduction into vector code unless NaN is ruled out by fast-math flags
(which would also delete our NaN counts).  Measured on one core, 256 MiB float64
(``bench/NOTES.md``): 16 GB/s for min, max and NaN count with compare-select lanes.

``minnum(v, +inf)`` (NaN gives the other operand) maps a NaN to +inf element by element,
and ``minnum(lo, that)`` with the running value never NaN is the smallest non-NaN value
so far: 88 GB/s for min, max and count on one core from L2, 39 GB/s from memory.  The
outer ``minnum`` carries the ``nnan`` flag, which is true there (neither operand can be
NaN) and is what lets LLVM vectorize it.  Integers need no NaN rule and vectorize as
selects.

Contiguous float32 and float64 blocks go first through a loop written here as vector IR
(``vector_low``, ``vector_high``, ``vector_both``): a vector compare-select is what the
x86 ``vminpd`` does, NaN included, so the NaN-skipping min costs one vector operation
instead of two, and the NaN count one compare plus ``popcnt`` instead of three vector
operations.  The scalar loops above finish each block (and do all of the others).

Numba's ``cache=True`` would key each kernel on its own file only; numbadask's cache
locator (:mod:`numbadask.cpu.cache`) keys every kernel on all of the package's
sources, so editing this module recompiles the kernels that call it.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


def _call(builder, name: str, args: list, fastmath: tuple = ()):
    t = args[0].type
    fn = builder.module.declare_intrinsic(name, [t], ir.FunctionType(t, [t] * len(args)))
    return builder.call(fn, args, fastmath=fastmath)


def _running(want_max: bool):
    name, skip_to = ("llvm.maxnum", "-inf") if want_max else ("llvm.minnum", "inf")

    def typer(typingctx, running, value):
        if running != value or not isinstance(running, (types.Float, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            running, value = args
            if isinstance(signature.args[0], types.Float):
                skipped = ir.Constant(running.type, float(skip_to))
                number = _call(builder, name, [value, skipped])
                return _call(builder, name, [running, number], fastmath=("nnan", "nsz"))
            op = ">" if want_max else "<"
            compare = builder.icmp_signed if signature.args[0].signed else builder.icmp_unsigned
            return builder.select(compare(op, value, running), value, running)

        return running(running, value), codegen

    return intrinsic(typer)


#: ``skip_nan_min(lo, v)``: ``v`` if it is a number below ``lo``, else ``lo``
#: (``lo`` must not be NaN; both of one Numba scalar type).
skip_nan_min = _running(want_max=False)
#: ``skip_nan_max(hi, v)``: ``v`` if it is a number above ``hi``, else ``hi``.
skip_nan_max = _running(want_max=True)


# --- a hand-written vector loop for float min and max ----------------------------------
# The loop vectorizer's code for skip_nan_min spends five vector operations per 8
# float64: two ``minnum`` (NaN to +inf, then the running min) and three for the NaN
# count (compare, mask to vector, subtract).  Written as vector IR, a compare-select
# of a value against a running value that is never NaN is one ``vminpd`` (x86 returns
# the running value when the value is NaN), and the count is one ordered compare whose
# mask is counted with ``popcnt`` on the integer ports: two vector operations.  The
# loop reads two streams side by side, as the scalar loops do, each from a 64-byte
# boundary (see _vector_loop).

#: Values per vector: one 64-byte line (LLVM splits it into halves or quarters on
#: machines with narrower vectors).
VECTOR_BYTES = 64
#: Vectors per stream per loop step, each with its own running values.
UNROLL = 2


def _splat(builder, value, lanes: int):
    vector = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _keep_better(builder, op: str, running, value):
    """``value`` where it compares ``op`` (ordered: never for NaN) to ``running``."""
    return builder.select(builder.fcmp_ordered(op, value, running), value, running)


def _lanes_best(builder, op: str, vectors: list):
    """The best lane of the best of ``vectors`` (none holds NaN)."""
    best = vectors[0]
    for vector in vectors[1:]:
        best = _keep_better(builder, op, best, vector)
    lanes = best.type.count
    result = builder.extract_element(best, ir.Constant(ir.IntType(32), 0))
    for lane in range(1, lanes):
        result = _keep_better(builder, op, result, builder.extract_element(best, ir.Constant(ir.IntType(32), lane)))
    return result


def _vector_extremes(keep_low: bool, keep_high: bool):
    """An intrinsic ``(seg, lo, hi) -> (lo, hi, count, start, stop)`` over the vector
    part ``seg[start:stop]`` of a contiguous float block.

    ``lo``/``hi`` must not be NaN; the one not kept comes back as given.  Blocks it
    does not vectorize (integers, strided) come back with ``start == stop == 0``."""
    ops = [op for op, keep in (("<", keep_low), (">", keep_high)) if keep]

    def typer(typingctx, seg, lo, hi):
        if not (isinstance(seg, types.Array) and seg.ndim == 1 and lo == seg.dtype and hi == seg.dtype):
            return None
        signature = types.Tuple((seg.dtype, seg.dtype, types.int64, types.int64, types.int64))(seg, lo, hi)
        vectorized = seg.dtype in (types.float32, types.float64) and seg.layout == "C"

        def codegen(context, builder, signature, args):
            seg_value, lo, hi = args
            if not vectorized:
                zero = context.get_constant(types.int64, 0)
                return context.make_tuple(builder, signature.return_type, [lo, hi, zero, zero, zero])
            array = context.make_array(signature.args[0])(context, builder, seg_value)
            size = builder.extract_value(array.shape, 0)
            results = _vector_loop(builder, array.data, size, lo, hi, ops, signature.args[0].dtype.bitwidth // 8)
            return context.make_tuple(builder, signature.return_type, results)

        return signature, codegen

    return intrinsic(typer)


def _vector_loop(builder, data, size, lo, hi, ops: list, itemsize: int):
    # Two streams of equal length, [start, start + length) and the next length values,
    # from the first value on a 64-byte boundary: aligned loads read 64 x 32 MiB in the
    # machine's fast state at 72-75 GB/s where loads from NumPy's 16-byte aligned
    # buffers (each split over two cache lines) read 63-71 (bench/NOTES.md).
    i64 = ir.IntType(64)
    lanes = VECTOR_BYTES // itemsize
    vector = ir.VectorType(lo.type, lanes)
    step = lanes * UNROLL
    address = builder.ptrtoint(data, i64)
    skip_bytes = builder.and_(builder.neg(address), ir.Constant(i64, VECTOR_BYTES - 1))
    start = builder.select(
        builder.icmp_signed("<=", builder.mul(size, ir.Constant(i64, itemsize)), skip_bytes),
        size,
        builder.udiv(skip_bytes, ir.Constant(i64, itemsize)),
    )
    steps = builder.sdiv(builder.sub(size, start), ir.Constant(i64, 2 * step))
    length = builder.mul(steps, ir.Constant(i64, step))
    starts = {"<": _splat(builder, lo, lanes), ">": _splat(builder, hi, lanes)}

    entry = builder.basic_block
    body = builder.append_basic_block("vector_body")
    after = builder.append_basic_block("vector_after")
    builder.cbranch(builder.icmp_signed(">", steps, ir.Constant(i64, 0)), body, after)

    builder.position_at_end(body)
    k = builder.phi(i64)
    count = builder.phi(i64)
    running = {op: [builder.phi(vector) for _ in range(2 * UNROLL)] for op in ops}
    offset = builder.add(start, builder.mul(k, ir.Constant(i64, step)))
    next_count = count
    next_running = {op: [] for op in ops}
    for slot in range(2 * UNROLL):
        stream, part = divmod(slot, UNROLL)
        index = builder.add(offset, ir.Constant(i64, part * lanes))
        if stream:
            index = builder.add(index, length)
        pointer = builder.bitcast(builder.gep(data, [index], inbounds=True), vector.as_pointer())
        values = builder.load(pointer, align=itemsize)
        for op in ops:
            next_running[op].append(_keep_better(builder, op, running[op][slot], values))
        numbers = builder.bitcast(builder.fcmp_ordered("ord", values, values), ir.IntType(lanes))
        next_count = builder.add(next_count, builder.zext(builder.ctpop(numbers), i64))
    next_k = builder.add(k, ir.Constant(i64, 1))
    k.add_incoming(ir.Constant(i64, 0), entry)
    k.add_incoming(next_k, body)
    count.add_incoming(ir.Constant(i64, 0), entry)
    count.add_incoming(next_count, body)
    for op in ops:
        for phi, value in zip(running[op], next_running[op]):
            phi.add_incoming(starts[op], entry)
            phi.add_incoming(value, body)
    builder.cbranch(builder.icmp_signed("<", next_k, steps), body, after)

    builder.position_at_end(after)

    def merged(first, last):
        phi = builder.phi(first.type)
        phi.add_incoming(first, entry)
        phi.add_incoming(last, body)
        return phi

    total = merged(ir.Constant(i64, 0), next_count)
    last = {op: [merged(starts[op], value) for value in next_running[op]] for op in ops}  # phis first
    final = {op: _lanes_best(builder, op, last[op]) for op in ops}
    stop = builder.add(start, builder.add(length, length))
    return [final.get("<", lo), final.get(">", hi), total, start, stop]


#: ``(seg, lo, hi) -> (lo, hi, count, start, stop)``: a NaN-skipping min
#: (``vector_low``), max (``vector_high``) or both, and the count of non-NaN values, of
#: the vector part ``seg[start:stop]``.
vector_low = _vector_extremes(keep_low=True, keep_high=False)
vector_high = _vector_extremes(keep_low=False, keep_high=True)
vector_both = _vector_extremes(keep_low=True, keep_high=True)
