#!/bin/bash
# daxpage guest: xfstests' check on fsdax with dax=always, on xfs and ext4,
# with the production modules. Runs inside the QEMU guest as root; started
# by lab/lib/xfstests.sh (xfstests_suite).
#
# usage: xfstests.sh PASS OUTDIR TREE
#   PASS    "prod" (the production modules are bound over /lib/modules)
#   OUTDIR  a directory shared with the host: setup results go to
#           OUTDIR/PASS/, each file system's to OUTDIR/FS/
#   TREE    the xfstests tree built on the host (read-only here)
# The host writes OUTDIR/PASS/params first (key=value: fstypes, groups,
# tests, deadline).
#
# Writes, as it goes (so that a hung guest still leaves what it got on the
# host): OUTDIR/PASS/suite.tap and results.tsv (the setup steps and one
# "FS/xfstests-ran" line per file system: name, status, reason),
# OUTDIR/PASS/log/, OUTDIR/PASS/dmesg.txt (the kernel log, followed);
# OUTDIR/FS/local.config, check.log (check's output), results/ (xfstests'
# RESULT_BASE: result.xml, and per failed test .out.bad, .full, .dmesg),
# seconds. Prints progress lines starting with "daxpage:" and ends with
# "daxpage: suite done".
set -euo pipefail

PASS=$1
OUTDIR=$2
OUT=$2/$1
TREE=$3
# shellcheck source=lab/guest/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
# check writes next to itself (check.out and the like): it runs from an
# overlay of TREE, with its upper layer in /run.
XT=/run/daxpage-xfstests/xfstests
TEST_MNT=/tmp/xfstests-test
SCRATCH_MNT=/tmp/xfstests-scratch
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

param() { sed -n "s/^$1=//p" "$OUT/params" | tail -n1; }
FSTYPES=$(param fstypes)
XGROUPS=$(param groups)
TESTS=$(param tests)
DEADLINE=$(param deadline)

guest_start
mkdir -p "$TEST_MNT" "$SCRATCH_MNT"
: >"$OUT/results.tsv"

# result NAME STATUS [REASON]: STATUS ok, fail or skip; one TAP line and
# one TSV line.
result() {
	local why=${3:-}
	tap_result "$1" "$2" "$why"
	printf '%s\t%s\t%s\n' "$1" "$2" "${why//#/}" >>"$OUT/results.tsv"
}

# check NAME CMD...: one setup step, in this shell; its output goes to
# log/NAME.log.
check() { run_step "setup/$1" "$OUT/log/$1.log" "xfstests/$PASS/log/$1.log" "${@:2}"; }

# The kernel log, as it is written: it survives a hang, and a long run
# cannot overflow the ring buffer before it is saved. xfstests writes
# "run fstests TEST at DATE" into it before each test.
dmesg -w >"$OUT/dmesg.txt" 2>&1 &
KLOG_PID=$!

# --- setup ----------------------------------------------------------------
# The platform drivers, loaded by hand as in the lab suite's prod pass
# (lab/lib/guest.sh keeps udev from autoloading them).
check modules-production modules_production || true
settle

# Labels on both QEMU NVDIMMs (blank at every boot), as the lab suite does.
check acpi-nfit-labels nvdimm_labels || true

# One fsdax namespace with its memmap in pmem (map=dev) over the whole of
# each NVDIMM: TEST_DEV on the first, SCRATCH_DEV on the second. Each must
# be a DAX-capable block device.
fsdax_namespaces() {
	local r js dev
	local -a regions
	mapfile -t regions <"$OUT/nvdimm-regions.txt" || return
	: >"$OUT/pmem-devices.txt"
	for r in "${regions[@]}"; do
		js=$(ndctl create-namespace -r "$r" -m fsdax -M dev -a 2M) || return
		echo "$js"
		dev=$(jq -r '.blockdev // empty' <<<"$js")
		[[ -n $dev && -b /dev/$dev ]] || { echo "region $r: no block device"; return 1; }
		[[ $(cat "/sys/block/$dev/queue/dax") == 1 ]] || { echo "/dev/$dev: queue/dax is not 1"; return 1; }
		echo "/dev/$dev" >>"$OUT/pmem-devices.txt"
	done
	[[ $(grep -c . "$OUT/pmem-devices.txt") -eq 2 ]]
}
check fsdax-namespaces fsdax_namespaces || true
settle
TEST_DEV=$(sed -n 1p "$OUT/pmem-devices.txt" 2>/dev/null || true)
SCRATCH_DEV=$(sed -n 2p "$OUT/pmem-devices.txt" 2>/dev/null || true)

# The users and group some tests need (README of xfstests: fsgqa, fsgqa2,
# 123456-fsgqa; group fsgqa), for this boot only: copies of /etc/passwd and
# /etc/group with them added, bound over the originals, so that nothing is
# written to the host's /etc whatever virtme-ng mounts there. Without them
# those tests do not run.
guest_users() {
	local d=/run/daxpage-etc base u i=0
	mkdir -p "$d" || return
	cp /etc/passwd /etc/group "$d/" || return
	# Ids clear of every user and group the host has (below 60000).
	base=$(awk -F: '$3 < 60000 && $3 > m {m = $3} END {print m + 1000}' /etc/passwd /etc/group)
	for u in fsgqa fsgqa2 123456-fsgqa; do
		if ! grep -q "^$u:" /etc/passwd; then
			mkdir -p "/tmp/daxpage-home/$u" || return
			# "*", not "x": with "x" pam_unix wants a shadow entry
			# and su from root fails ("Authentication failure").
			echo "$u:*:$((base + i)):$((base + i))::/tmp/daxpage-home/$u:/bin/bash" >>"$d/passwd"
			grep -q "^$u:" /etc/group || echo "$u:x:$((base + i)):" >>"$d/group"
			chown "$((base + i)):$((base + i))" "/tmp/daxpage-home/$u" || return
		fi
		i=$((i + 1))
	done
	mount --bind "$d/passwd" /etc/passwd || return
	mount --bind "$d/group" /etc/group || return
	id fsgqa && echo /bin/true | su fsgqa
}
if ! check guest-users guest_users; then
	umount /etc/group 2>/dev/null || true
	umount /etc/passwd 2>/dev/null || true
fi

writable_tree() {
	local w=${XT%/*}
	mkdir -p "$w/upper" "$w/work" "$XT" || return
	mount -t overlay daxpage-xfstests -o "lowerdir=$TREE,upperdir=$w/upper,workdir=$w/work" "$XT" || return
	touch "$XT/.daxpage-writable" && rm "$XT/.daxpage-writable" || return
	[[ -x $XT/check && -x $XT/ltp/fsstress ]]
}
check writable-xfstests-tree writable_tree || true

# --- check ----------------------------------------------------------------
# mkfs_opts FS: the mkfs options (MKFS_OPTIONS) for FS. xfs gets the
# reverse-mapping btree, which xfsprogs 6.1 leaves off by default: the dax
# tests xfs/550-552 (memory failure on reflinked DAX files) need it.
mkfs_opts() {
	case $1 in
	xfs) echo "-m rmapbt=1" ;;
	*) echo "" ;;
	esac
}

# mkfs_test FS DEV: TEST_DEV must hold a file system of FSTYP before check
# starts (it only mounts it); SCRATCH_DEV is made by check itself.
mkfs_test() {
	local -a opts
	read -r -a opts <<<"$(mkfs_opts "$1")"
	case $1 in
	xfs) mkfs.xfs -f "${opts[@]}" "$2" ;;
	ext4) mkfs.ext4 -F "${opts[@]}" "$2" ;;
	esac
}

# progress FS: check's lines for the console: one per finished test (name,
# then its time, "[not run] why" or why it failed) and its totals.
progress() {
	local fs=$1 line
	while IFS= read -r line; do
		if [[ $line =~ ^[a-z0-9]+/[0-9]+\  || $line =~ ^(Ran|Not\ run|Failures|Failed|Passed\ all) ]]; then
			say "$fs: ${line:0:160}"
		fi
	done
}

# not_started FS WHY: check did not run on FS; say why where the host looks.
not_started() {
	echo "daxpage: not started: $2" >>"$OUTDIR/$1/check.log"
	result "$1/xfstests-ran" fail "not started: $2"
}

# run_fs FS SHARE: check on FS, for at most 1/SHARE of the time left
# before the deadline (so that a test that hangs on xfs leaves ext4 its
# turn).
run_fs() {
	local fs=$1 share=$2 dir=$OUTDIR/$1 t1 rc=0 left t
	local -a sel=()
	mkdir -p "$dir/results"
	: >"$dir/check.log"
	if [[ -z $TEST_DEV || -z $SCRATCH_DEV ]]; then
		not_started "$fs" "no fsdax namespaces (see setup/fsdax-namespaces)"
		return
	fi
	if [[ ! -x $XT/check ]]; then
		not_started "$fs" "no writable xfstests tree (see setup/writable-xfstests-tree)"
		return
	fi
	cat >"$dir/local.config" <<-EOF
		# Written by lab/guest/xfstests.sh for this boot.
		export FSTYP=$fs
		export TEST_DEV=$TEST_DEV
		export TEST_DIR=$TEST_MNT
		export SCRATCH_DEV=$SCRATCH_DEV
		export SCRATCH_MNT=$SCRATCH_MNT
		export MKFS_OPTIONS="$(mkfs_opts "$fs")"
		export MOUNT_OPTIONS="-o dax=always"
		export TEST_FS_MOUNT_OPTS="-o dax=always"
		export RESULT_BASE=$dir/results
		# No syslog in the guest: logger would print its complaint into
		# check's output. The kernel log gets check's own markers.
		export LOGGER_PROG=true
	EOF
	if [[ -n $TESTS ]]; then
		for t in $TESTS; do
			[[ ${t%%/*} == generic || ${t%%/*} == "$fs" ]] && sel+=("$t")
		done
	else
		sel=(-g "$XGROUPS")
	fi
	umount "$TEST_MNT" 2>/dev/null || true
	umount "$SCRATCH_MNT" 2>/dev/null || true
	if ! check "$fs-mkfs-test-dev" mkfs_test "$fs" "$TEST_DEV"; then
		not_started "$fs" "mkfs.$fs $TEST_DEV failed (see xfstests/$PASS/log/$fs-mkfs-test-dev.log)"
		return
	fi
	left=$(( (DEADLINE - ($(date +%s) - T0)) / share ))
	if ((left < 120)); then
		not_started "$fs" "the ${DEADLINE}s deadline has passed"
		return
	fi
	t1=$(date +%s)
	echo "daxpage-xfstests: begin $fs" >/dev/kmsg
	say "run: $fs: ./check -R xunit-quiet ${sel[*]} (TEST_DEV $TEST_DEV, SCRATCH_DEV $SCRATCH_DEV, up to ${left}s)"
	set +e
	(cd "$XT" && HOST_OPTIONS=$dir/local.config TMPDIR=/tmp \
		timeout --kill-after=60 "$left" ./check -R xunit-quiet "${sel[@]}") </dev/null 2>&1 |
		tee -a "$dir/check.log" | progress "$fs"
	rc=${PIPESTATUS[0]}
	set -e
	echo "daxpage-xfstests: end $fs rc=$rc" >/dev/kmsg
	echo $(( $(date +%s) - t1 )) >"$dir/seconds"
	umount "$TEST_MNT" 2>/dev/null || true
	umount "$SCRATCH_MNT" 2>/dev/null || true
	# check exits 0 when every test passed or did not run, 1 when some
	# failed -- and also when it could not start (its _fatal): then it
	# wrote no report.
	if [[ ! -f $dir/results/result.xml ]]; then
		result "$fs/xfstests-ran" fail "check exited $rc before running a test: $(grep . "$dir/check.log" | tail -n1 | cut -c1-150)"
	elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
		result "$fs/xfstests-ran" fail "stopped after ${left}s, its share of the time to the guest's deadline (${DEADLINE}s)"
	elif [[ $rc -ne 0 && $rc -ne 1 ]]; then
		result "$fs/xfstests-ran" fail "check exited $rc"
	else
		result "$fs/xfstests-ran" ok
	fi
}

read -r -a FSLIST <<<"$FSTYPES"
for i in "${!FSLIST[@]}"; do
	run_fs "${FSLIST[i]}" $(( ${#FSLIST[@]} - i ))
done

kill "$KLOG_PID" 2>/dev/null || true
wait "$KLOG_PID" 2>/dev/null || true
say "xfstests done: $FSTYPES"
echo "daxpage: suite done"
