"""Slow and oversized requests against a real `trigger-api serve`: deadlines for the request head
and body free the connection and its descriptor; a head over the limit gets 431."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

TIMEOUT = 0.5  # the head and body deadlines these tests set: short, so they run fast
LIMITS = {
    "TRIGGER_HEADER_TIMEOUT": str(TIMEOUT),
    "TRIGGER_BODY_TIMEOUT": str(TIMEOUT),
    "TRIGGER_MAX_HEADER_BYTES": "8192",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("protocol")
    running = Server(tmp, "--db", str(tmp / "protocol.db"), env=LIMITS)
    yield running
    running.stop()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def content_length(head: bytes) -> int:
    return next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )


def read_response(sock: socket.socket) -> bytes:
    """One whole response on a kept-alive connection (it may arrive in several pieces)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = content_length(head)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def problem_of(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def open_descriptors(server: Server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def test_a_head_that_stalls_gets_408_and_the_connection_closes(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: api\r\nContent-Le")
        answer = read_all(sock)
        waited = time.monotonic() - started

    status, headers, problem = problem_of(answer)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert problem["code"] == "request_timeout"
    assert problem["request_id"] == headers["x-request-id"]
    assert TIMEOUT * 0.8 < waited < TIMEOUT + 5


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        status, _, _ = problem_of(read_all(sock))

    assert status == 408


def test_a_body_that_stalls_has_its_connection_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b'POST /v1/events HTTP/1.1\r\nHost: api\r\nContent-Length: 100\r\n\r\n{"half": '
        )
        started = time.monotonic()
        read_all(sock)
        waited = time.monotonic() - started

    assert waited < TIMEOUT + 5
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_stalled_connections_give_back_their_descriptors(server: Server) -> None:
    before = open_descriptors(server)
    stalled = [connect(server) for _ in range(100)]
    for sock in stalled:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\n")
    time.sleep(0.2)
    held = open_descriptors(server)

    for sock in stalled:
        read_all(sock)
        sock.close()
    deadline = time.monotonic() + 10
    while open_descriptors(server) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)

    assert held >= before + 90
    assert open_descriptors(server) <= before + 2


def test_a_kept_alive_connection_serves_the_next_request_and_times_its_head(
    server: Server,
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n")
        first = read_response(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n")
        second = read_response(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        third = read_all(sock)

    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")
    assert problem_of(third)[0] == 408


def split_responses(data: bytes) -> list[bytes]:
    """Responses sent one after another on a connection, each with a Content-Length."""
    responses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = content_length(head)
        responses.append(head + b"\r\n\r\n" + rest[:length])
        data = rest[length:]
    return responses


def test_pipelined_requests_get_their_answers_whole_and_in_order(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: api\r\nX-Request-ID: one\r\n\r\n"
            b"GET /nowhere HTTP/1.1\r\nHost: api\r\nX-Request-ID: two\r\n\r\n"
            b"GET /health HTTP/1.1\r\nHost: api\r\nX-Request-ID: three\r\n"
            b"Connection: close\r\n\r\n"
        )
        answers = split_responses(read_all(sock))

    assert [problem_of(a)[0] for a in answers] == [200, 404, 200]
    assert [problem_of(a)[1]["x-request-id"] for a in answers] == ["one", "two", "three"]
    assert problem_of(answers[1])[2]["code"] == "not_found"


def test_a_websocket_upgrade_is_refused_and_the_server_goes_on(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /v1/events HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        refused = read_all(sock)

    assert refused.startswith(b"HTTP/1.1 403 ")
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_long_poll_outlives_the_body_deadline(server: Server) -> None:
    key = server.keys()["acme"]
    started = time.monotonic()
    claimed = httpx.post(
        f"{server.url}/v1/events/claim",
        json={"wait_seconds": 2},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )

    assert claimed.status_code == 200
    assert time.monotonic() - started >= 1.9


def test_headers_over_the_limit_get_431(server: Server) -> None:
    small = httpx.get(f"{server.url}/health", headers={"X-Pad": "x" * 6000})
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\nX-Pad: " + b"x" * 9000 + b"\r\n\r\n")
        status, headers, problem = problem_of(read_all(sock))

    assert small.status_code == 200
    assert status == 431
    assert problem["code"] == "request_header_fields_too_large"
    assert problem["request_id"] == headers["x-request-id"]


def test_a_huge_header_sent_in_pieces_is_refused_before_it_ends(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer tk_")
        refused = None
        for _ in range(1000):  # up to 4 MB, never finishing the header
            try:
                sock.sendall(b"a" * 4096)
            except OSError:  # the server closed the connection: refused
                break
            time.sleep(0.001)
        refused = read_all(sock)

    assert problem_of(refused)[0] == 431


def test_every_answer_to_a_bad_request_is_a_problem_with_a_request_id(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, problem = problem_of(read_all(sock))

    assert status == 400
    assert problem["request_id"] == headers["x-request-id"]


def test_limits_are_settings(tmp_path: Path) -> None:
    quick = Server(tmp_path, "--db", str(tmp_path / "q.db"), env={"TRIGGER_HEADER_TIMEOUT": "0.2"})
    try:
        with connect(quick) as sock:
            started = time.monotonic()
            read_all(sock)
            waited = time.monotonic() - started
    finally:
        quick.stop()

    assert waited < 1.5
