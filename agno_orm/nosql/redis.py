"""`RedisStorage`: sessions as JSON strings under agno 1.8.4's keys, listed through sorted-set indexes.

Layout, for a `prefix` and each mode:

    {prefix}:{session_id}                     the session's document as JSON (agno's key and value)
    {prefix}\\0{mode}\\0[user_id, entity_id]   sorted sets of session ids scored by created_at:
                                              [null, null] holds every session of the mode,
                                              [user, null], [null, entity], [user, entity] a filter's
    {prefix}\\0{mode}\\0members                hash: session_id -> JSON list of its index keys
    {prefix}\\0{mode}\\0indexed                set once the sessions agno wrote were indexed

The index keys start with `{prefix}` and a NUL, which no session id (and no accepted prefix)
contains, so they never meet a session key nor agno's `SCAN {prefix}:*`. An upsert writes the
session, its index entries and its membership in one MULTI/EXEC, guarded by WATCH on the session
key (retried on a concurrent change). A listing is one Lua script over one sorted set: it walks
the set newest first (ties: session_id descending), returns the live sessions, and removes, in
the same atomic step, the entries of sessions that expired (`expire`) or vanished, from every
index that held them. Listing therefore costs O(log n + page), with no SCAN.

Sessions agno wrote are read by id at once, and indexed the first time a prefix and mode is
listed (one SCAN of `{prefix}:*`, under a lock in Redis, by one process; the mark that it was
done is kept in Redis, and the listing script checks it in the same call). `upgrade_schema()`
indexes them again, for sessions agno wrote under the prefix since. Redis Cluster is not
supported (a session and its indexes hash to different slots).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from agno_orm._retry import pause
from agno_orm._versions import OnConflict, stored_version
from agno_orm.errors import InvalidInputError, StorageError
from agno_orm.nosql import _documents as documents
from agno_orm.nosql._documents import Document
from agno_orm.nosql._drivers import require, translated
from agno_orm.sessions import ENTITY_FIELD, AnySession, Mode, SessionTypes
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES, Storage, check_ids, check_limit, check_session_id

__all__ = ["RedisStorage"]

_MAX_ATTEMPTS = 100  # optimistic retries of one upsert against concurrent writers of the same session
_INDEXING_LOCK_SECONDS = 600  # the lock around indexing agno's sessions, should its holder die

# KEYS: index, members, indexed (the mark of agno's sessions indexed). ARGV: session key prefix,
# limit (-1: all), "1" to return values, else ids. Returns nil where agno's sessions are not indexed yet.
_LIST_SCRIPT = """
local index, members, indexed = KEYS[1], KEYS[2], KEYS[3]
local prefix, limit, want_values = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
if redis.call('EXISTS', indexed) == 0 then return false end
local out, start, batch = {}, 0, 200
while limit < 0 or #out < limit do
  local ids = redis.call('ZREVRANGE', index, start, start + batch - 1)
  if #ids == 0 then break end
  local gone = 0
  for _, id in ipairs(ids) do
    if limit >= 0 and #out >= limit then break end
    local found
    if want_values then
      found = redis.call('GET', prefix .. id)
    else
      found = redis.call('EXISTS', prefix .. id) == 1 and id
    end
    if found then
      out[#out + 1] = found
    else
      gone = gone + 1
      local listed = redis.call('HGET', members, id)
      if listed then
        for _, key in ipairs(cjson.decode(listed)) do redis.call('ZREM', key, id) end
        redis.call('HDEL', members, id)
      else
        redis.call('ZREM', index, id)
      end
    end
  end
  start = start + #ids - gone
end
return out
"""


class RedisStorage(Storage):
    """Sessions in Redis (agno 1.8.4's `RedisStorage`; extra `redis`).

    Connects with `client` (a `redis.Redis`, used as given), else `redis_url`, else host, port,
    db, password and ssl. `expire` (seconds) gives every written session that time to live.
    Copies (`copy.deepcopy`, as agno does per request) share the client.
    """

    def __init__(
        self,
        prefix: str,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        mode: Mode | None = "agent",
        ssl: bool = False,
        expire: int | None = None,
        *,
        redis_url: str | None = None,
        client: Any = None,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            mode, session_types=session_types, on_conflict=on_conflict, max_payload_bytes=max_payload_bytes
        )
        check_prefix(prefix)
        if expire is not None and (not isinstance(expire, int) or isinstance(expire, bool) or expire <= 0):
            raise InvalidInputError(f"expire must be None or a positive int (seconds); got {expire!r}")
        redis = self._redis  # fails here, not at first use, when the client library is missing
        if client is None:
            # Commands are retried on a lost connection (a restarted server): every command here
            # is a read, idempotent, or part of a WATCHed transaction, which redis-py turns into a
            # WatchError instead, and the upsert then reads the session again before writing.
            retries = {
                "retry": redis.retry.Retry(redis.backoff.ExponentialBackoff(cap=1.0, base=0.05), 4),
                "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
            }
            if redis_url is not None:
                client = redis.Redis.from_url(redis_url, **retries)
            else:
                client = redis.Redis(host=host, port=port, db=db, password=password, ssl=ssl, **retries)
        self.prefix = prefix
        self.host, self.port, self.db, self.password, self.ssl = host, port, db, password, ssl
        self.expire = expire
        self.redis_url = redis_url
        self.redis_client = client
        self._list_script = client.register_script(_LIST_SCRIPT)

    def __deepcopy__(self, memo: dict[int, Any]) -> RedisStorage:
        return copy.copy(self)

    # -- Storage ---------------------------------------------------------------------------------

    def create(self) -> None:
        """Nothing to create in Redis; checks that the server answers."""
        with self._translated("connecting"):
            self.redis_client.ping()

    def upgrade_schema(self) -> None:
        """Index the current mode's sessions that agno wrote (found with one SCAN of `{prefix}:*`).

        Listings do this on their own the first time for a prefix and mode; call it again for
        sessions agno wrote under the prefix since."""
        self._index_agno_sessions(again=True)

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_ids(user_id=user_id)
        check_limit(runs_limit)
        with self._translated("reading a session"):
            raw = self.redis_client.get(self._key(session_id))
        document = None if raw is None else self._decode(raw)
        if document is None or not documents.is_readable(document, session_id, self.mode, user_id):
            self._saw_absent(session_id)
            return None
        return documents.to_session(self, document, self._where, runs_limit=runs_limit)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        check_ids(user_id=user_id, entity_id=entity_id)
        with self._translated("listing session ids"):
            ids = self._list(user_id, entity_id, None, values=False)
        return [_text(i) for i in ids]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        check_ids(user_id=user_id, entity_id=entity_id)
        if limit == 0:
            return []
        with self._translated("listing sessions"):
            values = self._list(user_id, entity_id, limit, values=True)
        return [documents.to_session(self, self._decode(v), self._where) for v in values]

    def upsert(self, session: Any) -> AnySession:
        record, expected = self._prepared(session)
        session_id: str = record["session_id"]
        key = self._key(session_id)
        with self._translated("upserting a session"):
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                with self.redis_client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        existing = None if raw is None else self._decode(raw)
                        documents.check_replaceable(existing, record, self.mode, self._where)
                        self._check_version(session_id, expected, stored_version(existing))
                        document, kept_since = documents.next_document(
                            record, existing, self.mode, int(time.time()), where=self._where, view=expected
                        )
                        old_indexes = self._memberships(pipe, session_id)
                        pipe.multi()
                        pipe.set(key, self.serialize(document), ex=self.expire)
                        self._queue_indexing(pipe, document, old_indexes)
                        pipe.execute()
                        return self._upserted(session, document, expected, kept_since=kept_since)
                    except self._redis.WatchError:
                        pause(attempt)  # another writer changed it meanwhile: read it again
        raise StorageError(f"{self._where}: session {session_id!r} kept changing; gave up after retries")

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        check_ids(user_id=user_id)
        key = self._key(session_id)
        with self._translated("deleting a session"):
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                with self.redis_client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(key)
                        raw = pipe.get(key)
                        if raw is None:
                            return
                        document = self._decode(raw)
                        if not documents.is_readable(document, session_id, self.mode, None) or (
                            user_id is not None and document.get("user_id") != user_id
                        ):
                            return
                        old_indexes = self._memberships(pipe, session_id)
                        pipe.multi()
                        pipe.delete(key)
                        for index in old_indexes:
                            pipe.zrem(index, session_id)
                        pipe.hdel(self._members_key(), session_id)
                        pipe.execute()
                        self._saw_absent(session_id)
                        return
                    except self._redis.WatchError:
                        pause(attempt)  # another writer changed it meanwhile: read it again
        raise StorageError(f"{self._where}: session {session_id!r} kept changing; gave up after retries")

    def drop(self) -> None:
        """Delete the current mode's indexed sessions and its indexes (and the mark that agno's
        sessions were indexed: a later listing indexes any left)."""
        members_key = self._members_key()
        with self._translated("dropping the sessions"):
            memberships = self.redis_client.hgetall(members_key)
            indexes: set[Any] = set()
            ids = list(memberships)
            for listed in memberships.values():
                indexes.update(json.loads(listed))
            for start in range(0, len(ids), 500):
                self.redis_client.delete(*(self._key(_text(i)) for i in ids[start : start + 500]))
            self.redis_client.delete(members_key, self._indexed_key(), *indexes)

    # -- internals -------------------------------------------------------------------------------

    @property
    def _redis(self) -> ModuleType:
        return require("redis", package="redis", extra="redis")

    @property
    def _where(self) -> str:
        return f"RedisStorage(prefix={self.prefix!r})"

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}:{session_id}"

    def _index_key(self, user_id: str | None, entity_id: str | None) -> str:
        return f"{self.prefix}\0{self.mode}\0{json.dumps([user_id, entity_id], ensure_ascii=False)}"

    def _members_key(self) -> str:
        return f"{self.prefix}\0{self.mode}\0members"

    def _indexed_key(self) -> str:
        """Set once the sessions agno wrote under the prefix in this mode were indexed."""
        return f"{self.prefix}\0{self.mode}\0indexed"

    def _index_keys(self, document: Mapping[str, Any]) -> list[str]:
        """The indexes listing `document`: every session's, its user's, its entity's, and both."""
        user_id, entity_id = document.get("user_id"), document.get(ENTITY_FIELD[self.mode])
        users = [None] if user_id is None else [None, user_id]
        entities = [None] if entity_id is None else [None, entity_id]
        return [self._index_key(u, e) for u in users for e in entities]

    def _memberships(self, client: Any, session_id: str) -> list[str]:
        listed = client.hget(self._members_key(), session_id)
        return [] if listed is None else list(json.loads(listed))

    def _queue_indexing(self, pipe: Any, document: Document, old_indexes: list[str]) -> None:
        session_id, score = document["session_id"], document.get("created_at") or 0
        indexes = self._index_keys(document)
        for index in set(old_indexes) - set(indexes):
            pipe.zrem(index, session_id)
        for index in indexes:
            pipe.zadd(index, {session_id: score})
        pipe.hset(self._members_key(), session_id, json.dumps(indexes, ensure_ascii=False))

    def _index_unindexed(self, key: Any) -> None:
        """Index the session under `key` if it is one of this mode's and not indexed yet."""
        with self.redis_client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return
                try:
                    document = self._decode(raw)
                except StorageError:
                    return  # not a session: another application's key under the same prefix
                session_id = document["session_id"]
                if _text(key) != self._key(session_id) or documents.document_mode(document) != self.mode:
                    return
                if pipe.hexists(self._members_key(), session_id):
                    return
                pipe.multi()
                self._queue_indexing(pipe, document, [])
                pipe.execute()
            except self._redis.WatchError:
                return  # written meanwhile, and so indexed by that write

    def _list(self, user_id: str | None, entity_id: str | None, limit: int | None, *, values: bool) -> Any:
        keys = [self._index_key(user_id, entity_id), self._members_key(), self._indexed_key()]
        args = [f"{self.prefix}:", -1 if limit is None else limit, "1" if values else "0"]
        found = self._list_script(keys=keys, args=args)
        if found is None:  # the first listing of this prefix and mode: agno's sessions get indexed
            self._index_agno_sessions()
            found = self._list_script(keys=keys, args=args)
        return found

    def _index_agno_sessions(self, *, again: bool = False) -> None:
        """Index the current mode's sessions agno wrote (one SCAN of `{prefix}:*`) unless that was
        done for this prefix and mode (`again`: even so), then mark it done in Redis: once in all,
        whatever the number of processes, under a lock in Redis that expires should its holder die.
        Indexing a session twice is harmless (`_index_unindexed`), so a lock expired mid-scan is too."""
        client, indexed = self.redis_client, self._indexed_key()
        with self._translated("indexing the sessions agno wrote"):
            if not again and client.exists(indexed):
                return
            lock = client.lock(f"{self.prefix}\0{self.mode}\0indexing", timeout=_INDEXING_LOCK_SECONDS)
            lock.acquire()
            try:
                if not again and client.exists(indexed):
                    return  # another process indexed them meanwhile
                pattern = _glob_escape(self.prefix) + ":*"
                for key in client.scan_iter(match=pattern, count=1000):
                    self._index_unindexed(key)
                client.set(indexed, "1")
            finally:
                with contextlib.suppress(self._redis.exceptions.LockError):  # expired meanwhile
                    lock.release()

    def serialize(self, data: Mapping[str, Any]) -> str:
        """A session document as the JSON text stored under its key (agno's `serialize`)."""
        return json.dumps(data, ensure_ascii=False)

    def deserialize(self, data: bytes | str) -> Document:
        """The document of a stored value (agno's `deserialize`); StorageError if it is no session."""
        return self._decode(data)

    def _decode(self, raw: bytes | str) -> Document:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"{self._where}: a stored value is not JSON: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get("session_id"), str):
            raise StorageError(f"{self._where}: a stored value is not a session: {raw!r:.200}")
        return value

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where redis-py's exceptions become ours."""
        exceptions = self._redis.exceptions
        with translated(
            f"{action} in {self._where}",
            connection_errors=(exceptions.ConnectionError, exceptions.TimeoutError),
            errors=(exceptions.RedisError,),
        ):
            yield


MAX_PREFIX_LENGTH = 200


def check_prefix(prefix: object) -> None:
    """Refuse a key prefix that could make this storage's keys meet another's, or not be text.

    Keys are `{prefix}:{session_id}` and `{prefix}\\0...` (see the module docstring): a NUL would let
    a session key pass for an index key, and a control character or a lone surrogate is no name.
    """
    if (
        not isinstance(prefix, str)
        or not prefix
        or len(prefix) > MAX_PREFIX_LENGTH
        or not prefix.isprintable()
        or not _is_unicode(prefix)
    ):
        raise InvalidInputError(
            f"prefix must be 1 to {MAX_PREFIX_LENGTH} printable characters (no NUL or other control "
            f"character); got {prefix!r}"
        )


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """`text` as a literal in a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
