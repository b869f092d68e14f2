"""Optional client libraries, imported when a backend is used, and the boundary where their
exceptions become ours."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from agno_orm.errors import MissingDependencyError, StorageConnectionError, StorageError

__all__ = ["require", "translated"]

ErrorTypes = tuple[type[BaseException], ...]


def require(module: str, *, package: str, extra: str) -> ModuleType:
    """Import `module` of the optional `package`; MissingDependencyError naming `extra` if absent.

    Clients are typed as modules here, so the package type-checks without them installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra) from exc


@contextmanager
def translated(where: str, *, connection_errors: ErrorTypes, errors: ErrorTypes) -> Iterator[None]:
    """Turn a driver's exceptions into ours, cause chained: `connection_errors` (the server could not
    be reached, or the connection was lost) into StorageConnectionError, other `errors` into
    StorageError. Our own errors pass through."""
    try:
        yield
    except StorageError:
        raise
    except connection_errors as exc:
        raise StorageConnectionError(f"{where}: unreachable: {exc}") from exc
    except errors as exc:
        raise StorageError(f"{where}: {exc}") from exc
