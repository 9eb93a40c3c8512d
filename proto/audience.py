"""Audiences: who a push goes to, the limits on tags and attributes, and their validation.

No I/O: the store (``herald.audience_store``) resolves an ``Audience`` to a set in Redis.

The model follows Tencent Push (TPNS, TIMPush) and JPush:

- ``all``: every registered device of the app, bound to an account or not (JPush
  ``"audience": "all"``, TPNS ``audience_type: all``).
- ``accounts`` (up to 500) and ``registration_ids`` (up to 1,000): explicit targets, used as
  given; an account's push goes to all its devices.
- A filter: ``tags`` (AND, OR and NOT lists of up to 10 tags), ``attributes`` (AND and OR lists
  of ``name = value``) and ``device`` (automatic tags from device data, first and last seen).
  Given together they are ANDed: Tencent refuses the mix of tags and attributes, Herald does
  what the mix says. A device matches when it passes ``device`` and its account passes
  ``tags`` and ``attributes``; tags and attributes belong to accounts, so a filter with either
  only reaches devices bound to an account.

An audience names exactly one of the three kinds, so that an empty or half-built request can
never turn into a push to everyone.

Errors: every breach raises ``AudienceError`` with a machine-readable ``code`` and a ``reason``
that is safe to show to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import msgspec

from proto.errors import ProtoError
from proto.limits import ACCOUNT_RE, ID_RE

if TYPE_CHECKING:
    # The push envelope carries an ``Audience``; importing the record type at run time would
    # make the two modules import each other.
    from proto.envelopes import DeviceRecord

# Defaults of ``AudienceLimits``. Tags and attributes follow Tencent's API; the condition lists
# follow the issue (JPush allows 20 tags a list, Tencent 10). They live here rather than in
# ``proto.limits`` while audiences are one module; move them there when a second module needs
# them.
#: Tags one account may carry.
TAGS_PER_ACCOUNT = 100
#: Bytes of UTF-8 in one tag.
TAG_BYTES = 50
#: Accounts one tag, attribute or import call may name.
ACCOUNTS_PER_CALL = 100
#: Accounts one bulk import may name: imports seed whole user bases, so they take bigger batches.
ACCOUNTS_PER_IMPORT = 1000
#: Named attributes one app may declare.
ATTRIBUTES_PER_APP = 10
#: Bytes of UTF-8 in an attribute name or value.
ATTRIBUTE_BYTES = 50
#: Tags, ``name = value`` pairs or device values in one list of a condition.
TERMS_PER_LIST = 10
#: Accounts and registration ids one audience may list.
AUDIENCE_ACCOUNTS = 500
AUDIENCE_REGISTRATION_IDS = 1000
#: Longest "new" or "active" window, in days: a year covers every lifecycle campaign we know.
MAX_WINDOW_DAYS = 366

# A tag is one word of printable text: Tencent refuses spaces in tags, and control characters
# would end up in keys and logs.
_TAG_RE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")
# Attribute values may hold inner spaces ("New York") but no control characters or padding.
_VALUE_RE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?")
# Attribute names are ASCII identifiers: they sit in a Redis key in front of the value, so they
# must not contain the separator ':'.
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


class Code(StrEnum):
    """Machine-readable reasons an audience call is refused."""

    INVALID_AUDIENCE = "invalid_audience"
    EMPTY = "empty"
    BAD_ACCOUNT = "bad_account"
    TOO_MANY_ACCOUNTS = "too_many_accounts"
    BAD_REGISTRATION_ID = "bad_registration_id"
    TOO_MANY_REGISTRATION_IDS = "too_many_registration_ids"
    BAD_TAG = "bad_tag"
    TAG_TOO_LONG = "tag_too_long"
    TOO_MANY_TAGS = "too_many_tags"
    TOO_MANY_TERMS = "too_many_terms"
    BAD_ATTRIBUTE_NAME = "bad_attribute_name"
    BAD_ATTRIBUTE_VALUE = "bad_attribute_value"
    ATTRIBUTE_TOO_LONG = "attribute_too_long"
    TOO_MANY_ATTRIBUTES = "too_many_attributes"
    UNKNOWN_ATTRIBUTE = "unknown_attribute"
    BAD_DEVICE_VALUE = "bad_device_value"
    BAD_WINDOW = "bad_window"
    #: Other writers kept changing the same accounts; nothing was stored, try again.
    CONFLICT = "conflict"


class AudienceError(ProtoError):
    """A refused audience, tag or attribute call: nothing was stored.

    ``code`` is a ``Code`` for programs; ``reason`` is a sentence for people.
    """

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AudienceLimits:
    """Every audience limit; the defaults are the module constants."""

    tags_per_account: int = TAGS_PER_ACCOUNT
    tag_bytes: int = TAG_BYTES
    accounts_per_call: int = ACCOUNTS_PER_CALL
    accounts_per_import: int = ACCOUNTS_PER_IMPORT
    attributes_per_app: int = ATTRIBUTES_PER_APP
    attribute_bytes: int = ATTRIBUTE_BYTES
    terms_per_list: int = TERMS_PER_LIST
    audience_accounts: int = AUDIENCE_ACCOUNTS
    audience_registration_ids: int = AUDIENCE_REGISTRATION_IDS


DEFAULT_LIMITS = AudienceLimits()


class AutoKind(StrEnum):
    """Automatic tags Herald derives from device data (``auto_tags``)."""

    PLATFORM = "platform"
    VENDOR = "vendor"
    APP_VERSION = "app_version"
    LOCALE = "locale"
    COUNTRY = "country"


class AudienceKind(StrEnum):
    """The kinds of audience, as task records and push records name them."""

    ALL = "all"
    ACCOUNTS = "accounts"
    REGISTRATION_IDS = "registration_ids"
    FILTER = "filter"


class Unit(StrEnum):
    """What the members of a resolved audience set are."""

    ACCOUNTS = "accounts"
    DEVICES = "devices"


class ResolvedAudience(msgspec.Struct, frozen=True, array_like=True):
    """Where a resolved audience waits in the store, small enough to travel in a fan-out shard.

    ``token`` names a temporary set of ``unit`` members; the empty token stands for every device
    of the app, read live rather than copied. With ``filtered``, only the devices of the
    accounts that are also in the audience's device set count (a filter mixing account and
    device conditions).
    """

    unit: Unit
    token: str = ""
    filtered: bool = False


_STRICT = {"forbid_unknown_fields": True, "frozen": True, "kw_only": True, "omit_defaults": True}


class TagCondition(msgspec.Struct, **_STRICT):
    """Accounts that carry every ``and`` tag, at least one ``or`` tag (if any) and no ``not``
    tag. ``not`` alone means every account of the app but those."""

    and_: list[str] = msgspec.field(default_factory=list, name="and")
    or_: list[str] = msgspec.field(default_factory=list, name="or")
    not_: list[str] = msgspec.field(default_factory=list, name="not")


class AttributeIs(msgspec.Struct, **_STRICT):
    """``name = value``."""

    name: str
    value: str


class AttributeCondition(msgspec.Struct, **_STRICT):
    """Accounts whose attributes meet every ``and`` pair and at least one ``or`` pair (if any)."""

    and_: list[AttributeIs] = msgspec.field(default_factory=list, name="and")
    or_: list[AttributeIs] = msgspec.field(default_factory=list, name="or")


class DeviceCondition(msgspec.Struct, **_STRICT):
    """Devices by their automatic tags: each list matches any of its values, and every given
    list and window must match. Values are compared after ``normalise`` (``en_us`` finds
    ``en-US``). ``new_within_days``: first seen at or after now minus N days;
    ``active_within_days``: last seen at or after now minus N days."""

    platform: list[str] = msgspec.field(default_factory=list)
    vendor: list[str] = msgspec.field(default_factory=list)
    app_version: list[str] = msgspec.field(default_factory=list)
    locale: list[str] = msgspec.field(default_factory=list)
    country: list[str] = msgspec.field(default_factory=list)
    new_within_days: int | None = None
    active_within_days: int | None = None

    def values(self) -> dict[AutoKind, list[str]]:
        """The value lists by kind, normalised, leaving out the kinds not given."""
        lists = {kind: getattr(self, kind.value) for kind in AutoKind}
        return {kind: [normalise(kind, v) for v in vs] for kind, vs in lists.items() if vs}


class Audience(msgspec.Struct, **_STRICT):
    """Who a push goes to: ``all``, ``accounts``, ``registration_ids``, or a filter of
    ``tags``, ``attributes`` and ``device`` (ANDed). See the module docstring."""

    all: bool = False
    accounts: list[str] = msgspec.field(default_factory=list)
    registration_ids: list[str] = msgspec.field(default_factory=list)
    tags: TagCondition | None = None
    attributes: AttributeCondition | None = None
    device: DeviceCondition | None = None

    def kind(self) -> AudienceKind:
        """Which of the kinds this audience names (the first, if it breaks the rule of one)."""
        if self.all:
            return AudienceKind.ALL
        if self.accounts:
            return AudienceKind.ACCOUNTS
        if self.registration_ids:
            return AudienceKind.REGISTRATION_IDS
        return AudienceKind.FILTER


_audience = msgspec.json.Decoder(Audience)


def decode_audience(data: bytes, limits: AudienceLimits = DEFAULT_LIMITS) -> Audience:
    """Decode and validate a JSON audience."""
    try:
        audience = _audience.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AudienceError(Code.INVALID_AUDIENCE, str(exc)) from None
    validate_audience(audience, limits)
    return audience


def validate_audience(audience: Audience, limits: AudienceLimits = DEFAULT_LIMITS) -> None:
    """Raise ``AudienceError`` for the first rule ``audience`` breaks. Attribute names are
    checked for form here and against the app's declared names by the store."""
    given = [name for name, present in (
        ("all", audience.all), ("accounts", audience.accounts),
        ("registration_ids", audience.registration_ids),
        ("a filter", audience.tags or audience.attributes or audience.device)) if present]
    if len(given) != 1:
        raise AudienceError(Code.INVALID_AUDIENCE,
                            "an audience names exactly one of all, accounts, registration_ids "
                            f"or a filter (tags, attributes, device); got {given or 'none'}")
    if audience.accounts:
        check_accounts(audience.accounts, limits.audience_accounts)
    if audience.registration_ids:
        _check_registration_ids(audience.registration_ids, limits.audience_registration_ids)
    if audience.tags:
        _check_tag_condition(audience.tags, limits)
    if audience.attributes:
        _check_attribute_condition(audience.attributes, limits)
    if audience.device:
        _check_device_condition(audience.device, limits)


def check_accounts(accounts: Sequence[str], most: int) -> list[str]:
    """``accounts`` without repeats, if there are 1 to ``most`` valid account ids."""
    unique = _unique(accounts, "accounts", most, Code.TOO_MANY_ACCOUNTS)
    for account in unique:
        if not ACCOUNT_RE.match(account):
            raise AudienceError(Code.BAD_ACCOUNT,
                                f"{account!r} is not an account id (1-64 of A-Z a-z 0-9 _ . @ + -)")
    return unique


def check_declared(names: Iterable[str], declared: Iterable[str]) -> None:
    """Raise unless every attribute name in ``names`` is one the app ``declared``."""
    unknown = set(names) - set(declared)
    if unknown:
        raise AudienceError(Code.UNKNOWN_ATTRIBUTE,
                            f"attributes {sorted(unknown)} are not declared for this app")


def check_tags(tags: Sequence[str], limits: AudienceLimits) -> list[str]:
    """``tags`` without repeats, if there are 1 to ``tags_per_account`` valid tags."""
    unique = _unique(tags, "tags", limits.tags_per_account, Code.TOO_MANY_TAGS)
    for tag in unique:
        _check_text(tag, "tag", _TAG_RE, limits.tag_bytes, Code.BAD_TAG, Code.TAG_TOO_LONG,
                    "printable and without spaces")
    return unique


def check_attribute_names(names: Iterable[str], limits: AudienceLimits) -> list[str]:
    """``names`` without repeats, if there are 1 to ``attributes_per_app`` valid names."""
    unique = _unique(list(names), "attribute names", limits.attributes_per_app,
                     Code.TOO_MANY_ATTRIBUTES)
    for name in unique:
        _check_text(name, "attribute name", _NAME_RE, limits.attribute_bytes,
                    Code.BAD_ATTRIBUTE_NAME, Code.ATTRIBUTE_TOO_LONG,
                    "a letter, then letters, digits, _ or -")
    return unique


def check_attribute_value(value: str, limits: AudienceLimits) -> None:
    """Raise unless ``value`` is a valid attribute value."""
    _check_text(value, "attribute value", _VALUE_RE, limits.attribute_bytes,
                Code.BAD_ATTRIBUTE_VALUE, Code.ATTRIBUTE_TOO_LONG,
                "printable, without leading or trailing spaces")


def auto_tags(record: DeviceRecord) -> dict[AutoKind, str]:
    """The automatic tags of a device, normalised; kinds without data are left out. The
    country is the locale's region subtag when that is a two-letter country code (a numeric
    region such as 419, Latin America, is an area, not a country)."""
    _, _, region, _ = _locale_parts(record.locale)
    tags = {AutoKind.PLATFORM: normalise(AutoKind.PLATFORM, record.platform),
            AutoKind.VENDOR: normalise(AutoKind.VENDOR, record.vendor),
            AutoKind.APP_VERSION: normalise(AutoKind.APP_VERSION, record.app_version),
            AutoKind.LOCALE: normalise(AutoKind.LOCALE, record.locale),
            AutoKind.COUNTRY: region if _ascii_alpha(region, 2) else ""}
    return {kind: value for kind, value in tags.items() if value}


def normalise(kind: AutoKind, value: str) -> str:
    """One spelling per automatic tag value, so that device data and conditions meet: platform
    and vendor in lower case, locales as BCP 47 (``zh_hans_cn`` -> ``zh-Hans-CN``), countries
    in upper case."""
    if kind in (AutoKind.PLATFORM, AutoKind.VENDOR):
        return value.strip().lower()
    if kind is AutoKind.COUNTRY:
        return value.strip().upper()
    if kind is AutoKind.LOCALE:
        language, script, region, rest = _locale_parts(value)
        return "-".join(p for p in (language, script, region, *rest) if p)
    return value.strip()


def _locale_parts(locale: str) -> tuple[str, str, str, list[str]]:
    """Language, script, region and the remaining subtags of a BCP 47 or POSIX-style locale."""
    language, *rest = re.split(r"[-_]", locale.strip())
    script = rest.pop(0).title() if rest and _ascii_alpha(rest[0], 4) else ""
    region = rest.pop(0).upper() if rest and _is_region(rest[0]) else ""
    return language.lower(), script, region, [r.lower() for r in rest]


def _is_region(part: str) -> bool:
    return _ascii_alpha(part, 2) or (len(part) == 3 and part.isascii() and part.isdigit())


def _ascii_alpha(part: str, length: int) -> bool:
    return len(part) == length and part.isascii() and part.isalpha()


def _unique(items: Sequence[str], what: str, most: int, too_many: Code) -> list[str]:
    if isinstance(items, str):
        # A string is a sequence of strings too: refuse it rather than use its letters.
        raise TypeError(f"{what} must be a sequence of strings, not a string")
    unique = list(dict.fromkeys(items))
    if not unique:
        raise AudienceError(Code.EMPTY, f"no {what} given")
    if len(unique) > most:
        raise AudienceError(too_many, f"{len(unique)} {what} given; at most {most}")
    return unique


def _check_text(text: str, what: str, pattern: re.Pattern[str], most: int, bad: Code,
                too_long: Code, form: str) -> None:
    if not pattern.fullmatch(text):
        raise AudienceError(bad, f"{what} {text!r} must be {form}")
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise AudienceError(bad, f"{what} {text!r} is not valid UTF-8") from None
    if size > most:
        raise AudienceError(too_long, f"{what} {text!r} is {size} bytes; at most {most}")


def _check_list(items: Sequence[object], what: str, limits: AudienceLimits) -> None:
    if len(items) > limits.terms_per_list:
        raise AudienceError(Code.TOO_MANY_TERMS, f"{what} has {len(items)} terms; at most "
                                                 f"{limits.terms_per_list}")


def _check_registration_ids(rids: Sequence[str], most: int) -> None:
    for rid in _unique(rids, "registration_ids", most, Code.TOO_MANY_REGISTRATION_IDS):
        if not ID_RE.match(rid):
            raise AudienceError(Code.BAD_REGISTRATION_ID, f"{rid!r} is not a registration id")


def _check_tag_condition(tags: TagCondition, limits: AudienceLimits) -> None:
    named = [*tags.and_, *tags.or_, *tags.not_]
    if not named:
        raise AudienceError(Code.EMPTY, "the tag condition names no tag")
    for what, items in (("tags.and", tags.and_), ("tags.or", tags.or_), ("tags.not", tags.not_)):
        _check_list(items, what, limits)
    for tag in named:
        _check_text(tag, "tag", _TAG_RE, limits.tag_bytes, Code.BAD_TAG, Code.TAG_TOO_LONG,
                    "printable and without spaces")
    both = set(tags.and_) & set(tags.not_)
    if both:
        raise AudienceError(Code.INVALID_AUDIENCE,
                            f"tags {sorted(both)} are both required and excluded: nobody matches")


def _check_attribute_condition(attributes: AttributeCondition, limits: AudienceLimits) -> None:
    pairs = [*attributes.and_, *attributes.or_]
    if not pairs:
        raise AudienceError(Code.EMPTY, "the attribute condition names no attribute")
    _check_list(attributes.and_, "attributes.and", limits)
    _check_list(attributes.or_, "attributes.or", limits)
    check_attribute_names([p.name for p in pairs], limits)
    for pair in pairs:
        check_attribute_value(pair.value, limits)


def _check_device_condition(device: DeviceCondition, limits: AudienceLimits) -> None:
    lists = {kind: getattr(device, kind.value) for kind in AutoKind}
    windows = {"new_within_days": device.new_within_days,
               "active_within_days": device.active_within_days}
    if not any(lists.values()) and all(w is None for w in windows.values()):
        raise AudienceError(Code.EMPTY, "the device condition names nothing")
    for kind, values in lists.items():
        _check_list(values, f"device.{kind}", limits)
        for value in values:
            _check_text(value, f"device.{kind} value", _TAG_RE, limits.tag_bytes,
                        Code.BAD_DEVICE_VALUE, Code.BAD_DEVICE_VALUE,
                        "printable and without spaces")
    for name, days in windows.items():
        if days is not None and not 1 <= days <= MAX_WINDOW_DAYS:
            raise AudienceError(Code.BAD_WINDOW,
                                f"{name} is {days}; it must be 1 to {MAX_WINDOW_DAYS} days")
