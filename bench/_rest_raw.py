"""The raw limit for `GET /api/v1/documents/`: a minimal ASGI app doing the same work.

Serve it with the same server as Precis:
    daphne -b 127.0.0.1 -p PORT bench._rest_raw:application
Environment: DATABASE_URL, SECRET_KEY (as bench.common.bench_env sets them), RAW_POOL
(async psycopg connections, default 2).

Per request, like Precis' list view (accounts/authentication.py, documents/selectors.py,
config/pagination.py, documents/serializers.py):
  1. the Bearer JWT is decoded with PyJWT (HS256, same SECRET_KEY; exp, token_type and jti
     checked like simplejwt);
  2. in one transaction (Precis runs with ATOMIC_REQUESTS): one query for the user joined
     with the org (user active, org active, org equal to the token's org_id, password hash
     claim), then the page query: the same columns as LIST_FIELDS, the 300-character
     excerpt cut in SQL and the correlated summary_count subquery, filtered by org, ordered
     by created_at desc, limit page_size + 1;
  3. the same JSON shape and values: {next, previous, results} with DRF's cursor encoding
     and DRF's datetime format.
No Django, no middleware, no serializer classes. `GET /ceiling/` answers the last list
body from memory (no database): the server's own cost for a body of that size.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from urllib.parse import parse_qs, urlencode

import jwt
import psycopg

SECRET_KEY = os.environ.get("SECRET_KEY", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
POOL_SIZE = int(os.environ.get("RAW_POOL", "2"))
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100

USER_SQL = """
SELECT u.id, u.is_active, u.password, u.org_id, o.is_active
FROM accounts_user u LEFT JOIN organizations_organization o ON o.id = u.org_id
WHERE u.id = %s
"""

PAGE_SQL = """
SELECT d.id, d.title, SUBSTRING(d.content, 1, 300) AS excerpt, d.content_type, d.source,
       d.source_ref, d.metadata, d.char_count, d.sha256, d.file, d.created_by_id,
       d.created_at, d.updated_at, d.org_id,
       COALESCE((SELECT COUNT(u0.id) FROM summaries_summary u0
                 WHERE u0.document_id = d.id GROUP BY u0.document_id), 0) AS summary_count
FROM documents_document d
WHERE d.org_id = %s
ORDER BY d.created_at DESC
LIMIT %s
"""

_pool: asyncio.Queue | None = None
_pool_lock = asyncio.Lock()
_last_body = b'{"next":null,"previous":null,"results":[]}'


async def _get_pool() -> asyncio.Queue:
    global _pool
    async with _pool_lock:
        if _pool is None:
            pool: asyncio.Queue = asyncio.Queue()
            for _ in range(POOL_SIZE):
                conn = await psycopg.AsyncConnection.connect(DATABASE_URL, autocommit=True)
                await conn.execute("SET TIME ZONE 'UTC'")
                pool.put_nowait(conn)
            _pool = pool
    return _pool


def _drf_datetime(value) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def page_size(query: dict[str, list[str]]) -> int:
    try:
        size = int(query["page_size"][0])
    except (KeyError, ValueError, IndexError):
        return DEFAULT_PAGE_SIZE
    if size <= 0:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


def authenticate(headers: list[tuple[bytes, bytes]]) -> dict | None:
    for name, value in headers:
        if name == b"authorization":
            parts = value.split()
            if len(parts) == 2 and parts[0] == b"Bearer":
                try:
                    claims = jwt.decode(parts[1], SECRET_KEY, algorithms=["HS256"], options={"require": ["exp"]})
                except jwt.PyJWTError:
                    return None
                if claims.get("token_type") != "access" or "jti" not in claims or "user_id" not in claims:
                    return None
                return claims
    return None


async def _send(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _next_link(scope: dict, position: str) -> str:
    # DRF: encode_cursor + replace_query_param (query items sorted, cursor set).
    encoded = base64.b64encode(urlencode({"p": position}).encode("ascii")).decode("ascii")
    query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
    query["cursor"] = [encoded]
    host = next((v.decode() for k, v in scope["headers"] if k == b"host"), "127.0.0.1")
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}?" + urlencode(sorted(query.items()), doseq=True)


def claimed_user_id(claims: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(claims["user_id"]))
    except ValueError:
        return None


def user_is_valid(user, claims: dict) -> bool:
    """The USER_SQL row against the token: active user in an active org, the token's org,
    the password-hash claim (accounts/tokens.py)."""
    return not (
        user is None
        or not user[1]
        or user[3] is None
        or str(user[3]) != claims.get("org_id")
        or not user[4]
        or claims.get("hash_password") != hashlib.md5(user[2].encode()).hexdigest().upper()
    )


def list_body(rows: list, size: int, scope: dict) -> bytes:
    """The JSON of a page from PAGE_SQL rows (size + 1 fetched: the extra one means a next page)."""
    page = rows[:size]
    results = [
        {
            "id": str(r[0]),
            "title": r[1],
            "excerpt": r[2],
            "content_type": r[3],
            "source": r[4],
            "source_ref": r[5],
            "metadata": r[6],
            "char_count": r[7],
            "sha256": r[8],
            "file_name": r[9].rsplit("/", 1)[-1] if r[9] else None,
            "created_by": str(r[10]) if r[10] is not None else None,
            "created_at": _drf_datetime(r[11]),
            "updated_at": _drf_datetime(r[12]),
            "summary_count": r[14],
        }
        for r in page
    ]
    next_link = _next_link(scope, str(page[-1][11])) if len(rows) > size else None
    return json.dumps(
        {"next": next_link, "previous": None, "results": results}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


async def _list(scope, send) -> None:
    global _last_body
    claims = authenticate(scope["headers"])
    if claims is None:
        await _send(send, 401, b'{"detail":"Authentication credentials were not provided."}')
        return
    query = parse_qs(scope.get("query_string", b"").decode())
    size = page_size(query)
    pool = await _get_pool()
    conn = await pool.get()
    try:
        async with conn.transaction():
            user_id = claimed_user_id(claims)
            user = None
            if user_id is not None:
                user = await (await conn.execute(USER_SQL, [user_id])).fetchone()
            if not user_is_valid(user, claims):
                await _send(send, 401, b'{"detail":"Token is not valid."}')
                return
            rows = await (await conn.execute(PAGE_SQL, [user[3], size + 1])).fetchall()
    finally:
        pool.put_nowait(conn)
    body = list_body(rows, size, scope)
    _last_body = body
    await _send(send, 200, body)


async def application(scope, receive, send):
    if scope["type"] == "lifespan":  # uvicorn
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    while not _pool.empty():
                        await _pool.get_nowait().close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/api/v1/documents/" and scope["method"] == "GET":
        await _list(scope, send)
    elif path == "/ceiling/":
        await _send(send, 200, _last_body)
    else:
        await _send(send, 404, b'{"detail":"Not found."}')
