"""Shared client plumbing in ``vendors.common``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vendors.common import parse_credentials
from vendors.errors import AuthError

parsed: list[dict[str, str]] = []


@dataclass(frozen=True, slots=True)
class Creds:
    key: str

    @classmethod
    def from_mapping(cls, mapping: dict[str, str]) -> Creds:
        parsed.append(dict(mapping))
        if not mapping.get("key", "").startswith("good"):
            raise ValueError("test credentials: key is not good")
        return cls(mapping["key"])


def test_a_parse_is_remembered_for_the_same_credentials_and_redone_for_new_ones():
    parsed.clear()
    first = parse_credentials(Creds.from_mapping, {"key": "good-1", "id": "a"})
    again = parse_credentials(Creds.from_mapping, {"id": "a", "key": "good-1"})
    renewed = parse_credentials(Creds.from_mapping, {"key": "good-2", "id": "a"})
    assert first is again and renewed == Creds("good-2")
    assert parsed == [{"key": "good-1", "id": "a"}, {"key": "good-2", "id": "a"}]


def test_a_refusal_is_an_auth_error_every_time():
    parsed.clear()
    for _ in range(2):
        with pytest.raises(AuthError, match="key is not good"):
            parse_credentials(Creds.from_mapping, {"key": "bad"})
    assert len(parsed) == 2
