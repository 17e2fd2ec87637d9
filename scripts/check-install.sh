#!/usr/bin/env bash
# scripts/check-install.sh — `make install` into a scratch DESTDIR, then
# check that the binary, every command's man page and the three shell
# completions are in place and usable. CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dest="$(mktemp -d)"
trap 'rm -rf "$dest"' EXIT
make --no-print-directory install DESTDIR="$dest" PREFIX=/usr >/dev/null

fail() { echo "check-install: $*" >&2; exit 1; }
bin="$dest/usr/bin/tapeless"
[[ -x "$bin" ]] || fail "no executable $bin"
ver="$("$bin" version)"
[[ "$ver" != "tapeless dev" ]] || fail "the installed binary reports no version: $ver"

man1="$dest/usr/share/man/man1"
for c in "" backup restore points offload prune verify register configure vault-create vault-credentials; do
	page="$man1/tapeless${c:+-$c}.1"
	[[ -s "$page" ]] || fail "missing man page $page"
	grep -q '^\.TH "TAPELESS" "1"' "$page" || fail "$page has no .TH header"
done
if command -v man >/dev/null; then
	man -l "$man1/tapeless-restore.1" 2>/dev/null | grep -q -- '--target' || fail "man cannot render tapeless-restore.1"
fi

share="$dest/usr/share"
grep -q 'complete .*tapeless' "$share/bash-completion/completions/tapeless" || fail "bad bash completion"
grep -q '^#compdef tapeless' "$share/zsh/site-functions/_tapeless" || fail "bad zsh completion"
grep -q 'complete -c tapeless' "$share/fish/vendor_completions.d/tapeless.fish" || fail "bad fish completion"
if command -v bash >/dev/null; then
	bash -c "source '$share/bash-completion/completions/tapeless'" || fail "bash cannot source its completion"
fi

pages="$(ls "$man1" | wc -l)"
make --no-print-directory uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left="$(find "$dest" -type f | wc -l)"
((left == 0)) || fail "uninstall left $left files"
echo "check-install: $ver installed and removed cleanly (binary, $pages man pages, 3 completions)"
