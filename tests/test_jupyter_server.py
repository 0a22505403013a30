"""Opening a notebook in Jupyter works out of the box: a real Jupyter server with the
project's settings opens notebooks/density.py as a notebook (through the jupytext
pairing) and runs it, cell by cell, with the project's kernel on the smoke profile."""

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from helpers import free_port
from tornado.websocket import websocket_connect

from paperlib.run.store import REPO_ROOT

TOKEN = uuid.uuid4().hex


def _request(base: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def server(smoke_env, tmp_path):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={TOKEN}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",  # CI containers run as root
        f"--ServerApp.root_dir={REPO_ROOT}",
    ]
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=log.open("w")
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _request(base, "/api/status")
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"the Jupyter server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield base
    process.terminate()
    process.wait(timeout=30)


async def _execute(base: str, kernel_id: str, sources: list[str]) -> list[dict]:
    """Run each source on the kernel over its websocket; return the execute replies."""
    url = base.replace("http", "ws") + f"/api/kernels/{kernel_id}/channels?token={TOKEN}"
    connection = await websocket_connect(url)
    session, replies = uuid.uuid4().hex, []
    for source in sources:
        msg_id = uuid.uuid4().hex
        await connection.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": session,
                        "username": "test",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {
                        "code": source,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        while True:
            message = json.loads(await asyncio.wait_for(connection.read_message(), 300))
            if (
                message["msg_type"] == "execute_reply"
                and message["parent_header"].get("msg_id") == msg_id
            ):
                replies.append(message["content"])
                break
    connection.close()
    return replies


@pytest.mark.slow
def test_density_py_opens_as_a_notebook_and_runs_on_the_smoke_profile(server, smoke_env):
    model = _request(server, "/api/contents/notebooks/density.py?type=notebook&content=1")
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)

    session = _request(
        server,
        "/api/sessions",
        {
            "path": "notebooks/density.py",
            "type": "notebook",
            "name": "density.py",
            "kernel": {"name": "python3"},
        },
    )
    sources = [c["source"] for c in cells if c["cell_type"] == "code"]
    sources.insert(1, 'profile = "smoke"')  # right after the parameters cell, as papermill does
    replies = asyncio.run(_execute(server, session["kernel"]["id"], sources))
    failed = [r for r in replies if r["status"] != "ok"]
    assert not failed, failed[0].get("traceback") if failed else None
    result = smoke_env / "results" / "smoke" / "density" / "lambda-1e-05-s0.json"
    assert json.loads(result.read_text())["profile"] == "smoke"
