"""The run store: one SQLite file (WAL) that keeps everything a run paid for or decided.

Generations are global and keyed on the rendered request (see
:meth:`GenerationRequest.compute_key`), so any run of any preset reuses any answer already paid
for. Everything else (records, verdicts, examples) belongs to one run and is cheap to recompute.

Each generation is committed the moment it arrives (answers that land in the same event-loop
turn share one commit): a process killed at any point loses no completion that reached it.
When a commit fails (a full disk), the answers it carried stay held in memory
(:attr:`RunStore.broken` says why) until :meth:`RunStore.save_held` writes them once there is
room again; see :mod:`synthtune.core.store_guard`.
Derived rows are queued in memory and written in batches (see :meth:`RunStore.commit_answers`),
at the latest when the run finishes or anything reads the store; a killed run recomputes them
from the kept generations without paying again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from synthtune.core.errors import ConfigError, StoreError
from synthtune.core.models import GenerationOutcome, Record, TrainingExample

# A sample's text is NULL when it is its generation's text unchanged (no filter rewrote it),
# which is most samples: each answer is then stored once. Read it as SAMPLE_TEXT.
SAMPLES_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    record_id TEXT NOT NULL,
    kept INTEGER NOT NULL,
    text TEXT,
    PRIMARY KEY (run_id, seq)
);
"""
# The text of sample ``s`` in a query that has ``FROM samples s`` and SAMPLE_GENERATION.
SAMPLE_TEXT = "COALESCE(s.text, g.text)"
SAMPLE_GENERATION = " LEFT JOIN generations g ON g.key = s.key"

# The layout's version, kept in SQLite's ``user_version``. 0: samples.text NOT NULL; 1: NULL
# allowed (see SAMPLES_TABLE); 2: a request is kept with its answer (generations.request_json)
# or its failure, not in a table of its own; 3: the ``calls`` table (a record's chain steps:
# answers asked for with ``context.complete()``) and a verdict's ``score`` and ``data_json``.
# Older stores are migrated when opened.
SCHEMA_VERSION = 3

SCHEMA = (
    SAMPLES_TABLE.format(name="samples")
    + """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    preset TEXT NOT NULL,
    preset_json TEXT NOT NULL,
    out_dir TEXT,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    report_json TEXT
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    category TEXT,
    record_json TEXT NOT NULL,
    PRIMARY KEY (run_id, record_id)
);
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    finish_reason TEXT,
    model TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL,
    response_id TEXT,
    attempts INTEGER NOT NULL,
    run_id TEXT,
    created_at REAL NOT NULL,
    request_json TEXT
);
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    record_id TEXT,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    request_json TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS verdicts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    filter TEXT NOT NULL,
    kept INTEGER NOT NULL,
    reason TEXT,
    score REAL,
    data_json TEXT,
    PRIMARY KEY (run_id, seq, position)
);
CREATE TABLE IF NOT EXISTS calls (
    run_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step TEXT NOT NULL,
    PRIMARY KEY (run_id, record_id, key)
);
CREATE TABLE IF NOT EXISTS examples (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sub INTEGER NOT NULL,
    key TEXT NOT NULL,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    split TEXT NOT NULL,
    line_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq, sub)
);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""
)


def line_json(line: dict[str, Any]) -> str:
    """A dataset line as compact JSON (UTF-8 text unescaped). pydantic-core's encoder is about
    three times as fast as the json module's for these lines."""
    return to_json(line).decode()


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older synthtune to SCHEMA_VERSION (one transaction)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"made by a newer synthtune (layout {version}; this version reads up to "
                f"{SCHEMA_VERSION}): upgrade synthtune or use another --store"
            )
        if version < 1:
            columns = {row[1]: row[3] for row in conn.execute("PRAGMA table_info(samples)")}
            if columns.get("text"):  # text NOT NULL: rebuild the table without it
                conn.execute(SAMPLES_TABLE.format(name="samples_v1"))
                conn.execute("INSERT INTO samples_v1 SELECT * FROM samples")
                conn.execute("DROP TABLE samples")
                conn.execute("ALTER TABLE samples_v1 RENAME TO samples")
        if version < 2:
            for table in ("generations", "failures"):
                names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if "request_json" not in names:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN request_json TEXT")
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone():
                for table in ("generations", "failures"):
                    conn.execute(
                        f"UPDATE {table} SET request_json = (SELECT body_json FROM requests r"
                        f" WHERE r.key = {table}.key) WHERE request_json IS NULL"
                    )
                conn.execute("DROP TABLE requests")
        if version < 3:  # the calls table is made by SCHEMA; verdicts gain two columns
            names = {row[1] for row in conn.execute("PRAGMA table_info(verdicts)")}
            for column, kind in (("score", "REAL"), ("data_json", "TEXT")):
                if column not in names:
                    conn.execute(f"ALTER TABLE verdicts ADD COLUMN {column} {kind}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# Derived rows are written once this many are queued, or once the oldest has waited this long.
# Written in batches, each page of a table is rewritten about once per batch instead of once per
# commit (at zero latency the whole run's CPU per record fell by about 8%; see the commit).
DERIVED_BATCH_ROWS = 2048
DERIVED_MAX_AGE = 2.0  # seconds
# Non-durable key-value puts (RunContext.cache_put(..., durable=False)) are committed with the
# next commit of the store, or once this many (or this many bytes of values) have gathered or
# the oldest is this old: memory stays bounded and a kill loses at most that much.
KV_BATCH_ROWS = 1000
KV_BATCH_BYTES = 4_000_000
KV_MAX_AGE = 2.0  # seconds
KV_PUT = "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?)"


class RunStore:
    """A SQLite run store. One instance per process; not shared across threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: each statement outside an explicit transaction commits at once.
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed; only an OS crash can
            # lose the last transactions.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every 4,000 WAL pages (16 MB) rather than SQLite's 1,000: a page the
            # run rewrites often (an index page, a table's last page) is copied into the
            # database once per checkpoint, and each checkpoint syncs the disk.
            self._conn.execute("PRAGMA wal_autocheckpoint=4000")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.executescript(SCHEMA)
            _migrate(self._conn)
        except (ConfigError, sqlite3.Error, OSError) as error:
            if hasattr(self, "_conn"):
                self._conn.close()
            raise ConfigError(f"run store {self.path}: {error}") from None
        self._in_tx = False
        # Derived rows waiting to be written, by statement: written with one executemany per
        # statement when the transaction commits (or before anything reads through ``db``).
        self._queued: dict[str, list[tuple[Any, ...]]] = {}
        self._queued_rows = 0
        self._queued_since = 0.0
        # (run_id, key) of failures this instance wrote: a later success deletes only those
        # (a run's ids are its own, so no other process writes failures under them).
        self._failed: set[tuple[str, str]] = set()
        # Key-value puts made with durable=False, not yet written: (namespace, key) -> (value, time).
        self._kv_pending: dict[tuple[str, str], tuple[str, float]] = {}
        self._kv_since = 0.0
        self._kv_bytes = 0
        # Answer rows (statement, parameters) written since the last commit that succeeded:
        # when a commit fails they are all that is left of answers already paid for.
        self._unsaved: list[tuple[str, tuple[Any, ...]]] = []
        self.broken: StoreError | None = None  # set when a write failed; answers are held

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, with every queued derived row written first (not yet committed), so
        whatever reads or writes through it sees the run as it stands."""
        self._write_queued()
        return self._conn

    def close(self) -> None:
        try:
            self.flush()
        except StoreError:
            pass  # held answers are the caller's to save first (save_held); closing must not raise
        self._conn.close()

    @property
    def held(self) -> int:
        """Answers (and failures) written since the last successful commit."""
        return len(self._unsaved)

    def _break(self, error: sqlite3.Error | OSError) -> StoreError:
        """A write failed: roll back (SQLite may have done it already), drop the queued derived
        rows (they are recomputed on the next run) and keep the answer rows held."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._in_tx = False
        self._queued.clear()
        self._queued_rows = 0
        self.broken = StoreError(f"run store {self.path}: {error}")
        return self.broken

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._break(error) from None
        finally:
            self._in_tx = False
        self._unsaved.clear()

    def save_held(self) -> int:
        """Write the held answer rows again and commit them; returns how many were saved.
        Raises StoreError (rows still held) when the store still cannot take them."""
        count = len(self._unsaved)
        if not count and self.broken is None:
            return 0
        try:
            self._conn.execute("BEGIN")
            self._in_tx = True
            for sql, row in self._unsaved:
                self._conn.execute(sql, row)
        except sqlite3.Error as error:
            raise self._break(error) from None
        self._commit()
        self.broken = None
        return count

    # -- transactions for derived rows -----------------------------------------------------------

    def _begin(self) -> None:
        if not self._in_tx:
            self._conn.execute("BEGIN")
            self._in_tx = True

    def queue(self, sql: str, row: tuple[Any, ...]) -> None:
        """Write a derived row (one that can be recomputed from the source and the generations)
        with the next commit. Rows of one statement are written together with ``executemany``:
        per row that costs a fraction of an ``execute``, which matters at thousands of rows a
        second."""
        rows = self._queued.get(sql)
        if rows is None:
            rows = self._queued[sql] = []
        if not self._queued_rows:
            self._queued_since = time.monotonic()
        rows.append(row)
        self._queued_rows += 1

    def _write_queued(self) -> None:
        if self._queued:
            self._begin()
            for sql, rows in self._queued.items():
                self._conn.executemany(sql, rows)
            self._queued.clear()
            self._queued_rows = 0
        self._write_kv_pending()

    def _write_kv_pending(self) -> None:
        if self._kv_pending:
            self._begin()
            rows = [(ns, key, value, at) for (ns, key), (value, at) in self._kv_pending.items()]
            self._conn.executemany(KV_PUT, rows)
            self._kv_pending.clear()

    def flush(self) -> None:
        """Write every queued derived row and commit (StoreError when that fails)."""
        if self.broken is not None:
            raise self.broken
        try:
            self._write_queued()
        except sqlite3.Error as error:
            raise self._break(error) from None
        if self._in_tx:
            self._commit()

    def commit_answers(self) -> None:
        """Commit the answers written since the last commit (see :meth:`put_outcome`), with the
        queued derived rows when a batch of them is due (:data:`DERIVED_BATCH_ROWS`,
        :data:`DERIVED_MAX_AGE`); otherwise those wait for a later commit."""
        if self.broken is not None:
            return  # answers are held; the caller sees ``broken`` and stops
        try:
            if self._queued_rows >= DERIVED_BATCH_ROWS or (
                self._queued_rows and time.monotonic() - self._queued_since >= DERIVED_MAX_AGE
            ):
                self._write_queued()
            self._write_kv_pending()  # cache entries are cheap to add to a commit that happens anyway
            if self._in_tx:
                self._commit()
        except (sqlite3.Error, StoreError) as error:
            if self.broken is None:
                self._break(error if isinstance(error, sqlite3.Error) else sqlite3.Error(str(error)))

    # -- runs --------------------------------------------------------------------------------------

    def start_run(self, preset: str, preset_json: dict[str, Any], out_dir: Path) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.flush()
        self.db.execute(
            "INSERT INTO runs (id, preset, preset_json, out_dir, status, started_at)"
            " VALUES (?, ?, ?, ?, 'running', ?)",
            (run_id, preset, json.dumps(preset_json), str(out_dir), time.time()),
        )
        return run_id

    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        self.flush()
        self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ?, report_json = ? WHERE id = ?",
            (status, time.time(), json.dumps(report), run_id),
        )

    def run_info(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, preset, out_dir, status, started_at, finished_at, report_json FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "preset", "out_dir", "status", "started_at", "finished_at", "report")
        info = dict(zip(keys, row, strict=True))
        info["report"] = json.loads(info["report"]) if info["report"] else None
        return info

    def runs(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY started_at")]
        return [info for i in ids if (info := self.run_info(i)) is not None]

    # -- records -------------------------------------------------------------------

    def put_record(self, run_id: str, seq: int, record: Record) -> None:
        self.queue(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
            (run_id, record.id, seq, record.category, record.model_dump_json()),
        )

    # -- generations: committed one by one -------------------------------------------------------

    def known_generations(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` have an answer in the store (one query; at most 500 keys)."""
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        rows = self._conn.execute(f"SELECT key FROM generations WHERE key IN ({marks})", keys)
        return {row[0] for row in rows}

    def get_generation(self, key: str) -> GenerationOutcome | None:
        row = self._conn.execute(
            "SELECT text, finish_reason, model, prompt_tokens, completion_tokens, cost,"
            " response_id, attempts FROM generations WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        text, finish, model, pt, ct, cost, rid, attempts = row
        return GenerationOutcome(
            key=key,
            text=text,
            finish_reason=finish,
            model=model,
            usage={"prompt_tokens": pt, "completion_tokens": ct},
            cost=cost,
            response_id=rid,
            attempts=attempts,
        )

    def put_outcome(
        self,
        run_id: str,
        outcome: GenerationOutcome,
        record_id: str | None,
        *,
        request_json: str | None = None,
        commit: bool = True,
    ) -> None:
        """Commit an answer (or a failure) now, with the request it answers (``request_json``,
        the :class:`GenerationRequest` as JSON), together with any pending derived rows.

        ``commit=False`` leaves the transaction open for the caller to :meth:`commit_answers`
        very soon: the pipeline commits once per event-loop turn, so answers that arrive
        together share one commit (a commit per answer costs more CPU than the rest of the
        record's work)."""
        now = time.time()
        rows: list[tuple[str, tuple[Any, ...]]] = []
        if outcome.ok:
            rows.append(
                (
                    "INSERT OR REPLACE INTO generations (key, text, finish_reason, model, prompt_tokens,"
                    " completion_tokens, cost, response_id, attempts, run_id, created_at, request_json)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        outcome.key,
                        outcome.text,
                        outcome.finish_reason,
                        outcome.model,
                        outcome.usage.prompt_tokens,
                        outcome.usage.completion_tokens,
                        outcome.cost,
                        outcome.response_id,
                        outcome.attempts,
                        run_id,
                        now,
                        request_json,
                    ),
                )
            )
            if (run_id, outcome.key) in self._failed:
                self._failed.discard((run_id, outcome.key))
                rows.append(("DELETE FROM failures WHERE run_id = ? AND key = ?", (run_id, outcome.key)))
        else:
            self._failed.add((run_id, outcome.key))
            rows.append(
                (
                    "INSERT OR REPLACE INTO failures (run_id, key, record_id, error, attempts, created_at,"
                    " request_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        outcome.key,
                        record_id,
                        outcome.error or "no answer",
                        outcome.attempts,
                        now,
                        request_json,
                    ),
                )
            )
        # Held before they are written: if the write or its commit fails, they are still here.
        self._unsaved.extend(rows)
        if self.broken is not None:
            return
        try:
            self._begin()
            for sql, row in rows:
                self._conn.execute(sql, row)
        except sqlite3.Error as error:
            self._break(error)
            return
        if commit:
            self.flush()

    def failures(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT key, record_id, error, attempts FROM failures WHERE run_id = ? ORDER BY created_at",
            (run_id,),
        )
        return [dict(zip(("key", "record_id", "error", "attempts"), r, strict=True)) for r in rows]

    # -- verdicts and examples ----------------------------------------------------------------------

    def put_sample(
        self,
        run_id: str,
        seq: int,
        key: str,
        record_id: str,
        verdicts: list[tuple[Any, ...]],
        text: str | None,
    ) -> None:
        """The verdicts on sample ``seq`` and its text after the filters: ``None`` when that is
        the generation's text unchanged (read it back as :data:`SAMPLE_TEXT`). A verdict is
        ``(filter, kept, reason)`` or ``(filter, kept, reason, score, data_json)``."""
        kept = all(v[1] for v in verdicts)
        self.queue(
            "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, seq, key, record_id, int(kept), text),
        )
        for i, verdict in enumerate(verdicts):
            name, verdict_kept, reason = verdict[:3]
            score, data = verdict[3:5] if len(verdict) >= 5 else (None, None)
            self.queue(
                "INSERT OR REPLACE INTO verdicts (run_id, seq, position, filter, kept, reason, score,"
                " data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, seq, i, name, int(verdict_kept), reason, score, data),
            )

    def put_call(self, run_id: str, record_id: str | None, key: str, step: str) -> None:
        """Note that record ``record_id`` used the answer ``key`` as chain step ``step`` (a
        ``context.complete()`` call): lineage and the dataset's cost count it."""
        self.queue("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?)", (run_id, record_id or "", key, step))

    def calls(self, run_id: str, record_id: str) -> list[dict[str, Any]]:
        """The chain steps record ``record_id`` used in run ``run_id``, with their answers."""
        rows = self.db.execute(
            "SELECT c.step, c.key, g.text, g.request_json FROM calls c"
            " LEFT JOIN generations g ON g.key = c.key"
            " WHERE c.run_id = ? AND c.record_id = ? ORDER BY g.created_at",
            (run_id, record_id),
        )
        return [
            {"step": step, "key": key, "text": text, "request": json.loads(req) if req else None}
            for step, key, text, req in rows
        ]

    def put_example(
        self,
        run_id: str,
        seq: int,
        sub: int,
        key: str,
        record_id: str,
        example: TrainingExample,
        split: str,
    ) -> None:
        self.queue(
            "INSERT OR REPLACE INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, seq, sub, key, record_id, example.kind, split, line_json(example.line)),
        )

    def iter_examples(self, run_id: str, split: str) -> Iterator[str]:
        """The dataset lines of one split, in source order, as JSON text. Examples of samples
        rejected after the run (``tune review``) are left out; their rows stay in the store."""
        self.flush()
        yield from (
            row[0]
            for row in self.db.execute(
                "SELECT e.line_json FROM examples e"
                " JOIN samples s ON s.run_id = e.run_id AND s.seq = e.seq"
                " WHERE e.run_id = ? AND e.split = ? AND s.kept = 1 ORDER BY e.seq, e.sub",
                (run_id, split),
            )
        )

    def iter_rejected(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Dropped samples in source order, with the filter that dropped them and why."""
        self.flush()
        rows = self.db.execute(
            f"SELECT s.seq, s.record_id, s.key, v.filter, v.reason, {SAMPLE_TEXT}, v.score"
            " FROM samples s JOIN verdicts v ON v.run_id = s.run_id AND v.seq = s.seq"
            f"{SAMPLE_GENERATION} WHERE s.run_id = ? AND v.kept = 0 ORDER BY s.seq",
            (run_id,),
        )
        for seq, record_id, key, flt, reason, text, score in rows:
            line = {
                "record_id": record_id,
                "request_key": key,
                "filter": flt,
                "reason": reason,
                "text": text,
                "seq": seq,
            }
            if score is not None:
                line["score"] = score
            yield line

    def lineage(self, run_id: str, seq: int) -> dict[str, Any] | None:
        """Where one sample came from: its record, request, generation and verdicts."""
        self.flush()
        row = self.db.execute(
            "SELECT key, record_id, kept FROM samples WHERE run_id = ? AND seq = ?", (run_id, seq)
        ).fetchone()
        if row is None:
            return None
        key, record_id, kept = row
        record = self.db.execute(
            "SELECT record_json FROM records WHERE run_id = ? AND record_id = ?",
            (run_id, record_id),
        ).fetchone()
        request = self.db.execute("SELECT request_json FROM generations WHERE key = ?", (key,)).fetchone()
        generation = self.get_generation(key)
        verdicts = self.db.execute(
            "SELECT filter, kept, reason, score, data_json FROM verdicts WHERE run_id = ? AND seq = ?"
            " ORDER BY position",
            (run_id, seq),
        ).fetchall()
        return {
            "record": json.loads(record[0]) if record else None,
            "request": json.loads(request[0]) if request and request[0] else None,
            "generation": generation.model_dump() if generation else None,
            "verdicts": [
                {"filter": f, "kept": bool(k), "reason": r, "score": sc, "data": json.loads(d) if d else {}}
                for f, k, r, sc, d in verdicts
            ],
            "kept": bool(kept),
            "calls": self.calls(run_id, record_id),
        }

    # -- key-value state for plugins ----------------------------------------------------------------

    def kv_get(self, namespace: str, key: str) -> str | None:
        pending = self._kv_pending.get((namespace, key))
        if pending is not None:
            return pending[0]
        row = self._conn.execute(
            "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return row[0] if row else None

    def kv_put(self, namespace: str, key: str, value: str, *, durable: bool = True) -> None:
        """Store ``value`` under (``namespace``, ``key``).

        ``durable=True`` (the default) commits before returning: plugin state such as batch and
        job ids must survive a kill. ``durable=False`` is for what can be fetched again (raw
        downloads): the value is readable at once and committed with the store's next commit
        (the pipeline commits every event-loop turn that brings answers), at the latest once
        :data:`KV_BATCH_ROWS` puts (:data:`KV_BATCH_BYTES` of values) or :data:`KV_MAX_AGE`
        seconds have gathered, so thousands of puts share a few commits. A kill loses at most
        those uncommitted puts.
        """
        if durable:
            self._kv_pending.pop((namespace, key), None)
            self.flush()
            self._conn.execute(KV_PUT, (namespace, key, value, time.time()))
            return
        if not self._kv_pending:
            self._kv_since = time.monotonic()
            self._kv_bytes = 0
        self._kv_pending[(namespace, key)] = (value, time.time())
        self._kv_bytes += len(value)
        if (
            len(self._kv_pending) >= KV_BATCH_ROWS
            or self._kv_bytes >= KV_BATCH_BYTES
            or time.monotonic() - self._kv_since >= KV_MAX_AGE
        ):
            self.flush()

    def kv_items(self, namespace: str, prefix: str = "") -> list[tuple[str, str]]:
        """Every (key, value) of ``namespace`` whose key starts with ``prefix``, oldest first."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.execute(
            "SELECT key, value FROM kv WHERE namespace = ? AND key LIKE ? ESCAPE '\\' ORDER BY updated_at",
            (namespace, escaped + "%"),
        )
        return [(key, value) for key, value in rows if key.startswith(prefix)]
