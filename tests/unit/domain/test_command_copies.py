"""Payload copies in ``pye2.domain.commands``: JSON-shaped data is copied without
``copy.deepcopy`` (same result, nothing shared), anything else still goes through it,
and an envelope built from an ACTION string owns its payload."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.domain import commands as c
from pye2.domain.profiles import RATIO1
from pye2.errors import CommandError

NOW = 1706628997.123456

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value`` (itself included)."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
    return found


@given(json_values)
def test_json_data_copies_equal_deepcopy_and_share_no_container(value: Any) -> None:
    copied = c._copy(value, "payload")
    assert copied == copy.deepcopy(value)
    originals = {id(x) for x in _containers(value)}
    assert not originals & {id(x) for x in _containers(copied)}


def test_other_types_still_go_through_deepcopy() -> None:
    inner = [1, 2]
    value: dict[Any, Any] = {"tuple": (inner, "x"), "ordered": OrderedDict(a=[3]), "set": {1, 2}, 5: [inner]}
    copied = c._copy(value, "payload")
    assert copied == value
    assert copied["tuple"][0] is not inner and copied["ordered"]["a"] is not value["ordered"]["a"]
    assert type(copied["ordered"]) is OrderedDict


def test_cycles_and_deep_nesting_fall_back_to_deepcopy() -> None:
    loop: list[Any] = []
    loop.append(loop)
    copied = c._copy({"loop": loop}, "payload")
    assert copied["loop"][0] is copied["loop"] and copied["loop"] is not loop
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    assert c._copy(deep, "payload") == deep


def test_an_uncopyable_value_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="cannot be copied"):
        c._copy({"lock": threading.Lock()}, "payload")


def test_an_envelope_from_an_action_owns_its_payload() -> None:
    payload: dict[str, Any] = {"NAME": "p", "PIPELINE_COMMAND": {"GO": True, "COMMAND_PARAMS": {"N": [1, 2]}}}
    env = c.build_envelope("PIPELINE_COMMAND", payload, profile=RATIO1, target_id="n", target_address="0xai_x",
                           initiator_id="me", session_id=None, now=NOW)
    assert env["PAYLOAD"] == payload
    payload["PIPELINE_COMMAND"]["COMMAND_PARAMS"]["N"].append(3)  # the caller changes its dict afterwards
    assert env["PAYLOAD"]["PIPELINE_COMMAND"]["COMMAND_PARAMS"]["N"] == [1, 2]
    env["PAYLOAD"]["NAME"] = "changed"  # and the envelope's changes do not reach the caller
    assert payload["NAME"] == "p"


def test_checks_without_copies_still_refuse_bad_payloads() -> None:
    with pytest.raises(CommandError, match="keys must be strings"):
        c.command_from_action("PIPELINE_COMMAND", {"NAME": "p", "PIPELINE_COMMAND": {}, 5: "x"})
    with pytest.raises(CommandError, match="mapping"):
        c.command_from_action("UPDATE_PIPELINE_INSTANCE", [("NAME", "p")])
    item: dict[str, Any] = {"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i", "INSTANCE_CONFIG": {"a": [1]}}
    batch = c.command_from_action("BATCH_UPDATE_PIPELINE_INSTANCE", [item])
    item["INSTANCE_CONFIG"]["a"].append(2)
    assert batch.payload() == [{"NAME": "p", "SIGNATURE": "S", "INSTANCE_ID": "i", "INSTANCE_CONFIG": {"a": [1]}}]
