"""Every Profile API route, parameter and error through real HTTP (segment-spec 6 and 2.8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.identity.conftest import Harness, sqlite_db
from tests.profiles.conftest import SECRET, SPACE, Server

ID = "user_id:u1"


def populated(tmp_path: Path) -> Harness:
    h = Harness(sqlite_db(tmp_path))
    h.send({"type": "track", "anonymousId": "a1", "event": "Viewed", "timestamp": "2024-01-01T00:00:00.000Z",
            "properties": {"page": 1}})
    h.send({"type": "identify", "userId": "u1", "anonymousId": "a1",
            "traits": {"email": "jane+x@example.com", "name": "Jane", "plan": "pro", "age": 30},
            "timestamp": "2024-01-02T00:00:00.000Z"})
    h.send({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 5},
            "timestamp": "2024-01-03T00:00:00.000Z"}, source="src_app")
    h.send({"type": "track", "anonymousId": "a2", "event": "Viewed", "timestamp": "2024-01-04T00:00:00.000Z"})
    h.send({"type": "track", "userId": "u1", "anonymousId": "a2", "event": "Signed In",
            "timestamp": "2024-01-05T00:00:00.000Z"})
    h.send({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"},
            "timestamp": "2024-01-06T00:00:00.000Z"})
    h.send({"type": "identify", "userId": "u2", "traits": {"name": "Bob"}, "timestamp": "2024-01-06T00:00:00.000Z"})
    h.send({"type": "group", "userId": "u2", "groupId": "g1", "timestamp": "2024-01-07T00:00:00.000Z"})
    h.run()
    return h


def error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Request-Id"]
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body


def test_traits_route(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    r = s.get(f"users/profiles/{ID}/traits")
    assert r.status_code == 200 and r.headers["Request-Id"]
    assert r.json() == {"traits": {"age": 30, "email": "jane+x@example.com", "name": "Jane", "plan": "pro"},
                        "cursor": {"url": f"/v1/spaces/{SPACE}/collections/users/profiles/{ID}/traits",
                                   "has_more": False, "next": "", "limit": 10}}
    r = s.get(f"users/profiles/{ID}/traits", params={"include": "name,plan", "verbose": "true"})
    assert r.json()["traits"] == {
        "name": {"value": "Jane", "source_id": "src_web", "updated_at": "2024-01-02T00:00:00.000Z"},
        "plan": {"value": "pro", "source_id": "src_web", "updated_at": "2024-01-02T00:00:00.000Z"}}
    r = s.get(f"users/profiles/{ID}/traits", params={"limit": 2})
    assert r.json() == {"traits": {"age": 30, "email": "jane+x@example.com"},
                        "cursor": {"url": f"/v1/spaces/{SPACE}/collections/users/profiles/{ID}/traits",
                                   "has_more": True, "next": "email", "limit": 2}}
    r = s.get(f"users/profiles/{ID}/traits", params={"limit": 2, "next": "email"})
    assert r.json()["traits"] == {"name": "Jane", "plan": "pro"}
    assert r.json()["cursor"]["has_more"] is False
    assert s.get(f"users/profiles/{ID}/traits", params={"class": "audience"}).json()["traits"] == {}
    # values and encodings: '+' as %2B, '@' plain, other identifier types, accounts
    r = s.get("users/profiles/email:jane%2Bx@example.com/traits", params={"include": "name"})
    assert r.json()["traits"] == {"name": "Jane"}
    assert s.get("users/profiles/anonymous_id:a2/traits", params={"include": "name"}).json()["traits"] == \
        {"name": "Jane"}
    assert s.get("accounts/profiles/group_id:g1/traits").json()["traits"] == {"name": "Acme"}
    assert s.get(f"users/profiles/{ID}/traits", params={"limit": 200}).status_code == 200


def test_traits_with_computed_values_hook(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)

    def computed(collection: str, profile_id: str, klass: str | None) -> dict[str, tuple[Any, int | None]]:
        assert collection == "users" and profile_id == h.profile_of("user_id", "u1")
        out: dict[str, tuple[Any, int | None]] = {}
        if klass in (None, "audience"):
            out["vip_users"] = (True, 1704067200000)
        if klass in (None, "computed_trait"):
            out["order_count"] = (1, 1704067200000)
        return out

    s: Server = serve(h.db, computed)
    assert s.get(f"users/profiles/{ID}/traits", params={"class": "audience"}).json()["traits"] == \
        {"vip_users": True}
    assert s.get(f"users/profiles/{ID}/traits", params={"class": "computed_trait", "verbose": "1"}).json()[
        "traits"] == {"order_count": {"value": 1, "source_id": None, "updated_at": "2024-01-01T00:00:00.000Z"}}
    assert s.get(f"users/profiles/{ID}/traits", params={"include": "vip_users,name"}).json()["traits"] == \
        {"name": "Jane", "vip_users": True}


def test_external_ids_route(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    r = s.get(f"users/profiles/{ID}/external_ids")
    data = r.json()["data"]
    assert [(d["type"], d["id"]) for d in data] == [("anonymous_id", "a1"), ("email", "jane+x@example.com"),
                                                    ("user_id", "u1"), ("anonymous_id", "a2")]
    assert data[0] == {"source_id": "src_web", "collection": "users", "id": "a1", "type": "anonymous_id",
                       "created_at": "2024-01-01T00:00:00.000Z", "encoding": "none", "first_message_id": "m00001"}
    assert r.json()["cursor"]["has_more"] is False
    r = s.get(f"users/profiles/{ID}/external_ids", params={"limit": 3})
    assert len(r.json()["data"]) == 3 and r.json()["cursor"]["has_more"] is True
    nxt = r.json()["cursor"]["next"]
    assert nxt.startswith("map_")
    r = s.get(f"users/profiles/{ID}/external_ids", params={"limit": 3, "next": nxt})
    assert [(d["type"], d["id"]) for d in r.json()["data"]] == [("anonymous_id", "a2")]
    r = s.get(f"users/profiles/{ID}/external_ids", params={"include": "anonymous_id", "verbose": "true"})
    assert [d["id"] for d in r.json()["data"]] == ["a1", "a2"]
    r = s.get("accounts/profiles/group_id:g1/external_ids")
    assert [(d["collection"], d["type"], d["id"]) for d in r.json()["data"]] == [("accounts", "group_id", "g1")]


def test_events_route(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    pid = h.profile_of("user_id", "u1")
    r = s.get(f"users/profiles/{ID}/events")
    data = r.json()["data"]
    assert [d["message_id"] for d in data] == ["m00006", "m00005", "m00004", "m00003", "m00002", "m00001"]
    first = data[-1]
    assert first == {"external_ids": [{"collection": "users", "type": "anonymous_id", "id": "a1",
                                       "encoding": "none"}],
                     "context": {}, "type": "track", "message_id": "m00001", "source_id": "src_web",
                     "timestamp": "2024-01-01T00:00:00.000Z", "properties": {"page": 1}, "event": "Viewed",
                     "related": {"users": pid}}
    r = s.get(f"users/profiles/{ID}/events", params={"sort": "asc", "limit": 2})
    body = r.json()
    assert [d["message_id"] for d in body["data"]] == ["m00001", "m00002"]
    assert body["cursor"]["has_more"] is True and body["cursor"]["limit"] == 2
    r = s.get(f"users/profiles/{ID}/events", params={"sort": "asc", "limit": 2, "next": body["cursor"]["next"]})
    assert [d["message_id"] for d in r.json()["data"]] == ["m00003", "m00004"]
    r = s.get(f"users/profiles/{ID}/events", params={"start": "2024-01-02T00:00:00Z",
                                                     "end": "2024-01-04T00:00:00Z"})
    assert [d["message_id"] for d in r.json()["data"]] == ["m00004", "m00003", "m00002"]
    r = s.get(f"users/profiles/{ID}/events", params={"include": "Viewed,Signed In"})
    assert [d["message_id"] for d in r.json()["data"]] == ["m00005", "m00004", "m00001"]
    r = s.get(f"users/profiles/{ID}/events", params={"exclude": "Viewed"})
    assert [d["message_id"] for d in r.json()["data"]] == ["m00006", "m00005", "m00003", "m00002"]
    r = s.get("accounts/profiles/group_id:g1/events")
    assert [d["message_id"] for d in r.json()["data"]] == ["m00008", "m00006"]


def test_links_route(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    r = s.get(f"users/profiles/{ID}/links")
    assert r.json()["data"] == [{"to_collection": "accounts", "external_ids": [
        {"source_id": "src_web", "collection": "accounts", "id": "g1", "type": "group_id",
         "created_at": "2024-01-06T00:00:00.000Z", "encoding": "none"}]}]
    r = s.get("accounts/profiles/group_id:g1/links")
    users = r.json()["data"]
    assert [sorted(e["id"] for e in u["external_ids"]) for u in users] == [
        ["a1", "a2", "jane+x@example.com", "u1"], ["u2"]]
    assert all(u["to_collection"] == "users" for u in users)
    r = s.get("accounts/profiles/group_id:g1/links", params={"limit": 1})
    assert len(r.json()["data"]) == 1 and r.json()["cursor"]["has_more"] is True


def test_metadata_route(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    r = s.get(f"users/profiles/{ID}/metadata", params={"verbose": "true"})
    assert r.json() == {"metadata": {"created_at": "2024-01-01T00:00:00.000Z",
                                     "updated_at": "2024-01-06T00:00:00.000Z", "expires_at": None,
                                     "first_message_id": "m00001", "first_source_id": "src_web",
                                     "last_message_id": "m00006", "last_source_id": "src_web"}}


def test_errors(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    url = f"/v1/spaces/{SPACE}/collections/users/profiles/{ID}/traits"
    error(httpx.get(f"http://127.0.0.1:{s.port}{url}"), 401, "authentication_error")
    error(httpx.get(f"http://127.0.0.1:{s.port}{url}", auth=("wrong", "")), 401, "authentication_error")
    error(httpx.get(f"http://127.0.0.1:{s.port}{url}", headers={"Authorization": "Basic !!"}), 401,
          "authentication_error")
    body = error(s.get("users/profiles/user_id:nobody/traits"), 404, "not_found")
    assert body == {"error": {"code": "not_found", "message": "Profile was not found."}}
    error(s.get("users/profiles/User_Id:u1/traits"), 404, "not_found")
    error(s.get(f"people/profiles/{ID}/traits"), 400, "validation_error")
    error(s.get("users/profiles/u1/traits"), 400, "invalid_request_error")
    for route, params in [("traits", {"limit": 0}), ("traits", {"limit": 201}), ("traits", {"limit": "x"}),
                          ("traits", {"class": "other"}), ("traits", {"verbose": "maybe"}),
                          ("external_ids", {"limit": 101}), ("external_ids", {"next": "zzz"}),
                          ("events", {"limit": 101}), ("events", {"sort": "up"}), ("events", {"start": "soon"}),
                          ("events", {"next": "evt_!!"}), ("links", {"limit": 0})]:
        error(s.get(f"users/profiles/{ID}/{route}", params=params), 400, "invalid_request_error")
    r = httpx.get(f"http://127.0.0.1:{s.port}/v1/spaces/spa_other/collections/users/profiles/{ID}/traits",
                  auth=(SECRET, ""))
    error(r, 404, "not_found")


def test_rate_limit(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db, rate=5)
    statuses = [s.get(f"users/profiles/{ID}/metadata").status_code for _ in range(12)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses
    r = next(r for r in (s.get(f"users/profiles/{ID}/metadata") for _ in range(5)) if r.status_code == 429)
    error(r, 429, "rate_limit_error")
    assert int(r.headers["Retry-After"]) >= 1


def delete(s: Server, lookup: str, body: Any, collection: str = "users") -> httpx.Response:
    return s.client.post(f"/v1/spaces/{SPACE}/collections/{collection}/profiles/{lookup}/external_ids/delete",
                         json=body)


def test_delete_external_id(tmp_path: Path, serve: Any) -> None:
    h = populated(tmp_path)
    s: Server = serve(h.db)
    pid = h.profile_of("user_id", "u1")
    one = {"delete_external_ids": [{"id": "a2", "type": "anonymous_id"}]}
    error(delete(s, "email:jane%2Bx@example.com", one), 400, "bad_request")
    error(delete(s, ID, one, collection="accounts"), 400, "bad_request")
    error(delete(s, ID, {"delete_external_ids": []}), 400, "bad_request")
    error(delete(s, ID, {"delete_external_ids": [one["delete_external_ids"][0]] * 2}), 400, "bad_request")
    error(delete(s, ID, {"nothing": 1}), 400, "bad_request")
    error(delete(s, ID, {"delete_external_ids": [{"id": "u1", "type": "user_id"}]}), 400, "bad_request")
    error(delete(s, ID, {"delete_external_ids": [{"id": "g1", "type": "group_id"}]}), 400, "unsupported_eid_type")
    error(delete(s, "user_id:nobody", one), 404, "not_found")
    error(delete(s, ID, {"delete_external_ids": [{"id": "zz", "type": "anonymous_id"}]}), 404, "eid_not_found")
    error(delete(s, "user_id:u2", one), 404, "eid_not_found")
    r = delete(s, ID, one)
    assert r.status_code == 200 and r.json() == {"status": "success"} and r.headers["Request-Id"]
    assert h.profile_of("anonymous_id", "a2") is None
    assert [d["id"] for d in s.get(f"users/profiles/{ID}/external_ids").json()["data"]] == \
        ["a1", "jane+x@example.com", "u1"]
    assert h.q("SELECT kind, profile_id, id_type, value FROM profile_changes WHERE kind = 'identifier_removed'") \
        == [("identifier_removed", pid, "anonymous_id", "a2")]
    assert h.q("SELECT action, id_type, value FROM identity_audit WHERE action = 'identifier_deleted'") == \
        [("identifier_deleted", "anonymous_id", "a2")]
    # the worker notices (graph generation) and a new event with a2 creates a new profile
    h.send({"type": "track", "anonymousId": "a2", "event": "Back"})
    h.run()
    fresh = h.profile_of("anonymous_id", "a2")
    assert fresh is not None and fresh != pid
    error(s.get("users/profiles/user_id:u1/traits", auth=("nope", "")), 401, "authentication_error")
