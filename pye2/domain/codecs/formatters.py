"""Node output formatters (``EE_FORMATTER``): default, aixp1 and cavi2.

A node may reshape what it sends with an output formatter and names it in
``EE_FORMATTER`` (legacy ``SB_IMPLEMENTATION``). Receivers pick the formatter
with :func:`formatter_name` and ``decode`` the message back to the flat view
the rest of pye2 reads (protocol.md section 8). ``encode`` is the node side:
what a node using that formatter sends, before its signature is added.

* ``default``: identity (the node sends the flat view).
* ``aixp1``: the content is nested under ``DATA`` (payload ``_P_*`` keys in
  ``DATA.PLUGIN_META``, ``_C_*`` keys in ``DATA.PIPELINE_META``); routing comes
  from ``EE_PAYLOAD_PATH``.
* ``cavi2``: the legacy camelCase layout (``messageID``, ``type``, ``data``,
  ``metadata``, ``time``, ``sender``...), removed from today's network.

Every decode error is a :class:`~pye2.errors.DecodeError` (the originals
returned ``{}``); an encode input missing what the layout needs raises
:class:`~pye2.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pye2.errors import ConfigError, DecodeError

__all__ = ["Aixp1Formatter", "Cavi2Formatter", "DefaultFormatter", "formatter_name"]

_FORMATTER = "EE_FORMATTER"
_LEGACY = "SB_IMPLEMENTATION"
_PATH = "EE_PAYLOAD_PATH"
_EVENT = "EE_EVENT_TYPE"


def formatter_name(message: Mapping[str, Any]) -> str:
    """The formatter a message declares: ``EE_FORMATTER``, else ``SB_IMPLEMENTATION``, else ``"default"``.

    Names are compared case-insensitively, so the result is lower-cased;
    ``null`` and ``""`` mean no formatter.

    Raises:
        DecodeError: the message is not a mapping or declares a non-string name.
    """
    if not isinstance(message, Mapping):
        raise DecodeError(f"message must be a JSON object, not {type(message).__name__}")
    for key in (_FORMATTER, _LEGACY):
        value = message.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise DecodeError(f"{key} must be a string, got {type(value).__name__}")
        if value.strip():
            return value.strip().lower()
    return "default"


def _as_dict(message: Any) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise DecodeError(f"message must be a JSON object, not {type(message).__name__}")
    if not all(isinstance(key, str) for key in message):
        raise DecodeError("message keys must be strings")
    return dict(message)


def _flat_input(message: Any) -> dict[str, Any]:
    """A copy of a flat message to encode; ConfigError if it is not a str-keyed mapping."""
    if not isinstance(message, Mapping) or not all(isinstance(key, str) for key in message):
        raise ConfigError("message to encode must be a mapping with string keys")
    return dict(message)


def _sub_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what} must be an object, got {type(value).__name__}")
    return dict(value)


class _Named:
    name = ""

    def _check_declared(self, message: Mapping[str, Any]) -> Any:
        """The declared formatter value to write back; refuse another formatter's message."""
        declared = formatter_name(message)
        if declared not in ("default", self.name):
            raise DecodeError(f"message declares formatter {declared!r}, not {self.name!r}")
        value = message.get(_FORMATTER) or message.get(_LEGACY)
        return value if value else self.name

    def _stamp(self, encoded: dict[str, Any]) -> dict[str, Any]:
        encoded[_FORMATTER] = self.name
        encoded[_LEGACY] = self.name
        return encoded

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DefaultFormatter(_Named):
    """The node's own flat output: decoding and encoding are copies."""

    name = "default"

    def decode(self, message: dict[str, object]) -> dict[str, object]:
        """A shallow copy of the message.

        Raises:
            DecodeError: the message is not a mapping.
        """
        return _as_dict(message)

    def encode(self, message: dict[str, object]) -> dict[str, object]:
        """A shallow copy of the message (the node sends the flat view)."""
        return _flat_input(message)


# -- aixp1 -------------------------------------------------------------------

#: Top-level fields the aixp1 layout keeps outside ``DATA``: the envelope a
#: node adds after formatting, and the signature block.
_AIXP1_ENVELOPE = frozenset({
    "EE_ID", "SB_ID", _EVENT, "SB_EVENT_TYPE", _PATH, "EE_TIMESTAMP", "EE_TIMEZONE", "EE_TZ",
    "EE_MESSAGE_ID", "EE_MESSAGE_SEQ", "EE_TOTAL_MESSAGES", "EE_VERSION", "EE_ADDR", "EE_IS_ENCRYPTED",
    _FORMATTER, _LEGACY, "SESSION_ID", "INITIATOR_ID", "INITIATOR_ADDR", "MODIFIED_BY_ID", "MODIFIED_BY_ADDR",
    "EE_SIGN", "EE_SENDER", "EE_HASH", "EE_ETH_SIGN", "EE_ETH_SENDER", "SIGN_CANON_V", "EE_DEST",
})
#: Routing fields rebuilt from ``EE_PAYLOAD_PATH`` on decode, so not sent.
_AIXP1_ROUTING = frozenset({"STREAM_NAME", "SIGNATURE", "INSTANCE_ID"})
_AIXP1_PAYLOAD_ROUTING = frozenset({"STREAM", "PIPELINE"})


def _payload_path(message: Mapping[str, Any]) -> list[Any]:
    path = message.get(_PATH)
    if path is None:
        # No path: keep what the message says rather than erasing it with nulls.
        return [message.get(k) for k in ("EE_ID", "STREAM_NAME", "SIGNATURE", "INSTANCE_ID")]
    if not isinstance(path, list) or len(path) != 4:
        raise DecodeError(f"{_PATH} must be a list of 4 items, got {path!r:.80}")
    return list(path)


class Aixp1Formatter(_Named):
    """The ``aixp1`` layout: content under ``DATA``, routing from ``EE_PAYLOAD_PATH``."""

    name = "aixp1"

    def decode(self, message: dict[str, object]) -> dict[str, object]:
        """Lift ``DATA`` (and, for payloads, its metadata dicts) to the top level.

        ``EE_ID``, ``STREAM_NAME`` (not for heartbeats), ``SIGNATURE`` (when
        the path has a pipeline) and ``INSTANCE_ID`` (when not null) come from
        ``EE_PAYLOAD_PATH``; payloads also get ``STREAM``, ``PIPELINE`` and
        ``PLUGIN_CATEGORY: "general"`` unless ``DATA`` says otherwise.

        Raises:
            DecodeError: no ``EE_EVENT_TYPE``, no ``DATA`` object, or a bad path.
        """
        out = _as_dict(message)
        declared = self._check_declared(out)
        event = out.get(_EVENT)
        if not isinstance(event, str):
            raise DecodeError(f"aixp1 message needs a string {_EVENT}")
        if "DATA" not in out:
            raise DecodeError("aixp1 message has no DATA")
        data = _sub_dict(out.pop("DATA"), "aixp1 DATA")
        node, pipeline, signature, instance = _payload_path(out)
        out["EE_ID"] = node
        if event != "HEARTBEAT":
            out["STREAM_NAME"] = pipeline
        if pipeline is not None:
            out["SIGNATURE"] = signature
        if instance is not None:
            out["INSTANCE_ID"] = instance
        if event == "PAYLOAD":
            out["STREAM"] = pipeline
            out["PIPELINE"] = pipeline
            out.update(_sub_dict(data.pop("PLUGIN_META", None), "aixp1 PLUGIN_META"))
            out.update(_sub_dict(data.pop("PIPELINE_META", None), "aixp1 PIPELINE_META"))
            out["PLUGIN_CATEGORY"] = "general"
        out.update(data)
        out[_FORMATTER] = declared
        return out

    def encode(self, message: dict[str, object]) -> dict[str, object]:
        """Nest a flat message under ``DATA`` as an aixp1 node sends it.

        Envelope and signature fields stay at the top level; ``EE_PAYLOAD_PATH``
        is built from ``EE_ID``/``STREAM_NAME``/``SIGNATURE``/``INSTANCE_ID``
        when missing.

        Raises:
            ConfigError: the message is not a mapping or has no ``EE_EVENT_TYPE``.
        """
        flat = _flat_input(message)
        event = flat.get(_EVENT)
        if not isinstance(event, str):
            raise ConfigError(f"aixp1 encoding needs a string {_EVENT}")
        if flat.get(_PATH) is None:
            flat[_PATH] = [flat.get("EE_ID"), flat.get("STREAM_NAME"), flat.get("SIGNATURE"), flat.get("INSTANCE_ID")]
        out: dict[str, Any] = {k: v for k, v in flat.items() if k in _AIXP1_ENVELOPE}
        rest = {k: v for k, v in flat.items() if k not in _AIXP1_ENVELOPE and k not in _AIXP1_ROUTING}
        data: dict[str, Any] = {}
        if event == "PAYLOAD":
            for key in _AIXP1_PAYLOAD_ROUTING:
                rest.pop(key, None)
            data["PLUGIN_META"] = {k: rest.pop(k) for k in list(rest) if k.startswith("_P_")}
            data["PIPELINE_META"] = {k: rest.pop(k) for k in list(rest) if k.startswith("_C_")}
        data.update(rest)
        out["DATA"] = data
        return self._stamp(out)


# -- cavi2 -------------------------------------------------------------------

_CAVI2_SENDER_ID = "AiXp-ExecutionEngine"
_CAVI2_INSTANCE_PREFIX = "AiXp-EE-v"
#: Envelope fields cavi2 carries inside its own structure (restored on decode).
_CAVI2_STRUCTURED = frozenset({_EVENT, "EE_MESSAGE_ID", "EE_TOTAL_MESSAGES", "EE_TIMESTAMP", "EE_ID"})
_CAVI2_CLEAR_EVENTS = ("heartbeat", "notification")


def _need(container: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in container:
        raise DecodeError(f"cavi2 {what} has no {key!r}")
    return container[key]


class Cavi2Formatter(_Named):
    """The legacy ``cavi2`` camelCase layout."""

    name = "cavi2"

    def decode(self, message: dict[str, object]) -> dict[str, object]:
        """Rebuild upper-case flat keys from the cavi2 structure.

        ``EE_ID`` from ``sender.hostId``, ``EE_TIMESTAMP`` from
        ``time.hostTime``, counters from ``metadata``; for payloads
        ``SIGNATURE`` from ``type``, identifiers, ``value``/``specificValue``
        keys upper-cased, image and metadata dicts re-prefixed ``_C_``/``_P_``.
        Top-level keys starting with ``EE`` (envelope, signature) are kept.

        Raises:
            DecodeError: a part of the structure is missing or of the wrong type.
        """
        src = _as_dict(message)
        declared = self._check_declared(src)
        event = _need(src, "type", "message")
        if not isinstance(event, str):
            raise DecodeError("cavi2 'type' must be a string")
        data = _sub_dict(_need(src, "data", "message"), "cavi2 data")
        metadata = _sub_dict(_need(src, "metadata", "message"), "cavi2 metadata")
        sender = _sub_dict(_need(src, "sender", "message"), "cavi2 sender")
        timing = _sub_dict(_need(src, "time", "message"), "cavi2 time")
        _need(src, "messageID", "message")
        is_payload = event not in _CAVI2_CLEAR_EVENTS
        out: dict[str, Any] = {
            _EVENT: "PAYLOAD" if is_payload else event.upper(),
            "EE_ID": _need(sender, "hostId", "sender"),
            "EE_TIMESTAMP": _need(timing, "hostTime", "time"),
            "EE_TOTAL_MESSAGES": _need(metadata, "sbTotalMessages", "metadata"),
            "EE_MESSAGE_ID": _need(metadata, "sbCurrentMessage", "metadata"),
        }
        metadata.pop("sbTotalMessages")
        metadata.pop("sbCurrentMessage")
        if is_payload:
            out.update(self._decode_payload(event, src, data, metadata))
        for key, value in metadata.items():
            out[str(key).upper()] = value
        for key, value in src.items():
            if key.startswith("EE") and key != _FORMATTER:
                out[key] = value
        out[_FORMATTER] = declared
        return out

    @staticmethod
    def _decode_payload(
        event: str, src: Mapping[str, Any], data: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        ids = _sub_dict(_need(data, "identifiers", "data"), "cavi2 identifiers")
        image = _sub_dict(data.get("img"), "cavi2 img")
        capture = _sub_dict(metadata.pop("captureMetadata", None), "cavi2 captureMetadata")
        plugin = _sub_dict(metadata.pop("pluginMetadata", None), "cavi2 pluginMetadata")
        out: dict[str, Any] = {
            "SIGNATURE": event.upper(),
            "STREAM": _need(ids, "streamId", "identifiers"),
            "INITIATOR_ID": ids.get("initiatorId"),
            "INSTANCE_ID": _need(ids, "instanceId", "identifiers"),
            "SESSION_ID": ids.get("sessionId"),
            "ID": ids.get("payloadId"),
            "ID_TAGS": ids.get("idTags"),
        }
        # The original drops the value prefix: _V_X comes back as X.
        for part in ("value", "specificValue"):
            for key, value in _sub_dict(data.get(part), f"cavi2 {part}").items():
                out[str(key).upper()] = value
        if image.get("id") is not None:
            out["IMG"] = image.get("id")
            out["IMG_HEIGHT"] = image.get("height")
            out["IMG_WIDTH"] = image.get("width")
        out["TIMESTAMP_EXECUTION"] = data.get("time")
        category = src.get("category")
        if isinstance(category, str) and category:
            out["PLUGIN_CATEGORY"] = category
        out.update({f"_C_{k}": v for k, v in capture.items()})
        out.update({f"_P_{k}": v for k, v in plugin.items()})
        return out

    def encode(self, message: dict[str, object]) -> dict[str, object]:
        """Reshape a flat message into the cavi2 layout as a cavi2 node sends it.

        Remaining ``EE*`` envelope fields (path, timezone, version, signature...)
        stay at the top level, as the node adds them after formatting.

        Raises:
            ConfigError: the message lacks a field the layout needs
                (``EE_EVENT_TYPE``, ``EE_ID``, ``EE_TIMESTAMP``, ``EE_MESSAGE_ID``,
                ``EE_TOTAL_MESSAGES``, ``EE_VERSION``; payloads also
                ``SIGNATURE``, ``STREAM``, ``INSTANCE_ID``).
        """
        flat = _flat_input(message)
        missing = [k for k in (*_CAVI2_STRUCTURED, "EE_VERSION") if k not in flat]
        event = flat.get(_EVENT)
        if not isinstance(event, str):
            missing.append(_EVENT)
        is_payload = isinstance(event, str) and event.lower() not in _CAVI2_CLEAR_EVENTS
        if is_payload:
            missing += [k for k in ("SIGNATURE", "STREAM", "INSTANCE_ID") if k not in flat]
        if missing:
            raise ConfigError(f"cavi2 encoding needs {', '.join(sorted(set(missing)))}")
        version = flat["EE_VERSION"]
        out: dict[str, Any] = {k: v for k, v in flat.items() if k.startswith("EE") and k not in _CAVI2_STRUCTURED}
        for key in (_FORMATTER, _LEGACY):
            out.pop(key, None)
        rest = {k: v for k, v in flat.items() if not k.startswith("EE") and k != _LEGACY}
        metadata: dict[str, Any] = {"sbTotalMessages": flat["EE_TOTAL_MESSAGES"], "sbCurrentMessage": flat["EE_MESSAGE_ID"]}
        data: dict[str, Any] = {"identifiers": {}, "value": {}, "specificValue": {}, "time": None,
                                "img": {"id": None, "height": None, "width": None}}
        kind = str(event).lower()
        category = ""
        if is_payload:
            kind = str(rest.pop("SIGNATURE")).lower()
            category = rest.pop("PLUGIN_CATEGORY", "general")
            metadata["captureMetadata"] = {k[3:]: rest.pop(k) for k in list(rest) if k.startswith("_C_")}
            metadata["pluginMetadata"] = {k[3:]: rest.pop(k) for k in list(rest) if k.startswith("_P_")}
            data["identifiers"] = {
                "streamId": rest.pop("STREAM"),
                "instanceId": rest.pop("INSTANCE_ID"),
                "payloadId": rest.pop("ID", None),
                "initiatorId": rest.pop("INITIATOR_ID", None),
                "sessionId": rest.pop("SESSION_ID", None),
                "idTags": rest.pop("ID_TAGS", None),
            }
            data["time"] = rest.pop("TIMESTAMP_EXECUTION", None)
            data["img"] = {"id": rest.pop("IMG", None), "height": rest.pop("IMG_HEIGHT", None),
                           "width": rest.pop("IMG_WIDTH", None)}
            data["value"] = {k[3:].lower(): rest.pop(k) for k in list(rest) if k.startswith("_V_")}
            data["specificValue"] = {k.lower(): v for k, v in rest.items()}
        else:
            metadata.update({k.lower(): v for k, v in rest.items()})
        out.update({
            "messageID": flat["EE_MESSAGE_ID"],
            "type": kind,
            "category": category,
            "version": version,
            "data": data,
            "metadata": metadata,
            "time": {"deviceTime": "", "hostTime": flat["EE_TIMESTAMP"], "internetTime": ""},
            "sender": {"id": _CAVI2_SENDER_ID, "instanceId": f"{_CAVI2_INSTANCE_PREFIX}{version}",
                       "hostId": flat["EE_ID"]},
            "demoMode": False,
        })
        return self._stamp(out)
