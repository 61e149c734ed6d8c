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
# that the file's extents are PMD-aligned, reflink=1 for the read_reflinked
# figure (FICLONE).
fs_setup() {
	local dev
	dev=/dev/$(ndctl list -n "$E820_NS" | jq -r '.[0].blockdev')
	[[ -b $dev ]] || return
	mkfs.xfs -f -q -m reflink=1 -d su=2m,sw=1 "$dev" || return
	mount -o dax=always "$dev" "$MNT" || return
	echo "$dev on $MNT"
}
step mount-xfs-dax fs_setup

trace_on() {
	echo 0 >"$TR/tracing_on" &&
		echo 8192 >"$TR/buffer_size_kb" &&
		: >"$TR/trace" &&
		echo 1 >"$TR/events/fs_dax/dax_pmd_fault_done/enable" &&
		echo 1 >"$TR/tracing_on"
}
step trace-pmd-faults trace_on

say "run: daxbench (${SIZE_MIB} MiB file, ${BUF_MIB} MiB buffers, $REPS repetitions)"
if "$BIN/daxbench" -f "$MNT/bench.file" -s "$SIZE_MIB" -b "$BUF_MIB" -r "$REPS" -d "$RAW" \
	>"$OUT/daxbench.json" 2>"$OUT/log/daxbench.log"; then
	result daxbench ok
else
	result daxbench fail "see log/daxbench.log"
	tail -n 15 "$OUT/log/daxbench.log" | sed 's/^/    /'
	finish
fi
sed 's/^/    /' "$OUT/log/daxbench.log"

# The pmd_fault figure alone maps the file REPS times by PMDs: at least
# that many PMD faults must have been served without a fallback.
pmd_check() {
	local n want=$(( REPS * SIZE_MIB / 2 ))
	echo 0 >"$TR/tracing_on"
	grep 'dax_pmd_fault_done' "$TR/trace" >"$OUT/log/pmd-trace.txt" || true
	n=$(grep -c ' NOPAGE' "$OUT/log/pmd-trace.txt" || true)
	echo "PMD faults served (NOPAGE): $n, expected at least $want"
	echo "PMD faults that fell back: $(grep -c ' FALLBACK' "$OUT/log/pmd-trace.txt" || true)" \
		"(the pte_fault and fork_pte figures map off by one page: expected)"
	[[ $n -ge $want ]]
}
step pmd-faults-served pmd_check

merge() {
	jq --slurpfile mem <(jq -s . "$OUT/ns-enable-mem.ms") --slurpfile dev <(jq -s . "$OUT/ns-enable-dev.ms") '
		def fig($name; $what; $s):
			($s | sort) as $o
			| {name: $name, unit: "ms/GiB", what: $what, samples: $s, min: $o[0],
			   median: (if ($o | length) % 2 == 1 then $o[($o | length - 1) / 2]
				    else ($o[($o | length) / 2 - 1] + $o[($o | length) / 2]) / 2 end)};
		.figures += [fig("ns_enable_mem"; "nd_pmem probe (memmap init), fsdax with the memmap in RAM (map=mem)"; $mem[0]),
			     fig("ns_enable_dev"; "nd_pmem probe (memmap init), fsdax with the memmap in pmem (map=dev)"; $dev[0])]
	' "$OUT/daxbench.json" >"$OUT/bench.json.tmp" || return
	mv "$OUT/bench.json.tmp" "$OUT/bench.json" || return
	jq -r '.figures[] | "\(.name)\t\(.min)\t\(.median)\t\(.unit)"' "$OUT/bench.json"
}
step bench-json merge
umount "$MNT" || true
finish
