from __future__ import annotations

import pytest

from cdc.errors import (
    CdcError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    TerminalError,
    TransientError,
    redact,
    redact_url,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mysql://cdc:s3cr3t@db:3306/", "mysql://cdc:***@db:3306/"),
        ("connect postgresql://app:p%40ss@h/db failed", "connect postgresql://app:***@h/db failed"),
        ("password=hunter2 host=x", "password=*** host=x"),
        ("PASSWORD: 'a b c'", "PASSWORD: ***"),
        ("mysql://root@127.0.0.1:23306/", "mysql://root@127.0.0.1:23306/"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_url_keeps_user_and_host() -> None:
    assert redact_url("postgresql://app:pw@10.0.0.1:5432/db?sslmode=require") == (
        "postgresql://app:***@10.0.0.1:5432/db?sslmode=require")
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_messages_never_carry_the_secret() -> None:
    err = ConnectError("cannot connect to mysql://cdc:topsecret@db:3306/", hint="check password=topsecret")
    assert "topsecret" not in str(err)
    assert "***" in str(err)


def test_tree_markers() -> None:
    assert issubclass(ConnectionLostError, TransientError)
    assert issubclass(DecodeError, TerminalError)
    assert not issubclass(TerminalError, TransientError)
    assert all(issubclass(c, CdcError) for c in (ConfigError, TransientError, TerminalError))


def test_config_error_lists_every_problem() -> None:
    err = ConfigError(["source.url: missing", "sinks[0].nmae: unknown key, did you mean 'name'?"])
    assert err.problems == ["source.url: missing", "sinks[0].nmae: unknown key, did you mean 'name'?"]
    assert "2 problems" in str(err)
    assert str(err).count("\n  - ") == 2


def test_a_hint_reads_as_its_own_sentence() -> None:
    assert str(DecodeError("t.c holds a zero date", hint="choose zero_date_handling null")) == (
        "t.c holds a zero date. Choose zero_date_handling null"
    )
    assert str(DecodeError("the key is gone.", hint="Use another.")) == "the key is gone. Use another."
    assert str(DecodeError("no hint")) == "no hint"
