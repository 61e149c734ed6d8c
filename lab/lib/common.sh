# shellcheck shell=bash
# Common helpers for the daxpage lab: paths, logging, errors, timing.
# Sourced by lab/lab; not meant to be run on its own.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOP=$(cd "$LAB_DIR/.." && pwd)
CACHE=${DAXPAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/daxpage}
RESULTS=${DAXPAGE_RESULTS:-$TOP/results}
# The target a command works on (series/TARGET/, set by target_use) and
# its pin, series/TARGET/base.pin.
TARGET=""
PIN=""
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

# --- targets ---------------------------------------------------------------
#
# A target is a folder series/NAME/ with a base.pin (the base: a Debian
# linux-source package) and its patches, series/NAME/NNNN-*.patch (the
# cover letter 0000-* aside; none at all is fine: the base alone).

# series_targets: the names of the targets, in order (sort -V), one a line.
series_targets() {
	local d
	for d in "$TOP"/series/*/base.pin; do
		[[ -e $d ]] || continue
		d=${d%/base.pin}
		printf '%s
' "${d##*/}"
	done | sort -V
}

# targets_all ARRAY: set the array named ARRAY to every target, in
# series_targets' order (what a command does without --series); die, with
# the fix, when series/ has none.
targets_all() {
	local -n targets_all_out=$1
	mapfile -t targets_all_out < <(series_targets)
	[[ ${#targets_all_out[@]} -gt 0 ]] || target_check ""
}

# target_check NAME: die unless NAME is a target (for --series).
target_check() {
	local t=$1 known
	known=$(series_targets | xargs)
	[[ -n $known ]] || die "series/ has no target (no series/NAME/base.pin)" \
		"restore series/ from git (git checkout series/)"
	[[ -n $t && $t != */* && $t != .* && -f $TOP/series/$t/base.pin ]] ||
		die "unknown series '$t' (no series/$t/base.pin; targets: $known)" \
			"use --series with one of: $known"
}

# target_use NAME: make NAME the target of what follows (TARGET, PIN).
target_use() {
	TARGET=$1
	PIN=$TOP/series/$TARGET/base.pin
}

# target_kernelversion [NAME]: the pinned kernel version of NAME (default
# the current target), e.g. 6.12.117: the name of its base in tables.
target_kernelversion() {
	(target_use "${1:-$TARGET}" && read_pin BASE_KERNELVERSION)
}

# read_pin KEY: a value from the target's series/TARGET/base.pin.
read_pin() {
	local key=$1 line
	[[ -n $PIN ]] || die "internal: no target chosen before reading a pin" "report this as a lab bug"
	[[ -r $PIN ]] || die "base pin $PIN is missing" \
		"restore series/$TARGET/base.pin from git (git checkout series/$TARGET/base.pin)"
	line=$(grep -E "^$key=" "$PIN") ||
		die "base pin $PIN has no $key" "add a $key= line to series/$TARGET/base.pin"
	line=${line##*$'\n'}
	printf '%s\n' "${line#*=}"
}

# series_patches: the patches of the target's series, in order, without the
# cover letter.
series_patches() {
	local p
	for p in "$TOP/series/$TARGET"/[0-9][0-9][0-9][0-9]-*.patch; do
		[[ -e $p ]] || continue
		[[ ${p##*/} == 0000-* ]] && continue
		printf '%s\n' "$p"
	done
}

# series_hash: one hash over every patch of the series (empty series: "none").
# PROJECT_ID: the only author the project's patches may have.
PROJECT_ID="daxpage developers <daxpage@example.org>"

# series_identity_problems DIR: one line per patch file of DIR (the cover
# letter included) whose From: is not PROJECT_ID, and per patch (not the
# cover letter) without "Signed-off-by: PROJECT_ID". Prints nothing when
# every file is right.
series_identity_problems() {
	local f from
	for f in "$1"/[0-9][0-9][0-9][0-9]-*.patch; do
		[[ -e $f ]] || continue
		from=$(sed -n '/^From: /{p;q}' "$f")
		# A folded header (a second line starting with a blank) is a
		# name that git had to wrap: not the project's.
		if [[ $from != "From: $PROJECT_ID" ]] ||
			sed -n '/^From: /{n;p;q}' "$f" | grep -q '^[[:space:]]'; then
			printf '%s: From: is "%s", not %s\n' "${f##*/}" "${from#From: }" "$PROJECT_ID"
		fi
		if [[ ${f##*/} != 0000-* ]] && ! grep -qxF "Signed-off-by: $PROJECT_ID" "$f"; then
			printf '%s: no Signed-off-by: %s\n' "${f##*/}" "$PROJECT_ID"
		fi
	done
}

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

# progress_watch LOGFILE LABEL TOTAL [HOW]: print a progress line every 20 s
# while the caller's job runs. Counts compiled objects (lines of kbuild's
# "  CC", "  AS" and "  LD"). TOTAL is what a build from scratch compiles
# (HOW says where that figure comes from: "as last time", "estimate"), or 0
# for an incremental build, where only a count can be shown.
progress_watch() {
	local logf=$1 label=$2 total=$3 how=${4:-} n t0 pct fd
	# Runs in the background: hold none of the run's locks, and take the
	# sleep along when killed.
	for fd in "${LAB_LOCK_FDS[@]}"; do
		exec {fd}>&-
	done
	trap 'kill "$(jobs -p)" 2>/dev/null; exit 0' TERM
	t0=$(date +%s)
	while :; do
		sleep 20 &
		wait "$!"
		n=$(grep -cE '^  (CC|AS|LD) ' "$logf" 2>/dev/null) || n=0
		if (( total > 0 )); then
			pct=$(( n * 100 / total ))
			((pct <= 99)) || pct=99
			printf '[lab]   %s: %d of about %d objects (%d%%, %s), %ds, log: %s\n' "$label" "$n" \
				"$total" "$pct" "$how" $(( $(date +%s) - t0 )) "$logf"
		elif [[ -n $how ]]; then
			printf '[lab]   %s: %d objects (%s), %ds, log: %s\n' "$label" "$n" "$how" \
				$(( $(date +%s) - t0 )) "$logf"
		else
			printf '[lab]   %s: %d objects (incremental), %ds, log: %s\n' "$label" "$n" \
				$(( $(date +%s) - t0 )) "$logf"
		fi
	done
}

# --- locks -----------------------------------------------------------------
#
# A lab run owns what it changes in the cache: its worktree from the base to
# the report (apply, configure, build, module staging, the test binaries and
# the guests that use them), its target's scratch worktree wt/am-TARGET
# (lock am-TARGET) while it uses it, and the kernel repository while it
# imports a base or adds a worktree. Each is
# a flock on $CACHE/locks/NAME.lock; a second run waits for it, saying who
# holds it, at most LAB_LOCK_TIMEOUT seconds (default 4 hours), then stops.
# The kernel build itself also takes $CACHE/build.lock (one build at a time
# on the machine, whatever the worktree). Locks are taken in the order
# worktree, am, repo.

LAB_LOCK_TIMEOUT=${LAB_LOCK_TIMEOUT:-14400}
LOCK_OWNER=${LOCK_OWNER:-lab/lab}
# -g: global also where a function sources this file (bats' setup())
declare -gA LAB_LOCK_FDS=() LAB_LOCK_DEPTH=()

# lab_lock NAME WHAT: take lock NAME (WHAT names it in messages) for this
# process. Nests: a process that holds NAME only counts one more hold. Dies
# when another run still holds it after LAB_LOCK_TIMEOUT seconds. (A
# subshell inherits its parent's holds; what it takes itself ends with it.)
lab_lock() {
	local name=$1 what=$2 f fd holder
	if [[ -n ${LAB_LOCK_FDS[$name]:-} ]]; then
		LAB_LOCK_DEPTH[$name]=$((${LAB_LOCK_DEPTH[$name]:-1} + 1))
		return 0
	fi
	mkdir -p "$CACHE/locks"
	f=$CACHE/locks/$name.lock
	exec {fd}>>"$f"
	if ! flock -n "$fd"; then
		holder=$(cat "$f.owner" 2>/dev/null) || holder="owner unknown"
		# On stderr: callers run some lock holders inside $(...).
		log "$what is in use by another lab run ($holder); waiting for it (at most ${LAB_LOCK_TIMEOUT}s, LAB_LOCK_TIMEOUT)" >&2
		if ! flock -w "$LAB_LOCK_TIMEOUT" "$fd"; then
			exec {fd}>&-
			die "$what is still in use by another lab run ($holder) after ${LAB_LOCK_TIMEOUT}s" \
				"wait until that run ends (or stop it), then retry"
		fi
		log "$what is free now" >&2
	fi
	printf 'pid %s, %s, since %s\n' "$BASHPID" "$LOCK_OWNER" "$(date '+%F %T')" >"$f.owner"
	LAB_LOCK_FDS[$name]=$fd
	LAB_LOCK_DEPTH[$name]=1
}

# lab_unlock NAME: give back one hold of lock NAME; the last one releases it.
# Nothing to do when this process does not hold it.
lab_unlock() {
	local fd=${LAB_LOCK_FDS[$1]:-}
	[[ -n $fd ]] || return 0
	LAB_LOCK_DEPTH[$1]=$((${LAB_LOCK_DEPTH[$1]:-1} - 1))
	((LAB_LOCK_DEPTH[$1] <= 0)) || return 0
	: >"$CACHE/locks/$1.lock.owner"
	exec {fd}>&-
	unset "LAB_LOCK_FDS[$1]" "LAB_LOCK_DEPTH[$1]"
}

# --- input checks ----------------------------------------------------------

# is_uint VALUE: VALUE is a whole number (no sign, no suffix).
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# need_value OPTION ARGC [VALUE]: die unless OPTION was given a value (ARGC
# is the count of arguments left, the option included) that is not itself
# an option.
need_value() {
	(($2 >= 2)) || die "option $1 needs a value" "see 'lab/lab help'"
	[[ ${3:-} != -* ]] || die "option $1 needs a value, not the option '$3'" "see 'lab/lab help'"
}

# lab_paths_check: path_check of the checkout, DAXPAGE_CACHE and
# DAXPAGE_RESULTS, the three places a run and its guests use.
lab_paths_check() {
	path_check "the lab's checkout" "$TOP"
	path_check "DAXPAGE_CACHE" "$CACHE"
	path_check "DAXPAGE_RESULTS" "$RESULTS"
}

# path_check WHAT PATH: die unless PATH is absolute and made only of the
# characters virtme-ng accepts in --rwdir/--rodir (its _SAFE_PATH_PATTERN,
# less the blank, which the guest's shell command would split): letters,
# digits and _ + . - /.
path_check() {
	local what=$1 path=$2
	[[ $path == /* ]] ||
		die "$what '$path' is not an absolute path" "give it as an absolute path (starting with /)"
	[[ $path =~ ^[A-Za-z0-9_+./-]+$ ]] ||
		die "$what '$path' has characters the guest boot cannot pass to virtme-ng (only letters, digits and _ + . - / can be shared with the guest)" \
			"use such a path (clone the project there, or set DAXPAGE_CACHE / DAXPAGE_RESULTS)"
}

# subshell_rc CMD...: run CMD in a subshell with errexit in force and put
# its exit status in SUBSHELL_RC. For running one of several runs (one per
# target) to its end, whatever the others do. Call it as a plain command,
# never in an if, || or && list: bash ignores errexit in everything such a
# list runs, the subshell included, so a failing step would not stop it.
SUBSHELL_RC=0
subshell_rc() {
	set +e
	(
		set -e
		"$@"
	)
	SUBSHELL_RC=$?
	set -e
}
