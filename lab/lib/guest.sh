# shellcheck shell=bash
# Boot the kernel under test with virtme-ng and emulated persistent memory.
#
# The guest is the host's own root file system, read-only over 9p, as
# virtme-ng sets it up; the lab adds:
#   - two QEMU NVDIMMs with label areas (ACPI.NFIT bus), file-backed under
#     $CACHE/vm, recreated for every boot;
#   - one legacy e820 range (memmap=3G!8G: 8-11 GiB, clear of nfit_test's
#     fake physical addresses at 4-8 GiB);
#   - one reserved range for nfit_test's real-memmap mode
#     (memmap=512M$11G: 11-11.5 GiB, right after the e820 range);
#   - the staged modules bound over /lib/modules inside the guest;
#   - the run directory shared read-write as /tmp/daxpage-out (virtme-ng
#     can only mount it below one of its writable overlays);
#   - every other host directory the guest needs (the lab's scripts, the
#     staged modules, the test binaries, ndctl's and xfstests' builds)
#     shared read-only at its own path (guest_share_args). The guest sees
#     the host's root anyway, but not what lies under /tmp or /var/tmp,
#     where it mounts file systems of its own: a checkout or a
#     DAXPAGE_CACHE there works only through these shares.

LAB_GUEST_MEM=${LAB_GUEST_MEM:-12G}
LAB_GUEST_CPUS=${LAB_GUEST_CPUS:-2}
LAB_MEMMAP=${LAB_MEMMAP:-3G!8G}
# Memory the guest kernel leaves alone (memmap=SIZE$BASE) for nfit_test's
# real-memmap mode: its PMEM ranges go there in the test pass (suite.sh).
LAB_NFIT_RESERVE=${LAB_NFIT_RESERVE:-512M\$11G}
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
	[[ -n $mem ]] ||
		die "LAB_GUEST_MEM=$LAB_GUEST_MEM is not a size" "use a form like LAB_GUEST_MEM=12G (or unset it)"
	[[ -n $size && -n $start && $LAB_MEMMAP == *!* ]] ||
		die "LAB_MEMMAP=$LAB_MEMMAP is not SIZE!START" "use a form like LAB_MEMMAP=3G!8G (or unset it)"
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
	local rsize rstart
	rsize=$(size_mib "${LAB_NFIT_RESERVE%%\$*}")
	rstart=$(size_mib "${LAB_NFIT_RESERVE#*\$}")
	[[ $LAB_NFIT_RESERVE =~ ^[0-9]+[MG]\$[0-9]+[MG]$ ]] ||
		die "LAB_NFIT_RESERVE=$LAB_NFIT_RESERVE is not SIZE\$BASE in M or G" "use a form like LAB_NFIT_RESERVE='512M\$11G' (or unset it)"
	((rsize >= 512 && rsize % 128 == 0 && rstart % 128 == 0)) ||
		die "LAB_NFIT_RESERVE=$LAB_NFIT_RESERVE: nfit_test's real-memmap mode needs at least 512 MiB at a 128 MiB boundary" \
			"unset LAB_NFIT_RESERVE (default 512M\$11G)"
	((rstart >= 8192)) ||
		die "memmap=$LAB_NFIT_RESERVE starts below 8 GiB (the kernel's low memory, the hole at 2-4 GiB, nfit_test's fake pmem at 4-8 GiB)" \
			"start LAB_NFIT_RESERVE at 8G or above, clear of LAB_MEMMAP (default 512M\$11G)"
	((rstart >= start + size || rstart + rsize <= start)) ||
		die "memmap=$LAB_NFIT_RESERVE overlaps memmap=$LAB_MEMMAP" \
			"move LAB_NFIT_RESERVE past the e820 range (with the defaults: 512M\$11G)"
	((rstart + rsize <= ram_end)) ||
		die "memmap=$LAB_NFIT_RESERVE ends past the guest's RAM (LAB_GUEST_MEM=$LAB_GUEST_MEM ends at $((ram_end / 1024)) GiB)" \
			"raise LAB_GUEST_MEM to at least $(((rstart + rsize - 2048 + 1023) / 1024))G, or move LAB_NFIT_RESERVE lower (8G or above)"
}

# Console lines that mean the guest kernel died (a WARNING alone does not):
# boot_suite names the first one when a guest ends early.
CRASH_RE='Kernel panic|BUG:|Oops|general protection fault'

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

# guest_share_args OUT DIR...: the virtme-ng options that share what a guest
# boot needs: OUT read-write at /tmp/daxpage-out, and $LAB_DIR and each DIR
# read-only at the same path as on the host, so that scripts and builds that
# name them (meson's build directory names its source) work unchanged.
# Parents come before what lies inside them; duplicates are dropped.
guest_share_args() {
	local out=$1 d
	shift
	printf -- '--rwdir=/tmp/daxpage-out=%s\n' "$out"
	for d in "$LAB_DIR" "$@"; do
		printf '%s\n' "${d%/}"
	done | awk '!seen[$0]++ { print length($0) "\t" $0 }' | sort -n -s -k1,1 | cut -f2- |
		while IFS= read -r d; do
			printf -- '--rodir=%s=%s\n' "$d" "$d"
		done
}

# guest_command SCRIPT PASS MODS BIN: the script the guest runs (written to
# the run directory, which the guest sees as /tmp/daxpage-out). It refuses,
# with a "daxpage: guest-error:" line, what cannot work (the script or the
# modules not visible), binds the modules and runs SCRIPT.
guest_command() {
	local script=$1 pass=$2 mods=$3 bin=$4
	cat <<-EOF
		if [ ! -r $script ]; then echo 'daxpage: guest-error: $script is not visible in the guest'; exit 97; fi
		if [ ! -d $mods ]; then echo 'daxpage: guest-error: $mods is not visible in the guest'; exit 97; fi
		mkdir -p /lib/modules && mount --bind $mods /lib/modules ||
			{ echo 'daxpage: guest-error: cannot bind $mods over /lib/modules'; exit 98; }
		export DAXPAGE_BENCH_REPS=${LAB_BENCH_REPS:-5} DAXPAGE_BENCH_SIZE_MIB=${LAB_BENCH_SIZE_MIB:-1024}
		export DAXPAGE_BENCH_BUF_MIB=${LAB_BENCH_BUF_MIB:-256}
		bash $script $pass /tmp/daxpage-out $bin
	EOF
}

# guest_exec PASS: virtme-ng's --exec for a boot. virtme-ng carries it on
# the kernel command line (base64), which x86 cuts at 2048 characters, so it
# stays short: it says "daxpage: guest up" first (the host can then tell a
# kernel that never reached user space from a suite that could not start),
# runs the run directory's .guest-PASS.sh and says "daxpage: guest-exit RC".
guest_exec() {
	# shellcheck disable=SC2016 # $? is the guest's
	printf '%s' "echo 'daxpage: guest up'; bash /tmp/daxpage-out/.guest-$1.sh; " \
		'echo "daxpage: guest-exit $?"'
}

# Characters of the kernel command line the lab's shares may use: virtme-ng
# adds "virtme_initmountN=PATH" for each; it and the lab's own options take
# about 1000 more.
GUEST_SHARE_BUDGET=900

# boot_suite PASS OUTDIR MODULES BINDIR ACCEL [DIR...]: one guest boot running
# the suite (GUEST_SCRIPT, default lab/guest/suite.sh; "lab bench" runs
# lab/guest/bench.sh with QEMU_EXTRA="-icount ..."), with MODULES bound over
# /lib/modules and BINDIR (and each DIR) shared. The console goes to
# OUTDIR/PASS-console.log and the suite's own output to OUTDIR/PASS-suite.log.
# Returns 0 when the suite ran to its end (whatever its verdicts), else
# (with GUEST_FAILURE saying what happened, and the console's last lines on
# stderr):
#   2  the kernel never reached user space (a panic, or no boot in time:
#      no "Run ... as init process" on the console within LAB_BOOT_TIMEOUT
#      seconds, when the guest is stopped; boot_watchdog)
#   3  virtme-ng or QEMU stopped before the kernel ran, or the guest booted
#      and the suite did not start (a script not visible, an exit code):
#      a problem of the lab or the host, not of the kernel
#   4  the suite started and the guest hung (no end within the timeout)
#   5  the suite started and the guest stopped before its end (a crash)
GUEST_FAILURE=""
boot_suite() {
	local pass=$1 out=$2 mods=$3 bin=$4 accel=$5 vm rc=0 i script rpid
	local -a accel_opt=() nv=() shares
	shift 5
	script=${GUEST_SCRIPT:-$LAB_DIR/guest/suite.sh}
	mapfile -t shares < <(guest_share_args "$out" "$mods" "$bin" "$@")
	if (($(printf '%s' "${shares[@]}" | wc -c) > GUEST_SHARE_BUDGET)); then
		GUEST_FAILURE="the paths shared with the guest (${shares[*]}) are too long for the kernel command line, which x86 cuts at 2048 characters"
		warn "$GUEST_FAILURE"
		return 3
	fi
	mkdir -p "$out"
	guest_command "$script" "$pass" "$mods" "$bin" >"$out/.guest-$pass.sh"
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
	rm -f "$out/.$pass-boot-hung"
	# vng's output goes through a FIFO to the reader, which copies it to
	# the suite log and the progress lines to the terminal. vng runs in the
	# background under timeout, which makes a process group of its own
	# (QEMU in it), so that boot_kill can end the whole guest, and a
	# signal to the lab interrupts the wait below (boot_signal). (timeout
	# itself, not with_timeout: $! must be its pid, which is its group.)
	mkfifo "$vm/out"
	boot_reader "$vm/out" "$out/$pass-suite.log" &
	rpid=$!
	trap 'boot_signal INT' INT
	trap 'boot_signal TERM' TERM
	trap 'boot_signal HUP' HUP
	timeout --kill-after=20 "$LAB_GUEST_TIMEOUT" vng --run "$KDIR/arch/x86/boot/bzImage" "${accel_opt[@]}" \
		--disable-microvm --force-9p --verbose --cpus "${GUEST_CPUS:-$LAB_GUEST_CPUS}" \
		--memory "$LAB_GUEST_MEM" --cwd / "${shares[@]}" \
		--append "memmap=$LAB_MEMMAP memmap=$LAB_NFIT_RESERVE hung_task_timeout_secs=120 modprobe.blacklist=$NO_AUTOLOAD" \
		--exec "$(guest_exec "$pass")" \
		--qemu-opts="-machine nvdimm=on -m $LAB_GUEST_MEM,slots=4,maxmem=64G ${nv[*]} ${QEMU_EXTRA:-}" </dev/null \
		2>"$out/$pass-console.log" >"$vm/out" &
	BOOT_PID=$!
	boot_watchdog "$out/$pass-console.log" "$out/.$pass-boot-hung" "$BOOT_PID" &
	BOOT_WATCHDOG=$!
	# vng's own exit status (124/137 when the timeout ended it).
	wait "$BOOT_PID" || rc=$?
	trap - INT TERM HUP
	kill "$BOOT_WATCHDOG" 2>/dev/null || true
	wait "$BOOT_WATCHDOG" 2>/dev/null || true
	BOOT_PID="" BOOT_WATCHDOG=""
	wait "$rpid" 2>/dev/null || true
	rm -rf "$vm"
	touch "$out/$pass-suite.log"
	grep -q '^daxpage: suite done' "$out/$pass-suite.log" && return 0
	local up=0 where="before ${script##*/} started" exited="" panic=""
	grep -q '^daxpage: guest up' "$out/$pass-suite.log" && up=1
	grep -q '^daxpage: \[' "$out/$pass-suite.log" && where="in ${script##*/}"
	exited=$(sed -n 's/^daxpage: guest-\(error: .*\|exit [0-9]*\)$/\1/p' "$out/$pass-suite.log" | head -n1)
	panic=$(grep -m1 -E "$CRASH_RE" "$out/$pass-console.log" || true)
	if [[ $up == 0 ]]; then
		if [[ -n $panic ]]; then
			GUEST_FAILURE="the guest kernel crashed before user space: $panic"
			rc=2
		elif [[ -f $out/.$pass-boot-hung ]]; then
			GUEST_FAILURE="the guest kernel did not reach user space (no \"Run ... as init process\") within ${LAB_BOOT_TIMEOUT}s (LAB_BOOT_TIMEOUT) and was stopped; its console's last line: $(grep . "$out/$pass-console.log" | tail -n1)"
			rc=2
		elif grep -q 'Linux version' "$out/$pass-console.log"; then
			GUEST_FAILURE="the guest kernel started but never reached user space (rc=$rc)"
			rc=2
		else
			GUEST_FAILURE="virtme-ng or QEMU stopped before the kernel started (rc=$rc; not a kernel problem)"
			rc=3
		fi
	elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
		GUEST_FAILURE="the guest hung $where: no result after ${LAB_GUEST_TIMEOUT}s"
		rc=4
	elif [[ -n $panic ]]; then
		GUEST_FAILURE="the guest kernel crashed $where: $panic"
		rc=5
	elif [[ $where == before* && -n $exited ]]; then
		if [[ $exited == exit* ]]; then
			exited="${script##*/} exited with ${exited#exit } before its first check"
		else
			exited=${exited#error: }
		fi
		GUEST_FAILURE="the guest booted but ${script##*/} did not start: $exited; not a kernel problem"
		rc=3
	else
		[[ $where == before* ]] && where+=", with no exit code" || where="before ${script##*/} ended"
		GUEST_FAILURE="the guest stopped $where (rc=$rc)"
		rc=5
	fi
	warn "$GUEST_FAILURE; console: $out/$pass-console.log"
	{ echo "--- last lines of the suite output:"; tail -n 8 "$out/$pass-suite.log"
	  echo "--- last lines of the console:"; tail -n 20 "$out/$pass-console.log"; } >&2 || true
	return "$rc"
}

# boot_reader FIFO LOG: copy the guest's output from FIFO to LOG, and its
# progress lines ("daxpage: ...") to the terminal.
boot_reader() {
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$2"
		case $line in daxpage:*) printf '[guest] %s\n' "$line" ;; esac
	done <"$1"
}

# boot_watchdog CONSOLE MARK PGID: stop a guest kernel that does not boot:
# unless CONSOLE has the kernel's "Run ... as init process" (user space
# starts) within LAB_BOOT_TIMEOUT seconds, write MARK and end the process
# group PGID (timeout, virtme-ng, QEMU). Runs in the background for the
# length of one boot, holding none of the run's locks; boot_suite ends it.
boot_watchdog() {
	local console=$1 mark=$2 pgid=$3 t=0 fd
	for fd in "${LAB_LOCK_FDS[@]}"; do
		exec {fd}>&-
	done
	trap 'kill "$(jobs -p)" 2>/dev/null; exit 0' TERM
	while :; do
		grep -qE 'Run .* as init process' "$console" 2>/dev/null && return 0
		((t < LAB_BOOT_TIMEOUT)) || break
		sleep 2 &
		wait "$!"
		t=$((t + 2))
	done
	echo "$LAB_BOOT_TIMEOUT" >"$mark"
	kill -TERM -- "-$pgid" 2>/dev/null || true
}

# boot_kill: end the guest of the boot in progress, if any (the process
# group of timeout, virtme-ng and QEMU, which a signal to the lab does not
# reach) and its watchdog. For an aborted run (run_cleanup, boot_signal).
BOOT_PID=""
BOOT_WATCHDOG=""
boot_kill() {
	[[ -z $BOOT_PID ]] || kill -TERM -- "-$BOOT_PID" 2>/dev/null || true
	[[ -z $BOOT_WATCHDOG ]] || kill "$BOOT_WATCHDOG" 2>/dev/null || true
}

# boot_signal SIG: the lab got SIG during a boot: end the guest, then die of
# SIG (so that a caller waiting on the lab sees the signal).
boot_signal() {
	boot_kill
	trap - "$1"
	kill -s "$1" "$BASHPID"
}

# guest_failure_fix RC CONSOLE: the one-line fix for a boot_suite failure.
guest_failure_fix() {
	case $1 in
	2) echo "read $2: a panic at boot is a kernel (or config) bug; a silent console may be a kernel that does not boot under QEMU; a boot stopped by LAB_BOOT_TIMEOUT: try again, or raise it on a very slow machine" ;;
	3) echo "read $2 and the suite output above: the lab could not start its suite in the guest (paths, virtme-ng, QEMU); report it as a lab issue" ;;
	4) echo "read $2: a hung guest is most likely a kernel bug (or raise LAB_GUEST_TIMEOUT on a very slow machine)" ;;
	*) echo "read $2: a panic or oops there is a kernel bug" ;;
	esac
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

# lab_env_check: refuse malformed LAB_* knobs (and DAXPAGE_JOBS) before any
# work, with the knob's name and a value that works.
lab_env_check() {
	local k v
	for k in LAB_GUEST_CPUS LAB_GUEST_TIMEOUT LAB_BOOT_TIMEOUT DAXPAGE_JOBS LAB_BENCH_REPS \
		LAB_BENCH_SIZE_MIB LAB_BENCH_BUF_MIB LAB_BENCH_BOOTS LAB_LOCK_TIMEOUT; do
		v=${!k:-1}
		is_uint "$v" && ((v >= 1)) ||
			die "$k=$v is not a positive whole number" "unset $k for its default, or set a number"
	done
	((${LAB_BENCH_BOOTS:-3} <= 9)) ||
		die "LAB_BENCH_BOOTS=$LAB_BENCH_BOOTS is more than 9 boots" "unset it for the default (3), or set 1 to 9"
	[[ -n $(size_mib "$LAB_NVDIMM_SIZE") ]] ||
		die "LAB_NVDIMM_SIZE=$LAB_NVDIMM_SIZE is not a size" "use a form like LAB_NVDIMM_SIZE=3G"
	case ${LAB_ACCEL:-} in "" | kvm | tcg) ;; *)
		die "LAB_ACCEL=$LAB_ACCEL is neither kvm nor tcg" "unset LAB_ACCEL (the lab probes), or set kvm or tcg" ;;
	esac
	guest_layout_check
}
