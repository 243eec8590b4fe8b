"""Events read from your own Parquet or Delta location instead of the store's log.

``traitsync compute --engine duckdb|spark --events-from LOCATION`` computes over files written by
``traitsync log export --format parquet`` (or any files with its columns): a folder, a file, a
glob, or for Spark any URI it understands. A folder holding ``_delta_log/`` is read as a Delta
table. Profiles, traits and identifiers still come from the store.

Identity: the files carry raw identifiers (``userId``, ``anonymousId``), not profile ids. Each
event goes to the profile that the store's identifier map gives its ``userId``, else its
``anonymousId`` (then to the profile it was merged into), so events that retention removed from
the store still count for the people the store knows. An event neither identifier of which the
store knows counts for nobody (traitsync creates profiles only from events it ingests).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitsync.compute.batch.errors import BatchInputError

#: The columns the compiled query and the identity join read, with the Arrow type each must have.
REQUIRED: dict[str, str] = {
    "offset": "int64", "type": "string", "event": "string", "source_id": "string", "userId": "string",
    "anonymousId": "string", "timestamp_ms": "int64", "received_at_ms": "int64", "body": "string"}
_INTEGERS = ("int64", "int32", "int16", "int8", "uint32", "uint16", "uint8")
_STRINGS = ("string", "large_string", "string_view")
_GLOB = set("*?[")


@dataclass(frozen=True)
class EventsLocation:
    """Where the events are: ``files`` (local Parquet), a Delta table, or a URI only Spark reads."""

    uri: str
    format: str  # "parquet" or "delta"
    files: tuple[str, ...] = ()

    @property
    def remote(self) -> bool:
        return _scheme(self.uri) not in ("", "file")


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head.isalnum() else ""


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.lower().startswith("file://") else uri


FORMATS = ("auto", "parquet", "delta")


def locate(uri: str, fmt: str = "auto") -> EventsLocation:
    """Find the files at ``uri`` (local: checked now; a remote URI is checked by Spark when read).

    ``fmt`` auto reads a local folder holding ``_delta_log/`` as Delta, anything else as Parquet;
    a remote Delta table needs ``delta`` said explicitly (nothing is listed before Spark reads it).
    """
    if fmt not in FORMATS:
        raise BatchInputError(f"--events-format {fmt}: choose one of {', '.join(FORMATS)}")
    if uri.rstrip("/").endswith("_delta_log"):
        raise BatchInputError(f"--events-from {uri}: name the Delta table's folder, not its _delta_log")
    if _scheme(uri) not in ("", "file"):
        return EventsLocation(uri, "delta" if fmt == "delta" else "parquet")
    path = Path(_local(uri)).expanduser()
    if fmt == "delta" or (fmt == "auto" and path.is_dir() and (path / "_delta_log").is_dir()):
        if not (path / "_delta_log").is_dir():
            raise BatchInputError(f"--events-from {uri}: not a Delta table (no _delta_log folder)")
        return EventsLocation(str(path), "delta")
    if _GLOB & set(str(path)):
        files = sorted(f for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
    elif path.is_dir():
        files = sorted(str(f) for f in path.rglob("*.parquet") if f.is_file() and not f.name.startswith((".", "_")))
    elif path.is_file():
        files = [str(path)]
    else:
        raise BatchInputError(f"--events-from {uri}: no such file or folder")
    if not files:
        raise BatchInputError(f"--events-from {uri}: no Parquet files there (write them with "
                              "`traitsync log export --format parquet --output FILE`)")
    return EventsLocation(str(path), "parquet", tuple(files))


def check_schema(where: str, fields: dict[str, str]) -> None:
    """``fields``: column name -> Arrow type name. The first missing or mistyped column is named."""
    for name, wanted in REQUIRED.items():
        have = fields.get(name)
        if have is None:
            raise BatchInputError(f"--events-from {where}: column {name!r} is missing (the files need the columns "
                                  f"of `traitsync log export --format parquet`: {', '.join(REQUIRED)})")
        family = _INTEGERS if wanted == "int64" else _STRINGS
        if have not in family:
            raise BatchInputError(f"--events-from {where}: column {name!r} is {have}, not {wanted}")


def validate(location: EventsLocation) -> None:
    """Check every local file's columns from its footer (no data is read)."""
    import pyarrow.parquet as pq

    if location.format == "delta":
        schema = delta_dataset(location).schema
        check_schema(location.uri, {f.name: str(f.type) for f in schema})
        return
    for file in location.files:
        try:
            schema = pq.read_schema(file)
        except Exception as exc:  # not Parquet at all
            raise BatchInputError(f"--events-from {file}: not a Parquet file ({str(exc).splitlines()[0]})") from None
        check_schema(file, {f.name: str(f.type) for f in schema})


def delta_dataset(location: EventsLocation) -> Any:
    """The Delta table's current version as a pyarrow dataset (delta-rs: no JVM, no download)."""
    try:
        from deltalake import DeltaTable
    except ImportError:
        raise BatchInputError(f"--events-from {location.uri} is a Delta table: reading it needs the deltalake "
                              "package (pip install 'traitsync[delta]')") from None
    try:
        return DeltaTable(location.uri).to_pyarrow_dataset()
    except Exception as exc:
        raise BatchInputError(f"--events-from {location.uri}: the Delta table cannot be read "
                              f"({str(exc).splitlines()[0]})") from None


def delta_files(location: EventsLocation) -> list[str]:
    """The Parquet files of the Delta table's current version (for Spark without delta-spark)."""
    from deltalake import DeltaTable

    return list(DeltaTable(location.uri).file_uris())


def events_view(source: str, quote: str) -> str:
    """``events`` as the compiled query reads it: the required columns of ``source``."""
    return "SELECT " + ", ".join(f"{quote}{c}{quote}" for c in REQUIRED) + f" FROM {source}"


def profile_events_view(quote: str) -> str:
    """``profile_events`` for the located events: ``userId``, else ``anonymousId``, through the identifier map.

    An identifier value belongs to one profile per collection (the store's key); a merged profile
    is resolved to the one it was merged into by the compiled query itself.
    """
    q = quote

    def ids(id_type: str) -> str:
        return (f"(SELECT value, profile_id FROM profile_external_ids "
                f"WHERE collection = 'users' AND id_type = '{id_type}')")

    return (f"SELECT e.{q}offset{q} AS {q}offset{q}, COALESCE(u.profile_id, a.profile_id) AS profile_id "
            f"FROM events e LEFT JOIN {ids('user_id')} u ON u.value = e.{q}userId{q} "
            f"LEFT JOIN {ids('anonymous_id')} a ON a.value = e.{q}anonymousId{q}")
