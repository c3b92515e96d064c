"""Checks of parameter values, one rule each, with one clear ``ValueError`` message.

An integer parameter is a Python ``int`` or a NumPy integer, never a ``bool`` (``True`` is an ``int`` to Python,
but ``n_models=True`` is a mistake, not 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer: a Python ``int`` or a NumPy integer, not a ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def require_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None,
                reason: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (:func:`is_integer`) in ``[minimum, maximum]`` (a bound that is
    None is open); otherwise ``ValueError("<name> must be an integer >= <minimum>, got <value>[: <reason>]")``.

    Parameters
    ----------
    name : the parameter as the caller knows it (``"n_models"``, ``"grid seed"``).
    value : the value to check.
    minimum, maximum : inclusive bounds.
    reason : why the bounds are what they are, appended to the message.
    """
    if not is_integer(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            wanted = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            wanted = f"an integer >= {minimum}"
        elif maximum is not None:
            wanted = f"an integer <= {maximum}"
        else:
            wanted = "an integer"
        raise ValueError(f"{name} must be {wanted}, got {value!r}" + (f": {reason}" if reason else ""))
    return int(value)


def optional_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """None as it is, anything else through :func:`require_int`."""
    return None if value is None else require_int(name, value, minimum, maximum)
