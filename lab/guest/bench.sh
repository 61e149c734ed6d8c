#!/bin/bash
# daxpage guest benchmark: runs inside the QEMU guest (TCG with -icount) as root.
#
# usage: bench.sh PASS OUTDIR BINDIR
#   PASS    "benchN" for boot N (production modules; the name of the output
#           directory)
#   OUTDIR  a directory shared with the host; results go to OUTDIR/PASS/
#   BINDIR  the lab's binaries (daxbench)
#
# Writes OUTDIR/PASS/bench.json: daxbench's figures plus the namespace
# enable time (memmap initialisation) of the e820 range, per GiB, with the
# memmap in RAM (map=mem) and in pmem (map=dev). Also OUTDIR/PASS/suite.tap
# with the sanity checks the numbers depend on (PMD faults really happened,
# every step worked), so that a broken bench fails instead of printing
# numbers. Ends with "daxpage: suite done".

# The step functions are only called through step():
# shellcheck disable=SC2317
set -euo pipefail

PASS=$1
OUT=$2/$PASS
BIN=$3
REPS=${DAXPAGE_BENCH_REPS:-5}
SIZE_MIB=${DAXPAGE_BENCH_SIZE_MIB:-1024}
BUF_MIB=${DAXPAGE_BENCH_BUF_MIB:-256}
MNT=/tmp/daxpage-bench
TR=/sys/kernel/tracing
# shellcheck source=lab/guest/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

guest_start
mkdir -p "$MNT"

# step NAME CMD...: run CMD (output to log/NAME.log); a failure ends the bench.
# CMD runs in this shell (it may set globals), where set -e does not apply:
# the step functions check every command themselves.
step() { run_step "$1" "$OUT/log/$1.log" "log/$1.log" "${@:2}" || finish; }
finish() {
	dmesg >"$OUT/dmesg.txt"
	say "bench done: $N checks"
	echo "daxpage: suite done"
	exit 0
}
now_ns() { date +%s%N; }

step modules-production modules_production

# The e820 range (memmap=) as fsdax: time the bind to nd_pmem of the device
# that nd_pmem drives (what "ndctl enable-namespace" does; the probe maps
# the range with devm_memremap_pages() and initialises its memmap), REPS
# times for each memmap location. The write to "bind" returns when the
# probe is done.
E820_NS=""
ns_enable_times() {
	local mode=$1 js bytes i t holder
	E820_NS=$(ndctl list -b e820 -N | jq -r '.[0].dev // empty')
	[[ -n $E820_NS ]] || { echo "no e820 namespace (memmap= missing?)"; return 1; }
	# map=dev needs -a 2M: ndctl's default alignment for the e820 range
	# is 4 KiB, and then the data does not start on a 2 MiB boundary and
	# every PMD fault falls back to PTEs.
	if [[ $mode == dev ]]; then
		js=$(ndctl create-namespace -f -e "$E820_NS" -m fsdax -M dev -a 2M) || return
	else
		js=$(ndctl create-namespace -f -e "$E820_NS" -m fsdax -M mem) || return
	fi
	echo "$js"
	bytes=$(jq -r .size <<<"$js")
	[[ $bytes -gt 0 ]] || return
	: >"$OUT/ns-enable-$mode.ms"
	settle
	# map=dev: a pfn device claims the namespace and nd_pmem drives the
	# pfn device. map=mem on an e820 range: nd_pmem drives the namespace
	# itself and maps it with a memmap in RAM (the region has
	# ND_REGION_PAGEMAP; see pmem_should_map_pages()).
	holder=$(cat "/sys/bus/nd/devices/$E820_NS/holder") || return
	[[ -n $holder ]] || holder=$E820_NS
	[[ -e /sys/bus/nd/devices/$holder/driver ]] || { echo "$holder has no driver bound"; return 1; }
	echo "nd_pmem drives $holder"
	for ((i = 0; i < REPS; i++)); do
		# Not "ndctl disable-namespace": for map=dev it also drops the
		# pfn device's claim, and re-enabling then probes a new pfn
		# device asynchronously.
		echo "$holder" >/sys/bus/nd/drivers/nd_pmem/unbind || return
		settle
		t=$(now_ns)
		echo "$holder" >/sys/bus/nd/drivers/nd_pmem/bind || return
		# ms per GiB of namespace
		echo "$(( $(now_ns) - t )) $bytes" | awk '{printf "%.1f\n", $1 / 1e6 / ($2 / 2^30)}' \
			>>"$OUT/ns-enable-$mode.ms"
	done
	cat "$OUT/ns-enable-$mode.ms"
	settle
	[[ $(ndctl list -n "$E820_NS" | jq -r '.[0].mode') == fsdax ]]
}
step ns-enable-map-mem ns_enable_times mem
step ns-enable-map-dev ns_enable_times dev
settle

# The O_DIRECT source for the GUP figure: a raw namespace on a QEMU NVDIMM.
RAW=""
raw_ns() {
	local js reg
	nvdimm_labels ndctl || { echo "no two ACPI.NFIT regions with labels (QEMU NVDIMMs missing?)"; return 1; }
	reg=$(head -n1 "$OUT/nvdimm-regions.txt")
	js=$(ndctl create-namespace -r "$reg" -m raw -s "${BUF_MIB}M") || return
	echo "$js"
	RAW=/dev/$(jq -r .blockdev <<<"$js")
	settle
	[[ -b $RAW ]]
}
step raw-namespace raw_ns

# xfs on the e820 fsdax namespace (memmap in pmem), 2 MiB stripe unit so
# that the file's extents are PMD-aligned. reflink=0: the 1 GiB files of the
# fault figures must be PMD-mapped from end to end, which xfs with reflink=1
# on this 3 GiB namespace does not give (measured: a fifth of the pmd_fault
# faults fell back). The two read figures get an xfs of their own below.
fs_setup() {
	local dev
	dev=/dev/$(ndctl list -n "$E820_NS" | jq -r '.[0].blockdev')
	[[ -b $dev ]] || return
	mkfs.xfs -f -q -m reflink=0 -d su=2m,sw=1 "$dev" || return
	mount -o dax=always "$dev" "$MNT" || return
	echo "$dev on $MNT"
}
step mount-xfs-dax fs_setup

# The read_private and read_reflinked figures: xfs with reflink=1 (FICLONE)
# on a 1 GiB fsdax namespace of the second QEMU NVDIMM (memmap in RAM,
# 2 MiB aligned).
RMNT=$MNT-reflink
rfs_setup() {
	local reg js dev
	reg=$(sed -n 2p "$OUT/nvdimm-regions.txt")
	[[ -n $reg ]] || { echo "no second NVDIMM region"; return 1; }
	js=$(ndctl create-namespace -r "$reg" -m fsdax -M mem -a 2M -s 1G) || return
	echo "$js"
	dev=/dev/$(jq -r .blockdev <<<"$js")
	settle
	[[ -b $dev ]] || return
	mkfs.xfs -f -q -m reflink=1 -d su=2m,sw=1 "$dev" || return
	mkdir -p "$RMNT" && mount -o dax=always "$dev" "$RMNT" || return
	echo "$dev on $RMNT"
}
step mount-xfs-reflink-dax rfs_setup

trace_on() {
	echo 0 >"$TR/tracing_on" &&
		echo 8192 >"$TR/buffer_size_kb" &&
		: >"$TR/trace" &&
		echo 1 >"$TR/events/fs_dax/dax_pmd_fault_done/enable" &&
		echo 1 >"$TR/tracing_on"
}
step trace-pmd-faults trace_on

say "run: daxbench (${SIZE_MIB} MiB file, ${BUF_MIB} MiB buffers, $REPS repetitions)"
if "$BIN/daxbench" -f "$MNT/bench.file" -F "$RMNT/bench.file" -s "$SIZE_MIB" -b "$BUF_MIB" -r "$REPS" -d "$RAW" \
	>"$OUT/daxbench.json" 2>"$OUT/log/daxbench.log"; then
	result daxbench ok
else
	result daxbench fail "see log/daxbench.log"
	tail -n 15 "$OUT/log/daxbench.log" | sed 's/^/    /'
	finish
fi
sed 's/^/    /' "$OUT/log/daxbench.log"

# The trace tells, per file (daxbench prints their inode numbers), how the
# faults were served. The pmd_fault figure maps its file REPS times by
# PMDs, and read_private its own: at least that many PMD faults of each
# file must have been served without a fallback, or the figures do not
# measure what they say. How the reflinked file was mapped depends on the
# kernel (the mainline series maps shared extents by PTEs for reads): it
# is recorded, not checked.
pmd_served() { # INODE: NOPAGE count of that inode's PMD faults
	grep -c " ino $1 .* NOPAGE\$" "$OUT/log/pmd-trace.txt" || true
}
pmd_fellback() {
	grep -c " ino $1 .* FALLBACK\$" "$OUT/log/pmd-trace.txt" || true
}
pmd_check() {
	local ino name want n ok=0
	echo 0 >"$TR/tracing_on"
	grep 'dax_pmd_fault_done' "$TR/trace" >"$OUT/log/pmd-trace.txt" || true
	: >"$OUT/pmd-mapping.tsv"
	for name in pmd private reflinked; do
		ino=$(jq -r ".inodes.$name" "$OUT/daxbench.json") || return
		[[ $ino == 0x* ]] || { echo "daxbench reported no inode for $name"; return 1; }
		printf '%s\t%s\t%s\n' "$name" "$(pmd_served "$ino")" "$(pmd_fellback "$ino")" >>"$OUT/pmd-mapping.tsv"
	done
	while IFS=$'\t' read -r name n ino; do
		case $name in
		pmd) want=$(( REPS * SIZE_MIB / 2 )) ;;
		private) want=$(( REPS * BUF_MIB / 2 )) ;;
		*) want=0 ;;
		esac
		echo "$name file: PMD faults served (NOPAGE) $n, fell back $ino; at least $want must be served"
		((n >= want)) || ok=1
	done <"$OUT/pmd-mapping.tsv"
	echo "trace buffer lost events: $(grep -c 'LOST' "$OUT/log/pmd-trace.txt" || true)"
	return "$ok"
}
step pmd-faults-served pmd_check

merge() {
	jq --slurpfile mem <(jq -s . "$OUT/ns-enable-mem.ms") --slurpfile dev <(jq -s . "$OUT/ns-enable-dev.ms") \
		--rawfile pm "$OUT/pmd-mapping.tsv" '
		def fig($name; $what; $s):
			($s | sort) as $o
			| {name: $name, unit: "ms/GiB", what: $what, samples: $s, min: $o[0],
			   median: (if ($o | length) % 2 == 1 then $o[($o | length - 1) / 2]
				    else ($o[($o | length) / 2 - 1] + $o[($o | length) / 2]) / 2 end)};
		.pmd_mapping = ($pm | split("\n") | map(select(length > 0) | split("\t")
			| {(.[0]): {pmd_served: (.[1] | tonumber), fell_back: (.[2] | tonumber)}}) | add)
		| .figures += [fig("ns_enable_mem"; "nd_pmem probe (memmap init), fsdax with the memmap in RAM (map=mem)"; $mem[0]),
			     fig("ns_enable_dev"; "nd_pmem probe (memmap init), fsdax with the memmap in pmem (map=dev)"; $dev[0])]
	' "$OUT/daxbench.json" >"$OUT/bench.json.tmp" || return
	mv "$OUT/bench.json.tmp" "$OUT/bench.json" || return
	jq -r '.figures[] | "\(.name)\t\(.min)\t\(.median)\t\(.unit)"' "$OUT/bench.json"
}
step bench-json merge
umount "$MNT" || true
umount "$RMNT" || true
finish
