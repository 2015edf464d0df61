"""Install, start and stop a real Label Studio server for assay's sync tests and benchmarks.

The server lives in its own virtualenv (cached at ~/.cache/assay/label-studio-venv, or
$ASSAY_LS_VENV) so the project's own label-studio-sdk stays free of the server's pins. It
runs headless on 127.0.0.1 on a free port, with SQLite in a data directory, a known legacy
API token for the admin and a second annotator with its own token.

Shell:
    python scripts/labelstudio_server.py install         # once; cached between runs
                                                         # (with a migrated data template)
    python scripts/labelstudio_server.py start [--data-dir D] [--port P]
    python scripts/labelstudio_server.py stop [--data-dir D]

Python (a pytest session fixture):
    server = LabelStudioServer(data_dir).start()
    server.url, server.token, server.annotator_token
    server.kill(); server.start()   # a crash and a restart on the same data
    server.stop()

Only the standard library is used, so any Python 3.10+ can run this file.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

VERSION = "1.23.2"
ADMIN = "admin@example.com"
ANNOTATOR = "annotator2@example.com"
PASSWORD = "assay-test-password"
# Fixed tokens: the server is a throwaway test instance on 127.0.0.1.
ADMIN_TOKEN = "a55a7e57a55a7e57a55a7e57a55a7e57a55a7e57"
ANNOTATOR_TOKEN = "b0bb1e57b0bb1e57b0bb1e57b0bb1e57b0bb1e57"
SECRET_KEY = "assay-label-studio-test-secret-key"
INFO = "server.json"
START_TIMEOUT = float(os.environ.get("ASSAY_LS_START_TIMEOUT", "300"))


class ServerError(RuntimeError):
    """The server could not be installed or started; the message says why."""


def venv_dir() -> Path:
    override = os.environ.get("ASSAY_LS_VENV")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "assay" / "label-studio-venv"


def _marker(venv: Path) -> Path:
    return venv / f".assay-label-studio-{VERSION}"


def installed(venv: Path | None = None) -> bool:
    venv = venv or venv_dir()
    return _marker(venv).exists() and (venv / "bin" / "label-studio").exists()


def install(venv: Path | None = None, python: str | None = None, quiet: bool = True) -> Path:
    """Create the server's virtualenv and install label-studio into it (skipped when cached).

    A lock file keeps two processes (parallel test sessions, .ci/run) from installing at
    once; the marker file is written last, so an interrupted install is redone.
    """
    venv = venv or venv_dir()
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.parent / f".{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if installed(venv):
                return venv
            python = python or sys.executable
            if not (venv / "bin" / "python").exists():
                _run([python, "-m", "venv", str(venv)], "create the virtualenv")
            pip = [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
            ]
            if quiet:
                pip.append("-q")
            _run([*pip, f"label-studio=={VERSION}"], f"pip install label-studio=={VERSION}")
            _marker(venv).write_text(VERSION + "\n")
    except OSError as exc:
        raise ServerError(f"could not install into {venv}: {exc}") from None
    return venv


def template_dir(venv: Path | None = None) -> Path:
    """A migrated data directory (users and tokens made) that new servers start from."""
    venv = venv or venv_dir()
    return venv.parent / f"label-studio-template-{VERSION}"


def prepare_template(venv: Path | None = None) -> Path:
    """Run the first start (~40 s of migrations) once; later servers copy its result (~5 s)."""
    venv = install(venv)
    target = template_dir(venv)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".annotator-created").exists():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        server = LabelStudioServer(scratch / "data", use_template=False)
        try:
            server.start()
        finally:
            server.stop()
        for name in (INFO, "server.log"):
            (server.data_dir / name).unlink(missing_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(server.data_dir, target)
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ServerError(f"could not {what} (exit {proc.returncode}): " + " | ".join(tail))


def free_port() -> int:
    # The server silently moves to port+1 when its port is busy, so ask the OS for one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}").get("status") == "UP"
    except (OSError, ValueError, urllib.error.URLError):
        return False


class LabelStudioServer:
    """One headless Label Studio process over one data directory."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        use_template: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="assay-ls-"))
        self.use_template = use_template
        self.port = port
        self.token = ADMIN_TOKEN
        self.annotator_token = ANNOTATOR_TOKEN
        self.username = ADMIN
        self.annotator = ANNOTATOR
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            LABEL_STUDIO_USERNAME=ADMIN,
            LABEL_STUDIO_PASSWORD=PASSWORD,
            LABEL_STUDIO_USER_TOKEN=ADMIN_TOKEN,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            SECRET_KEY=SECRET_KEY,
            SSRF_PROTECTION_ENABLED="false",
            LATEST_VERSION_CHECK="false",
            COLLECT_ANALYTICS="false",
        )
        return env

    def start(self, timeout: float = START_TIMEOUT) -> LabelStudioServer:
        """Start the server (installing it first if needed) and wait until /health is UP."""
        venv = install()
        fresh = not self.data_dir.exists() or not any(self.data_dir.iterdir())
        if fresh and self.use_template:
            template = prepare_template(venv)
            shutil.copytree(template, self.data_dir, dirs_exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 (kept open by the child)
        self.process = subprocess.Popen(
            [
                str(venv / "bin" / "label-studio"),
                "start",
                "--no-browser",
                "--internal-host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self._env(),
            cwd=self.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not health(self.url):
            if self.process.poll() is not None:
                raise ServerError(
                    f"label-studio exited with {self.process.returncode} before it was healthy; "
                    f"see {self.data_dir / 'server.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"label-studio did not answer {self.url}/health within {timeout:.0f} s; "
                    f"see {self.data_dir / 'server.log'}"
                )
            time.sleep(0.5)
        self._ensure_annotator(venv)
        self._write_info()
        return self

    def _ensure_annotator(self, venv: Path) -> None:
        marker = self.data_dir / ".annotator-created"
        if marker.exists():
            return
        # `label-studio init` on the live data dir adds a user with a known token.
        proc = subprocess.run(
            [
                str(venv / "bin" / "label-studio"),
                "init",
                "--username",
                ANNOTATOR,
                "--password",
                PASSWORD,
                "--user-token",
                ANNOTATOR_TOKEN,
            ],
            env={
                **self._env(),
                "LABEL_STUDIO_USERNAME": ANNOTATOR,
                "LABEL_STUDIO_USER_TOKEN": ANNOTATOR_TOKEN,
            },
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if proc.returncode != 0:
            raise ServerError(f"could not create the second annotator: {proc.stderr[-500:]}")
        marker.write_text(ANNOTATOR + "\n")

    def _write_info(self) -> None:
        info = {
            "url": self.url,
            "port": self.port,
            "pid": self.process.pid if self.process else None,
            "data_dir": str(self.data_dir),
        }
        (self.data_dir / INFO).write_text(json.dumps(info, indent=2))

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL to its process group): a crash, for fault tests."""
        process = self.process
        self._signal(signal.SIGKILL)
        if self.process is process:  # a restart may already have replaced it
            self.process = None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server gracefully, then forcefully if it does not exit in time."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=timeout)
        self.process = None

    def _signal(self, sig: int) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def __enter__(self) -> LabelStudioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_from_info(data_dir: Path) -> int:
    info_path = data_dir / INFO
    if not info_path.exists():
        print(f"no server info in {info_path}", file=sys.stderr)
        return 1
    pid = json.loads(info_path.read_text()).get("pid")
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(40):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    info_path.unlink()
    print(f"stopped the server of {data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"install label-studio=={VERSION} into its cached venv")
    start = sub.add_parser("start", help="start a server in the background and print its URL")
    start.add_argument("--data-dir", default=None)
    start.add_argument("--port", type=int, default=None)
    stop = sub.add_parser("stop", help="stop the server started on a data directory")
    stop.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(f"label-studio {VERSION} installed in {install(quiet=False)}")
            print(f"migrated data template in {prepare_template()}")
            return 0
        if args.command == "start":
            server = LabelStudioServer(args.data_dir, args.port).start()
            print(f"export ASSAY_LS_URL={server.url}")
            print(f"export ASSAY_LS_TOKEN={server.token}")
            print(
                f"# data: {server.data_dir}; stop with: {sys.argv[0]} stop --data-dir "
                f"{server.data_dir}"
            )
            return 0
        return _stop_from_info(Path(args.data_dir))
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
