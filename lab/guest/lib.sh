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

# nfit_real_range [CMDLINE]: "SIZE BASE" in bytes of the first
# memmap=SIZE$BASE on the kernel command line (CMDLINE, default
# /proc/cmdline): the range the host reserves for nfit_test's real-memmap
# mode (LAB_NFIT_RESERVE; the e820 pmem range is memmap=SIZE!BASE). Returns
# 1 when there is none.
nfit_real_range() {
	local a
	local -a args
	read -ra args <"${1:-/proc/cmdline}"
	for a in "${args[@]}"; do
		[[ $a == memmap=*\$* ]] || continue
		a=${a#memmap=}
		echo "$(size_bytes "${a%%\$*}") $(size_bytes "${a#*\$}")"
		return 0
	done
	return 1
}

# size_bytes SIZE: memmap='s size (a number, decimal or 0x hex, or decimal
# with K, M, G or T) in bytes, in decimal.
size_bytes() {
	local n=${1%[KkMmGgTt]}
	case ${1: -1} in
	K | k) echo $((n << 10)) ;;
	M | m) echo $((n << 20)) ;;
	G | g) echo $((n << 30)) ;;
	T | t) echo $((n << 40)) ;;
	*) echo $(($1)) ;;
	esac
}

# nfit_real_regions BASE SIZE [NDCTL]: check, with NDCTL (default: ndctl
# from PATH), that nfit_test's PMEM regions are where its real-memmap mode
# puts them, in [BASE, BASE + SIZE): every one of nfit_test.0's (two
# regions; its third SPA range has none of its own) and one of
# nfit_test.1's (its other one, a virtual CD region, stays vmalloc()
# memory). Lists the regions; returns 1 with the reason when not.
nfit_real_regions() {
	local base=$1 size=$2 ndctl=${3:-ndctl} b r start n
	for b in nfit_test.0 nfit_test.1; do
		n=0
		for r in $("$ndctl" list -R -t pmem -b "$b" | jq -r 'if type == "array" then .[].dev else .dev end'); do
			start=$(<"/sys/bus/nd/devices/$r/resource")
			echo "$b: $r at $start"
			if ((start >= base && start < base + size)); then
				n=$((n + 1))
			elif [[ $b == nfit_test.0 ]]; then
				echo "$r is not in the reserved range"
				return 1
			fi
		done
		((n > 0)) || { echo "no PMEM region of $b in the reserved range"; return 1; }
	done
}

# nfit_real_options CMDLINE DIR: write DIR/daxpage-nfit-real.conf, the
# options that load nfit_test in real-memmap mode in the range of CMDLINE's
# memmap=SIZE$BASE (nfit_real_range). DIR's parent must be on a tmpfs (the
# guest's /run, not the host's root over 9p). What keeps this off a host is
# the range itself: only a kernel booted with memmap=SIZE$BASE has one. Prints the file;
# returns 1 with the reason when there is no range or DIR is not a tmpfs.
nfit_real_options() {
	local range size base fs f=$2/daxpage-nfit-real.conf
	range=$(nfit_real_range "$1") ||
		{ echo "no memmap=SIZE\$BASE on the kernel command line (LAB_NFIT_RESERVE)"; return 1; }
	read -r size base <<<"$range"
	fs=$(findmnt -n -o FSTYPE --target "${2%/*}" || true)
	[[ $fs == tmpfs ]] || { echo "${2%/*} is on '$fs', not on a tmpfs of the guest: not writing there"; return 1; }
	mkdir -p "$2" || return
	printf 'options nfit_test reserved_base=%#x reserved_size=%#x\n' "$base" "$size" >"$f" || return
	cat "$f"
}
