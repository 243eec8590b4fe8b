"""A fake Responsys with one profile extension table per audience (``fakes/responsys.py`` plus
PET creation and merges into any PET).

PET creation is validated against a schema written from Oracle's "Create a new profile extension
table" REST page (``{profileExtension: {objectName, folderName}, fields: [{fieldName,
fieldType}]}``); a PET row merges only onto a record the profile list holds (matched on the
``matchColumnName1`` column), as in Responsys, else that row answers ``MERGEFAILED``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.destinations.fakes.responsys import LIST, PET_MERGE, ResponsysFake, rsys_error
from tests.destinations.fakes.server import Answer, Route, Seen

CREATE_PET = {"type": "object", "required": ["profileExtension", "fields"], "additionalProperties": False,
              "properties": {
                  "profileExtension": {"type": "object", "required": ["objectName", "folderName"],
                                       "additionalProperties": False,
                                       "properties": {
                                           "objectName": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,50}$"},
                                           "folderName": {"type": "string", "minLength": 1}}},
                  "fields": {"type": "array", "minItems": 1, "items": {
                      "type": "object", "required": ["fieldName", "fieldType"], "additionalProperties": False,
                      "properties": {"fieldName": {"type": "string", "pattern": "^[A-Z0-9_]{1,30}$"},
                                     "fieldType": {"enum": ["STR500", "STR4000", "INTEGER", "NUMBER", "TIMESTAMP"]}}}}}}


class ResponsysListsFake(ResponsysFake):
    def __init__(self) -> None:
        super().__init__()
        self.pets: dict[str, dict[str, dict[str, str]]] = {}
        self.pet_columns: dict[str, set[str]] = {}
        lists = rf"/rest/api/v1\.3/lists/{LIST}"
        self.fake.routes[:0] = [
            Route("POST", rf"{lists}/listExtensions", self._create_pet, schema=CREATE_PET),
            Route("POST", rf"{lists}/listExtensions/(\w+)/members", self._merge_into, schema=PET_MERGE),
        ]

    def members_of(self, pet: str) -> set[str]:
        column = next(iter(self.pet_columns[pet]))
        return {key for key, row in self.pets[pet].items() if row.get(column) == "true"}

    def _create_pet(self, seen: Seen, _m: re.Match[str]) -> Answer:
        if (refused := self._refused(seen)) is not None:
            return refused
        body = seen.json()
        name = body["profileExtension"]["objectName"]
        if name in self.pets:
            return rsys_error(400, "PROFILE_EXTENSION_ALREADY_EXISTS", f"{name} already exists")
        self.pets[name] = {}
        self.pet_columns[name] = {f["fieldName"] for f in body["fields"]}
        return Answer(200, {"profileExtension": body["profileExtension"], "fields": body["fields"]})

    def _merge_into(self, seen: Seen, m: re.Match[str]) -> Answer:
        if (refused := self._refused(seen)) is not None:
            return refused
        pet = self.pets.get(m.group(1))
        if pet is None:
            return rsys_error(404, "PROFILE_EXTENSION_NOT_FOUND", "Profile Extension Table not found")
        body: dict[str, Any] = seen.json()
        names = body["recordData"]["fieldNames"]
        unknown = sorted(set(names) - self.pet_columns[m.group(1)] - {"EMAIL_ADDRESS_", "CUSTOMER_ID_"})
        if unknown:
            return rsys_error(400, "INVALID_FIELD_NAME", f"Invalid field name: {unknown[0]}")
        match = f"{body['matchColumnName1']}_"
        known = {row.get(match) for row in self.members.values()}
        records = []
        for n, record in enumerate(body["recordData"]["records"], 1):
            row = dict(zip(names, record, strict=True))
            key = row.get(match, "")
            if key not in known or (key not in pet and not body["insertOnNoMatch"]):
                records.append([f"MERGEFAILED: Record {n} = RECORD_NOT_FOUND"])
                continue
            pet.setdefault(key, {}).update(row)
            records.append([str(5000 + n)])
        return Answer(200, {"recordData": {"fieldNames": ["RIID_"], "records": records, "mapTemplateName": None}})


@contextmanager
def responsys_lists_fake() -> Iterator[ResponsysListsFake]:
    fake = ResponsysListsFake()
    fake.fake.start()
    try:
        yield fake
    finally:
        fake.fake.stop()
