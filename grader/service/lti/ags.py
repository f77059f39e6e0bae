"""Assignment and Grade Services: a grade sent back to the LMS's gradebook column.

Two requests (LTI AGS 2.0, IMS Security Framework 4.1): the tool signs a client assertion
(a JWT with its own RSA key: iss = sub = client id, aud = the token URL, a fresh jti,
5 minutes' life) and exchanges it at the platform's token URL for a bearer token with the
score scope (client-credentials grant); then it POSTs a score to ``<lineitem>/scores``.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import httpx
from joserfc import jwt

from grader.ids import printable
from grader.service.lti.platforms import HTTP_TIMEOUT_S, Platform, ToolKey

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFE_S = 300
TOKEN_MARGIN_S = 30  # a cached access token is renewed this long before it expires


class AgsError(RuntimeError):
    """A grade the LMS did not take; the message says which request failed and why."""


@dataclass(frozen=True)
class Score:
    """One student's grade for a line item.

    Attributes:
        user_id: the platform's user id (the launch's ``sub``).
        given, maximum: the points, 0 <= given <= maximum, maximum > 0.
        comment: shown to the student in the LMS ("" for none).
    """

    user_id: str
    given: float
    maximum: float
    comment: str = ""


def scores_url(lineitem: str) -> str:
    """``<lineitem>/scores``, keeping the line item's query string (Moodle puts ids there)."""
    parts = urlsplit(lineitem)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


class AgsClient:
    """Sends scores to one platform; the access token is cached until shortly before expiry.

    Args:
        platform: the registration (client id, token URL).
        key: the tool's key, which signs the client assertion.
        http: the HTTP client (tests pass one bound to the platform emulator).
    """

    def __init__(self, platform: Platform, key: ToolKey, http: httpx.Client | None = None) -> None:
        self.platform, self.key = platform, key
        self.http = http or httpx.Client(timeout=HTTP_TIMEOUT_S)
        self._token: tuple[float, str] | None = None

    def assertion(self) -> str:
        """The signed client assertion for the token request."""
        now = int(time.time())
        claims = {"iss": self.platform.client_id, "sub": self.platform.client_id,
                  "aud": self.platform.token_url, "iat": now, "exp": now + ASSERTION_LIFE_S,
                  "jti": secrets.token_urlsafe(24)}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key.key,
                          algorithms=["RS256"])

    def access_token(self) -> str:
        """A bearer token with the score scope (client-credentials grant)."""
        if self._token is not None and self._token[0] > time.monotonic():
            return self._token[1]
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(), "scope": SCORE_SCOPE}
        response = self._send("POST", self.platform.token_url, "the access-token request",
                              data=form)
        try:
            body = response.json()
            token, life = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AgsError(f"the token endpoint {self.platform.token_url} answered without an "
                           "access_token") from None
        self._token = (time.monotonic() + max(0.0, life - TOKEN_MARGIN_S), token)
        return token

    def post_score(self, lineitem: str, score: Score) -> None:
        """Sends one score to the line item (the LMS keeps the latest).

        Raises:
            AgsError: a score out of bounds, or a request the platform refused.
        """
        if not (math.isfinite(score.given) and math.isfinite(score.maximum)
                and score.maximum > 0 and 0 <= score.given <= score.maximum):
            raise AgsError(f"a score must lie within 0..its maximum (> 0); received "
                           f"{score.given!r} of {score.maximum!r} for {printable(score.user_id)}")
        if not lineitem.startswith("https://"):
            raise AgsError(f"the line item URL must be https://; received "
                           f"{printable(lineitem, limit=200)}")
        body = {"userId": score.user_id, "scoreGiven": float(score.given),
                "scoreMaximum": float(score.maximum), "activityProgress": "Completed",
                "gradingProgress": "FullyGraded",
                "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        if score.comment:
            body["comment"] = score.comment[:1000]
        self._send("POST", scores_url(lineitem), f"the score for {printable(score.user_id)}",
                   json=body, headers={"Authorization": f"Bearer {self.access_token()}",
                                       "Content-Type": SCORE_TYPE})

    def _send(self, method: str, url: str, what: str, **kwargs: object) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise AgsError(f"{what} to {url} failed: {type(error).__name__}: {error}") from None
        if response.status_code >= 400:
            raise AgsError(f"{what} was refused by {url}: HTTP {response.status_code} "
                           f"{printable(response.text, limit=300)}")
        return response
