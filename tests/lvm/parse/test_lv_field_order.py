"""The report parser builds ``state.Lv`` positionally (speed, issue 22): its order must be
the class's, or a field added in the middle would shift every later value silently."""

from __future__ import annotations

import dataclasses

from reconciler import state
from reconciler.adapters import lvm


def test_the_parsers_positional_order_is_state_lvs_field_order():
    assert lvm.LV_FIELDS == tuple(f.name for f in dataclasses.fields(state.Lv))
