"""A webhook receiver on 127.0.0.1: what a team's chat would show, for the demo to print.

It takes the Slack-compatible JSON Retrain posts (``text``, ``retrain.kind``, ``retrain.audience``) and
hands each message to a callback as it arrives. A stand-in for a real channel, never a service.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def webhook_inbox(on_message: Callable[[dict[str, Any]], None]) -> Iterator[str]:
    """Serve on a free loopback port while the block runs; yields the URL to post to."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                message = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                message = {}
            if isinstance(message, dict):  # shown before the answer: the sender goes on once it is printed
                with suppress(Exception):  # a message that cannot be shown is not the sender's failure
                    on_message(message)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = False  # closing waits for a message being shown
    server.block_on_close = True
    thread = threading.Thread(target=server.serve_forever, name="retrain-webhook-inbox", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
