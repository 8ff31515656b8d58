"""dualnet.errors' one integer check (whole_number, positive_int), which every count, size and index
dualnet takes goes through."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualnet.errors import positive_int, whole_number


@settings(max_examples=50)
@given(st.integers(-5, 20), st.integers(-3, 5), st.one_of(st.none(), st.integers(0, 12)),
       st.sampled_from([int, np.int32, np.int64, np.uint8]))
def test_an_integer_of_any_integer_type_is_accepted_exactly_within_its_bounds(n, lo, hi, kind):
    if kind is np.uint8 and n < 0:
        n = -n
    got = whole_number(kind(n), lo, hi)
    inside = n >= lo and (hi is None or n <= hi)
    assert got == (n if inside else None) and (got is None or type(got) is int)


@pytest.mark.parametrize("value", [True, False, 2.0, 3.5, "4", None, np.float32(2), [3], np.array(3)])
def test_bools_floats_strings_and_arrays_are_not_whole_numbers(value):
    assert whole_number(value, 0) is None


def test_positive_int_names_where_what_and_the_value():
    assert positive_int(np.int64(7), "epochs", "fit") == 7
    with pytest.raises(ValueError, match=r"^fit: epochs must be a positive integer, got 0$"):
        positive_int(0, "epochs", "fit")
    with pytest.raises(ValueError, match=r"^Conv2d: groups must be a positive int, got True$"):
        positive_int(True, "groups", "Conv2d", noun="int")
