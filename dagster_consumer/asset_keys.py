"""Which Dagster asset key an Airflow asset (a dataset on Airflow 2) is recorded under.

An Airflow asset is named by its URI. Users can name the key of any URI themselves (a mapping, or
a function for whole families of URIs); every other URI gets a key by one fixed rule,
:func:`airflow_asset_key`, so the same URI always lands on the same Dagster asset, whichever
Airflow instance or DAG updated it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from dagster import AssetKey

# What a key component may hold so the key works everywhere in Dagster 1.13: AssetKey itself
# accepts any string, but `@asset(key=...)` derives an op name that must match this, string keys
# are split on every other character, and "/" separates components in the UI's key strings.
_NOT_KEY_CHARACTER = re.compile(r"[^A-Za-z0-9_]")
_HASH_LENGTH = 8

AirflowAssetKeyFn = Callable[[str], AssetKey | None]
"""A function from an Airflow asset URI to its Dagster key; ``None`` leaves the URI to the default rule."""

KeyLike = AssetKey | str | Sequence[str]


def airflow_asset_key(uri: str) -> AssetKey:
    """The default Dagster key of an Airflow asset URI.

    The rule: the URI's scheme (lower-cased), its host and port (lower-cased, user and password
    dropped), each non-empty path segment (percent-decoded), then the query and the fragment if
    present, each becomes one key component. In each component, accents are dropped (``é`` → ``e``)
    and every ASCII character other than letters, digits and ``_`` becomes ``_``. Characters with
    no ASCII form are dropped and the component gets ``_`` and 8 hex digits of its SHA-256
    appended (only those 8 digits when nothing else is left), so ``数据`` and ``データ`` stay apart.
    A URI with nothing left (``""``, ``"/"``) gets ``["airflow_asset", <8 hex digits of the URI's
    SHA-256>]``.

    Components then match ``[A-Za-z0-9_]+``, the form Dagster 1.13 accepts everywhere (key strings,
    ``@asset(key=...)``, the UI's ``a/b/c`` form). The rule is deterministic but many-to-one for
    URIs that differ only in punctuation (``orders.parquet`` and ``orders_parquet``): name such
    assets explicitly (``airflow_asset_keys=`` on :func:`build_defs_from_airflow_instance`).

    Examples::

        airflow_asset_key("s3://warehouse/orders.parquet")
        # AssetKey(["s3", "warehouse", "orders_parquet"])
        airflow_asset_key("postgres://app:secret@DB.example.com:5432/shop/public/orders")
        # AssetKey(["postgres", "db_example_com_5432", "shop", "public", "orders"])
        airflow_asset_key("file:///data/in.csv")          # AssetKey(["file", "data", "in_csv"])
        airflow_asset_key("gs://bucket/x?version=2")      # AssetKey(["gs", "bucket", "x", "version_2"])
        airflow_asset_key("s3://bucket")                  # AssetKey(["s3", "bucket"])
        airflow_asset_key("orders")                       # AssetKey(["orders"]): an Airflow 3 asset by name
    """
    parts = urlsplit(uri.strip())
    raw: list[str] = []
    if parts.scheme:
        raw.append(parts.scheme.lower())
    host_and_port = parts.netloc.rpartition("@")[2].lower()  # never user:password into a key
    if host_and_port:
        raw.append(host_and_port)
    raw.extend(unquote(segment) for segment in parts.path.split("/") if segment)
    raw.extend(unquote(extra) for extra in (parts.query, parts.fragment) if extra)
    components = [_component(text) for text in raw]
    if not components:
        return AssetKey(["airflow_asset", _short_hash(uri)])
    return AssetKey(components)


@dataclass(frozen=True)
class AirflowAssetKeys:
    """How Airflow asset URIs become Dagster asset keys: ``keys`` first, then ``key_fn``, then
    :func:`airflow_asset_key`.

    Args:
        keys: URI → key, for assets you name yourself. Values may be ``AssetKey`` objects, strings
            (one component) or sequences of strings.
        key_fn: for whole families of URIs; returns the key, or ``None`` to leave the URI to the
            default rule.

    Example::

        AirflowAssetKeys(
            keys={"s3://warehouse/orders.parquet": AssetKey(["warehouse", "orders"])},
            key_fn=lambda uri: AssetKey(["lake", uri.rsplit("/", 1)[-1]]) if uri.startswith("s3://lake/") else None,
        )
    """

    keys: Mapping[str, KeyLike] = field(default_factory=dict)
    key_fn: AirflowAssetKeyFn | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.keys, Mapping):
            raise TypeError(f"airflow_asset_keys must map URI strings to asset keys, got {type(self.keys).__name__}")
        resolved: dict[str, AssetKey] = {}
        for uri, key in self.keys.items():
            if not isinstance(uri, str) or not uri:
                raise ValueError(f"airflow_asset_keys: {uri!r} is not an Airflow asset URI; use the URI as a string")
            resolved[uri] = _as_key(key, f"airflow_asset_keys[{uri!r}]")
        object.__setattr__(self, "keys", resolved)
        if self.key_fn is not None and not callable(self.key_fn):
            raise TypeError(
                f"airflow_asset_key_fn must be a function from a URI to an AssetKey or None, "
                f"got {type(self.key_fn).__name__}"
            )

    def key_for(self, uri: str) -> AssetKey:
        """The Dagster key of the Airflow asset ``uri``."""
        explicit = self.keys.get(uri)
        if isinstance(explicit, AssetKey):
            return explicit
        if self.key_fn is not None:
            chosen = self.key_fn(uri)
            if chosen is not None:
                return _as_key(chosen, f"airflow_asset_key_fn({uri!r})")
        return airflow_asset_key(uri)


def _component(text: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if folded.isascii():
        return _NOT_KEY_CHARACTER.sub("_", folded)
    kept = _NOT_KEY_CHARACTER.sub("_", "".join(c for c in folded if c.isascii()))
    return f"{kept}_{_short_hash(text)}" if kept else _short_hash(text)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def _as_key(value: object, where: str) -> AssetKey:
    if isinstance(value, AssetKey):
        return value
    if isinstance(value, str) and value:
        return AssetKey([value])
    if isinstance(value, (list, tuple)) and value and all(isinstance(part, str) and part for part in value):
        return AssetKey(list(value))
    raise TypeError(
        f"{where} gave {value!r}, which is not an asset key: use an AssetKey, a string or a list of strings"
    )
