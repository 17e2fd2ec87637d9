#!/usr/bin/env bash
# scripts/minio.sh up|down|env|status
#
# Two MinIO servers on loopback, the "primary" and "secondary" regions that
# tapeless's S3 tests (and GRS) use:
#
#   primary    127.0.0.1:9000  (console 127.0.0.1:9001)
#   secondary  127.0.0.1:9100  (console 127.0.0.1:9101)
#   root user  tapeless-admin / tapeless-admin-secret
#   buckets    tapeless-test (plain) and tapeless-lock (object lock) on both
#
# up    With a working Docker engine and compose plugin: docker compose.
#       Otherwise: build the pinned MinIO server into .tools/bin when missing,
#       start the two servers with data in a fresh temporary folder and pids
#       and logs in .minio/, and wait for their health endpoints. A server that
#       already answers on a port (one started by hand, or by an earlier `up`)
#       is reused. Either way the buckets are then created (idempotent).
# down  Stop only the servers this script started, and remove their data.
#       Servers started by someone else are never touched. With
#       TAPELESS_MINIO_OWNER set, only servers started by an `up` with the same
#       value are stopped (make test uses this so that a concurrent run that
#       reused its servers does not stop them under it).
# env   Print the TAPELESS_TEST_S3_* exports: eval "$(scripts/minio.sh env)".
# status  Say which servers answer and which of them this script started.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$REPO/.minio"
TOOLS="$REPO/.tools/bin"

# The MinIO server is built from its Go module at this pinned commit. It is
# AGPL software that tapeless only talks to over HTTP; it is never imported.
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_BIN="${TAPELESS_MINIO_BIN:-$TOOLS/minio}"

ACCESS_KEY="tapeless-admin"
SECRET_KEY="tapeless-admin-secret"
# name:api-port:console-port
SERVERS=("primary:9000:9001" "secondary:9100:9101")
HEALTH_TIMEOUT="${TAPELESS_MINIO_HEALTH_TIMEOUT:-60}"
OWNER="${TAPELESS_MINIO_OWNER:-}"

log() { printf 'minio.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# health PORT prints the HTTP status of the liveness endpoint (000 when
# nothing answers).
health() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/minio/health/live" 2>/dev/null || true
}

# port_open PORT succeeds when something accepts TCP connections on it.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

use_docker() {
	[[ "${TAPELESS_MINIO_NO_DOCKER:-}" != 1 ]] &&
		docker info >/dev/null 2>&1 &&
		docker compose version >/dev/null 2>&1
}

# lock serialises up and down between concurrent callers (several engineers
# or test runs share one working tree and one set of ports).
lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/lock"
	flock 9
}

# ---------------------------------------------------------------- binary

binary_ok() {
	[[ -x "$MINIO_BIN" ]] || return 1
	# A custom binary is trusted as is; ours must be the pinned version.
	[[ -n "${TAPELESS_MINIO_BIN:-}" ]] && return 0
	local info
	info="$(go version -m "$MINIO_BIN" 2>/dev/null)" || return 1
	grep -q "mod[[:space:]]*${MINIO_MODULE}[[:space:]]*${MINIO_VERSION}" <<<"$info"
}

# ensure_binary builds the pinned MinIO server when it is missing. A build
# already running (another make, or a hand-started go install) is waited
# for instead of started twice.
ensure_binary() {
	binary_ok && return 0
	[[ -n "${TAPELESS_MINIO_BIN:-}" ]] && die "TAPELESS_MINIO_BIN=$MINIO_BIN is not an executable"
	mkdir -p "$TOOLS"
	exec 8>"$REPO/.tools/minio-build.lock"
	flock 8
	local waited=0
	while pgrep -f "go install $MINIO_MODULE@" >/dev/null 2>&1 && ! binary_ok; do
		if ((waited % 60 == 0)); then
			log "waiting for a MinIO build that is already running ($waited s)"
		fi
		if ((waited > 1800)); then
			die "gave up waiting for the running MinIO build"
		fi
		sleep 5
		waited=$((waited + 5))
	done
	if ! binary_ok; then
		log "building the MinIO server $MINIO_VERSION into $TOOLS (several minutes the first time)"
		local start=$SECONDS
		# Built outside the project's module so that nothing of it enters go.mod.
		(cd /tmp && GOBIN="$TOOLS" GOFLAGS=-buildvcs=false go install "$MINIO_MODULE@$MINIO_VERSION") ||
			die "building MinIO failed"
		log "built MinIO in $((SECONDS - start)) s"
	fi
	flock -u 8
	binary_ok || die "$MINIO_BIN is not the pinned MinIO $MINIO_VERSION"
}

# ---------------------------------------------------------------- servers

# ours NAME succeeds when the pid file of NAME names a live MinIO process
# that this script started (its command line holds our data folder).
ours() {
	local pidf="$STATE/$1.pid" data pid
	[[ -f "$pidf" && -f "$STATE/$1.data" ]] || return 1
	pid="$(cat "$pidf")"
	data="$(cat "$STATE/$1.data")"
	[[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- " $data "
}

forget() {
	local name="$1" data
	if [[ -f "$STATE/$name.data" ]]; then
		data="$(cat "$STATE/$name.data")"
		# Only ever remove a folder this script made (mktemp pattern).
		if [[ "$data" == */tapeless-minio-"$name".* ]]; then
			rm -rf -- "$data"
		fi
	fi
	rm -f -- "$STATE/$name.pid" "$STATE/$name.data" "$STATE/$name.owner"
}

start_server() {
	local name="$1" port="$2" console="$3" data pid
	data="$(mktemp -d "${TMPDIR:-/tmp}/tapeless-minio-$name.XXXXXX")"
	echo "$data" >"$STATE/$name.data"
	echo "$OWNER" >"$STATE/$name.owner"
	: >"$STATE/$name.log"
	# setsid: the server outlives this script and is not hit by a Ctrl-C
	# aimed at the caller; down stops it.
	MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" \
		MINIO_UPDATE=off MINIO_CI_CD=on \
		setsid "$MINIO_BIN" server "$data" \
		--address "127.0.0.1:$port" --console-address "127.0.0.1:$console" \
		</dev/null >>"$STATE/$name.log" 2>&1 8>&- 9>&- &
	pid=$!
	echo "$pid" >"$STATE/$name.pid"
	log "started $name (pid $pid) on 127.0.0.1:$port, data $data, log .minio/$name.log"
}

# wait_healthy NAME PORT waits for the liveness endpoint of a server we just
# started and fails with its log when it does not come up.
wait_healthy() {
	local name="$1" port="$2" deadline=$((SECONDS + HEALTH_TIMEOUT))
	while ((SECONDS < deadline)); do
		[[ "$(health "$port")" == 200 ]] && return 0
		if ! ours "$name"; then
			# It exited. When another server took the port meanwhile
			# (a race with a hand-started one), use that one.
			if [[ "$(health "$port")" == 200 ]]; then
				log "$name exited but a server answers on $port; reusing it"
				forget "$name"
				return 0
			fi
			break
		fi
		sleep 0.2
	done
	log "$name did not become healthy on 127.0.0.1:$port within ${HEALTH_TIMEOUT}s; last lines of .minio/$name.log:"
	tail -n 30 "$STATE/$name.log" >&2 || true
	return 1
}

up_fallback() {
	local entry name port console need_binary=0 code
	for entry in "${SERVERS[@]}"; do
		IFS=: read -r name port console <<<"$entry"
		[[ "$(health "$port")" == 200 ]] || need_binary=1
	done
	if ((need_binary)); then
		ensure_binary
	fi
	for entry in "${SERVERS[@]}"; do
		IFS=: read -r name port console <<<"$entry"
		code="$(health "$port")"
		if [[ "$code" == 200 ]]; then
			if ours "$name"; then
				log "$name already running (started by this script), reusing it"
			else
				log "$name: a server already answers on 127.0.0.1:$port, reusing it"
			fi
			continue
		fi
		# A pid file whose process is gone is stale: clean it.
		ours "$name" || forget "$name"
		if port_open "$port" || port_open "$console"; then
			die "$name: port $port or $console is taken by something that is not a healthy MinIO; free it or stop it"
		fi
		start_server "$name" "$port" "$console"
		if ! wait_healthy "$name" "$port"; then
			stop_server "$name"
			die "$name failed to start"
		fi
	done
}

stop_server() {
	local name="$1" pid i
	if ! ours "$name"; then
		forget "$name"
		return 0
	fi
	pid="$(cat "$STATE/$name.pid")"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) did not stop in 10 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	log "stopped $name (pid $pid)"
	forget "$name"
}

down_fallback() {
	local entry name port console owner
	for entry in "${SERVERS[@]}"; do
		IFS=: read -r name port console <<<"$entry"
		[[ -f "$STATE/$name.pid" ]] || continue
		owner="$(cat "$STATE/$name.owner" 2>/dev/null || true)"
		if [[ -n "$OWNER" && "$owner" != "$OWNER" ]]; then
			log "$name was started by another run (${owner:-a plain up}); leaving it running"
			continue
		fi
		stop_server "$name"
	done
}

# ---------------------------------------------------------------- buckets

endpoints() {
	local entry name port console list=()
	for entry in "${SERVERS[@]}"; do
		IFS=: read -r name port console <<<"$entry"
		list+=("127.0.0.1:$port")
	done
	(
		IFS=,
		echo "${list[*]}"
	)
}

make_buckets() {
	(cd "$REPO" && go run ./scripts/miniosetup \
		-endpoints "$(endpoints)" -access-key "$ACCESS_KEY" -secret-key "$SECRET_KEY") ||
		die "creating the test buckets failed"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	lock
	if use_docker; then
		log "using docker compose ($REPO/docker-compose.yml)"
		# The two servers only: --wait would treat the one-shot setup
		# service's exit as a failure in some compose versions, and
		# make_buckets below does the same work.
		docker compose -f "$REPO/docker-compose.yml" up -d --wait minio-primary minio-secondary
		echo docker >"$STATE/mode"
	else
		up_fallback
	fi
	make_buckets
	log "MinIO ready: primary 127.0.0.1:9000, secondary 127.0.0.1:9100"
}

cmd_down() {
	lock
	if [[ "$(cat "$STATE/mode" 2>/dev/null || true)" == docker ]]; then
		docker compose -f "$REPO/docker-compose.yml" down -v
		rm -f "$STATE/mode"
	fi
	down_fallback
}

cmd_env() {
	cat <<EOF
export TAPELESS_TEST_S3_PRIMARY=127.0.0.1:9000
export TAPELESS_TEST_S3_SECONDARY=127.0.0.1:9100
export TAPELESS_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export TAPELESS_TEST_S3_SECRET_KEY=$SECRET_KEY
EOF
}

cmd_status() {
	local entry name port console who
	for entry in "${SERVERS[@]}"; do
		IFS=: read -r name port console <<<"$entry"
		who="not started by this script"
		ours "$name" && who="started by this script, pid $(cat "$STATE/$name.pid")"
		printf '%-9s 127.0.0.1:%s health %s (%s)\n' "$name" "$port" "$(health "$port")" "$who"
	done
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) cmd_env ;;
status) cmd_status ;;
*)
	echo "usage: scripts/minio.sh up|down|env|status" >&2
	exit 2
	;;
esac
