"""The web entry point (`python -m config.serve`, daphne): oversized bodies refused while they
arrive, and database connections reused from the per-process pool."""

import socket

import pytest
import requests
from django.conf import settings
from django.db import connection

from config.body_limits import max_request_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def raw_request(port: int, head: bytes, body_chunks, read_timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as conn:
        conn.sendall(head)
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: what we expect once it answered 413
        answer = b""
        try:
            while part := conn.recv(65536):
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def test_declared_oversized_body_is_refused_before_it_is_sent(daphne_pair):
    port = daphne_pair[0].port
    head = (
        f"POST /api/v1/documents/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {max_request_bytes() + 1}\r\n\r\n"
    ).encode()
    answer = raw_request(port, head, [])  # no body sent at all
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer


def test_chunked_oversized_body_is_cut_off(daphne_pair):
    port = daphne_pair[0].port
    head = b"POST /api/v1/documents/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * (1024 * 1024)
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    total_chunks = max_request_bytes() // len(chunk) + 20
    answer = raw_request(port, head, (framed for _ in range(total_chunks)))
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer


def test_normal_requests_are_untouched(daphne_pair):
    import requests

    response = requests.post(
        f"{daphne_pair[0].http}/api/v1/auth/login/", json={"email": "a@b.c", "password": "x"}, timeout=10
    )
    assert response.status_code == 401 and response.json()["type"] == "client_error"


def server_backends(application_name: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return {pid for (pid,) in cursor.fetchall()}


def test_database_connections_are_reused_from_the_pool(daphne_pair):
    """Under ASGI each request's sync code runs in a new thread and context. With Django's
    per-context persistent connections every request opened (and later dropped) its own
    PostgreSQL connection; the per-process pool hands the same few out again."""
    server = daphne_pair[0]
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    seen: set[int] = set()
    with requests.Session() as http:
        for _ in range(3 * pool_max):
            assert http.get(f"{server.http}/health/ready", timeout=10).status_code == 200
            seen |= server_backends(server.application_name)
    assert 1 <= len(seen) <= pool_max
