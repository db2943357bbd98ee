"""Property tests of the pure codecs.

* Round trips: custom code, compressed text, heartbeats (v1 and v2), aixp1 and
  cavi2 formatters. These are paired with the byte-exact vector tests in
  tests/unit/domain, so a symmetric bug cannot hide here.
* Robustness: arbitrary bytes, text and JSON fed to every decoder raise only
  pye2 errors, never a bare KeyError/TypeError/zlib.error/binascii.Error.
* A heartbeat whose ENCODED_DATA inflates to 1 GiB is refused with
  DecompressionBomb without ever being allocated.
"""

from __future__ import annotations

import base64
import json
import string
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pye2.domain.codecs.checker import check_code
from pye2.domain.codecs.code import base64_to_code, code_to_base64, compress_text, decompress_text
from pye2.domain.codecs.formatters import Aixp1Formatter, Cavi2Formatter, DefaultFormatter, formatter_name
from pye2.domain.codecs.heartbeat import decode_heartbeat, encode_heartbeat, summarize_heartbeat
from pye2.domain.commands import command_from_action
from pye2.domain.pipeline import PipelineConfig, parse_instance_handle
from pye2.errors import DecompressionBomb, Pye2Error

FORMATTERS = (DefaultFormatter(), Aixp1Formatter(), Cavi2Formatter())

# -- strategies ------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=8)
anything = json_values | st.binary(max_size=200) | st.text()
upper_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True)
names = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


base64ish = (
    st.text(max_size=60)
    | st.binary(max_size=200).map(_b64)
    | st.binary(max_size=200).map(lambda b: _b64(zlib.compress(b)))
    | st.text(max_size=200).map(compress_text)
    | json_values.map(lambda v: compress_text(json.dumps(v)))
)


def only_pye2_errors(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; a pye2 error is fine, any other exception fails the test."""
    try:
        return fn(*args)
    except Pye2Error:
        return None


# -- round trips -----------------------------------------------------------------------

@given(st.text())
def test_code_round_trip(code: str) -> None:
    assert base64_to_code(code_to_base64(code)) == code
    assert base64_to_code(code_to_base64(code, compress=False), decompress=False) == code
    assert decompress_text(compress_text(code)) == code


@given(json_objects, json_objects)
def test_v2_heartbeat_round_trip(status: dict[str, Any], envelope: dict[str, Any]) -> None:
    message = {**envelope, **encode_heartbeat(status)}
    wire = json.loads(json.dumps(message))
    assert decode_heartbeat(wire) == {**wire, **json.loads(json.dumps(status))}


@given(json_objects)
def test_v1_heartbeat_round_trip(status: dict[str, Any]) -> None:
    body = encode_heartbeat(status, version="v1")
    assert decode_heartbeat(body) == {**status, "HEARTBEAT_VERSION": "v1"}


@st.composite
def flat_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A flat node message whose routing fields agree with its EE_PAYLOAD_PATH."""
    event = draw(st.sampled_from(["HEARTBEAT", "NOTIFICATION", "PAYLOAD"]))
    node = draw(names)
    extras = draw(st.dictionaries(upper_names.filter(lambda k: not k.startswith(("EE", "SB", "_V_"))),
                                  json_values, max_size=6))
    for key in ("STREAM_NAME", "SIGNATURE", "INSTANCE_ID", "STREAM", "PIPELINE", "PLUGIN_CATEGORY", "IMG",
                "IMG_HEIGHT", "IMG_WIDTH", "ID", "ID_TAGS", "INITIATOR_ID", "SESSION_ID", "TIMESTAMP_EXECUTION"):
        extras.pop(key, None)
    flat: dict[str, Any] = {
        "EE_ID": node, "EE_EVENT_TYPE": event, "EE_TIMESTAMP": draw(st.text(max_size=10)),
        "EE_MESSAGE_ID": draw(st.text(max_size=10)), "EE_TOTAL_MESSAGES": draw(st.integers(0, 10**6)),
        "EE_VERSION": draw(st.text(max_size=8)), **extras,
    }
    if event == "HEARTBEAT":
        flat["EE_PAYLOAD_PATH"] = [node, None, None, None]
        return flat
    pipeline, signature, instance = draw(names), draw(upper_names), draw(names)
    if event == "NOTIFICATION":
        pipeline = draw(st.none() | st.just(pipeline))
        signature = draw(st.none() | st.just(signature)) if pipeline else None
        instance = draw(st.none() | st.just(instance)) if signature else None
        flat["STREAM_NAME"] = pipeline
        if pipeline is not None:
            flat["SIGNATURE"] = signature
        if instance is not None:
            flat["INSTANCE_ID"] = instance
    else:
        flat.update(STREAM_NAME=pipeline, SIGNATURE=signature, INSTANCE_ID=instance, STREAM=pipeline,
                    PIPELINE=pipeline, PLUGIN_CATEGORY=draw(names), ID=draw(st.integers(0, 99)),
                    ID_TAGS=[], INITIATOR_ID=draw(names), SESSION_ID=draw(st.none() | names),
                    TIMESTAMP_EXECUTION=draw(st.text(max_size=10)))
        if draw(st.booleans()):
            flat.update(IMG=draw(names), IMG_HEIGHT=draw(st.integers(1, 999)), IMG_WIDTH=draw(st.integers(1, 999)))
    flat["EE_PAYLOAD_PATH"] = [node, pipeline, signature, instance]
    return flat


@given(flat_messages())
def test_aixp1_round_trip(flat: dict[str, Any]) -> None:
    fmt = Aixp1Formatter()
    wire = json.loads(json.dumps(fmt.encode(flat)))
    assert formatter_name(wire) == "aixp1"
    assert fmt.decode(wire) == {**flat, "EE_FORMATTER": "aixp1", "SB_IMPLEMENTATION": "aixp1"}


@given(flat_messages())
def test_cavi2_round_trip(flat: dict[str, Any]) -> None:
    fmt = Cavi2Formatter()
    wire = json.loads(json.dumps(fmt.encode(flat)))
    assert formatter_name(wire) == "cavi2"
    assert wire["sender"]["hostId"] == flat["EE_ID"]
    # Upper-case keys, no _V_ values and no null IMG: nothing cavi2 loses.
    assert fmt.decode(wire) == {**flat, "EE_FORMATTER": "cavi2"}


# -- robustness: arbitrary input raises only pye2 errors -------------------------------

@given(anything)
def test_code_decoders_raise_only_pye2_errors(value: Any) -> None:
    only_pye2_errors(base64_to_code, value)
    only_pye2_errors(decompress_text, value)


@given(base64ish)
def test_code_decoders_on_base64ish_text(text: str) -> None:
    decoded = only_pye2_errors(lambda t: base64_to_code(t, max_size=4096), text)
    assert decoded is None or isinstance(decoded, str)


@given(st.text())
def test_checker_never_raises(code: str) -> None:
    errors = check_code(code)
    assert isinstance(errors, dict)
    assert all(isinstance(k, str) and isinstance(v, list) and v for k, v in errors.items())


@given(json_values | st.binary(max_size=100))
def test_heartbeat_decoders_on_any_json(value: Any) -> None:
    view = only_pye2_errors(decode_heartbeat, value)
    assert view is None or isinstance(view, dict)
    only_pye2_errors(summarize_heartbeat, value)


@given(base64ish, st.sampled_from(["v2", "v1", None, "v3", 2]), json_objects)
def test_heartbeat_decoder_on_hostile_v2(encoded: str, version: Any, outer: dict[str, Any]) -> None:
    message = {**outer, "HEARTBEAT_VERSION": version, "ENCODED_DATA": encoded}
    view = only_pye2_errors(lambda m: decode_heartbeat(m, max_inflated=4096), message)
    if view is not None:
        only_pye2_errors(summarize_heartbeat, view)


structured_keys = st.sampled_from([
    "EE_EVENT_TYPE", "EE_PAYLOAD_PATH", "EE_FORMATTER", "SB_IMPLEMENTATION", "DATA", "EE_ID", "messageID", "type",
    "category", "version", "data", "metadata", "time", "sender", "demoMode", "identifiers", "img", "hostId",
    "hostTime", "sbTotalMessages", "sbCurrentMessage", "captureMetadata", "pluginMetadata", "PLUGIN_META",
    "PIPELINE_META", "value", "specificValue", "streamId", "instanceId",
])
structured = st.recursive(
    scalars | st.sampled_from(["HEARTBEAT", "PAYLOAD", "NOTIFICATION", "heartbeat", "aixp1", "cavi2"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(structured_keys, children, max_size=8),
    max_leaves=30,
)


@given(json_values | structured)
def test_formatters_raise_only_pye2_errors(value: Any) -> None:
    only_pye2_errors(formatter_name, value)
    for fmt in FORMATTERS:
        decoded = only_pye2_errors(fmt.decode, value)
        assert decoded is None or isinstance(decoded, dict)
        only_pye2_errors(fmt.encode, value)


pipeline_like = st.fixed_dictionaries(
    {},
    optional={
        "NAME": json_values | names, "TYPE": json_values | names, "SESSION_ID": json_values,
        "PLUGINS": st.lists(st.fixed_dictionaries({}, optional={
            "SIGNATURE": json_values | names,
            "INSTANCES": st.lists(st.dictionaries(st.sampled_from(["INSTANCE_ID", "X"]), json_values | names),
                                  max_size=3) | json_values,
        }) | json_values, max_size=3) | json_values,
        "URL": json_values,
    },
)


@given(json_values | pipeline_like)
def test_pipeline_parser_raises_only_pye2_errors(value: Any) -> None:
    pipe = only_pye2_errors(PipelineConfig.from_dict, value)
    if pipe is not None:
        assert PipelineConfig.from_dict(pipe.to_dict()) == pipe


@given(st.text() | json_values)
def test_handle_parser_raises_only_pye2_errors(value: Any) -> None:
    handle = only_pye2_errors(parse_instance_handle, value)
    if handle is not None:
        assert str(handle) == value


@given(st.text(max_size=40) | json_values, json_values)
def test_command_validation_raises_only_pye2_errors(action: Any, payload: Any) -> None:
    only_pye2_errors(command_from_action, action, payload)


# -- zip bomb --------------------------------------------------------------------------

GIB = 1 << 30


@pytest.fixture(scope="module")
def gigabyte_bomb() -> str:
    """ENCODED_DATA that inflates to 1 GiB of zeros, compressed in 1 MiB chunks (about 1 MB)."""
    deflate = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [deflate.compress(chunk) for _ in range(GIB // len(chunk))]
    parts.append(deflate.flush())
    return _b64(b"".join(parts))


def test_gigabyte_heartbeat_is_refused_without_inflating_it(gigabyte_bomb: str) -> None:
    message = {"EE_ID": "n", "HEARTBEAT_VERSION": "v2", "ENCODED_DATA": gigabyte_bomb}
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBomb):
            decode_heartbeat(message)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 128 * 1024 * 1024, f"peak allocation {peak} bytes while refusing the bomb"


def test_gigabyte_code_is_refused(gigabyte_bomb: str) -> None:
    with pytest.raises(DecompressionBomb):
        base64_to_code(gigabyte_bomb)
