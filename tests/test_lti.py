"""LTI 1.3 against a platform emulator: login initiation, the launch's id_token checks (and
the attacks on them), and grade passback through Assignment and Grade Services.

The emulator is an LMS in miniature behind an httpx MockTransport: its own RSA key and JWKS,
an OAuth 2 token endpoint that checks the tool's signed client assertion against the tool's
public key, and line items that keep the scores they are sent. No network is used.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from grader.gradebook import open_gradebook
from grader.gradebook.models import LtiLaunchModel
from grader.service.lti import (
    AgsClient,
    AgsError,
    LtiError,
    NonceStore,
    Platform,
    PlatformRegistry,
    Score,
    ToolKey,
    load_platforms,
    login_redirect,
    role_of,
    scores_url,
    validate_launch,
)
from grader.service.lti.launch import AGS_CLAIM, CLAIM
from grader.service.lti.platforms import LtiConfigError

ISSUER = "https://lms.test"
CLIENT = "tool-client-1"
DEPLOYMENT = "deploy-1"
LAUNCH_URL = "https://grader.test/lti/launch"
LINEITEM = "https://lms.test/api/lti/courses/7/line_items/42?type=x"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"

# One key of each kind for the whole module: RSA key generation is the slow part.
PLATFORM_KEY = RSAKey.generate_key(2048, auto_kid=True)
ATTACKER_KEY = RSAKey.generate_key(2048, auto_kid=True)
TOOL_KEY = ToolKey.generate()


class Emulator:
    """An LMS: JWKS, a token endpoint, line items; every request it answers is logged."""

    def __init__(self) -> None:
        self.scores: list[dict] = []
        self.requests: list[httpx.Request] = []
        self.tokens: set[str] = set()
        self.jwks_fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json=KeySet([PLATFORM_KEY]).as_dict(private=False))
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            if form.get("grant_type") != "client_credentials":
                return httpx.Response(400, json={"error": "unsupported_grant_type"})
            try:  # the tool's assertion, checked against the tool's published key
                token = jwt.decode(form["client_assertion"],
                                   KeySet.import_key_set(TOOL_KEY.public_jwks()),
                                   algorithms=["RS256"])
            except Exception:  # noqa: BLE001 - any failure is the client's
                return httpx.Response(401, json={"error": "invalid_client"})
            claims = token.claims
            if claims["iss"] != CLIENT or claims["aud"] != "https://lms.test/token" \
                    or claims["exp"] < time.time():
                return httpx.Response(401, json={"error": "invalid_client"})
            access = f"access-{len(self.tokens)}"
            self.tokens.add(access)
            return httpx.Response(200, json={"access_token": access, "token_type": "Bearer",
                                             "expires_in": 3600, "scope": form.get("scope")})
        if path.endswith("/scores") and request.method == "POST":
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.tokens:
                return httpx.Response(401, text="unknown token")
            if request.headers.get("content-type") != "application/vnd.ims.lis.v1.score+json":
                return httpx.Response(415, text="wrong content type")
            self.scores.append({"url": str(request.url), **json.loads(request.content)})
            return httpx.Response(204)
        return httpx.Response(404, text="not found")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


def platform(**changes: object) -> Platform:
    fields = dict(issuer=ISSUER, client_id=CLIENT, deployment_ids=(DEPLOYMENT,),
                  login_url="https://lms.test/auth", token_url="https://lms.test/token",
                  jwks_url="https://lms.test/jwks")
    fields.update(changes)
    return Platform(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def lms() -> Emulator:
    return Emulator()


@pytest.fixture()
def registry(lms: Emulator) -> PlatformRegistry:
    return PlatformRegistry([platform()], lms.client())


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[NonceStore]:
    """Login states and nonces in a fresh gradebook (SQLite), as the service keeps them."""
    gradebook = open_gradebook(f"sqlite:///{tmp_path / 'lti.db'}")
    yield NonceStore(sessionmaker(gradebook.engine))
    gradebook.close()


def id_token(token_nonce: str, *, key: RSAKey = PLATFORM_KEY, alg: str = "RS256",
             **changes: object) -> str:
    now = int(time.time())
    claims: dict = {
        "iss": ISSUER, "aud": CLIENT, "sub": "lms-user-17", "iat": now, "exp": now + 300,
        "nonce": token_nonce, "name": "<script>alert(1)</script>",
        CLAIM + "deployment_id": DEPLOYMENT,
        CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
        CLAIM + "roles": [LEARNER],
        CLAIM + "lis": {"person_sourcedid": "2024001"},
        CLAIM + "context": {"id": "course-7"}, CLAIM + "resource_link": {"id": "link-9"},
        CLAIM + "custom": {"assignment": "mlp_numpy"},
        AGS_CLAIM: {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                    "lineitem": LINEITEM},
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": alg, "kid": key.kid or PLATFORM_KEY.kid}, claims, key,
                      algorithms=[alg])


def login(registry: PlatformRegistry, store: NonceStore) -> tuple[str, str]:
    """Login initiation as the LMS starts it -> (state, nonce) the platform echoes back."""
    url = login_redirect(registry, store, {"iss": ISSUER, "login_hint": "u17",
                                           "target_link_uri": "https://evil.test/"},
                         launch_url=LAUNCH_URL)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("https://lms.test/auth?")
    assert query["redirect_uri"] == LAUNCH_URL  # never the request's target_link_uri
    assert query["client_id"] == CLIENT and query["response_mode"] == "form_post"
    return query["state"], query["nonce"]


def test_a_valid_launch_gives_role_student_id_and_line_item(
        registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    launch = validate_launch(id_token(nonce), state, registry=registry, store=store)
    assert launch.role == "student" and launch.student_id == "2024001"
    assert launch.subject == "lms-user-17" and launch.assignment == "mlp_numpy"
    assert launch.lineitem == LINEITEM and launch.deployment_id == DEPLOYMENT
    assert launch.name == "<script>alert(1)</script>"  # kept as text; pages escape it


def test_login_from_an_unregistered_platform_is_refused(
        registry: PlatformRegistry, store: NonceStore) -> None:
    with pytest.raises(LtiError, match="not registered") as error:
        login_redirect(registry, store, {"iss": "https://evil.test", "login_hint": "x"},
                       launch_url=LAUNCH_URL)
    assert error.value.status == 403
    with pytest.raises(LtiError, match="needs `iss` and `login_hint`"):
        login_redirect(registry, store, {"iss": ISSUER}, launch_url=LAUNCH_URL)


def test_bad_signature_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    forged = id_token(nonce, key=ATTACKER_KEY)
    with pytest.raises(LtiError, match="signature does not verify") as error:
        validate_launch(forged, state, registry=registry, store=store)
    assert error.value.status == 401


def test_a_tampered_payload_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    header, payload, signature = id_token(nonce).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims[CLAIM + "roles"] = [INSTRUCTOR]  # a student promotes themself
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(LtiError, match="signature does not verify"):
        validate_launch(f"{header}.{raw}.{signature}", state, registry=registry, store=store)


def test_alg_none_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    good = id_token(nonce)
    unsigned_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    unsigned = f"{unsigned_header}.{good.split('.')[1]}."
    with pytest.raises(LtiError, match="alg=none") as error:
        validate_launch(unsigned, state, registry=registry, store=store)
    assert error.value.status == 401


def test_hmac_with_the_public_key_as_secret_is_refused(
        registry: PlatformRegistry, store: NonceStore) -> None:
    from joserfc.jwk import OctKey

    state, nonce = login(registry, store)
    secret = OctKey.import_key(json.dumps(PLATFORM_KEY.as_dict(private=False)).encode())
    forged = id_token(nonce, key=secret, alg="HS256")  # type: ignore[arg-type]
    with pytest.raises(LtiError, match="alg=HS256"):
        validate_launch(forged, state, registry=registry, store=store)


def test_wrong_audience_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    with pytest.raises(LtiError, match="expected this tool's client id"):
        validate_launch(id_token(nonce, aud="another-tool"), state, registry=registry,
                        store=store)
    state, nonce = login(registry, store)
    with pytest.raises(LtiError, match="azp"):
        validate_launch(id_token(nonce, aud=[CLIENT, "another-tool"]), state,
                        registry=registry, store=store)


def test_wrong_issuer_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    with pytest.raises(LtiError, match="claims were refused"):
        validate_launch(id_token(nonce, iss="https://evil.test"), state, registry=registry,
                        store=store)


def test_expired_token_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    old = int(time.time()) - 3600
    with pytest.raises(LtiError, match="has expired") as error:
        validate_launch(id_token(nonce, iat=old, exp=old + 300), state, registry=registry,
                        store=store)
    assert error.value.status == 401


def test_replayed_launch_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    token = id_token(nonce)
    validate_launch(token, state, registry=registry, store=store)
    with pytest.raises(LtiError, match="already used"):  # the same form posted again
        validate_launch(token, state, registry=registry, store=store)
    state2, _ = login(registry, store)  # a fresh login cannot carry the old token either
    with pytest.raises(LtiError, match="nonce is not the one this login issued"):
        validate_launch(token, state2, registry=registry, store=store)


def test_used_nonce_is_refused_even_with_its_state(store: NonceStore) -> None:
    assert store.use_nonce("n1") is True
    assert store.use_nonce("n1") is False


def test_unknown_deployment_is_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    with pytest.raises(LtiError, match="deployment `deploy-666` is not one") as error:
        validate_launch(id_token(nonce, **{CLAIM + "deployment_id": "deploy-666"}), state,
                        registry=registry, store=store)
    assert error.value.status == 403


def test_other_message_types_versions_and_roles_are_refused(
        registry: PlatformRegistry, store: NonceStore) -> None:
    for changes, message in [
            ({CLAIM + "message_type": "LtiDeepLinkingRequest"}, "not supported"),
            ({CLAIM + "version": "1.1"}, "expected 1.3.0"),
            ({CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]},
             "no role the grader knows"),
            ({"nonce": None}, "nonce is not the one")]:
        state, nonce = login(registry, store)
        with pytest.raises(LtiError, match=message):
            validate_launch(id_token(nonce, **changes), state, registry=registry, store=store)


def test_garbage_and_huge_tokens_are_refused(registry: PlatformRegistry, store: NonceStore) -> None:
    for token in ["not-a-jwt", "a.b.c", "x" * 100_000, ""]:
        state, _ = login(registry, store)
        with pytest.raises(LtiError):
            validate_launch(token, state, registry=registry, store=store)


def test_hostile_sourcedid_is_not_a_student_id(
        registry: PlatformRegistry, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    launch = validate_launch(id_token(nonce, **{CLAIM + "lis": {"person_sourcedid": "../../x/y"}}),
                             state, registry=registry, store=store)
    assert launch.student_id is None


def test_roles_map_to_the_service_roles() -> None:
    assert role_of([LEARNER]) == "student"
    assert role_of([INSTRUCTOR]) == "instructor"
    assert role_of([TA, INSTRUCTOR]) == "ta"  # a TA is also listed as Instructor by Canvas
    assert role_of(["urn:lti:role:ims/lis/Learner", "junk", 3]) is None


def test_an_unknown_kid_refetches_the_platform_keys_once(registry: PlatformRegistry,
                                                         lms: Emulator, store: NonceStore) -> None:
    state, nonce = login(registry, store)
    validate_launch(id_token(nonce), state, registry=registry, store=store)
    assert lms.jwks_fetches == 1
    state, nonce = login(registry, store)
    validate_launch(id_token(nonce), state, registry=registry, store=store)
    assert lms.jwks_fetches == 1  # cached
    state, nonce = login(registry, store)
    with pytest.raises(LtiError, match="signature"):  # a forged kid: one refetch at most
        validate_launch(id_token(nonce, key=ATTACKER_KEY), state, registry=registry,
                        store=store)
    assert lms.jwks_fetches <= 2


def test_grade_passback_gets_a_token_and_posts_the_score(lms: Emulator) -> None:
    client = AgsClient(platform(), TOOL_KEY, lms.client())
    client.post_score(LINEITEM, Score("lms-user-17", 7.5, 10.0, comment="released"))
    client.post_score(LINEITEM, Score("lms-user-18", 10.0, 10.0))
    assert [s["userId"] for s in lms.scores] == ["lms-user-17", "lms-user-18"]
    first = lms.scores[0]
    assert first["url"] == "https://lms.test/api/lti/courses/7/line_items/42/scores?type=x"
    assert first["scoreGiven"] == 7.5 and first["scoreMaximum"] == 10.0
    assert first["gradingProgress"] == "FullyGraded" and first["comment"] == "released"
    assert len(lms.tokens) == 1  # the access token is reused


def test_passback_refuses_scores_out_of_bounds(lms: Emulator) -> None:
    client = AgsClient(platform(), TOOL_KEY, lms.client())
    for given, maximum in [(11.0, 10.0), (-1.0, 10.0), (float("nan"), 10.0), (1.0, 0.0)]:
        with pytest.raises(AgsError, match="within 0..its maximum"):
            client.post_score(LINEITEM, Score("u", given, maximum))
    with pytest.raises(AgsError, match="https"):
        client.post_score("http://lms.test/li/1", Score("u", 1.0, 2.0))
    assert lms.scores == []


def test_passback_with_a_key_the_platform_does_not_know_says_so(lms: Emulator) -> None:
    client = AgsClient(platform(), ToolKey(ATTACKER_KEY), lms.client())
    with pytest.raises(AgsError, match="access-token request was refused .*HTTP 401"):
        client.post_score(LINEITEM, Score("u", 1.0, 2.0))


def test_scores_url_keeps_the_query() -> None:
    assert scores_url("https://m.test/mod/lti/services.php/2/lineitems/5/lineitem?type_id=1") \
        == "https://m.test/mod/lti/services.php/2/lineitems/5/lineitem/scores?type_id=1"


def test_lti_toml_is_loaded_and_checked(tmp_path: Path) -> None:
    assert load_platforms(tmp_path) is None
    (tmp_path / "key.pem").write_bytes(TOOL_KEY.key.as_pem(private=True))
    good = ('tool_key = "key.pem"\n[[platform]]\nissuer = "https://lms.test"\n'
            'client_id = "c"\ndeployment_ids = ["d"]\nlogin_url = "https://lms.test/a"\n'
            'token_url = "https://lms.test/t"\njwks_url = "https://lms.test/j"\n')
    (tmp_path / "lti.toml").write_text(good)
    loaded = load_platforms(tmp_path)
    assert loaded is not None
    registry, key = loaded
    assert registry.find("https://lms.test").deployment_ids == ("d",)  # type: ignore[union-attr]
    assert key.public_jwks()["keys"][0]["kty"] == "RSA"
    assert "d" not in key.public_jwks()["keys"][0]  # never the private exponent
    for bad, message in [(good + 'colour = "red"\n', "unknown key `colour`"),
                         (good.replace("https://lms.test/j", "http://lms.test/j"),
                          "jwks_url must be an https:// URL"),
                         (good.replace('tool_key = "key.pem"', 'tool_key = "nope.pem"'),
                          "cannot read the tool's RSA private key")]:
        (tmp_path / "lti.toml").write_text(bad)
        with pytest.raises(LtiConfigError, match=message):
            load_platforms(tmp_path)


# --- the routes, through the real app (the staff tests' course and users) ---------------

def _service(staff_app, lms: Emulator):
    """The app with LTI switched on against the emulator (as lti.toml would)."""
    from grader.service.lti.routes import LtiState

    staff_app.state.lti = LtiState(PlatformRegistry([platform()], lms.client()), TOOL_KEY,
                                   staff_app.state.sessions)
    return staff_app


def _launch_form(client, **claims: object) -> dict[str, str]:
    reply = client.get("/lti/login", params={"iss": ISSUER, "login_hint": "u17"},
                       follow_redirects=False)
    assert reply.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(reply.headers["location"]).query).items()}
    assert query["redirect_uri"] == "http://testserver/lti/launch"
    custom = {CLAIM + "custom": {"assignment": "act"}}
    return {"id_token": id_token(query["nonce"], **{**custom, **claims}),
            "state": query["state"]}


def test_a_launch_signs_the_student_in_and_refuses_strangers_and_login_csrf(lms, tmp_path):
    import test_service_staff as staff_tests
    from fastapi.testclient import TestClient

    app = _service(staff_tests.seeded_app(tmp_path), lms)
    browser = TestClient(app)
    keys = browser.get("/lti/jwks.json").json()
    assert keys["keys"][0]["kid"] == TOOL_KEY.kid and "d" not in keys["keys"][0]
    form = _launch_form(browser, **{CLAIM + "lis": {"person_sourcedid": "s1"}})
    reply = browser.post("/lti/launch", data=form, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/assignments/act"
    assert browser.get("/assignments").status_code == 200  # signed in as s1
    replayed = browser.post("/lti/launch", data=form)
    assert replayed.status_code == 400  # its state cookie is gone, and the state is used

    # login CSRF: an attacker's own valid launch, posted from a victim's browser
    attacker, victim = TestClient(app), TestClient(app)
    stolen = _launch_form(attacker, sub="lms-user-18",
                          **{CLAIM + "lis": {"person_sourcedid": "s2"}})
    refused = victim.post("/lti/launch", data=stolen, follow_redirects=False)
    assert refused.status_code == 400 and "did not start in this browser" in refused.text
    assert victim.get("/assignments", follow_redirects=False).status_code != 200
    assert attacker.post("/lti/launch", data=stolen, follow_redirects=False).status_code == 303

    stranger = TestClient(app)
    form = _launch_form(stranger, **{CLAIM + "lis": {"person_sourcedid": "s999"}})
    refused = stranger.post("/lti/launch", data=form)
    assert refused.status_code == 403
    assert "Student number s999 is not on this course" in refused.text
    staff = TestClient(app)
    form = _launch_form(staff, **{CLAIM + "roles": [INSTRUCTOR], "email": "nobody@x"})
    refused = staff.post("/lti/launch", data=form)
    assert refused.status_code == 403 and "no staff account" in refused.text

    with app.state.sessions() as session:  # every accepted launch is in the launch table
        launches = session.scalars(select(LtiLaunchModel).order_by(LtiLaunchModel.id)).all()
    assert [(row.student_id, row.subject) for row in launches] == [
        ("s1", "lms-user-17"), ("s2", "lms-user-18")]
    assert len(staff_tests.audit_rows(app, "lti-launch")) == 2  # and audited


def test_without_lti_toml_the_lti_routes_say_so(tmp_path):
    import test_service_staff as staff_tests
    from fastapi.testclient import TestClient

    app = staff_tests.seeded_app(tmp_path)
    reply = TestClient(app).get("/lti/login", params={"iss": ISSUER, "login_hint": "x"})
    assert reply.status_code == 404 and "no LMS connection" in reply.text


def test_the_service_reads_lti_toml_again_when_it_changes(tmp_path):
    """Linking the LMS, changing the tool key or unlinking needs no restart."""
    import os

    import test_service_staff as staff_tests
    from fastapi.testclient import TestClient

    app = staff_tests.seeded_app(tmp_path)
    client, root = TestClient(app), app.state.course.root
    assert client.get("/lti/jwks.json").status_code == 404
    toml = root / "lti.toml"
    kids = []
    for name in ("first.pem", "second.pem"):
        key = ToolKey.generate()
        (root / name).write_bytes(key.key.as_pem(private=True))
        toml.write_text(f'tool_key = "{name}"\n', encoding="utf-8")
        later = toml.stat().st_mtime_ns + len(kids) * 10**9  # a coarse clock sees it too
        os.utime(toml, ns=(later, later))
        reply = client.get("/lti/jwks.json")
        assert reply.status_code == 200
        kids.append(reply.json()["keys"][0]["kid"])
    assert kids[0] != kids[1]  # the second key is served without a restart
    toml.unlink()
    assert client.get("/lti/jwks.json").status_code == 404
