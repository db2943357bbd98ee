"""JSON (always) and msgpack (extra) serializers behind the Serializer port."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.errors import DecodeError
from pye2.plugins import PluginHost

HOST = PluginHost(entry_points=False).load()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("name", ["json", "msgpack"])
@given(obj=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_round_trip(name: str, obj: dict[str, object]) -> None:
    ser = HOST.serializer(name)
    assert ser.loads(ser.dumps(obj)) == obj


@pytest.mark.parametrize("name", ["json", "msgpack"])
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(name: str, data: bytes) -> None:
    ser = HOST.serializer(name)
    try:
        out = ser.loads(data)
    except DecodeError:
        return
    assert isinstance(out, dict)


def test_json_wire_text_is_python_default_dumps() -> None:
    assert HOST.serializer("json").dumps({"A": "é", "B": [1, 2]}) == b'{"A": "\\u00e9", "B": [1, 2]}'


@pytest.mark.parametrize("data", [b"[1, 2]", b'"x"', b"\xff\xfe", b"{", b"[" * 100000])
def test_json_rejects_non_objects_with_a_reason(data: bytes) -> None:
    with pytest.raises(DecodeError):
        HOST.serializer("json").loads(data)
