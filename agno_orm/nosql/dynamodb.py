"""`DynamoDbStorage`: one item per session in a DynamoDB table, listed through secondary indexes.

Table layout (agno 1.8.4's keys and index names, plus `mode-index`):

    key          session_id (S, hash)
    GSIs         user_id-index        user_id (S, hash)     created_at (N, range)
                 agent_id-index, team_id-index, workflow_id-index   likewise, by entity
                 mode-index           mode (S, hash)        created_at (N, range)

An item holds the session's fields: ids as S, times as N, and the JSON fields (memory,
session_data, ...) as JSON text in S attributes, so every value the codec accepts round-trips
exactly (native maps would turn floats into Decimals and stop at 32 levels of nesting); agno's
items, which hold native maps, are read too. None fields are left out, which keeps the indexes
sparse; an empty string cannot be an index key in DynamoDB, so such a user or entity id is refused.

Listing queries the index of its filter newest first (`mode-index` when there is none), follows
`LastEvaluatedKey` page by page and stops as soon as the page holds the answer; tables without
an index (agno's have only two) are scanned instead, every page. Items are limited to
`MAX_ITEM_BYTES`: a bigger session is refused with PayloadTooLargeError before anything is
written. An upsert reads the item (consistently) and writes the next one (`_documents.next_document`:
stored runs it does not carry kept, the version one more) on condition that the stored version is
still the one read, retrying if it is not.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from agno_orm._retry import pause
from agno_orm._versions import VERSION_KEY, OnConflict, stored_version
from agno_orm.errors import InvalidInputError, InvalidSessionError, PayloadTooLargeError, StorageError
from agno_orm.nosql import _documents as documents
from agno_orm.nosql._documents import MODE_KEY, RUN_VERSIONS_KEY, Document
from agno_orm.nosql._drivers import require, translated
from agno_orm.sessions import ENTITY_FIELD, SESSION_TYPES, AnySession, Mode, SessionTypes
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES, Storage, check_ids, check_limit, check_session_id

__all__ = ["MAX_ITEM_BYTES", "DynamoDbStorage"]

MAX_ITEM_BYTES = 400_000
"""Largest item written: DynamoDB's limit is 400 KB (409,600 bytes); this stays clear of it."""

BillingMode = Literal["PROVISIONED", "PAY_PER_REQUEST"]

_ENTITY_FIELDS = ("agent_id", "team_id", "workflow_id")
_INDEXED_FIELDS = ("user_id", *_ENTITY_FIELDS, MODE_KEY)
_NUMBER_FIELDS = frozenset({"created_at", "updated_at", VERSION_KEY})
_JSON_FIELDS = frozenset(
    [RUN_VERSIONS_KEY, *(name for cls in SESSION_TYPES.values() for name in cls.json_fields)]
)
# What listing ids reads of each item: enough to filter, order and tell agno's items' mode apart.
_LISTING_FIELDS = ("session_id", "created_at", "user_id", MODE_KEY, *_ENTITY_FIELDS, "workflow_name")
_MAX_ATTEMPTS = 100  # optimistic retries of one upsert against concurrent writers of the same session
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class DynamoDbStorage(Storage):
    """Sessions in a DynamoDB table (agno 1.8.4's `DynamoDbStorage`; extra `dynamodb`).

    Connects with `client` (a boto3 DynamoDB client, used as given), else a boto3 session made of
    profile_name, region_name and the access keys, at `endpoint_url` if given. A missing table is
    created on first use when `create_table_if_not_exists` (billing: agno's provisioned 5/5 by
    default, or `billing_mode="PAY_PER_REQUEST"` for on-demand). Copies share the client.
    """

    def __init__(
        self,
        table_name: str,
        profile_name: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        endpoint_url: str | None = None,
        create_table_if_not_exists: bool = True,
        mode: Mode | None = "agent",
        *,
        billing_mode: BillingMode = "PROVISIONED",
        read_capacity_units: int = 5,
        write_capacity_units: int = 5,
        client: Any = None,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            mode, session_types=session_types, on_conflict=on_conflict, max_payload_bytes=max_payload_bytes
        )
        if not isinstance(table_name, str) or not _TABLE_NAME.match(table_name):
            raise InvalidInputError(
                f"table_name must be 3 to 255 letters, digits, _ . or - (DynamoDB's rule); got {table_name!r}"
            )
        if billing_mode not in ("PROVISIONED", "PAY_PER_REQUEST"):
            raise InvalidInputError(
                f"billing_mode must be PROVISIONED or PAY_PER_REQUEST; got {billing_mode!r}"
            )
        self.table_name = table_name
        self.profile_name = profile_name
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.create_table_if_not_exists = create_table_if_not_exists
        self.billing_mode = billing_mode
        self.read_capacity_units = read_capacity_units
        self.write_capacity_units = write_capacity_units
        if client is None:
            boto3 = require("boto3", package="boto3", extra="dynamodb")
            with self._translated("connecting"):
                session = boto3.session.Session(
                    profile_name=profile_name,
                    region_name=region_name,
                    aws_access_key_id=aws_access_key_id,
                    aws_secret_access_key=aws_secret_access_key,
                )
                client = session.client("dynamodb", endpoint_url=endpoint_url)
        self.dynamodb_client = client
        self._indexes: frozenset[str] | None = None  # the table's GSIs, once it is known to exist
        self._ready_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> DynamoDbStorage:
        clone = copy.copy(self)
        clone._ready_lock = threading.Lock()
        return clone

    # -- Storage ---------------------------------------------------------------------------------

    def create(self) -> None:
        self._ensure_table(create=True)

    def upgrade_schema(self) -> None:
        """Create the table if it is missing; an existing table is used as it is (see listing)."""
        self._ensure_table(create=True)

    def table_exists(self) -> bool:
        with self._translated("describing the table"):
            try:
                self.dynamodb_client.describe_table(TableName=self.table_name)
            except self.dynamodb_client.exceptions.ResourceNotFoundException:
                return False
        return True

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_ids(user_id=user_id)
        check_limit(runs_limit)
        with self._translated("reading a session"):
            self._ensure_table()
            found = self.dynamodb_client.get_item(
                TableName=self.table_name, Key={"session_id": {"S": session_id}}, ConsistentRead=True
            )
        document = _document(found["Item"]) if "Item" in found else None
        if document is None or not documents.is_readable(document, session_id, self.mode, user_id):
            self._saw_absent(session_id)
            return None
        return documents.to_session(self, document, self._where, runs_limit=runs_limit)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        with self._translated("listing session ids"):
            found = self._listed(user_id, entity_id, None, fields=_LISTING_FIELDS)
        return [d["session_id"] for d in found]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        with self._translated("listing sessions"):
            found = self._listed(user_id, entity_id, limit, fields=None)
        return [documents.to_session(self, d, self._where) for d in found]

    def upsert(self, session: Any) -> AnySession:
        record, expected = self._prepared(session)
        session_id: str = record["session_id"]
        for field in ("user_id", ENTITY_FIELD[self.mode]):
            if record.get(field) == "":
                raise InvalidSessionError(f"{self._where}: DynamoDB cannot index an empty {field}")
        key = {"session_id": {"S": session_id}}
        with self._translated("upserting a session"):
            self._ensure_table()
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                found = self.dynamodb_client.get_item(
                    TableName=self.table_name, Key=key, ConsistentRead=True
                ).get("Item")
                existing = None if found is None else _document(found)
                documents.check_replaceable(existing, record, self.mode, self._where)
                self._check_version(session_id, expected, stored_version(existing))
                document, kept_since = documents.next_document(
                    record, existing, self.mode, int(time.time()), where=self._where, view=expected
                )
                item = _item(document)
                size = _item_size(item)
                if size > MAX_ITEM_BYTES:
                    raise PayloadTooLargeError(
                        f"{self._where}: session {session_id!r} takes {size} bytes as a DynamoDB item, "
                        f"over the {MAX_ITEM_BYTES} bytes allowed; nothing was written"
                    )
                try:
                    self.dynamodb_client.put_item(
                        TableName=self.table_name, Item=item, **_unchanged_since(found)
                    )
                except self.dynamodb_client.exceptions.ConditionalCheckFailedException:
                    pause(attempt)  # changed since it was read: read it again
                    continue
                return self._upserted(session, document, expected, kept_since=kept_since)
        raise StorageError(f"{self._where}: session {session_id!r} kept changing; gave up after retries")

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        check_ids(user_id=user_id)
        key = {"session_id": {"S": session_id}}
        with self._translated("deleting a session"):
            self._ensure_table()
            found = self.dynamodb_client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
            if "Item" not in found:
                return
            document = _document(found["Item"])
            if not documents.is_readable(document, session_id, self.mode, None):
                return
            if user_id is not None and document.get("user_id") != user_id:
                return
            condition = _unchanged_since(found["Item"])
            if user_id is not None:  # and still this user's
                condition["ConditionExpression"] += " AND #user = :user"
                condition["ExpressionAttributeNames"]["#user"] = "user_id"
                condition["ExpressionAttributeValues"] = {
                    **condition.get("ExpressionAttributeValues", {}),
                    ":user": {"S": user_id},
                }
            try:
                self.dynamodb_client.delete_item(TableName=self.table_name, Key=key, **condition)
            except self.dynamodb_client.exceptions.ConditionalCheckFailedException:
                return  # replaced meanwhile: the delete applied to the version that is gone
        self._saw_absent(session_id)

    def drop(self) -> None:
        """Delete the current mode's sessions; the table goes too once it is empty."""
        with self._translated("dropping the sessions"):
            if not self.table_exists():
                return
            client = self.dynamodb_client
            for item in self._pages("scan", _projection(_LISTING_FIELDS)):
                if documents.document_mode(_document(item)) == self.mode:
                    client.delete_item(TableName=self.table_name, Key={"session_id": item["session_id"]})
            if not client.scan(TableName=self.table_name, Limit=1).get("Items"):
                client.delete_table(TableName=self.table_name)
                client.get_waiter("table_not_exists").wait(
                    TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
                )
        with self._ready_lock:
            self._indexes = None

    # -- internals -------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"DynamoDbStorage({self.table_name!r})"

    def _listed(
        self, user_id: str | None, entity_id: str | None, limit: int | None, fields: tuple[str, ...] | None
    ) -> list[Document]:
        """The matching documents in listing order, reading only as many pages as the answer needs."""
        check_ids(user_id=user_id, entity_id=entity_id)
        if limit == 0 or "" in (user_id, entity_id):  # an empty string is never stored as an index key
            return []
        indexes = self._ensure_table()
        entity_field = ENTITY_FIELD[self.mode]
        if user_id is not None and "user_id-index" in indexes:
            items = self._query("user_id-index", "user_id", user_id, fields)
        elif entity_id is not None and f"{entity_field}-index" in indexes:
            items = self._query(f"{entity_field}-index", entity_field, entity_id, fields)
        elif user_id is None and entity_id is None and "mode-index" in indexes:
            items = self._query("mode-index", MODE_KEY, self.mode, fields)
        else:  # no index serves this filter: read the whole table, then order
            scanned = (_document(i) for i in self._pages("scan", _projection(fields)))
            return documents.newest_first(
                (d for d in scanned if documents.in_listing(d, self.mode, user_id, entity_id)), limit
            )
        matching = (
            d for d in map(_document, items) if documents.in_listing(d, self.mode, user_id, entity_id)
        )
        return documents.newest(matching, limit)

    def _query(self, index: str, field: str, value: str, fields: tuple[str, ...] | None) -> Iterator[Any]:
        projection = _projection(fields)
        return self._pages(
            "query",
            {
                **projection,
                "IndexName": index,
                "KeyConditionExpression": "#key = :key",
                "ExpressionAttributeNames": {**projection.get("ExpressionAttributeNames", {}), "#key": field},
                "ExpressionAttributeValues": {":key": {"S": value}},
                "ScanIndexForward": False,  # newest created_at first
            },
        )

    def _pages(self, operation: str, arguments: Mapping[str, Any]) -> Iterator[Any]:
        """The items of a query or scan, page after page, following LastEvaluatedKey (pages stop at 1 MB)."""
        call = getattr(self.dynamodb_client, operation)
        start: dict[str, Any] = {}
        while True:
            page = call(TableName=self.table_name, **arguments, **start)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _ensure_table(self, *, create: bool = False) -> frozenset[str]:
        """The table's GSI names, creating the table first if it is missing and that is allowed."""
        indexes = self._indexes
        if indexes is not None:
            return indexes
        with self._ready_lock, self._translated("checking the table"):
            if self._indexes is not None:
                return self._indexes
            client = self.dynamodb_client
            try:
                table = client.describe_table(TableName=self.table_name)["Table"]
            except client.exceptions.ResourceNotFoundException:
                if not (create or self.create_table_if_not_exists):
                    raise StorageError(
                        f"{self._where}: the table does not exist; call create() or pass "
                        "create_table_if_not_exists=True"
                    ) from None
                table = self._create_table()
            self._indexes = frozenset(i["IndexName"] for i in table.get("GlobalSecondaryIndexes", []))
            return self._indexes

    def _create_table(self) -> Any:
        client = self.dynamodb_client
        throughput = {
            "ReadCapacityUnits": self.read_capacity_units,
            "WriteCapacityUnits": self.write_capacity_units,
        }
        provisioned = {"ProvisionedThroughput": throughput} if self.billing_mode == "PROVISIONED" else {}
        indexes = [
            {
                "IndexName": f"{field}-index",
                "KeySchema": [
                    {"AttributeName": field, "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
                **provisioned,
            }
            for field in _INDEXED_FIELDS
        ]
        # ResourceInUse: created meanwhile by another storage or process
        with contextlib.suppress(client.exceptions.ResourceInUseException):
            client.create_table(
                TableName=self.table_name,
                KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": "S"} for name in ("session_id", *_INDEXED_FIELDS)
                ]
                + [{"AttributeName": "created_at", "AttributeType": "N"}],
                GlobalSecondaryIndexes=indexes,
                BillingMode=self.billing_mode,
                **provisioned,
            )
        client.get_waiter("table_exists").wait(
            TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        return client.describe_table(TableName=self.table_name)["Table"]

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where boto3's exceptions become ours."""
        exceptions = require("botocore.exceptions", package="boto3", extra="dynamodb")
        with translated(
            f"{action} in {self._where}",
            connection_errors=(exceptions.ConnectionError, exceptions.HTTPClientError),
            errors=(exceptions.BotoCoreError, exceptions.ClientError),
        ):
            yield


def _item(document: Mapping[str, Any]) -> dict[str, Any]:
    """The DynamoDB item of a document: None fields left out, JSON fields as JSON text."""
    item: dict[str, Any] = {}
    for name, value in document.items():
        if value is None:
            continue
        if name in _JSON_FIELDS:
            item[name] = {"S": json.dumps(value, ensure_ascii=False, separators=(",", ":"))}
        elif name in _NUMBER_FIELDS:
            item[name] = {"N": str(value)}
        else:
            item[name] = {"S": str(value)}
    return item


def _document(item: Mapping[str, Any]) -> Document:
    """The document of an item: ours (JSON text) or agno's (native maps, numbers as Decimal)."""
    document: Document = {}
    for name, attribute in item.items():
        value = _plain(attribute)
        if name in _JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise StorageError(f"{name} of a stored item is not JSON: {exc}") from exc
        document[name] = value
    return document


def _plain(attribute: Mapping[str, Any]) -> Any:
    """The Python value of a DynamoDB attribute value."""
    ((kind, value),) = attribute.items()
    if kind == "S" or kind == "BOOL":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind in ("SS", "NS"):
        return sorted(_plain({kind[0]: v}) for v in value)
    raise StorageError(f"a stored item holds a {kind} attribute, which no session field has")


def _item_size(item: Mapping[str, Any]) -> int:
    """An upper bound of the item's size as DynamoDB counts it (names and values, in bytes)."""
    size = 0
    for name, attribute in item.items():
        ((kind, value),) = attribute.items()
        size += len(name.encode()) + (len(value) if kind == "N" else len(value.encode()))
    return size


def _projection(fields: tuple[str, ...] | None) -> dict[str, Any]:
    """The arguments that make a query or scan read only `fields` (every field for None)."""
    if fields is None:
        return {}
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def _unchanged_since(found: Mapping[str, Any] | None) -> dict[str, Any]:
    """The condition that the item is still as `found`: absent, or at the same version (agno's items,
    and older ones of ours, have none: then still without one)."""
    if found is None:
        return {"ConditionExpression": "attribute_not_exists(session_id)"}
    names = {"#version": VERSION_KEY}
    if VERSION_KEY not in found:
        return {
            "ConditionExpression": "attribute_exists(session_id) AND attribute_not_exists(#version)",
            "ExpressionAttributeNames": names,
        }
    return {
        "ConditionExpression": "#version = :version",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":version": found[VERSION_KEY]},
    }
