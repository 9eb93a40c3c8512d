"""``proto.templates``: declaring, checking and rendering templates, every bad input; the
router's side without I/O (``router.templating``, ``router.intake``); the template store on the
real Redis."""

from __future__ import annotations

import msgspec
import pytest

from herald.bus import Record
from herald.template_store import Created
from proto import topics
from proto.audience import DEFAULT_LIMITS
from proto.envelopes import PushRequest, decode_push_request, encode_push_request
from proto.errors import DecodeError
from proto.events import now_ms
from proto.limits import MAX_TEMPLATE_VARIABLES, MAX_TITLE, MAX_VARIABLE_VALUE
from proto.message import ClickAction, Localized, Message, localize
from proto.templates import (
    Template,
    TemplateCode,
    TemplateContent,
    TemplateError,
    TemplateRef,
    Variable,
    check_template,
    decode_template,
    encode_template,
    placeholders,
    render,
    render_ref,
)
from router import templating
from router.intake import Later, Push, decode


def welcome(**variables: Variable) -> Template:
    return Template(
        template_id="welcome",
        message=Message(title="Hi {{name}}", body="You have {{ count }} new {{what}}",
                        data={"user": "{{name}}", "n": 3},
                        click=ClickAction(type="url", target="https://example.com/u/{{name}}"),
                        locales={"de": Localized(title="Hallo {{name}}",
                                                 body="Du hast {{count}} neue {{what}}")}),
        variables=variables or {"name": Variable(), "count": Variable(),
                                "what": Variable(default="messages")})


def fails(code: TemplateCode, template: Template, variables: dict) -> str:
    with pytest.raises(TemplateError) as caught:
        render(template, variables)
    assert caught.value.code is code
    return caught.value.reason


def test_render_fills_every_text_field_and_language_and_keeps_the_rest():
    message = render(welcome(), {"name": "Ann", "count": 2})
    assert (message.title, message.body) == ("Hi Ann", "You have 2 new messages")
    assert message.data == {"user": "Ann", "n": 3}
    assert message.click.target == "https://example.com/u/Ann"
    assert message.locales["de"] == Localized(title="Hallo Ann", body="Du hast 2 neue messages")
    # The language a device gets is chosen after rendering, as for any message.
    assert localize(message, "de_DE")[1].title == "Hallo Ann"
    assert localize(message, "fr")[1].title == "Hi Ann"


def test_values_are_text_numbers_in_json_form_and_defaults_can_be_overridden():
    message = render(welcome(), {"name": "Bo", "count": 1.5, "what": "alerts"})
    assert message.body == "You have 1.5 new alerts"
    assert render(welcome(), {"name": "Bo", "count": -7}).body == "You have -7 new messages"


def test_a_value_that_looks_like_a_placeholder_is_not_filled_in_again():
    message = render(welcome(), {"name": "{{count}}", "count": 1})
    assert message.title == "Hi {{count}}"


def test_text_that_is_no_placeholder_stays_as_it_is():
    template = Template(template_id="t", message=Message(title="{{ 1x }} {{name}} {{", body="}}"),
                        variables={"name": Variable()})
    check_template(template, "t")
    assert render(template, {"name": "A"}).title == "{{ 1x }} A {{"


def test_placeholders_are_read_from_every_string_but_keys():
    message = Message(title="{{a}}", data={"{{k}}": "{{b}}"}, image="https://x/{{c}}.png",
                      locales={"fr": Localized(body="{{d}}")})
    assert placeholders(message) == {"a", "b", "c", "d"}


def test_a_missing_variable_is_named():
    reason = fails(TemplateCode.MISSING_VARIABLE, welcome(), {"count": 1})
    assert "'name'" in reason and "'welcome'" in reason


def test_an_unknown_variable_is_named():
    reason = fails(TemplateCode.UNKNOWN_VARIABLE, welcome(), {"name": "A", "count": 1, "nme": 2})
    assert "'nme'" in reason


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, float("inf"), float("nan")])
def test_a_value_that_is_not_text_or_a_finite_number_is_refused(value):
    reason = fails(TemplateCode.BAD_VARIABLE, welcome(), {"name": value, "count": 1})
    assert "'name'" in reason


def test_a_value_longer_than_allowed_is_refused():
    fails(TemplateCode.BAD_VARIABLE, welcome(), {"name": "x" * (MAX_VARIABLE_VALUE + 1),
                                                  "count": 1})


def test_a_rendered_message_over_a_limit_or_without_text_is_refused():
    long_name = "x" * (MAX_TITLE - 2)
    reason = fails(TemplateCode.RENDERED_INVALID, welcome(), {"name": long_name, "count": 1})
    assert "$.title" in reason
    bare = Template(template_id="bare", message=Message(title="{{t}}"),
                    variables={"t": Variable()})
    reason = fails(TemplateCode.RENDERED_INVALID, bare, {"t": ""})
    assert "title or a body" in reason


def test_an_undeclared_placeholder_refuses_the_template():
    content = TemplateContent(message=Message(title="Hi {{name}}", body="{{other}}"),
                              variables={"name": Variable()})
    with pytest.raises(TemplateError) as caught:
        check_template(content, "t")
    assert caught.value.code is TemplateCode.UNDECLARED_PLACEHOLDER
    assert "'other'" in caught.value.reason


@pytest.mark.parametrize("body, where", [
    ({"template_id": "t", "message": {"title": "x"}, "variables": {"1bad": {}}}, "variables"),
    ({"template_id": "t", "message": {"title": "x"}, "variables": {"a": {"default": True}}},
     "default"),
    ({"template_id": "t", "message": {"title": "x"},
      "variables": {f"v{i}": {} for i in range(MAX_TEMPLATE_VARIABLES + 1)}}, "variables"),
    ({"template_id": "bad id", "message": {"title": "x"}}, "template_id"),
    ({"template_id": "t", "message": {"title": "x", "kind": "{{k}}"}}, "kind"),
    ({"template_id": "t"}, "message"),
    ({"template_id": "t", "message": {"title": "x"}, "extra": 1}, "extra"),
])
def test_a_template_that_does_not_decode_names_its_field(body, where):
    with pytest.raises(DecodeError) as caught:
        decode_template(msgspec.json.encode(body))
    assert where in caught.value.reason


def test_a_template_round_trips_through_its_json():
    assert decode_template(encode_template(welcome())) == welcome()


def test_an_unknown_template_is_its_own_error():
    with pytest.raises(TemplateError) as caught:
        render_ref(TemplateRef(template_id="gone"), None)
    assert caught.value.code is TemplateCode.UNKNOWN_TEMPLATE


def request_json(**fields) -> bytes:
    return msgspec.json.encode({"task_id": "t1", "app_id": "a1", "registration_ids": ["r1"],
                                **fields})


@pytest.mark.parametrize("fields", [
    {},
    {"message": {"title": "x"}, "template": {"template_id": "welcome"}},
])
def test_a_push_gives_exactly_one_of_message_or_template(fields):
    with pytest.raises(DecodeError) as caught:
        decode_push_request(request_json(**fields))
    assert "exactly one of message or template" in caught.value.reason


def record(value: bytes, topic: str = topics.REQUESTS) -> Record:
    return Record(topic=topic, partition=0, offset=0, key=b"t1", value=value)


def test_the_router_asks_for_each_template_of_a_batch_once():
    named = request_json(template={"template_id": "welcome", "variables": {"name": "A"}})
    records = [record(named), record(named), record(request_json(message={"title": "x"})),
               record(b"not json"), record(named, topics.FANOUT)]
    assert templating.wanted(records) == [("a1", "welcome")]


def test_intake_routes_a_templated_request_with_its_rendered_message():
    value = request_json(template={"template_id": "welcome",
                                   "variables": {"name": "Ann", "count": 3}})
    push = decode(record(value), DEFAULT_LIMITS, {("a1", "welcome"): welcome()})
    assert isinstance(push, Push)
    assert (push.message.title, push.message.locales["de"].title) == ("Hi Ann", "Hallo Ann")


def test_intake_refuses_a_templated_request_that_does_not_fit():
    value = request_json(template={"template_id": "welcome", "variables": {"count": 3}})
    with pytest.raises(TemplateError) as caught:
        decode(record(value), DEFAULT_LIMITS, {("a1", "welcome"): welcome()})
    assert caught.value.code is TemplateCode.MISSING_VARIABLE
    with pytest.raises(TemplateError) as caught:
        decode(record(value), DEFAULT_LIMITS, {})
    assert caught.value.code is TemplateCode.UNKNOWN_TEMPLATE


def test_a_templated_call_is_held_to_a_calls_lifetime():
    ring = Template(template_id="ring", message=Message(kind="call", title="{{who}} calls"),
                    variables={"who": Variable()})
    value = request_json(template={"template_id": "ring", "variables": {"who": "Ann"}},
                         lifetime_s=120)
    with pytest.raises(TemplateError) as caught:
        decode(record(value), DEFAULT_LIMITS, {("a1", "ring"): ring})
    assert caught.value.code is TemplateCode.RENDERED_INVALID
    assert "lifetime" in caught.value.reason
    value = request_json(template={"template_id": "ring", "variables": {"who": "Ann"}},
                         lifetime_s=30)
    push = decode(record(value), DEFAULT_LIMITS, {("a1", "ring"): ring})
    assert isinstance(push, Push) and push.message.push_type == "voip"


def test_a_scheduled_templated_request_is_kept_rendered():
    value = request_json(template={"template_id": "welcome",
                                   "variables": {"name": "Ann", "count": 3}},
                         send_at_ms=now_ms() + 3_600_000)
    later = decode(record(value), DEFAULT_LIMITS, {("a1", "welcome"): welcome()})
    assert isinstance(later, Later)
    kept = decode_push_request(later.record.value)
    assert kept.template is None and kept.message is not None
    assert kept.message.title == "Hi Ann"
    assert later.record.value == encode_push_request(later.request)


def test_a_request_with_a_message_is_left_as_it_is():
    request = decode_push_request(request_json(message={"title": "x"}))
    assert templating.rendered(request, {}) is request
    assert isinstance(request, PushRequest)


async def test_the_store_keeps_templates_per_app(store, uid):
    app, other = f"app-{uid}", f"other-{uid}"
    first = welcome()
    assert await store.add_template(app, first, 10) is Created.CREATED
    assert await store.add_template(app, welcome(name=Variable()), 10) is Created.EXISTS
    assert await store.get_template(app, "welcome") == first
    assert await store.get_template(other, "welcome") is None
    assert await store.list_templates(other) == []
    changed = msgspec.structs.replace(first, variables={**first.variables,
                                                        "name": Variable(default="you")})
    assert await store.replace_template(app, changed)
    assert not await store.replace_template(other, changed)
    assert await store.get_template(other, "welcome") is None
    assert await store.get_templates([(app, "welcome"), (other, "welcome"),
                                      (app, "nope")]) == [changed, None, None]
    assert not await store.delete_template(other, "welcome")
    assert await store.delete_template(app, "welcome")
    assert await store.get_template(app, "welcome") is None


async def test_the_store_keeps_at_most_the_limit(store, uid):
    app = f"app-{uid}"
    for n in range(3):
        template = msgspec.structs.replace(welcome(), template_id=f"t{n}")
        assert await store.add_template(app, template, 3) is Created.CREATED
    extra = msgspec.structs.replace(welcome(), template_id="t3")
    assert await store.add_template(app, extra, 3) is Created.FULL
    assert [t.template_id for t in await store.list_templates(app)] == ["t0", "t1", "t2"]
