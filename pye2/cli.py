"""The ``pye2`` command line (also ``python -m pye2``).

Subcommands, one function each (``cmd_<name>``), registered in
:func:`build_parser` so new ones are one function and one ``add_parser`` away::

    pye2 keys new [--out PATH] [--password-env VAR]   write a 0600 PEM, print its addresses
    pye2 keys address PATH [--password-env VAR]        print the addresses of a key file
    pye2 sign [--key PATH] [--profile aixp|ratio1] [FILE|-]   JSON in, signed JSON out
    pye2 verify [--profile aixp|ratio1] [FILE|-]               print the sender, or exit 1
    pye2 selftest                                       a short self-checking tour of the core
    pye2 demo | sim ...                                 from plugins (the simulator registers them)
    pye2 nodes | pipelines | archive | watch | exec | doctor   the network (pye2.cli_net)

Exit codes: 0 success, 1 failure (invalid signature, bad input, key file
problem), 2 usage error. Key material is never printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pye2._version import __version__
from pye2.cli_capture import add_commands as add_capture_commands
from pye2.errors import Pye2Error, SignatureInvalid
from pye2.wire import (
    AIXP,
    RATIO1,
    Identity,
    WireProfile,
    decrypt_command,
    encrypt_command,
    sign_message,
    verify_message,
)

__all__ = ["DEFAULT_KEY_FILE", "build_parser", "main"]

log = logging.getLogger(__name__)

#: Key file used by ``keys new`` and ``sign`` when no path is given.
DEFAULT_KEY_FILE = "pye2_key.pem"
_PROFILES = {"aixp": AIXP, "ratio1": RATIO1}


class CliError(Exception):
    """A failure reported to the user as ``error: ...`` with exit code 1."""


# -- helpers ------------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str | None:
    var = getattr(args, "password_env", None)
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise CliError(f"environment variable {var} (from --password-env) is not set")
    return value


def _read_json(source: str) -> dict[str, Any]:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {source}: {exc}") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{'stdin' if source == '-' else source} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CliError(f"expected a JSON object, got a JSON {type(obj).__name__}")
    return obj


def _print_addresses(identity: Identity, out: TextIO) -> None:
    print(f"AIXP   address: {identity.address(AIXP)}", file=out)
    print(f"RATIO1 address: {identity.address(RATIO1)}", file=out)
    print(f"ETH    address: {identity.eth_address}", file=out)


# -- subcommands --------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace) -> int:
    """Generate an identity, write it as a 0600 PEM, print its addresses."""
    identity = Identity.generate()
    path = identity.save(args.out, _password(args))
    print(f"wrote {path} (mode 0600{', encrypted' if args.password_env else ''})")
    _print_addresses(identity, sys.stdout)
    return 0


def cmd_keys_address(args: argparse.Namespace) -> int:
    """Print the addresses of an existing key file."""
    _print_addresses(Identity.load(args.path, _password(args)), sys.stdout)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    """Sign a JSON object with a key file and print the signed JSON."""
    identity = Identity.load(args.key, _password(args))
    signed = sign_message(_read_json(args.file), identity, profile=args.profile)
    print(json.dumps(signed))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify a signed JSON object; print its sender, or the reason and exit 1."""
    message = _read_json(args.file)
    try:
        sender = verify_message(message, profile=args.profile, json_native=True)
    except SignatureInvalid as exc:
        print(f"invalid: {exc.reason}", file=sys.stderr)
        return 1
    print(sender)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """A self-checking tour: identity, signed command, verification, tampering, heartbeat."""
    failures = 0

    def step(text: str) -> None:
        print(f"- {text}")

    def fail(text: str) -> None:
        nonlocal failures
        failures += 1
        print(f"  !! {text}")

    me, node = Identity.generate(), Identity.generate()
    step(f"generated a throw-away identity {me.address(AIXP)} (RATIO1: {me.address(RATIO1)})")
    command = {"EE_ID": "demo-node", "ACTION": "UPDATE_CONFIG", "INITIATOR_ID": "pye2-demo",
               "PAYLOAD": {"NAME": "demo-pipe", "TYPE": "Void", "PLUGINS": [], "PROCESS_DELAY": 1.0}}
    signed: dict[str, Any] = {}
    for profile in (AIXP, RATIO1):
        signed = sign_message(command, me, profile=profile)
        added = ", ".join(k for k in signed if k not in command)
        sender = verify_message(signed, profile=profile)
        step(f"[{profile.name}] signed UPDATE_CONFIG (added {added}); "
             f"EE_HASH {signed['EE_HASH'][:16]}...; verified, sender {sender}")
        if sender != me.address(profile):
            fail("verified sender differs from the signer")

    tampered = copy.deepcopy(signed)
    tampered["PAYLOAD"]["NAME"] = "someone-elses-pipe"
    forged = sign_message(command, node, profile=RATIO1)
    forged["EE_SENDER"] = me.address(RATIO1)
    for what, message in (("tampered copy (PAYLOAD.NAME changed)", tampered),
                          ("forged copy (signed by another key)", forged)):
        try:
            verify_message(message, profile=RATIO1)
        except SignatureInvalid as exc:
            step(f"{what} rejected: {exc.reason}")
        else:
            fail(f"{what} was accepted")

    sealed = sign_message({**encrypt_command(command, sender=me, receivers=[node.address(RATIO1)]),
                           "EE_DEST": node.address(RATIO1)}, me, profile=RATIO1)
    verify_message(sealed, profile=RATIO1)
    clear = decrypt_command(sealed, receiver=node)
    step(f"encrypted the command for {node.address(RATIO1)[:16]}...: ACTION travels only in "
         f"EE_ENCRYPTED_DATA ({len(sealed['EE_ENCRYPTED_DATA'])} chars); the node decrypts ACTION={clear['ACTION']}")
    if clear.get("PAYLOAD") != command["PAYLOAD"]:
        fail("decrypted payload differs")

    failures += _demo_heartbeat(node, step, fail)
    print("demo finished: " + ("all checks passed" if failures == 0 else f"{failures} check(s) FAILED"))
    return 0 if failures == 0 else 1


def _demo_heartbeat(node: Identity, step: Callable[[str], None], fail: Callable[[str], None]) -> int:
    try:
        from pye2.wire import decode_heartbeat, encode_heartbeat
    except ImportError:
        step("heartbeat codec not available in this build; skipped")
        return 0
    status = {"EE_ID": "demo-node", "CONFIG_STREAMS": [{"NAME": "demo-pipe", "TYPE": "Void"}],
              "CPU_USED": 12.5, "NR_PAYLOADS": 3}
    body = encode_heartbeat(status)
    message = sign_message({"EE_ID": "demo-node", "EE_EVENT_TYPE": "HEARTBEAT", **body}, node, profile=RATIO1)
    sender = verify_message(message, profile=RATIO1)
    view = decode_heartbeat(message)
    step(f"heartbeat from {sender[:16]}... ({len(body.get('ENCODED_DATA', ''))} chars of ENCODED_DATA) decodes to "
         f"pipelines {[p['NAME'] for p in view.get('CONFIG_STREAMS', [])]}, CPU_USED {view.get('CPU_USED')}")
    if view.get("CONFIG_STREAMS") != status["CONFIG_STREAMS"]:
        fail("decoded heartbeat differs from the status")
        return 1
    return 0


# -- parser -------------------------------------------------------------------------------


def _profile(value: str) -> WireProfile:
    try:
        return _PROFILES[value.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown profile {value!r} (choose aixp or ratio1)") from None


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; each leaf sets ``func`` to its ``cmd_*`` function."""
    parser = argparse.ArgumentParser(prog="pye2", description="pye2: Execution Engine network SDK tools")
    parser.add_argument("--version", action="version", version=f"pye2 {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = commands.add_parser("keys", help="create or inspect identities")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    new = key_commands.add_parser("new", help="generate a key file (mode 0600) and print its addresses")
    new.add_argument("--out", default=DEFAULT_KEY_FILE, help=f"where to write the PEM (default {DEFAULT_KEY_FILE})")
    new.add_argument("--password-env", metavar="VAR", help="encrypt the PEM with the password in $VAR")
    new.set_defaults(func=cmd_keys_new)
    address = key_commands.add_parser("address", help="print the addresses of a key file")
    address.add_argument("path")
    address.add_argument("--password-env", metavar="VAR", help="password of an encrypted PEM, from $VAR")
    address.set_defaults(func=cmd_keys_address)

    sign = commands.add_parser("sign", help="sign a JSON message (file or stdin) and print it")
    sign.add_argument("file", nargs="?", default="-", help="JSON file, or - for stdin (default)")
    sign.add_argument("--key", default=DEFAULT_KEY_FILE, help=f"key file (default {DEFAULT_KEY_FILE})")
    sign.add_argument("--password-env", metavar="VAR", help="password of an encrypted PEM, from $VAR")
    sign.add_argument("--profile", type=_profile, default=AIXP, help="aixp (default) or ratio1")
    sign.set_defaults(func=cmd_sign)

    verify = commands.add_parser("verify", help="verify a signed JSON message; print its sender")
    verify.add_argument("file", nargs="?", default="-", help="JSON file, or - for stdin (default)")
    verify.add_argument("--profile", type=_profile, default=AIXP, help="aixp (default) or ratio1")
    verify.set_defaults(func=cmd_verify)

    selftest = commands.add_parser("selftest", help="a short self-checking tour of the core (no network)")
    selftest.set_defaults(func=cmd_demo)
    add_capture_commands(commands)
    _add_plugin_commands(commands)
    from pye2.cli_net import add_network_commands  # nodes, pipelines, archive, watch, exec, doctor

    add_network_commands(commands)
    return parser


def _add_plugin_commands(commands: Any) -> None:
    """Subcommands registered through the ``pye2_register_commands`` hook (``demo``, ``sim`` ...)."""
    from pye2.plugins.host import default_host

    try:
        registry = default_host().commands
    except Pye2Error as exc:  # a broken plugin must not take the whole CLI down
        logging.getLogger(__name__).warning("plugin commands unavailable: %s", exc)
        return
    for name in registry.names():
        try:
            help_text, add_arguments, run = registry.get(name)()
        except Pye2Error as exc:
            logging.getLogger(__name__).warning("command %r unavailable: %s", name, exc)
            continue
        sub = commands.add_parser(name, help=help_text)
        add_arguments(sub)
        sub.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CliError, Pye2Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
