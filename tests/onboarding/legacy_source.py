"""A legacy-shaped plant MES in MariaDB, as a new user meets it.

Nothing here looks like the product standard: upper-case names (TB_LOT_HIST,
LOT_NO, OPER_CD), the plant's own status codes (WT/RN/CP/HD/SC) and equipment
states ('01' to '04'), naive DATETIMEs in the plant's wall time (Asia/Seoul), an
equipment-state table without an id (keyed by machine and start), a plan
table without line numbers and with decimal quantities, soft-deleted items.

`Plant` is a seeded timeline of every row's versions; `write_source(db, T)`
writes the MES as it stood at instant T (each row's latest version changed at
or before T), as a plant's database shows it when the nightly run starts.
Small on purpose: a dozen lots over three days.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql

from tests.conftest import MYSQL_HOST

ZONE = "Asia/Seoul"
DAYS = [date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)]
START = datetime(2026, 11, 16, 6)  # plant wall time
HORIZON = datetime(2026, 11, 20, 12)

Row = dict[str, Any]

ROUTES = {
    "PRD-A": [(10, "OP-CUT"), (20, "OP-WELD"), (30, "OP-PAINT")],
    "PRD-B": [(10, "OP-CUT"), (20, "OP-PAINT")],
}
# machine → (group, step, in use)
EQUIPMENT = {
    "M-CUT-1": ("G-CUT", "OP-CUT", "Y"),
    "M-CUT-2": ("G-CUT", "OP-CUT", "Y"),
    "M-WLD-1": ("G-WELD", "OP-WELD", "Y"),
    "M-PNT-1": ("G-PAINT", "OP-PAINT", "Y"),
    "M-PNT-2": ("G-PAINT", "OP-PAINT", "Y"),
    "M-PNT-9": ("G-PAINT", "OP-PAINT", "N"),  # retired: in no mart
}

DDL = {
    "TB_EQP": """CREATE TABLE TB_EQP (
        EQP_ID VARCHAR(20) PRIMARY KEY, EQP_GRP_CD VARCHAR(20) NOT NULL,
        OPER_CD VARCHAR(20) NOT NULL, CAPA_QTY DECIMAL(10,2),
        USE_YN CHAR(1) NOT NULL)""",
    "TB_ROUTE": """CREATE TABLE TB_ROUTE (
        PROD_CD VARCHAR(20) NOT NULL, OPER_SEQ INT NOT NULL,
        OPER_CD VARCHAR(20) NOT NULL,
        STD_TM DECIMAL(8,2), PRIMARY KEY (PROD_CD, OPER_SEQ))""",
    "TB_LOT_HIST": """CREATE TABLE TB_LOT_HIST (
        LOT_NO VARCHAR(20) NOT NULL, OPER_SEQ INT NOT NULL,
        PROD_CD VARCHAR(20) NOT NULL,
        OPER_CD VARCHAR(20) NOT NULL, EQP_ID VARCHAR(20), IN_QTY INT NOT NULL,
        OUT_QTY INT, LOT_STAT CHAR(2) NOT NULL, ARR_DTTM DATETIME NOT NULL,
        TKIN_DTTM DATETIME, TKOUT_DTTM DATETIME, UPD_DTTM DATETIME NOT NULL,
        PRIMARY KEY (LOT_NO, OPER_SEQ))""",
    "TB_EQP_STAT_HIST": """CREATE TABLE TB_EQP_STAT_HIST (
        EQP_ID VARCHAR(20) NOT NULL, STAT_CD CHAR(2) NOT NULL,
        ST_DTTM DATETIME NOT NULL, END_DTTM DATETIME, UPD_DTTM DATETIME NOT NULL,
        PRIMARY KEY (EQP_ID, ST_DTTM))""",
    "TB_PLAN": """CREATE TABLE TB_PLAN (
        PLAN_ID VARCHAR(20) NOT NULL, PLAN_YMD DATE NOT NULL,
        PROD_CD VARCHAR(20) NOT NULL,
        OPER_CD VARCHAR(20) NOT NULL, PLAN_QTY DECIMAL(12,3) NOT NULL,
        CRT_DTTM DATETIME NOT NULL, PRIMARY KEY (PLAN_ID, PROD_CD, OPER_CD))""",
    "TB_ITEM": """CREATE TABLE TB_ITEM (
        ITEM_CD VARCHAR(20) PRIMARY KEY, ITEM_NM VARCHAR(60) NOT NULL,
        ITEM_TP CHAR(1) NOT NULL, ITEM_GRP VARCHAR(20) NOT NULL,
        MAKE_BUY CHAR(1) NOT NULL,
        DEL_YN CHAR(1) NOT NULL, REG_DTTM DATETIME NOT NULL,
        UPD_DTTM DATETIME NOT NULL)""",
    "TB_BOM": """CREATE TABLE TB_BOM (
        PRNT_CD VARCHAR(20) NOT NULL, CHLD_CD VARCHAR(20) NOT NULL,
        FROM_YMD DATE NOT NULL,
        TO_YMD DATE, UNIT_QTY DECIMAL(12,4) NOT NULL,
        PRIMARY KEY (PRNT_CD, CHLD_CD, FROM_YMD))""",
    "TB_DMD": """CREATE TABLE TB_DMD (
        DMD_NO INT PRIMARY KEY, ITEM_CD VARCHAR(20) NOT NULL,
        CUST_CD VARCHAR(20) NOT NULL,
        DMD_TP CHAR(1) NOT NULL, DUE_YMD DATE NOT NULL, DMD_QTY DECIMAL(12,2) NOT NULL,
        PRIOR_NO INT NOT NULL, DMD_STAT CHAR(2) NOT NULL,
        UPD_DTTM DATETIME NOT NULL)""",
}


@dataclass
class Plant:
    """Every version of every row: (changed at, row), in wall time."""

    versions: dict[str, list[tuple[datetime, Row]]] = field(default_factory=dict)

    def add(self, table: str, at: datetime, row: Row) -> None:
        self.versions.setdefault(table, []).append((at, dict(row)))

    def rows_at(self, table: str, at: datetime, key: tuple[str, ...]) -> list[Row]:
        """Each key's latest version changed at or before `at` (the MES then)."""
        latest: dict[tuple[Any, ...], tuple[datetime, Row]] = {}
        for changed, row in self.versions.get(table, []):
            ident = tuple(row[name] for name in key)
            if changed <= at and (ident not in latest or changed >= latest[ident][0]):
                latest[ident] = (changed, row)
        return [row for _, row in latest.values()]


KEYS = {
    "TB_EQP": ("EQP_ID",),
    "TB_ROUTE": ("PROD_CD", "OPER_SEQ"),
    "TB_LOT_HIST": ("LOT_NO", "OPER_SEQ"),
    "TB_EQP_STAT_HIST": ("EQP_ID", "ST_DTTM"),
    "TB_PLAN": ("PLAN_ID", "PROD_CD", "OPER_CD"),
    "TB_ITEM": ("ITEM_CD",),
    "TB_BOM": ("PRNT_CD", "CHLD_CD", "FROM_YMD"),
    "TB_DMD": ("DMD_NO",),
}


def simulate(seed: int = 25) -> Plant:
    """The plant's timeline from START to HORIZON (deterministic for a seed)."""
    rng = random.Random(seed)
    plant = Plant()
    for eqp, (group, step, use) in EQUIPMENT.items():
        row = {"EQP_ID": eqp, "EQP_GRP_CD": group, "OPER_CD": step}
        plant.add("TB_EQP", START, {**row, "CAPA_QTY": Decimal("12.50"), "USE_YN": use})
    for product, steps in ROUTES.items():
        for seq, step in steps:
            row = {"PROD_CD": product, "OPER_SEQ": seq, "OPER_CD": step}
            plant.add("TB_ROUTE", START, {**row, "STD_TM": Decimal("90.00")})
    _lots(plant, rng)
    _states(plant, rng)
    _plans(plant, rng)
    _master(plant)
    return plant


def _machines(step: str) -> list[str]:
    return [e for e, (_, s, use) in EQUIPMENT.items() if s == step and use == "Y"]


def _lots(plant: Plant, rng: random.Random) -> None:
    """Lots released every four hours; lot 7 is held while running and released
    the next day, lot 6 held while waiting (never released), lot 8 scrapped."""
    for number in range(22):
        product = "PRD-A" if number % 2 == 0 else "PRD-B"
        arrived = START + timedelta(hours=4 * number, minutes=7 * number)
        qty = rng.randint(20, 30)
        for seq, step in ROUTES[product]:
            if arrived >= HORIZON:
                break
            lot = f"LOT{number:03d}"
            base = {"LOT_NO": lot, "OPER_SEQ": seq, "PROD_CD": product, "OPER_CD": step}
            wait = {**base, "EQP_ID": None, "IN_QTY": qty, "OUT_QTY": None}
            wait |= {"ARR_DTTM": arrived, "TKIN_DTTM": None, "TKOUT_DTTM": None}
            plant.add(
                "TB_LOT_HIST", arrived, {**wait, "LOT_STAT": "WT", "UPD_DTTM": arrived}
            )
            if number == 6 and seq == 20:
                held = arrived + timedelta(minutes=30)
                plant.add(
                    "TB_LOT_HIST", held, {**wait, "LOT_STAT": "HD", "UPD_DTTM": held}
                )
                break
            track_in = arrived + timedelta(minutes=rng.choice([30, 60, 95, 150]))
            run = {**wait, "EQP_ID": rng.choice(_machines(step)), "TKIN_DTTM": track_in}
            plant.add(
                "TB_LOT_HIST", track_in, {**run, "LOT_STAT": "RN", "UPD_DTTM": track_in}
            )
            track_out = track_in + timedelta(minutes=rng.choice([120, 180, 245, 300]))
            if number == 7 and seq == 20:
                held = track_in + timedelta(hours=1)
                plant.add(
                    "TB_LOT_HIST", held, {**run, "LOT_STAT": "HD", "UPD_DTTM": held}
                )
                released = held + timedelta(hours=14)
                plant.add(
                    "TB_LOT_HIST",
                    released,
                    {**run, "LOT_STAT": "RN", "UPD_DTTM": released},
                )
                track_out = released + timedelta(hours=2)
            scrapped = number == 8 and seq == 20
            out = 0 if scrapped else qty - rng.choice([0, 0, 1, 2])
            done = {
                **run,
                "OUT_QTY": out,
                "TKOUT_DTTM": track_out,
                "UPD_DTTM": track_out,
            }
            plant.add(
                "TB_LOT_HIST",
                track_out,
                {**done, "LOT_STAT": "SC" if scrapped else "CP"},
            )
            if scrapped:
                break
            qty, arrived = out, track_out


def _states(plant: Plant, rng: random.Random) -> None:
    """Each machine's states ('01' run … '04' PM), back to back; the current
    one open (no end) until it ends."""
    for eqp in EQUIPMENT:
        started = START - timedelta(hours=rng.randint(1, 4))
        while started < HORIZON:
            code = rng.choice(["01", "01", "01", "02", "03", "04"])
            ended = started + timedelta(minutes=rng.choice([50, 130, 240, 365]))
            row = {"EQP_ID": eqp, "STAT_CD": code, "ST_DTTM": started}
            plant.add(
                "TB_EQP_STAT_HIST",
                started,
                {**row, "END_DTTM": None, "UPD_DTTM": started},
            )
            plant.add(
                "TB_EQP_STAT_HIST", ended, {**row, "END_DTTM": ended, "UPD_DTTM": ended}
            )
            started = ended


def _plans(plant: Plant, rng: random.Random) -> None:
    """A plan for each day the evening before; on the second day a revision in
    the morning (the latest run wins). Decimal quantities, no line numbers."""
    quantities = ["12.500", "20.250", "7.750", "30.000", "15.499", "9.501"]
    for day in [*DAYS, DAYS[-1] + timedelta(days=1)]:
        runs = [
            (
                "A",
                datetime.combine(day - timedelta(days=1), datetime.min.time())
                + timedelta(hours=20),
            )
        ]
        if day == DAYS[1]:
            runs.append(
                ("B", datetime.combine(day, datetime.min.time()) + timedelta(hours=2))
            )
        for suffix, created in runs:
            for product, steps in ROUTES.items():
                for _, step in steps:
                    row = {
                        "PLAN_ID": f"PL{day:%m%d}{suffix}",
                        "PLAN_YMD": day,
                        "PROD_CD": product,
                        "OPER_CD": step,
                        "PLAN_QTY": Decimal(rng.choice(quantities)),
                        "CRT_DTTM": created,
                    }
                    plant.add("TB_PLAN", created, row)


def _master(plant: Plant) -> None:
    """Items (one soft-deleted on the second day), BOM lines, demand lines
    (one closed on the second day, one with no quantity)."""
    registered = datetime(2026, 1, 5, 9, 30)
    items = [
        ("PRD-A", "완제품 A", "F", "MAKE"),
        ("PRD-B", "Product B", "F", "MAKE"),
        ("SUB-1", "반제품 1", "S", "MAKE"),
        ("RAW-1", "Steel sheet", "R", "BUY"),
        ("RAW-2", "Paint", "R", "BUY"),
    ]
    for code, name, kind, source in items:
        row = {
            "ITEM_CD": code,
            "ITEM_NM": name,
            "ITEM_TP": kind,
            "ITEM_GRP": "GRP-" + kind,
        }
        row |= {"MAKE_BUY": source[0], "DEL_YN": "N", "REG_DTTM": registered}
        plant.add("TB_ITEM", START, {**row, "UPD_DTTM": registered})
        if code == "RAW-2":
            deleted = datetime(2026, 11, 18, 11, 0)
            plant.add("TB_ITEM", deleted, {**row, "DEL_YN": "Y", "UPD_DTTM": deleted})
    bom = [
        ("PRD-A", "SUB-1", date(2026, 1, 1), None, "1.0000"),
        ("PRD-A", "RAW-2", date(2026, 1, 1), date(2026, 11, 17), "0.2500"),
        ("PRD-A", "RAW-2", date(2026, 11, 18), None, "0.3125"),
        ("SUB-1", "RAW-1", date(2026, 1, 1), None, "2.5000"),
        ("PRD-B", "RAW-1", date(2026, 12, 1), None, "1.7500"),
    ]
    for parent, child, first, last, qty in bom:
        row = {"PRNT_CD": parent, "CHLD_CD": child, "FROM_YMD": first, "TO_YMD": last}
        plant.add("TB_BOM", START, {**row, "UNIT_QTY": Decimal(qty)})
    demand = [
        (1, "PRD-A", "C1", "O", date(2026, 11, 18), "100.00", 1, "OP"),
        (2, "PRD-A", "C2", "F", date(2026, 11, 18), "55.50", 3, "OP"),
        (3, "PRD-A", "C1", "O", date(2026, 11, 25), "40.25", 2, "OP"),
        (4, "PRD-B", "C3", "O", date(2026, 11, 19), "10.00", 5, "OP"),
        (5, "PRD-B", "C3", "F", date(2026, 11, 30), "0.00", 1, "OP"),  # no quantity
        (6, "PRD-B", "C2", "O", date(2026, 11, 30), "12.00", 4, "CN"),
    ]
    for number, item, customer, kind, due, qty, priority, status in demand:
        row = {"DMD_NO": number, "ITEM_CD": item, "CUST_CD": customer, "DMD_TP": kind}
        row |= {"DUE_YMD": due, "DMD_QTY": Decimal(qty), "PRIOR_NO": priority}
        plant.add("TB_DMD", START, {**row, "DMD_STAT": status, "UPD_DTTM": START})
        if number == 4:
            closed = datetime(2026, 11, 18, 15, 45)
            plant.add("TB_DMD", closed, {**row, "DMD_STAT": "CL", "UPD_DTTM": closed})


def connect(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MYSQL_HOST, user="root", password="", database=database, autocommit=True
    )


def write_source(database: str, plant: Plant, at: datetime) -> dict[str, list[Row]]:
    """The MES as it stood at wall time `at`; returns its rows by table."""
    tables = {name: plant.rows_at(name, at, KEYS[name]) for name in DDL}
    with connect(database) as conn, conn.cursor() as cursor:
        for name, ddl in DDL.items():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(ddl)
            rows = tables[name]
            if not rows:
                continue
            columns = list(rows[0])
            cursor.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                [tuple(row[c] for c in columns) for row in rows],
            )
    return tables


def day_end(day: date) -> datetime:
    """The end of production day `day` in wall time (days start at 00:00)."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time())
