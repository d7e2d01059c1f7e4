"""moto's S3 with authentication enforced, for the team stack: ``python -m retrain.stack.s3_server HOST PORT``.

A bare ``moto_server`` answers anonymous requests (``curl -X PUT .../retrain/x`` stores an object)
and serves ``/moto-api/``, which anyone on the machine could use to reset its state or to switch
authentication off again (``/moto-api/reset-auth``). This entry point:

* turns on moto's IAM simulation from the first request (``INITIAL_NO_AUTH_ACTION_COUNT = 0``);
* creates the IAM users named in ``RETRAIN_S3_ACCOUNTS`` (a JSON list of ``{"user", "access_key",
  "secret_key", "policy"}`` from the stack's 0600 secrets, passed in this process's environment
  only) with exactly those keys and an inline policy each, so every request is signed by a known
  key and allowed by its policy;
* refuses every request without an ``Authorization`` header (moto would let an unsigned request
  read an object whose ACL it does not know) and everything under ``/moto-api``;
* answers ``GET /retrain-s3-health`` itself, for the stack's health check.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

HEALTH_PATH = "/retrain-s3-health"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def guarded(app: WsgiApp) -> WsgiApp:
    """moto's WSGI app behind the two refusals above, with the stack's health path."""

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            return _answer(start_response, "200 OK", b"ok")
        if path.startswith("/moto-api") or "HTTP_AUTHORIZATION" not in environ:
            return _answer(start_response, "403 Forbidden", b"AccessDenied: signed requests only")
        return app(environ, start_response)

    return guard


def create_accounts(accounts: list[dict[str, Any]]) -> None:
    """IAM users with the given keys and inline policies, in moto's default account."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for account in accounts:
        user = str(account["user"])
        iam.create_user("us-east-1", user)
        key = iam.create_access_key(user)
        key.access_key_id = str(account["access_key"])
        key.secret_access_key = str(account["secret_key"])
        iam.put_user_policy(user, "retrain", json.dumps(account["policy"]))


def main(argv: list[str] | None = None) -> None:
    host, port = (argv if argv is not None else sys.argv[1:])[:2]
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    create_accounts(json.loads(os.environ.pop("RETRAIN_S3_ACCOUNTS", "[]")))

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, int(port), guarded(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":  # pragma: no cover
    main()
