from datetime import UTC, datetime, timedelta

from domain.lifecycle import closed_at, journey_active

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def test_journey_active_between_referral_and_outcome():
    assert not journey_active([])
    assert not journey_active(["identity.recorded"])  # identity alone is not a journey
    assert journey_active(["identity.recorded", "case.referral_registered", "task.opened"])
    assert not journey_active(["case.referral_registered", "outcome.assistance_declined"])
    assert not journey_active(["case.referral_registered", "outcome.returned",
                               "reintegration.started"])


def test_a_non_return_outcome_closes_the_case():
    events = [("case.referral_registered", at(0)), ("outcome.staying_in_shelter", at(9))]
    assert closed_at(events) == at(9)


def test_a_return_stays_open_while_follow_up_runs_and_closes_with_it():
    events = [("case.referral_registered", at(0)), ("outcome.returned", at(30)),
              ("reintegration.started", at(30)), ("reintegration.check_in_reached", at(60))]
    assert closed_at(events) is None
    assert closed_at([*events, ("reintegration.closed", at(400))]) == at(400)


def test_reopening_opens_the_case_again():
    events = [("outcome.returned", at(30)), ("reintegration.started", at(30)),
              ("reintegration.closed", at(400)), ("reintegration.reopened", at(500))]
    assert closed_at(events) is None


def test_never_referred_is_not_closed():
    assert closed_at([("identity.recorded", at(0))]) is None
