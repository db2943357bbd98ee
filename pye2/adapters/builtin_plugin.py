"""Internal plugin: registers pye2's built-in serializers, signers and formatters.

It goes through the same hooks as any third-party plugin (see
:mod:`pye2.plugins.hookspecs`) and can be blocked the same way.
"""

from __future__ import annotations

from pye2.plugins.hookspecs import Register, hookimpl
from pye2.plugins.lazy import lazy


@hookimpl
def pye2_register_serializers(register: Register) -> None:
    register("json", lazy("pye2.adapters.json_serializer", "JsonSerializer"))
    register("msgpack", lazy("pye2.adapters.msgpack_serializer", "MsgpackSerializer"),
             requires=("msgpack",), extra="msgpack")
    register("orjson", lazy("pye2.adapters.orjson_serializer", "OrjsonSerializer"),
             requires=("orjson",), extra="fast")


@hookimpl
def pye2_register_signers(register: Register) -> None:
    register("cryptography", lazy("pye2.adapters.secp256k1", "CryptographyBackend"))
    register("coincurve", lazy("pye2.adapters.coincurve_backend", "CoincurveBackend"),
             requires=("coincurve",), extra="fast")


@hookimpl
def pye2_register_formatters(register: Register) -> None:
    register("default", lazy("pye2.domain.codecs.formatters", "DefaultFormatter"))
    register("aixp1", lazy("pye2.domain.codecs.formatters", "Aixp1Formatter"))
    register("cavi2", lazy("pye2.domain.codecs.formatters", "Cavi2Formatter"))
