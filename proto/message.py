"""The content of a push: one model in, mapped by the gateway and every vendor client.

A vendor that cannot carry a field drops it by the rule written in that vendor's module
docstring; nothing here is vendor specific.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from proto.audience import AutoKind, normalise
from proto.limits import (
    ACCOUNT_RE,
    CONVERSATION_PATTERN,
    MAX_BODY,
    MAX_DATA_BYTES,
    MAX_DATA_KEYS,
    MAX_LOCALES,
    MAX_TITLE,
)

#: Custom data values: JSON scalars, integers within int64 (what every SDK language holds).
Scalar = str | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float | bool | None
Short = Annotated[str, msgspec.Meta(max_length=256)]
Url = Annotated[str, msgspec.Meta(max_length=1024)]

Kind = Literal["notify", "data", "chat", "call"]
#: The kinds that show a notification; ``data`` alone is silent.
NOTIFICATION_KINDS = frozenset({"notify", "chat", "call"})
#: The message category a chat and a call get unless they name one: Huawei's, HarmonyOS' and
#: vivo's and OPPO's names of the instant-messaging and call classes.
CHAT_CATEGORY = "IM"
CALL_CATEGORY = "VOIP"
#: Keys of ``vendor_data`` that carry ``conversation`` and ``sender`` to the app.
CONVERSATION_KEY = "conversation"
SENDER_KEY = "sender"
_CONVERSATION_RE = re.compile(CONVERSATION_PATTERN)


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
    """A notification (``kind='notify'``), a pass-through message (``kind='data'``), a chat
    message (``kind='chat'``) or an incoming call (``kind='call'``).

    ``badge`` sets the app badge; ``badge_add`` increases it instead (at most one of them).
    ``push_type`` is APNs' notion: ``alert`` shows, ``background`` wakes the app silently,
    ``voip`` rings (call messages). ``category`` is the vendor message category or
    classification some vendors require (Huawei ``category``, Xiaomi ``channel_id``, vivo
    ``classification``, OPPO ``category``); ``channel_id`` the Android notification channel.
    ``locales``: the title and body in other languages; each device gets the one of its
    locale through ``localize``, the default (``title``, ``body``) where none matches.
    ``sender``: the account the push is from (an account id). ``environment``: the APNs
    environment of this push, ``production`` or ``development``; empty takes the app's APNs
    credentials' (like Tencent Push's ``environment``); other vendors have one environment.

    A chat message needs ``conversation`` and ``sender`` and, unless given, gets
    ``badge_add`` 1, ``collapse_id`` the conversation (a newer message of the conversation
    replaces the shown one) and category ``IM``. A call is a VoIP push (``push_type`` voip) of
    high priority with category ``VOIP`` unless given; its push lives at most
    ``MAX_CALL_LIFETIME_S`` (checked by ``PushContent``). Both are notifications to every
    vendor; vendors hand ``conversation`` and ``sender`` to the app in their custom data
    (``vendor_data``), so that a tap opens the conversation. The defaults are applied when
    the message is built, so every channel and the device see the same fields.
    """

    kind: Kind = "notify"
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
    sender: Annotated[str, msgspec.Meta(max_length=64)] = ""
    conversation: Annotated[str, msgspec.Meta(max_length=64)] = ""
    environment: Literal["", "production", "development"] = ""

    def __post_init__(self) -> None:
        if self.kind in NOTIFICATION_KINDS and not (self.title or self.body):
            raise ValueError("a notification needs a title or a body")
        if self.kind == "data" and not self.data:
            raise ValueError("a pass-through message needs data")
        if self.badge is not None and self.badge_add is not None:
            raise ValueError("give badge or badge_add, not both")
        if self.data and len(msgspec.json.encode(self.data)) > MAX_DATA_BYTES:
            raise ValueError(f"data exceeds {MAX_DATA_BYTES} bytes once encoded")
        if self.sender and not ACCOUNT_RE.match(self.sender):
            raise ValueError("sender must be an account id (letters, digits, _ . @ + -)")
        if self.conversation and not _CONVERSATION_RE.match(self.conversation):
            raise ValueError("conversation must be 1-64 letters, digits or _ . @ + : -")
        if self.conversation and self.kind != "chat":
            raise ValueError("only a chat message names a conversation")
        taken = {key for key, field in ((CONVERSATION_KEY, self.conversation),
                                        (SENDER_KEY, self.sender)) if field}
        if taken.intersection(self.data):
            raise ValueError(f"data keys {sorted(taken.intersection(self.data))} are reserved "
                             "for the message's conversation and sender")
        if self.kind == "chat":
            self._chat_defaults()
        elif self.kind == "call":
            self._call_defaults()

    def _chat_defaults(self) -> None:
        if not (self.conversation and self.sender):
            raise ValueError("a chat message needs a conversation and a sender")
        # Frozen, but still being built: the defaults belong to the message every role sees.
        if self.badge is None and self.badge_add is None:
            msgspec.structs.force_setattr(self, "badge_add", 1)
        if not self.collapse_id:
            msgspec.structs.force_setattr(self, "collapse_id", self.conversation)
        if not self.category:
            msgspec.structs.force_setattr(self, "category", CHAT_CATEGORY)

    def _call_defaults(self) -> None:
        if self.push_type == "background":
            raise ValueError("a call rings: its push_type is voip, not background")
        msgspec.structs.force_setattr(self, "push_type", "voip")
        msgspec.structs.force_setattr(self, "priority", "high")
        if not self.category:
            msgspec.structs.force_setattr(self, "category", CALL_CATEGORY)

    @property
    def shows(self) -> bool:
        """Whether the message shows a notification (every kind but ``data``)."""
        return self.kind in NOTIFICATION_KINDS

    def vendor_data(self) -> dict[str, Scalar]:
        """The custom data vendors carry to the app: ``data``, plus ``conversation`` and
        ``sender`` when the message has them (the app opens the conversation on a tap)."""
        extra = {key: value for key, value in ((CONVERSATION_KEY, self.conversation),
                                                (SENDER_KEY, self.sender)) if value}
        return {**self.data, **extra} if extra else dict(self.data)


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
