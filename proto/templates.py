"""Push templates: a message with named placeholders, filled in per push. No I/O.

A ``Template`` is a ``proto.message.Message`` whose text may hold placeholders ``{{name}}``
(spaces inside the braces allowed): every string of the message is text, the default title and
body, each language's in ``locales``, string values of ``data``, the click target, icons,
image, sound, channel, collapse id, and so on. Keys (of ``data``, language tags) and numbers
are not. ``variables`` declares the names the text may use, each with an optional default; a
template whose text uses a name it does not declare is refused (``TemplateError``).

A push names a template instead of a message (``TemplateRef``: ``template_id`` and
``variables``); ``render`` fills it in. Each placeholder becomes its value as text (a number in
its JSON form), in one pass, so a value that itself looks like ``{{x}}`` stays as it is. Text
that is not a placeholder (``{{ 1 }}``, a lone ``{{``) stays as it is. The rendered message
must be a valid message (within every text limit): the limits apply after rendering.

Errors: ``TemplateError`` with a ``TemplateCode`` and a sentence naming the template and the
variable; a refused template or push stores and sends nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import msgspec

from proto.errors import DecodeError, ProtoError
from proto.limits import (
    ID_PATTERN,
    MAX_TEMPLATE_VARIABLES,
    MAX_VARIABLE_VALUE,
    VARIABLE_NAME,
    VARIABLE_PATTERN,
)
from proto.message import Message

#: A placeholder: ``{{name}}`` or ``{{ name }}``.
PLACEHOLDER_RE = re.compile(r"\{\{\s*(" + VARIABLE_NAME + r")\s*\}\}")

#: A variable's value: text, or a number (shown in its JSON form).
Value = (Annotated[str, msgspec.Meta(max_length=MAX_VARIABLE_VALUE)]
         | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float)
#: A value as a push gives it: checked by ``render``, which names a variable whose value is not
#: text or a number (the decoder would only say where in the body it is).
GivenValue = Annotated[Any, msgspec.Meta(extra_json_schema={"anyOf": [
    {"type": "string", "maxLength": MAX_VARIABLE_VALUE}, {"type": "number"}]})]
VariableName = Annotated[str, msgspec.Meta(pattern=VARIABLE_PATTERN)]
TemplateId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]


class TemplateCode(StrEnum):
    """Machine-readable reasons a template, or a push naming one, is refused."""

    #: The push names a template the app does not have.
    UNKNOWN_TEMPLATE = "unknown_template"
    #: A declared variable without a default that the push does not give.
    MISSING_VARIABLE = "missing_variable"
    #: A variable the push gives that the template does not declare.
    UNKNOWN_VARIABLE = "unknown_variable"
    #: A value that is not text or a number, or text longer than allowed.
    BAD_VARIABLE = "bad_variable"
    #: The template's text uses a name its variables do not declare.
    UNDECLARED_PLACEHOLDER = "undeclared_placeholder"
    #: Filled in, the message is not a valid one (a title over its limit, no text left, ...).
    RENDERED_INVALID = "rendered_invalid"


class TemplateError(ProtoError):
    """A refused template or templated push: nothing was stored or sent.

    ``code`` is a ``TemplateCode`` for programs; ``reason`` is a sentence for people.
    """

    def __init__(self, code: TemplateCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Variable(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """A declared variable: without a ``default``, every push must give it."""

    default: Value | None = None


class TemplateContent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True,
                      forbid_unknown_fields=True):
    """A template without its id (``PUT /v1/templates/{template_id}``): the message with its
    placeholders and the variables it declares."""

    message: Message
    variables: Annotated[dict[VariableName, Variable],
                         msgspec.Meta(max_length=MAX_TEMPLATE_VARIABLES)] = {}


class Template(TemplateContent, frozen=True, kw_only=True, omit_defaults=True,
               forbid_unknown_fields=True):
    """A template of an app (``POST /v1/templates``), as the store keeps it."""

    template_id: TemplateId


class TemplateList(msgspec.Struct, frozen=True, kw_only=True):
    """The app's templates, by id (``GET /v1/templates``)."""

    templates: list[Template]


class TemplateRef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True,
                  forbid_unknown_fields=True):
    """A push's content by template: which one, and the values of its variables."""

    template_id: TemplateId
    variables: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], GivenValue],
                         msgspec.Meta(max_length=MAX_TEMPLATE_VARIABLES)] = {}


def _strings(node: Any) -> Iterator[str]:
    """Every string value in ``node`` (builtins: dicts, lists, scalars), keys excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _map_strings(node: Any, fill: Callable[[str], str]) -> Any:
    """``node`` with ``fill`` applied to every string value, keys left as they are."""
    if isinstance(node, str):
        return fill(node)
    if isinstance(node, dict):
        return {key: _map_strings(value, fill) for key, value in node.items()}
    if isinstance(node, list):
        return [_map_strings(value, fill) for value in node]
    return node


def placeholders(message: Message) -> set[str]:
    """The variable names the text of ``message`` uses."""
    return {match.group(1) for text in _strings(msgspec.to_builtins(message))
            for match in PLACEHOLDER_RE.finditer(text)}


def check_template(content: TemplateContent, template_id: str) -> None:
    """Raise ``TemplateError`` unless every placeholder of the template is declared."""
    undeclared = sorted(placeholders(content.message) - set(content.variables))
    if undeclared:
        raise TemplateError(TemplateCode.UNDECLARED_PLACEHOLDER,
                            f"template {template_id!r} uses {undeclared} but declares "
                            f"only {sorted(content.variables)} in variables")


def _text(template_id: str, name: str, value: object) -> str:
    # bool is an int to Python, not a number to a template's author.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TemplateError(TemplateCode.BAD_VARIABLE,
                            f"variable {name!r} of template {template_id!r} is "
                            f"{type(value).__name__}; give text or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise TemplateError(TemplateCode.BAD_VARIABLE,
                            f"variable {name!r} of template {template_id!r} is not a finite "
                            "number")
    if isinstance(value, str):
        if len(value) > MAX_VARIABLE_VALUE:
            raise TemplateError(TemplateCode.BAD_VARIABLE,
                                f"variable {name!r} of template {template_id!r} is longer "
                                f"than {MAX_VARIABLE_VALUE} characters")
        return value
    return msgspec.json.encode(value).decode()


def render(template: Template, variables: Mapping[str, object]) -> Message:
    """The message of ``template`` with its placeholders filled in from ``variables`` (and
    the defaults). Raises ``TemplateError``: a declared variable with no default not given, a
    variable given that is not declared, a value that is not text or a number, or a rendered
    message that is not valid."""
    tid = template.template_id
    unknown = sorted(set(variables) - set(template.variables))
    if unknown:
        raise TemplateError(TemplateCode.UNKNOWN_VARIABLE,
                            f"template {tid!r} declares no variable {unknown[0]!r} (it declares "
                            f"{sorted(template.variables)})")
    values: dict[str, str] = {}
    for name, declared in sorted(template.variables.items()):
        if name in variables:
            values[name] = _text(tid, name, variables[name])
        elif declared.default is not None:
            values[name] = _text(tid, name, declared.default)
        else:
            raise TemplateError(TemplateCode.MISSING_VARIABLE,
                                f"template {tid!r} needs variable {name!r}, which has no "
                                "default")

    def fill(text: str) -> str:
        # A placeholder the template does not declare could only come from a template stored
        # before its check; it stays as it is rather than failing every push.
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    filled = _map_strings(msgspec.to_builtins(template.message), fill)
    try:
        return msgspec.convert(filled, Message)
    except (msgspec.ValidationError, ValueError) as exc:
        raise TemplateError(TemplateCode.RENDERED_INVALID,
                            f"template {tid!r} rendered an invalid message: {exc}") from None


def render_ref(ref: TemplateRef, template: Template | None) -> Message:
    """The message a push naming ``ref`` carries; ``template`` is the app's template of that
    id, None if it has none (``TemplateError`` ``unknown_template``)."""
    if template is None:
        raise TemplateError(TemplateCode.UNKNOWN_TEMPLATE,
                            f"template {ref.template_id!r} does not exist in this app")
    return render(template, ref.variables)


Push = TypeVar("Push", bound=msgspec.Struct)


def fill(push: Push, template: Template | None) -> Push:
    """``push`` (a ``PushContent`` naming a template) with ``template`` filled in as its
    message, checked again as a whole (a call's lifetime, for one); ``TemplateError`` if it
    does not fit."""
    ref = push.template  # type: ignore[attr-defined]
    message = render_ref(ref, template)
    try:
        return msgspec.structs.replace(push, message=message, template=None)
    except ValueError as exc:
        raise TemplateError(TemplateCode.RENDERED_INVALID,
                            f"template {ref.template_id!r} filled in: {exc}") from None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Template)


def encode_template(template: Template) -> bytes:
    """The template as JSON, as the store keeps it."""
    return _encoder.encode(template)


def decode_template(data: bytes) -> Template:
    """Decode a stored JSON template; ``DecodeError`` names the first bad field."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid template: {exc}") from None
