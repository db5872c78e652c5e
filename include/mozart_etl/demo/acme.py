"""The `acme` tenant's MES source: a MariaDB database with its own names.

Same plant shapes as the demo (the lot and equipment simulation of
`generate.py`), but the schema an MES vendor of acme's would write: other table
and column names with Korean comments, other status and event codes, a
`use_yn` flag instead of a boolean, and instants as `DATETIME(6)` holding the
plant's wall-clock time (America/New_York, naive: no zone, no offset), as many
legacy MES do; tenant.yaml declares the zone (`source.timezone`). The plant
runs on America/New_York with production days starting 06:00, and the history
spans the end of daylight saving time (2026-11-01), so production day
2026-10-31 is 25 hours long.

Naive wall time cannot tell apart the two passes of the hour repeated when
clocks fall back (2026-11-01 01:00-02:00: first EDT, then EST); read back, such
a wall time means its first pass (fold=0), which is how the pipeline reads it.
So that every stamp it writes means one instant, this MES records a change made
during the second pass at the end of that pass, 02:00 EST (`mes_clock`): the
simulation is cut to that clock once, so order and durations stay consistent
(an event spanning the hour keeps it; nothing starts or ends inside it).

`write_acme_source(..., as_of=T)` writes the source as the MES showed it at the
instant T: visits and events not yet begun are absent, those in progress have
no end yet, plan runs not yet created are absent. Tests run the DAG day by
day, each against the source as of that day's end, as a plant's nightly run
would see it.

    python -m mozart_etl.demo.acme --database acme_mes [--as-of-day 2026-11-02]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
from pydantic import BaseModel

from mozart_etl.demo import acme_master
from mozart_etl.demo.generate import (
    _GROUP_LAYOUT,
    _Equipment,
    _LotSimulator,
    _machine_events,
    _make_equipment,
    _make_routes,
    _RouteStep,
    _Visit,
)

log = logging.getLogger(__name__)

ACME_TZ = "America/New_York"
_ZONE = ZoneInfo(ACME_TZ)
ACME_DAY_START_HOUR = 6
ACME_FIRST_DAY = date(2026, 10, 28)
ACME_LAST_DAY = date(2026, 11, 2)
ACME_DST_DAY = date(2026, 10, 31)
"""[10-31 06:00 EDT, 11-01 06:00 EST): 25 hours."""
ACME_SEED = 20261031
LOTS_PER_DAY = 30

STATUS_CODES = {"WAIT": "WAIT", "RUN": "RUN", "DONE": "END", "HOLD": "HOLD"}
STATUS_CODES["SCRAP"] = "SCRP"
EVENT_CODES = {"RUN": "PROD", "IDLE": "IDLE", "DOWN": "BM", "PM": "PM"}

DDL = {
    "tb_eqp": """CREATE TABLE tb_eqp (
        eqp_id VARCHAR(20) NOT NULL COMMENT '설비 ID',
        eqp_grp VARCHAR(20) NOT NULL COMMENT '설비 그룹 (병렬 설비)',
        oper_id VARCHAR(20) NOT NULL COMMENT '공정 ID',
        capa_hr DECIMAL(10,2) NULL COMMENT '시간당 처리 능력',
        use_yn CHAR(1) NOT NULL COMMENT '사용 여부 (Y/N)',
        PRIMARY KEY (eqp_id)) COMMENT '설비 마스터'""",
    "tb_route": """CREATE TABLE tb_route (
        prod_id VARCHAR(20) NOT NULL COMMENT '제품 ID',
        oper_seq INT NOT NULL COMMENT '공정 순서',
        oper_id VARCHAR(20) NOT NULL COMMENT '공정 ID',
        std_min DECIMAL(8,2) NULL COMMENT '표준 가공 시간 (분)',
        PRIMARY KEY (prod_id, oper_seq)) COMMENT '제품 라우트'""",
    "tb_lot_hist": """CREATE TABLE tb_lot_hist (
        lot_no VARCHAR(20) NOT NULL COMMENT '로트 번호',
        oper_seq INT NOT NULL COMMENT '공정 순서',
        prod_id VARCHAR(20) NOT NULL COMMENT '제품 ID',
        oper_id VARCHAR(20) NOT NULL COMMENT '공정 ID',
        eqp_id VARCHAR(20) NULL COMMENT '설비 ID (대기 중에는 없음)',
        in_qty INT NOT NULL COMMENT '투입 수량',
        out_qty INT NULL COMMENT '산출 수량 (폐기 시 0)',
        lot_stat VARCHAR(4) NOT NULL COMMENT '상태 WAIT/RUN/END/HOLD/SCRP',
        arr_dt DATETIME(6) NOT NULL COMMENT '도착 일시 (뉴욕 현지 시각)',
        tkin_dt DATETIME(6) NULL COMMENT '투입 일시',
        tkout_dt DATETIME(6) NULL COMMENT '완료 일시',
        upd_dt DATETIME(6) NOT NULL COMMENT '최종 변경 일시',
        PRIMARY KEY (lot_no, oper_seq), KEY ix_upd (upd_dt)) COMMENT '로트 이력'""",
    "tb_eqp_evt": """CREATE TABLE tb_eqp_evt (
        evt_no BIGINT NOT NULL COMMENT '이벤트 번호',
        eqp_id VARCHAR(20) NOT NULL COMMENT '설비 ID',
        evt_cd VARCHAR(4) NOT NULL COMMENT '이벤트 PROD/IDLE/BM/PM',
        st_dt DATETIME(6) NOT NULL COMMENT '시작 일시',
        ed_dt DATETIME(6) NULL COMMENT '종료 일시 (진행 중에는 없음)',
        upd_dt DATETIME(6) NOT NULL COMMENT '최종 변경 일시',
        PRIMARY KEY (evt_no), KEY ix_upd (upd_dt)) COMMENT '설비 이벤트'""",
    "tb_insp_rslt": """CREATE TABLE tb_insp_rslt (
        rslt_no BIGINT NOT NULL COMMENT '결과 번호',
        lot_no VARCHAR(20) NOT NULL COMMENT '로트 번호',
        oper_id VARCHAR(20) NOT NULL COMMENT '공정 ID',
        eqp_id VARCHAR(20) NULL COMMENT '설비 ID',
        meas_dt DATETIME(6) NOT NULL COMMENT '측정 일시',
        good_qty INT NULL COMMENT '양품 수량',
        bad_qty INT NULL COMMENT '불량 수량',
        bad_cd VARCHAR(20) NULL COMMENT '불량 코드',
        rmk VARCHAR(200) NULL COMMENT '비고',
        PRIMARY KEY (rslt_no)) COMMENT '검사 결과'""",
    "tb_plan": """CREATE TABLE tb_plan (
        plan_id VARCHAR(30) NOT NULL COMMENT '계획 실행 ID (불변)',
        line_seq INT NOT NULL COMMENT '계획 라인 순번',
        plan_dt DATE NOT NULL COMMENT '계획 생산일',
        prod_id VARCHAR(20) NOT NULL COMMENT '제품 ID',
        oper_id VARCHAR(20) NOT NULL COMMENT '공정 ID',
        eqp_id VARCHAR(20) NULL COMMENT '설비 ID',
        plan_qty INT NOT NULL COMMENT '계획 수량',
        plan_st_dt DATETIME(6) NULL COMMENT '계획 시작 일시',
        plan_ed_dt DATETIME(6) NULL COMMENT '계획 종료 일시',
        crt_dt DATETIME(6) NOT NULL COMMENT '계획 생성 일시',
        PRIMARY KEY (plan_id, line_seq)) COMMENT '생산 계획 (계획 실행별 스냅샷)'""",
}
DDL.update(acme_master.DDL)  # APS master data: items, BOM, demand (acme_master.py)
_HOUR = 3600
_REMARKS = ("재작업 필요", "표면 스크래치", "파티클 검출", "정상")


class AcmeSummary(BaseModel):
    """What `write_acme_source` wrote."""

    database: str
    as_of: datetime
    rows: dict[str, int]
    bad_lot_keys: list[tuple[str, int]]
    """(lot_no, oper_seq) of the rows planted to break an MES invariant."""


def production_day_bounds(day: date) -> tuple[datetime, datetime]:
    """Acme's production day `day` as UTC instants [start, end)."""
    start = datetime.combine(day, time(ACME_DAY_START_HOUR), tzinfo=_ZONE)
    end = datetime.combine(
        day + timedelta(days=1), time(ACME_DAY_START_HOUR), tzinfo=_ZONE
    )
    return start.astimezone(UTC), end.astimezone(UTC)


# --- the MES clock: naive New York wall time --------------------------------


def wall_time(instant: datetime) -> datetime:
    """What the MES writes for an (aware) instant: naive New York wall time."""
    return instant.astimezone(_ZONE).replace(tzinfo=None)


def _names_one_instant(instant: datetime) -> bool:
    """Whether the instant's wall time, read back as its first pass (fold=0),
    is the instant itself: false only during the second pass of a repeated
    hour."""
    local = instant.astimezone(_ZONE)
    return local.replace(fold=0).astimezone(UTC) == instant


def mes_clock(instant: datetime) -> datetime:
    """The instant the MES records a change made at `instant` (aware, UTC):
    itself, or the end of the repeated hour's second pass when made during it
    (the first whole minute whose wall time means one instant)."""
    while not _names_one_instant(instant):
        instant = instant.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return instant.astimezone(UTC)


def _mes_seconds(seconds: int) -> int:
    """`mes_clock` on epoch seconds, the simulation's time."""
    return int(mes_clock(datetime.fromtimestamp(seconds, UTC)).timestamp())


HISTORY_START = production_day_bounds(ACME_FIRST_DAY)[0]
HISTORY_END = production_day_bounds(ACME_LAST_DAY)[1]


@dataclass(frozen=True)
class _Plant:
    """The whole history, simulated once; `as_of` cuts it at an instant."""

    equipment: list[_Equipment]
    routes: dict[str, list[_RouteStep]]
    lots: list[tuple[str, list[_Visit]]]
    events: list[tuple[int, str, str, int | None]]
    plans: list[tuple[object, ...]]
    bad_keys: list[tuple[tuple[str, int], int]]
    """Each planted break's (lot_no, oper_seq) and the instant it shows from."""


def simulate(seed: int = ACME_SEED, scale: float = 1.0) -> _Plant:
    """The plant's whole history, its instants on the MES clock (`mes_clock`)."""
    masters = random.Random(f"{seed}:masters")
    equipment = _make_equipment(masters)
    routes = _make_routes(masters)
    start, end = int(HISTORY_START.timestamp()), int(HISTORY_END.timestamp())
    rng = random.Random(f"{seed}:lots")
    simulator = _LotSimulator(rng, routes, equipment, end)
    products = sorted(routes)
    days = (ACME_LAST_DAY - ACME_FIRST_DAY).days + 1
    starts = sorted(
        rng.randrange(start, end) for _ in range(round(LOTS_PER_DAY * days * scale))
    )
    lots = [
        (
            f"AL{number:07d}",
            simulator.lot(rng.choice(products), arrived, rng.randint(20, 25)),
        )
        for number, arrived in enumerate(starts, 1)
    ]
    for _, visits in lots:
        for visit in visits:
            _visit_on_mes_clock(visit)
    events_rng = random.Random(f"{seed}:events")
    events: list[tuple[int, str, str, int | None]] = []
    for eq in equipment:
        stop = end if eq.active else start + events_rng.randint(2, 20) * _HOUR
        events.extend(_machine_events(events_rng, eq, start - 3 * _HOUR, stop))
    events = [_event_on_mes_clock(event) for event in events]
    events.sort(key=lambda event: (event[0], event[1]))
    bad_keys = _plant_bad_rows(lots)
    plans = _plans(random.Random(f"{seed}:plans"), routes, equipment, scale)
    return _Plant(equipment, routes, lots, events, plans, bad_keys)


_VISIT_INSTANTS = ("arrived", "track_in", "track_out", "hold_at", "release_at")
"""The `_Visit` fields holding instants (those it has: generate.py's grow)."""


def _visit_on_mes_clock(visit: _Visit) -> None:
    for name in _VISIT_INSTANTS:
        value = getattr(visit, name, None)
        if value is not None:
            setattr(visit, name, _mes_seconds(value))


def _event_on_mes_clock(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """(began, equipment_id, kind, ended, …) with began and ended recorded."""
    began, equipment_id, kind, ended, *rest = event
    ended = None if ended is None else _mes_seconds(ended)
    return (_mes_seconds(began), equipment_id, kind, ended, *rest)


def _plant_bad_rows(
    lots: list[tuple[str, list[_Visit]]],
) -> list[tuple[tuple[str, int], int]]:
    """Three broken visits on the DST day, in otherwise normal finished lots:
    a next step arriving before the previous track-out (route order), a HOLD
    visit with a track-out (status vs timestamps), qty_out above qty_in."""
    day_start, day_end = (
        int(t.timestamp()) for t in production_day_bounds(ACME_DST_DAY)
    )
    keys: list[tuple[tuple[str, int], int]] = []
    breaks = ["route_order", "hold_with_track_out", "qty_out_gt_qty_in"]
    for lot_no, visits in lots:
        if not breaks:
            break
        if any(v.status in ("HOLD", "SCRAP") for v in visits) or len(visits) < 3:
            continue
        visit, previous = visits[1], visits[0]
        if visit.arrived - 30 * 60 < day_start:
            continue  # the whole broken visit lies in the day: no earlier state
        if not (
            visit.status == "DONE"
            and visit.track_out
            and day_start <= visit.track_out < day_end - 2 * _HOUR
        ):
            continue
        how, shows = breaks[0], visit.track_out
        if how == "route_order":
            assert previous.track_out is not None
            shows = previous.track_out - 20 * 60
            if _mes_seconds(shows) != shows:
                continue  # the MES could not record that arrival (repeated hour)
            visit.arrived = shows
        elif how == "hold_with_track_out":
            visit.status = "HOLD"
        else:
            visit.qty_out = visit.qty_in + 2
        breaks.pop(0)
        keys.append(((lot_no, visit.step.step_seq), shows))
    if breaks:
        raise ValueError(f"no visit left to break for {breaks}")
    return keys


def _plans(
    rng: random.Random,
    routes: dict[str, list[_RouteStep]],
    equipment: Sequence[_Equipment],
    scale: float,
) -> list[tuple[object, ...]]:
    """One or two plan runs per production day: the first the evening before,
    a re-plan at 07:00 local on the day (the later one wins)."""
    pools = {
        step_id: [
            eq.equipment_id for eq in equipment if eq.step_id == step_id and eq.active
        ]
        for step_id, *_ in _GROUP_LAYOUT
    }
    rows: list[tuple[object, ...]] = []
    day = ACME_FIRST_DAY
    while day <= ACME_LAST_DAY:
        start, _ = production_day_bounds(day)
        runs = 2 if day == ACME_DST_DAY or rng.random() < 0.5 else 1
        for run_no in range(1, runs + 1):
            created = mes_clock(
                start
                + timedelta(hours=-12 if run_no == 1 else 1, minutes=rng.randint(0, 50))
            )
            plan_id = f"ACM-{day:%Y%m%d}-{run_no:02d}"
            line = 0
            for product_id, route in sorted(routes.items()):
                for step_id in sorted({step.step_id for step in route}):
                    if rng.random() < 0.2:
                        continue
                    line += 1
                    qty = round(LOTS_PER_DAY * scale * 5 * rng.uniform(0.6, 1.4))
                    planned_start = mes_clock(
                        start + timedelta(hours=rng.randint(0, 6))
                    )
                    equipment_id = rng.choice(pools[step_id])
                    planned_end = mes_clock(
                        planned_start + timedelta(hours=rng.randint(8, 16))
                    )
                    rows.append(
                        (
                            plan_id,
                            line,
                            day,
                            product_id,
                            step_id,
                            equipment_id,
                            qty,
                            planned_start,
                            planned_end,
                            created,
                        )
                    )
        day += timedelta(days=1)
    return rows


# --- the source as of an instant -------------------------------------------


def _utc(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


_LotHistoryRow = tuple[
    str,
    int,
    str,
    str,
    str | None,
    int,
    int | None,
    str,
    datetime | None,
    datetime | None,
    datetime | None,
    datetime | None,
]
"""A TB_LOT_HIST row: lot, step, product, equipment, quantities, state, instants."""


def _visit_as_of(lot_no: str, visit: _Visit, cut: int) -> _LotHistoryRow | None:
    """The visit's row as the MES showed it at `cut` (None: not arrived yet)."""
    if visit.arrived >= cut:
        return None
    status, qty_out = visit.status, visit.qty_out
    track_in = (
        visit.track_in if visit.track_in is not None and visit.track_in < cut else None
    )
    track_out = (
        visit.track_out
        if visit.track_out is not None and visit.track_out < cut
        else None
    )
    equipment_id = visit.equipment_id if track_in is not None else None
    if visit.track_out is not None and track_out is None and status != "HOLD":
        status, qty_out = ("RUN", None) if track_in is not None else ("WAIT", None)
    if status == "RUN" and track_in is None:
        status = "WAIT"
    if status == "HOLD" and visit.track_out is not None and track_out is None:
        qty_out = None
    updated = max(t for t in (visit.arrived, track_in, track_out) if t is not None)
    return (
        lot_no,
        visit.step.step_seq,
        visit.step.product_id,
        visit.step.step_id,
        equipment_id,
        visit.qty_in,
        qty_out,
        STATUS_CODES[status],
        _utc(visit.arrived),
        _utc(track_in),
        _utc(track_out),
        _utc(updated),
    )


def _rows_as_of(plant: _Plant, cut: int) -> dict[str, list[tuple[object, ...]]]:
    """Every table at `cut`, instants as aware UTC datetimes (`_as_stored`
    turns them into the wall time the MES writes)."""
    history: list[tuple[object, ...]] = []
    results: list[tuple[object, ...]] = []
    for lot_no, visits in plant.lots:
        for visit in visits:
            row = _visit_as_of(lot_no, visit, cut)
            if row is None:
                continue
            history.append(row)
            if row[10] is not None:  # tracked out: its measurement exists
                good = row[6] or 0
                bad = visit.qty_in - good
                results.append(
                    (
                        int(lot_no[2:]) * 1000 + visit.step.step_seq,
                        lot_no,
                        visit.step.step_id,
                        row[4],
                        row[10],
                        good,
                        bad,
                        "D01-PARTICLE" if bad else None,
                        _REMARKS[(visit.step.step_seq // 10) % len(_REMARKS)],
                    )
                )
    events: list[tuple[object, ...]] = []
    for number, (began, eq_id, kind, ended, *_) in enumerate(plant.events, 1):
        if began >= cut:
            continue
        ended = ended if ended is not None and ended < cut else None
        events.append(
            (
                1000 + number,
                eq_id,
                EVENT_CODES[kind],
                _utc(began),
                _utc(ended),
                _utc(ended or began),
            )
        )
    cut_at = _utc(cut)
    assert cut_at is not None
    return {
        "tb_eqp": [
            (
                eq.equipment_id,
                eq.group,
                eq.step_id,
                eq.capacity_per_hour,
                "Y" if eq.active else "N",
            )
            for eq in plant.equipment
        ],
        "tb_route": [
            (s.product_id, s.step_seq, s.step_id, s.std_minutes)
            for route in plant.routes.values()
            for s in route
        ],
        "tb_lot_hist": history,
        "tb_eqp_evt": events,
        "tb_insp_rslt": results,
        "tb_plan": [row for row in plant.plans if row[9] < cut_at],  # type: ignore[operator]
        **acme_master.rows_as_of(
            ACME_SEED,
            ACME_LAST_DAY,
            int(HISTORY_START.timestamp()),
            int(HISTORY_END.timestamp()),
            cut,
            clock=mes_clock,
        ),
    }


def _as_stored(
    tables: dict[str, list[tuple[object, ...]]],
) -> dict[str, list[tuple[object, ...]]]:
    """The rows as the MES stores them: every instant as its wall time."""
    return {
        table: [
            tuple(wall_time(v) if isinstance(v, datetime) else v for v in row)
            for row in rows
        ]
        for table, rows in tables.items()
    }


def connect(database: str | None = None, **server: Any) -> pymysql.Connection:
    """A UTC session on the MariaDB server (root on 127.0.0.1:3306 by default).

    Acme's DATETIME columns ignore the session zone (wall time in, wall time
    out); the zone is pinned so that nothing else depends on the server's."""
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 3306,
        "user": "root",
        "password": "",
    }
    settings.update(server)
    conn = pymysql.connect(
        database=database, charset="utf8mb4", autocommit=False, **settings
    )
    with conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
    return conn


def write_acme_source(
    database: str,
    *,
    as_of: datetime = HISTORY_END,
    plant: _Plant | None = None,
    create: bool = True,
    **server: Any,
) -> AcmeSummary:
    """(Re)write acme's tables in `database` as the MES showed them at `as_of`.

    One transaction per table set: the tables are created if missing and their
    rows replaced, so successive calls move the source forward like a live MES.
    """
    plant = plant or simulate()
    rows = _as_stored(_rows_as_of(plant, int(as_of.timestamp())))
    if create:
        with connect(**server) as admin, admin.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 "
                "COLLATE utf8mb4_unicode_ci"
            )
    with connect(database, **server) as conn:
        with conn.cursor() as cursor:
            for table, ddl in DDL.items():
                cursor.execute("SHOW TABLES LIKE %s", (table,))
                if not cursor.fetchall():
                    cursor.execute(ddl)
        with conn.cursor() as cursor:
            for table, values in rows.items():
                cursor.execute(f"DELETE FROM {table}")
                if values:
                    marks = ", ".join(["%s"] * len(values[0]))
                    cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
        conn.commit()
    cut = int(as_of.timestamp())
    return AcmeSummary(
        database=database,
        as_of=as_of,
        rows={table: len(values) for table, values in rows.items()},
        bad_lot_keys=[key for key, shows in plant.bad_keys if shows < cut],
    )


def drop_acme_database(database: str, **server: Any) -> None:
    with connect(**server) as admin, admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")


def table_count(database: str, **server: Any) -> int:
    """How many tables `database` holds (0 when it does not exist)."""
    with connect(**server) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (database,),
        )
        row = cursor.fetchone()
    assert row is not None  # COUNT(*) always returns a row
    return int(row[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the acme tenant's MariaDB source."
    )
    parser.add_argument("--database", default="acme_mes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument(
        "--password",
        default=os.environ.get("MYSQL_PWD", ""),
        help="default: $MYSQL_PWD (as the mariadb client reads it), else none",
    )
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="write only when the database has no table yet (the stack's seed: "
        "never rewrite a source an extract may be reading)",
    )
    parser.add_argument(
        "--as-of-day",
        type=date.fromisoformat,
        default=ACME_LAST_DAY,
        help="write the source as of the end of this production day",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = {
        "host": args.host,
        "port": args.port,
        "user": args.user,
        "password": args.password,
    }
    if args.if_empty and (tables := table_count(args.database, **server)):
        log.info(
            "acme source %s: %d tables already, left as they are", args.database, tables
        )
        return 0
    summary = write_acme_source(
        args.database, as_of=production_day_bounds(args.as_of_day)[1], **server
    )
    log.info(
        "acme source %s as of %s: %s", summary.database, summary.as_of, summary.rows
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
