#!/usr/bin/env bash
# scripts/with-minio.sh CMD [ARG...]
#
# Runs CMD with the two test MinIO servers up and the TAPELESS_TEST_S3_*
# variables exported, then brings the servers down again, also when CMD
# fails or is interrupted. Exits with CMD's status. Servers that were already
# running before (started by hand or by another run) are reused and left
# running: only what this run started is stopped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
(($# > 0)) || {
	echo "usage: scripts/with-minio.sh CMD [ARG...]" >&2
	exit 2
}

# A token unique to this run: down stops only the servers our up started.
export TAPELESS_MINIO_OWNER="run-$$-$RANDOM"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { "$here/minio.sh" down || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$here/minio.sh" up
eval "$("$here/minio.sh" env)"

status=0
"$@" || status=$?
exit "$status"
