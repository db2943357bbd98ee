"""The admin pipeline every node (re)creates at start (node.md section 9)."""

from __future__ import annotations

from typing import Any

__all__ = ["ADMIN_PATH_FILTER", "ADMIN_PIPELINE", "ADMIN_SIGNATURES", "MAX_ADMIN_DELAY", "admin_pipeline_config"]

ADMIN_PIPELINE = "admin_pipeline"
ADMIN_PIPELINE_VER = "2.1.1"
ADMIN_PATH_FILTER: list[Any] = [None, None, ["UPDATE_MONITOR_01", "NET_MON_01", "NET_CONFIG_MONITOR",
                                             "CHAIN_STORE_BASE"], None]
#: a real UPDATE_MONITOR_01 refuses a PROCESS_DELAY above one day and is skipped
MAX_ADMIN_DELAY = 86400

_INSTANCES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("NET_CONFIG_MONITOR", {"PROCESS_DELAY": 0, "VERBOSE_NETCONFIG_LOGS": False}),
    ("NET_MON_01", {"PROCESS_DELAY": 10, "LOG_INFO": False, "LOG_FULL_INFO": False, "SUPERVISOR": "$EE_SUPERVISOR"}),
    ("UPDATE_MONITOR_01", {"PROCESS_DELAY": 100000, "VERSION_TOKEN": None, "RESTART_ON_BEHIND": False,
                           "VERSION_URL": "http://127.0.0.1:9/none/{}/ver.py", "RELEASE_TAG": "develop"}),
    ("PLUGIN_MONITOR_01", {"PROCESS_DELAY": 1}),
    ("LOCAL_COMMS_01", {"LOCAL_COMMS_ENABLED_ON_STARTUP": False}),
    ("CHAIN_STORE_BASE", {"PROCESS_DELAY": 0, "FULL_DEBUG_PAYLOADS": False, "CHAIN_STORE_DEBUG": False}),
)
ADMIN_SIGNATURES = tuple(sig for sig, _ in _INSTANCES)


def admin_pipeline_config(now_text: str) -> dict[str, Any]:
    """The stored ``admin_pipeline`` config, as a real node reports it in ``CONFIG_STREAMS``."""
    return {
        "NAME": ADMIN_PIPELINE,
        "TYPE": "NetworkListener",
        "PATH_FILTER": [list(p) if isinstance(p, list) else p for p in ADMIN_PATH_FILTER],
        "MESSAGE_FILTER": {},
        "ADMIN_PIPELINE_VER": ADMIN_PIPELINE_VER,
        "PLUGINS": [
            {"SIGNATURE": sig, "INSTANCES": [{**params, "INSTANCE_ID": f"{sig}_INST"}]}
            for sig, params in _INSTANCES
        ],
        "LAST_UPDATE_TIME": now_text,
    }
