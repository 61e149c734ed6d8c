# shellcheck shell=bash
# Shared by the guest scripts (suite.sh, bench.sh, ndctl.sh, xfstests.sh):
# progress lines, TAP results, logged steps, module loading and the labels
# of the QEMU NVDIMMs. The functions write to OUT, the directory (shared
# with the host) the caller's results go to: set it before calling them.
#
# A caller that keeps more than TAP (ndctl.sh, xfstests.sh: a results.tsv)
# defines its own result() after sourcing this file; run_step() calls
# whichever result() is defined.

T0=$(date +%s)
N=0

# guest_start: the results directory with an empty suite.tap and log/,
# tracefs and debugfs mounted, and what kernel and command line this is.
guest_start() {
	mkdir -p "$OUT/log"
	: >"$OUT/suite.tap"
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
	mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
	uname -a >"$OUT/uname.txt"
	cat /proc/cmdline >"$OUT/cmdline.txt"
}

# say WORDS...: a progress line for the console (the host shows them).
say() { printf 'daxpage: [%5ds] %s\n' $(($(date +%s) - T0)) "$*"; }

# settle: let udev finish with the uevents so far (at most 60 s).
settle() { udevadm settle --timeout=60 2>/dev/null || sleep 2; }

# tap_result NAME STATUS [REASON] [NOTE]: one line in OUT/suite.tap and one
# on the console (with NOTE, e.g. the time taken). STATUS is ok, skip or
# anything else for a failure; a '#' in REASON would start a TAP directive,
# so it is dropped.
tap_result() {
	local name=$1 st=$2 why=${3:-} note=${4:-}
	N=$((N + 1))
	why=${why//#/}
	case $st in
	ok) echo "ok $N - $name" >>"$OUT/suite.tap" ;;
	skip) echo "ok $N - $name # SKIP $why" >>"$OUT/suite.tap" ;;
	*) echo "not ok $N - $name${why:+ # $why}" >>"$OUT/suite.tap" ;;
	esac
	say "$st: $name${note:+ ($note)}${why:+ ($why)}"
}

# result NAME STATUS [REASON]: tap_result, unless the caller redefines it.
result() { tap_result "$@"; }

# run_step NAME LOG SHOWN CMD...: run CMD in this shell (it may set
# globals; set -e does not apply inside it, so CMD checks its own commands)
# with its output in LOG, then result NAME ok, or fail with "see SHOWN" and
# the last 15 lines of LOG. Returns CMD's exit status.
run_step() {
	local name=$1 log=$2 shown=$3 rc=0
	shift 3
	say "run: $name"
	"$@" >"$log" 2>&1 || rc=$?
	if [[ $rc -eq 0 ]]; then
		result "$name" ok
		return 0
	fi
	result "$name" fail "see $shown"
	tail -n 15 "$log" | sed 's/^/    /'
	return "$rc"
}

# modules_nfit_test [MODULE...]: load nfit_test and then MODULEs, and check
# that the test build was loaded: every module nfit_test overrides resolves
# to updates/ (where the lab stages tools/testing/nvdimm's modules, which
# depmod prefers) and libnvdimm carries the out-of-tree taint. ndctl's C
# tests make the same check (test/core.c).
modules_nfit_test() {
	local m
	modprobe nfit_test || return
	if [[ $# -gt 0 ]]; then
		modprobe -a "$@" || return
	fi
	settle
	for m in libnvdimm nfit nd_pmem nd_e820 dax_pmem device_dax; do
		modinfo -n "$m" | grep /updates/ || return
	done
	grep -q O /sys/module/libnvdimm/taint
}

# modules_production: load the platform drivers for the QEMU NVDIMMs
# (nfit), the memmap= range (nd_e820), fsdax (nd_pmem) and devdax
# (dax_pmem), and check that none came from updates/: these are the
# production builds, whose __pmem_direct_access() nfit_test replaces.
modules_production() {
	local m
	for m in nfit nd_e820 nd_pmem dax_pmem; do
		modprobe "$m" || return
	done
	settle
	! modinfo -n nd_pmem | grep /updates/
}

# nvdimm_labels [NDCTL]: write fresh labels on both QEMU NVDIMMs (the lab
# creates their backing files blank for every boot; labels allow more than
# one namespace per region) with NDCTL (default: ndctl from PATH), and
# list their two regions, sorted, in OUT/nvdimm-regions.txt.
nvdimm_labels() {
	local ndctl=${1:-ndctl} r
	"$ndctl" list -b ACPI.NFIT -D | jq -e 'length == 2' || return
	"$ndctl" disable-region -b ACPI.NFIT all || return
	"$ndctl" init-labels -f -b ACPI.NFIT all || return
	"$ndctl" enable-region -b ACPI.NFIT all || return
	settle
	r=$("$ndctl" list -b ACPI.NFIT -R | jq -r '[.[].dev] | sort | .[]') || return
	echo "$r" >"$OUT/nvdimm-regions.txt"
	[[ $(grep -c . <<<"$r") -eq 2 ]]
}

# on_dax_tmp DIR PROG [ARG...]: run PROG in a private mount namespace with
# DIR (a DAX mount) bound over /tmp and as the working directory (cd first:
# DIR lies below /tmp, so its path is hidden once it is bound there). PROG
# is opened before the bind and run through its descriptor: it may live
# below /tmp too (a checkout or DAXPAGE_CACHE there, shared with the guest
# at its own path), which the bind hides as well. Exported, for timeout's
# child bash.
on_dax_tmp() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m bash -c 'cd "$1" && exec 9<"$2" && mount --bind "$1" /tmp && shift 2 &&
		exec /proc/self/fd/9 "$@"' sh "$@"
}
export -f on_dax_tmp
