"""`agno-orm`: the command line for operators: schema, sessions, export/import and copy.

    agno-orm upgrade|current|check   the Alembic revisions of SQL session tables
    agno-orm sessions list|show      look at sessions, newest first
    agno-orm export|import           sessions to and from JSON Lines
    agno-orm copy --from A --to B    sessions between any two storages, resumable and verified

Where sessions live is given as a location (agno_orm.locations), a database URL with options or
json:///dir, redis://..., and so on. Exit status: 0 success; 1 the answer is "no" (a table is
behind head, a copy does not verify, a session is not found); 2 an error, told in one line
(bad location, unreachable server, missing table); 128 + N when stopped by signal N (a copy is
resumed by running it again). Built on argparse, with rich drawing progress bars and tables on a
terminal (plain text otherwise, and JSON with --json); importing agno_orm never imports this module.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn

from agno_orm.errors import StorageError
from agno_orm.locations import (
    Location,
    StorageSet,
    describe,
    missing_reason,
    open_storages,
    parse_location,
    sql_engine,
)
from agno_orm.runs import join_runs, split_runs
from agno_orm.sessions import MODES, SessionSummary
from agno_orm.sql import migrations
from agno_orm.sql.models import DEFAULT_TABLE_NAMES, TableSpec
from agno_orm.transfer import (
    JsonLinesSource,
    SessionSource,
    Verification,
    copy_sessions,
    defer_signal,
    export_sessions,
    open_source,
    plan,
    replaced_atomically,
    set_digest,
    verify,
)

__all__ = ["main"]

DB_URL_ENV = "AGNO_ORM_DB_URL"

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2

DEFAULT_JOBS = 4
JOBS_HELP = f"sessions copied and verified at a time (default {DEFAULT_JOBS}): overlaps the round trips"

LOCATIONS_HELP = """\
locations (agno_orm's options in the query string, the rest goes to the driver):
  sqlite:///relative.db  sqlite:////absolute.db  postgresql+psycopg://user@host/db
  mysql+pymysql://user@host/db  singlestoredb://user@host/db
      ?table=NAME&mode=MODE  one table (mode defaults to agent); without table=, the four
      default tables (agent_sessions, team_sessions, workflow_sessions, workflow_v2_sessions,
      renamed by agent_table=, team_table=, ...); &schema=S (default ai on PostgreSQL)
  json:///relative/dir  json:////absolute/dir  yaml:///dir          [?mode=MODE]
  redis://host:6379/0?prefix=PREFIX                                 [&mode=MODE]
  mongodb://host:27017/?collection=NAME&db=agno                     [&mode=MODE]
  dynamodb://TABLE?region=us-east-1[&endpoint_url=URL][&profile=P]  [&mode=MODE]
  Without mode= (or table=), a location names every mode's sessions.
"""


class Failure(Exception):
    """Ends the command with a one-line message on stderr and an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


# -- progress -----------------------------------------------------------------------------------


class ProgressBar:
    """A progress bar on `stream`: rich's, redrawn in place, on a terminal; otherwise a plain line
    per 5% (for logs and pipes, which a redrawn line would fill with carriage returns)."""

    PLAIN_STEPS = 20

    def __init__(self, stream: IO[str], label: str, total: int) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.animated = stream.isatty()
        self._step = 0
        self._closed = False
        self._bar: Any = None
        if self.animated:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=Console(file=stream, force_terminal=True),
            )
            self._task = self._bar.add_task(label, total=total)
            self._bar.start()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.advance(self._task, count)
        elif self.total:
            step = self.done * self.PLAIN_STEPS // self.total
            if step > self._step:
                self._step = step
                percent = 100 * self.done // self.total
                self.stream.write(f"{self.label}: {self.done}/{self.total} sessions ({percent}%)\n")
                self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()  # draws the last state, leaves the line, shows the cursor again


class Bars:
    """Makes the progress bars of one command on stderr, remembering them (to close them whatever
    happens, and to say how far the last got when interrupted)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.made: list[ProgressBar] = []

    @property
    def last(self) -> ProgressBar | None:
        return self.made[-1] if self.made else None

    def __call__(self, label: str, total: int) -> ProgressBar:
        self.made.append(ProgressBar(sys.stderr if self.enabled else io.StringIO(), label, total))
        return self.made[-1]

    def close(self) -> None:
        for bar in self.made:
            bar.close()


# -- parsing ------------------------------------------------------------------------------------


def _epoch(text: str) -> int:
    """Epoch seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (epoch seconds, or ISO 8601 such as 2025-01-31 or 2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1; got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0; got {text!r}")
    return value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _add_location_options(parser: argparse.ArgumentParser, *, what: str, table_set: bool = False) -> None:
    group = parser.add_argument_group("where the sessions are")
    group.add_argument(
        "--db-url",
        metavar="LOCATION",
        help=f"{what}; default: ${DB_URL_ENV}",
    )
    group.add_argument("--table", metavar="NAME", help="the one SQL table (as -x table=NAME)")
    group.add_argument("--mode", choices=MODES, help="whose sessions: the table's mode, or which mode to use")
    group.add_argument("--schema", metavar="S", help="SQL schema (default ai on PostgreSQL, else the URL's)")
    if table_set:
        for mode in MODES:
            group.add_argument(
                f"--{mode.replace('_', '-')}-table",
                metavar="NAME",
                dest=f"{mode}_table",
                help=f"the default set's {mode} table (default {DEFAULT_TABLE_NAMES[mode]})",
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agno-orm",
        description="Schema, sessions and copies of agno_orm session storage.",
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    from agno_orm import __version__

    parser.add_argument("--version", action="version", version=f"agno-orm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    schema_help = {
        "upgrade": "create missing tables and upgrade the others to the newest revision",
        "current": "print each table's revision",
        "check": "exit 1 when a table is missing or behind the newest revision (and say which)",
    }
    for name, help_text in schema_help.items():
        command = commands.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}: the revisions `alembic upgrade head` runs.\n"
            "Without --table, the four default tables (as alembic without -x table=).",
            epilog=LOCATIONS_HELP,
            formatter_class=_Formatter,
        )
        _add_location_options(command, what="database URL", table_set=True)
        command.set_defaults(
            handler={"upgrade": cmd_upgrade, "current": cmd_current, "check": cmd_check}[name]
        )

    sessions = commands.add_parser(
        "sessions",
        help="list sessions or show one",
        description="List sessions or show one.",
        formatter_class=_Formatter,
    )
    session_commands = sessions.add_subparsers(dest="sessions_command", metavar="COMMAND", required=True)
    listing = session_commands.add_parser(
        "list",
        help="one page of sessions, newest first",
        description="One page of sessions of one mode (default agent), newest first, as a table\n"
        "(or JSON with --json). Times are UTC. The last line gives the --cursor of the next page.",
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    _add_location_options(listing, what="database URL or location")
    listing.add_argument("--user", metavar="ID", help="only this user's sessions")
    listing.add_argument("--entity", metavar="ID", help="only this agent's, team's or workflow's sessions")
    listing.add_argument(
        "--since", metavar="TIME", type=_epoch, help="created at or after (epoch or ISO 8601)"
    )
    listing.add_argument("--until", metavar="TIME", type=_epoch, help="created before (epoch or ISO 8601)")
    listing.add_argument("--limit", metavar="N", type=_positive, default=20, help="sessions per page (20)")
    listing.add_argument("--cursor", metavar="CURSOR", help="the page after the one that printed this cursor")
    listing.add_argument(
        "--json",
        action="store_true",
        help='the page as one JSON object: {"mode", "sessions": [...], "next_cursor"} (epoch seconds)',
    )
    listing.set_defaults(handler=cmd_sessions_list)

    show = session_commands.add_parser(
        "show",
        help="one session as JSON",
        description="One session, all its fields, as JSON (colored on a terminal unless --json).",
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    show.add_argument("session_id", metavar="ID")
    _add_location_options(show, what="database URL or location")
    show.add_argument("--user", metavar="ID", help="only if it is this user's session")
    show.add_argument("--runs", metavar="N", type=_non_negative, help="only its last N runs")
    show.add_argument("--json", action="store_true", help="plain JSON, never colored (as when piped)")
    show.set_defaults(handler=cmd_sessions_show)

    export = commands.add_parser(
        "export",
        help="sessions to JSON Lines",
        description="Every session of every mode the location names to JSON Lines: one session per line,\n"
        'its fields plus "mode". Prints the count and checksum of what it wrote.',
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    _add_location_options(export, what="database URL or location", table_set=True)
    export.add_argument(
        "-o", "--output", metavar="FILE", default="-", help="file to write (replaced when done); - for stdout"
    )
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(handler=cmd_export)

    importing = commands.add_parser(
        "import",
        help="sessions from JSON Lines",
        description="Upsert the sessions of a JSON Lines file (as export writes it), then verify.\n"
        "An imported session replaces a stored one of the same id, its history too: runs the stored\n"
        "session has and the file's does not are removed. Sessions already stored identically are\n"
        "skipped, so an interrupted import is resumed by running it again.",
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    importing.add_argument("file", metavar="FILE", help="the JSON Lines file; - for stdin")
    _add_location_options(importing, what="database URL or location to import into", table_set=True)
    importing.add_argument("--no-progress", action="store_true", help="no progress bar")
    importing.add_argument("-j", "--jobs", metavar="N", type=_positive, default=DEFAULT_JOBS, help=JOBS_HELP)
    importing.set_defaults(handler=cmd_import)

    copy = commands.add_parser(
        "copy",
        help="sessions from one storage to another, resumable and verified",
        description="Copy every session from SOURCE to TARGET, between any two backends, then verify:\n"
        "counts and content checksums (SHA-256 of each session's canonical JSON without updated_at) of\n"
        "both sides, exit 1 on a mismatch. Interrupt it at any time (Ctrl-C, SIGTERM, a crash) and run\n"
        "it again to resume: sessions the target already holds identically are skipped, the others\n"
        "upserted by session_id, so nothing is duplicated. Tables agno 1.8.4 wrote are read as they\n"
        "are, never changed. The progress bar goes to stderr.",
        epilog=LOCATIONS_HELP,
        formatter_class=_Formatter,
    )
    copy.add_argument("--from", dest="source", metavar="SOURCE", required=True, help="location to copy from")
    copy.add_argument("--to", dest="target", metavar="TARGET", required=True, help="location to copy to")
    copy.add_argument("--no-progress", action="store_true", help="no progress bar")
    copy.add_argument("-j", "--jobs", metavar="N", type=_positive, default=DEFAULT_JOBS, help=JOBS_HELP)
    copy.set_defaults(handler=cmd_copy)
    return parser


# -- helpers ------------------------------------------------------------------------------------


def _location(args: argparse.Namespace, *, default_mode: bool = False) -> Location:
    text = args.db_url or os.environ.get(DB_URL_ENV)
    if not text:
        raise Failure(f"no database: pass --db-url or set {DB_URL_ENV}")
    location = parse_location(text, table=args.table, mode=args.mode, schema=args.schema)
    if default_mode and location.mode is None:
        location = parse_location(text, table=args.table, mode="agent", schema=args.schema)
    extra: dict[str, str] = {
        f"{m}_table": name for m in MODES if (name := getattr(args, f"{m}_table", None)) is not None
    }
    if extra:
        if location.kind != "sql":
            raise Failure("--agent-table and the like apply to SQL databases")
        location = Location(location.kind, location.address, {**location.options, **extra}, location.display)
    return location


@contextmanager
def _opened(location: Location) -> Iterator[StorageSet]:
    storage_set = open_storages(location)
    try:
        yield storage_set
    finally:
        storage_set.close()


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: Sequence[Sequence[str]], out: IO[str], *, indent: int = 0) -> None:
    """Rows (the first is the header) as a table: rich's on a terminal, otherwise aligned columns
    of plain text, the last column not padded (for grep, cut and awk)."""
    if out.isatty():
        from rich import box
        from rich.console import Console
        from rich.padding import Padding
        from rich.table import Table

        table = Table(
            box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold"
        )
        ids = max(len(row[0]) for row in rows)
        for i, heading in enumerate(rows[0]):
            # the first column (ids) stays whole; the others are cut short on a narrow terminal
            table.add_column(heading, no_wrap=True, min_width=ids if i == 0 else None)
        for row in rows[1:]:
            table.add_row(*row)
        Console(file=out).print(Padding(table, (0, 0, 0, indent)))
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print(" " * indent + "  ".join([*cells, row[-1]]), file=out)


def _short(text: str | None, width: int = 40) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- schema commands ----------------------------------------------------------------------------


def _schema_target(args: argparse.Namespace) -> tuple[Location, list[TableSpec]]:
    location = _location(args)
    if location.kind != "sql":
        raise Failure(f"{args.command} applies to SQL databases; {location.display} has no revisions")
    return location, location.table_specs()


def _states(location: Location, specs: list[TableSpec]) -> list[migrations.TableState]:
    url = location.sql_url()
    file = url.database if url.get_backend_name() == "sqlite" and url.database != ":memory:" else None
    if file and not Path(file).is_file():  # looking must not create the file: only upgrade does
        return [migrations.TableState(exists=False, revision=None, columns=frozenset()) for _ in specs]
    engine = sql_engine(url)
    try:
        with _database_errors(location), engine.connect() as connection:
            return [migrations.table_state(connection, spec) for spec in specs]
    finally:
        engine.dispose()


def _revision_text(state: migrations.TableState, head: str) -> str:
    if not state.exists:
        return "missing"
    if state.revision is None:
        return "no version recorded (agno 1.8.4's table; upgrade adopts it)"
    if state.revision == head:
        return f"{head} (head)"
    if state.revision in migrations.known_revisions():
        return f"{state.revision} (behind head {head})"
    return f"{state.revision} (unknown here: a newer agno_orm's)"


def cmd_upgrade(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location = _location(args)
    if location.kind != "sql":
        with _opened(location) as storage_set:
            for mode, storage in storage_set.storages.items():
                storage.upgrade_schema()
                print(f"{describe(storage)} ({mode}): ready", file=out)
        return EXIT_OK
    location, specs = _schema_target(args)
    head = migrations.head_revision()
    before = _states(location, specs)
    engine = sql_engine(location.sql_url())
    try:
        with _database_errors(location):
            migrations.upgrade(engine, specs)
    finally:
        engine.dispose()
    after = _states(location, specs)
    for spec, old, new in zip(specs, before, after, strict=True):
        if not old.exists:
            change = f"created at {_revision_text(new, head)}"
        elif old.revision == new.revision:
            change = f"already at {_revision_text(new, head)}"
        else:
            change = f"{old.revision or 'agno 1.8.4 (no version)'} -> {_revision_text(new, head)}"
        print(f"{spec.qualified_name} ({spec.mode}): {change}", file=out)
    return EXIT_OK


def cmd_current(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location, specs = _schema_target(args)
    head = migrations.head_revision()
    rows = [["TABLE", "MODE", "REVISION"]]
    for spec, state in zip(specs, _states(location, specs), strict=True):
        rows.append([spec.qualified_name, spec.mode, _revision_text(state, head)])
    _table(rows, out)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location, specs = _schema_target(args)
    head = migrations.head_revision()
    problems = []
    for spec, state in zip(specs, _states(location, specs), strict=True):
        if not state.exists:
            problems.append(f"{spec.qualified_name} ({spec.mode}): missing")
        elif state.revision != head:
            problems.append(f"{spec.qualified_name} ({spec.mode}): {_revision_text(state, head)}")
        elif missing := migrations.mode_columns(spec) - state.columns:
            problems.append(
                f"{spec.qualified_name} ({spec.mode}): lacks the columns {', '.join(sorted(missing))}"
            )
    if not problems:
        print(f"all {len(specs)} table(s) at head {head}", file=out)
        return EXIT_OK
    for problem in problems:
        print(problem, file=out)
    print(f"not at head {head}; upgrade with: {_command_line('upgrade', location, args)}", file=out)
    return EXIT_NO


def _command_line(command: str, location: Location, args: argparse.Namespace) -> str:
    """`agno-orm COMMAND` on the same tables as this command, to paste: the location's options kept.

    A password is never printed: a location given in $AGNO_ORM_DB_URL is left there (the flags
    given are repeated), one given with --db-url is shown with *** and the hint says so.
    """
    url, hidden = location.url_with_options()
    if hidden and args.db_url is None:
        flags = [
            f"--{name.replace('_', '-')} {shlex.quote(value)}"
            for name in ("table", "mode", "schema", *(f"{m}_table" for m in MODES))
            if (value := getattr(args, name, None)) is not None
        ]
        return " ".join(["agno-orm", command, *flags])
    line = f"agno-orm {command} --db-url {shlex.quote(url)}"
    return f"{line}   (with your password in place of ***)" if hidden else line


@contextmanager
def _database_errors(location: Location) -> Iterator[None]:
    """Driver and Alembic errors of the schema commands, as our errors."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    where = location.sql_url().render_as_string(hide_password=True)
    try:
        yield
    except DBAPIError as exc:
        raise Failure(f"{where}: {exc.orig}") from exc
    except (SQLAlchemyError, CommandError) as exc:
        raise Failure(f"{where}: {exc}") from exc


# -- sessions -----------------------------------------------------------------------------------


def cmd_sessions_list(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location = _location(args, default_mode=True)
    with _opened(location) as storage_set:
        source = open_source(storage_set)
        (mode,) = source.modes()
        page = source.reader(mode).list_sessions(
            user_id=args.user,
            entity_id=args.entity,
            since=args.since,
            until=args.until,
            limit=args.limit,
            cursor=args.cursor,
        )
    if args.json:
        listing = {
            "mode": mode,
            "sessions": [summary.model_dump() for summary in page.items],
            "next_cursor": page.next_cursor,
        }
        print(json.dumps(listing, ensure_ascii=False), file=out)
        return EXIT_OK
    if not page.items:
        print(f"no {mode} sessions" + (" on this page" if args.cursor else ""), file=out)
        return EXIT_OK
    rows = [["ID", "USER", "ENTITY", "NAME", "CREATED (UTC)", "UPDATED (UTC)", "RUNS"]]
    rows += [_summary_row(summary) for summary in page.items]
    _table(rows, out)
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}", file=out)
    return EXIT_OK


def _summary_row(summary: SessionSummary) -> list[str]:
    return [
        summary.session_id,
        summary.user_id or "-",
        summary.entity_id or "-",
        _short(summary.session_name),
        _when(summary.created_at),
        _when(summary.updated_at),
        str(summary.run_count),
    ]


def cmd_sessions_show(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location = _location(args, default_mode=True)
    with _opened(location) as storage_set:
        source = open_source(storage_set)
        (mode,) = source.modes()
        session = source.read(mode, args.session_id)
    if session is None or (args.user is not None and session.user_id != args.user):
        whose = f" of user {args.user!r}" if args.user is not None else ""
        raise Failure(f"no {mode} session {args.session_id!r}{whose} in {location.display}", EXIT_NO)
    data = session.to_dict()
    if args.runs is not None:
        runs = split_runs(mode, data)
        if runs is not None:
            join_runs(mode, data, runs[len(runs) - args.runs :] if args.runs else [])
    if out.isatty() and not args.json:
        from rich.console import Console

        Console(file=out).print_json(data=data, ensure_ascii=False)
    else:
        print(json.dumps(data, indent=2, ensure_ascii=False), file=out)
    return EXIT_OK


# -- export, import, copy -----------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location = _location(args)
    with _opened(location) as storage_set:
        source = open_source(storage_set)
        to_stdout = args.output == "-"
        report = sys.stderr if to_stdout else out
        if to_stdout:
            written = export_sessions(source, out, progress=bars)
        else:
            with replaced_atomically(Path(args.output)) as file:
                written = export_sessions(source, file, progress=bars)
    counts = {mode: sum(1 for m, _, _ in written if m == mode) for mode in MODES}
    by_mode = ", ".join(f"{mode} {n}" for mode, n in counts.items() if n) or "none"
    print(
        f"exported {len(written)} sessions ({by_mode}) to {'stdout' if to_stdout else args.output}; "
        f"checksum {set_digest(written)}",
        file=report,
    )
    return EXIT_OK


def cmd_import(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    location = _location(args)
    path = Path(args.file)
    spooled = None
    if args.file == "-":  # the source is read by offset: stdin is spooled to a file first
        import tempfile

        spooled = tempfile.NamedTemporaryFile(prefix="agno-orm-import-", suffix=".jsonl", delete=False)  # noqa: SIM115
        with spooled:
            spooled.write(sys.stdin.buffer.read())
        path = Path(spooled.name)
    try:
        source = JsonLinesSource(path)
        try:
            with _opened(location) as storage_set:
                return _copy(source, storage_set, location.display, out, bars, args.jobs)
        finally:
            source.close()
    finally:
        if spooled is not None:
            os.unlink(spooled.name)


def cmd_copy(args: argparse.Namespace, out: IO[str], bars: Bars) -> int:
    source_location = parse_location(args.source)
    target_location = parse_location(args.target)
    with _opened(source_location) as source_set, _opened(target_location) as target_set:
        source = open_source(source_set)
        return _copy(source, target_set, target_location.display, out, bars, args.jobs)


def _copy(
    source: SessionSource, target_set: StorageSet, target: str, out: IO[str], bars: Bars, jobs: int
) -> int:
    targets = target_set.storages
    for storage in targets.values():  # a target that cannot be reached fails now, not at its first write
        try:
            missing_reason(storage)
        except StorageError as exc:
            raise Failure(f"{target}: {_one_line(exc)}") from exc
    ids = plan(source, targets)
    total = sum(map(len, ids.values()))
    by_mode = ", ".join(f"{mode} {len(found)}" for mode, found in ids.items()) or "none"
    print(f"copying {total} sessions ({by_mode})", file=out)
    print(f"  from {source.display}", file=out)
    print(f"  to   {target}", file=out)
    out.flush()
    stats = copy_sessions(source, targets, progress=bars, ids=ids, jobs=jobs)
    vanished = f", {stats.vanished} deleted from the source meanwhile" if stats.vanished else ""
    print(f"copied {stats.written}, skipped {stats.skipped} already identical{vanished}", file=out)
    verification = verify(targets, stats.expected, progress=bars, jobs=jobs)
    return _report(verification, out)


def _report(verification: Verification, out: IO[str]) -> int:
    print("verification (SHA-256 of each session's canonical JSON without updated_at):", file=out)
    rows = [["MODE", "SOURCE", "TARGET", "SOURCE CHECKSUM", "TARGET CHECKSUM", "RESULT"]]
    for check in verification.modes:
        result = "ok" if check.ok else f"{len(check.differing)} missing or different"
        if check.target_others:
            result += f" (the target holds {check.target_others} more)"
        rows.append(
            [
                check.mode,
                str(check.source_count),
                str(check.target_count),
                check.source_digest[:16],
                check.target_digest[:16],
                result,
            ]
        )
    _table(rows, out, indent=2)
    if verification.ok:
        print(f"verified: the target holds all {verification.source_count} sessions, identical", file=out)
        return EXIT_OK
    for check in verification.modes:
        for session_id in check.differing[:10]:
            print(f"  differs: {check.mode} {session_id}", file=out)
    differing = sum(len(check.differing) for check in verification.modes)
    print(
        f"verification failed: {differing} of {verification.source_count} sessions missing or different "
        "in the target",
        file=out,
    )
    return EXIT_NO


# -- main ---------------------------------------------------------------------------------------


class _Stopped(BaseException):
    """A termination signal arrived (raised in the main thread by the handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGINT: stop, once the session being copied is copied and counted."""
    if defer_signal(signum):
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Stopped(signum)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, IO[str], Bars], int] = args.handler
    bars = Bars(enabled=not getattr(args, "no_progress", False))
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return handler(args, sys.stdout, bars)
    except Failure as exc:
        print(f"agno-orm: error: {_one_line(exc)}", file=sys.stderr)
        return exc.status
    except (StorageError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # `agno-orm sessions list | head`
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # stdout is gone; print nothing more
            return EXIT_OK
        print(f"agno-orm: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyboardInterrupt, _Stopped) as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        bar = bars.last
        done = f" ({bar.label}: {bar.done} of {bar.total} sessions)" if bar is not None else ""
        if bar is not None:
            bar.close()
        resume = "; run the same command again to resume" if args.command in ("copy", "import") else ""
        print(f"agno-orm: stopped by {signal.Signals(signum).name}{done}{resume}", file=sys.stderr)
        return 128 + signum
    finally:
        bars.close()
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


def _main() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    _main()
