"""Auth backends against a fake Airflow over real HTTP: token renewal before expiry and on refusal, the
errors that say which backend to use, and no password in any message or repr."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import requests

from airstream.dagster_consumer import AirflowInstance
from airstream.dagster_consumer.rest import (
    AirflowAuthBackend,
    AirflowAuthenticationError,
    AirflowRestClient,
    AirflowRestError,
    BasicAuthBackend,
    BearerTokenAuthBackend,
    TokenAuthBackend,
)
from airstream.dagster_consumer.rest.auth import jwt_expiry, normalize_webserver_url
from devstack.fake_airflow_http import PASSWORD, USERNAME, FakeAirflowHttp, make_jwt

SECRET = "s3cr3t-Pa55word-never-shown"


@pytest.fixture
def airflow3() -> Iterator[FakeAirflowHttp]:
    with FakeAirflowHttp("v2") as fake:
        yield fake


@pytest.fixture
def airflow2() -> Iterator[FakeAirflowHttp]:
    with FakeAirflowHttp("v1") as fake:
        yield fake


def test_one_token_serves_many_requests(airflow3: FakeAirflowHttp) -> None:
    backend = TokenAuthBackend(airflow3.url, USERNAME, PASSWORD)
    client = AirflowRestClient(backend)
    for _ in range(3):
        client.list_dags()
    assert airflow3.tokens_issued == 1
    assert backend.tokens_fetched == 1


def test_the_token_is_renewed_before_it_expires(airflow3: FakeAirflowHttp) -> None:
    airflow3.token_lifetime = 1.0  # renewed at half its lifetime when shorter than the margin
    client = AirflowRestClient(TokenAuthBackend(airflow3.url, USERNAME, PASSWORD, refresh_margin=60))
    client.list_dags()
    client.list_dags()
    assert airflow3.tokens_issued == 1
    time.sleep(0.6)
    client.list_dags()
    assert airflow3.tokens_issued == 2
    # No request was refused: the token was renewed before Airflow saw it expire.
    assert airflow3.count("GET", "/api/v2/dags") == 3


def test_a_refused_token_is_renewed_once_and_the_request_repeated(airflow3: FakeAirflowHttp) -> None:
    client = AirflowRestClient(TokenAuthBackend(airflow3.url, USERNAME, PASSWORD))
    client.list_dags()
    airflow3.expire_tokens()  # Airflow now answers 403 "Invalid JWT token"
    assert len(client.list_dags()) == 3
    assert airflow3.tokens_issued == 2
    assert airflow3.count("GET", "/api/v2/dags") == 3  # 1 + refused + repeated


def test_an_expired_token_answered_401_is_renewed(airflow3: FakeAirflowHttp) -> None:
    backend = TokenAuthBackend(airflow3.url, USERNAME, PASSWORD)
    client = AirflowRestClient(backend)
    client.list_dags()
    airflow3.fail_next(1, status=401, path="/api/v2/dags")  # "Token Expired"
    assert len(client.list_dags()) == 3
    assert backend.tokens_fetched == 2


def test_a_second_refusal_is_an_authentication_error(airflow3: FakeAirflowHttp) -> None:
    client = AirflowRestClient(TokenAuthBackend(airflow3.url, USERNAME, PASSWORD))
    client.server_info()
    airflow3.fail_next(2, status=401, path="/api/v2/dags")
    with pytest.raises(AirflowAuthenticationError, match="refused even after renewing it once"):
        client.list_dags()


def test_wrong_password_names_the_user_and_url_never_the_password(airflow3: FakeAirflowHttp) -> None:
    client = AirflowRestClient(TokenAuthBackend(airflow3.url, "robot", SECRET))
    with pytest.raises(AirflowAuthenticationError) as caught:
        client.list_dags()
    message = str(caught.value)
    assert "'robot'" in message
    assert airflow3.url in message
    assert_no_secret(caught.value, client, client.auth_backend)


def test_basic_auth_against_airflow_3_says_to_use_the_token_backend(airflow3: FakeAirflowHttp) -> None:
    client = AirflowRestClient(BasicAuthBackend(airflow3.url, USERNAME, SECRET))
    with pytest.raises(AirflowAuthenticationError, match=r"this is Airflow 3.*Use TokenAuthBackend\(") as caught:
        client.list_dags()
    assert_no_secret(caught.value, client, client.auth_backend)


def test_the_token_backend_against_airflow_2_says_to_use_basic_auth(airflow2: FakeAirflowHttp) -> None:
    client = AirflowRestClient(TokenAuthBackend(airflow2.url, USERNAME, SECRET))
    with pytest.raises(
        AirflowAuthenticationError, match=r"not Airflow 3\. For Airflow 2 use BasicAuthBackend"
    ) as caught:
        client.list_dags()
    assert_no_secret(caught.value, client, client.auth_backend)


def test_wrong_basic_auth_on_airflow_2_names_the_user_and_url(airflow2: FakeAirflowHttp) -> None:
    client = AirflowRestClient(BasicAuthBackend(airflow2.url, "robot", SECRET))
    with pytest.raises(
        AirflowAuthenticationError, match=r"403 .*wrong username or password for user 'robot'"
    ) as caught:
        client.list_dags()
    assert airflow2.url in str(caught.value)
    assert_no_secret(caught.value, client, client.auth_backend)


def test_a_refused_bearer_token_says_it_may_have_expired(airflow3: FakeAirflowHttp) -> None:
    client = AirflowRestClient(BearerTokenAuthBackend(airflow3.url, SECRET))
    with pytest.raises(AirflowAuthenticationError, match=r"expired, revoked .*TokenAuthBackend") as caught:
        client.list_dags()
    assert_no_secret(caught.value, client, client.auth_backend)


def test_a_valid_bearer_token_works(airflow3: FakeAirflowHttp) -> None:
    token = requests.post(f"{airflow3.url}/auth/token", json={"username": USERNAME, "password": PASSWORD}).json()
    client = AirflowRestClient(BearerTokenAuthBackend(airflow3.url, token["access_token"]))
    assert len(client.list_dags()) == 3


def test_a_custom_backend_brings_its_own_session(airflow2: FakeAirflowHttp) -> None:
    class HeaderBackend(AirflowAuthBackend):
        """What a managed service's backend looks like: a session that carries its credentials."""

        def get_session(self) -> requests.Session:
            session = requests.Session()
            encoded = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            session.headers["Authorization"] = f"Basic {encoded}"
            return session

        def get_webserver_url(self) -> str:
            return airflow2.url + "/"

    client = AirflowRestClient(HeaderBackend())
    assert client.webserver_url == airflow2.url
    assert len(client.list_dags()) == 3


def test_the_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        AirflowAuthBackend()  # type: ignore[abstract]


def test_jwt_expiry_is_read_without_verifying() -> None:
    assert jwt_expiry(make_jwt({"exp": 1_800_000_000})) == 1_800_000_000.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry(make_jwt({"sub": "admin"})) is None


@pytest.mark.parametrize("url", ["airflow:8080", "ftp://airflow", ""])
def test_webserver_urls_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="must start with http"):
        normalize_webserver_url(url)


def test_reprs_hide_secrets() -> None:
    backends: list[AirflowAuthBackend] = [
        BasicAuthBackend("http://af:8080", USERNAME, SECRET),
        TokenAuthBackend("http://af:8080", USERNAME, SECRET),
        BearerTokenAuthBackend("http://af:8080", SECRET),
    ]
    for backend in backends:
        instance = AirflowInstance(name="prod", auth_backend=backend)
        assert_no_secret(backend, instance, AirflowRestClient(backend))
        assert instance.webserver_url == "http://af:8080"


def assert_no_secret(*objects: object) -> None:
    for item in objects:
        for text in (str(item), repr(item)):
            assert SECRET not in text, f"the password leaked into {type(item).__name__}: {text}"
        if isinstance(item, AirflowRestError):
            assert item.__cause__ is None or SECRET not in repr(item.__cause__)
