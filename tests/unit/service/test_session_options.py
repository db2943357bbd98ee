"""Session's typed options: explicit keyword parameters gathered into SessionOptions, checked at construction."""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Any

import pytest

from pye2 import Session
from pye2.errors import ConfigError
from pye2.service.options import SessionOptions


def test_every_option_is_a_typed_keyword_parameter_with_the_same_default() -> None:
    params = inspect.signature(Session.__init__).parameters
    for f in fields(SessionOptions):
        assert f.name in params, f"Session.__init__ lacks the option {f.name}"
        param = params[f.name]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.annotation != inspect.Parameter.empty
        assert param.default == f.default, f.name
    # the catch-all exists only to suggest a name; a type checker refuses any keyword that lands in it
    assert params["unknown"].kind is inspect.Parameter.VAR_KEYWORD
    assert params["unknown"].annotation == "NoReturn"


def test_the_options_are_gathered_as_given() -> None:
    session = Session(transport="sim://", command_timeout=5, inbox_size=10, replay_memory=0)
    assert session.options.command_timeout == 5 and session.command_timeout == 5.0
    assert session.options.inbox_size == 10 and session.inbox.maxsize == 10
    assert session.options.replay_memory == 0
    assert session.options.online_timeout == SessionOptions().online_timeout


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("comand_timeout", "command_timeout"),
    ("trusted_node", "trusted_nodes"),
    ("on_hearbeat", "on_heartbeat"),
    ("verify_worker", "verify_workers"),
])
def test_an_unknown_option_names_the_closest_valid_one(typo: str, suggestion: str) -> None:
    options: dict[str, Any] = {typo: 1}
    with pytest.raises(ConfigError, match=rf"'{typo}' \(did you mean '{suggestion}'\?\)"):
        Session(transport="sim://", **options)


def test_an_unknown_option_far_from_any_name_is_named_alone() -> None:
    options: dict[str, Any] = {"zzzz": 1}
    with pytest.raises(ConfigError, match=r"unknown Session option\(s\): 'zzzz'$"):
        Session(transport="sim://", **options)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("command_timeout", "30", "command_timeout must be a number"),
    ("command_timeout", -1, "command_timeout must be >= 0"),
    ("online_timeout", True, "online_timeout must be a number"),
    ("inbox_size", 0, "inbox_size must be >= 1"),
    ("inbox_bytes", 1.5, "inbox_bytes must be an integer"),
    ("inbox_policy", "drop_all", "inbox_policy must be one of"),
    ("verify_workers", -2, "verify_workers must be >= 0"),
    ("encrypt_comms", "yes", "encrypt_comms must be True, False or None"),
    ("on_connection", 3, "on_connection must be callable"),
    ("root_topic", 7, "root_topic must be a string"),
])
def test_a_value_of_the_wrong_type_is_refused_by_name(name: str, value: Any, message: str) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ConfigError, match=message):
        Session(transport="sim://", **options)


def test_the_original_sdks_options_are_accepted_and_ignored() -> None:
    Session(transport="sim://", log=object(), blockchain_config={}, secured=True)
