"""Emulates the AWS Parameters and Secrets Lambda Extension's local HTTP API.

In Lambda the extension listens on localhost:2773 and answers
`GET /systemsmanager/parameters/get?name=<name>` (and `/secretsmanager/get?secretId=<id>`)
with the JSON of the SSM GetParameter (Secrets Manager GetSecretValue) response, provided
the request carries `X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN`. Errors come back as
HTTP 400 with the service's error code in the body (e.g. `ParameterNotFound`).

This stand-in answers the same requests from the local stack's moto (through
`lotabots.aws.client`), without caching, so that the authorizer runs unchanged locally and
in tests: `server, url = start("127.0.0.1", 0)` and set `PARAMETERS_EXTENSION_URL=url`.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from lotabots import aws

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105  (a header name, not a secret)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ParametersSecretsExtensionEmulator/1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the local stack logs its own request lines

    def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        expected = os.environ.get("AWS_SESSION_TOKEN")
        presented = self.headers.get(TOKEN_HEADER)
        # Like the real extension: the header is mandatory and must match the session token.
        return presented is not None and (not expected or presented == expected)

    def do_GET(self) -> None:
        if not self._authorised():
            self._send(
                HTTPStatus.UNAUTHORIZED, "not authorized: missing or wrong " + TOKEN_HEADER, "text/plain"
            )
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if parts.path.rstrip("/") == "/systemsmanager/parameters/get" and query.get("name"):
                result = aws.client("ssm").get_parameter(
                    Name=query["name"], WithDecryption=query.get("withDecryption", "false").lower() == "true"
                )
            elif parts.path.rstrip("/") == "/secretsmanager/get" and query.get("secretId"):
                result = aws.client("secretsmanager").get_secret_value(SecretId=query["secretId"])
            else:
                self._send(HTTPStatus.BAD_REQUEST, "unsupported request: " + parts.path, "text/plain")
                return
        except ClientError as exc:
            error = exc.response.get("Error", {})
            self._send(
                HTTPStatus.BAD_REQUEST,
                f"{error.get('Code', 'Error')}: {error.get('Message', '')}",
                "text/plain",
            )
            return
        except BotoCoreError as exc:
            self._send(HTTPStatus.BAD_GATEWAY, f"upstream error: {exc}", "text/plain")
            return
        result.pop("ResponseMetadata", None)
        self._send(HTTPStatus.OK, json.dumps(result, default=_json_default))


def start(
    host: str = "127.0.0.1", port: int = 0, connect_host: str | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """Serve in a daemon thread; returns the server and its base URL (on `connect_host` when the
    server listens on every interface).

    Stop it with `server.shutdown(); server.server_close()`.
    """
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="parameters-extension", daemon=True)
    thread.start()
    bound_port = server.server_address[1]
    return server, f"http://{connect_host or host}:{bound_port}"
