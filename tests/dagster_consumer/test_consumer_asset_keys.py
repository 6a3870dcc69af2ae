"""Unit tests of dagster_consumer.asset_keys: Airflow asset URIs → Dagster asset keys."""

from __future__ import annotations

import re
from typing import Any

import pytest
from dagster import AssetKey, AssetSpec, Definitions, asset

from airstream.dagster_consumer import AirflowAssetKeys, airflow_asset_key

VALID_COMPONENT = re.compile(r"^[A-Za-z0-9_]+$")


# --- the default rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        pytest.param("s3://warehouse/orders.parquet", ["s3", "warehouse", "orders_parquet"], id="s3"),
        pytest.param(
            "postgres://db.example.com:5432/shop/public/orders",
            ["postgres", "db_example_com_5432", "shop", "public", "orders"],
            id="host-and-port",
        ),
        pytest.param("file:///data/in.csv", ["file", "data", "in_csv"], id="no-host"),
        pytest.param("gs://bucket/x?version=2", ["gs", "bucket", "x", "version_2"], id="query"),
        pytest.param("gs://bucket/x?a=1&b=2#part", ["gs", "bucket", "x", "a_1_b_2", "part"], id="query-and-fragment"),
        pytest.param("s3://bucket", ["s3", "bucket"], id="empty-path"),
        pytest.param("s3://bucket/", ["s3", "bucket"], id="root-path"),
        pytest.param("s3://bucket//a///b/", ["s3", "bucket", "a", "b"], id="empty-segments"),
        pytest.param("orders", ["orders"], id="airflow-3-name-only"),
        pytest.param("S3://Bucket.Example/Key.CSV", ["s3", "bucket_example", "Key_CSV"], id="case"),
        pytest.param("s3://b/my%20file.csv", ["s3", "b", "my_file_csv"], id="percent-decoded"),
        pytest.param("s3://b/a%2Fb", ["s3", "b", "a_b"], id="encoded-slash-stays-in-its-segment"),
        pytest.param("s3://b/2024-01-01", ["s3", "b", "2024_01_01"], id="digits-and-dashes"),
        pytest.param("s3://données/café.csv", ["s3", "donnees", "cafe_csv"], id="accents"),
        pytest.param("  s3://b/x  ", ["s3", "b", "x"], id="surrounding-spaces"),
    ],
)
def test_default_rule(uri: str, path: list[str]) -> None:
    assert airflow_asset_key(uri) == AssetKey(path)


def test_user_and_password_never_reach_the_key() -> None:
    key = airflow_asset_key("postgres://app:s3cr3t@db:5432/shop")
    assert key == AssetKey(["postgres", "db_5432", "shop"])
    assert not any("s3cr3t" in part or "app" in part for part in key.path)


def test_characters_without_ascii_form_keep_names_apart() -> None:
    chinese = airflow_asset_key("s3://b/数据")
    japanese = airflow_asset_key("s3://b/データ")
    assert chinese != japanese
    assert re.fullmatch(r"[0-9a-f]{8}", chinese.path[-1])
    mixed = airflow_asset_key("s3://b/数据.csv")
    assert re.fullmatch(r"_csv_[0-9a-f]{8}", mixed.path[-1])


@pytest.mark.parametrize("uri", ["", "/", "///", "?", "#"])
def test_uri_with_nothing_left_gets_a_hashed_fallback(uri: str) -> None:
    key = airflow_asset_key(uri)
    assert key.path[0] == "airflow_asset"
    assert re.fullmatch(r"[0-9a-f]{8}", key.path[1])


def test_fallbacks_differ_per_uri() -> None:
    assert airflow_asset_key("") != airflow_asset_key("/")


def test_rule_is_deterministic() -> None:
    uri = "s3://warehouse/données/数据.parquet?v=1"
    assert airflow_asset_key(uri) == airflow_asset_key(uri)
    # A fixed value: the rule must not change between releases (it names assets in users' Dagster).
    assert airflow_asset_key("s3://b/数据") == AssetKey(["s3", "b", "5440f742"])


@pytest.mark.parametrize(
    "uri",
    [
        "s3://warehouse/orders.parquet",
        "postgres://u:p@[::1]:5432/a b/c-d",
        "s3://b/数据.csv",
        "weird:scheme/with spaces/and+plus?q=a b&x=%41#frag ment",
        "https://example.com/€/☃/ok",
        "",
    ],
)
def test_every_component_is_valid_everywhere_in_dagster(uri: str) -> None:
    key = airflow_asset_key(uri)
    assert key.path and all(VALID_COMPONENT.fullmatch(part) for part in key.path), key
    # Round trips through the UI's "a/b/c" form.
    assert AssetKey.from_user_string(key.to_user_string()) == key

    # Usable as the key of a real asset definition and of a spec, in loadable definitions.
    @asset(key=key)
    def produced() -> None: ...

    Definitions.validate_loadable(Definitions(assets=[produced]))
    Definitions.validate_loadable(Definitions(assets=[AssetSpec(key)]))


# --- AirflowAssetKeys: the user's own keys first ------------------------------------------------


def test_explicit_keys_win() -> None:
    keys = AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": AssetKey(["warehouse", "orders"])})
    assert keys.key_for("s3://warehouse/orders.parquet") == AssetKey(["warehouse", "orders"])
    assert keys.key_for("s3://warehouse/other.parquet") == AssetKey(["s3", "warehouse", "other_parquet"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [("orders", AssetKey("orders")), (["a", "b"], AssetKey(["a", "b"])), (("a", "b"), AssetKey(["a", "b"]))],
)
def test_explicit_keys_accept_strings_and_lists(given: Any, expected: AssetKey) -> None:
    assert AirflowAssetKeys(keys={"u://x": given}).key_for("u://x") == expected


def test_key_fn_comes_after_explicit_keys_and_none_falls_through() -> None:
    def lake(uri: str) -> AssetKey | None:
        return AssetKey(["lake", uri.rsplit("/", 1)[-1]]) if uri.startswith("s3://lake/") else None

    keys = AirflowAssetKeys(keys={"s3://lake/special": AssetKey("special")}, key_fn=lake)
    assert keys.key_for("s3://lake/special") == AssetKey("special")
    assert keys.key_for("s3://lake/events") == AssetKey(["lake", "events"])
    assert keys.key_for("s3://other/events") == AssetKey(["s3", "other", "events"])


def test_key_fn_returning_a_list_is_coerced() -> None:
    assert AirflowAssetKeys(key_fn=lambda uri: ["x", "y"]).key_for("u://z") == AssetKey(["x", "y"])  # type: ignore[arg-type,return-value]


def test_key_fn_returning_garbage_says_what_to_return() -> None:
    keys = AirflowAssetKeys(key_fn=lambda uri: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"airflow_asset_key_fn\('u://z'\) gave 42.*AssetKey"):
        keys.key_for("u://z")


@pytest.mark.parametrize("bad_value", [42, "", [], ["a", 3], None])
def test_explicit_key_that_is_not_a_key_is_refused_at_construction(bad_value: Any) -> None:
    with pytest.raises(TypeError, match=r"airflow_asset_keys\['u://x'\].*not an asset key"):
        AirflowAssetKeys(keys={"u://x": bad_value})


@pytest.mark.parametrize("bad_uri", ["", 3, None])
def test_explicit_key_for_a_non_uri_is_refused(bad_uri: Any) -> None:
    with pytest.raises(ValueError, match="not an Airflow asset URI"):
        AirflowAssetKeys(keys={bad_uri: AssetKey("x")})


def test_keys_must_be_a_mapping_and_key_fn_callable() -> None:
    with pytest.raises(TypeError, match="must map URI strings"):
        AirflowAssetKeys(keys=[("u://x", AssetKey("x"))])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="airflow_asset_key_fn must be a function"):
        AirflowAssetKeys(key_fn="not callable")  # type: ignore[arg-type]
