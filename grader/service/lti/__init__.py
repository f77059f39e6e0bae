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
  then a score POSTed to the line item (`AgsClient.post_score`);
- `passback`: grade passback at release: an outbox of scores that `grader worker` sends.

Only `routes` knows the web framework: it maps ``/lti/login``, ``/lti/launch``,
``/lti/jwks.json``, the staff's resend button and the LTI page of an assignment onto these
functions; `grader.service.app` includes its `router`.

Decisions:

- **Everything in the gradebook's database** (migration 0005), nothing in a process's
  memory: login states (`lti_states`, deleted when taken: one ``DELETE … RETURNING``, so a
  state works once across every process and restart; refused after 10 minutes, pruned at
  each login), used nonces (`lti_nonces`, the primary key refuses a second use in any
  process), launches (`lti_launches`: platform, deployment, LMS user, our user and student,
  resource link, assignment, line item, scopes, time; the audit log keeps who/what/when too)
  and the passback outbox (`lti_passbacks`). Two `grader serve` processes behind one proxy,
  or a restart between login and launch, work.
- **States and nonces commit on their own**, never with the request: a launch refused after
  its state was taken still used the state up.
- **Passback is automatic and off the request thread** (`passback`'s Decisions): the release
  queues scores in the outbox, workers send them by AGS, each distinct score once; failures
  are retried with backoff, audited and listed on ``/staff/<id>/lti``; the button resends.
- **Who is linked**: a student's latest launch of an assignment that carried a line item;
  the LMS user id (``sub``) of that launch is the AGS ``userId``.
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
from grader.service.lti.passback import Lms, latest_launches, sync, tick
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
    "Lms",
    "NonceStore",
    "Platform",
    "PlatformRegistry",
    "Score",
    "latest_launches",
    "ToolKey",
    "load_platforms",
    "login_redirect",
    "role_of",
    "router",
    "scores_url",
    "sync",
    "tick",
    "validate_launch",
]
