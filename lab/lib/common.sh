# shellcheck shell=bash
# Common helpers for the daxpage lab: paths, logging, errors, timing.
# Sourced by lab/lab; not meant to be run on its own.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOP=$(cd "$LAB_DIR/.." && pwd)
CACHE=${DAXPAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/daxpage}
RESULTS=${DAXPAGE_RESULTS:-$TOP/results}
PIN=$TOP/series/base.pin
JOBS=${DAXPAGE_JOBS:-$(( $(nproc) + 1 ))}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}

# Every stage appends its wall time here (stage seconds), for the summary.
STAGE_TIMES=()
RUN_LOG_DIR=""

if [[ -t 1 ]]; then
	C_RED=$'\e[31m' C_GRN=$'\e[32m' C_YEL=$'\e[33m' C_BLD=$'\e[1m' C_OFF=$'\e[0m'
else
	C_RED="" C_GRN="" C_YEL="" C_BLD="" C_OFF=""
fi

log() { printf '%s[lab]%s %s\n' "$C_BLD" "$C_OFF" "$*"; }
warn() { printf '%s[lab] WARNING:%s %s\n' "$C_YEL" "$C_OFF" "$*" >&2; }

# die CAUSE FIX: one line saying what went wrong and one saying how to fix it.
die() {
	printf '%s[lab] ERROR:%s %s\n' "$C_RED" "$C_OFF" "$1" >&2
	if [[ $# -gt 1 ]]; then
		printf '%s[lab] fix:%s %s\n' "$C_RED" "$C_OFF" "$2" >&2
	fi
	exit 1
}

ok() { printf '%s[lab]%s %s\n' "$C_GRN" "$C_OFF" "$*"; }

# stage NAME CMD...: run one stage, time it, record the time.
stage() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	log "== $name"
	rc=0
	"$@" || rc=$?
	STAGE_TIMES+=("$name $(( $(date +%s) - t0 ))")
	return "$rc"
}

# read_pin KEY: a value from series/base.pin.
read_pin() {
	local key=$1 line
	[[ -r $PIN ]] || die "base pin $PIN is missing" \
		"restore series/base.pin from git (git checkout series/base.pin)"
	line=$(grep -E "^$key=" "$PIN" | tail -n1) ||
		die "base pin $PIN has no $key" "add a $key= line to series/base.pin"
	printf '%s\n' "${line#*=}"
}

# series_patches: the patches of series/, in order, without the cover letter.
series_patches() {
	local p
	for p in "$TOP"/series/[0-9][0-9][0-9][0-9]-*.patch; do
		[[ -e $p ]] || continue
		[[ ${p##*/} == 0000-* ]] && continue
		printf '%s\n' "$p"
	done
}

# series_hash: one hash over every patch of the series (empty series: "none").
series_hash() {
	local -a ps
	mapfile -t ps < <(series_patches)
	if [[ ${#ps[@]} -eq 0 ]]; then
		echo none
	else
		cat "${ps[@]}" | sha256sum | cut -c1-16
	fi
}

# with_timeout SECONDS CMD...: run CMD, kill it (and its group) after SECONDS.
with_timeout() {
	local secs=$1
	shift
	timeout --kill-after=20 "$secs" "$@"
}

# require_free_disk DIR GIB
require_free_disk() {
	local dir=$1 need=$2 avail
	mkdir -p "$dir"
	avail=$(df -Pk "$dir" | awk 'NR==2 {print int($4 / 1048576)}')
	if (( avail < need )); then
		die "only ${avail} GiB free under $dir; the lab needs ${need} GiB" \
			"free disk space, or point DAXPAGE_CACHE at a larger file system"
	fi
}

# require_free_ram GIB
require_free_ram() {
	local need=$1 avail
	avail=$(awk '/^MemAvailable:/ {print int($2 / 1048576)}' /proc/meminfo)
	if (( avail < need )); then
		die "only ${avail} GiB of RAM available; the guest needs ${need} GiB" \
			"stop other memory users, or lower LAB_GUEST_MEM (now ${LAB_GUEST_MEM:-default})"
	fi
}

# progress_watch LOGFILE LABEL TOTAL: print a progress line every 20 s while
# the caller's job runs. Counts compiled objects (lines of kbuild's "  CC").
# TOTAL is the count of the previous build, or 0 when unknown.
progress_watch() {
	local logf=$1 label=$2 total=$3 n t0
	t0=$(date +%s)
	while sleep 20; do
		n=$(grep -cE '^  (CC|AS|LD) ' "$logf" 2>/dev/null) || n=0
		if (( total > 0 )); then
			printf '[lab]   %s: %d/%d objects (%d%%), %ds, log: %s\n' "$label" "$n" \
				"$total" $(( n * 100 / total )) $(( $(date +%s) - t0 )) "$logf"
		else
			printf '[lab]   %s: %d objects, %ds, log: %s\n' "$label" "$n" \
				$(( $(date +%s) - t0 )) "$logf"
		fi
	done
}
