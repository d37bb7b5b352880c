#!/bin/sh
# The temporal-namespace service of docker-compose.yml: homeward's namespace and custom
# search attributes, each created only when missing, so that a rerun changes nothing and
# any real error (server unreachable, an attribute registered with another type) stops
# it. The CLI reads TEMPORAL_ADDRESS. tests/integration/test_compose.py runs it twice
# against a dev server and keeps the list below equal to workflows/search_attributes.py.
set -eu

NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-30d}"
ATTRIBUTES="
HomewardStage=Keyword
HomewardBlockedOn=Keyword
HomewardBlockedSince=Datetime
HomewardSendingMission=Keyword
HomewardReceivingMission=Keyword
HomewardDestinationCountry=Keyword
HomewardMinor=Bool
HomewardMissing=Bool
HomewardReintegrationStage=Keyword
HomewardNextCheckInDue=Datetime
HomewardContactLost=Bool
HomewardClosedReason=Keyword
HomewardRiskEscalated=Keyword
"

# Waits up to 30 s for the command to succeed, then runs it once more so that its
# own error is what the log shows.
retry() {
  tries=0
  until "$@" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      "$@" >/dev/null
      return 1
    fi
    sleep 1
  done
}

# The server's healthcheck sees its port open; serving takes a little longer.
retry temporal operator cluster health

if temporal operator namespace describe --namespace "$NAMESPACE" --output none 2>/dev/null; then
  echo "namespace $NAMESPACE: exists"
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
  echo "namespace $NAMESPACE: created (retention $RETENTION)"
fi

# A new namespace reaches the frontend's namespace cache a few seconds after it is
# created; until then the search-attribute calls answer "not found".
retry temporal operator search-attribute list --namespace "$NAMESPACE"
existing=$(temporal operator search-attribute list --namespace "$NAMESPACE")

for pair in $ATTRIBUTES; do
  name=${pair%%=*}
  type=${pair#*=}
  have=$(printf '%s\n' "$existing" | awk -v n="$name" '$1 == n { print $2 }')
  if [ -z "$have" ]; then
    temporal operator search-attribute create --namespace "$NAMESPACE" \
      --name "$name" --type "$type"
    echo "search attribute $name: created ($type)"
  elif [ "$have" = "$type" ]; then
    echo "search attribute $name: exists"
  else
    echo "search attribute $name is registered as $have, homeward needs $type" >&2
    exit 1
  fi
done
