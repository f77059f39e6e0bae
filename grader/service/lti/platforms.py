"""The LMS platforms a course trusts (`lti.toml`), their keys, and the tool's own key.

An ``lti.toml`` in the course folder registers each platform (any other key is an error that
names the key and the file):

```toml
tool_key = "lti-tool-key.pem"     # the tool's RSA private key (PEM), relative to the course

[[platform]]                      # one per LMS registration (Moodle, Canvas)
issuer = "https://canvas.instructure.com"
client_id = "10000000000001"
deployment_ids = ["1:8865aa05b4b79b64a91a86042e43af5ea8ae79eb"]
login_url = "https://school.instructure.com/api/lti/authorize_redirect"
token_url = "https://school.instructure.com/login/oauth2/token"
jwks_url = "https://school.instructure.com/api/lti/security/jwks"
```
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import KeySet, RSAKey

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

LTI_FILE = "lti.toml"
JWKS_TTL_S = 3600.0  # a platform's keys are fetched again after an hour, or on an unknown kid
JWKS_REFETCH_MIN_S = 30.0  # an unknown kid refetches at most this often (a forged kid is cheap)
HTTP_TIMEOUT_S = 10.0
_PLATFORM_KEYS = {"issuer", "client_id", "deployment_ids", "login_url", "token_url", "jwks_url"}


class LtiConfigError(ValueError):
    """An ``lti.toml`` that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Platform:
    """One LMS registration of the tool.

    Attributes:
        issuer: the platform's ``iss`` in every id_token it signs.
        client_id: the tool's id at the platform (the id_token's ``aud``).
        deployment_ids: the deployments the course accepts; a launch from any other is refused.
        login_url: the platform's OIDC authorisation endpoint (login initiation redirects there).
        token_url: the platform's OAuth 2 token endpoint (AGS access tokens).
        jwks_url: where the platform publishes its public keys.
    """

    issuer: str
    client_id: str
    deployment_ids: tuple[str, ...]
    login_url: str
    token_url: str
    jwks_url: str


@dataclass(frozen=True)
class ToolKey:
    """The tool's RSA key: signs AGS client assertions; its public half is served as JWKS."""

    key: RSAKey

    @classmethod
    def generate(cls) -> ToolKey:
        return cls(RSAKey.generate_key(2048, auto_kid=True))

    @classmethod
    def from_pem(cls, path: Path) -> ToolKey:
        try:
            key = RSAKey.import_key(path.read_bytes())
        except (OSError, ValueError) as error:
            raise LtiConfigError(f"{path}: cannot read the tool's RSA private key ({error}); "
                                 "make one with `openssl genpkey -algorithm RSA -out "
                                 f"{path.name} -pkeyopt rsa_keygen_bits:2048`") from None
        return cls(RSAKey.import_key(key.as_dict(private=True), {"kid": key.thumbprint()}))

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS a platform fetches to check the tool's assertions."""
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "use": "sig", "alg": "RS256"}]}


@dataclass
class PlatformRegistry:
    """The trusted platforms, and a cache of their public keys (fetched over `http`).

    Args:
        platforms: the registrations.
        http: the client keys are fetched with (tests pass one bound to an emulator).
    """

    platforms: Sequence[Platform]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=HTTP_TIMEOUT_S))
    _keys: dict[str, tuple[float, KeySet]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def find(self, issuer: str, client_id: str | None = None) -> Platform | None:
        """The registration for an issuer (and client id, when the platform sends one)."""
        found = [p for p in self.platforms if p.issuer == issuer
                 and (client_id is None or p.client_id == client_id)]
        return found[0] if len(found) == 1 else None

    def keys(self, platform: Platform, *, kid: str | None = None) -> KeySet:
        """The platform's public keys; fetched again when stale or `kid` is not among them."""
        with self._lock:
            now = time.monotonic()
            cached = self._keys.get(platform.jwks_url)
            fresh = cached is not None and now - cached[0] < JWKS_TTL_S
            known = cached is not None and (kid is None or any(
                key.kid == kid for key in cached[1].keys))
            if fresh and (known or now - cached[0] < JWKS_REFETCH_MIN_S):
                return cached[1]
            keys = self._fetch(platform)
            self._keys[platform.jwks_url] = (now, keys)
            return keys

    def _fetch(self, platform: Platform) -> KeySet:
        from grader.service.lti.launch import LtiError

        try:
            response = self.http.get(platform.jwks_url)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            raise LtiError(f"could not fetch the platform's keys from {platform.jwks_url} "
                           f"({type(error).__name__}: {error}); check jwks_url in "
                           f"{LTI_FILE}", status=502) from None


def lti_stamp(course_root: Path) -> int | None:
    """The modification time of the course's ``lti.toml`` (None without one): the service
    and the workers read the file again when this changes."""
    try:
        return (course_root / LTI_FILE).stat().st_mtime_ns
    except OSError:
        return None


def load_platforms(course_root: Path, *, http: httpx.Client | None = None
                   ) -> tuple[PlatformRegistry, ToolKey] | None:
    """The course's ``lti.toml``: its platforms and the tool key, or None without the file.

    Raises:
        LtiConfigError: an unknown key, a missing one, a URL that is not https, no key file.
    """
    path = course_root / LTI_FILE
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise LtiConfigError(f"{path}: {error}") from None
    unknown = set(data) - {"tool_key", "platform"}
    if unknown:
        raise LtiConfigError(f"{path}: unknown key `{sorted(unknown)[0]}`; expected tool_key "
                             "and [[platform]] tables")
    if "tool_key" not in data:
        raise LtiConfigError(f"{path}: tool_key is missing (the tool's RSA private key, PEM)")
    platforms = tuple(_platform(path, i, entry) for i, entry in
                      enumerate(data.get("platform", [])))
    key = ToolKey.from_pem(course_root / str(data["tool_key"]))
    registry = PlatformRegistry(platforms, http) if http is not None else \
        PlatformRegistry(platforms)
    return registry, key


def _platform(path: Path, index: int, entry: Mapping[str, Any]) -> Platform:
    where = f"{path}: [[platform]] #{index + 1}"
    if not isinstance(entry, Mapping):
        raise LtiConfigError(f"{where}: expected a table")
    unknown = set(entry) - _PLATFORM_KEYS
    if unknown:
        raise LtiConfigError(f"{where}: unknown key `{sorted(unknown)[0]}`; expected "
                             f"{', '.join(sorted(_PLATFORM_KEYS))}")
    missing = _PLATFORM_KEYS - set(entry)
    if missing:
        raise LtiConfigError(f"{where}: `{sorted(missing)[0]}` is missing")
    for name in ("login_url", "token_url", "jwks_url"):
        if not str(entry[name]).startswith("https://"):
            raise LtiConfigError(f"{where}: {name} must be an https:// URL; received "
                                 f"{entry[name]!r}")
    ids = entry["deployment_ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise LtiConfigError(f"{where}: deployment_ids must be a non-empty list of strings")
    return Platform(str(entry["issuer"]), str(entry["client_id"]), tuple(ids),
                    str(entry["login_url"]), str(entry["token_url"]), str(entry["jwks_url"]))
