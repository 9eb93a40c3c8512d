"""The audience condition model: decoding, every validation rule, limits, automatic tags."""

from __future__ import annotations

import json

import msgspec
import pytest

from proto.audience import (
    DEFAULT_LIMITS,
    AttributeCondition,
    AttributeIs,
    Audience,
    AudienceError,
    AudienceLimits,
    AutoKind,
    Code,
    DeviceCondition,
    ResolvedAudience,
    TagCondition,
    Unit,
    auto_tags,
    check_accounts,
    check_attribute_names,
    check_attribute_value,
    check_tags,
    decode_audience,
    normalise,
    validate_audience,
)
from proto.envelopes import DeviceRecord
from proto.errors import ProtoError

# 17 three-byte characters: 17 characters, 51 bytes.
LONG_51 = "标" * 17
FITS_50 = "标" * 16 + "ab"


def refused(data: object, limits: AudienceLimits = DEFAULT_LIMITS) -> AudienceError:
    with pytest.raises(AudienceError) as caught:
        decode_audience(json.dumps(data).encode(), limits)
    return caught.value


@pytest.mark.parametrize("data", [
    {"all": True},
    {"accounts": ["alice", "bob@example.com", "+8613800000000"]},
    {"registration_ids": ["rid-1", "rid.2"]},
    {"tags": {"and": ["vip"], "or": ["a", "b"], "not": ["churned"]}},
    {"tags": {"not": ["churned"]}},
    {"tags": {"and": [FITS_50]}},
    {"attributes": {"and": [{"name": "level", "value": "gold"}],
                    "or": [{"name": "city", "value": "New York"}]}},
    {"device": {"platform": ["android"], "country": ["CN"], "new_within_days": 1,
                "active_within_days": 366}},
    {"tags": {"and": ["vip"]}, "attributes": {"or": [{"name": "level", "value": "1"}]},
     "device": {"locale": ["en_us"]}},
    {"all": False, "tags": {"or": ["x"]}},
])
def test_valid_audiences_decode_and_round_trip(data):
    audience = decode_audience(json.dumps(data).encode())
    again = decode_audience(msgspec.json.encode(audience))
    assert again == audience
    validate_audience(audience)


def test_json_keys_and_or_not_map_to_the_struct_fields():
    audience = decode_audience(b'{"tags": {"and": ["a"], "or": ["b"], "not": ["c"]}}')
    assert audience.tags == TagCondition(and_=["a"], or_=["b"], not_=["c"])
    assert json.loads(msgspec.json.encode(audience)) == {
        "tags": {"and": ["a"], "or": ["b"], "not": ["c"]}}


@pytest.mark.parametrize("data", [
    b"not json", b"[]", b'{"tags": {"and": "vip"}}', b'{"all": "yes"}',
    b'{"unknown": 1}', b'{"tags": {"xor": ["a"]}}', b'{"accounts": [1]}',
    b'{"attributes": {"and": [{"name": "x"}]}}', b'{"device": {"new_within_days": 1.5}}',
])
def test_undecodable_or_mistyped_audiences_are_invalid(data):
    with pytest.raises(AudienceError) as caught:
        decode_audience(data)
    assert caught.value.code is Code.INVALID_AUDIENCE
    assert caught.value.reason


@pytest.mark.parametrize("data", [
    {}, {"all": False}, {"accounts": []},
    {"all": True, "accounts": ["a"]},
    {"all": True, "device": {"platform": ["ios"]}},
    {"accounts": ["a"], "registration_ids": ["r"]},
    {"accounts": ["a"], "tags": {"and": ["x"]}},
    {"registration_ids": ["r"], "device": {"platform": ["ios"]}},
])
def test_an_audience_names_exactly_one_kind_of_target(data):
    error = refused(data)
    assert error.code is Code.INVALID_AUDIENCE
    assert "exactly one" in error.reason


@pytest.mark.parametrize(("data", "code"), [
    ({"accounts": [f"u{i}" for i in range(501)]}, Code.TOO_MANY_ACCOUNTS),
    ({"accounts": ["ok", "has space"]}, Code.BAD_ACCOUNT),
    ({"accounts": ["a" * 65]}, Code.BAD_ACCOUNT),
    ({"accounts": ["a:b"]}, Code.BAD_ACCOUNT),
    ({"registration_ids": [f"r{i}" for i in range(1001)]}, Code.TOO_MANY_REGISTRATION_IDS),
    ({"registration_ids": ["r@1"]}, Code.BAD_REGISTRATION_ID),
    ({"tags": {}}, Code.EMPTY),
    ({"tags": {"and": [], "or": []}}, Code.EMPTY),
    ({"tags": {"and": [f"t{i}" for i in range(11)]}}, Code.TOO_MANY_TERMS),
    ({"tags": {"or": [f"t{i}" for i in range(11)]}}, Code.TOO_MANY_TERMS),
    ({"tags": {"not": [f"t{i}" for i in range(11)]}}, Code.TOO_MANY_TERMS),
    ({"tags": {"and": ["two words"]}}, Code.BAD_TAG),
    ({"tags": {"or": [""]}}, Code.BAD_TAG),
    ({"tags": {"not": ["tab\there"]}}, Code.BAD_TAG),
    ({"tags": {"and": ["bell\x07"]}}, Code.BAD_TAG),
    ({"tags": {"and": [LONG_51]}}, Code.TAG_TOO_LONG),
    ({"tags": {"and": ["x", "y"], "not": ["y"]}}, Code.INVALID_AUDIENCE),
    ({"attributes": {}}, Code.EMPTY),
    ({"attributes": {"and": [{"name": "a", "value": str(i)} for i in range(11)]}},
     Code.TOO_MANY_TERMS),
    ({"attributes": {"or": [{"name": "a", "value": str(i)} for i in range(11)]}},
     Code.TOO_MANY_TERMS),
    ({"attributes": {"and": [{"name": "1st", "value": "x"}]}}, Code.BAD_ATTRIBUTE_NAME),
    ({"attributes": {"and": [{"name": "a:b", "value": "x"}]}}, Code.BAD_ATTRIBUTE_NAME),
    ({"attributes": {"and": [{"name": "a" * 51, "value": "x"}]}}, Code.ATTRIBUTE_TOO_LONG),
    ({"attributes": {"or": [{"name": "city", "value": " padded"}]}}, Code.BAD_ATTRIBUTE_VALUE),
    ({"attributes": {"or": [{"name": "city", "value": ""}]}}, Code.BAD_ATTRIBUTE_VALUE),
    ({"attributes": {"or": [{"name": "city", "value": "line\nbreak"}]}},
     Code.BAD_ATTRIBUTE_VALUE),
    ({"attributes": {"or": [{"name": "city", "value": LONG_51}]}}, Code.ATTRIBUTE_TOO_LONG),
    ({"attributes": {"and": [{"name": f"a{i}", "value": "x"} for i in range(6)],
                     "or": [{"name": f"b{i}", "value": "x"} for i in range(5)]}},
     Code.TOO_MANY_ATTRIBUTES),
    ({"device": {}}, Code.EMPTY),
    ({"device": {"platform": []}}, Code.EMPTY),
    ({"device": {"platform": [f"p{i}" for i in range(11)]}}, Code.TOO_MANY_TERMS),
    ({"device": {"country": ["C N"]}}, Code.BAD_DEVICE_VALUE),
    ({"device": {"locale": [LONG_51]}}, Code.BAD_DEVICE_VALUE),
    ({"device": {"new_within_days": 0}}, Code.BAD_WINDOW),
    ({"device": {"active_within_days": 367}}, Code.BAD_WINDOW),
    ({"device": {"active_within_days": -1}}, Code.BAD_WINDOW),
])
def test_every_rule_is_a_coded_error_with_a_reason(data, code):
    error = refused(data)
    assert error.code is code
    assert error.reason
    assert isinstance(error, ProtoError)
    assert str(error).startswith(f"{code}: ")


def test_list_limits_count_distinct_values():
    validate_audience(Audience(accounts=["a"] * 600 + [f"u{i}" for i in range(499)]))
    validate_audience(Audience(registration_ids=[f"r{i}" for i in range(1000)]))
    validate_audience(Audience(tags=TagCondition(and_=[f"t{i}" for i in range(10)])))


def test_structs_built_in_python_are_validated_like_decoded_ones():
    with pytest.raises(AudienceError) as caught:
        validate_audience(Audience(tags=TagCondition(or_=["a b"])))
    assert caught.value.code is Code.BAD_TAG
    with pytest.raises(AudienceError) as caught:
        validate_audience(Audience(attributes=AttributeCondition(
            and_=[AttributeIs(name="a", value="\x00")])))
    assert caught.value.code is Code.BAD_ATTRIBUTE_VALUE


def test_limits_are_configurable():
    tight = AudienceLimits(terms_per_list=2, tag_bytes=3, audience_accounts=2,
                           audience_registration_ids=1, attribute_bytes=2)
    assert refused({"tags": {"or": ["a", "b", "c"]}}, tight).code is Code.TOO_MANY_TERMS
    assert refused({"tags": {"or": ["abcd"]}}, tight).code is Code.TAG_TOO_LONG
    assert refused({"accounts": ["a", "b", "c"]}, tight).code is Code.TOO_MANY_ACCOUNTS
    assert refused({"registration_ids": ["a", "b"]}, tight).code is Code.TOO_MANY_REGISTRATION_IDS
    assert refused({"attributes": {"or": [{"name": "abc", "value": "x"}]}},
                   tight).code is Code.ATTRIBUTE_TOO_LONG
    roomy = AudienceLimits(tag_bytes=60)
    assert decode_audience(json.dumps({"tags": {"and": [LONG_51]}}).encode(), roomy)


def test_call_checks_deduplicate_and_bound_their_lists():
    limits = AudienceLimits()
    assert check_accounts(["b", "a", "b"], 2) == ["b", "a"]
    assert check_tags(["x", "x", "y"], limits) == ["x", "y"]
    assert check_attribute_names(["n", "n"], limits) == ["n"]
    for call, code in [
        (lambda: check_accounts([], 5), Code.EMPTY),
        (lambda: check_accounts(["a", "b", "c"], 2), Code.TOO_MANY_ACCOUNTS),
        (lambda: check_tags([], limits), Code.EMPTY),
        (lambda: check_tags([f"t{i}" for i in range(101)], limits), Code.TOO_MANY_TAGS),
        (lambda: check_tags(["\ud800"], limits), Code.BAD_TAG),
        (lambda: check_attribute_names([f"a{i}" for i in range(11)], limits),
         Code.TOO_MANY_ATTRIBUTES),
        (lambda: check_attribute_value("\ud800", limits), Code.BAD_ATTRIBUTE_VALUE),
    ]:
        with pytest.raises(AudienceError) as caught:
            call()
        assert caught.value.code is code


def test_a_string_is_not_taken_for_a_list_of_its_letters():
    with pytest.raises(TypeError):
        check_accounts("alice", 100)
    with pytest.raises(TypeError):
        check_tags("vip", AudienceLimits())


def test_attribute_values_may_hold_inner_spaces_and_any_script():
    for value in ["New York", "北京", "x", "a  b"]:
        check_attribute_value(value, AudienceLimits())


@pytest.mark.parametrize(("record", "expected"), [
    (DeviceRecord(), {}),
    (DeviceRecord(platform=" Android ", vendor="HUAWEI", app_version="2.1.0", locale="zh_hans_cn"),
     {"platform": "android", "vendor": "huawei", "app_version": "2.1.0", "locale": "zh-Hans-CN",
      "country": "CN"}),
    (DeviceRecord(locale="en_us"), {"locale": "en-US", "country": "US"}),
    (DeviceRecord(locale="sr-latn-rs"), {"locale": "sr-Latn-RS", "country": "RS"}),
    (DeviceRecord(locale="en-US-POSIX"), {"locale": "en-US-posix", "country": "US"}),
    (DeviceRecord(locale="es-419"), {"locale": "es-419"}),
    (DeviceRecord(locale="DE"), {"locale": "de"}),
])
def test_automatic_tags_come_normalised_from_device_data(record, expected):
    assert auto_tags(record) == {AutoKind(k): v for k, v in expected.items()}


def test_device_condition_values_are_normalised_like_device_data():
    condition = DeviceCondition(platform=["iOS"], locale=["EN_gb"], country=["fr"],
                                vendor=["Xiaomi"])
    assert condition.values() == {AutoKind.PLATFORM: ["ios"], AutoKind.VENDOR: ["xiaomi"],
                                  AutoKind.LOCALE: ["en-GB"], AutoKind.COUNTRY: ["FR"]}
    assert normalise(AutoKind.APP_VERSION, " 1.0 ") == "1.0"


def test_resolved_audience_travels_as_msgpack():
    resolved = ResolvedAudience(Unit.ACCOUNTS, "abc", filtered=True)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(resolved), type=ResolvedAudience)
    assert decoded == resolved
    assert decoded.unit is Unit.ACCOUNTS
