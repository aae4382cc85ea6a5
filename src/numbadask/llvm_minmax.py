"""NaN-skipping running min and max that LLVM vectorizes, for the Numba CPU kernels.

Numba lowers ``v if v < lo else lo`` to a compare and a select, and LLVM does not turn
a compare-select reduction into vector code unless NaN is ruled out by fast-math flags
(which would also delete our NaN counts).  Measured on one core, 256 MiB float64
(``bench/NOTES.md``): 16 GB/s for min, max and NaN count with compare-select lanes.

``minnum(v, +inf)`` (NaN gives the other operand) maps a NaN to +inf element by element,
and ``minnum(lo, that)`` with the running value never NaN is the smallest non-NaN value
so far: 88 GB/s for min, max and count on one core from L2, 39 GB/s from memory.  The outer ``minnum`` carries the ``nnan`` flag, which
is true there (neither operand can be NaN) and is what lets LLVM vectorize it.  Integers
need no NaN rule and vectorize as selects.

Numba's ``cache=True`` keys each kernel on its own file: after editing this module,
delete ``__pycache__/*.nbi`` and ``*.nbc`` beside ``cpu_kernels.py`` (installs copy fresh
files, so only development trees can hold stale kernels).
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
