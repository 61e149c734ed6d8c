# shellcheck shell=bash
# lab/lab bench [--kernels "K..."] [--series T]: the fault / fork / GUP /
# memmap benchmark (QEMU -icount) on kernels named T (a target's base +
# series) or T-base (its base), labels bench-K; one table with the ratio
# series/base per target, results/bench.txt; lab/lab bench-table prints it
# again. Sourced by lab/lab.

BENCH_KERNELS=()

# bench_parse ARG...: --kernels "K..." or --series T (its two kernels);
# default: both kernels of every target. Checks every name.
bench_parse() {
	local k t
	local -a targets=()
	BENCH_KERNELS=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--kernels) need_value "$1" $# "${2:-}"; read -r -a BENCH_KERNELS <<<"$2"
			[[ ${#BENCH_KERNELS[@]} -gt 0 ]] || die "--kernels names no kernel" "use e.g. --kernels \"6.12.y-base 6.12.y\""
			shift 2 ;;
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; BENCH_KERNELS+=("$2-base" "$2"); shift 2 ;;
		*) die "unknown option $1 for ${BENCH_CMD:-bench}" "see 'lab/lab help'" ;;
		esac
	done
	if [[ ${#BENCH_KERNELS[@]} -eq 0 ]]; then
		targets_all targets
		for t in "${targets[@]}"; do BENCH_KERNELS+=("$t-base" "$t"); done
	fi
	for k in "${BENCH_KERNELS[@]}"; do
		t=${k%-base}
		[[ -n $t && $t != */* && $t != .* && -f $TOP/series/$t/base.pin ]] ||
			die "unknown kernel '$k' (a kernel is T or T-base for a target T: $(series_targets | xargs))" \
				"use --kernels with names like \"$(series_targets | sed 's/.*/&-base &/' | xargs)\""
	done
	[[ $(printf '%s\n' "${BENCH_KERNELS[@]}" | sort | uniq -d) == "" ]] ||
		die "--kernels names a kernel twice" "name each kernel once"
}

cmd_bench() {
	local k failed=0
	local -a base
	bench_parse "$@"
	(run_parse_args --series "${BENCH_KERNELS[0]%-base}" --mode bench) || exit 1
	for k in "${BENCH_KERNELS[@]}"; do
		log "bench: $k"
		base=()
		[[ $k == "${k%-base}" ]] || base=(--base)
		subshell_rc cmd_run --series "${k%-base}" "${base[@]}" --label "bench-$k" --mode bench
		if [[ $SUBSHELL_RC != 0 ]]; then
			warn "bench on $k failed: see $RESULTS/bench-$k*/"
			failed=1
		fi
	done
	bench_table | tee "$RESULTS/bench.txt"
	return "$failed"
}

# bench_jsons K: the bench.json of every boot of kernel K's bench run
# (pass directories bench1..benchN; "bench" in runs made before
# LAB_BENCH_BOOTS), one path per line, in boot order.
bench_jsons() {
	local f
	for f in "$RESULTS/bench-$1"/bench*/bench.json; do
		[[ -f $f ]] && printf '%s\n' "$f"
	done | sort -V
}

# bench_table: one line per figure and, per kernel of BENCH_KERNELS, the
# minimum over every sample of every boot, the median of the boots' medians
# and the spread between boots (largest minus smallest boot median, in % of
# that median); per target with both kernels, the ratio of the medians
# series/base (lower is better for every figure: they are all times),
# marked "~" when the two kernels' figures move between boots and the
# difference is not larger than the larger spread: such a ratio is not a
# result.
bench_table() {
	local k ratios=""
	local -a have=() files
	for k in "${BENCH_KERNELS[@]}"; do
		if [[ -n $(bench_jsons "$k") ]]; then
			have+=("$k")
		else
			warn "no figures for $k ($RESULTS/bench-$k/bench*/bench.json missing)"
		fi
	done
	[[ ${#have[@]} -gt 0 ]] || die "no bench results" "run 'lab/lab bench'"
	for k in "${have[@]}"; do
		[[ $k == *-base ]] && continue
		[[ " ${have[*]} " == *" $k-base "* ]] && ratios+="$k "
	done
	{
		for k in "${have[@]}"; do
			mapfile -t files < <(bench_jsons "$k")
			jq -rs --arg v "$k" '
				def med: sort | length as $n
					| if $n % 2 == 1 then .[($n - 1) / 2] else (.[$n / 2 - 1] + .[$n / 2]) / 2 end;
				[.[].figures[]] | group_by(.name)[]
				| (map(.median) | med) as $m
				| [$v, .[0].name, .[0].unit, (map(.min) | min), $m,
				   (if $m > 0 then (map(.median) | (max - min)) / $m * 100 else 0 end), length]
				| @tsv' "${files[@]}"
		done
	} | awk -F'\t' -v cols="${have[*]}" -v ratios="$ratios" '
		BEGIN { nc = split(cols, col, " "); nr = split(ratios, rat, " "); marked = 0 }
		{ if (!($2 in unit)) { order[++n] = $2; unit[$2] = $3 }
		  mn[$1, $2] = $4; md[$1, $2] = $5; sp[$1, $2] = $6; nb[$1] = $7 }
		function ratio(a, b, k,   q, s) {
			if (!((a, k) in md) || !((b, k) in md) || md[b, k] == 0) return "-"
			q = md[a, k] / md[b, k]
			s = sp[a, k] > sp[b, k] ? sp[a, k] : sp[b, k]
			if (nb[a] > 1 && nb[b] > 1 && s > 0 && (q - 1 < 0 ? 1 - q : q - 1) * 100 <= s) {
				marked = 1
				return sprintf("~%.2f", q)
			}
			return sprintf("%.2f", q)
		}
		END {
			printf "%-16s %-9s", "figure", "unit"
			for (c = 1; c <= nc; c++) printf " %32s", col[c] " min/median/spread"
			for (r = 1; r <= nr; r++) printf " %16s", rat[r] " ser/base"
			printf "\n"
			for (i = 1; i <= n; i++) {
				k = order[i]
				printf "%-16s %-9s", k, unit[k]
				for (c = 1; c <= nc; c++)
					if ((col[c], k) in md) printf " %32s", sprintf("%.1f / %.1f / %.1f%%", mn[col[c], k], md[col[c], k], sp[col[c], k])
					else printf " %32s", "-"
				for (r = 1; r <= nr; r++) printf " %16s", ratio(rat[r], rat[r] "-base", k)
				printf "\n"
			}
			if (marked)
				print "~: the medians differ by no more than the larger spread between boots: not a result"
		}'
	for k in "${have[@]}"; do
		mapfile -t files < <(bench_jsons "$k")
		printf '%s (%s%s): %s, %s, %d boot(s)\n' "$k" "$(target_kernelversion "${k%-base}")" \
			"$([[ $k == *-base ]] || echo +series)" "$(<"$RESULTS/bench-$k/kernelrelease")" \
			"$(jq -r '"\(.size_mib) MiB file, \(.buffer_mib) MiB buffers, \(.reps) repetitions per boot"' \
				"${files[0]}")" "${#files[@]}"
		jq -r --arg k "$k" 'select(.pmd_mapping.reflinked) | .pmd_mapping.reflinked
			| "  \($k), read_reflinked: \(.pmd_served) PMD faults served, \(.fell_back) fell back to PTEs (boot 1)"' \
			"${files[0]}"
	done
	echo "times from the guest clock under QEMU TCG -icount shift=0 (1 ns per instruction): lower is better"
	echo "min: of every sample of every boot; median: of the boots' medians; spread: largest minus smallest boot median, % of the median"
}
