#!/bin/bash
# daxpage guest: ndctl's own test suites (the meson suites "ndctl" and "dax")
# on the kernel under test, with the nfit_test modules. Runs inside the QEMU
# guest as root; started by lab/lib/external.sh (ndctl_suite).
#
# usage: ndctl.sh PASS OUTDIR BUILD
#   PASS    "test" (nfit_test modules staged in updates/)
#   OUTDIR  a directory shared with the host; results go to OUTDIR/PASS/
#   BUILD   ndctl's meson build directory, built on the host (read-only here)
# The host writes OUTDIR/PASS/tests.tsv first (name, suite, program: the
# tests to run, in meson's order) and OUTDIR/PASS/params (key=value:
# timeout_multiplier, deadline, tests, nfit_mode: default or real, nfit_test's
# mode, see the setup below; repeat: how many rounds of the tests to run).
#
#        ndctl.sh --wrap CMD...
# is meson's --wrapper around every test (see wrap below).
#
# Writes, as each test ends (so that a hung guest still leaves the results
# so far on the host): OUTDIR/PASS/suite.tap (the setup checks, then one line
# per test named SUITE/TEST, per round with repeat), results.tsv (name,
# status, seconds, meson's verdict, reason), log/PROGRAM.log (each test's
# output; log/PROGRAM.K.log in round K with repeat), meson-logs/
# (meson's testlog-bash.txt and .json: meson adds the wrapper's name), and
# at the end dmesg.txt. Prints progress
# lines starting with "daxpage:" and ends with "daxpage: suite done".
set -euo pipefail

# Drivers that udev would load for the e820 and ACPI.NFIT devices and for
# new namespaces on a real machine. lab/lib/guest.sh keeps them from being
# autoloaded (modprobe.blacklist= on the kernel command line, so that
# virtme-ng's production modules are never picked up); the lab's own suite
# loads them once by hand. ndctl's tests unload some of them on the way
# (common's _cleanup: "modprobe -r nfit_test" also drops every dependency
# left unused: nd_pmem, dax_pmem, device_dax, ...) and count on udev to bring
# them back, so the wrapper loads them again before every test.
PLATFORM_MODULES=(nfit nd_e820 nd_pmem nd_btt dax_pmem device_dax kmem)
SELF=$(readlink -f "$0")
# shellcheck source=lab/guest/lib.sh
. "${SELF%/*}/lib.sh"

# wrap CMD...: run one test the way meson would, after restoring the
# platform drivers, with its output kept in OUT/log/PROGRAM.log on the host
# as it is written (and handed to meson at the end, for testlog.txt), and
# with begin/end markers in the kernel log so that the host can tell which
# test a kernel message came from. Exit status: the test's (77 = skip).
# With rounds (DAXPAGE_NDCTL_REPEAT > 1), round K of a test keeps its output
# in log/PROGRAM.K.log.
wrap() {
	local prog=${*: -1} log rc=0
	prog=${prog##*/}
	log=$DAXPAGE_NDCTL_OUT/log/$prog.log
	((${DAXPAGE_NDCTL_REPEAT:-1} == 1)) || log=$DAXPAGE_NDCTL_OUT/log/$prog.$DAXPAGE_NDCTL_ROUND.log
	if ! modprobe -a "${PLATFORM_MODULES[@]}" >"$log" 2>&1; then
		echo "daxpage wrapper: modprobe -a ${PLATFORM_MODULES[*]} failed (above)" >>"$log"
	fi
	settle
	# (With rounds the marker names the round too: PROGRAM#K.)
	((${DAXPAGE_NDCTL_REPEAT:-1} == 1)) || prog+="#$DAXPAGE_NDCTL_ROUND"
	echo "daxpage-ndctl: begin $prog" >/dev/kmsg
	"$@" >>"$log" 2>&1 </dev/null || rc=$?
	echo "daxpage-ndctl: end $prog rc=$rc" >/dev/kmsg
	cat "$log"
	exit "$rc"
}
if [[ ${1:-} == --wrap ]]; then
	shift
	wrap "$@"
fi

PASS=$1
OUT=$2/$1
BUILD=$3

param() { sed -n "s/^$1=//p" "$OUT/params" | tail -n1; }
MULT=$(param timeout_multiplier)
DEADLINE=$(param deadline)
SUBSET=$(param tests)
REPEAT=$(param repeat)
REPEAT=${REPEAT:-1}
NFIT_MODE=$(param nfit_mode)
NFIT_MODE=${NFIT_MODE:-default}

guest_start
mkdir -p "$OUT/meson-logs"
: >"$OUT/results.tsv"

# result NAME STATUS [REASON] [SECONDS] [MESON-VERDICT]: STATUS ok, fail or
# skip; one TAP line and one TSV line.
result() {
	local why=${3:-}
	tap_result "$1" "$2" "$why" "${4:+${4}s}"
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${4:--}" "${5:--}" "${why//#/}" >>"$OUT/results.tsv"
}

# check NAME CMD...: one setup step, in this shell; its output goes to
# log/setup-NAME.log.
check() { run_step "setup/$1" "$OUT/log/setup-$1.log" "log/setup-$1.log" "${@:2}"; }

# not_run WHY: every test "not run" because of WHY, and the end of the suite.
not_run() {
	local name suite
	while IFS=$'\t' read -r name suite _; do
		result "$suite/$name" fail "not run: $1"
	done <"$OUT/tests.tsv"
	dmesg >"$OUT/dmesg.txt"
	echo "daxpage: suite done"
	exit 0
}

# --- setup ----------------------------------------------------------------
# nfit_test in real-memmap mode (the host asked for nfit_mode=real): its
# options, naming the range the host reserved, go into /run/modprobe.d (the
# guest's own tmpfs; kmod reads it like /etc/modprobe.d), so that every
# load of nfit_test takes them: modprobe in ndctl's scripts and libkmod's
# probe in its C tests (test/core.c) both apply them; none of ndctl v85's
# tests loads it another way. Checked after the first load
# (nfit_test-real-mode), and the host counts the loads in real-memmap mode
# per test (nfit-loads.tsv).
# nfit_real_mode: the loaded nfit_test is in real-memmap mode: it took the
# options and its PMEM regions are in the reserved range.
nfit_real_mode() {
	local size base
	read -r size base <<<"$(nfit_real_range /proc/cmdline)"
	[[ -d /sys/module/nfit_test ]] || { echo "nfit_test is not loaded"; return 1; }
	echo "reserved_base=$(cat /sys/module/nfit_test/parameters/reserved_base 2>/dev/null || echo none)"
	(($(cat /sys/module/nfit_test/parameters/reserved_base 2>/dev/null || echo 0) == base)) ||
		{ echo "nfit_test did not take reserved_base=$base"; dmesg | grep nfit_test | tail -n 5; return 1; }
	nfit_real_regions "$base" "$size" "$BUILD/ndctl/ndctl"
}
if [[ $NFIT_MODE == real ]] && ! check nfit_test-real-options nfit_real_options /proc/cmdline /run/modprobe.d; then
	not_run "the nfit_test options of real-memmap mode could not be set (log/setup-nfit_test-real-options.log)"
fi

# The same module check as the lab's suite (lab/guest/suite.sh): nfit_test
# loads, and every module it overrides resolves to updates/ with the
# out-of-tree taint. ndctl's C tests check the same (test/core.c) and would
# otherwise fail with "appears to be production version".
check modules-nfit_test modules_nfit_test "${PLATFORM_MODULES[@]}" || true
if [[ $NFIT_MODE == real ]] && ! check nfit_test-real-mode nfit_real_mode; then
	not_run "nfit_test is not in real-memmap mode (log/setup-nfit_test-real-mode.log)"
fi

# Then back to the state of a fresh boot, which ndctl's tests assume: an
# enabled region pins its bus provider module, so the C tests' reset
# (test/core.c: disable nfit_test.0's regions, remove nfit_test, insert it
# again) cannot remove nfit_test while nfit_test.1's regions are still
# enabled, and skips with "nfit_test unavailable". ndctl's own _cleanup
# (test/common) unloads it this way.
nfit_test_unload() {
	local ndctl=$BUILD/ndctl/ndctl
	"$ndctl" disable-region -b nfit_test.0 all || return
	"$ndctl" disable-region -b nfit_test.1 all || return
	modprobe -r nfit_test || return
	! grep -q '^nfit_test ' /proc/modules
}
check nfit_test-unload nfit_test_unload || true

# The QEMU NVDIMMs start with blank label areas (the lab recreates their
# backing files for every boot). Labels are needed for more than one
# namespace per region (sub-section.sh, dm.sh, daxctl-devices.sh, align.sh).
check acpi-nfit-labels nvdimm_labels "$BUILD/ndctl/ndctl" || true

# The root file system (and with it the build directory in the lab cache) is
# read-only 9p here, but meson test writes its logs into BUILD/meson-logs and
# runs every test with BUILD as its working directory, where the tests make
# their mount points and trace-cmd its trace.dat. So: a tmpfs overlay over
# BUILD, at the same path (meson's stored test commands name it), and
# meson-logs bound to OUT/meson-logs on the host.
writable_build() {
	# (DAXPAGE_NDCTL_RUNDIR: lab/test/ndctl.bats runs this script outside a guest.)
	local w=${DAXPAGE_NDCTL_RUNDIR:-/run/daxpage-ndctl}
	mkdir -p "$w/upper" "$w/work" || return
	mount -t overlay daxpage-ndctl -o "lowerdir=$BUILD,upperdir=$w/upper,workdir=$w/work" "$BUILD" || return
	mkdir -p "$BUILD/meson-logs" || return
	mount --bind "$OUT/meson-logs" "$BUILD/meson-logs" || return
	touch "$BUILD/.daxpage-writable" && rm "$BUILD/.daxpage-writable"
}
check writable-build-dir writable_build || not_run "no writable build directory"

# --- the tests ------------------------------------------------------------
# skip_reason LOG: what a skipped test said about why (ndctl's do_skip prints
# "kernel X: reason"; the C tests print their own words).
skip_reason() {
	local r
	r=$(grep -iE 'skip|not (supported|available)|missing|unable' "$1" 2>/dev/null | tail -n1 || true)
	[[ -n $r ]] || r=$(grep -v '^+' "$1" 2>/dev/null | grep . | tail -n1 || true)
	printf '%s' "${r:0:140}"
}

declare -A SEEN=()
NTESTS=$(grep -c . "$OUT/tests.tsv" || true)
# The tests meson runs: the whole "ndctl" and "dax" suites, or the host's
# subset. Suites are given as project:suite because a bare "ndctl" also
# matches the project, i.e. every test including the cxl suite.
if [[ -n $SUBSET ]]; then
	read -r -a SEL <<<"$SUBSET"
else
	SEL=(--suite ndctl:ndctl --suite ndctl:dax)
fi
say "meson test ($PASS modules, nfit_test in $NFIT_MODE mode): $NTESTS tests, $REPEAT round(s), timeout multiplier $MULT, deadline ${DEADLINE}s"
export DAXPAGE_NDCTL_OUT=$OUT DAXPAGE_NDCTL_REPEAT=$REPEAT
# meson prints one line per test as it ends:
#   " 3/36 ndctl:ndctl / create.sh   OK   12.34s"
#   "12/36 ndctl:dax / dm.sh         FAIL 20.01s   exit status 1"
re='^ *[0-9]+/[0-9]+ +[^ ]+:([^ ]+) / ([^ ]+) +([A-Z]+) +([0-9.]+)s *(.*)$'

# meson_round K LEFT: one meson test of the selection, round K (with
# repeats: the wrapper's logs are PROGRAM.K.log, meson's testlog-K), stopped
# after LEFT seconds; a result per test meson reports. Rounds, and not
# meson's --repeat, because --repeat stops at the first failure.
meson_round() {
	local k=$1 left=$2 logbase=testlog line suite name verdict secs extra prog plog
	((REPEAT == 1)) || logbase=testlog-$k
	export DAXPAGE_NDCTL_ROUND=$k
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$OUT/meson-test.log"
		[[ $line =~ $re ]] || continue
		suite=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]} verdict=${BASH_REMATCH[3]}
		secs=${BASH_REMATCH[4]} extra=${BASH_REMATCH[5]}
		[[ $extra == \(*\) ]] && extra=${extra:1:-1}
		prog=$(awk -F'\t' -v n="$name" '$1 == n {print $3; exit}' "$OUT/tests.tsv")
		SEEN[$name]=$((${SEEN[$name]:-0} + 1))
		plog=log/$prog.log
		((REPEAT == 1)) || plog=log/$prog.$k.log
		case $verdict in
		OK | EXPECTEDFAIL) result "$suite/$name" ok "" "$secs" "$verdict" ;;
		SKIP) result "$suite/$name" skip "$(skip_reason "$OUT/$plog")" "$secs" "$verdict" ;;
		TIMEOUT) result "$suite/$name" fail "timed out after ${secs}s, see $plog" "$secs" "$verdict" ;;
		INTERRUPT) result "$suite/$name" fail "stopped at the ${DEADLINE}s deadline, see $plog" "$secs" "$verdict" ;;
		*) result "$suite/$name" fail "$verdict${extra:+ ($extra)}, see $plog" "$secs" "$verdict" ;;
		esac
	done < <(timeout --kill-after=30 "$left" meson test -C "$BUILD" --no-rebuild --logbase "$logbase" \
		--timeout-multiplier "$MULT" --wrapper "bash $SELF --wrap" "${SEL[@]}" 2>&1 || true)
}

# The deadline (a little short of the host's guest timeout) stops meson, so
# that a test stuck in the kernel still leaves a report behind; with
# rounds, it counts from the start of the first.
# Each round after the first starts with nfit_test unloaded, as the first
# does: a test that fails can leave it loaded with what it injected
# (inject-error.sh exits at its first check without its cleanup), and the
# next rounds would then fail on that, not on their own.
T_MESON=$(date +%s)
for ((round = 1; round <= REPEAT; round++)); do
	left=$((DEADLINE - ($(date +%s) - T_MESON)))
	((left > 0)) || break
	if ((REPEAT > 1)); then
		say "round $round of $REPEAT"
		if ((round > 1)) && [[ -d /sys/module/nfit_test ]]; then
			nfit_test_unload >>"$OUT/log/rounds.log" 2>&1 ||
				say "round $round: nfit_test did not unload (log/rounds.log)"
		fi
	fi
	meson_round "$round" "$left"
done

# Anything meson did not report (it was stopped at the deadline): one line
# per test, with the number of rounds it missed.
while IFS=$'\t' read -r name suite _; do
	if [[ -z ${SEEN[$name]:-} ]]; then
		result "$suite/$name" fail "not run: meson stopped at the ${DEADLINE}s deadline"
	elif ((SEEN[$name] < REPEAT)); then
		result "$suite/$name" fail "not run in $((REPEAT - SEEN[$name])) of $REPEAT rounds: meson stopped at the ${DEADLINE}s deadline"
	fi
done <"$OUT/tests.tsv"

dmesg >"$OUT/dmesg.txt"
say "ndctl suites done: $N results"
echo "daxpage: suite done"
