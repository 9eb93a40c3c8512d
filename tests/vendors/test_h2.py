"""The HTTP/2 client of ``vendors.h2`` against a real local HTTP/2 server over TLS (h2,
server side, on asyncio), steered per request path."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from herald.devcert import self_signed
from tests.harness import eventually, free_port
from vendors.errors import RateLimitedError, RejectedError, TransientError
from vendors.h2 import H2Client


class _ServerConnection(asyncio.Protocol):
    """One connection of the test server: answers by path, holds, resets or drops."""

    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[str, bytearray]] = {}
        self.outgoing: dict[int, bytes] = {}
        self.open = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.append(self)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams})
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.server.errors.append(str(exc))
            self.transport.abort()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                self.requests[event.stream_id] = (headers[":path"], bytearray())
                self.server.headers.append(headers)
                self.server.unindexed.append({name for name, _ in (
                    h for h in event.headers if isinstance(h, hpack.NeverIndexedHeaderTuple))})
                self.open += 1
                self.server.peak = max(self.server.peak, self.open)
                if headers[":path"] == "/drop":
                    self.transport.abort()
                    return
            elif isinstance(event, h2.events.DataReceived):
                self.requests[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.route(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets.append((event.stream_id, event.error_code))
                self.open -= 1
            elif isinstance(event, h2.events.WindowUpdated):
                self.send_pending()
        self.flush()

    def route(self, stream_id: int) -> None:
        path, body = self.requests[stream_id]
        if path == "/hold":
            self.server.held.append((self, stream_id))
        elif path == "/reset":
            self.open -= 1
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
        elif path.startswith("/status/"):
            self.answer(stream_id, int(path.removeprefix("/status/")),
                        [("retry-after", "7")])
        elif path.startswith("/big/"):
            self.answer(stream_id, 200, body=b"x" * int(path.removeprefix("/big/")))
        else:
            self.answer(stream_id, 200, body=hashlib.sha256(body).hexdigest().encode())

    def answer(self, stream_id: int, status: int, headers: list[tuple[str, str]] = (),
               body: bytes = b"") -> None:
        self.open -= 1
        self.h2.send_headers(stream_id, [(":status", str(status)), *headers],
                             end_stream=not body)
        if body:
            self.outgoing[stream_id] = body
            self.send_pending()
        self.flush()

    def send_pending(self) -> None:
        for stream_id, data in list(self.outgoing.items()):
            while data:
                size = min(len(data), self.h2.local_flow_control_window(stream_id),
                           self.h2.max_outbound_frame_size)
                if size <= 0:
                    break
                self.h2.send_data(stream_id, data[:size], end_stream=size == len(data))
                data = data[size:]
            if data:
                self.outgoing[stream_id] = data
            else:
                del self.outgoing[stream_id]

    def goaway(self, last_stream_id: int) -> None:
        """GOAWAY written by hand: h2 would refuse to answer the streams it lets finish."""
        self.transport.write(GoAwayFrame(0, last_stream_id=last_stream_id).serialize())

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)


class H2Server:
    """A TLS HTTP/2 server on loopback with ``max_streams`` concurrent streams per connection;
    ``alpn`` is what it agrees to (``()`` for no ALPN at all)."""

    def __init__(self, *, max_streams: int = 100, alpn: tuple[str, ...] = ("h2",)) -> None:
        self.max_streams = max_streams
        self.alpn = alpn
        self.connections: list[_ServerConnection] = []
        self.headers: list[dict[str, str]] = []
        #: Per request, the names of the headers sent never-indexed.
        self.unindexed: list[set[str]] = []
        self.held: list[tuple[_ServerConnection, int]] = []
        self.resets: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.peak = 0

    def release(self, count: int) -> None:
        """Answer the ``count`` oldest held requests with 200."""
        for connection, stream_id in self.held[:count]:
            connection.answer(stream_id, 200, body=b"released")
        del self.held[:count]


@pytest.fixture
async def tls() -> AsyncIterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed(Path(folder))
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        yield server, ssl.create_default_context(cafile=str(cert))


async def _serve(server: H2Server, server_ssl: ssl.SSLContext) -> tuple[asyncio.Server, str]:
    if server.alpn:
        server_ssl.set_alpn_protocols(list(server.alpn))
    port = free_port()
    listener = await asyncio.get_running_loop().create_server(
        lambda: _ServerConnection(server), "127.0.0.1", port, ssl=server_ssl)
    return listener, f"https://127.0.0.1:{port}"


@pytest.fixture
async def serve(tls):
    """``await serve(H2Server(...), timeout_s=...)``: the server's client, closed afterwards."""
    server_ssl, client_ssl = tls
    opened: list[tuple[asyncio.Server, H2Client]] = []

    async def start(server: H2Server, **options: float) -> H2Client:
        listener, url = await _serve(server, server_ssl)
        client = H2Client(url, verify=client_ssl, **{"timeout_s": 5.0, **options})
        opened.append((listener, client))
        return client

    yield start
    for listener, client in opened:
        await client.close()
        listener.close()
        await listener.wait_closed()


async def test_requests_beyond_the_servers_stream_limit_wait_their_turn(serve):
    server = H2Server(max_streams=3)
    client = await serve(server)
    sending = [asyncio.create_task(client.request("POST", "/hold", {}, b"n"))
               for _ in range(12)]
    # Released one at a time: a client opening more than 3 streams would show more held.
    for left in range(12, 0, -1):
        expected = min(3, left)
        await eventually(lambda n=expected: len(server.held) == n, 5, f"{expected} held")
        server.release(1)
    answers = await asyncio.gather(*sending)
    assert [a.status for a in answers] == [200] * 12
    assert {a.body for a in answers} == {b"released"}
    assert server.peak == 3 and not server.errors and len(server.connections) == 1
    assert client.in_flight == 0


async def test_many_concurrent_requests_share_one_connection(serve):
    server = H2Server(max_streams=3)
    client = await serve(server)
    bodies = [f"body {n}".encode() for n in range(200)]
    answers = await asyncio.gather(*(client.request("POST", "/echo", {"x-n": str(n)}, body)
                                     for n, body in enumerate(bodies)))
    assert [a.body for a in answers] == [hashlib.sha256(b).hexdigest().encode() for b in bodies]
    assert server.peak <= 3 and len(server.connections) == 1
    assert server.headers[0][":authority"].startswith("127.0.0.1:")
    assert server.headers[0]["content-length"] == "6"


async def test_headers_new_with_every_request_stay_out_of_the_hpack_table(serve):
    server = H2Server()
    client = await serve(server)
    for n in range(300):
        answer = await client.request("POST", f"/device/{n:064x}", {
            "authorization": "bearer the-same-token", "apns-id": f"id-{n}"}, b"x",
            unique={":path", "apns-id"})
        assert answer.status == 200
    assert [h[":path"] for h in server.headers] == [f"/device/{n:064x}" for n in range(300)]
    assert all(names == {":path", "apns-id"} for names in server.unindexed)
    assert {h["authorization"] for h in server.headers} == {"bearer the-same-token"}
    # The table holds the repeated headers only: 300 paths and ids would have filled it.
    table = client._current._h2.encoder.header_table
    assert len(table.dynamic_entries) <= 4


async def test_a_body_larger_than_the_window_waits_for_window_updates(serve):
    server = H2Server()
    client = await serve(server)
    body = bytes(range(256)) * 1200  # 307,200 bytes, over the initial 65,535-byte window
    answers = await asyncio.gather(*(client.request("POST", "/echo", {}, body + bytes([n]))
                                     for n in range(3)))
    assert [a.body for a in answers] == [
        hashlib.sha256(body + bytes([n])).hexdigest().encode() for n in range(3)]


async def test_received_data_is_acknowledged_so_the_window_never_starves(serve):
    server = H2Server()
    client = await serve(server)
    # 24 MiB in all on one connection: more than our 16 MiB receive window.
    for _ in range(3):
        answer = await client.request("GET", f"/big/{8 * 2**20}", {})
        assert answer.status == 200 and len(answer.body) == 8 * 2**20
    assert len(server.connections) == 1


async def test_goaway_finishes_lower_streams_and_fails_the_others(serve):
    server = H2Server()
    client = await serve(server)
    sending = [asyncio.create_task(client.request("POST", "/hold", {}, b"n")) for _ in range(6)]
    await eventually(lambda: len(server.held) == 6, 5, "6 held requests")
    first, ids = server.connections[0], sorted(stream_id for _, stream_id in server.held)
    first.goaway(last_stream_id=ids[2])
    first.flush()
    await eventually(lambda: sum(t.done() for t in sending) == 3, 5, "3 streams failed")
    for connection, stream_id in list(server.held):
        if stream_id <= ids[2]:
            connection.answer(stream_id, 200, body=b"late")
    outcomes = await asyncio.gather(*sending, return_exceptions=True)
    assert [o.body for o in outcomes[:3]] == [b"late"] * 3
    assert all(isinstance(o, TransientError) and "GOAWAY" in o.reason for o in outcomes[3:])
    answer = await client.request("POST", "/echo", {}, b"after")
    assert answer.status == 200 and len(server.connections) == 2
    await eventually(lambda: first.lost, 5, "the old connection closed by the client")


async def test_a_dropped_connection_fails_in_flight_requests_then_reconnects(serve):
    server = H2Server()
    client = await serve(server)
    held = asyncio.create_task(client.request("POST", "/hold", {}, b"n"))
    await eventually(lambda: server.held, 5, "a held request")
    with pytest.raises(TransientError, match="lost"):
        await client.request("POST", "/drop", {}, b"n")
    with pytest.raises(TransientError, match="lost"):
        await held
    answer = await client.request("POST", "/echo", {}, b"again")
    assert answer.status == 200 and len(server.connections) == 2


async def test_a_server_that_never_answers_times_out_and_leaks_nothing(serve):
    server = H2Server()
    client = await serve(server, timeout_s=0.3)
    with pytest.raises(TransientError, match="ReadTimeout"):
        await client.request("POST", "/hold", {}, b"n")
    assert client.in_flight == 0
    ((_, stream_id),) = server.held
    await eventually(lambda: server.resets == [(stream_id, ErrorCodes.CANCEL)], 5,
                     "the stream reset by the client")
    assert (await client.request("POST", "/echo", {}, b"ok")).status == 200
    assert len(server.connections) == 1


async def test_rst_stream_fails_that_stream_only(serve):
    server = H2Server()
    client = await serve(server)
    reset, fine = await asyncio.gather(client.request("POST", "/reset", {}, b"n"),
                                       client.request("POST", "/echo", {}, b"n"),
                                       return_exceptions=True)
    assert isinstance(reset, TransientError) and "REFUSED_STREAM" in reset.reason
    assert fine.status == 200 and len(server.connections) == 1


async def test_429_and_5xx_raise_as_vendors_http_does(serve):
    client = await serve(H2Server())
    with pytest.raises(RateLimitedError) as limited:
        await client.call("POST", "/status/429", {}, b"n")
    assert limited.value.retry_after_s == 7
    with pytest.raises(TransientError, match="HTTP 503") as unavailable:
        await client.call("POST", "/status/503", {}, b"n")
    assert not isinstance(unavailable.value, RateLimitedError)
    answer = await client.call("POST", "/status/400", {}, b"n")
    assert answer.status == 400 and answer.headers["retry-after"] == "7"
    assert (await client.request("POST", "/status/503", {}, b"n")).status == 503


@pytest.mark.parametrize("alpn", [("http/1.1",), ()])
async def test_a_server_without_http2_is_a_clear_error(serve, alpn):
    server = H2Server(alpn=alpn)
    client = await serve(server)
    with pytest.raises(TransientError, match="does not speak HTTP/2"):
        await client.request("POST", "/echo", {}, b"n")
    assert not server.headers


async def test_a_header_http2_cannot_carry_is_refused_and_the_connection_lives_on(serve):
    server = H2Server()
    client = await serve(server)
    for headers in ({"x-bad": "a\r\nb"}, {"X-Upper": "v"}, {"x-space": " v"}):
        with pytest.raises(RejectedError, match="forbids"):
            await client.request("POST", "/echo", headers, b"n")
    assert (await client.request("POST", "/echo", {"x-good": "v"}, b"n")).status == 200
    assert len(server.headers) == 1 and not server.errors


async def test_a_cancelled_request_resets_its_stream(serve):
    server = H2Server()
    client = await serve(server)
    held = asyncio.create_task(client.request("POST", "/hold", {}, b"n"))
    await eventually(lambda: server.held, 5, "a held request")
    held.cancel()
    await eventually(lambda: server.resets, 5, "the stream reset")
    assert client.in_flight == 0
    assert (await client.request("POST", "/echo", {}, b"n")).status == 200


async def test_an_idle_connection_is_closed_after_the_keepalive(serve):
    server = H2Server()
    client = await serve(server, timeout_s=0.2, keepalive_s=0.3)
    assert (await client.request("POST", "/echo", {}, b"n")).status == 200
    await eventually(lambda: server.connections[0].lost, 5, "the idle connection closed")
    assert (await client.request("POST", "/echo", {}, b"n")).status == 200
    assert len(server.connections) == 2


async def test_connect_failures_are_transient():
    client = H2Client(f"https://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(TransientError, match="ConnectError"):
        await client.request("POST", "/x", {}, b"n")
    await client.close()


async def test_an_untrusted_certificate_is_a_transient_error(tls):
    server_ssl, _ = tls
    listener, url = await _serve(H2Server(), server_ssl)
    client = H2Client(url, timeout_s=2)  # certifi's roots: the self-signed cert is unknown
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.request("POST", "/x", {}, b"n")
    await client.close()
    listener.close()
    await listener.wait_closed()


async def test_the_base_urls_path_prefixes_every_request(tls):
    server_ssl, client_ssl = tls
    server = H2Server()
    listener, url = await _serve(server, server_ssl)
    client = H2Client(f"{url}/dev/", timeout_s=2, verify=client_ssl)
    assert (await client.request("POST", "/x", {}, b"n")).status == 200
    assert server.headers[0][":path"] == "/dev/x"
    await client.close()
    listener.close()
    await listener.wait_closed()
