"""The content of a push: one model in, mapped by the gateway and every vendor client.

A vendor that cannot carry a field drops it by the rule written in that vendor's module
docstring; nothing here is vendor specific.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from proto.audience import AutoKind, normalise
from proto.limits import MAX_BODY, MAX_DATA_BYTES, MAX_DATA_KEYS, MAX_LOCALES, MAX_TITLE

#: Custom data values: JSON scalars, integers within int64 (what every SDK language holds).
Scalar = str | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float | bool | None
Short = Annotated[str, msgspec.Meta(max_length=256)]
Url = Annotated[str, msgspec.Meta(max_length=1024)]


class ClickAction(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """What opening the notification does: open the app, a URL, an Android intent, a deep link."""

    type: Literal["app", "url", "intent", "deeplink"] = "app"
    target: Url = ""

    def __post_init__(self) -> None:
        if self.type != "app" and not self.target:
            raise ValueError(f"click action {self.type!r} needs a target")


class Localized(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True,
                forbid_unknown_fields=True):
    """The text of a message in one language; an empty field keeps the default's."""

    title: Annotated[str, msgspec.Meta(max_length=MAX_TITLE)] = ""
    body: Annotated[str, msgspec.Meta(max_length=MAX_BODY)] = ""


#: A language tag (BCP 47, or POSIX-style with ``_``), as a device reports its locale.
LocaleTag = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$",
                                        max_length=35)]


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True,
              forbid_unknown_fields=True):
    """A notification (``kind='notify'``) or a pass-through message (``kind='data'``).

    ``badge`` sets the app badge; ``badge_add`` increases it instead (at most one of them).
    ``push_type`` is APNs' notion: ``alert`` shows, ``background`` wakes the app silently,
    ``voip`` rings (call messages). ``category`` is the vendor message category or
    classification some vendors require (Huawei ``category``, Xiaomi ``channel_id``, vivo
    ``classification``, OPPO ``category``); ``channel_id`` the Android notification channel.
    ``locales``: the title and body in other languages; each device gets the one of its
    locale through ``localize``, the default (``title``, ``body``) where none matches.
    """

    kind: Literal["notify", "data"] = "notify"
    title: Annotated[str, msgspec.Meta(max_length=MAX_TITLE)] = ""
    body: Annotated[str, msgspec.Meta(max_length=MAX_BODY)] = ""
    data: Annotated[dict[str, Scalar], msgspec.Meta(max_length=MAX_DATA_KEYS)] = {}
    badge: Annotated[int, msgspec.Meta(ge=0, le=99_999)] | None = None
    badge_add: Annotated[int, msgspec.Meta(ge=1, le=99)] | None = None
    sound: Short = ""
    click: ClickAction = ClickAction()
    small_icon: Short = ""
    large_icon: Url = ""
    image: Url = ""
    category: Short = ""
    channel_id: Short = ""
    collapse_id: Annotated[str, msgspec.Meta(max_length=64)] = ""
    priority: Literal["normal", "high"] = "normal"
    push_type: Literal["alert", "background", "voip"] = "alert"
    locales: Annotated[dict[LocaleTag, Localized],
                       msgspec.Meta(max_length=MAX_LOCALES)] = {}

    def __post_init__(self) -> None:
        if self.kind == "notify" and not (self.title or self.body):
            raise ValueError("a notification needs a title or a body")
        if self.kind == "data" and not self.data:
            raise ValueError("a pass-through message needs data")
        if self.badge is not None and self.badge_add is not None:
            raise ValueError("give badge or badge_add, not both")
        if self.data and len(msgspec.json.encode(self.data)) > MAX_DATA_BYTES:
            raise ValueError(f"data exceeds {MAX_DATA_BYTES} bytes once encoded")


def fallback_chain(locale: str) -> list[str]:
    """The tags a device of ``locale`` takes content from, most specific first: its locale
    normalised, then with its last subtag dropped, and so on (``zh_hant_tw`` -> ``zh-Hant-TW``,
    ``zh-Hant``, ``zh``); none for a device without a locale."""
    tag = normalise(AutoKind.LOCALE, locale) if locale.strip() else ""
    parts = tag.split("-") if tag else []
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def localize(message: Message, locale: str) -> tuple[str, Message]:
    """The first tag of ``locale``'s fallback chain that ``message`` has content for ('' for
    the default) and the message a device of that locale gets, without ``locales``."""
    if not message.locales:
        return "", message
    offered = {normalise(AutoKind.LOCALE, tag): text for tag, text in message.locales.items()}
    for tag in fallback_chain(locale):
        text = offered.get(tag)
        if text is not None:
            return tag, msgspec.structs.replace(message, title=text.title or message.title,
                                                body=text.body or message.body, locales={})
    return "", msgspec.structs.replace(message, locales={})
