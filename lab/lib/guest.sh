# shellcheck shell=bash
# Boot the kernel under test with virtme-ng and emulated persistent memory.
#
# The guest is the host's own root file system, read-only over 9p, as
# virtme-ng sets it up; the lab adds:
#   - two QEMU NVDIMMs with label areas (ACPI.NFIT bus), file-backed under
#     $CACHE/vm, recreated for every boot;
#   - one legacy e820 range (memmap=3G!8G: 8-11 GiB, clear of nfit_test's
#     fake physical addresses at 4-8 GiB);
#   - the staged modules bound over /lib/modules inside the guest;
#   - the run directory shared read-write as /tmp/daxpage-out (virtme-ng
#     can only mount it below one of its writable overlays).

LAB_GUEST_MEM=${LAB_GUEST_MEM:-12G}
LAB_GUEST_CPUS=${LAB_GUEST_CPUS:-2}
LAB_MEMMAP=${LAB_MEMMAP:-3G!8G}
LAB_NVDIMM_SIZE=${LAB_NVDIMM_SIZE:-3G}
LAB_BOOT_TIMEOUT=${LAB_BOOT_TIMEOUT:-300}
LAB_GUEST_TIMEOUT=${LAB_GUEST_TIMEOUT:-2400}

# size_mib SIZE: a size with a K, M, G or T suffix (as QEMU and memmap= take
# it) in MiB; empty when SIZE has another form.
size_mib() {
	local n=${1%[KkMmGgTt]}
	[[ $n =~ ^[0-9]+$ && $1 != "$n" ]] || return 0
	case ${1: -1} in
	K | k) echo $((n / 1024)) ;;
	M | m) echo "$n" ;;
	G | g) echo $((n * 1024)) ;;
	T | t) echo $((n * 1024 * 1024)) ;;
	esac
}

# guest_layout_check: refuse a LAB_GUEST_MEM / LAB_MEMMAP pair that cannot
# work. memmap=SIZE!START turns guest RAM into an e820 pmem range, so the
# range must lie inside RAM: on q35 a guest with more than 2.75 GiB has 2 GiB
# below 4 GiB and the rest from 4 GiB up. Past the end of RAM QEMU places the
# NVDIMMs, which the range would then overlap (seen with 8G and 3G!8G: the
# first NVDIMM namespace fails with -EBUSY). The range must also stay clear
# of the fake physical addresses nfit_test hands out, 4-8 GiB.
guest_layout_check() {
	local mem size start ram_end
	mem=$(size_mib "$LAB_GUEST_MEM")
	size=$(size_mib "${LAB_MEMMAP%%!*}")
	start=$(size_mib "${LAB_MEMMAP#*!}")
	[[ -n $mem && -n $size && -n $start && $LAB_MEMMAP == *!* ]] ||
		die "LAB_GUEST_MEM=$LAB_GUEST_MEM or LAB_MEMMAP=$LAB_MEMMAP is not a size (or SIZE!START)" \
			"use forms like LAB_GUEST_MEM=12G and LAB_MEMMAP=3G!8G"
	((mem > 2816)) ||
		die "LAB_GUEST_MEM=$LAB_GUEST_MEM is too small: the guest needs more than 2.75 GiB" \
			"unset LAB_GUEST_MEM (default 12G)"
	ram_end=$((4096 + mem - 2048))
	((start + size <= ram_end)) ||
		die "memmap=$LAB_MEMMAP ends at $(((start + size) / 1024)) GiB, past the guest's RAM (LAB_GUEST_MEM=$LAB_GUEST_MEM ends at $((ram_end / 1024)) GiB); the NVDIMMs would overlap it" \
			"raise LAB_GUEST_MEM to at least $(((start + size - 2048 + 1023) / 1024))G, or move LAB_MEMMAP"
	((start >= 8192 || start + size <= 4096)) ||
		die "memmap=$LAB_MEMMAP overlaps 4-8 GiB, where nfit_test places its fake pmem" \
			"start LAB_MEMMAP at 8G or above (default 3G!8G)"
}

# Splats that fail a run when found in the guest's kernel log.
SPLAT_RE='WARNING:|BUG:|Oops|KASAN|Call Trace|possible circular locking|possible recursive locking|inconsistent lock state|INFO: task .* blocked for more than|general protection fault|Kernel panic'

# virtme-ng links the build tree's production modules in at boot, and udev
# would load the nvdimm drivers for the QEMU NVDIMMs from there before the
# suite binds its staged modules. modprobe's blacklist stops only alias
# (udev) loads; the suite's explicit modprobe still works.
NO_AUTOLOAD=nfit,libnvdimm,nd_pmem,nd_btt,nd_e820,dax_pmem,device_dax,kmem

# kvm_probe BZIMAGE: print "kvm" if a KVM guest prints its banner within
# 20 seconds, else "tcg". On these machines KVM guests hang at "Booting
# from ROM", so the lab never trusts /dev/kvm alone.
kvm_probe() {
	local bz=$1 out
	if [[ -n ${LAB_ACCEL:-} ]]; then
		echo "$LAB_ACCEL"
		return
	fi
	if [[ ! -w /dev/kvm ]]; then
		echo tcg
		return
	fi
	out=$(timeout --kill-after=5 20 qemu-system-x86_64 -accel kvm -m 256 -nodefaults -nographic \
		-serial stdio -no-reboot -kernel "$bz" -append 'console=ttyS0 panic=-1' 2>&1 | head -c 200000 || true)
	if grep -q 'Linux version' <<<"$out"; then
		echo kvm
	else
		echo tcg
	fi
}

# boot_suite PASS OUTDIR MODULES BINDIR ACCEL: one guest boot running the
# suite (GUEST_SCRIPT, default lab/guest/suite.sh; "lab bench" runs
# lab/guest/bench.sh with QEMU_EXTRA="-icount ..."). The console goes to OUTDIR/PASS-console.log and the suite's own
# output to OUTDIR/PASS-suite.log. Returns 0 when the suite ran to its end
# (whatever its verdicts), 1 when the guest did not boot, hung or panicked.
boot_suite() {
	local pass=$1 out=$2 mods=$3 bin=$4 accel=$5 vm rc=0 i
	local -a accel_opt=() nv=()
	# The NVDIMM backing files (sparse), new for every boot and private to
	# it, so that two lab runs on one machine do not share media.
	mkdir -p "$CACHE/vm" "$out/$pass"
	vm=$(mktemp -d "$CACHE/vm/boot.XXXXXX")
	for i in 0 1; do
		truncate -s "$LAB_NVDIMM_SIZE" "$vm/nv$i.img"
		nv+=(-object "memory-backend-file,id=nvmem$i,share=on,mem-path=$vm/nv$i.img,size=$LAB_NVDIMM_SIZE,align=1G"
			-device "nvdimm,memdev=nvmem$i,id=nv$i,label-size=2M")
	done
	[[ $accel == tcg ]] && accel_opt=(--disable-kvm)
	log "guest ($pass modules, $accel): booting; console: $out/$pass-console.log"
	{
		with_timeout "$LAB_GUEST_TIMEOUT" vng --run "$KDIR/arch/x86/boot/bzImage" "${accel_opt[@]}" \
			--disable-microvm --force-9p --verbose --cpus "${GUEST_CPUS:-$LAB_GUEST_CPUS}" \
			--memory "$LAB_GUEST_MEM" --cwd / --rwdir="/tmp/daxpage-out=$out" \
			--append "memmap=$LAB_MEMMAP hung_task_timeout_secs=120 modprobe.blacklist=$NO_AUTOLOAD" \
			--exec "mkdir -p /lib/modules && mount --bind $mods /lib/modules && DAXPAGE_BENCH_REPS=${LAB_BENCH_REPS:-5} DAXPAGE_BENCH_SIZE_MIB=${LAB_BENCH_SIZE_MIB:-1024} DAXPAGE_BENCH_BUF_MIB=${LAB_BENCH_BUF_MIB:-256} bash ${GUEST_SCRIPT:-$LAB_DIR/guest/suite.sh} $pass /tmp/daxpage-out $bin" \
			--qemu-opts="-machine nvdimm=on -m $LAB_GUEST_MEM,slots=4,maxmem=64G ${nv[*]} ${QEMU_EXTRA:-}" </dev/null \
			2>"$out/$pass-console.log" |
			while IFS= read -r line; do
				printf '%s\n' "$line" >>"$out/$pass-suite.log"
				case $line in daxpage:*) printf '[guest] %s\n' "$line" ;; esac
			done
	} || rc=$?
	rm -rf "$vm"
	# Give the console tee a moment to drain.
	sleep 1
	if ! grep -q '^daxpage: suite done' "$out/$pass-suite.log" 2>/dev/null; then
		if ! grep -q 'daxpage: \[' "$out/$pass-suite.log" 2>/dev/null; then
			if grep -q 'Kernel panic' "$out/$pass-console.log"; then
				warn "guest kernel panicked during boot: $(grep -m1 'Kernel panic' "$out/$pass-console.log")"
			fi
			warn "the guest never started the suite (rc=$rc); console: $out/$pass-console.log"
		elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
			warn "the guest hung: no result after ${LAB_GUEST_TIMEOUT}s; console: $out/$pass-console.log"
		else
			warn "the guest stopped before the suite ended (rc=$rc); console: $out/$pass-console.log"
		fi
		tail -n 25 "$out/$pass-console.log" >&2 || true
		return 1
	fi
	return 0
}

# scan_splats FILE...: print the splat lines found, return 0 if none.
scan_splats() {
	local hits
	hits=$(grep -hnE "$SPLAT_RE" "$@" 2>/dev/null | head -n 40 || true)
	if [[ -n $hits ]]; then
		printf '%s\n' "$hits"
		return 1
	fi
	return 0
}
