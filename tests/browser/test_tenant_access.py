"""Each tenant's people see and run only their tenant, in the UI and the REST
API alike (tenant.yaml `access`, the DAGs' `access_control`, FAB roles).

A live Airflow with the stack's FAB auth manager, initialized as the stack's
airflow-init does (the admin, then stack/airflow/tenant_roles.py before the
dag-processor starts), serves the repository's tenants, demo and acme, with
their default roles (`<id>_viewer`, `<id>_operator`). The admin creates three
users through FAB's REST API: an operator of each tenant and a viewer of the
demo. In Chromium each operator logs in through FAB's form, finds its own
DAGs and not the other tenant's, triggers its own tenant's production day
from the form, and opens the other tenant's DAG page in vain; with a token of
its own, the REST API answers 200 on its DAG and 403 on the other's, and the
viewer may read but not trigger.

Only the api-server and the dag-processor run: the check is who may create a
run, not the run itself, so the triggered runs stay queued (no scheduler) and
cost nothing. The live demo deployment of the other browser tests keeps the
simple auth manager; this one is its own, ~30 s on the development machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from mozart_etl.config.loader import load_tenant
from mozart_etl.demo.generate import DEMO_DAY
from mozart_etl.factory.maintenance_dag import maintenance_dag_id
from tests.browser.conftest import ROOT
from tests.live.harness import TIMINGS, AirflowServices

SHOTS = Path(__file__).parent / "screenshots"
TENANTS = ("demo", "acme")
DEPLOYMENT_TIMING = "browser: tenant access deployment (FAB) up"


@dataclass(frozen=True)
class TenantUser:
    username: str
    role: str
    tenant: str

    @property
    def password(self) -> str:
        return f"{self.username}-pw-7f3a"

    @property
    def other(self) -> str:
        return next(t for t in TENANTS if t != self.tenant)


OPERATORS = (
    TenantUser("ana_demo", "demo_operator", "demo"),
    TenantUser("ben_acme", "acme_operator", "acme"),
)
VIEWER = TenantUser("vic_demo", "demo_viewer", "demo")


@pytest.fixture(scope="module")
def fab_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServices]:
    home = tmp_path_factory.mktemp("tenant-access") / "mozart"
    started = time.monotonic()
    with AirflowServices(
        tenants_dir=ROOT / "tenants",
        mozart_home=home,
        auth_manager="fab",
        components=("dag-processor", "api-server"),
    ) as airflow:
        tenant_dags = [*TENANTS, *(maintenance_dag_id(t) for t in TENANTS)]
        airflow.wait_for_dags(tenant_dags)
        TIMINGS[DEPLOYMENT_TIMING] = time.monotonic() - started
        for user in (*OPERATORS, VIEWER):
            _create_user(airflow, user)
        yield airflow


def _create_user(airflow: AirflowServices, user: TenantUser) -> None:
    """As the admin, through FAB's user API (what UI → Security → Users does)."""
    response = httpx.post(
        f"{airflow.api_url}/auth/fab/v1/users",
        headers={"Authorization": f"Bearer {airflow.token()}"},
        json={
            "username": user.username,
            "email": f"{user.username}@example.invalid",
            "first_name": user.username,
            "last_name": user.tenant,
            "roles": [{"name": user.role}],
            "password": user.password,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text


def _as(airflow: AirflowServices, user: TenantUser) -> httpx.Client:
    """A REST client holding `user`'s own token."""
    token = airflow.login(user.username, user.password)
    return httpx.Client(
        base_url=f"{airflow.api_url}/api/v2",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def _run_body(run_id: str) -> dict[str, object]:
    conf = {"production_day": DEMO_DAY.isoformat()}
    return {"dag_run_id": run_id, "logical_date": None, "conf": conf}


@pytest.mark.parametrize("user", OPERATORS, ids=lambda u: u.username)
def test_rest_api_serves_own_tenant_and_refuses_the_other(
    fab_airflow: AirflowServices, user: TenantUser
) -> None:
    own, other = user.tenant, user.other
    with _as(fab_airflow, user) as api:
        listed = {dag["dag_id"] for dag in api.get("/dags").json()["dags"]}
        assert listed == {own, maintenance_dag_id(own)}

        assert api.get(f"/dags/{own}").status_code == 200
        assert api.get(f"/dags/{own}/dagRuns").status_code == 200
        for path in (f"/dags/{other}", f"/dags/{other}/dagRuns"):
            assert api.get(path).status_code == 403, path
        for dag_id in (other, maintenance_dag_id(other)):
            refused = api.post(f"/dags/{dag_id}/dagRuns", json=_run_body("x"))
            assert refused.status_code == 403, refused.text
        paused = api.patch(f"/dags/{other}", json={"is_paused": False})
        assert paused.status_code == 403

        triggered = api.post(
            f"/dags/{own}/dagRuns", json=_run_body(f"api_{user.username}")
        )
        assert triggered.status_code == 200, triggered.text
    # Refused means not done: the other tenant has no run from this user.
    runs = fab_airflow.dag_runs(other)
    assert all(run.get("triggering_user_name") != user.username for run in runs)


def test_viewer_reads_but_cannot_trigger(fab_airflow: AirflowServices) -> None:
    with _as(fab_airflow, VIEWER) as api:
        assert api.get(f"/dags/{VIEWER.tenant}").status_code == 200
        assert api.get(f"/dags/{VIEWER.tenant}/dagRuns").status_code == 200
        assert api.get(f"/dags/{VIEWER.other}").status_code == 403
        refused = api.post(f"/dags/{VIEWER.tenant}/dagRuns", json=_run_body("v"))
        assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("user", OPERATORS, ids=lambda u: u.username)
def test_ui_shows_and_triggers_only_own_tenant(
    fab_airflow: AirflowServices, browser: Browser, user: TenantUser
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(120_000)
    expect.set_options(timeout=60_000)
    try:
        _login(page, fab_airflow, user)
        _sees_only_own_dags(page, fab_airflow, user)
        run_id = _trigger_from_form(page, fab_airflow, user)
        run = fab_airflow.api("GET", f"/dags/{user.tenant}/dagRuns/{run_id}").json()
        assert run["run_type"] == "manual"
        assert run["conf"]["production_day"] == DEMO_DAY.isoformat()
        _other_dag_page_is_refused(page, fab_airflow, user)
    finally:
        context.close()


def _login(page: Page, airflow: AirflowServices, user: TenantUser) -> None:
    """FAB's login form (the stack's), not the simple auth manager's."""
    page.goto(airflow.api_url)
    page.wait_for_url(lambda url: "/auth/login" in url)
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.password)
    page.click("[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _sees_only_own_dags(page: Page, airflow: AirflowServices, user: TenantUser) -> None:
    page.goto(f"{airflow.api_url}/dags")
    own = page.get_by_role("link", name=user.tenant, exact=True)
    expect(own).to_be_visible()  # the list has loaded
    expect(
        page.get_by_role("link", name=maintenance_dag_id(user.tenant))
    ).to_be_visible()
    for dag_id in (user.other, maintenance_dag_id(user.other)):
        expect(page.get_by_role("link", name=dag_id, exact=True)).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(f"tenant:{user.other}")
    _shot(page, f"access-{user.username}-1-dag-list")


def _trigger_from_form(page: Page, airflow: AirflowServices, user: TenantUser) -> str:
    """Trigger the tenant's production day from the UI's form; the run the
    REST API then lists, created by this user."""
    page.goto(f"{airflow.api_url}/dags/{user.tenant}")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    page.fill("#element_production_day", DEMO_DAY.isoformat())
    form.get_by_role("button", name="Trigger").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [
            run
            for run in airflow.dag_runs(user.tenant)
            if run.get("triggering_user_name") == user.username
            and run["dag_run_id"] != f"api_{user.username}"
        ]
        if mine:
            _shot(page, f"access-{user.username}-2-triggered")
            return str(mine[0]["dag_run_id"])
        time.sleep(1)
    _shot(page, f"access-{user.username}-2-trigger-failed")
    raise AssertionError(f"{user.username}: the trigger form created no run")


def _other_dag_page_is_refused(
    page: Page, airflow: AirflowServices, user: TenantUser
) -> None:
    """The other tenant's DAG page, opened by its URL: the UI's own requests
    for that DAG are refused (403) and the page shows nothing of it, no
    trigger button, no tags, no owner."""

    def refused(response: Response) -> bool:
        return f"/dags/{user.other}" in response.url and response.status == 403

    with page.expect_response(refused):
        page.goto(f"{airflow.api_url}/dags/{user.other}")
    expect(page.get_by_role("button", name="Trigger Dag")).to_have_count(0)
    body = page.locator("body")
    expect(body).not_to_contain_text(f"tenant:{user.other}")
    owner = load_tenant(ROOT / "tenants" / user.other).owner
    expect(body).not_to_contain_text(owner)  # shown to whoever may read it
    _shot(page, f"access-{user.username}-3-other-tenant")


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png")
