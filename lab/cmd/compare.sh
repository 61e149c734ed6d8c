# shellcheck shell=bash
# lab/lab compare [--series T]... [run options]: the suite on the base and
# on base + series of every target (or of each T), labels compare-T-base
# and compare-T, and one table of every check and kselftest case,
# results/compare.txt; lab/lab compare-table prints it again. Sourced by
# lab/lab.

COMPARE_TARGETS=()

# compare_parse_targets ARG...: the --series options of compare and
# compare-table (COMPARE_TARGETS; default every target); the other
# arguments go to COMPARE_ARGS.
compare_parse_targets() {
	COMPARE_TARGETS=()
	COMPARE_ARGS=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; COMPARE_TARGETS+=("$2"); shift 2 ;;
		*) COMPARE_ARGS+=("$1"); shift ;;
		esac
	done
	if [[ ${#COMPARE_TARGETS[@]} -eq 0 ]]; then
		targets_all COMPARE_TARGETS
	fi
}

cmd_compare() {
	local t a
	compare_parse_targets "$@"
	for a in "${COMPARE_ARGS[@]}"; do
		case $a in --base | --label | --mode | --base-tree | --base-rev)
			die "compare sets $a itself (it runs the pinned base and base + series of each target)" \
				"drop $a; compare runs each target T as compare-T-base and compare-T" ;;
		esac
	done
	# Every option is checked once here, before the first build.
	(PASSES=(test prod); run_parse_args "${COMPARE_ARGS[@]}"
		[[ ${#PASSES[@]} -gt 0 ]] ||
			die "compare compares the module passes, and --passes none runs none" \
				"name a pass (--passes prod), or use 'lab/lab run --passes none' for the external suites alone") || exit 1
	for t in "${COMPARE_TARGETS[@]}"; do
		log "compare: $t base"
		subshell_rc cmd_run --series "$t" --base --label "compare-$t-base" "${COMPARE_ARGS[@]}"
		log "compare: $t base + series"
		subshell_rc cmd_run --series "$t" --label "compare-$t" "${COMPARE_ARGS[@]}"
	done
	compare_table
}

# compare_table: the table of COMPARE_TARGETS' compare runs: a row per
# check and kselftest case ("check (pass)", "program:case (pass)"), a
# column per kernel, headed by the pinned kernel version (VERSION for the
# base, VERSION+series).
compare_table() {
	local t v l i run
	local -a labels=() heads=()
	for t in "${COMPARE_TARGETS[@]}"; do
		v=$(target_kernelversion "$t")
		labels+=("compare-$t-base" "compare-$t")
		heads+=("$v" "$v+series")
	done
	for i in "${!labels[@]}"; do
		l=${labels[i]}
		run="--series ${COMPARE_TARGETS[i / 2]}"
		[[ $((i % 2)) == 1 ]] || run+=" --base"
		[[ -f $RESULTS/$l/results.tsv ]] ||
			die "results/$l/ is missing" "run 'lab/lab compare' (or 'lab/lab run $run --label $l')"
	done
	{
		printf '%-66s' "check (pass)"
		printf ' %-16s' "${heads[@]}"
		echo
		{
			for i in "${!labels[@]}"; do
				awk -v c="$i" '{print c "\t" $0}' "$RESULTS/${labels[i]}/results.tsv"
			done
			for i in "${!labels[@]}"; do
				[[ ! -f $RESULTS/${labels[i]}/subtests.tsv ]] ||
					awk -v c="$i" '{print c "\t" $0}' "$RESULTS/${labels[i]}/subtests.tsv"
			done
		} | awk -F'\t' -v nc="${#labels[@]}" '
			{ key = $2 " (" $3 ")"
			  if (!(key in seen)) { seen[key] = 1; order[++n] = key }
			  if (!(($1, key) in st)) st[$1, key] = $4 }
			END {
				for (i = 1; i <= n; i++) {
					k = order[i]
					printf "%-66s", k
					for (c = 0; c < nc; c++) printf " %-16s", ((c, k) in st) ? st[c, k] : "-"
					printf "\n"
				}
			}'
		for i in "${!labels[@]}"; do
			printf '%s: %s, %s\n' "${heads[i]}" "$(<"$RESULTS/${labels[i]}/kernelrelease")" \
				"$(grep -c . "$RESULTS/${labels[i]}/splats.txt" || true) splat lines"
		done
	} | tee "$RESULTS/compare.txt"
}
