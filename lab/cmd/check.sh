# shellcheck shell=bash
# lab/lab check [--series T]: the project's tests: shellcheck, the lab's
# bats tests, then for every target (or T): git am, checkpatch --strict per
# patch, git am of each Cc: stable patch alone onto the base, a run of its
# base and one of base + series, and its reproducers;
# the guest paths probe on the first target's series kernel. Sourced by
# lab/lab.

CHECK_PASS=0
CHECK_FAIL=0
CHECK_SKIP=0
check_result() {
	if [[ $1 == ok ]]; then
		CHECK_PASS=$((CHECK_PASS + 1))
		ok "check: $2"
	else
		CHECK_FAIL=$((CHECK_FAIL + 1))
		warn "check FAILED: $2"
	fi
}

cmd_check() {
	local t first=1
	local -a shs=() targets=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; targets+=("$2"); shift 2 ;;
		*) die "unknown option $1 for check" "check takes only --series T; 'lab/lab run' takes the others" ;;
		esac
	done
	if [[ ${#targets[@]} -eq 0 ]]; then
		targets_all targets
	fi
	lab_paths_check
	lab_env_check
	LOCK_OWNER="lab/lab check"
	deps_ensure
	# lab/lib/*.sh and lab/cmd/*.sh are checked through lab/lab, which
	# sources them (-x): alone, shellcheck cannot see that their variables
	# are used there.
	mapfile -t shs < <(cd "$TOP" && { echo lab/lab; echo .ci/run; ls lab/guest/*.sh lab/test/*.bats lab/test/*.bash; })
	if (cd "$TOP" && shellcheck -x "${shs[@]}"); then
		check_result ok "shellcheck (${#shs[@]} scripts and what lab/lab sources: lab/lib/*.sh, lab/cmd/*.sh)"
	else
		check_result fail "shellcheck"
	fi
	check_bats
	for t in "${targets[@]}"; do
		check_target "$t" "$first"
		first=0
	done
	echo
	if ((CHECK_SKIP > 0)); then
		echo "$CHECK_PASS passed, $CHECK_FAIL failed, $CHECK_SKIP skipped"
	else
		echo "$CHECK_PASS passed, $CHECK_FAIL failed"
	fi
	[[ $CHECK_FAIL -eq 0 ]]
}

# check_target TARGET PROBE: the checks of one target: git am and
# checkpatch --strict of each patch, git am of each Cc: stable patch
# alone onto the base; a run of its base (label
# check-TARGET-base), which must complete but whose own results do not
# count (a base has the bugs its series fixes); a run of base + series
# (check-TARGET), whose checks count one each, plus "kernel log free of
# splats"; then series/TARGET/reproducers, if any (check_reproducers).
# With PROBE=1 also the guest paths probe on its series kernel. Holds the
# target's two worktrees from its first run to its last check.
check_target() {
	local t=$1 probe=$2 p cp out rc kb ks f fail0 ver cpnote
	local -a ps cpx
	target_use "$t"
	kb=$(run_kdir "$t" base)
	ks=$(run_kdir "$t" series)
	lab_lock "wt-${ks##*/}" "worktree ${ks#"$CACHE"/}"
	lab_lock "wt-${kb##*/}" "worktree ${kb#"$CACHE"/}"
	base_prepare
	ver=$(read_pin BASE_KERNELVERSION)
	mapfile -t ps < <(series_patches)
	if [[ ${#ps[@]} -gt 0 ]]; then
		# wt/am-TARGET is this check's until checkpatch (from it) and the
		# stable patches' git am have run.
		lab_lock "am-$t" "the scratch worktree wt/am-$t"
		if (am_series >/dev/null); then
			check_result ok "$t: git am of ${#ps[@]} patches onto $BASE_DESC"
		else
			check_result fail "$t: git am of series/$t"
		fi
		out=$(series_identity_problems "$TOP/series/$t")
		if [[ -z $out ]]; then
			check_result ok "$t: every patch and the cover letter are from $PROJECT_ID, every patch signed off by it"
		else
			printf '%s\n' "$out" >&2
			check_result fail "$t: patches not from $PROJECT_ID (listed above)"
		fi
		cp=$(am_dir)/scripts/checkpatch.pl
		# checkpatch looks up the commits that Fixes: tags name in the
		# tree's history. An imported base (a Debian tarball) has none, so
		# there it cannot: the ids are checked by hand (the cover letter
		# says against what), and only that one test is left out. The
		# format of each tag is still checked.
		cpx=()
		cpnote=""
		if [[ $(git -C "$BASE_REPO" rev-list --count "$BASE_COMMIT") == 1 ]]; then
			cpx=(--ignore UNKNOWN_COMMIT_ID)
			cpnote=" (Fixes: ids not looked up: the base has no history)"
		fi
		for p in "${ps[@]}"; do
			# Debian's python3 first: spdxcheck.py needs python3-ply and python3-git.
			out=$(PATH=/usr/bin:/bin:$PATH "$cp" --strict --terse --show-types "${cpx[@]}" "$p" 2>&1) && rc=0 || rc=$?
			if [[ $rc -eq 0 ]] && ! grep -qE '(ERROR|WARNING|CHECK):' <<<"$out"; then
				if [[ -n $cpnote ]] && grep -q '^Fixes: ' "$p"; then
					check_result ok "$t: checkpatch --strict ${p##*/}$cpnote"
				else
					check_result ok "$t: checkpatch --strict ${p##*/}"
				fi
			else
				printf '%s\n' "$out" | grep -E '(ERROR|WARNING|CHECK):' | head -n 10 >&2
				check_result fail "$t: checkpatch --strict ${p##*/}"
			fi
		done
		# A fix for stable must apply to the base on its own.
		for p in "${ps[@]}"; do
			grep -qiE '^Cc:[[:space:]]*([^<]*<)?stable@vger\.kernel\.org' "$p" || continue
			if am_alone "$p"; then
				check_result ok "$t: ${p##*/} (Cc: stable) applies alone to $BASE_DESC"
			else
				sed -n '1,5p' "$CACHE/am-$t.log" >&2
				check_result fail "$t: ${p##*/} (Cc: stable) applies alone to $BASE_DESC"
			fi
		done
		lab_unlock "am-$t"
	else
		log "series/$t has no patches: its series kernel is its base ($BASE_DESC)"
	fi
	# A result directory left by an earlier check must not pass for this
	# one's: a run that does not complete leaves only LABEL.incomplete.
	rm -rf "$RESULTS/check-$t-base" "$RESULTS/check-$t"
	subshell_rc cmd_run --series "$t" --base --label "check-$t-base"
	if [[ -f $RESULTS/check-$t-base/results.tsv ]]; then
		check_result ok "$t base run completed ($ver: results/check-$t-base/; its own checks are not counted)"
	else
		check_result fail "$t base run completed ($ver: see results/check-$t-base.incomplete/)"
	fi
	fail0=$CHECK_FAIL
	subshell_rc cmd_run --series "$t" --label "check-$t"
	rc=$SUBSHELL_RC
	f=$RESULTS/check-$t/results.tsv
	if [[ -f $f ]]; then
		CHECK_PASS=$((CHECK_PASS + $(awk -F'\t' '$3 == "ok"' "$f" | wc -l)))
		CHECK_FAIL=$((CHECK_FAIL + $(awk -F'\t' '$3 == "fail"' "$f" | wc -l)))
		if [[ -s $RESULTS/check-$t/splats.txt ]]; then
			check_result fail "$t: kernel log free of splats (see results/check-$t/splats.txt)"
		else
			check_result ok "$t: kernel log free of splats"
		fi
		[[ $probe == 0 ]] || guest_paths_probe "$t"
	else
		check_result fail "$t: lab run of base + series (build, boot or suite did not complete)"
	fi
	[[ $rc -eq 0 ]] || [[ $CHECK_FAIL -gt $fail0 ]] || check_result fail "$t: lab run exit status $rc"
	check_reproducers "$t" "$ver"
	lab_unlock "wt-${kb##*/}"
	lab_unlock "wt-${ks##*/}"
}

# check_reproducers TARGET VERSION: one check result per line of
# series/TARGET/reproducers (reproducers_eval) against the check's runs
# check-TARGET-base and check-TARGET.
check_reproducers() {
	local t=$1 ver=$2 st msg
	if [[ ! -f $TOP/series/$t/reproducers ]]; then
		log "series/$t has no reproducers file: no reproducer checks for it"
		return 0
	fi
	while IFS=$'\t' read -r st msg; do
		check_result "$st" "$t: $msg"
	done < <(reproducers_eval "$TOP/series/$t/reproducers" "$RESULTS/check-$t-base" "$RESULTS/check-$t" "$ver")
}

# check_bats: the lab's own tests (lab/test/*.bats: the apt logic, guest
# paths and failures, arguments and locks, targets and reproducers), one
# check result per test.
check_bats() {
	local out line n=0
	out=$(cd "$TOP" && bats --tap lab/test 2>&1) || true
	while IFS= read -r line; do
		case $line in
		"ok "*"# skip"*) n=$((n + 1)); CHECK_SKIP=$((CHECK_SKIP + 1)); warn "bats skipped: ${line#ok }" ;;
		"ok "*) n=$((n + 1)); check_result ok "bats: ${line#ok [0-9]* }" ;;
		"not ok "*) n=$((n + 1)); check_result fail "bats: ${line#not ok [0-9]* }" ;;
		"#"*) printf '%s\n' "$line" >&2 ;;
		esac
	done <<<"$out"
	((n > 0)) || check_result fail "bats ran no test: $(head -n 3 <<<"$out")"
}

# guest_paths_probe TARGET: boot the series kernel of TARGET's check run
# once more, from a copy of lab/ under /tmp, with a binary directory under
# /tmp and the modules under /var/tmp (a new user's first clone, and a
# DAXPAGE_CACHE there; the guest mounts file systems of its own over
# both): lab/guest/paths.sh checks in the guest that it sees them, that the
# modules load from there and that on_dax_tmp runs a program from below
# /tmp. The caller holds the worktree wt/TARGET-series.
guest_paths_probe() {
	local t=$1 tmp vtmp kdir kver rc=0 line why="" res
	local -a notok
	kdir=$(run_kdir "$t" series)
	res=$RESULTS/check-$t
	tmp=$(mktemp -d /tmp/daxpage-paths.XXXXXX)
	vtmp=$(mktemp -d /var/tmp/daxpage-paths.XXXXXX)
	# shellcheck disable=SC2064 # the paths are fixed now
	trap "rm -rf '$tmp' '$vtmp'" RETURN
	kver=$(cat "$res/kernelrelease" 2>/dev/null) || why="the check run left no kernelrelease"
	if [[ -z $why ]]; then
		mkdir -p "$vtmp/modules" "$tmp/bin" "$tmp/out"
		{ cp -r "$LAB_DIR" "$tmp/lab" && cp -a "$CACHE/stage/${kdir##*/}/prod/lib/modules/$kver" "$vtmp/modules/" &&
			cp /bin/true "$tmp/bin/true"; } 2>"$res/paths-probe.log" || why="copying the probe's files failed"
	fi
	if [[ -z $why ]]; then
		(
			LAB_DIR=$tmp/lab KDIR=$kdir GUEST_SCRIPT=$tmp/lab/guest/paths.sh LAB_GUEST_TIMEOUT=900
			boot_suite paths "$tmp/out" "$vtmp/modules" "$tmp/bin" "$(<"$res/accel")"
		) >>"$res/paths-probe.log" 2>&1 || rc=$?
		[[ $rc -eq 0 ]] || why="the probe guest did not complete (rc=$rc)"
	fi
	if [[ -n $why ]]; then
		check_result fail "guest paths under /tmp and /var/tmp: $why ($res/paths-probe.log)"
		return 0
	fi
	cp "$tmp/out/paths/suite.tap" "$res/paths-probe.tap"
	mapfile -t notok < <(grep '^not ok' "$tmp/out/paths/suite.tap" || true)
	if [[ ${#notok[@]} -eq 0 && $(grep -c '^ok' "$tmp/out/paths/suite.tap") -eq 7 ]]; then
		check_result ok "guest paths under /tmp and /var/tmp ($t series kernel): the guest sees a checkout, modules and binaries there (7 probes)"
	else
		for line in "${notok[@]}"; do warn "paths probe: $line"; done
		check_result fail "guest paths under /tmp and /var/tmp (see $res/paths-probe.tap)"
	fi
}
