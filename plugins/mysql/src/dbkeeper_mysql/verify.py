"""Deep verification: read a whole backup and count the rows its INSERTs hold.

Every artifact is read to its verified end; each table's rows are counted from its
INSERT statements (so the core can compare them with the manifest), and each INSERT must
belong to the artifact's table. The dump must also end where ``mariadb-dump`` ends it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dbkeeper.plugin import CHUNK_SIZE, ArtifactReader, BackupContents, InspectRequest
from dbkeeper_mysql.layout import Layout
from dbkeeper_mysql.sqltext import Event, ScriptScanner, shown

COMPLETED = b"-- Dump completed"


def count_rows(reader: ArtifactReader, table: str) -> tuple[int, list[str]]:
    """The rows of *table*'s INSERTs in *reader*, and any problem found on the way."""
    rows = 0
    problems: list[str] = []
    scanner = ScriptScanner()

    foreign = False

    def take(events: Iterable[Event]) -> None:
        nonlocal rows, foreign
        for event in events:
            if event.kind == "head":
                foreign = event.table != table
                if foreign:
                    problems.append(f"table {shown(table)}: its part holds rows of table {shown(event.table)}")
            elif event.kind == "end" and not foreign:
                rows += event.rows

    while chunk := reader.read(CHUNK_SIZE):
        take(scanner.feed(chunk))
    take(scanner.end())
    if scanner.in_insert:
        problems.append(f"table {shown(table)}: the part ends inside an INSERT")
    return rows, problems


def _last_line(reader: ArtifactReader) -> bytes:
    last = b""
    while data := reader.read(CHUNK_SIZE):
        last = (last + data)[-4096:]
    return last.rstrip().rsplit(b"\n", 1)[-1]


def inspect(request: InspectRequest) -> BackupContents:
    """Read every artifact of the backup; count rows per table."""
    layout = Layout.from_details(request.backup.details, request.backup.id)
    problems: list[str] = []
    counts: dict[str, int] = {}
    known = {layout.header, layout.objects}
    with request.artifacts.open(layout.header) as reader:
        _last_line(reader)
    for part in layout.tables:
        known.add(part.data)
        with request.artifacts.open(part.data) as reader:
            rows, found = count_rows(reader, part.name)
        problems += found
        if not part.sequence:
            counts[part.name] = rows
        if part.triggers:
            known.add(part.triggers)
            with request.artifacts.open(part.triggers) as reader:
                _last_line(reader)
    with request.artifacts.open(layout.objects) as reader:
        if not _last_line(reader).startswith(COMPLETED):
            problems.append("the dump does not end with '-- Dump completed': it was cut short")
    unknown = [name for name in request.artifacts.names() if name not in known]
    problems += [f"artifact {name} is not in the backup's layout" for name in unknown]
    return BackupContents(row_counts=counts, problems=problems)
