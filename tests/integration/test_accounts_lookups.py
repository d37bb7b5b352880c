"""The lookups the API's services ask of the accounts instead of running SQL in routes
(decision 0048): an organisation's kind, several in one query, a user's organisation and
role."""

from __future__ import annotations

from store.accounts import Accounts, OrgKind, UserRole


async def test_organisation_kinds_name_only_registered_organisations(engine):
    accounts = Accounts(engine)
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending mission", "RS")
    await accounts.add_org("ngo-md", OrgKind.PARTNER_NGO, "Partner", "MD")

    assert await accounts.org_kinds({"mission-rs", "ngo-md", "nobody"}) == {
        "mission-rs": OrgKind.SENDING_MISSION, "ngo-md": OrgKind.PARTNER_NGO}
    assert await accounts.org_kinds([]) == {}
    assert await accounts.org_kind("ngo-md") is OrgKind.PARTNER_NGO
    assert await accounts.org_kind("nobody") is None


async def test_a_user_is_found_with_organisation_and_role(engine):
    accounts = Accounts(engine)
    await accounts.add_org("mission-rs", OrgKind.SENDING_MISSION, "Sending mission", "RS")
    await accounts.add_user("coord.rs", "mission-rs", UserRole.COORDINATOR)

    user = await accounts.user("coord.rs")
    assert user is not None
    assert (user.org_id, user.role, user.disabled_at) == (
        "mission-rs", UserRole.COORDINATOR.value, None)
    assert await accounts.user("nobody") is None
