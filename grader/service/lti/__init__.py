"""LTI 1.3 behind an adapter: an LMS (Moodle, Canvas) launches `grader serve` and receives grades.

Decision (README, Decisions): PyLTI1p3 is not used. It has had no release since 2022, its
framework adapters are Django's and Flask's (not FastAPI's), and it ties us to its own
session and cache classes. The part of LTI 1.3 the service needs is small and is written
here against a maintained JOSE library (joserfc):

- `platforms`: the platforms the course trusts (`lti.toml`), and the tool's own RSA key;
- `launch`: OIDC login initiation (`login_redirect`) and the launch's id_token checked
  (`validate_launch`: signature against the platform's JWKS, RS256 only, issuer,
  audience, expiry, nonce used once, deployment id, message type, version, roles);
- `ags`: Assignment and Grade Services: a client-credentials JWT grant for an access token,
  then a score POSTed to the line item (`AgsClient.post_score`).

Only `routes` knows the web framework: it maps ``/lti/login``, ``/lti/launch``,
``/lti/jwks.json`` and the staff's grade passback onto these functions; `grader.service.app`
includes its `router`.
"""

from grader.service.lti.ags import AgsClient, AgsError, Score, scores_url
from grader.service.lti.launch import (
    Launch,
    LtiError,
    NonceStore,
    login_redirect,
    role_of,
    validate_launch,
)
from grader.service.lti.platforms import (
    Platform,
    PlatformRegistry,
    ToolKey,
    load_platforms,
)
from grader.service.lti.routes import router

__all__ = [
    "AgsClient",
    "AgsError",
    "Launch",
    "LtiError",
    "NonceStore",
    "Platform",
    "PlatformRegistry",
    "Score",
    "ToolKey",
    "load_platforms",
    "login_redirect",
    "role_of",
    "router",
    "scores_url",
    "validate_launch",
]
