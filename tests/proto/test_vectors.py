"""The protocol's test vectors (``proto/vectors/``): they decode, re-encode byte for byte, are
refused with their reason, are what ``generate.py`` writes today, and pass through the reference
client's decoding path (``herald.device``)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import msgpack
import msgspec
import pytest

import herald.device
import proto.vectors
from herald.device import Device
from proto import frames
from proto.errors import DecodeError
from proto.frames import (
    Ack,
    Bye,
    ClientFrame,
    Op,
    Push,
    Recall,
    ServerFrame,
    decode_client,
    decode_server,
    encode,
    message_of,
)
from proto.message import Message
from proto.tokens import TokenError, sign, verify
from proto.vectors import generate

HERE = Path(proto.vectors.__file__).parent
TYPES = {cls.OP: cls for cls in (*ClientFrame.__args__, *ServerFrame.__args__)}


def load(name: str) -> list[dict]:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


VALID = load("frames.json")
LENIENT = load("lenient.json")
INVALID = load("invalid.json")
TOKENS = load("tokens.json")
SERVER_VALID = [c for c in VALID + LENIENT if c["direction"] == "server"]


def frame_from_json(obj: dict) -> ClientFrame | ServerFrame:
    fields = {k: v for k, v in obj.items() if k != "op"}
    return TYPES[Op(obj["op"])](**fields)


def decoder(direction: str):
    return {"client": decode_client, "server": decode_server}[direction]


def ids(cases: list[dict]) -> list[str]:
    return [c["name"] for c in cases]


# --- the files ---------------------------------------------------------------------------------


def test_committed_vectors_are_what_generate_writes_now():
    built = generate.build()
    assert sorted(p.name for p in HERE.glob("*.json")) == sorted(built)
    for name, text in built.items():
        assert (HERE / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m proto.vectors.generate")


def test_vector_names_are_unique_and_cases_have_the_documented_keys():
    for cases, keys in [(VALID, {"name", "direction", "hex", "frame"}),
                        (LENIENT, {"name", "direction", "hex", "frame"}),
                        (INVALID, {"name", "direction", "hex", "reason_contains"})]:
        assert len({c["name"] for c in cases}) == len(cases)
        for case in cases:
            assert set(case) == keys
            assert case["direction"] in {"client", "server"}
            assert case["hex"] == case["hex"].lower()
    for case in TOKENS:
        assert set(case) == {"secret", "app", "rid", "exp", "token"}


def test_every_frame_type_has_a_vector_with_and_without_its_optional_fields():
    frames_of = [frame_from_json(c["frame"]) for c in VALID]
    assert {f.OP for f in frames_of} == set(Op)
    for cls in TYPES.values():
        optional = [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
        mine = [f for f in frames_of if type(f) is cls]
        if optional:
            assert any(all(getattr(f, o.name) == o.default for o in optional) for f in mine), cls
        for o in optional:
            if o.name != "v":
                assert any(getattr(f, o.name) != o.default for f in mine), (cls, o.name)


def test_json_numbers_stay_exact_in_every_json_parser():
    def ints(value):
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from ints(v)
    for case in VALID + LENIENT:
        assert all(abs(i) <= 2**53 - 1 for i in ints(case["frame"])), case["name"]


# --- valid vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", VALID + LENIENT, ids=ids(VALID + LENIENT))
def test_vector_decodes_to_its_frame(case):
    frame = decoder(case["direction"])(bytes.fromhex(case["hex"]))
    assert frame == frame_from_json(case["frame"])
    assert json.loads(json.dumps(generate.frame_json(frame))) == case["frame"]


@pytest.mark.parametrize("case", VALID, ids=ids(VALID))
def test_vector_frame_encodes_to_exactly_its_bytes(case):
    assert encode(frame_from_json(case["frame"])).hex() == case["hex"]


@pytest.mark.parametrize("case", LENIENT, ids=ids(LENIENT))
def test_lenient_vector_is_not_how_herald_encodes_it(case):
    frame = frame_from_json(case["frame"])
    assert encode(frame).hex() != case["hex"]
    assert decoder(case["direction"])(encode(frame)) == frame


@pytest.mark.parametrize("case", INVALID, ids=ids(INVALID))
def test_invalid_vector_is_refused_with_its_reason(case):
    with pytest.raises(DecodeError) as info:
        decoder(case["direction"])(bytes.fromhex(case["hex"]))
    assert case["reason_contains"] in info.value.reason


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TOKENS, ids=[f"{c['app']}-{c['rid']}" for c in TOKENS])
def test_token_vector_signs_and_verifies(case):
    secret = case["secret"].encode()
    assert sign(secret, case["app"], case["rid"], case["exp"]) == case["token"]
    assert verify(secret, case["app"], case["rid"], case["token"], case["exp"]) == case["exp"]
    with pytest.raises(TokenError, match="expired"):
        verify(secret, case["app"], case["rid"], case["token"], case["exp"] + 1)
    with pytest.raises(TokenError, match="does not match"):
        verify(secret + b"x", case["app"], case["rid"], case["token"], case["exp"])


def test_hello_vectors_carry_a_token_of_the_token_vectors():
    first = TOKENS[0]
    hellos = [c["frame"] for c in VALID if c["frame"]["op"] == Op.HELLO]
    assert hellos
    for hello in hellos:
        assert (hello["app"], hello["rid"], hello["token"]) == (
            first["app"], first["rid"], first["token"])


# --- the reference client's decoding path ------------------------------------------------------


def test_reference_client_decodes_with_proto_frames_decode_server():
    assert herald.device.frames is frames
    source = inspect.getsource(Device)
    assert "frames.decode_server(" in source
    assert "decode_client" not in source


@pytest.mark.parametrize("case", SERVER_VALID, ids=ids(SERVER_VALID))
def test_server_vector_decodes_through_the_reference_client_path(case):
    frame = herald.device.frames.decode_server(bytes.fromhex(case["hex"]))
    assert frame == frame_from_json(case["frame"])
    if isinstance(frame, Push):
        message = message_of(frame)
        assert isinstance(message, Message)
        assert message == msgspec.convert(case["frame"]["msg"], Message)
        assert frames.message_map(message) == frame.msg


class FakeSocket:
    """What ``Device._read`` uses of a websocket: async iteration and ``send``."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self.sent: list[bytes] = []

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        for message in self.messages:
            yield message

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


async def read_all(messages: list[bytes]) -> tuple[Device, FakeSocket]:
    device = Device(app_id="demo.app", client_key="ck")
    socket = FakeSocket(messages)
    device._ws = socket  # type: ignore[assignment]
    await device._read()
    return device, socket


async def test_reference_client_reads_every_server_vector():
    messages = [bytes.fromhex(c["hex"]) for c in SERVER_VALID]
    pushes = [f for f in map(decode_server, messages) if isinstance(f, Push)]
    duplicate = encode(pushes[0])
    device, socket = await read_all([*messages, duplicate])
    # Every PUSH is acknowledged, the duplicate too; each message id is shown once.
    acks = [decode_client(data) for data in socket.sent]
    assert acks == [Ack(p.mid) for p in [*pushes, pushes[0]]]
    assert device.received == len(pushes) + 1
    assert [p.mid for p in device.shown] == list(dict.fromkeys(p.mid for p in pushes))
    assert all(isinstance(message_of(p), Message) for p in device.shown)
    recalls = [f for f in map(decode_server, messages) if isinstance(f, Recall)]
    assert device.recalled == [r.mid for r in recalls]
    byes = [f for f in map(decode_server, messages) if isinstance(f, Bye)]
    assert device.bye == byes[-1]


async def test_reference_client_ignores_an_unknown_server_op():
    push = encode(Push(mid="m1", task="t1", msg={"title": "Hi"}))
    device, _ = await read_all([msgpack.packb({"op": 99, "x": 1}), push])
    assert [p.mid for p in device.shown] == ["m1"]
