"""A fake Marketo with static lists: the lead fake (``fakes/marketo.py``) plus folders, static
lists, list membership and lead lookup by email.

Schemas are written from Marketo's REST and Asset API references (reference section 17): list
membership bodies ``{input: [{id}]}`` (1..300), the lookup form ``filterType=email`` with at
most 300 ``filterValues``, the static-list create form ``folder`` (JSON ``{id, type: Folder}``)
and ``name``. Unknown list ids answer ``success:false`` with 1013, as Marketo does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import jsonschema

from tests.destinations.fakes.marketo import UPSERT, MarketoFake, error
from tests.destinations.fakes.server import Answer, Route, Seen

FOLDER_ID = 412
MEMBERSHIP = {"type": "object", "required": ["input"], "additionalProperties": False, "properties": {
    "input": {"type": "array", "minItems": 1, "maxItems": 300, "items": {
        "type": "object", "required": ["id"], "additionalProperties": False,
        "properties": {"id": {"type": "integer"}}}}}}
LOOKUP = {"type": "object", "required": ["filterType", "filterValues"], "additionalProperties": False,
          "properties": {"filterType": {"const": "email"}, "fields": {"type": "string"},
                         "filterValues": {"type": "string", "pattern": r"^[^,]+(,[^,]+){0,299}$"}}}
CREATE = {"type": "object", "required": ["folder", "name"], "additionalProperties": False, "properties": {
    "folder": {"type": "string"}, "name": {"type": "string", "minLength": 1}, "description": {"type": "string"}}}


class StaticListsFake(MarketoFake):
    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[int, set[int]] = {}
        self.names: dict[str, int] = {}
        self.made = 0
        lead_routes = [r for r in self.fake.routes if r.pattern != "/rest/v1/leads.json"]
        self.fake.routes[:] = [
            Route("GET", "/rest/asset/v1/folder/byName.json", self._folder),
            Route("POST", "/rest/asset/v1/staticLists.json", self._create, schema=CREATE, form=True),
            Route("GET", "/rest/asset/v1/staticList/byName.json", self._by_name),
            Route("POST", "/rest/v1/leads.json", self._leads),
            Route("POST", r"/rest/v1/lists/(\d+)/leads\.json", self._add, schema=MEMBERSHIP),
            Route("DELETE", r"/rest/v1/lists/(\d+)/leads\.json", self._remove),
            *lead_routes,
        ]

    def emails_in(self, list_id: int) -> set[str]:
        by_id = {v: k for k, v in self.leads.items()}
        return {by_id[i] for i in self.lists.get(list_id, set())}

    def _check(self, seen: Seen, data: object, schema: dict[str, object]) -> bool:
        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError as exc:
            self.fake.violations.append(f"{seen.method} {seen.path}: {exc.message}")
            return False
        return True

    def _folder(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        if seen.query.get("name") != ["Audiences"]:
            return Answer(200, {"requestId": "f#1", "success": True, "warnings": ["No assets found"]})
        return Answer(200, {"requestId": "f#1", "success": True,
                            "result": [{"id": FOLDER_ID, "name": "Audiences", "type": "Folder"}]})

    def _create(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        form = {k: v[0] for k, v in seen.form().items()}
        if json.loads(form["folder"]) != {"id": FOLDER_ID, "type": "Folder"}:
            self.fake.violations.append(f"create: folder {form['folder']!r}")
        if form["name"] in self.names:
            return error("709", "Static List with this name already exists")
        self.made += 1
        list_id = 1000 + self.made
        self.lists[list_id], self.names[form["name"]] = set(), list_id
        return Answer(200, {"requestId": "c#1", "success": True, "result": [{"id": list_id, "name": form["name"]}]})

    def _by_name(self, seen: Seen, _m: re.Match[str]) -> Answer:
        list_id = self.names.get(seen.query.get("name", [""])[0])
        return Answer(200, {"requestId": "n#1", "success": True,
                            "result": [{"id": list_id}] if list_id else []})

    def _leads(self, seen: Seen, m: re.Match[str]) -> Answer:
        if seen.query.get("_method") != ["GET"]:
            if not self._check(seen, seen.json(), UPSERT):
                return Answer(400, {"error": "schema"})
            return self._upsert(seen, m)
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        form = {k: v[0] for k, v in seen.form().items()}
        if not self._check(seen, form, LOOKUP):
            return Answer(400, {"error": "schema"})
        found = [{"id": self.leads[e], "email": e} for e in form["filterValues"].split(",") if e in self.leads]
        return Answer(200, {"requestId": "l#1", "success": True, "result": found})

    def _add(self, seen: Seen, m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        held = self.lists.get(int(m.group(1)))
        if held is None:
            return error("1013", "Object not found")
        known = set(self.leads.values())
        result = []
        for entry in seen.json()["input"]:
            if entry["id"] in known:
                held.add(entry["id"])
                result.append({"id": entry["id"], "status": "added"})
            else:
                result.append({"id": entry["id"], "status": "skipped",
                               "reasons": [{"code": "1004", "message": "Lead not found"}]})
        return Answer(200, {"requestId": "a#1", "success": True, "result": result})

    def _remove(self, seen: Seen, m: re.Match[str]) -> Answer:
        if not self._authorised(seen):
            return error("601", "Access token invalid")
        ids = seen.query.get("id", [])
        if not 1 <= len(ids) <= 300 or not all(i.isdigit() for i in ids):
            self.fake.violations.append(f"DELETE {seen.path}: id must be 1..300 lead ids")
            return Answer(400, {"error": "bad ids"})
        held = self.lists.get(int(m.group(1)))
        if held is None:
            return error("1013", "Object not found")
        held.difference_update(int(i) for i in ids)
        return Answer(200, {"requestId": "r#1", "success": True,
                            "result": [{"id": int(i), "status": "removed"} for i in ids]})


@contextmanager
def static_lists_fake() -> Iterator[StaticListsFake]:
    fake = StaticListsFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
