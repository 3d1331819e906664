"""The throughput reference: a bare Starlette JSON endpoint on the twin's server stack.

``python -m bench.bare_app READY_FILE`` serves ``POST /chat/completions`` (parse the JSON body, answer a
small chat.completion) with the same uvicorn settings as ``TwinServer``, in a thread as the twin is,
on a free loopback port, and writes its base URL into READY_FILE.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def completions(request: Request) -> Response:
    body: dict[str, Any] = json.loads(await request.body())
    return JSONResponse({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })


app = Starlette(routes=[Route("/chat/completions", completions, methods=["POST"])])


def main(ready_file: Path) -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    ready_file.write_text(f"http://127.0.0.1:{port}\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.should_exit = True
    thread.join(timeout=5)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
