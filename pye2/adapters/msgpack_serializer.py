"""msgpack serializer (extra ``msgpack``)."""

from __future__ import annotations

from collections.abc import Mapping

from pye2.errors import DecodeError, SerializerUnavailable

__all__ = ["MsgpackSerializer"]


class MsgpackSerializer:
    """Binary msgpack of one map with string keys."""

    name = "msgpack"
    content_type = "application/msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SerializerUnavailable("msgpack serializer needs msgpack: pip install 'pye2[msgpack]'") from exc
        self._msgpack = msgpack

    def dumps(self, obj: Mapping[str, object]) -> bytes:
        try:
            out: bytes = self._msgpack.packb(dict(obj), use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DecodeError(f"cannot encode message as msgpack: {exc}") from exc
        return out

    def loads(self, data: bytes) -> dict[str, object]:
        try:
            obj = self._msgpack.unpackb(data, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises many unrelated types
            raise DecodeError(f"message is not valid msgpack: {exc!r}") from exc
        if not isinstance(obj, dict):
            raise DecodeError(f"message is a msgpack {type(obj).__name__}, not a map")
        return obj
