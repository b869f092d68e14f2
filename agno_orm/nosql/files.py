"""`JsonStorage` and `YamlStorage`: one file per session in a directory, as agno 1.8.4 keeps them.

Both are one `FileStorage`, differing only in the serializer. A session lives in
`<dir_path>/<name>.json` (or `.yaml`), where `<name>` is the session_id with every character
outside `[A-Za-z0-9_.-]` (and a leading `.`) percent-encoded as UTF-8 bytes: uuid-style ids, the
ones agno makes, keep agno's own file names, and no id (`../x`, `/etc/passwd`, `a\\b`, NUL) can
name a file outside the directory. An id whose name would exceed 200 bytes is stored as
`~<sha256 of the id>`; `~` never appears in an encoded name, so the two forms cannot meet.

Every file holds the session's fields plus `mode` (see `_documents`); files agno wrote are
read in place. Writes go to a temporary file in the same directory, are fsynced and renamed over
the old file (`os.replace`), so readers see the old or the new version, never a torn one, even
when the writer is killed (its temporary file is removed by the next write of that session, or
by `drop()`). Writers take an exclusive `flock` on the directory for the
read-check-write of an upsert or delete, so processes sharing the directory do not lose updates.
Needs a POSIX system (fcntl). Listing reads every file of the directory, as agno's does: these
storages suit a few thousand sessions; beyond that use a server backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from agno_orm._versions import OnConflict, stored_version
from agno_orm.errors import InvalidInputError, StorageError
from agno_orm.nosql import _documents as documents
from agno_orm.nosql._documents import Document
from agno_orm.nosql._drivers import require
from agno_orm.sessions import AnySession, Mode, SessionTypes
from agno_orm.storage import DEFAULT_MAX_PAYLOAD_BYTES, Storage, check_ids, check_limit, check_session_id

__all__ = ["FileStorage", "JsonStorage", "YamlStorage", "file_name"]

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_STEM_BYTES = 200  # leaves room for the suffix and the temporary name within NAME_MAX (255)


def file_name(session_id: str, suffix: str) -> str:
    """The file name of `session_id`: injective, a single path component, never hidden."""
    stem = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in session_id)
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    if len(stem) > _MAX_STEM_BYTES:  # the stem is ASCII: characters are bytes
        stem = "~" + hashlib.sha256(session_id.encode()).hexdigest()
    return stem + suffix


class FileStorage(Storage):
    """Sessions as files in `dir_path`; subclasses choose the format."""

    suffix: ClassVar[str]

    def __init__(
        self,
        dir_path: str | Path,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            mode, session_types=session_types, on_conflict=on_conflict, max_payload_bytes=max_payload_bytes
        )
        if not isinstance(dir_path, (str, os.PathLike)) or "\0" in os.fspath(dir_path):
            raise InvalidInputError(f"dir_path must be a path without NUL; got {dir_path!r}")
        self.dir_path = Path(dir_path)
        self._check_directory()

    @abstractmethod
    def serialize(self, document: Document) -> bytes:
        """The file content of `document`."""

    @abstractmethod
    def deserialize(self, data: bytes) -> Any:
        """The value a file holds; raises ValueError if it is not well-formed."""

    # -- Storage ---------------------------------------------------------------------------------

    def create(self) -> None:
        with self._translated("creating the directory"):
            self.dir_path.mkdir(parents=True, exist_ok=True)

    def upgrade_schema(self) -> None:
        """Nothing to upgrade: files have no schema (agno's are read as they are)."""

    def read(
        self, session_id: str, user_id: str | None = None, *, runs_limit: int | None = None
    ) -> AnySession | None:
        check_session_id(session_id)
        check_ids(user_id=user_id)
        check_limit(runs_limit)
        with self._translated("reading a session"):
            document = self._load(self._path(session_id))
        if document is None or not documents.is_readable(document, session_id, self.mode, user_id):
            self._saw_absent(session_id)
            return None
        return documents.to_session(self, document, self._where, runs_limit=runs_limit)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        return [d["session_id"] for d in self._listed(user_id, entity_id, None)]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AnySession]:
        return self.get_recent_sessions(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> list[AnySession]:
        check_limit(limit)
        return [documents.to_session(self, d, self._where) for d in self._listed(user_id, entity_id, limit)]

    def upsert(self, session: Any) -> AnySession:
        record, expected = self._prepared(session)
        session_id: str = record["session_id"]
        path = self._path(session_id)
        with self._translated("upserting a session"), self._locked() as dir_fd:
            existing = self._load(path)
            documents.check_replaceable(existing, record, self.mode, self._where)
            self._check_version(session_id, expected, stored_version(existing))
            document, kept_since = documents.next_document(
                record, existing, self.mode, int(time.time()), where=self._where, view=expected
            )
            self._write_atomically(path, self.serialize(document), dir_fd)
        return self._upserted(session, document, expected, kept_since=kept_since)

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> None:
        if session_id is None:
            return
        check_session_id(session_id)
        check_ids(user_id=user_id)
        path = self._path(session_id)
        with self._translated("deleting a session"), self._locked() as dir_fd:
            document = self._load(path)
            if document is None or not documents.is_readable(document, session_id, self.mode, None):
                return
            if user_id is not None and document.get("user_id") != user_id:
                return
            path.unlink()
            os.fsync(dir_fd)
        self._saw_absent(session_id)

    def drop(self) -> None:
        """Delete the files of the current mode's sessions, and the temporary files writers that died
        left (any mode's: they may hold session data); other files in the directory stay."""
        self._check_directory()
        if not self.dir_path.is_dir():
            return
        with self._translated("dropping the sessions"), self._locked() as dir_fd:
            for path, document in self._session_files():
                if documents.document_mode(document) == self.mode:
                    path.unlink(missing_ok=True)
            for path in self.dir_path.glob(f".*{self.suffix}*.tmp"):  # ours, and older versions'
                path.unlink(missing_ok=True)  # under the lock no live writer is using one
            os.fsync(dir_fd)

    # -- internals -------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{type(self).__name__}({str(self.dir_path)!r})"

    def _check_directory(self) -> None:
        """InvalidInputError if `dir_path` exists and is not a directory (a regular file, say)."""
        if self.dir_path.exists() and not self.dir_path.is_dir():
            raise InvalidInputError(f"{self._where}: {str(self.dir_path)!r} exists and is not a directory")

    def _path(self, session_id: str) -> Path:
        return self.dir_path / file_name(session_id, self.suffix)

    def _load(self, path: Path) -> Document | None:
        """The document in `path`, None if there is no such file; StorageError if it is not one."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            value = self.deserialize(data)
        except ValueError as exc:
            raise StorageError(f"{self._where}: {path.name} is not valid {self.suffix[1:]}: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get("session_id"), str):
            raise _NotASession(f"{self._where}: {path.name} does not hold a session")
        for key in ("created_at", "updated_at"):  # listings order by them: one bad value fails them all
            if not _is_timestamp(value.get(key)):
                raise StorageError(
                    f"{self._where}: {path.name} is corrupt: {key} is {value[key]!r}, not a time"
                )
        return value

    def _session_files(self) -> Iterator[tuple[Path, Document]]:
        """Every session file in the directory with its document; other files are passed over."""
        try:
            paths = sorted(self.dir_path.iterdir())
        except FileNotFoundError:
            return
        for path in paths:
            # Hidden files are our temporary files (and never a session's: see file_name).
            if path.name.startswith(".") or not path.name.endswith(self.suffix):
                continue
            try:
                document = self._load(path)
            except _NotASession:
                continue  # a document of the same suffix that is not a session (a config file, say)
            # A file that does not parse raises: it may be a session cut short (agno writes in
            # place), which a listing must not silently leave out.
            if document is not None:  # None: deleted since the directory was listed
                yield path, document

    def _listed(self, user_id: str | None, entity_id: str | None, limit: int | None) -> list[Document]:
        check_ids(user_id=user_id, entity_id=entity_id)
        with self._translated("listing sessions"):
            matching = (
                d for _, d in self._session_files() if documents.in_listing(d, self.mode, user_id, entity_id)
            )
            return documents.newest_first(matching, limit)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold an exclusive lock on the directory (created if missing); yields its descriptor."""
        try:
            import fcntl
        except ImportError as exc:  # Windows
            raise StorageError(
                f"{self._where} needs POSIX file locks (fcntl), which this system lacks"
            ) from exc
        self.dir_path.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(self.dir_path, os.O_RDONLY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)  # released when the descriptor is closed
            yield dir_fd
        finally:
            os.close(dir_fd)

    def _write_atomically(self, path: Path, data: bytes, dir_fd: int) -> None:
        """Replace `path` with `data` so that no reader and no crash ever sees a partial file.

        The temporary file is `.<name>.tmp`: one name per session is enough under the directory
        lock, and a writer killed mid-write leaves a file the next write of that id removes first
        (`drop()` removes them all). Created exclusively: a link planted there is not followed.
        """
        temporary = self.dir_path / f".{path.name}.tmp"
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        os.fsync(dir_fd)  # makes the rename itself durable

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """The one boundary where file system errors become ours, with the cause chained."""
        try:
            yield
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"{action} in {self._where}: {exc}") from exc


def _is_timestamp(value: Any) -> bool:
    """Whether `value` can be a stored created_at/updated_at: epoch seconds, or None (not stored)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


class _NotASession(StorageError):
    """A file holding a well-formed document that is no session (no session_id)."""


class JsonStorage(FileStorage):
    """Sessions as `<dir_path>/<session_id>.json` files (agno 1.8.4's `JsonStorage`)."""

    suffix = ".json"

    def serialize(self, document: Document) -> bytes:
        return json.dumps(document, ensure_ascii=False, indent=4).encode()

    def deserialize(self, data: bytes) -> Any:
        return json.loads(data)  # JSONDecodeError and UnicodeDecodeError are ValueErrors


class YamlStorage(FileStorage):
    """Sessions as `<dir_path>/<session_id>.yaml` files (agno 1.8.4's `YamlStorage`; extra `yaml`)."""

    suffix = ".yaml"

    def __init__(
        self,
        dir_path: str | Path,
        mode: Mode | None = "agent",
        *,
        session_types: SessionTypes = "auto",
        on_conflict: OnConflict = "overwrite",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            dir_path,
            mode,
            session_types=session_types,
            on_conflict=on_conflict,
            max_payload_bytes=max_payload_bytes,
        )
        self._yaml  # noqa: B018  # fails now, not at first use, when PyYAML is missing

    @property
    def _yaml(self) -> ModuleType:
        return require("yaml", package="PyYAML", extra="yaml")

    def serialize(self, document: Document) -> bytes:
        dumper = getattr(self._yaml, "CSafeDumper", self._yaml.SafeDumper)
        text: str = self._yaml.dump(document, Dumper=dumper, allow_unicode=True, sort_keys=False)
        return text.encode()

    def deserialize(self, data: bytes) -> Any:
        loader = getattr(self._yaml, "CSafeLoader", self._yaml.SafeLoader)
        try:
            return self._yaml.load(data, Loader=loader)
        except self._yaml.YAMLError as exc:
            raise ValueError(str(exc)) from exc
