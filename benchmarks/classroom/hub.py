"""A throw-away JupyterHub on localhost, and the REST calls that log students in.

The hub is configured the way a one-server class would run it, with two test-only parts:

- ``DummyAuthenticator``: any name logs in (the students are simulated; a person can
  still open the hub in a browser during a run and look around).
- ``SimpleLocalProcessSpawner``: each student's single-user server is a local process
  running **as the hub's own Unix user**, in a home folder of its own.  The ordinary
  ``LocalProcessSpawner`` needs one real system account per student (``useradd``, and a
  hub running as root to switch to them); creating 20 accounts on a shared machine is not
  something a benchmark should do, and the processes, their memory and their CPU use are
  the same either way.  What it does not give is isolation between students, which a real
  class gets from TLJH's system users or from Kubernetes pods (``deploy/z2jh``).

Every address is ``127.0.0.1``: the proxy's public and API ports, the hub's own port and
the servers' ports (the spawner's default ``ip``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

LOCALHOST = "127.0.0.1"
#: Scopes the benchmark's own service token holds: create users, start and stop their
#: servers, make tokens for them.
SERVICE_SCOPES = ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                  "read:servers", "access:servers"]
SERVICE_NAME = "classroom-bench"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class HubSettings:
    """Where the hub runs and what it starts.

    Attributes:
        run_dir: a fresh folder for the hub's database, secrets, logs and student homes.
        root_dir: the folder each student's server shows (a copy of the repository: a
            shared read-only copy of the course, as TEACHING.md describes).  Its ``helpers``
            are the ones the kernels import (it goes first on ``PYTHONPATH``).
        singleuser: the ``jupyterhub-singleuser`` program.
        proxy: the ``configurable-http-proxy`` program.
        threads_per_kernel: ``OMP_NUM_THREADS`` etc. in every student's environment.
        start_timeout_s: how long the hub waits for one server to start.
    """

    run_dir: Path
    root_dir: Path
    singleuser: Path
    proxy: Path
    threads_per_kernel: int = 1
    start_timeout_s: int = 300
    public_port: int = 0
    hub_port: int = 0
    proxy_api_port: int = 0

    def __post_init__(self) -> None:
        for name in ("run_dir", "root_dir", "singleuser", "proxy"):
            if not isinstance(getattr(self, name), Path):
                raise TypeError(f"{name} must be a pathlib.Path, got {type(getattr(self, name)).__name__}")
        if isinstance(self.threads_per_kernel, bool) or not isinstance(self.threads_per_kernel, int):
            raise TypeError("threads_per_kernel must be an int")
        if self.threads_per_kernel < 1:
            raise ValueError(f"threads_per_kernel must be >= 1, got {self.threads_per_kernel}")
        if self.start_timeout_s < 1:
            raise ValueError(f"start_timeout_s must be >= 1, got {self.start_timeout_s}")


def hub_config(settings: HubSettings, service_token: str) -> str:
    """The text of ``jupyterhub_config.py`` for ``settings``.

    Raises:
        ValueError: if ``service_token`` is shorter than 32 characters.
    """
    if not isinstance(service_token, str) or len(service_token) < 32:
        raise ValueError("service_token must be a string of at least 32 characters")
    threads = str(settings.threads_per_kernel)
    environment = {
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(settings.root_dir),
        "PATH": f"{settings.singleuser.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    args = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    values: dict[str, Any] = {
        "bind_url": f"http://{LOCALHOST}:{settings.public_port}",
        "hub_bind_url": f"http://{LOCALHOST}:{settings.hub_port}",
        "proxy_api_url": f"http://{LOCALHOST}:{settings.proxy_api_port}",
        "proxy_command": [str(settings.proxy)],
        "db_url": f"sqlite:///{settings.run_dir / 'jupyterhub.sqlite'}",
        "cookie_secret_file": str(settings.run_dir / "jupyterhub_cookie_secret"),
        "home_template": str(settings.run_dir / "home" / "{username}"),
        "root_dir": str(settings.root_dir),
        "cmd": [str(settings.singleuser)],
        "args": args,
        "environment": environment,
        "start_timeout": settings.start_timeout_s,
        "service_token": service_token,
        "service_name": SERVICE_NAME,
        "scopes": SERVICE_SCOPES,
    }
    return f'''\
# Written by benchmarks/classroom/hub.py for one run of `make classroom-bench`.
import json
v = json.loads({json.dumps(json.dumps(values))})
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = v["bind_url"]
c.JupyterHub.hub_bind_url = v["hub_bind_url"]
c.ConfigurableHTTPProxy.api_url = v["proxy_api_url"]
c.ConfigurableHTTPProxy.command = v["proxy_command"]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = v["db_url"]
c.JupyterHub.cookie_secret_file = v["cookie_secret_file"]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = v["home_template"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = v["cmd"]
c.Spawner.args = v["args"]
c.Spawner.notebook_dir = v["root_dir"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = v["environment"]
c.Spawner.start_timeout = v["start_timeout"]
c.Spawner.http_timeout = v["start_timeout"]
c.JupyterHub.services = [{{"name": v["service_name"], "api_token": v["service_token"]}}]
c.JupyterHub.load_roles = [{{"name": v["service_name"], "scopes": v["scopes"],
                            "services": [v["service_name"]]}}]
'''


class HubError(RuntimeError):
    """The hub did not start, or a REST call failed."""


class Hub:
    """A running JupyterHub process and a REST client for it.

    Use :meth:`launch`, :meth:`wait_ready` and :meth:`stop`; :meth:`stop` is safe to call
    more than once and after a failed start.
    """

    def __init__(self, settings: HubSettings, jupyterhub: Path) -> None:
        if not isinstance(settings, HubSettings):
            raise TypeError(f"settings must be HubSettings, got {type(settings).__name__}")
        if not isinstance(jupyterhub, Path):
            raise TypeError(f"jupyterhub must be a pathlib.Path, got {type(jupyterhub).__name__}")
        if settings.public_port == 0:
            settings = HubSettings(**{**settings.__dict__, "public_port": free_port(),
                                      "hub_port": free_port(), "proxy_api_port": free_port()})
        self.settings = settings
        self.jupyterhub = jupyterhub
        self.token = secrets.token_hex(32)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://{LOCALHOST}:{settings.public_port}"
        self.log_path = settings.run_dir / "hub.log"
        AsyncHTTPClient.configure(None, max_clients=200)
        self.http = AsyncHTTPClient()

    def launch(self) -> int:
        """Write the configuration and start the hub process; its pid.  The hub starts the
        proxy itself.  Follow with :meth:`wait_ready`."""
        run_dir = self.settings.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "home").mkdir(exist_ok=True)
        config = run_dir / "jupyterhub_config.py"
        config.write_text(hub_config(self.settings, self.token))
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32)}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.jupyterhub), "-f", str(config)], cwd=run_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self.process.pid

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until the launched hub's API answers.

        Raises:
            HubError: if the hub exited or did not answer within ``timeout_s``.
        """
        if self.process is None:
            raise HubError("the hub was not launched")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(f"the hub exited with code {self.process.returncode}; "
                               f"see {self.log_path}:\n{self.log_tail()}")
            try:
                await self.api("GET", "/")
                return
            except (HubError, OSError):
                await asyncio.sleep(0.25)
        raise HubError(f"the hub did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 20.0) -> None:
        """Ask the hub to shut down (it stops the servers and the proxy it started),
        then kill its process group if it is still there after ``grace_s``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)

    # -- REST ---------------------------------------------------------------------------
    async def request(self, method: str, url: str, *, token: str, body: Any = None,
                      timeout_s: float = 60.0) -> Any:
        """One HTTP request with ``Authorization: token ...``; the JSON answer (or None).

        Raises:
            HubError: for an HTTP error status or a connection failure.
        """
        payload = None if body is None else json.dumps(body)
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = ""
        request = HTTPRequest(url, method=method, body=payload,
                              headers={"Authorization": f"token {token}",
                                       "Content-Type": "application/json"},
                              request_timeout=timeout_s, connect_timeout=timeout_s,
                              allow_nonstandard_methods=True)
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as error:
            text = error.response.body.decode(errors="replace")[:300] if error.response else ""
            raise HubError(f"{method} {url}: HTTP {error.code} {text}") from None
        except OSError as error:
            raise HubError(f"{method} {url}: {error}") from error
        return json.loads(response.body) if response.body else None

    async def api(self, method: str, path: str, body: Any = None, *, timeout_s: float = 60.0) -> Any:
        """A call to the hub's REST API (``/hub/api`` + ``path``) as the benchmark's service."""
        return await self.request(method, f"{self.url}/hub/api{path}", token=self.token,
                                  body=body, timeout_s=timeout_s)

    async def create_users(self, names: list[str]) -> None:
        await self.api("POST", "/users", {"usernames": names})

    async def start_server(self, name: str, timeout_s: float) -> float:
        """Start ``name``'s server and wait until the hub reports it ready; seconds taken."""
        start = time.monotonic()
        await self.api("POST", f"/users/{name}/server", timeout_s=timeout_s)
        while time.monotonic() - start < timeout_s:
            model = await self.api("GET", f"/users/{name}")
            server = (model.get("servers") or {}).get("", {})
            if server.get("ready"):
                return time.monotonic() - start
            if not model.get("pending") and not server:
                raise HubError(f"the server of {name} stopped while starting; see {self.log_path}")
            await asyncio.sleep(0.25)
        raise HubError(f"the server of {name} was not ready within {timeout_s:.0f} s")

    async def new_token(self, name: str) -> str:
        answer = await self.api("POST", f"/users/{name}/tokens",
                                {"note": "classroom benchmark", "expires_in": 3600})
        return str(answer["token"])

    async def stop_server(self, name: str) -> None:
        await self.api("DELETE", f"/users/{name}/server", timeout_s=120)
        start = time.monotonic()
        while time.monotonic() - start < 120:
            model = await self.api("GET", f"/users/{name}")
            if not model.get("servers") and not model.get("pending"):
                return
            await asyncio.sleep(0.25)

    async def delete_user(self, name: str) -> None:
        await self.api("DELETE", f"/users/{name}")


def find_program(name: str, *places: Path) -> Path:
    """The first executable ``name`` in ``places``, else on ``PATH``.

    Raises:
        FileNotFoundError: naming what to install when it is nowhere.
    """
    for place in places:
        candidate = place / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"{name} not found (looked in {', '.join(map(str, places)) or 'nowhere'} and on PATH); "
        "`make classroom-bench` installs it into build/classroom")


def python_bin() -> Path:
    """The folder of the running interpreter's programs (the venv's ``bin``)."""
    return Path(sys.executable).parent
