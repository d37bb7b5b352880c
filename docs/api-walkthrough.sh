#!/usr/bin/env bash
# One return case through the HTTP API, as the coordinator, the receiving mission, the
# operator, the administrator and the analyst do it. Run it with `make run` going:
#   bash docs/api-walkthrough.sh
# (the README shows the same calls; tests/e2e/test_walkthrough.py runs this script).
set -euo pipefail
API=${API:-http://127.0.0.1:${HOMEWARD_API_PORT:-8000}}
source "${HOMEWARD_DATA_DIR:-.homeward}/demo-tokens.env"
J='Content-Type: application/json'
C="Authorization: Bearer $HOMEWARD_TOKEN_COORD_RS"       # coordinator, sending mission
O="Authorization: Bearer $HOMEWARD_TOKEN_OFFICER_MD"     # receiving officer
OP="Authorization: Bearer $HOMEWARD_TOKEN_OPERATOR"      # operator
ADM="Authorization: Bearer $HOMEWARD_TOKEN_ADMIN"        # administrator
AN="Authorization: Bearer $HOMEWARD_TOKEN_ANALYST"       # analyst
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
say() { printf '\n== %s\n' "$*"; }
task_of() {  # task_of <token header> <kind>: the id of that open task, once it is open
  for _ in $(seq 1 150); do
    id=$(curl -sf "$API/tasks?kind=$2" -H "$1" | python3 -c \
      "import json,sys; t=json.load(sys.stdin)['tasks']; print(t[0]['task_id'] if t else '')")
    [ -n "$id" ] && { echo "$id"; return; }
    sleep 0.2
  done
  echo "no open $2 task" >&2; return 1
}
complete() {  # complete <token header> <kind> <result json>
  curl -sf -X POST "$API/tasks/$(task_of "$1" "$2")/complete" -H "$1" -H "$J" \
    -d "{\"result\": $3}" | field "['event_types']"
}

say "coordinator registers a referral (identity goes to the vault only)"
CASE=$(curl -sf -X POST "$API/cases" -H "$C" -H "$J" -d '{
  "receiving_mission": "mission-md", "border_partner": "ngo-md-border",
  "host_country": "RS", "destination_country": "MD", "referral_source": "police_raid",
  "first_placement": "shelter_low_risk", "risk_level": "low", "age_category": "18_24",
  "journey_config": {"departure_lead": "PT3S"},
  "identity": {"given_names": "Ana", "family_name": "Example", "nationality": "MD"}}' \
  | field "['case_id']")
echo "case $CASE"

say "the coordinator's inbox"
task_of "$C" screening_interview >/dev/null
curl -sf "$API/tasks" -H "$C" | python3 -c \
  "import json,sys; [print(' ', t['kind'], t['due_at']) for t in json.load(sys.stdin)['tasks']]"

say "the one screening interview (answers go to the vault)"
curl -sf -X POST "$API/cases/$CASE/screening" -H "$C" -H "$J" -d '{
  "answers": "what she told us, in her words", "interview_language": "ro",
  "interpreter_used": false, "reads_languages": ["ro"],
  "trafficking_status": "ActualVictimOfTrafficking"}' | field "['event_types']"

say "her decision, then informed consent in a language she reads"
task_of "$C" options_decision >/dev/null
curl -sf -X POST "$API/cases/$CASE/decision" -H "$C" -H "$J" \
  -d '{"choice": "return", "counselled_in_language": "ro"}' | field "['event_types']"
task_of "$C" informed_consent >/dev/null
curl -sf -X POST "$API/cases/$CASE/consent" -H "$C" -H "$J" -d "{
  \"form_language\": \"ro\", \"form_version\": \"2026-1\", \"interpreter_used\": false,
  \"signed_at\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",
  \"form_reference\": \"signed form, paper file 12\"}" | field "['event_types']"

say "documents and clearances (details in the vault, a record id in the case)"
REC=$(curl -sf -X POST "$API/cases/$CASE/person/notes" -H "$C" -H "$J" \
  -d '{"kind": "assessment_note", "text": "temporary travel document issued"}' \
  | field "['record_id']")
# A record id is a record of this case's vault, never a made-up reference: refused (422).
curl -s -X POST "$API/tasks/$(task_of "$C" travel_documents)/complete" -H "$C" -H "$J" \
  -d '{"result": {"kind": "travel_documents", "issued": true, "document_record_id": "rec_MadeUp2026"}}' \
  | field "['code']"
complete "$C" travel_documents "{\"kind\": \"travel_documents\", \"issued\": true, \"document_record_id\": \"$REC\"}"
complete "$C" medical_clearance "{\"kind\": \"medical_clearance\", \"fit_to_travel\": true, \"medical_record_id\": \"$REC\"}"
complete "$C" security_assessment '{"kind": "security_assessment", "risk_level": "low"}'

say "the journey: facts from the road"
for _ in $(seq 1 100); do
  STAGE=$(curl -sf "$API/cases/$CASE" -H "$C" | field "['stage']")
  [ "$STAGE" = awaiting_departure ] && break; sleep 0.2
done
# Each fact is recorded at once (the answer names the events) or refused with a 409 that
# says what is expected now: a border cleared before she arrived there is refused.
curl -s -X POST "$API/cases/$CASE/facts" -H "$C" -H "$J" -d '{"fact": "border_cleared"}' \
  | field "['code']"
for FACT in departed arrived_at_border border_hold_started border_hold_lifted border_cleared; do
  curl -sf -X POST "$API/cases/$CASE/facts" -H "$C" -H "$J" -d "{\"fact\": \"$FACT\"}" \
    | field "['event_types']"
done

say "receiving mission: the handoff, with the one-time code (never a branded item)"
TASK=$(task_of "$O" reception_handoff)
CODE=$(curl -sf "$API/cases/$CASE/handoff-code" -H "$O" | field "['handoff_code']")
curl -sf -X POST "$API/tasks/$TASK/complete" -H "$O" -H "$J" -d "{\"result\": {
  \"kind\": \"reception_handoff\", \"identification\": \"handoff_code\",
  \"handoff_code\": \"$CODE\", \"safe_arrival_confirmed\": true,
  \"assistance_provided\": [\"overnight_accommodation\"]}}" | field "['event_types']"

say "the timeline, as the coordinator sees it"
curl -sf "$API/cases/$CASE/timeline" -H "$C" | python3 -c \
  "import json,sys; [print(' ', e['type'], '-', e['text']) for e in json.load(sys.stdin)['events']]"

say "operator: stuck cases (ids, stages and blocks; never identity)"
curl -sf "$API/operations/stuck-cases?blocked_for_minutes=0" -H "$OP" | field "['cases'][:3]"

say "receiving officer reads her names for the handoff, stating the purpose (recorded)"
curl -sf -X POST "$API/cases/$CASE/person/disclosures" -H "$O" -H "$J" \
  -d '{"purpose": "handoff_identification", "field_groups": ["names"]}' \
  | field "['person']['given_names']"

say "administrator: who did what to this case"
curl -sf "$API/cases/$CASE/audit" -H "$ADM" | python3 -c \
  "import json,sys; e=json.load(sys.stdin)['entries']; print(len(e), 'audited requests')"

say "analyst: statistics with small cells suppressed"
curl -sf "$API/statistics" -H "$AN" | field "['coverage']"
echo "walk-through complete: case $CASE"
