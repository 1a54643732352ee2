"""A cache hint for compiled loops: start fetching a row of an array that the loop will read soon,
so that its miss overlaps with work in between (LLVM's `llvm.prefetch`, a read for data,
high locality). A hint only: it changes no result, only when the row arrives."""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic


@intrinsic
def prefetch_row(typingctx, arr, row):  # type: ignore[no-untyped-def]
    """Hint that row `row` of the C-contiguous array `arr` (its element, if 1-D) will be read. The
    address is computed without a bounds check, and nothing is read from it.

    A row of a 2-D array is hinted whole up to three cache lines: its first byte's line, the line
    64 bytes on, and its last byte's line (a 13-column int64 row is 104 bytes, on two or three lines:
    hinting its first line alone left a read of its 11th column to miss). Hints that land on a line
    already asked for cost an instruction each and no memory traffic."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        index = [args[1]] + [zero] * (aryty.ndim - 1)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # the typed-pointer name: LLVM before 15 takes it as is, later ones remangle it to .p0
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8")
        first = builder.bitcast(ptr, i8p)
        builder.call(fn, [first, i32(0), i32(3), i32(1)])
        if aryty.ndim >= 2:
            stride = cgutils.unpack_tuple(builder, ary.strides, aryty.ndim)[0]
            last = builder.sub(stride, stride.type(1))
            nxt = builder.select(builder.icmp_signed("<", last, last.type(64)), last, last.type(64))
            builder.call(fn, [builder.gep(first, [nxt]), i32(0), i32(3), i32(1)])
            builder.call(fn, [builder.gep(first, [last]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(arr, row), codegen
