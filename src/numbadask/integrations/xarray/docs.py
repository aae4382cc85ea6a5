"""The ``.nd`` accessor's docstrings: the parameter texts its methods share, and
:func:`method_doc`, which assembles a method's numpydoc docstring from them.
"""

from __future__ import annotations





DIM = """dim : str, list of str, ``...`` or None, optional
        Dimension(s) to reduce; None (default) or ``...``: all of them."""


SKIPNA = """skipna : bool or None, optional
        Skip NaN; None (default): skip them in float data, as xarray does."""


KEEP = """keep_attrs : bool or None, optional
        Keep the attributes; None (default): xarray's default for reductions
        (``xr.set_options(keep_attrs=...)``).
    keepdims : bool, optional
        Keep the reduced dimensions with length 1 (their coordinates are dropped)."""


PASS = """split_every, device
        Passed to numbadask (see :func:`numbadask.sum`)."""


def method_doc(summary: str, *parameters: str, returns: str = "", example: str = "") -> str:
    body = "\n    ".join(parameters + (KEEP, PASS))
    doc = f"""{summary}

    Parameters
    ----------
    {body}
    """
    if returns:
        doc += f"""
    Returns
    -------
    {returns}
    """
    if example:
        doc += f"""
    Examples
    --------
{example}
    """
    return doc


DDOF = """ddof : int or float, optional
        Delta degrees of freedom: the divisor is ``N - ddof`` (default 0)."""


EXAMPLE_ARRAY = """    >>> import numpy as np, xarray as xr, numbadask.xarray
    >>> a = xr.DataArray([[1.0, 5.0, np.nan], [3.0, 2.0, 4.0]], dims=("y", "x"))"""


MOMENTS_PARAMETERS = (
    DIM,
    SKIPNA,
    """ddof : int or float, optional
        Delta degrees of freedom of ``var`` and ``std`` (default 0).""",
)
