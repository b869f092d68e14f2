"""`MongoDbStorage`: one document per session in a collection (database `agno` by default).

Documents are the session's fields plus `mode` (see `_documents`). On first use in a mode the
storage itself ensures its indexes (agno's are made only by an explicit `create()`):

    session_id_1                                  unique: one document per session id
    created_at_-1_session_id_-1                   listing without filters, newest first
    user_id_1_created_at_-1_session_id_-1         listing by user
    <entity>_id_1_created_at_-1_session_id_-1     listing by agent, team or workflow id

An upsert reads the stored document and writes the next one (`_documents.next_document`: the
stored runs it does not carry kept, the version one more) on condition that it is unchanged: an
`insert_one` that the unique index refuses if another writer inserted first, or a `replace_one`
filtered by the version read. A write that finds the document changed reads it again and retries.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from agno_orm._retry import pause
from agno_orm._versions import VERSION_KEY, OnConflict, stored_version
from agno_orm.errors import InvalidInputError, InvalidSessionError, PayloadTooLargeError, StorageError
from agno_orm.nosql import _documents as documents
from agno_orm.nosql._documents import MODE_KEY, Document
from agno_orm.nosql._drivers import require, translated
from agno_orm.sessions import ENTITY_FIELD, AnySession, Mode, SessionTypes
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES, Storage, check_ids, check_limit, check_session_id

__all__ = ["MongoDbStorage"]

_NEWEST_FIRST = [("created_at", -1), ("session_id", -1)]
_MAX_ATTEMPTS = 100  # optimistic retries of one upsert against concurrent writers of the same session
_RESERVED_IN_DATABASE_NAMES = frozenset('/\\. "$*<>:|?\0')


class MongoDbStorage(Storage):
    """Sessions in a MongoDB collection (agno 1.8.4's `MongoDbStorage`; extra `mongodb`).

    Connects with `client` (a `pymongo.MongoClient` or a compatible one, used as given), else
    `db_url` (None: MongoDB's default, localhost:27017). Copies share the client.
    """

    def __init__(
        self,
        collection_name: str,
        db_url: str | None = None,
        db_name: str = "agno",
        client: Any = None,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            mode, session_types=session_types, on_conflict=on_conflict, max_payload_bytes=max_payload_bytes
        )
        check_names(db_name, collection_name)
        pymongo = self._pymongo  # fails here, not at first use, when pymongo is missing
        if client is None:
            client = pymongo.MongoClient(db_url)
        self.collection_name = collection_name
        self.db_url = db_url
        self.db_name = db_name
        self._client = client
        self.db = client[db_name]
        self.collection = self.db[collection_name]
        self._indexed: set[Mode] = set()
        self._indexed_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> MongoDbStorage:
        clone = copy.copy(self)
        clone._indexed = set(self._indexed)
        clone._indexed_lock = threading.Lock()
        return clone

    # -- Storage ---------------------------------------------------------------------------------

    def create(self) -> None:
        self._ensure_indexes()

    def upgrade_schema(self) -> None:
        self._ensure_indexes()

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_ids(user_id=user_id)
        check_limit(runs_limit)
        query: dict[str, Any] = {"session_id": session_id, **self._mode_filter()}
        if user_id is not None:  # "" too: a user filter is never dropped
            query["user_id"] = user_id
        with self._translated("reading a session"):
            self._ensure_indexes()
            document = self.collection.find_one(query, {"_id": 0})
        if document is None:
            self._saw_absent(session_id)
            return None
        return documents.to_session(self, document, self._where, runs_limit=runs_limit)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        with self._translated("listing session ids"):
            self._ensure_indexes()
            cursor = self.collection.find(self._filter(user_id, entity_id), {"_id": 0, "session_id": 1})
            return [d["session_id"] for d in cursor.sort(_NEWEST_FIRST)]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        if limit == 0:  # pymongo reads limit(0) as "no limit"
            return []
        with self._translated("listing sessions"):
            self._ensure_indexes()
            cursor = self.collection.find(self._filter(user_id, entity_id), {"_id": 0}).sort(_NEWEST_FIRST)
            found: list[Document] = list(cursor if limit is None else cursor.limit(limit))
        return [documents.to_session(self, d, self._where) for d in found]

    def upsert(self, session: Any) -> AnySession:
        record, expected = self._prepared(session)
        session_id: str = record["session_id"]
        errors = self._pymongo.errors
        with self._translated("upserting a session"):
            self._ensure_indexes()
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                existing = self.collection.find_one({"session_id": session_id}, {"_id": 0})
                documents.check_replaceable(existing, record, self.mode, self._where)
                self._check_version(session_id, expected, stored_version(existing))
                document, kept_since = documents.next_document(
                    record, existing, self.mode, int(time.time()), where=self._where, view=expected
                )
                try:
                    if self._write_if_unchanged(existing, document):
                        return self._upserted(session, document, expected, kept_since=kept_since)
                except errors.DuplicateKeyError:
                    pass  # another writer inserted it first
                except errors.DocumentTooLarge as exc:
                    raise PayloadTooLargeError(
                        f"{self._where}: session {session_id!r} exceeds MongoDB's document size limit; "
                        "nothing was written"
                    ) from exc
                pause(attempt)  # changed since it was read: read it again
        raise StorageError(f"{self._where}: session {session_id!r} kept changing; gave up after retries")

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        check_ids(user_id=user_id)
        query: dict[str, Any] = {"session_id": session_id, **self._mode_filter()}
        if user_id is not None:
            query["user_id"] = user_id
        with self._translated("deleting a session"):
            if self.collection.delete_one(query).deleted_count:
                self._saw_absent(session_id)

    def drop(self) -> None:
        """Delete the current mode's sessions; the collection goes too once it is empty."""
        with self._translated("dropping the sessions"):
            self.collection.delete_many(self._mode_filter())
            if self.collection.find_one({}, {"_id": 1}) is None:
                self.collection.drop()
        with self._indexed_lock:
            self._indexed.clear()

    # -- internals -------------------------------------------------------------------------------

    @property
    def _pymongo(self) -> ModuleType:
        return require("pymongo", package="pymongo", extra="mongodb")

    @property
    def _where(self) -> str:
        return f"MongoDbStorage({self.db_name}.{self.collection_name})"

    def _mode_filter(self) -> dict[str, Any]:
        """Selects documents of the current mode: marked so, or agno's, inferred as `_documents` says."""
        own, earlier, takes_rest = documents.legacy_rule(self.mode)
        legacy: list[dict[str, Any]] = [
            {"$or": [{key: {"$exists": True}} for key in own], "$nor": [_has(key) for key in earlier]}
            if earlier
            else {"$or": [_has(key) for key in own]}
        ]
        if takes_rest:
            all_keys = [key for _, keys in documents.LEGACY_MODE_KEYS for key in keys]
            legacy.append({"$nor": [_has(key) for key in all_keys]})
        return {"$or": [{MODE_KEY: self.mode}, {MODE_KEY: {"$exists": False}, "$or": legacy}]}

    def _filter(self, user_id: str | None, entity_id: str | None) -> dict[str, Any]:
        check_ids(user_id=user_id, entity_id=entity_id)
        query = self._mode_filter()
        if user_id is not None:
            query["user_id"] = user_id
        if entity_id is not None:
            query[ENTITY_FIELD[self.mode]] = entity_id
        return query

    def _write_if_unchanged(self, existing: Document | None, document: Document) -> bool:
        """Store `document` if the stored one is still `existing` (None: still none); False if not.

        InvalidSessionError, nothing written, for an int BSON cannot hold (beyond 64 bits signed,
        which other backends store as JSON numbers): the driver refuses it while encoding."""
        try:
            if existing is None:
                self.collection.insert_one(
                    dict(document)
                )  # a copy: insert_one adds `_id` to what it is given
                return True
            unchanged: dict[str, Any] = {"session_id": existing["session_id"]}
            # agno's documents (and older ones of ours) have no version: they are replaced only as read
            unchanged[VERSION_KEY] = existing.get(VERSION_KEY, {"$exists": False})
            return bool(self.collection.replace_one(unchanged, document).matched_count)
        except OverflowError as exc:
            raise InvalidSessionError(
                f"{self._where}: session {document['session_id']!r} holds an int MongoDB cannot store "
                f"(BSON's are 64 bits signed, -2**63 to 2**63 - 1); nothing was written"
            ) from exc

    def _ensure_indexes(self) -> None:
        """Create this mode's indexes if missing; once per storage and mode (creating is idempotent)."""
        mode = self.mode
        if mode in self._indexed:
            return
        with self._indexed_lock, self._translated("creating the indexes"):
            if mode in self._indexed:
                return
            self.collection.create_index("session_id", unique=True)
            self.collection.create_index(_NEWEST_FIRST)
            for field in ("user_id", ENTITY_FIELD[mode]):
                self.collection.create_index([(field, 1), *_NEWEST_FIRST])
            self._indexed.add(mode)

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where pymongo's exceptions become ours."""
        errors = self._pymongo.errors
        with translated(
            f"{action} in {self._where}",
            connection_errors=(errors.ConnectionFailure,),  # includes ServerSelectionTimeoutError
            errors=(errors.PyMongoError,),
        ):
            yield


def check_names(db_name: object, collection_name: object) -> None:
    """Refuse database and collection names MongoDB would refuse or read as something else."""
    if (
        not isinstance(db_name, str)
        or not db_name
        or len(db_name) > 63
        or any(c in _RESERVED_IN_DATABASE_NAMES for c in db_name)
    ):
        raise InvalidInputError(
            f'db_name must be 1 to 63 characters without any of / \\ . space " $ * < > : | ? NUL; '
            f"got {db_name!r}"
        )
    if (
        not isinstance(collection_name, str)
        or not collection_name
        or len(collection_name) > 120
        or "$" in collection_name
        or "\0" in collection_name
        or ".." in collection_name
        or collection_name.startswith(("system.", "."))
        or collection_name.endswith(".")
    ):
        raise InvalidInputError(
            "collection_name must be 1 to 120 characters without $, NUL or '..', not starting with "
            f"'system.' nor starting or ending with '.'; got {collection_name!r}"
        )


def _has(key: str) -> dict[str, Any]:
    return {key: {"$exists": True}}
