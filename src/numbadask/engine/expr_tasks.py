"""Query planning's expression for a graph of numbadask's own tasks.

dask's ``FromGraph`` expression, keeping our key names: no alias task per block, and
no tokenizing of the (possibly chunk-holding) graph: our names are tokens already.  A
class of this module, not of a function, so that pickle finds it by name when a
distributed scheduler is sent the expression.  Imported only under query planning
(:func:`numbadask.engine.collections.new_array`): it imports dask.array.
"""

from __future__ import annotations

from dask.array._array_expr._io import FromGraph


class FromTasks(FromGraph):
    """``FromGraph`` named by its ``name_prefix`` operand, its layer given whole."""

    @property
    def _name(self) -> str:
        return self.operand("name_prefix")

    def __dask_tokenize__(self) -> str:
        return self.operand("name_prefix")

    def _layer(self) -> dict:
        return self.operand("layer")
