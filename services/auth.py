"""Bearer-token auth for the control plane: viewer tokens read, operator tokens also write.

Tokens come from a file (YAML or JSON, `{"tokens": [{"name": ..., "token": ..., "role": ...}]}`,
path in COUNTERPOINT_TOKENS_FILE) or from COUNTERPOINT_OPERATOR_TOKEN / COUNTERPOINT_VIEWER_TOKEN.
A presented token is compared with every known one in constant time (hmac.compare_digest over
SHA-256 digests, so neither the match position nor the length leaks). Tokens are never logged or
echoed: logs and error bodies name a token by its `name` only.

`Auth.disabled()` lets every request act as an operator; the app factory accepts it only when the
server binds a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
MIN_TOKEN_CHARS = 16
TOKENS_FILE_ENV = "COUNTERPOINT_TOKENS_FILE"
OPERATOR_TOKEN_ENV = "COUNTERPOINT_OPERATOR_TOKEN"
VIEWER_TOKEN_ENV = "COUNTERPOINT_VIEWER_TOKEN"
REALM = 'Bearer realm="counterpoint"'


class AuthConfigError(ValueError):
    """The token file or variables cannot be used; the message says what to fix (never the token)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's name and role."""

    name: str
    role: Role

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    digest: bytes

    def __repr__(self) -> str:  # the digest stays out of logs and tracebacks too
        return f"_Entry({self.principal!r})"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Auth:
    """The known tokens and their roles; `authenticate` maps a presented token to a Principal."""

    def __init__(self, tokens: list[tuple[str, str, Role]], *, disabled: bool = False):
        """`tokens`: (name, token, role) triples."""
        self.disabled = disabled
        self._entries: list[_Entry] = []
        names: set[str] = set()
        digests: set[bytes] = set()
        for name, token, role in tokens:
            if not isinstance(name, str) or not name.strip():
                raise AuthConfigError("every token needs a non-empty name")
            if name in names:
                raise AuthConfigError(f"token name {name!r} is used twice")
            if role not in ROLES:
                raise AuthConfigError(f"token {name!r}: role must be one of {', '.join(ROLES)}, got {role!r}")
            if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
                raise AuthConfigError(f"token {name!r}: a token needs at least {MIN_TOKEN_CHARS} characters")
            digest = _digest(token)
            if digest in digests:
                raise AuthConfigError(f"token {name!r}: the same token value is listed twice")
            names.add(name)
            digests.add(digest)
            self._entries.append(_Entry(Principal(name, role), digest))
        if not disabled and not self._entries:
            raise AuthConfigError(f"no tokens: set {TOKENS_FILE_ENV}, {OPERATOR_TOKEN_ENV} or {VIEWER_TOKEN_ENV}")

    def __repr__(self) -> str:
        return f"Auth(disabled={self.disabled}, names={[e.principal.name for e in self._entries]})"

    @classmethod
    def disabled_mode(cls) -> Auth:
        """Every request acts as an operator named `anonymous` (loopback-only; see create_app)."""
        return cls([], disabled=True)

    @classmethod
    def from_file(cls, path: str | Path) -> Auth:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise AuthConfigError(f"{path}: cannot read the tokens file ({err.strerror})") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError):
            raise AuthConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}") from None
        items = data.get("tokens") if isinstance(data, Mapping) else None
        if not isinstance(items, list) or not all(isinstance(t, Mapping) for t in items):
            raise AuthConfigError(f'{path}: expected {{"tokens": [{{"name": ..., "token": ..., "role": ...}}]}}')
        if path.stat().st_mode & 0o004:
            log.warning("%s is readable by every user of this machine; chmod 600 it", path)
        try:
            return cls([(t.get("name"), t.get("token"), t.get("role")) for t in items])
        except AuthConfigError as err:
            raise AuthConfigError(f"{path}: {err}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Auth:
        """The tokens file if COUNTERPOINT_TOKENS_FILE is set, else the two token variables."""
        env = os.environ if environ is None else environ
        if env.get(TOKENS_FILE_ENV):
            return cls.from_file(env[TOKENS_FILE_ENV])
        tokens = [
            (role, env[var], role)
            for var, role in ((OPERATOR_TOKEN_ENV, "operator"), (VIEWER_TOKEN_ENV, "viewer"))
            if env.get(var)
        ]
        return cls(tokens)

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding `token`, or None. Every entry is compared, in constant time."""
        presented = _digest(token)
        found = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest):
                found = entry.principal
        return found

    def dependency(self, role: Role):
        """A FastAPI dependency giving the request's Principal; 401 or 403 when it may not act."""
        bearer = HTTPBearer(auto_error=False, description="A viewer token reads; an operator token also writes.")

        def principal(
            request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
        ) -> Principal:
            if self.disabled:
                return Principal("anonymous", "operator")
            if credentials is None:
                raise HTTPException(
                    401,
                    "missing bearer token: send 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": REALM},
                )
            who = self.authenticate(credentials.credentials)
            if who is None:
                log.warning("rejected an unknown token for %s %s", request.method, request.url.path)
                raise HTTPException(
                    401, "unknown or wrong token", headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'}
                )
            if not who.can(role):
                raise HTTPException(403, f"token {who.name!r} has the {who.role} role; this request needs {role}")
            return who

        return principal


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
