"""A connection to a Label Studio server: URL, token from the environment, clear errors.

The token is read from an environment variable (`ASSAY_LS_TOKEN` unless told otherwise) at
the moment a client is built; it is never stored on the connection, logged, or written
anywhere. Failures (server down, wrong URL, bad token, missing project) become one
`RemoteError` that says what happened and what to do.

`label-studio-sdk` makes every call except task listing, which reads the SDK's own HTTP
client raw: the SDK's pager builds a 60-field model per task and asks for a page past the
end, which the server answers with 404.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from assay.errors import InputError, RemoteError, ResourceError, redact, require

log = logging.getLogger(__name__)

TOKEN_ENV = "ASSAY_LS_TOKEN"
URL_ENV = "ASSAY_LS_URL"
TIMEOUT_ENV = "ASSAY_LS_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
# The SDK's own variables, read when assay's are unset.
SDK_URL_ENV = "LABEL_STUDIO_URL"
SDK_TOKEN_ENV = "LABEL_STUDIO_API_KEY"
# The SDK versions tested (the task listing reads the SDK's private HTTP client).
SDK_REQUIREMENT = "label-studio-sdk>=2.1,<2.2"
PAGE_SIZE = 5000
# The data manager parses datetimes with exactly this format (a bare "Z" gives a 500).
LS_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where the server is and which environment variable holds the token."""

    url: str
    token_env: str = TOKEN_ENV
    # Seconds to wait for one answer (large imports and exports can be slow).
    timeout: float = dataclasses.field(default_factory=lambda: env_timeout())
    # Retries of connection errors and 5xx answers (imports are never retried).
    max_retries: int = dataclasses.field(
        default_factory=lambda: int(os.environ.get("ASSAY_LS_RETRIES", "2"))
    )

    @classmethod
    def from_env(
        cls, url: str | None = None, token_env: str | None = None, timeout: float | None = None
    ) -> Connection:
        url = url or os.environ.get(URL_ENV) or os.environ.get(SDK_URL_ENV)
        if not url:
            raise InputError(f"no Label Studio URL: pass --url or set {URL_ENV}")
        if not url.startswith(("http://", "https://")):
            raise InputError(
                f"the Label Studio URL must start with http:// or https://, got "
                f"{redact(url)[:80]!r} (e.g. http://localhost:8080)"
            )
        if timeout is not None and not timeout > 0:
            raise InputError(f"the Label Studio timeout must be > 0 seconds, got {timeout}")
        return cls(
            url=url.rstrip("/"),
            token_env=token_env or TOKEN_ENV,
            timeout=env_timeout() if timeout is None else float(timeout),
        )

    def token(self) -> str:
        token = os.environ.get(self.token_env, "").strip()
        if not token and self.token_env == TOKEN_ENV:
            token = os.environ.get(SDK_TOKEN_ENV, "").strip()
        if not token:
            raise InputError(
                f"no Label Studio token: set the environment variable {self.token_env} to your "
                "API token (Account & Settings in Label Studio), or name another variable "
                "with --token-env"
                + (f" ({SDK_TOKEN_ENV} is also read)" if self.token_env == TOKEN_ENV else "")
            )
        return token

    def client(self) -> Client:
        require("label_studio_sdk", "labelstudio", "Label Studio sync")
        from label_studio_sdk.client import LabelStudio

        token = self.token()
        sdk = LabelStudio(
            base_url=self.url,
            api_key=token,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        return Client(sdk, self.url, secrets=(token,))


def env_timeout() -> float:
    """`ASSAY_LS_TIMEOUT` in seconds, else the default; one clear error for a bad value."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise InputError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {raw[:40]!r}")
    return value


@contextlib.contextmanager
def remote_errors(url: str, action: str, secrets: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn transport and API failures into one RemoteError naming the action and the fix.

    The message never carries the token or the credentials of a URL.
    """
    try:
        with _remote_errors(redact(url), action):
            yield
    except RemoteError as exc:
        raise RemoteError(redact(str(exc), secrets)) from None


@contextlib.contextmanager
def _remote_errors(url: str, action: str) -> Iterator[None]:
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except httpx.ConnectError:
        raise RemoteError(
            f"cannot reach Label Studio at {url} to {action}: connection refused; check the "
            "URL and that the server is running"
        ) from None
    except httpx.TimeoutException:
        raise RemoteError(
            f"Label Studio at {url} did not answer in time to {action}; retry, or check the "
            "server's load"
        ) from None
    except httpx.TransportError as exc:
        raise RemoteError(
            f"lost the connection to Label Studio at {url} while trying to {action} "
            f"({type(exc).__name__}); rerun when the server is back: sync converges"
        ) from None
    except ApiError as exc:
        raise RemoteError(_api_message(url, action, exc.status_code, exc.body)) from None
    except ValueError as exc:
        # A 200 answer that is not the expected JSON: something else listens at the URL.
        raise RemoteError(
            f"{url} did not answer like Label Studio's API when trying to {action} "
            f"({type(exc).__name__}); check the URL"
        ) from None


def _api_message(url: str, action: str, status: int | None, body: Any) -> str:
    if status is not None and 200 <= status < 300:
        # The SDK reports a success it could not parse: something else listens at the URL.
        return (
            f"{url} did not answer like Label Studio's API when trying to {action}; check the URL"
        )
    if status == 401:
        return (
            f"Label Studio at {url} rejected the token (401) when trying to {action}: check "
            "the token variable; legacy tokens need LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true "
            "on the server"
        )
    if status == 403:
        return f"the token's user may not {action} on {url} (403): ask for project access"
    if status == 404:
        return f"not found (404) at {url} when trying to {action}: check the URL and project id"
    detail = body.get("detail") if isinstance(body, dict) else body
    text = str(detail)[:300] if detail is not None else ""
    return f"Label Studio at {url} answered {status} when trying to {action}: {text}"


class Client:
    """The few calls assay makes, each wrapped so failures read as one clear error."""

    def __init__(self, sdk: Any, url: str, secrets: tuple[str, ...] = ()) -> None:
        self.sdk = sdk
        self.url = url
        self._secrets = secrets  # only to keep them out of error messages
        self._users: dict[int, str] | None = None

    def __repr__(self) -> str:
        return f"Client({redact(self.url)!r})"

    def call(self, action: str, fn, *args: Any, **kwargs: Any) -> Any:
        with remote_errors(self.url, action, self._secrets):
            return fn(*args, **kwargs)

    def check(self) -> str:
        """Who the token belongs to; fails early on a wrong URL or a bad token."""
        me = self.call("check the token", self.sdk.users.whoami)
        return str(getattr(me, "email", "") or getattr(me, "username", ""))

    def users(self) -> dict[int, str]:
        """user id -> e-mail, to name annotators by something stable and readable."""
        if self._users is None:
            found = self.call("list users", self.sdk.users.list)
            self._users = {int(u.id): str(u.email or u.username or u.id) for u in found}
        return self._users

    def raw_get(self, path: str, params: dict[str, Any], action: str) -> tuple[Any, str | None]:
        """GET through the SDK's authenticated HTTP client; (json, server Date header)."""
        from label_studio_sdk.core.api_error import ApiError

        http = getattr(getattr(self.sdk, "_client_wrapper", None), "httpx_client", None)
        if http is None:
            raise ResourceError(
                "this label-studio-sdk has no raw HTTP client to list tasks with; install "
                f"the tested range: pip install '{SDK_REQUIREMENT}'"
            )
        with remote_errors(self.url, action, self._secrets):
            resp = http.request(path, method="GET", params=params)
            if resp.status_code >= 400:
                try:
                    body = resp.json()
                except ValueError:
                    body = resp.text
                raise ApiError(status_code=resp.status_code, body=body)
            return resp.json(), resp.headers.get("date")

    def tasks(
        self,
        project: int,
        *,
        include: str | None = "id,data",
        fields: str | None = None,
        filters: list[dict[str, Any]] | None = None,
        selected: list[int] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every task of a project matching `filters` (and among `selected` task ids)."""
        query: dict[str, Any] = {
            "filters": {"conjunction": "and", "items": filters or []},
            "ordering": ["id"],
        }
        if selected is not None:
            query["selectedItems"] = {"all": False, "included": [int(i) for i in selected]}
        page = 1
        seen = 0
        while True:
            params: dict[str, Any] = {
                "project": project,
                "page": page,
                "page_size": page_size,
                "query": json.dumps(query),
            }
            if include:
                params["include"] = include
            if fields:
                params["fields"] = fields
            body, _ = self.raw_get("api/tasks/", params, f"list the tasks of project {project}")
            batch = body.get("tasks", [])
            yield from batch
            seen += len(batch)
            if len(batch) < page_size or seen >= int(body.get("total", 0)):
                return
            page += 1

    def server_time(self) -> str | None:
        """The server's clock (HTTP Date header), so sync marks never mix two clocks."""
        _, date = self.raw_get("api/version", {}, "read the server version")
        return date
