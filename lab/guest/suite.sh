#!/bin/bash
# daxpage guest suite: runs inside the QEMU guest as root.
#
# usage: suite.sh PASS OUTDIR BINDIR
#   PASS    "test" (nfit_test modules staged in updates/) or "prod"
#   OUTDIR  a directory shared with the host; results go to OUTDIR/PASS/
#   BINDIR  the lab's test binaries (built on the host for this kernel)
#
# Writes OUTDIR/PASS/suite.tap (one line per check), OUTDIR/PASS/tap/*.tap
# (the TAP of each test program), logs and the kernel log. Prints progress
# lines starting with "daxpage:" and ends with "daxpage: suite done".
set -euo pipefail

PASS=$1
OUT=$2/$1
BIN=$3
TEST_TIMEOUT=${DAXPAGE_TEST_TIMEOUT:-900}
MNT=/tmp/daxpage-mnt
EXPECT=$(dirname "$(readlink -f "$0")")/expect
# shellcheck source=lab/guest/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

guest_start
mkdir -p "$OUT/tap" "$MNT"

# check NAME CMD...: one shell-level check; its output goes to log/NAME.log.
check() {
	local name=$1
	shift
	say "run: $name"
	# Shell functions run in a child bash (they are exported below), so that
	# timeout can stop them.
	if timeout "$TEST_TIMEOUT" bash -c '"$@"' check "$@" >"$OUT/log/$name.log" 2>&1; then
		result "$name" ok
		return 0
	fi
	result "$name" fail "see log/$name.log"
	sed 's/^/    /' "$OUT/log/$name.log" | tail -n 15
	return 1
}

# tap_run NAME ENV... -- PROG ARGS...: run a kselftest program with ENV and
# the test timeout, its output in tap/NAME.tap; returns its exit status.
tap_run() {
	local name=$1
	local -a envs=()
	shift
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	say "run: $name"
	env "${envs[@]}" timeout "$TEST_TIMEOUT" "$@" >"$OUT/tap/$name.tap" 2>&1
}

# tap_prog NAME ENV... -- PROG ARGS...: run a kselftest program, keep its TAP.
# Exit 0 is a pass, 4 (KSFT_SKIP) a skip, anything else a failure.
tap_prog() {
	local name=$1 rc=0
	tap_run "$@" || rc=$?
	# Some kselftests (gup_test without debugfs) skip everything and still
	# exit 0: that is a skip, not a pass.
	if [[ $rc -eq 0 ]] && grep -qE '^# Totals: pass:0 .* skip:[1-9]' "$OUT/tap/$name.tap"; then
		rc=4
	fi
	case $rc in
	0) result "$name" ok ;;
	4) result "$name" skip "$(grep -m1 -i 'skip' "$OUT/tap/$name.tap" | cut -c1-120)" ;;
	124) result "$name" fail "timed out after ${TEST_TIMEOUT}s" ;;
	*) result "$name" fail "exit $rc, see tap/$name.tap"
	   { grep -E '^(not ok|# .*(Expected|FAIL))' "$OUT/tap/$name.tap" || tail -n 5 "$OUT/tap/$name.tap"; } |
		head -n 10 | sed 's/^/    /' ;;
	esac
}

# tap_expect NAME EXPECTFILE ENV... -- PROG ARGS...: run a kselftest program
# that is known to fail some cases here for a documented reason: it passes
# when the cases that fail, named by the "# [RUN] <what>" line before their
# result, are exactly those listed in EXPECTFILE (no more and no fewer).
# The per-case results in tap/NAME.tap stay as the program reported them.
tap_expect() {
	local name=$1 expect=$2 rc=0 unexpected missing
	shift 2
	tap_run "$name" "$@" || rc=$?
	if [[ $rc -eq 124 ]]; then
		result "$name" fail "timed out after ${TEST_TIMEOUT}s"
		return
	fi
	awk '/^# \[RUN\] /{r = substr($0, 9)} /^not ok /{print r}' "$OUT/tap/$name.tap" |
		sort >"$OUT/log/$name.failed"
	grep -v -e '^#' -e '^$' "$expect" | sort >"$OUT/log/$name.expected"
	unexpected=$(comm -23 "$OUT/log/$name.failed" "$OUT/log/$name.expected")
	missing=$(comm -13 "$OUT/log/$name.failed" "$OUT/log/$name.expected")
	if ! grep -q '^# Totals: ' "$OUT/tap/$name.tap"; then
		result "$name" fail "exit $rc without a TAP summary, see tap/$name.tap"
	elif [[ -z $unexpected && -z $missing ]]; then
		result "$name" ok
	else
		result "$name" fail "failures differ from ${expect##*/}, see log/$name.failed"
		[[ -z $unexpected ]] || awk '{print "    unexpected failure: " $0}' <<<"$unexpected"
		[[ -z $missing ]] || awk '{print "    expected to fail, passed: " $0}' <<<"$missing"
	fi
}

# json_field JSON FILTER: one field of a JSON object, or nothing.
json_field() { jq -r "$2 // empty" <<<"$1"; }

# --- modules --------------------------------------------------------------
nfit_test_bus() {
	settle
	ndctl list -B | jq -e '[.[].provider] | index("nfit_test.0") and index("nfit_test.1")' &&
		ndctl list -b nfit_test.0 -D | jq -e 'length > 0'
}
export -f settle json_field modules_nfit_test modules_production nfit_test_bus nvdimm_labels
if [[ $PASS == test ]]; then
	check modules-nfit_test modules_nfit_test nd_e820 || true
	check nfit_test-bus-enumerates nfit_test_bus || true
else
	check modules-production modules_production || true
fi
modprobe device_dax || true
modprobe kmem || true
settle

# --- namespaces -----------------------------------------------------------
export OUT
check qemu-nvdimm-labels nvdimm_labels || true

declare -A FSDAX=() FSNS=()
REG0=$(sed -n 1p "$OUT/nvdimm-regions.txt" 2>/dev/null || true)
REG1=$(sed -n 2p "$OUT/nvdimm-regions.txt" 2>/dev/null || true)

create_ns() {
	local key=$1
	shift
	local js
	js=$(ndctl create-namespace "$@") || return 1
	echo "$js"
	FSNS[$key]=$(json_field "$js" .dev)
	FSDAX[$key]=/dev/$(json_field "$js" .blockdev)
	[[ -b ${FSDAX[$key]} ]]
}
# region_ns KEY SIZE REGION...: a new fsdax (map=mem, 2 MiB aligned)
# namespace of SIZE in the first of the REGIONs with room, as FSDAX[KEY].
# The order matters: the reflink cases need every 512 MiB they can get, so
# small namespaces go to the region those cases use last.
region_ns() {
	local key=$1 size=$2 r
	shift 2
	for r in "$@"; do
		[[ -n $r ]] || continue
		create_ns "$key" -r "$r" -m fsdax -M mem -s "$size" -a 2M && return 0
	done
	echo "no NVDIMM region has $size left:"
	ndctl list -R
	return 1
}
create_devdax() {
	local js
	js=$(ndctl create-namespace "$@") || return 1
	echo "$js"
	DEVDAX=/dev/$(json_field "$js" .daxregion.devices[0].chardev)
	[[ -c $DEVDAX ]]
}
setup_e820() {
	local ns
	ns=$(ndctl list -b e820 -N | jq -r '.[0].dev // empty')
	[[ -n $ns ]] || { echo "no e820 namespace (memmap= missing?)"; return 1; }
	create_ns e820-mem -f -e "$ns" -m fsdax -M mem
}

# create_ns runs in this shell (it fills FSDAX).
ns_check() { run_step "$1" "$OUT/log/$1.log" "log/$1.log" "${@:2}" || true; }
DEVDAX=""
if [[ -n $REG0 && -n $REG1 ]]; then
	ns_check ns-nvdimm-fsdax-map-dev create_ns nvdimm-dev -r "$REG0" -m fsdax -M dev -s 1G -a 2M
	ns_check ns-nvdimm-fsdax-map-mem create_ns nvdimm-mem -r "$REG1" -m fsdax -M mem -s 1G -a 2M
	ns_check ns-nvdimm-devdax create_devdax -r "$REG1" -m devdax -a 2M -s 512M
	ns_check ns-nvdimm-raw create_ns raw -r "$REG0" -m raw -s 256M
	ns_check ns-nvdimm-wc-origin create_ns wc-origin -r "$REG0" -m raw -s 256M
	ns_check ns-nvdimm-wc-cache create_ns wc-cache -r "$REG0" -m fsdax -M dev -s 256M -a 2M
fi
ns_check ns-e820-fsdax-map-mem setup_e820
settle

# --- selftests/mm on a DAX mount -------------------------------------------
# The mm selftests that take GUP through file pages, with their files on DAX:
# gup_test maps the file given with -f (shared, so GUP sees the DAX pages
# and not CoW copies); gup_longterm's "local tmpfile" lives in the working
# directory, its and cow's tmpfile() in /tmp, so those two run in a private
# mount namespace with the DAX mount bound over /tmp (on_dax_tmp, lib.sh).
mm_selftests() {
	local name=$1 dir=$2 f=$2/gup_test.file
	if [[ ! -x $BIN/mm/gup_test ]]; then
		result "$name-mm" fail "selftests/mm programs were not built"
		return
	fi
	truncate -s 32M "$f"
	tap_prog "$name-mm-gup_test-gup-fast" -- "$BIN/mm/gup_test" -u -S -m 32 -r 2 -f "$f"
	tap_prog "$name-mm-gup_test-pin-fast" -- "$BIN/mm/gup_test" -a -S -m 32 -r 2 -f "$f"
	tap_prog "$name-mm-gup_test-pin-basic" -- "$BIN/mm/gup_test" -b -S -m 32 -f "$f"
	tap_prog "$name-mm-gup_test-gup-basic" -- "$BIN/mm/gup_test" -U -S -m 32 -f "$f"
	rm -f "$f"
	# Both fail some long-term pin cases on fsdax, on every kernel: see
	# lab/guest/expect/*.fsdax for which and why.
	tap_expect "$name-mm-gup_longterm" "$EXPECT/gup_longterm.fsdax" -- \
		bash -c 'on_dax_tmp "$@"' sh "$dir" "$BIN/mm/gup_longterm"
	tap_expect "$name-mm-cow" "$EXPECT/cow.fsdax" -- \
		bash -c 'on_dax_tmp "$@"' sh "$dir" "$BIN/mm/cow"
}

# --- file systems ---------------------------------------------------------
mkfs_for() {
	case $1 in
	# Without reflink here: the reflink tests run last, on their own
	# file system (see "xfs with reflink" below).
	xfs) mkfs.xfs -f -q -m reflink=0 -d su=2m,sw=1 "$2" ;;
	# Below xfsprogs' 300 MiB minimum (nfit_test's 64 MiB region): mkfs.xfs
	# allows that when it sees fstests' variables.
	xfs-small) TEST_DIR=/nonexistent TEST_DEV=$2 QA_CHECK_FS=xfs \
		mkfs.xfs -f -q -m reflink=0 -d su=2m,sw=1 "$2" ;;
	# Two allocation groups: with the 2 MiB stripe unit, the default count
	# leaves a 512 MiB namespace too little room for the 64 MiB log.
	xfs-reflink) mkfs.xfs -f -q -m reflink=1 -d su=2m,sw=1,agcount=2 "$2" ;;
	# bigalloc with 2 MiB clusters: every extent is PMD-aligned, whatever
	# the layout of the block groups (stride alone is not enough on 3 GiB).
	ext4) mkfs.ext4 -F -q -b 4096 -O bigalloc -C 2M "$2" ;;
	esac
}
mkfs_mount() {
	mkfs_for "$1" "$2" && mount -o dax=always "$2" "$3"
}
export -f mkfs_for mkfs_mount
# A file system without DAX for dax_test's O_DIRECT tests
# (DAX_TEST_DIO_DIR): ext4 on the raw namespace, which has no memmap and so
# no DAX. Direct I/O there pins the DAX mapping used as its buffer
# (FOLL_PIN), which O_DIRECT to a file on a DAX mount never does.
DIO_DIR=""
dio_dir_setup() {
	mkfs.ext4 -F -q "$1" && mkdir -p "$2" && mount "$1" "$2"
}
export -f dio_dir_setup
if [[ -n ${FSDAX[raw]:-} ]] && check dio-dir-mount dio_dir_setup "${FSDAX[raw]}" "$MNT/dio"; then
	DIO_DIR=$MNT/dio
fi
for key in nvdimm-dev nvdimm-mem e820-mem; do
	dev=${FSDAX[$key]:-}
	for fs in xfs ext4; do
		name=$key-$fs
		if [[ -z $dev ]]; then
			result "$name-mount" fail "no $key namespace"
			continue
		fi
		mkdir -p "$MNT/$name"
		if ! check "$name-mount" mkfs_mount "$fs" "$dev" "$MNT/$name"; then
			continue
		fi
		tap_prog "$name-smoke" DAX_TEST_DIR="$MNT/$name" -- "$BIN/dax_fs_smoke"
		if [[ -x $BIN/dax_test ]]; then
			# Poisoned pmem stays bad for the rest of the boot: poison
			# only on the last file system of each namespace.
			hwp=0
			[[ $fs == ext4 ]] && hwp=1
			tap_prog "$name-selftests-dax" DAX_TEST_DIR="$MNT/$name" DAX_TEST_HWPOISON=$hwp \
				DAX_TEST_DIO_DIR="$DIO_DIR" -- "$BIN/dax_test"
		else
			result "$name-selftests-dax" skip "no dax_test: the target's tree has no tools/testing/selftests/dax/dax_test.c"
		fi
		if [[ $key == nvdimm-dev ]]; then
			mm_selftests "$name" "$MNT/$name"
		fi
		check "$name-umount" umount "$MNT/$name" || true
	done
done

if [[ -n $DIO_DIR ]]; then
	check dio-dir-umount umount "$DIO_DIR" || true
fi

# --- raw mode and dm-writecache -------------------------------------------
# A raw-mode namespace has no memmap: DAX must be refused with a message,
# and the mount must fail rather than silently fall back.
raw_refuses_dax() {
	local dev=$1 mnt=$2
	mkfs.ext4 -F -q "$dev"
	mkdir -p "$mnt"
	if mount -o dax=always "$dev" "$mnt"; then
		umount "$mnt"
		echo "dax=always mount of raw namespace $dev succeeded"
		return 1
	fi
	dmesg | tail -n 20 | grep -i 'dax'
}
# dm-writecache: write through the cache, flush, reload the table, read back
# through the cache and from the origin. MODE p uses the cache device's DAX
# mapping (dax_direct_access with pfns), MODE s plain block I/O.
# udev still sees the uevents: let it finish with each one before making or
# using the node, or its late handling of the previous device's removal
# deletes the node of the new one.
wc_create() {
	# No udev rules for device-mapper in the guest: make the node by hand.
	dmsetup create --noudevsync wc --table "0 $1 writecache $2 $3 $4 4096 0" &&
		settle && dmsetup mknodes wc && [[ -b /dev/mapper/wc ]]
}
wc_remove() {
	settle
	dmsetup remove --retry --noudevsync wc && settle
}
writecache() {
	local mode=$1 origin=$2 cache=$3 sz
	set -e
	sz=$(blockdev --getsz "$origin")
	head -c 8M /dev/urandom >/tmp/wc.data
	dd if=/dev/zero of="$origin" bs=1M count=8 oflag=direct status=none
	wc_create "$sz" "$mode" "$origin" "$cache"
	dd if=/tmp/wc.data of=/dev/mapper/wc bs=1M oflag=direct conv=nocreat status=none
	# Status: start len writecache <error> <total blocks> <free blocks> ...:
	# the writes must occupy cache blocks.
	dmsetup status wc | tee /dev/stderr | awk '$4 == 0 && $6 < $5 {ok = 1} END {exit !ok}'
	dmsetup message wc 0 flush
	wc_remove
	wc_create "$sz" "$mode" "$origin" "$cache"
	cmp -n 8388608 /tmp/wc.data /dev/mapper/wc
	wc_remove
	# Written back to the origin by the flush and the table teardown.
	cmp -n 8388608 /tmp/wc.data "$origin"
}
export -f raw_refuses_dax wc_create wc_remove writecache
if [[ -n ${FSDAX[raw]:-} ]]; then
	check raw-namespace-refuses-dax raw_refuses_dax "${FSDAX[raw]}" "$MNT/raw" || true
	check dm-writecache-ssd-mode-on-raw writecache s "${FSDAX[wc-origin]}" "${FSDAX[raw]}" || true
	check dm-writecache-pmem-mode-on-fsdax writecache p "${FSDAX[wc-origin]}" "${FSDAX[wc-cache]}" || true
else
	result raw-namespace-refuses-dax fail "no raw namespace"
fi

if [[ -n $DEVDAX ]]; then
	tap_prog devdax-smoke DEVDAX="$DEVDAX" -- "$BIN/devdax_smoke"
else
	result devdax-smoke fail "no device-dax namespace"
fi

# umount_bounded DIR: umount, but give up after 60 s (an unmount behind a
# task in D state never ends, and cannot be killed).
umount_bounded() {
	local pid i
	umount "$1" &
	pid=$!
	for ((i = 0; i < 60; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			return
		fi
		sleep 1
	done
	echo "umount $1 still running after 60 s, state $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)"
	return 1
}
export -f umount_bounded

# --- nfit_test in real-memmap mode (test pass) ------------------------------
# The host boots the guest with memmap=SIZE$BASE (LAB_NFIT_RESERVE), memory
# the kernel leaves alone. nfit_test, loaded again with reserved_base= and
# reserved_size= naming it, puts its four PMEM SPA ranges there instead of
# in vmalloc() memory (the series' tools/testing/nvdimm patch), so that the
# pmem and device-dax drivers map them with a real ZONE_DEVICE memmap. On a
# kernel without that patch nfit_test ignores the parameters (the kernel
# logs "unknown parameter") and its regions stay at 4-8 GiB: then the first
# check fails and so do the others, without running.
# The checks use the largest PMEM region of nfit_test.0 (64 MiB): fsdax
# map=mem and map=dev with ext4 and xfs (dax_fs_smoke, whose PMD write
# faults on a 16 MiB file are the PMD check here, and the selftests, whose
# pmd_fault_trace skips: it needs room for 64 MiB), device-dax at 2 MiB,
# and an error injected with nfit_test's ARS emulation under a file
# (dax_media_error).
# Afterwards nfit_test is loaded again as before, for the check below.
# nfit_reload [PARAM=VALUE...]: nfit_test unloaded (its buses' regions and
# DIMMs disabled first: each device bound on a bus holds the module) and
# loaded again with the parameters.
nfit_reload() {
	local b
	if [[ -d /sys/module/nfit_test ]]; then
		for b in nfit_test.0 nfit_test.1; do
			ndctl disable-region -b "$b" all || return
			ndctl disable-dimm -b "$b" all || return
		done
		timeout 120 rmmod nfit_test || { echo "rmmod nfit_test failed"; lsmod | grep nfit; return 1; }
	fi
	modprobe nfit_test "$@" || return
	for ((b = 0; b < 30; b++)); do
		nfit_test_bus >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "nfit_test's buses did not come up within 30 s"
	nfit_test_bus
}
nfit_real_load() {
	local range base size
	range=$(nfit_real_range /proc/cmdline) || { echo "no memmap=SIZE\$BASE on the kernel command line"; return 1; }
	read -r size base <<<"$range"
	echo "reserved range: $(printf '%#x' "$base"), $((size >> 20)) MiB"
	nfit_reload "reserved_base=$base" "reserved_size=$size" || return
	dmesg | grep -E 'nfit_test.*(real-memmap|reserved|unknown parameter)' | tail -n 3
	nfit_real_regions "$base" "$size"
}
NFIT_REAL_REGION=""
nfit_real_region() {
	ndctl list -b nfit_test.0 -R -t pmem |
		jq -r 'if type == "array" then . else [.] end | max_by(.size) | .dev // empty'
}
# real_ns CREATE ARGS...: empty NFIT_REAL_REGION, then CREATE (create_ns
# or create_devdax, which run in this shell) a namespace in it.
real_ns() {
	local create=$1
	shift
	ndctl destroy-namespace -f -r "$NFIT_REAL_REGION" all >/dev/null 2>&1 || true
	settle
	"$create" "$@" -r "$NFIT_REAL_REGION"
}
export -f size_bytes nfit_real_range nfit_real_regions nfit_reload nfit_real_load
# nfit_real_fail WHY: every check of the section that follows, failed
# without running, with WHY.
nfit_real_fail() {
	local c map fs
	for map in mem dev; do
		result "ns-nfit-real-$map" fail "$1"
		for fs in ext4 xfs; do
			for c in mount smoke selftests-dax umount; do
				result "nfit-real-$map-$fs-$c" fail "$1"
			done
		done
	done
	for c in ns-nfit-real-devdax nfit-real-devdax-smoke ns-nfit-real-media nfit-real-media-mount \
		nfit-real-media-error nfit-real-media-umount; do
		result "$c" fail "$1"
	done
}
if [[ $PASS == test ]]; then
	NFIT_REAL_REGION=""
	if check nfit-real-mode nfit_real_load; then
		NFIT_REAL_REGION=$(nfit_real_region || true)
	fi
	if [[ -n $NFIT_REAL_REGION ]]; then
		export NFIT_REAL_REGION
		for map in mem dev; do
			key=nfit-real-$map
			ns_check "ns-$key" real_ns create_ns "$key" -m fsdax -M "$map" -a 2M
			dev=${FSDAX[$key]:-}
			for fs in ext4 xfs-small; do
				name=$key-${fs%-small}
				if [[ -z $dev ]]; then
					result "$name-mount" fail "no fsdax map=$map namespace on nfit_test"
					continue
				fi
				mkdir -p "$MNT/$name"
				check "$name-mount" mkfs_mount "$fs" "$dev" "$MNT/$name" || continue
				tap_prog "$name-smoke" DAX_TEST_DIR="$MNT/$name" DAX_SMOKE_PMD_MIB=16 -- "$BIN/dax_fs_smoke"
				if [[ -x $BIN/dax_test ]]; then
					tap_prog "$name-selftests-dax" DAX_TEST_DIR="$MNT/$name" DAX_TEST_HWPOISON=0 \
						DAX_TEST_DIO_DIR="" -- "$BIN/dax_test"
				else
					result "$name-selftests-dax" skip "no dax_test: the target's tree has no tools/testing/selftests/dax/dax_test.c"
				fi
				check "$name-umount" umount_bounded "$MNT/$name" || true
			done
			ndctl destroy-namespace -f -r "$NFIT_REAL_REGION" all >/dev/null 2>&1 || true
		done
		DEVDAX=""
		ns_check ns-nfit-real-devdax real_ns create_devdax -m devdax -a 2M
		if [[ -n $DEVDAX ]]; then
			tap_prog nfit-real-devdax-smoke DEVDAX="$DEVDAX" -- "$BIN/devdax_smoke"
		else
			result nfit-real-devdax-smoke fail "no device-dax namespace on nfit_test"
		fi
		ndctl destroy-namespace -f -r "$NFIT_REAL_REGION" all >/dev/null 2>&1 || true
		unset 'FSDAX[nfit-real-media]'
		ns_check ns-nfit-real-media real_ns create_ns nfit-real-media -m fsdax -M mem -a 2M
		dev=${FSDAX[nfit-real-media]:-}
		mkdir -p "$MNT/nfit-real-media"
		if [[ -n $dev ]] && check nfit-real-media-mount mkfs_mount ext4 "$dev" "$MNT/nfit-real-media"; then
			tap_prog nfit-real-media-error DAX_TEST_DIR="$MNT/nfit-real-media" \
				DAX_MEDIA_NS="${FSNS[nfit-real-media]}" DAX_MEDIA_BUS=nfit_test.0 \
				DAX_MEDIA_BDEV="${dev#/dev/}" -- "$BIN/dax_media_error"
			check nfit-real-media-umount umount_bounded "$MNT/nfit-real-media" || true
		else
			result nfit-real-media-error fail "no fsdax file system on nfit_test"
		fi
		ndctl destroy-namespace -f -r "$NFIT_REAL_REGION" all >/dev/null 2>&1 || true
	elif [[ -f /sys/module/nfit_test/parameters/reserved_size ]]; then
		nfit_real_fail "no PMEM region on nfit_test.0 (see log/nfit-real-mode.log)"
	else
		nfit_real_fail "this nfit_test has no real-memmap mode (see log/nfit-real-mode.log)"
	fi
	check nfit_test-reload-default nfit_reload || true
fi

# --- fsdax on an nfit_test namespace (test pass) ---------------------------
# nfit_test's "pmem" is vmalloc() memory, with no ZONE_DEVICE memmap. An fsdax
# mmap of a file there must either fail with SIGBUS (the series' "a pfn only
# with a memmap" rule; vanilla 6.12.117's fault already fails, measured) or
# map the file's data; read(2) and unlink must work either way. Measured on
# vanilla 7.3.4: the mmap maps the vmalloc page as an FS_DAX folio, whose
# refcount never drops to 0, and unlink then sleeps in D state for good in
# dax_break_layout_final() (G4 of the mainline design note). The unlink runs
# under a 60 s watchdog; a task in D state cannot be killed, so this check
# comes after every other use of nfit_test.
nfit_fsdax_mmap() {
	local region dev mnt=/tmp/daxpage-nfit out pid i
	# This check is about nfit_test's vmalloc() memory: not in real-memmap
	# mode (left on when nfit_test-reload-default failed).
	if [[ $(cat /sys/module/nfit_test/parameters/reserved_size 2>/dev/null || echo 0) != 0 ]]; then
		echo "nfit_test is still in real-memmap mode"
		return 1
	fi
	ndctl disable-region -b nfit_test.0 all && ndctl zero-labels -b nfit_test.0 all &&
		ndctl enable-region -b nfit_test.0 all || return
	ndctl destroy-namespace -f -b nfit_test.0 all || true
	settle
	region=$(ndctl list -b nfit_test.0 -R -t pmem | jq -r 'max_by(.size) | .dev') || return
	dev=$(ndctl create-namespace -b nfit_test.0 -r "$region" -t pmem -m fsdax -M mem | jq -r .blockdev) || return
	echo "namespace: $dev on $region"
	mkdir -p "$mnt"
	mkfs.ext4 -F -q -b 4096 "/dev/$dev" && mount -o dax=always "/dev/$dev" "$mnt" || return
	xfs_io -f -c "pwrite -q -S 0x5a 0 8k" -c fsync "$mnt/f" || return
	# STATX_ATTR_DAX: without it this check would test nothing.
	i=$(xfs_io -c "statx -r" "$mnt/f" | awk '$1 == "stat.attributes" {print $3}')
	((${i:-0} & 0x200000)) || { echo "the file is not DAX (stat.attributes ${i:-missing})"; return 1; }
	out=$(timeout 30 xfs_io -c "mmap -r 0 4k" -c "mread -v 0 16" "$mnt/f" 2>&1) && i=0 || i=$?
	case $i in
	0) grep -q '5a 5a 5a 5a' <<<"$out" || { echo "mmap read returned wrong data: $out"; return 1; }
		echo "mmap read: mapped, data ok" ;;
	135) echo "mmap read: SIGBUS (no memmap behind the pfn)" ;;
	*) echo "mmap read: exit $i: $out"; return 1 ;;
	esac
	xfs_io -c "pread -v 0 16" "$mnt/f" | grep -q '5a 5a 5a 5a' || { echo "read(2) failed"; return 1; }
	echo "read(2): data ok"
	rm "$mnt/f" &
	pid=$!
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "unlink still running after 60 s, state $(awk '{print $3}' "/proc/$pid/stat"); stack:"
		cat "/proc/$pid/stack"
		return 1
	fi
	wait "$pid" || return
	echo "unlink: done in ${i}s"
	umount "$mnt"
}
export -f nfit_fsdax_mmap
if [[ $PASS == test ]]; then
	check nfit_test-fsdax-mmap-read-unlink nfit_fsdax_mmap || true
fi

# --- erofs: chunks that two files share ----------------------------------
# "mkfs.erofs --chunksize" stores identical chunks once, so two files of the
# image map the same blocks (G5 of the mainline design note). The image
# holds two 8 MiB files with the same random data, "a" and "b", and a
# 4 MiB one with data of its own, "c"; it is made
# here and written to a new 64 MiB fsdax namespace (not one the earlier
# checks used: their ext4 pass may leave a poisoned page behind, on
# purpose). dax_test's erofs_chunk_dedupe checks with FIEMAP that the
# blocks are shared, maps both files, evicts one while the other stays
# mapped, maps "c" twice, and fails on a kernel log warning.
# Measured on vanilla 7.3.4: the first read fault of "b" warns at
# fs/dax.c:498, because erofs reports the blocks as the file's own.
erofs_setup() {
	local dev=$1 mnt=$2 src=/tmp/daxpage-erofs
	rm -rf "$src" && mkdir -p "$src/tree" "$mnt" || return
	head -c 8M /dev/urandom >"$src/tree/a" && cp "$src/tree/a" "$src/tree/b" || return
	head -c 4M /dev/urandom >"$src/tree/c" || return
	mkfs.erofs --quiet --chunksize="$(getconf PAGESIZE)" "$src/image" "$src/tree" || return
	dd if="$src/image" of="$dev" bs=1M oflag=direct status=none || return
	mount -t erofs -o ro,dax=always "$dev" "$mnt"
}
export -f erofs_setup
DAX_TEST_LIST=$OUT/log/dax_test-list.txt
if [[ -x $BIN/dax_test ]]; then
	"$BIN/dax_test" -l >"$DAX_TEST_LIST" 2>&1 || true
fi
if [[ ! -x $BIN/dax_test ]] || ! grep -qw erofs_chunk_dedupe "$DAX_TEST_LIST"; then
	result erofs-chunk-dedupe skip "this dax_test has no erofs_chunk_dedupe"
elif ! command -v mkfs.erofs >/dev/null; then
	result erofs-chunk-dedupe fail "mkfs.erofs not found: install erofs-utils (lab/lab deps)"
elif ! grep -qw erofs /proc/filesystems; then
	result erofs-chunk-dedupe fail "the kernel has no erofs: CONFIG_EROFS_FS (lab/config/daxpage.config)"
elif ns_check ns-erofs region_ns erofs 64M "$REG0" "$REG1" && [[ -z ${FSDAX[erofs]:-} ]]; then
	result erofs-chunk-dedupe fail "no namespace to write the image to"
elif check erofs-chunk-dedupe-mount erofs_setup "${FSDAX[erofs]}" "$MNT/erofs"; then
	tap_prog erofs-chunk-dedupe DAX_TEST_EROFS_DIR="$MNT/erofs" -- "$BIN/dax_test" -t erofs_chunk_dedupe
	check erofs-chunk-dedupe-umount umount_bounded "$MNT/erofs" || true
else
	result erofs-chunk-dedupe fail "no erofs to run it on"
fi

# --- xfs with reflink ------------------------------------------------------
# The selftests' reflink cases on xfs with reflink=1 (and -d su=2m, so that
# extents can be PMD-mapped), after everything else, each case on a new
# file system: on kernels without the fixes several of them end in "kernel
# BUG at fs/inode.c" (clear_inode()) or leave an unlink in D state, and the
# file system can then be neither used nor unmounted (measured on vanilla
# 6.12.117 and 7.3.4). A case must fail for its own bug, not because an
# earlier one broke a file system they shared. So each case makes a new xfs
# on the namespace of the case before, unless that one could not be
# unmounted: then it takes the next namespace of the suite's fsdax
# namespaces (nvdimm-dev, nvdimm-mem, e820-mem, all unmounted by now), and
# after those a new 512 MiB one (xfs needs 300 MiB and a 64 MiB log) in an
# NVDIMM region with room. Only the cases the target's dax_test has are run
# ("dax_test -l"). reflink_pinned_refault, reflink_read_keeps_mappings and
# (6.12.y only) reflink_read_keeps_pmd_mappings come first: on a kernel
# without their fixes they only warn or count a fault, and the file system
# stays usable.
# reflink_hwpoison_shared (6.12.y series only) comes last and is the only
# case that may poison a page (DAX_TEST_HWPOISON=1): vanilla 6.12.117
# oopses in it.
REFLINK_CASES=(reflink_pinned_refault reflink_read_keeps_mappings reflink_read_keeps_pmd_mappings
	reflink reflink_pmd_then_pte reflink_pmd_then_pte_write
	reflink_pwrite_mapped ficlone_pinned_sleeps reflink_clone_pte_then_src_pmd
	reflink_clone_pte5_then_src_pmd reflink_hwpoison_shared)
if [[ -x $BIN/dax_test ]]; then
	RL_POOL=()
	for key in nvdimm-dev nvdimm-mem e820-mem; do
		[[ -z ${FSDAX[$key]:-} ]] || RL_POOL+=("${FSDAX[$key]}")
	done
	n=0 k=0 extra=0 dev=""
	for c in "${REFLINK_CASES[@]}"; do
		grep -qw -- "$c" "$DAX_TEST_LIST" || continue
		n=$((n + 1))
		if [[ -z $dev ]] && ((k < ${#RL_POOL[@]})); then
			dev=${RL_POOL[k]}
			k=$((k + 1))
		elif [[ -z $dev ]]; then
			extra=$((extra + 1))
			ns_check "ns-reflink-$extra" region_ns "reflink-$extra" 512M "$REG1" "$REG0"
			dev=${FSDAX[reflink-$extra]:-}
			if [[ -z $dev ]]; then
				result "xfs-reflink-$c" fail "no namespace left to run it on"
				continue
			fi
		fi
		mkdir -p "$MNT/rl-$c"
		if ! check "xfs-reflink-$c-mount" mkfs_mount xfs-reflink "$dev" "$MNT/rl-$c"; then
			dev=""
			result "xfs-reflink-$c" fail "no file system to run it on"
			continue
		fi
		hwp=0
		[[ $c != reflink_hwpoison_shared ]] || hwp=1
		tap_prog "xfs-reflink-$c" DAX_TEST_DIR="$MNT/rl-$c" DAX_TEST_HWPOISON=$hwp \
			-- "$BIN/dax_test" -t "$c"
		check "xfs-reflink-$c-umount" umount_bounded "$MNT/rl-$c" || dev=""
	done
	((n > 0)) || result xfs-reflink skip "this dax_test has none of the reflink cases"
else
	result xfs-reflink skip "no dax_test: the target's tree has no tools/testing/selftests/dax/dax_test.c"
fi

# --- kernel log -----------------------------------------------------------
dmesg >"$OUT/dmesg.txt"
say "suite done: $N checks"
echo "daxpage: suite done"
