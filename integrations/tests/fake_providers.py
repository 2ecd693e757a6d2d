"""Loopback stand-ins for the outside services, speaking their real protocols.

- an OAuth2 authorization server: issues codes bound to client, redirect URI and
  PKCE challenge (from `authorize()`, or to a real browser from a consent page
  that approves at once and redirects back); its token endpoint checks client credentials (HTTP Basic), the
  exact redirect URI and the S256 verifier, refreshes (rotating refresh tokens)
  and revokes;
- the Google Drive v3, Notion and Slack Web APIs (the request/response shapes
  Precis uses, with cursor pagination, Bearer checks -> 401);
- a webhook receiver that records bodies and headers.
Any path can be scripted to fail (429 with Retry-After, 401, 500). 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID, CLIENT_SECRET = "precis-client", "precis-secret"


@dataclass
class Failure:
    status: int
    body: dict | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class FakeProviders:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.codes: dict[str, dict] = {}
            self.access_tokens: dict[str, dict] = {}
            self.refresh_tokens: dict[str, str] = {}
            self.revoked: list[str] = []
            self.failures: dict[str, list[Failure]] = {}
            self.calls: list[tuple[str, str]] = []
            self.webhooks: list[dict] = []
            self.slack_messages: list[dict] = []
            self.notion_created: list[dict] = []
            self.notion_appended: list[dict] = []
            self.access_ttl = 3600
            # Drive: files and one folder (paged 2 per page)
            self.drive_files: dict[str, dict] = {}
            self.drive_folders: dict[str, list[str]] = {}
            # Notion: pages -> blocks (block id -> children)
            self.notion_pages: dict[str, dict] = {}
            self.notion_children: dict[str, list[dict]] = {}

    # -- the "browser" part of the flow ----------------------------------------------------
    def authorize(self, authorization_url: str) -> tuple[str, str]:
        """What the provider's consent page does: returns (code, state) for the callback."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"]}
        return code, query["state"]

    def fail(self, path: str, *failures: Failure) -> None:
        with self.lock:
            self.failures.setdefault(path, []).extend(failures)

    def issue_token(self) -> str:
        token = "at-" + secrets.token_urlsafe(12)
        with self.lock:
            self.access_tokens[token] = {}
        return token

    # -- the HTTP server ---------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body, headers: dict | None = None, raw: bytes | None = None):
                data = raw if raw is not None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", (headers or {}).pop("Content-Type", "application/json"))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self, method: str):
                parts = urlsplit(self.path)
                path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self._body()
                with fake.lock:
                    fake.calls.append((method, path))
                    scripted = fake.failures.get(path)
                    failure = scripted.pop(0) if scripted else None
                if failure:
                    return self._reply(failure.status, failure.body, dict(failure.headers))
                if path == "/oauth/authorize" and method == "GET":  # a consent page that approves at once
                    code, state = fake.authorize(f"{fake.url}{self.path}")
                    back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': state})}"
                    return self._reply(302, b"", {"Location": back, "Content-Type": "text/plain"})
                if path == "/oauth/token":
                    return self._token(parse_qs(body.decode()))
                if path == "/oauth/revoke":
                    fake.revoked.append(parse_qs(body.decode()).get("token", [""])[0])
                    return self._reply(200, {})
                if path == "/hook" or path.startswith("/hook/"):
                    fake.webhooks.append({"body": body, "headers": dict(self.headers)})
                    return self._reply(200, {"received": True})
                if path == "/redirect-to-private":
                    return self._reply(302, {}, {"Location": "http://10.0.0.1/secret"})
                if path.startswith("/pages/"):
                    return self._reply(200, b"", {"Content-Type": "text/html"}, raw=PAGE)
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in fake.access_tokens:
                    if path.startswith("/slack/"):
                        return self._reply(200, {"ok": False, "error": "invalid_auth"})
                    return self._reply(401, {"error": {"code": 401, "message": "Invalid Credentials"}})
                if path.startswith("/drive/"):
                    return self._drive(path, query)
                if path.startswith("/v1/"):
                    return self._notion(method, path, query, json.loads(body or b"{}"))
                if path.startswith("/slack/"):
                    return self._slack(path, json.loads(body or b"{}"))
                return self._reply(404, {"error": "not found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

            # -- OAuth token endpoint ------------------------------------------------------------
            def _token(self, form: dict):
                form = {k: v[0] for k, v in form.items()}
                basic = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if basic != expected:
                    return self._reply(401, {"error": "invalid_client"})
                if form.get("grant_type") == "authorization_code":
                    with fake.lock:
                        grant = fake.codes.pop(form.get("code", ""), None)
                    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                        return self._reply(400, {"error": "invalid_grant"})
                    verifier = form.get("code_verifier", "")
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    if challenge.decode() != grant["challenge"]:
                        return self._reply(400, {"error": "invalid_grant", "error_description": "PKCE mismatch"})
                elif form.get("grant_type") == "refresh_token":
                    with fake.lock:
                        if form.get("refresh_token") not in fake.refresh_tokens:
                            return self._reply(400, {"error": "invalid_grant"})
                        fake.refresh_tokens.pop(form["refresh_token"])
                else:
                    return self._reply(400, {"error": "unsupported_grant_type"})
                access = fake.issue_token()
                refresh = "rt-" + secrets.token_urlsafe(12)
                with fake.lock:
                    fake.refresh_tokens[refresh] = access
                return self._reply(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": fake.access_ttl,
                        "refresh_token": refresh,
                        "scope": "drive.readonly",
                        # Slack and Notion add their own fields to the same answer:
                        "ok": True,
                        "team": {"id": "T1", "name": "Acme Slack"},
                        "workspace_id": "W1",
                        "workspace_name": "Acme Notion",
                    },
                )

            # -- Google Drive ---------------------------------------------------------------------
            def _drive(self, path: str, query: dict):
                if path == "/drive/v3/about":
                    return self._reply(200, {"user": {"emailAddress": "owner@acme.test", "permissionId": "P1"}})
                if path == "/drive/v3/files":
                    folder = query["q"].split("'")[1]
                    ids = fake.drive_folders.get(folder, [])
                    start = int(query.get("pageToken") or 0)
                    page = {"files": [{"id": i} for i in ids[start : start + 2]]}
                    if start + 2 < len(ids):
                        page["nextPageToken"] = str(start + 2)
                    return self._reply(200, page)
                pieces = path.split("/")
                file = fake.drive_files.get(pieces[4])
                if file is None:
                    return self._reply(404, {"error": {"message": "File not found"}})
                if path.endswith("/export"):
                    return self._reply(200, b"", {"Content-Type": "text/plain"}, raw=file["content"])
                if query.get("alt") == "media":
                    return self._reply(200, b"", {"Content-Type": file["mimeType"]}, raw=file["content"])
                return self._reply(
                    200, {k: file[k] for k in ("id", "name", "mimeType")} | {"modifiedTime": "2026-11-01T00:00:00Z"}
                )

            # -- Notion -------------------------------------------------------------------------
            def _notion(self, method: str, path: str, query: dict, body: dict):
                if self.headers.get("Notion-Version") != "2022-06-28":
                    return self._reply(400, {"object": "error", "code": "missing_version"})
                if path == "/v1/search":
                    ids = list(fake.notion_pages)
                    return self._reply(
                        200, {"results": [{"id": i} for i in ids], "has_more": False, "next_cursor": None}
                    )
                if path == "/v1/pages" and method == "POST":
                    page_id = "new-" + secrets.token_hex(4)
                    fake.notion_created.append(body)
                    return self._reply(200, {"id": page_id, "url": f"https://notion.so/{page_id}"})
                if path.startswith("/v1/pages/"):
                    page = fake.notion_pages.get(path.rsplit("/", 1)[1])
                    return self._reply(200, page) if page else self._reply(404, {"object": "error"})
                if path.startswith("/v1/blocks/") and path.endswith("/children"):
                    block_id = path.split("/")[3]
                    if method == "PATCH":
                        fake.notion_appended.append({"block": block_id, **body})
                        return self._reply(200, {"results": body.get("children", [])})
                    children = fake.notion_children.get(block_id, [])
                    start = int(query.get("start_cursor") or 0)
                    more = start + 2 < len(children)
                    return self._reply(
                        200,
                        {
                            "results": children[start : start + 2],
                            "has_more": more,
                            "next_cursor": str(start + 2) if more else None,
                        },
                    )
                return self._reply(404, {"object": "error"})

            # -- Slack ---------------------------------------------------------------------------
            def _slack(self, path: str, body: dict):
                if path == "/slack/chat.postMessage":
                    if body.get("channel") == "C-missing":
                        return self._reply(200, {"ok": False, "error": "channel_not_found"})
                    fake.slack_messages.append(body)
                    return self._reply(
                        200, {"ok": True, "channel": body["channel"], "ts": f"17000.{len(fake.slack_messages)}"}
                    )
                return self._reply(200, {"ok": False, "error": "unknown_method"})

        return Handler


PAGE = b"""<!doctype html><html><head><title>Fetched Page</title><script>var x=1;</script></head>
<body><h1>Quarterly plan</h1><p>We will ship the new reader in March.</p></body></html>"""
