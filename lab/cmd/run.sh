# shellcheck shell=bash
# lab/lab run [--series T] [--base]: one target's base + series (or its base
# alone) -> build -> boot -> suite -> report; without --series, every
# target in turn. Sourced by lab/lab.

RUN_DIR=""
RUN_LABEL=""
RUN_DONE=0

run_cleanup() {
	local rc=$?
	boot_kill
	if [[ -n $RUN_DIR && -d $RUN_DIR && $RUN_DONE -eq 0 ]]; then
		local keep=$RESULTS/$RUN_LABEL.incomplete
		rm -rf "$keep"
		mv "$RUN_DIR" "$keep"
		warn "run aborted; its logs are in $keep (results/$RUN_LABEL/ is untouched)"
	fi
	exit "$rc"
}

# build_guest_tests BINDIR SRC: the lab's smoke programs and the series'
# selftests (tools/testing/selftests/dax of SRC, the target's tree with its
# series applied), built against SRC's kselftest harness. Both kernels of a
# target get the same binaries, so that its base and its series run the
# same tests. A tree without tools/testing/selftests/dax/dax_test.c gives
# no dax_test (the suite then reports those checks as skipped).
MM_SELFTESTS=(gup_test gup_longterm cow)
build_guest_tests() {
	local bin=$1 src=$2 t mm
	rm -rf "$bin"
	mkdir -p "$bin"
	for t in "$LAB_DIR"/guest/tests/*.c "$LAB_DIR"/bench/*.c; do
		gcc -O2 -Wall -I"$src/tools/testing/selftests" -o "$bin/$(basename "$t" .c)" "$t" \
			>>"$RUN_LOG_DIR/tests-build.log" 2>&1 ||
			die "building ${t##*/} failed (log: $RUN_LOG_DIR/tests-build.log)" "fix the test source"
	done
	# selftests/mm programs that take a file: run by the suite with their
	# working directory (and /tmp) on a DAX mount. They need the tree's
	# exported UAPI headers (usr/include).
	make -C "$src" -s headers >>"$RUN_LOG_DIR/tests-build.log" 2>&1 ||
		die "make headers in $src failed (log: $RUN_LOG_DIR/tests-build.log)" "check the tree"
	mkdir -p "$bin/mm"
	# The Makefile probes for liburing once (check_config.sh) and keeps
	# the answer in local_config.{h,mk} in the tree: probe again every
	# time, so that a tree configured before liburing-dev was installed
	# does not go on building gup_longterm and cow without their io_uring
	# cases. Without them the suite is smaller: refuse that. (The header
	# is local_config.h in 6.12, local_config.h_gen in 7.3.)
	mm=$src/tools/testing/selftests/mm
	rm -f "$mm/local_config.h" "$mm/local_config.h_gen" "$mm/local_config.mk"
	make -C "$mm" OUTPUT="$bin/mm" \
		"${MM_SELFTESTS[@]/#/$bin/mm/}" >>"$RUN_LOG_DIR/tests-build.log" 2>&1 ||
		die "building selftests/mm ${MM_SELFTESTS[*]} failed (log: $RUN_LOG_DIR/tests-build.log)" \
			"check the tree's tools/testing/selftests/mm"
	grep -qs LOCAL_CONFIG_HAVE_LIBURING "$mm/local_config.h" "$mm/local_config.h_gen" ||
		die "selftests/mm was built without liburing (no io_uring cases in gup_longterm and cow)" \
			"install liburing-dev ('make deps' does), then retry"
	# 7.3 has a tools/testing/selftests/dax of its own (a shell test,
	# dax-kmem-hotplug.sh): what counts is the series' dax_test.c.
	if [[ -f $src/tools/testing/selftests/dax/dax_test.c ]]; then
		rm -f "$src/tools/testing/selftests/dax/dax_test"
		make -C "$src/tools/testing/selftests" TARGETS=dax \
			>>"$RUN_LOG_DIR/tests-build.log" 2>&1 ||
			die "make -C tools/testing/selftests TARGETS=dax failed (log: $RUN_LOG_DIR/tests-build.log)" \
				"fix the selftests patch"
		cp "$src/tools/testing/selftests/dax/dax_test" "$bin/dax_test" ||
			die "the selftests build made no dax_test (log: $RUN_LOG_DIR/tests-build.log)" \
				"fix tools/testing/selftests/dax/Makefile"
	else
		log "tests: ${src##*/} has no tools/testing/selftests/dax/dax_test.c: no dax_test (the suite skips its checks)"
	fi
}

RUN_TARGET=""
RUN_BASE=0
RUN_MODE=suite

# run_kdir TARGET KIND: the build worktree of a run (KIND base or series):
# $CACHE/wt/TARGET-KIND, or with --base-tree one per target, kind and tree
# (named by the tree's git directory).
run_kdir() {
	if [[ -n ${BASE_TREE:-} ]]; then
		printf '%s\n' "$CACHE/wt/ext-$1-$2-$(base_tree_repo | sha256sum | cut -c1-8)"
	else
		printf '%s\n' "$CACHE/wt/$1-$2"
	fi
}

# run_label TARGET: a run's default label: TARGET (base + series) or
# TARGET-base (--base), then -debug with --debug.
run_label() {
	local l=$1
	[[ $RUN_BASE == 0 ]] || l+=-base
	[[ ${LAB_DEBUG:-0} == 0 ]] || l+=-debug
	printf '%s\n' "$l"
}

# run_parse_args ARG...: read and check run's options (globals RUN_TARGET,
# RUN_BASE, RUN_MODE, RUN_LABEL_ARG, LAB_DEBUG, BASE_TREE, BASE_REV, PASSES,
# XFSTESTS_FULL) and the environment's knobs. Touches nothing: bad input
# stops the run here, before packages, downloads or builds.
run_parse_args() {
	local p
	local -a targets=()
	RUN_LABEL_ARG=""
	LAB_DEBUG=0
	while [[ $# -gt 0 ]]; do
		case $1 in
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; RUN_TARGET=$2; shift 2 ;;
		--base) RUN_BASE=1; shift ;;
		--mode) need_value "$1" $# "${2:-}"; RUN_MODE=$2; shift 2 ;;
		--label) need_value "$1" $# "${2:-}"; RUN_LABEL_ARG=$2; shift 2 ;;
		--debug) LAB_DEBUG=1; shift ;;
		--base-tree) need_value "$1" $# "${2:-}"; [[ -n $2 ]] || die "--base-tree needs a directory" "pass the path of a kernel git checkout"
			BASE_TREE=$(readlink -f "$2" || echo "$2"); shift 2 ;;
		--base-rev) need_value "$1" $# "${2:-}"; BASE_REV=$2; shift 2 ;;
		--passes) need_value "$1" $# "${2:-}"; read -r -a PASSES <<<"$2"; shift 2 ;;
		--full) XFSTESTS_FULL=1; shift ;;
		*) die "unknown option $1 for run" "see 'lab/lab help'" ;;
		esac
	done
	if [[ -z $RUN_TARGET ]]; then
		targets_all targets
		if [[ ${#targets[@]} -gt 1 ]]; then
			[[ -z ${BASE_TREE:-} ]] ||
				die "--base-tree replaces the base of one target, and series/ has ${#targets[@]} (${targets[*]})" \
					"add --series T to name it (one of: ${targets[*]})"
			[[ -z $RUN_LABEL_ARG ]] ||
				die "--label names one run's results, and without --series there is a run per target (${targets[*]})" \
					"add --series T (one of: ${targets[*]}), or drop --label (the labels are then T and T-base)"
		fi
	fi
	case $RUN_MODE in suite | bench) ;; *)
		die "unknown mode '$RUN_MODE'" "use --mode suite (the default) or bench ('lab/lab bench')" ;;
	esac
	if [[ ${PASSES[*]} == none ]]; then
		# No module pass: the external suites alone (they boot the kernel
		# with the staged modules themselves).
		PASSES=()
		[[ -n ${NDCTL_SRC:-}${XFSTESTS_SRC:-} ]] ||
			die "--passes none runs no module pass, and neither NDCTL_SRC nor XFSTESTS_SRC is set: nothing would run" \
				"set NDCTL_SRC or XFSTESTS_SRC, or name a pass (--passes prod)"
	else
		[[ ${#PASSES[@]} -gt 0 ]] || die "--passes names no pass" "use --passes \"test prod\", \"test\", \"prod\" or (with NDCTL_SRC or XFSTESTS_SRC) \"none\""
	fi
	for p in "${PASSES[@]}"; do
		case $p in test | prod) ;; *)
			die "unknown module pass '$p' in --passes" "use --passes \"test prod\", \"test\", \"prod\" or (with NDCTL_SRC or XFSTESTS_SRC) \"none\"" ;;
		esac
	done
	[[ $(printf '%s\n' "${PASSES[@]}" | sort | uniq -d) == "" ]] ||
		die "--passes names a pass twice" "name each of test and prod at most once"
	[[ -z ${BASE_REV:-} || -n ${BASE_TREE:-} ]] ||
		die "--base-rev needs --base-tree" "add --base-tree DIR (your kernel git tree), or drop --base-rev"
	if [[ -n ${BASE_TREE:-} ]]; then
		[[ -d $BASE_TREE ]] || die "--base-tree $BASE_TREE is not a directory" \
			"pass the path of a kernel git checkout (for example a v6.12.y tree)"
		git -C "$BASE_TREE" rev-parse -q --verify "${BASE_REV:-HEAD}^{commit}" >/dev/null 2>&1 ||
			die "--base-tree $BASE_TREE has no commit ${BASE_REV:-HEAD} (not a git tree you can read?)" \
				"pass a kernel git checkout, and --base-rev REV if HEAD is not the base"
		[[ -f $BASE_TREE/Makefile && -d $BASE_TREE/fs ]] ||
			die "--base-tree $BASE_TREE does not look like a kernel tree" "pass the top of a kernel checkout"
	fi
	if [[ -n $RUN_LABEL_ARG ]]; then
		[[ $RUN_LABEL_ARG =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
			die "label '$RUN_LABEL_ARG' has odd characters" "use letters, digits, . _ - (starting with a letter or digit)"
	fi
	lab_paths_check
	lab_env_check
	check_external_suites
}

# cmd_run ARG...: lab/lab run. With --series T one run (in this shell);
# without, one run per target, each in a subshell, all of them even when
# one fails; the status is non-zero when any failed.
cmd_run() {
	local t failed=0
	local -a targets=()
	PASSES=(test prod)
	run_parse_args "$@"
	if [[ -n $RUN_TARGET ]]; then
		run_target "$RUN_TARGET"
		return
	fi
	targets_all targets
	for t in "${targets[@]}"; do
		log "run: $(run_label "$t") (series/$t)"
		subshell_rc run_target "$t"
		if [[ $SUBSHELL_RC != 0 ]]; then
			warn "run of $(run_label "$t") failed (status $SUBSHELL_RC): see $RESULTS/$(run_label "$t")*/"
			failed=1
		fi
	done
	return "$failed"
}

# run_target TARGET: one run of TARGET's base + series, or with --base
# (RUN_BASE=1) of its base alone, as run_parse_args set it up.
run_target() {
	local target=$1 kind=series label accel testsrc pass mods t0 i rc=0 grc opt=""
	target_use "$target"
	[[ $RUN_BASE == 0 ]] || { kind=base; opt=" --base"; }
	label=${RUN_LABEL_ARG:-$(run_label "$target")}
	if [[ $RUN_MODE == bench ]]; then
		# -icount makes the guest clock count instructions; QEMU only
		# offers it on single-threaded TCG, so one vCPU and no KVM.
		# LAB_BENCH_BOOTS boots (bench1..benchN), to tell what differs
		# between kernels from what differs between boots of one.
		PASSES=()
		for ((i = 1; i <= ${LAB_BENCH_BOOTS:-3}; i++)); do PASSES+=("bench$i"); done
		GUEST_SCRIPT=$LAB_DIR/guest/bench.sh
		QEMU_EXTRA="-icount shift=0,sleep=off"
		GUEST_CPUS=1
	fi
	LOCK_OWNER="lab/lab run --series $target$opt --label $label"
	t0=$(date +%s)
	# From here to the end of the run this run owns its worktree, its
	# staged modules and its test binaries: a second run on the same
	# worktree waits (lab_lock) instead of reconfiguring, rebuilding or
	# restaging under this one. Taken before anything else is done.
	KDIR=$(run_kdir "$target" "$kind")
	lab_lock "wt-${KDIR##*/}" "worktree ${KDIR#"$CACHE"/}"
	deps_ensure
	require_free_disk "$CACHE" 20
	require_free_ram 6
	mkdir -p "$RESULTS"
	RUN_LABEL=$label
	RUN_DIR=$(mktemp -d "$RESULTS/.run-$label.XXXXXX")
	RUN_LOG_DIR=$RUN_DIR
	trap run_cleanup EXIT
	echo "$label" >"$RUN_DIR/label"
	echo "$target" >"$RUN_DIR/target"
	if [[ $kind == base ]]; then echo base; else echo base+series; fi >"$RUN_DIR/kind"

	stage base base_prepare
	STAGE_DIR=$CACHE/stage/${KDIR##*/}
	BIN_DIR=$CACHE/bin/${KDIR##*/}
	echo "$BASE_DESC ($BASE_COMMIT)" >"$RUN_DIR/base"
	if [[ $kind == series ]]; then
		stage apply apply_series_into "$KDIR"
		echo "$(series_patches | wc -l) patches of series/$target, sha256 $(series_hash), head $(git -C "$KDIR" rev-parse --short HEAD)" >"$RUN_DIR/series"
	else
		stage apply worktree "$KDIR" "$BASE_COMMIT"
		echo "none (base of $target)" >"$RUN_DIR/series"
	fi
	stage configure configure
	cp "$KDIR/.config" "$RUN_DIR/config"
	stage build build_kernel "$RUN_DIR/build.log"
	echo "$KVER" >"$RUN_DIR/kernelrelease"
	stage stage-modules stage_modules "$STAGE_DIR"
	if [[ $kind == series ]]; then
		testsrc=$KDIR
	else
		# The target's tests, from its scratch worktree with its series
		# applied (held until they are built).
		am_series >/dev/null
		testsrc=$(am_dir)
	fi
	stage tests-build build_guest_tests "$BIN_DIR" "$testsrc"
	lab_unlock "am-$target"
	if [[ $RUN_MODE == bench ]]; then
		accel=tcg
	else
		accel=$(kvm_probe "$KDIR/arch/x86/boot/bzImage")
	fi
	echo "$accel" >"$RUN_DIR/accel"
	[[ $accel == tcg ]] && log "KVM does not boot a guest here; using TCG (slower)"
	for pass in "${PASSES[@]}"; do
		mods=$pass
		[[ $pass == bench* ]] && mods=prod
		grc=0
		stage "guest-$pass" boot_suite "$pass" "$RUN_DIR" "$STAGE_DIR/$mods/lib/modules" \
			"$BIN_DIR" "$accel" || grc=$?
		[[ $grc == 0 ]] ||
			die "the $pass-modules guest did not complete: $GUEST_FAILURE" \
				"$(guest_failure_fix "$grc" "$RESULTS/$label.incomplete/$pass-console.log")"
	done
	[[ $RUN_MODE == bench ]] || run_external_suites
	STAGE_TIMES+=("total $(( $(date +%s) - t0 ))")
	printf '%s\n' "${STAGE_TIMES[@]/%/s}" >"$RUN_DIR/stages"
	report "$RUN_DIR" || rc=$?
	[[ $RUN_MODE == bench ]] || external_summary "$RUN_DIR" | tee -a "$RUN_DIR/summary.txt"
	finish_run "$label"
	log "results: $RESULTS/$label/ (summary.txt, results.tsv, per-pass TAP and console logs)"
	return "$rc"
}

apply_series_into() {
	local kdir=$1
	apply_series "$kdir" >/dev/null
}

# finish_run LABEL: atomically replace results/LABEL with this run.
finish_run() {
	local label=$1 old
	old=$RESULTS/.old-$label.$$
	[[ -e $RESULTS/$label ]] && mv "$RESULTS/$label" "$old"
	mv "$RUN_DIR" "$RESULTS/$label"
	RUN_DONE=1
	rm -rf "$old" "$RESULTS/$label.incomplete"
	ln -sfn -- "$label" "$RESULTS/latest"
}

check_external_suites() {
	if [[ -n ${NDCTL_SRC:-} ]]; then
		ndctl_check_src
	fi
	if [[ -n ${XFSTESTS_SRC:-} ]]; then
		xfstests_check_src
	elif [[ $XFSTESTS_FULL == 1 ]]; then
		warn "--full is for xfstests, and XFSTESTS_SRC is not set: it changes nothing"
	fi
}

run_external_suites() {
	if [[ -z ${NDCTL_SRC:-} ]]; then
		log "ndctl suite: not run (set NDCTL_SRC to an ndctl >= v83 checkout)"
	else
		ndctl_suite || warn "ndctl suite: did not complete; what it left is in the run's ndctl/ (and ndctl-real/) directory"
	fi
	if [[ -z ${XFSTESTS_SRC:-} ]]; then
		log "xfstests: not run (set XFSTESTS_SRC to an xfstests checkout)"
	else
		xfstests_suite || warn "xfstests: did not complete; what it left is in the run's xfstests/ directory"
	fi
}
