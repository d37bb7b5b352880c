"""On the Temporal dev server (real visibility, no time skipping): every operator query the
README gives for the follow-up, taken word for word from README.md, finds exactly the cases
it describes: one that should match, and others that should not.

The README's queries are parsed from the README itself (``readme_queries``), so a query
that changes there is run as it now reads, and one added there without a test fails
``test_road_operator_queries.test_every_query_in_the_readme_is_run``."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from case_driver import RECEIVING, WAIT_BOUND
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from test_reintegration import FollowUp, K, failed, not_reached

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.vocabulary import ClosureReason, RiskIndicator
from store.event_store import EventStore
from workflows import WORKFLOWS, ReintegrationWorkflow

S = timedelta(seconds=1)
DAY = timedelta(days=1)
# Check-ins a second or two after arrival: contact is lost within the test, in real time.
FAST = ReintegrationConfig(check_ins_after_arrival=(1 * S, 2 * S), payment_retry_after=600 * S,
                           payment_retry_max=600 * S)

README = Path(__file__).resolve().parents[2] / "README.md"
_OPERATOR = re.compile(r" (=|!=|<|<=|>|>=) | STARTS_WITH | IS (NOT )?NULL")
# A moment in a query: an example timestamp, or a placeholder such as '<24 hours ago>'.
_MOMENT = re.compile(r"'(\d{4}-\d\d-\d\dT[^']*|<[^'>]*>)'")
# The README's examples name the demo's receiving mission; the tests' cases have their own.
README_MISSION = "mission-md"


def readme_queries() -> list[str]:
    """Every Temporal UI query in README.md, whitespace normalised: lines of fenced blocks
    and inline code that start with a Homeward search attribute and compare it, plus a
    query extended by an inline ``AND ...`` clause that follows it ("add `AND ...`")."""
    text = README.read_text()
    queries: list[str] = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        queries += [" ".join(line.split()) for line in block.splitlines()
                    if line.startswith("Homeward") and _OPERATOR.search(line)]
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    previous = None
    for span in re.findall(r"`([^`]+)`", text):
        query = " ".join(span.split())
        if query.startswith("Homeward") and _OPERATOR.search(query):
            queries.append(query)
            previous = query
        elif query.startswith("AND Homeward") and previous is not None:
            queries.append(f"{previous} {query}")
    return queries


def as_run(query: str, task_queue: str, moment: datetime | None = None) -> str:
    """The README's query as an operator would type it for these cases: the tests'
    receiving mission, the moment chosen by the test, and only this test's workflows."""
    query = query.replace(f"'{README_MISSION}'", f"'{RECEIVING}'")
    if _MOMENT.search(query):
        assert moment is not None, f"{query!r} needs a moment"
        stamp = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        query = _MOMENT.sub(f"'{stamp}'", query)
    return f"({query}) AND TaskQueue = '{task_queue}'"


async def found_exactly(env: WorkflowEnvironment, query: str, expected: set[str]) -> None:
    """The query finds exactly these workflow ids. Visibility is eventually consistent: ask
    until it does, at most WAIT_BOUND (only a failing test waits that long), then fail with
    what it found."""
    deadline = asyncio.get_running_loop().time() + WAIT_BOUND
    while True:
        ids = {w.id async for w in env.client.list_workflows(query)}
        if ids == expected or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert ids == expected, (query, sorted(ids), sorted(expected))


# The README's queries for the follow-up, and which of the cases below each must find.
QUERIES = {
    # A case closed as no longer reachable keeps the flag (a fact of its follow-up); the
    # query for contact lost now leaves it out.
    "HomewardContactLost = true AND HomewardReintegrationStage != 'closed'": {"contact_lost"},
    "HomewardBlockedOn = 'grant_payment_failing'": {"payment_failing"},
    "HomewardBlockedOn = 'grant_payment_failing' AND HomewardReceivingMission = 'mission-md'":
        {"payment_failing"},
    "HomewardRiskEscalated IS NOT NULL": {"risk"},
    "HomewardNextCheckInDue < '2026-12-05T00:00:00Z' AND ExecutionStatus = 'Running'":
        {"check_in_this_week"},
    "HomewardClosedReason = 'no_longer_reachable'": {"no_longer_reachable"},
    # A child's follow-up, "from the start to the closure".
    "HomewardMinor = true": {"child", "child_closed"},
}


async def test_every_follow_up_query_in_the_readme_finds_exactly_its_cases(
    dev_server, engine, task_queue
):
    documented = readme_queries()
    assert set(QUERIES) <= set(documented), sorted(set(QUERIES) - set(documented))
    store = EventStore(engine)
    env = dev_server
    async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        async def follow_up(**kw) -> FollowUp:
            return await FollowUp.start(env, task_queue, store,
                                               pre_departure_instalment_paid=True, **kw)

        cases = {
            "contact_lost": await follow_up(config=FAST),
            "no_longer_reachable": await follow_up(config=FAST.model_copy(
                update={"tracing_attempts": 1})),
            "moved_away": await follow_up(),
            "payment_failing": await follow_up(),
            "risk": await follow_up(),
            # Due in three days: this week. The others' first check-in is a month away.
            "check_in_this_week": await follow_up(config=ReintegrationConfig(
                check_ins_after_arrival=(3 * DAY, 30 * DAY))),
            "child": await follow_up(minor=True),
            "child_closed": await follow_up(minor=True),
        }
        try:
            for name in ("contact_lost", "no_longer_reachable"):
                await cases[name].complete(K.CHECK_IN, not_reached(), check_in=1)
                await cases[name].complete(K.CHECK_IN, not_reached(), check_in=2)
                await cases[name].task(K.TRACING)
            # No longer reachable: the tracing (its only attempt here) does not find her.
            await cases["no_longer_reachable"].complete(K.TRACING, rm.TracingResult(
                located=False))
            await cases["no_longer_reachable"].until(lambda v: v.stage == "closed",
                                                     "the closure")
            # Closed for another reason: not what the operator looks for.
            for name in ("moved_away", "child_closed"):
                await cases[name].update(ReintegrationWorkflow.close, rm.Closure(
                    organisation_id=RECEIVING, actor_id="u-3001",
                    reason=ClosureReason.MOVED_AWAY))
            await cases["payment_failing"].complete(K.GRANT_PAYMENT, failed(), instalment=1)
            await cases["risk"].update(ReintegrationWorkflow.record_risk, rm.RiskReport(
                organisation_id=RECEIVING, actor_id="u-1",
                indicator=RiskIndicator.OFFER_TO_WORK_ABROAD))

            # "This week": a week from now, as an operator would put it.
            this_week = datetime.now(UTC) + 7 * DAY
            ids = {name: f.handle.id for name, f in cases.items()}
            for query, expected in QUERIES.items():
                await found_exactly(env, as_run(query, task_queue, this_week),
                                    {ids[name] for name in expected})
        finally:
            for f in cases.values():
                try:
                    await f.handle.terminate("test over")
                except Exception:  # noqa: BLE001 - already ended
                    pass
