"""Acme's APS master data in its MES vendor's schema (MariaDB), for `acme.py`.

The same shapes as the demo's (`master_data.py`) under acme's own names and
codes, so that the master marts come from a column mapping in tenant.yaml
rather than hand-written SQL:

- `tb_item_mst`: item kind `item_gb` F/S/R (FG/SFG/RM), `make_buy_gb` M/B,
  no item group (mapped to a constant), a `use_yn` flag (N rows filtered out);
- `tb_bom`: validity `aply_st_dt`..`aply_ed_dt` with 9999-12-31 for "open";
- `tb_dmd`: a numeric key, `due_ymd` as text `YYYYMMDD`, type O/F, status
  O/C/X, soft-deleted rows (`del_yn = 'Y'`).

`rows_as_of(cut)` gives the rows the MES shows at instant `cut` (epoch
seconds): demand lines appear once last updated. Instants are aware UTC
datetimes on the MES clock (`clock`); acme.py writes them as the plant's
naive wall time into `DATETIME(6)` columns, like the rest of acme's MES.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime

from mozart_etl.demo import master_data

DDL = {
    "tb_item_mst": """CREATE TABLE tb_item_mst (
        item_cd VARCHAR(20) NOT NULL COMMENT '품목 코드',
        item_nm VARCHAR(100) NOT NULL COMMENT '품목명',
        item_gb CHAR(1) NOT NULL COMMENT '품목 구분 (F 완제품, S 반제품, R 원자재)',
        make_buy_gb CHAR(1) NOT NULL COMMENT '조달 구분 (M 생산, B 구매)',
        use_yn CHAR(1) NOT NULL COMMENT '사용 여부',
        reg_dt DATETIME(6) NOT NULL COMMENT '등록 일시',
        upd_dt DATETIME(6) NOT NULL COMMENT '수정 일시',
        PRIMARY KEY (item_cd)) COMMENT '품목 마스터'""",
    "tb_bom": """CREATE TABLE tb_bom (
        prnt_item_cd VARCHAR(20) NOT NULL COMMENT '모품목 코드',
        chld_item_cd VARCHAR(20) NOT NULL COMMENT '자품목 코드',
        aply_st_dt DATE NOT NULL COMMENT '적용 시작일',
        aply_ed_dt DATE NOT NULL COMMENT '적용 종료일 (9999-12-31: 무기한)',
        unit_qty DECIMAL(12,4) NOT NULL COMMENT '단위 소요량',
        PRIMARY KEY (prnt_item_cd, chld_item_cd, aply_st_dt)) COMMENT 'BOM'""",
    "tb_dmd": """CREATE TABLE tb_dmd (
        dmd_no BIGINT NOT NULL COMMENT '수요 번호',
        item_cd VARCHAR(20) NOT NULL COMMENT '품목 코드',
        cust_cd VARCHAR(20) NOT NULL COMMENT '고객 코드',
        dmd_gb CHAR(1) NOT NULL COMMENT '수요 구분 (O 수주, F 예측)',
        due_ymd CHAR(8) NOT NULL COMMENT '납기일 (YYYYMMDD)',
        dmd_qty DECIMAL(12,2) NOT NULL COMMENT '수요 수량',
        prior_no INT NOT NULL COMMENT '우선순위',
        dmd_stat CHAR(1) NOT NULL COMMENT '상태 (O 미결, C 종결, X 취소)',
        del_yn CHAR(1) NOT NULL COMMENT '삭제 여부',
        upd_dt DATETIME(6) NOT NULL COMMENT '수정 일시',
        PRIMARY KEY (dmd_no)) COMMENT '수요 (수주, 예측)'""",
}
OPEN_END = date(9999, 12, 31)
_KIND = {"FG": "F", "SFG": "S", "RM": "R"}
_PROCUREMENT = {"MAKE": "M", "BUY": "B"}
_DEMAND_TYPE = {"ORDER": "O", "FORECAST": "F"}
_STATUS = {"OPEN": "O", "CLOSED": "C", "CANCELLED": "X"}


def rows_as_of(
    seed: int,
    anchor_day: date,
    history_start: int,
    history_end: int,
    cut: int,
    *,
    clock: Callable[[datetime], datetime] = lambda instant: instant,
) -> dict[str, list[tuple[object, ...]]]:
    """Acme's master tables as the MES shows them at `cut`; `clock` gives the
    instant the MES records a change made at an instant (acme.mes_clock)."""

    def _instant(text: object) -> datetime:
        """The demo generator's UTC text, recorded on the MES clock."""
        return clock(datetime.fromisoformat(str(text)).astimezone(UTC))

    rng = random.Random(f"{seed}:acme-master-data")
    items = master_data.item_rows(rng, history_start)
    bom = master_data.bom_rows(rng, anchor_day)
    demand = master_data.demand_rows(rng, anchor_day, history_start, history_end)
    return {
        "tb_item_mst": [
            (
                item_id,
                f" {name} " if number % 4 == 0 else name,  # padded: mapped with trim
                _KIND[kind],
                _PROCUREMENT[procurement],
                "N" if item_id == "RM-GAS-N2" else "Y",
                _instant(created),
                _instant(updated),
            )
            for number, (item_id, name, kind, _, procurement, created, updated) in (
                enumerate(items)
            )
        ],
        "tb_bom": [
            (
                parent,
                child,
                date.fromisoformat(start),
                OPEN_END if end is None else date.fromisoformat(end),
                qty,
            )
            for parent, child, start, qty, end in bom
        ],
        "tb_dmd": [
            (
                number,
                item_id,
                customer,
                _DEMAND_TYPE[kind],
                due.replace("-", ""),
                qty,
                priority,
                _STATUS[status],
                "Y" if number % 17 == 0 else "N",
                _instant(updated),
            )
            for number, (
                _,
                item_id,
                customer,
                kind,
                due,
                qty,
                priority,
                status,
                updated,
            ) in enumerate(demand, 1)
            if _instant(updated).timestamp() < cut
        ],
    }
