"""Wire profiles: the literals that differ between the 2024 and today's network.

A profile is a small frozen value, chosen per session. ``AIXP`` (the default)
speaks the network the original SDK spoke (root ``lummetry``, prefix
``aixp_``, unversioned 42ee127 canonical JSON, commands addressed by node id);
``RATIO1`` speaks today's (root ``naeural``, prefix ``0xai_``,
``SIGN_CANON_V`` v2, commands addressed by node address with ``EE_DEST``,
``SESSION_ID``, ``TIME``, optional encryption). Both accept either address
prefix on input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pye2.errors import ConfigError

__all__ = ["AIXP", "PROFILES", "RATIO1", "WireProfile", "get_profile"]

EE_ETH_SIGN = "EE_ETH_SIGN"
EE_ETH_SENDER = "EE_ETH_SENDER"

CANON_LEGACY = "legacy-42ee127"
CANON_V1 = "v1"
CANON_V2 = "v2"


@dataclass(frozen=True, slots=True)
class WireProfile:
    """Everything profile-specific about the wire.

    Attributes:
        name: ``"AIXP"`` or ``"RATIO1"`` (or a custom name).
        root: topic root (``lummetry`` / ``naeural``).
        address_prefix: prefix this profile writes in front of addresses.
        accepted_prefixes: prefixes accepted on input.
        canon: how this profile signs: ``legacy-42ee127`` or ``v2``.
        commands_by_address: address commands (and their topic) by node
            address (True) or by node id/alias (False).
        eth_fields: also exclude ``EE_ETH_SIGN``/``EE_ETH_SENDER`` from the hash
            and write the placeholder ETH fields.
        encrypt_commands: encrypt command ``ACTION``/``PAYLOAD`` by default.
    """

    name: str
    root: str
    address_prefix: str
    accepted_prefixes: tuple[str, ...] = ("aixp_", "0xai_")
    canon: str = CANON_LEGACY
    commands_by_address: bool = False
    eth_fields: bool = False
    encrypt_commands: bool = False
    signature_fields: tuple[str, ...] = field(default=("EE_SIGN", "EE_SENDER", "EE_HASH"))

    # -- logical addresses (MQTT topic form) ---------------------------------
    @property
    def ctrl(self) -> str:
        """Where nodes publish heartbeats."""
        return f"{self.root}/ctrl"

    @property
    def notif(self) -> str:
        """Where nodes publish notifications."""
        return f"{self.root}/notif"

    @property
    def payloads(self) -> str:
        """Where nodes publish payloads."""
        return f"{self.root}/payloads"

    def config(self, target: str) -> str:
        """Where commands for ``target`` (node id or address) are published."""
        if not target or "/" in target or "+" in target or "#" in target:
            raise ConfigError(f"invalid command target {target!r}")
        return f"{self.root}/{target}/config"

    def addressed_payloads(self, address: str) -> str:
        """Payloads addressed to one receiver (``{root}/{addr}/payloads``)."""
        return f"{self.root}/{address}/payloads"

    def with_root(self, root: str) -> WireProfile:
        """The same profile on another topic root."""
        if not root or "/" in root or "+" in root or "#" in root:
            raise ConfigError(f"invalid topic root {root!r}")
        return replace(self, root=root)

    def with_eth(self, enabled: bool) -> WireProfile:
        """The same profile in a node's other signing mode (``EE_ETH_ENABLED``, node.md section 5).

        ``True``: ``EE_ETH_SENDER``/``EE_ETH_SIGN`` are written and left out of
        the hash; ``False``: they are neither written nor treated as signature
        fields (a node in that mode hashes them as data).
        """
        if enabled == self.eth_fields:
            return self
        eth = (EE_ETH_SIGN, EE_ETH_SENDER)
        plain = tuple(f for f in self.signature_fields if f not in eth)
        return replace(self, eth_fields=enabled, signature_fields=plain + eth if enabled else plain)

    def strip_prefix(self, address: str) -> str | None:
        """The address body without an accepted prefix, or None if none matches."""
        for prefix in self.accepted_prefixes:
            if address.startswith(prefix):
                return address[len(prefix):]
        return None


AIXP = WireProfile(name="AIXP", root="lummetry", address_prefix="aixp_")
RATIO1 = WireProfile(
    name="RATIO1",
    root="naeural",
    address_prefix="0xai_",
    canon=CANON_V2,
    commands_by_address=True,
    eth_fields=True,
    encrypt_commands=False,
    signature_fields=("EE_SIGN", "EE_SENDER", "EE_HASH", "EE_ETH_SIGN", "EE_ETH_SENDER"),
)

PROFILES: dict[str, WireProfile] = {"AIXP": AIXP, "RATIO1": RATIO1}


def get_profile(profile: str | WireProfile) -> WireProfile:
    """Resolve a profile given by value or by (case-insensitive) name."""
    if isinstance(profile, WireProfile):
        return profile
    try:
        return PROFILES[str(profile).strip().upper()]
    except KeyError:
        raise ConfigError(f"unknown wire profile {profile!r}; known: {', '.join(PROFILES)}") from None
