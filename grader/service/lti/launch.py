"""LTI 1.3 launch: OIDC login initiation, then the platform's id_token checked claim by claim.

The flow (IMS Security Framework 1.0, section 5.1.1): the LMS calls the tool's login URL
(``iss``, ``login_hint``, ``target_link_uri``, ...); `login_redirect` stores a fresh
``state`` with a fresh ``nonce`` (`NonceStore`: in the gradebook's database, shared by every
process of the service) and sends the browser to the platform's authorisation
endpoint; the platform POSTs back a signed ``id_token`` with that ``state``;
`validate_launch` takes the state once (a replayed form fails here), checks the
signature against the platform's JWKS (RS256 only: ``alg=none`` and HMAC tricks are
refused), the issuer, audience, expiry, nonce (used once), deployment id, message type,
version and roles, and returns a `Launch`. Every refusal is an `LtiError` whose message says
what was checked, what was expected and what came back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from grader.gradebook.models import LtiNonceModel, LtiStateModel
from grader.ids import InvalidId, printable, validate_id
from grader.service.lti.platforms import Platform, PlatformRegistry

ALGORITHMS = ("RS256",)  # LTI 1.3 requires RS256; nothing else is accepted
STATE_TTL_S = 600.0  # a login must come back within 10 minutes
LEEWAY_S = 60  # clock skew allowed between the platform and the tool
MAX_TOKEN_CHARS = 64_000  # an id_token is a few kB; a megabyte one is refused unread
MAX_STATE_CHARS = 100  # ours are 43; a longer one is not ours (and is not looked up)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
VERSION = "1.3.0"
# LIS role URIs -> the service's roles; the first match in this order wins.
ROLE_MAP: tuple[tuple[str, str], ...] = (
    ("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant", "ta"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", "instructor"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper", "instructor"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator", "instructor"),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", "student"),
)


class LtiError(Exception):
    """A launch or passback refused; `status` is the HTTP status the route answers with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Launch:
    """A checked launch: who came from which LMS course, and where their grade goes.

    Attributes:
        issuer, client_id, deployment_id: the platform registration it came through.
        subject: the platform's stable user id (``sub``): the AGS ``userId``.
        role: "student", "ta" or "instructor".
        name, email: as the platform sent them (display only; may be "").
        student_id: the LIS person sourcedid (the roster's student number) when valid, else None.
        context_id: the LMS course.
        resource_link_id: the LMS activity launched.
        assignment: the ``assignment`` custom parameter (the activity's assignment id), or "".
        lineitem: the AGS line item URL for this activity, or "" (no passback).
        ags_scopes: the AGS scopes the platform granted.
    """

    issuer: str
    client_id: str
    deployment_id: str
    subject: str
    role: str
    name: str
    email: str
    student_id: str | None
    context_id: str
    resource_link_id: str
    assignment: str
    lineitem: str
    ags_scopes: tuple[str, ...]


class NonceStore:
    """Login states and used nonces in the gradebook's database, shared by every process.

    Each method commits in its own short transaction (never the request's: a refused
    launch still uses up its state). One-time use is the database's: `take_state` is one
    ``DELETE … RETURNING`` (of two processes taking the same state, one gets the row), and
    `use_nonce` an ``INSERT`` whose primary key refuses a second use. Expired rows are
    refused and pruned whenever a login starts.

    Args:
        sessions: a sessionmaker on the gradebook's engine.
        ttl_s: how long a login may take to come back.
        clock: the current time (tests pass a fixed one).
    """

    def __init__(self, sessions: sessionmaker, ttl_s: float = STATE_TTL_S,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.sessions, self.ttl_s = sessions, ttl_s
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def new_state(self, issuer: str, client_id: str | None) -> tuple[str, str]:
        """A fresh (state, nonce) for a login of `issuer`, stored until it expires."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.sessions.begin() as session:
            self._prune(session, now)
            session.add(LtiStateModel(state=state, nonce=nonce, issuer=issuer,
                                      client_id=client_id,
                                      expires_at=now + timedelta(seconds=self.ttl_s)))
        return state, nonce

    def take_state(self, state: str) -> tuple[str, str, str | None] | None:
        """(nonce, issuer, client id) of a state, deleted so it works once; None if it is
        unknown, used or expired."""
        if not state or len(state) > MAX_STATE_CHARS:
            return None
        with self.sessions.begin() as session:
            row = session.execute(
                delete(LtiStateModel).where(LtiStateModel.state == state)
                .returning(LtiStateModel.nonce, LtiStateModel.issuer,
                           LtiStateModel.client_id, LtiStateModel.expires_at)
                .execution_options(synchronize_session=False)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return row.nonce, row.issuer, row.client_id

    def use_nonce(self, nonce: str) -> bool:
        """Marks a nonce used; False when it was used already (a replayed id_token)."""
        expires = self.clock() + timedelta(seconds=self.ttl_s + 2 * LEEWAY_S)
        try:
            with self.sessions.begin() as session:
                session.add(LtiNonceModel(nonce=nonce, expires_at=expires))
        except IntegrityError:
            return False
        return True

    @staticmethod
    def _prune(session: Session, now: datetime) -> None:
        for model in (LtiStateModel, LtiNonceModel):
            session.execute(delete(model).where(model.expires_at < now)
                            .execution_options(synchronize_session=False))


def login_redirect(registry: PlatformRegistry, store: NonceStore, params: Mapping[str, str],
                   *, launch_url: str) -> str:
    """The platform URL a login initiation redirects the browser to.

    Args:
        registry: the trusted platforms.
        store: where the state and nonce are kept until the launch.
        params: the login request's parameters (query or form).
        launch_url: the tool's own launch URL (``redirect_uri``); never taken from the
            request, so the login cannot be turned into an open redirect.

    Raises:
        LtiError: no ``iss`` or ``login_hint``, or an issuer/client the course has not registered.
    """
    issuer, hint = str(params.get("iss", "")), str(params.get("login_hint", ""))
    if not issuer or not hint:
        raise LtiError("an LTI login needs `iss` and `login_hint`; received "
                       f"{sorted(params)!r}. Start from the LMS's link to the tool")
    client_id = params.get("client_id") or None
    platform = registry.find(issuer, client_id)
    if platform is None:
        raise LtiError(f"the LMS `{printable(issuer, limit=100)}` (client id "
                       f"{printable(str(client_id), limit=60)}) is not registered in this "
                       "course's lti.toml; ask the instructor to add it", status=403)
    state, nonce = store.new_state(platform.issuer, platform.client_id)
    query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
             "prompt": "none", "client_id": platform.client_id, "redirect_uri": launch_url,
             "login_hint": hint, "state": state, "nonce": nonce}
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = str(params["lti_message_hint"])
    separator = "&" if "?" in platform.login_url else "?"
    return platform.login_url + separator + urlencode(query)


def validate_launch(id_token: str, state: str, *, registry: PlatformRegistry,
                    store: NonceStore, now: float | None = None) -> Launch:
    """Checks a launch's id_token and returns who launched.

    Raises:
        LtiError: the state is unknown or used, the token is malformed, not RS256, signed by
            a key the platform does not publish, for another audience, expired, carries a
            wrong or used nonce, an unknown deployment, another message type or version,
            or no role the service knows.
    """
    pending = store.take_state(str(state or ""))
    if pending is None:
        raise LtiError("this LTI launch's state is unknown, expired or already used (a "
                       "reloaded or replayed launch); open the tool again from the LMS")
    nonce, issuer, client_id = pending
    platform = registry.find(issuer, client_id)
    if platform is None:
        raise LtiError("the LMS of this launch is no longer registered", status=403)
    if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_TOKEN_CHARS:
        raise LtiError(f"the launch carried no usable id_token (expected a JWT of at most "
                       f"{MAX_TOKEN_CHARS} characters)")
    header = _header(id_token)
    if header.get("alg") not in ALGORITHMS:
        raise LtiError(f"the id_token is signed with alg={printable(str(header.get('alg')))}; "
                       f"expected one of {', '.join(ALGORITHMS)}", status=401)
    keys = registry.keys(platform, kid=str(header.get("kid") or "") or None)
    try:
        token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
    except JoseError as error:
        raise LtiError(f"the id_token's signature does not verify against the keys "
                       f"{platform.issuer} publishes ({type(error).__name__}); the token was "
                       "not signed by the LMS", status=401) from None
    claims = token.claims
    _check_registered(claims, platform, nonce, now)
    if not store.use_nonce(nonce):
        raise LtiError("this id_token's nonce was used already (a replayed launch); open the "
                       "tool again from the LMS", status=401)
    deployment = claims.get(CLAIM + "deployment_id")
    if deployment not in platform.deployment_ids:
        raise LtiError(f"deployment `{printable(str(deployment), limit=100)}` is not one this "
                       f"course accepts from {platform.issuer} "
                       f"({', '.join(platform.deployment_ids)})",
                       status=403)
    if claims.get(CLAIM + "message_type") != RESOURCE_LINK_REQUEST:
        raise LtiError(f"message type {printable(str(claims.get(CLAIM + 'message_type')))} is "
                       f"not supported; expected {RESOURCE_LINK_REQUEST}")
    if claims.get(CLAIM + "version") != VERSION:
        raise LtiError(f"LTI version {printable(str(claims.get(CLAIM + 'version')))}; "
                       f"expected {VERSION}")
    roles = claims.get(CLAIM + "roles")
    role = role_of(roles if isinstance(roles, list) else [])
    if role is None:
        raise LtiError("the LMS sent no role the grader knows (Learner, Instructor, "
                       "TeachingAssistant); ask the instructor to check your enrolment",
                       status=403)
    return _launch(claims, platform, str(deployment), role)


def role_of(roles: Sequence[object]) -> str | None:
    """The service role of a list of LIS role URIs ("student", "ta", "instructor"), or None."""
    given = {str(r) for r in roles}
    for uri, role in ROLE_MAP:
        if uri in given:
            return role
    return None


def _header(id_token: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(id_token.encode("ascii")).protected)
    except (JoseError, ValueError, UnicodeError) as error:
        raise LtiError(f"the id_token is not a compact JWS ({type(error).__name__})",
                       status=401) from None


def _check_registered(claims: Mapping[str, Any], platform: Platform, nonce: str,
                      now: float | None) -> None:
    """iss, aud (and azp), exp, iat, nonce and sub, as the Security Framework requires."""
    options: dict[str, Any] = {"iss": {"essential": True, "value": platform.issuer},
                               "exp": {"essential": True}, "iat": {"essential": True},
                               "sub": {"essential": True}}
    registry = jwt.JWTClaimsRegistry(now=int(now) if now is not None else None,
                                     leeway=LEEWAY_S, **options)
    try:
        registry.validate(dict(claims))
    except ExpiredTokenError:
        raise LtiError("the id_token has expired; open the tool again from the LMS",
                       status=401) from None
    except JoseError as error:
        raise LtiError(f"the id_token's claims were refused: {error}; expected iss "
                       f"{platform.issuer}", status=401) from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if platform.client_id not in audiences:
        raise LtiError(f"the id_token is for audience {printable(str(audience), limit=100)}; "
                       f"expected this tool's client id {platform.client_id}", status=401)
    if len(audiences) > 1 and claims.get("azp") != platform.client_id:
        raise LtiError(f"the id_token names several audiences but its azp is "
                       f"{printable(str(claims.get('azp')))}; expected {platform.client_id}",
                       status=401)
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise LtiError("the id_token's nonce is not the one this login issued (a token from "
                       "another login); open the tool again from the LMS", status=401)


def _text(value: Any, limit: int = 300) -> str:
    return printable(value, limit=limit) if isinstance(value, str) else ""


def _launch(claims: Mapping[str, Any], platform: Platform, deployment: str, role: str) -> Launch:
    lis = claims.get(CLAIM + "lis")
    sourcedid = lis.get("person_sourcedid") if isinstance(lis, Mapping) else None
    try:
        student_id: str | None = validate_id(sourcedid) if sourcedid is not None else None
    except InvalidId:
        student_id = None  # not a roster number: the sign-in asks for one
    context = claims.get(CLAIM + "context")
    link = claims.get(CLAIM + "resource_link")
    custom = claims.get(CLAIM + "custom")
    ags = claims.get(AGS_CLAIM)
    ags = ags if isinstance(ags, Mapping) else {}
    scopes = ags.get("scope")
    return Launch(
        issuer=platform.issuer, client_id=platform.client_id, deployment_id=deployment,
        subject=_text(claims.get("sub"), 255), role=role, name=_text(claims.get("name")),
        email=_text(claims.get("email")), student_id=student_id,
        context_id=_text(context.get("id")) if isinstance(context, Mapping) else "",
        resource_link_id=_text(link.get("id")) if isinstance(link, Mapping) else "",
        assignment=_text(custom.get("assignment"), 100) if isinstance(custom, Mapping) else "",
        lineitem=_text(ags.get("lineitem"), 2000) if
        str(ags.get("lineitem", "")).startswith("https://") else "",
        ags_scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else ())
