#!/usr/bin/env bash
# scripts/demo.sh [TAPELESS_BINARY]
#
# The main job on the embedded default, end to end, in a temporary folder
# (run by `make run`): a file:// GRS vault (two folders as the two copies),
# vault credentials, registration with a generated passphrase, a backup of
# testdata/sample, an offload under a policy that makes the point old, a
# restore from the vault compared with the source, and `tapeless points`.
# Nothing outside the temporary folder is touched; it is removed at the end
# unless KEEP=1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${1:-$root/bin/tapeless}"
sample="$root/testdata/sample"
[[ -x "$bin" ]] || { echo "demo: $bin is not built (run make build)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tapeless-demo.XXXXXX")"
cleanup() {
	if [[ "${KEEP:-0}" == 1 ]]; then
		echo "demo: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

export TAPELESS_CONFIG="$work/config.yaml"
step=0
run() {
	step=$((step + 1))
	printf '\n== %d. %s\n$ tapeless %s\n' "$step" "$1" "${*:2}"
	"$bin" "${@:2}"
}

mkdir -p "$work/primary" "$work/secondary"
run "create a GRS vault: two folders stand for the two regions" \
	vault create demo --url "file://$work/primary" --secondary-url "file://$work/secondary"
run "issue a vault credentials file (valid 48 hours, used only to register)" \
	vault credentials demo --url "file://$work/primary" -o "$work/demo.VaultCredentials"
run "register this server with a generated passphrase (keep it: without it nothing can be restored)" \
	register --credentials "$work/demo.VaultCredentials" --generate-passphrase "$work/passphrase" \
	--store "$work/store" --staging "$work/staging"
run "back up the sample tree into the local store" \
	backup "$sample" --name sample
run "list recovery points: the new one is local" \
	points
run "show what an offload would do when every point counts as old" \
	offload --dry-run --keep-within 0s --keep-last 0
run "offload: upload to both copies, confirm each object, then delete locally" \
	offload --keep-within 0s --keep-last 0
run "list recovery points: the point now lives in the vault only" \
	points
point="$("$bin" points --json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -n1)"
[[ -n "$point" ]] || { echo "demo: no point listed" >&2; exit 1; }
run "restore the point from the vault (downloads are staged in the staging folder)" \
	restore "${point:0:12}" --target "$work/restored" --passphrase-file "$work/passphrase"

step=$((step + 1))
printf '\n== %d. compare the restored tree with the source\n$ diff -r %s %s\n' "$step" "$sample" "$work/restored"
diff -r --no-dereference "$sample" "$work/restored"
echo "identical"
run "vault status: replication, servers, pending replication" \
	vault status
printf '\ndemo: the main job ran end to end in %s\n' "$work"
