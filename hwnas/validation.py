"""One check for every scalar option, one message style: ``{name} must be {requirement}, got {value!r}``.

``name`` is how the user wrote the option: a flag (``--trials``), a field of a file
(``space.yaml: fixed.batch_size``) or a profile parameter (``profile 'cpu-ort': parameter 'threads'``), so the
message says where to look. The checks are strict on type: ``true`` is not an integer, ``1.5`` is not an integer,
``"fast"`` is not a number and ``.inf``/``.nan`` are not finite numbers. A value is shown by :func:`shown`, so
that a megabyte-long string in a file makes a one-line message, not a megabyte one.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any, Iterable, TypeVar

from hwnas.errors import ConfigError

T = TypeVar("T")
#: The longest excerpt of a user's value that a message quotes.
SHOWN_CHARS = 200


_REPR = reprlib.Repr()  # containers abbreviated before they are printed: a million-item list is never formatted
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 20


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` as one readable excerpt: containers abbreviated, the text cut to ``limit`` characters
    (with the length the full representation has) when longer, so that a message about a value stays one
    line whatever a file holds."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of {value.bit_length()} bits"  # too long to print, let alone read
    text = repr(value) if isinstance(value, str) else _REPR.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _fail(error: type[Exception], name: str, requirement: str, value: Any) -> Exception:
    return error(f"{name} must be {requirement}, got {shown(value)}")


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None,
              error: type[Exception] = ConfigError) -> int:
    """``value`` as an int within ``[low, high]`` (either bound optional); ``error`` otherwise.

    An integral float (``2.0``, as YAML may give it) is accepted; bools and non-integral numbers are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(error, name, "an integer", value)
    if not isinstance(value, numbers.Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise _fail(error, name, "an integer", value)
    number = int(value)
    _check_range(number, name, low, high, True, True, error, value)
    return number


def check_float(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                low_inclusive: bool = True, high_inclusive: bool = True,
                error: type[Exception] = ConfigError) -> float:
    """``value`` as a finite float within the bounds (each inclusive unless told otherwise); ``error`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(error, name, "a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise _fail(error, name, "a finite number", value)
    _check_range(number, name, low, high, low_inclusive, high_inclusive, error, value)
    return number


def check_choice(value: Any, name: str, choices: Iterable[T], *, error: type[Exception] = ConfigError) -> T:
    """``value`` when it is one of ``choices``; ``error`` listing them otherwise."""
    allowed = list(choices)
    try:
        if value in allowed:
            return value  # type: ignore[no-any-return]
    except TypeError:  # an unhashable or incomparable value is not a choice
        pass
    raise _fail(error, name, f"one of {allowed}", value)


def _check_range(number: float, name: str, low: float | None, high: float | None, low_inclusive: bool,
                 high_inclusive: bool, error: type[Exception], value: Any) -> None:
    below = low is not None and (number < low or (number == low and not low_inclusive))
    above = high is not None and (number > high or (number == high and not high_inclusive))
    if not (below or above):
        return
    if low is not None and high is not None:
        requirement = f"in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    elif low is not None:
        requirement = f"{'>=' if low_inclusive else '>'} {low}"
    else:
        requirement = f"{'<=' if high_inclusive else '<'} {high}"
    raise _fail(error, name, requirement, value)
