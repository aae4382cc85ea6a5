"""The source text of the factory's two block-reduction kernels (:mod:`.factory`): the
rows kernel and the column kernel, written out per number of state fields ``k``
(shared-memory arrays need one array per field, each with its own dtype, at compile
time), per count ``U`` of loads in flight per thread and per number of input arrays.

:func:`kernel_source` is the one entry point; the factory compiles what it returns.
"""

from __future__ import annotations


_HEADER = '''
def {name}({inputs}, kept, red, n_out, n_red, aux, {identity}, {partials}, counter, {outs}):
    kept_sizes, {kept_strides}, kept_out = kept
    red_sizes, {red_strides} = red
{shared}
    last = cuda.shared.array(1, int32)
'''


_ROWS = _HEADER + '''
    tid = cuda.threadIdx.x
    bx = cuda.blockIdx.x
    nb = cuda.gridDim.x
    threads = cuda.blockDim.x
    tile = threads * U
    for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
{starts}
        a = aux[m % aux.shape[0]]
        s = ({typed_identity},)
        r = bx * tile + tid
        # Whole tiles: U loads issued before any is folded.
        while r + (U - 1) * threads < n_red:
{loads}
{steps}
            r += nb * tile
        # The one tile that may be partial.
        for u in range(U):
            q = r + u * threads
            if q < n_red:
                s = step(s, {tail_rows}, q, a)
{to_shared}
        cuda.syncthreads()
{tree}
        if nb == 1:
            if tid == 0:
{to_outs}
        else:
            if tid == 0:
{to_partials}
                cuda.threadfence()
                last[0] = cuda.atomic.inc(counter, m, nb - 1) == nb - 1
            cuda.syncthreads()
            if last[0]:
                s = ({typed_identity},)
                b = tid
                while b < nb:
                    s = merge(s, ({from_partials},))
                    b += threads
{to_shared_last}
                cuda.syncthreads()
{tree_last}
                if tid == 0:
{to_outs_last}
        cuda.syncthreads()
'''


_COLUMNS = _HEADER + '''
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TX + tx
    by = cuda.blockIdx.y
    splits = cuda.gridDim.y
    stride = splits * TY
    n_tiles = (n_out + TX - 1) // TX
    for t in range(cuda.blockIdx.x, n_tiles, cuda.gridDim.x):
        m = t * TX + tx
        live = m < n_out
        # A thread past the last output still takes part in the trees and syncs.
        m = m if live else n_out - 1
{starts}
        a = aux[m % aux.shape[0]]
        s = ({typed_identity},)
        r = by * TY + ty
        if live:
            # U rows' loads issued before any is folded.
            while r + (U - 1) * stride < n_red:
{loads}
{steps}
                r += U * stride
            while r < n_red:
                s = step(s, {tail_columns}, r, a)
                r += stride
{to_shared}
        cuda.syncthreads()
{tree}
        if splits == 1:
            if ty == 0 and live:
{to_outs}
        else:
            if ty == 0 and live:
{to_partials}
            cuda.threadfence()
            cuda.syncthreads()
            if tid == 0:
                last[0] = cuda.atomic.inc(counter, t, splits - 1) == splits - 1
            cuda.syncthreads()
            if last[0]:
                s = ({typed_identity},)
                b = ty
                while live and b < splits:
                    s = merge(s, ({from_partials},))
                    b += TY
{to_shared_last}
                cuda.syncthreads()
{tree_last}
                if ty == 0 and live:
{to_outs_last}
        cuda.syncthreads()
'''


# A shared-memory tree: `lane` indexes the threads that merge, `pair` the distance to
# the partner's slot; the width halves from `width` to 1.
_TREE = '''width = {width}
while width > 0:
    if {lane} < width:
        w = merge(({here},), ({there},))
{store}
    cuda.syncthreads()
    width //= 2'''


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _tree(k: int, width: str, lane: str, pair: str) -> str:
    fields = range(k)
    return _TREE.format(
        width=width,
        lane=lane,
        here=", ".join(f"h{i}[tid]" for i in fields),
        there=", ".join(f"h{i}[tid + {pair}]" for i in fields),
        store="\n".join(f"        h{i}[tid] = w[{i}]" for i in fields),
    )


#: What differs between the two kernels' sources: the distance between one thread's
#: loads, the tree (its first width, the merging lanes, the partner's slot), the slot
#: holding the block's state, the block index that numbers partials, the loop indent.
_SHAPES = {
    False: dict(template=_ROWS, spacing="threads", width="threads // 2", lane="tid", pair="width", slot="0", block="bx", indent=12),
    True: dict(template=_COLUMNS, spacing="stride", width="TY // 2", lane="ty", pair="width * TX", slot="tx", block="by", indent=16),
}


def _input_names(n: int) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """The names the source gives each of ``n`` inputs: buffer, base, kept and reduced
    strides, start offset (one input: the names of the single-input kernels)."""
    if n == 1:
        return ["buf"], ["base"], ["kept_strides"], ["red_strides"], ["start"]
    r = range(n)
    return [f"buf{i}" for i in r], [f"base{i}" for i in r], [f"kept_strides{i}" for i in r], [f"red_strides{i}" for i in r], [f"start{i}" for i in r]


def kernel_source(name: str, k: int, loads: int, columns: bool = False, n: int = 1) -> str:
    """The kernel's source for ``k`` state fields, ``loads`` loads per thread and per
    input, and ``n`` inputs read side by side (``step`` takes one value of each)."""
    fields = range(k)
    join = ", ".join
    to_shared = "\n".join(f"h{i}[tid] = s[{i}]" for i in fields)
    bufs, bases, kept_strides, red_strides, starts = _input_names(n)
    common = dict(
        name=name,
        inputs=join(bufs + bases),
        kept_strides=join(kept_strides),
        red_strides=join(red_strides),
        identity=join(f"i{i}" for i in fields),
        typed_identity=join(f"F{i}(i{i})" for i in fields),
        partials=join(f"p{i}" for i in fields),
        outs=join(f"o{i}" for i in fields),
        shared="\n".join(f"    h{i} = cuda.shared.array(THREADS, F{i})" for i in fields),
        from_partials=join(f"p{i}[m, b]" for i in fields),
        to_shared=_indent(to_shared, 8),
        to_shared_last=_indent(to_shared, 16),
        starts="\n".join(f"        {st} = {b} + kept_offset(m, kept_sizes, {ks}, kept_out)" for st, b, ks in zip(starts, bases, kept_strides)),
        tail_rows=join(f"{bf}[U64({st} + reduced_offset(q, red_sizes, {rs}))]" for bf, st, rs in zip(bufs, starts, red_strides)),
        tail_columns=join(f"{bf}[U64({st} + reduced_offset(r, red_sizes, {rs}))]" for bf, st, rs in zip(bufs, starts, red_strides)),
    )
    shape = _SHAPES[columns]
    tree = _tree(k, shape["width"], shape["lane"], shape["pair"])
    spacing, slot, block, pad = shape["spacing"], shape["slot"], shape["block"], " " * shape["indent"]
    value = (lambda u, i: f"v{u}") if n == 1 else (lambda u, i: f"v{u}_{i}")
    return shape["template"].format(
        **common,
        loads="\n".join(
            f"{pad}{value(u, i)} = {bufs[i]}[U64({starts[i]} + reduced_offset(r + {u} * {spacing}, red_sizes, {red_strides[i]}))]"
            for u in range(loads)
            for i in range(n)
        ),
        steps="\n".join(f"{pad}s = step(s, {join(value(u, i) for i in range(n))}, r + {u} * {spacing}, a)" for u in range(loads)),
        tree=_indent(tree, 8),
        tree_last=_indent(tree, 16),
        to_outs="\n".join(f"                o{i}[m] = h{i}[{slot}]" for i in fields),
        to_partials="\n".join(f"                p{i}[m, {block}] = h{i}[{slot}]" for i in fields),
        to_outs_last="\n".join(f"                    o{i}[m] = h{i}[{slot}]" for i in fields),
    )
