"""The HTCDS export's columns, how each is read from a case's facts, the quasi-identifiers
and their generalisation hierarchies, and the coverage statement (decision 0069). Pure.

Columns use the Human Trafficking Case Data Standard 2.0 names
(``../shared/reference/htcds-2.0-field-standards.tsv``) where homeward holds the field;
``hw_`` columns are homeward's own codes where HTCDS has no field (age band, countries of
return and of identification, duration, transport, referral source, follow-up,
assistance). Multiselect values are joined with ``;`` (the Salesforce convention HTCDS
follows); an empty value is a question not answered; ``*`` is a value generalised away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from domain.deidentify import (
    DEFAULT_K,
    DEFAULT_SUPPRESSION_SHARE,
    SUPPRESSED,
    Anonymised,
    Hierarchy,
    anonymise,
    suppression_limit,
)
from domain.journey.vocabulary import Sex
from domain.kernel import AgeCategory, treated_as_minor
from domain.trafficking import ExploitationType, RecruitmentMethod

MULTI = ";"

# --- HTCDS fields -------------------------------------------------------------------------

EXPORTED: dict[str, str] = {
    "row_id": "a random id made for this export, different in every export: links to nothing",
    "cas_IncomingReferralDate": "the month the referral was registered (YYYY-MM), or coarser",
    "prs_Gender": "Feminine, Masculine, or NonSpecifiedUnknown: homeward records sex, not "
                  "gender; 'other' and 'not recorded' both read NonSpecifiedUnknown",
    "hw_AgeBand": "age band at referral (under_12, 12_17, 18_24, 25_34, 35_plus, unknown, "
                  "disputed), or minor_or_age_unknown / adult",
    "hw_ReturnCountry": "the country she would return to (ISO 3166-1 alpha-2), or its region",
    "hw_HostCountry": "the country where she was identified and referred, or its region",
    "vic_TraffickingStatus": "the screening's finding (HTCDS values); empty: not screened yet",
    "vic_MethodOfRecruitment": "the main method (one HTCDS value), or its group",
    "vic_TypeOfExploitation": "HTCDS values, or their groups (sexual, labour, other)",
    "hte_Country": "the countries of her route, each once, in code order (HTCDS holds one "
                   "per trafficking event), or their regions",
    "hw_DurationBand": "from recruitment to her exit from exploitation, as a band",
    "hw_TransportMeans": "how she was moved (homeward codes)",
    "hw_ReferralSource": "who referred her (police_raid, border_service, embassy, "
                         "self_referral, ngo, hotline)",
    "cas_Status": "Active (no outcome yet) or Closed (an outcome is recorded)",
    "cas_ReasonForCaseClosure": "the outcome, as homeward's code (returned, "
                                "assistance_declined, missing, ...), never text",
    "hw_FollowUpReach": "check-ins reached of those due during reintegration follow-up",
    "hw_AssistanceDelivered": "reintegration services delivered (homeward codes)",
}

NOT_EXPORTED: dict[str, str] = {
    **dict.fromkeys(
        ("org_Name", "org_ShippingCity", "org_ShippingCountry", "org_ShippingState",
         "org_ShippingStreet", "org_ShippingPostalCode", "org_ShippingLongitude",
         "org_ShippingLatitude", "org_Phone", "org_Type"),
        "organisations are not exported: a mission names its country and narrows groups"),
    **dict.fromkeys(
        ("prs_Salutation", "prs_FirstName", "prs_MiddleName", "prs_SecondName",
         "prs_Birthdate", "prs_IdentityNumber", "prs_Email", "prs_HomePhone",
         "prs_MobilePhone", "prs_MailingCity", "prs_MailingCountry", "prs_MailingState",
         "prs_MailingStreet", "prs_MailingPostalCode", "prs_MailingLongitude",
         "prs_MailingLatitude"),
        "identity: held only in the person vault, never exported"),
    "prs_Citizenship": "nationality is a vault field; hw_ReturnCountry is where she returns "
                       "to, usually but not always her citizenship",
    **dict.fromkeys(
        ("prs_Deceased", "prs_MaritalStatus", "prs_NumberOfChildren", "prs_PrimaryLanguage",
         "prs_SecondaryLanguage", "prs_HighestLevelOfEducation", "prs_Title"),
        "not held as a code (a consent's language is recorded, not her primary language)"),
    "vic_AgreementToManagePersonalData": "deprecated in HTCDS; not held",
    "vic_TraffickingStatusDecisionMakingOrg": "not held: screening is always the sending "
                                              "mission's",
    **dict.fromkeys(
        ("vic_RelationshipToTrafficker", "vic_AgeWhenTrafficked", "vic_RecruitmentWebsitesAndApps",
         "vic_MethodsOfControl", "vic_ForcedLabourIndustry", "vic_TypeOfSexExploitation",
         "vic_ExploitationWebsitesAndApps", "vic_Vulnerabilities",
         "vic_DetailsOfVulnerabilities", "per_RoleInProcess", "per_RoleDetails"),
        "not held"),
    **dict.fromkeys(
        ("vic_LocationOfRecruitment", "vic_LocationOfExploitation"),
        "held as countries only (hte_Country); HTCDS looks up a place"),
    **dict.fromkeys(
        ("cas_CaseOwner", "cas_ReferringOrganisation", "cas_ReferringPrimaryCaseWorker",
         "cas_ReferredOrganisation", "cas_ReferredPrimaryCaseWorker"),
        "organisations and users are not exported (hw_ReferralSource gives the kind of "
        "referrer)"),
    **dict.fromkeys(
        ("cas_ReasonForIncomingReferral", "cas_ReasonForOutgoingReferral",
         "cas_OutgoingReferralDate"),
        "not held as HTCDS defines it"),
    **dict.fromkeys(
        ("cas_IncomingReferralDetails", "cas_OutgoingReferralDetails", "cco_CaseComment",
         "hte_Description", "spl_Objectives", "spl_ActionPlan"),
        "free text: held only as vault notes, never exported"),
    **dict.fromkeys(
        ("hte_Longitude", "hte_Latitude", "hte_City", "hte_State", "hte_Street",
         "hte_PostalCode"), "not held: the route is countries only"),
    "hte_Date": "not held: dates help identify her (hw_DurationBand instead)",
    "hte_Type": "held (each route country's role), not exported: roles per country make "
                "route combinations too fine for k; the statistical report publishes flows",
    **dict.fromkeys(("spl_PlannedEndDate", "spl_ActualEndDate"), "dates: not exported"),
    "spl_Type": "homeward's services are finer (hw_AssistanceDelivered)",
    "con_Consent": "homeward records consent to return, not to an interview or research",
}

HTCDS_FIELDS: tuple[str, ...] = tuple(
    f for f in (*EXPORTED, *NOT_EXPORTED) if not f.startswith(("hw_", "row_")))
"""Every HTCDS 2.0 field, exported or not: a test holds this against the standard's
table."""

# --- generalisation hierarchies -----------------------------------------------------------

_REGIONS = {  # UN M49 sub-regions (Sub-Saharan Africa and Latin America whole)
    "northern_africa": "DZ EG EH LY MA SD TN",
    "sub_saharan_africa": "AO BF BI BJ BW CD CF CG CI CM CV DJ ER ET GA GH GM GN GQ GW IO KE "
                          "KM LR LS MG ML MR MU MW MZ NA NE NG RE RW SC SH SL SN SO SS ST SZ "
                          "TD TF TG TZ UG YT ZA ZM ZW",
    "latin_america_caribbean": "AG AI AR AW BB BL BO BQ BR BS BV BZ CL CO CR CU CW DM DO EC "
                               "FK GD GF GP GS GT GY HN HT JM KN KY LC MF MQ MS MX NI PA PE "
                               "PR PY SR SV SX TC TT UY VC VE VG VI",
    "northern_america": "BM CA GL PM US",
    "central_asia": "KG KZ TJ TM UZ",
    "eastern_asia": "CN HK JP KP KR MN MO TW",
    "south_eastern_asia": "BN ID KH LA MM MY PH SG TH TL VN",
    "southern_asia": "AF BD BT IN IR LK MV NP PK",
    "western_asia": "AE AM AZ BH CY GE IL IQ JO KW LB OM PS QA SA SY TR YE",
    "eastern_europe": "BG BY CZ HU MD PL RO RU SK UA",
    "northern_europe": "AX DK EE FI FO GB GG IE IM IS JE LT LV NO SE SJ",
    "southern_europe": "AD AL BA ES GI GR HR IT ME MK MT PT RS SI SM VA XK",
    "western_europe": "AT BE CH DE FR LI LU MC NL",
    "australia_new_zealand": "AU CC CX HM NF NZ",
    "melanesia": "FJ NC PG SB VU",
    "micronesia": "FM GU KI MH MP NR PW UM",
    "polynesia": "AS CK NU PF PN TK TO TV WF WS",
    "antarctica": "AQ",
}
REGION_OF: dict[str, str] = {c: r for r, cs in _REGIONS.items() for c in cs.split()}

_EXPLOITATION_GROUP = {
    ExploitationType.SEXUAL_EXPLOITATION: "sexual",
    **dict.fromkeys((ExploitationType.FORCED_LABOUR, ExploitationType.CHILD_LABOUR,
                     ExploitationType.SERVITUDE, ExploitationType.FORCED_BEGGING), "labour"),
}
_RECRUITMENT_GROUP = {
    **dict.fromkeys((RecruitmentMethod.THROUGH_ONLINE_SOCIAL_NETWORKS,
                     RecruitmentMethod.THROUGH_AN_ONLINE_ADVERTISEMENT), "online"),
    **dict.fromkeys((RecruitmentMethod.THROUGH_A_TELEVISION_ADVERT,
                     RecruitmentMethod.THROUGH_A_NEWSPAPER_ADVERT), "advertisement"),
    **dict.fromkeys((RecruitmentMethod.THROUGH_FAMILY_OR_FAMILY_EVENTS,
                     RecruitmentMethod.THROUGH_FRIENDS_OR_SOCIAL_EVENTS), "family_or_friends"),
    **dict.fromkeys((RecruitmentMethod.AT_A_PLACE_OF_BUSINESS,
                     RecruitmentMethod.AT_AN_EDUCATIONAL_INSTITUTION,
                     RecruitmentMethod.AT_WORK), "at_a_place"),
}


def _quarter(month: str) -> str:
    year, m = month.split("-")
    return f"{year}-Q{(int(m) - 1) // 3 + 1}"


def _year(month: str) -> str:
    return month.split("-")[0]


def _minor(band: str) -> str:
    if not band:
        return ""
    return "minor_or_age_unknown" if treated_as_minor(AgeCategory(band)) else "adult"


def _region(country: str) -> str:
    return REGION_OF.get(country, "other") if country else ""


def _each(mapping: Any, default: str = "other") -> Any:
    """A multiselect value mapped element by element, each result once."""
    def apply(value: str) -> str:
        return MULTI.join(sorted({mapping(v) if callable(mapping) else mapping.get(v, default)
                                  for v in value.split(MULTI) if v}))
    return apply


QUASI_IDENTIFIERS: dict[str, Hierarchy] = {
    # priority on a tie of distinct values: the first is generalised first
    "cas_IncomingReferralDate": Hierarchy("month", (("quarter", _quarter), ("year", _year))),
    "hte_Country": Hierarchy("country", (("region", _each(_region)),)),
    "hw_HostCountry": Hierarchy("country", (("region", _region),)),
    "hw_ReturnCountry": Hierarchy("country", (("region", _region),)),
    "vic_TypeOfExploitation": Hierarchy("type", (("group", _each(_EXPLOITATION_GROUP)),)),
    "vic_MethodOfRecruitment": Hierarchy(
        "method", (("group", lambda v: _RECRUITMENT_GROUP.get(v, "other") if v else ""),)),
    "hw_AgeBand": Hierarchy("band", (("minor or adult", _minor),)),
    "prs_Gender": Hierarchy("value"),
}
"""What someone who knows her from outside (family, community, an official, a
journalist) can know: when she was referred, her sex and age, where she was found and
where she returns, her route, how she was recruited and exploited."""

# --- a case's facts as a record -----------------------------------------------------------

_GENDER = {Sex.FEMALE: "Feminine", Sex.MALE: "Masculine"}


@dataclass(frozen=True)
class CaseFacts:
    """One case as the read models hold it: codes only, no case id."""

    registered_at: datetime
    sex: str
    age_category: str
    destination_country: str
    host_country: str
    referral_source: str
    outcome: str | None
    trafficking_status: str | None
    recruitment_method: str | None
    exploitation_types: Sequence[str]
    route_countries: Sequence[str]
    duration_band: str | None
    transport_means: Sequence[str]
    follow_up_reach: str
    services_delivered: Sequence[str]


def _multi(values: Iterable[str]) -> str:
    return MULTI.join(sorted(set(values)))


def record_of(facts: CaseFacts) -> dict[str, str]:
    """The export's columns (but ``row_id``) at their finest: the date as its month."""
    return {
        "cas_IncomingReferralDate": f"{facts.registered_at:%Y-%m}",
        "prs_Gender": _GENDER.get(facts.sex, "NonSpecifiedUnknown"),  # type: ignore[call-overload]
        "hw_AgeBand": facts.age_category,
        "hw_ReturnCountry": facts.destination_country,
        "hw_HostCountry": facts.host_country,
        "vic_TraffickingStatus": facts.trafficking_status or "",
        "vic_MethodOfRecruitment": facts.recruitment_method or "",
        "vic_TypeOfExploitation": _multi(facts.exploitation_types),
        "hte_Country": _multi(facts.route_countries),
        "hw_DurationBand": facts.duration_band or "",
        "hw_TransportMeans": _multi(facts.transport_means),
        "hw_ReferralSource": facts.referral_source,
        "cas_Status": "Closed" if facts.outcome else "Active",
        "cas_ReasonForCaseClosure": facts.outcome or "",
        "hw_FollowUpReach": facts.follow_up_reach,
        "hw_AssistanceDelivered": _multi(facts.services_delivered),
    }


COLUMNS: tuple[str, ...] = tuple(EXPORTED)


def deidentify(cases: Iterable[CaseFacts], k: int = DEFAULT_K,
               suppression_share: float = DEFAULT_SUPPRESSION_SHARE) -> Anonymised:
    """The cases' records, k-anonymous; up to ``suppression_share`` of them may be dropped
    rather than generalise every record further."""
    records = [record_of(c) for c in cases]
    return anonymise(records, QUASI_IDENTIFIERS, k,
                     suppression_limit(len(records), suppression_share))


# --- coverage -----------------------------------------------------------------------------


def coverage(result: Anonymised, start: date, end: date, left_out_imported: int = 0,
             suppression_share: float = DEFAULT_SUPPRESSION_SHARE) -> dict[str, Any]:
    """What the export covers and what was done to it, as data and as one paragraph."""
    generalised = result.generalised
    done = ("; ".join(f"{q} to {name}" for q, name in generalised.items())
            or "nothing (every quasi-identifier at its own values)")
    published = result.total - result.suppressed
    text = (
        f"Persons referred to this homeward deployment whose referral was registered from "
        f"{start} to {end}: {result.total} case(s), identified victims and also those "
        "screened as not victims, not yet screened, who declined, did not return or went "
        "missing (vic_TraffickingStatus and cas_ReasonForCaseClosure tell them apart). "
        "These are not trafficking statistics: persons never referred to this programme "
        "are not in it. One row per case: a person referred twice is two rows. "
        + (f"{left_out_imported} case(s) imported from another deployment are left out: "
           "the deployment that registered them exports them. " if left_out_imported else "")
        + f"De-identified: no names, vault fields or case ids; row_id is random per export "
        f"and rows are shuffled; dates are months or coarser; ages are bands. Every "
        f"combination of the quasi-identifiers ({', '.join(QUASI_IDENTIFIERS)}) holds at "
        f"least k = {result.k} rows. Generalised: {done}. Suppressed: {result.suppressed} "
        f"of {result.total} record(s) in groups under k were dropped (up to "
        f"{suppression_share:.0%} may be, rather than generalise every record further); "
        f"{published} published. '*' marks a value generalised away; an empty value was "
        "not recorded.")
    return {
        "period": {"from": start.isoformat(), "to": end.isoformat(),
                   "basis": "referral registered"},
        "k": result.k,
        "quasi_identifiers": list(QUASI_IDENTIFIERS),
        "generalised": generalised,
        "records_in_period": result.total,
        "records_suppressed": result.suppressed,
        "suppression_limit": suppression_share,
        "records_published": published,
        "imported_cases_left_out": left_out_imported,
        "fields": EXPORTED,
        "htcds_fields_not_exported": NOT_EXPORTED,
        "text": text,
    }


__all__ = ["COLUMNS", "EXPORTED", "HTCDS_FIELDS", "NOT_EXPORTED", "QUASI_IDENTIFIERS",
           "SUPPRESSED", "CaseFacts", "coverage", "deidentify", "record_of"]
