"""The errors every backend raises.

agno's own storage logs a failure and returns None, which an agent reads as "no session yet" and
then overwrites the stored history. Here every failure is raised, typed, with its cause chained;
only "not found" is answered with None or an empty list.

    StorageError                      base of everything this package raises
    ├── InvalidInputError (ValueError)  an argument is wrong: unknown mode, bad identifier, bad limit
    │   └── InvalidSessionError         a session cannot be stored: bad session_id, non-JSON payload
    │       └── PayloadTooLargeError    the session exceeds max_payload_bytes or the backend's limit
    ├── MissingDependencyError (ImportError)
    │                                   an optional driver is not installed; names the extra to install
    ├── StorageConnectionError          the database could not be reached, or the connection was lost
    │                                   (after the bounded retries of operations that are safe to retry)
    ├── StorageTimeoutError             the database cancelled a statement or a lock wait at its timeout
    ├── SessionConflictError            on_conflict="raise": the session changed since this writer read it
    └── SchemaError                     the table does not have the shape this storage needs
        └── SchemaOutOfDateError        the table is behind the newest revision and
                                        auto_upgrade_schema is off; names the command that upgrades it
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by agno_orm."""


class InvalidInputError(StorageError, ValueError):
    """Raised before anything is written when an argument is invalid."""


class InvalidSessionError(InvalidInputError):
    """Raised before anything is written when a session cannot be stored as given."""


class PayloadTooLargeError(InvalidSessionError):
    """Raised before anything is written when the session would exceed a size limit: the storage's
    `max_payload_bytes` (its JSON text), or a backend's own (DynamoDB's 400 KB per item); names the
    size and the limit."""


class MissingDependencyError(StorageError, ImportError):
    """Raised when a backend's optional client library is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        # The install docs (README, docs/install.md) say the same: an extra is added beside the
        # installed agno-orm, which pip finds, whether it came from a wheel, a git URL or a clone.
        super().__init__(
            f"{package} is not installed; add agno-orm's {extra} extra: pip install 'agno-orm[{extra}]'"
            f" (in a clone: pip install -e '.[{extra}]')"
        )
        self.package = package
        self.extra = extra


class StorageConnectionError(StorageError):
    """Raised when the database cannot be reached or the connection is lost mid-operation.

    Reads, and writes that never reached a commit, are retried a few times first; a write whose
    commit was sent when the connection broke is not retried unless repeating it is harmless
    (see `Storage`), and the message then says its outcome is unknown."""


class StorageTimeoutError(StorageError):
    """Raised when the database cancelled a statement at one of its timeouts: a lock wait
    (PostgreSQL's `lock_timeout`, MySQL's `innodb_lock_wait_timeout`) or a statement running too
    long (`statement_timeout`, `max_statement_time`, `max_execution_time`; PostgreSQL reports a
    cancel request alike). Not retried, since another try would wait as long again; the
    transaction was rolled back, so a write wrote nothing."""


class SessionConflictError(StorageError):
    """Raised by `upsert` on a storage made with `on_conflict="raise"` when the stored session is not
    the version this writer read (another writer changed, created or deleted it meanwhile). Nothing
    was written: read the session again, re-apply the change and upsert it again."""

    def __init__(self, message: str, *, session_id: str, expected: int, found: int) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.expected = expected
        """The version the writer read (0: it saw no session)."""
        self.found = found
        """The version stored when the write was tried (0: there is none)."""


class SchemaError(StorageError):
    """Raised when a table exists but does not have the shape the storage's mode needs."""


class SchemaOutOfDateError(SchemaError):
    """Raised when a table is behind the newest revision and auto_upgrade_schema is False."""
