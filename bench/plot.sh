#!/usr/bin/env bash
# plot.sh - PNG plots of bench/ result files (the CSV files that the bench
# programs write with --out), with gnuplot. Nothing else in the project needs
# it; the tests never call it.
#
# usage: bash bench/plot.sh [-o OUTDIR] [--size WxH] DIR|FILE.csv ...
#
# DIRs are searched for *.csv (recursively, skipping plots/ folders). Writes,
# into OUTDIR (default: <first DIR>/plots, or plots/ next to the first file):
#
#   throughput.png        tokens/s against the sequence length T, log-log, one
#                         line per op, series and pass, from the scaling sweeps
#                         (`--sweep` rows: what = "sweep"). Without sweep rows,
#                         the fixed training shapes are drawn instead (those
#                         of one op, call and shape at one B*T and two or more
#                         values of T), and the title says so.
#   roofline-<op>.png     each op's calls, stages (kernels) and decode steps as
#                         a percentage of the ceiling that bounds them, from the
#                         other rows: the larger of fma_peak_frac (the FMA peak
#                         the program measured) and copy_frac (its measured copy
#                         bandwidth), i.e. the achieved fraction of the roofline
#                         min(peak, intensity x bandwidth); colour says which.
#
# With files of several devices the names get the device (slug) as a suffix.
# Needs gnuplot 5 with the pngcairo terminal (else png); Debian: gnuplot-nox.
set -euo pipefail

die() {
    echo "plot.sh: $*" >&2
    exit 1
}

outdir=
size=800x500
inputs=()
while (($#)); do
    case $1 in
    -o | --out)
        (($# >= 2)) || die "$1 needs a folder"
        outdir=$2
        shift 2
        ;;
    --size)
        (($# >= 2)) || die "$1 needs WxH"
        size=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        inputs+=("$1")
        shift
        ;;
    esac
done
((${#inputs[@]})) || die "usage: bash bench/plot.sh [-o OUTDIR] [--size WxH] DIR|FILE.csv ..."
[[ $size =~ ^([0-9]+)x([0-9]+)$ ]] || die "--size wants WxH, e.g. 800x500"
width=${BASH_REMATCH[1]}
height=${BASH_REMATCH[2]}

command -v gnuplot >/dev/null 2>&1 ||
    die "gnuplot not found: install gnuplot 5 (Debian/Ubuntu: apt-get install gnuplot-nox) and run again"

csvs=()
for in in "${inputs[@]}"; do
    if [[ -d $in ]]; then
        while IFS= read -r f; do csvs+=("$f"); done < <(find "$in" -name plots -prune -o -name '*.csv' -type f -print | sort)
    elif [[ -f $in ]]; then
        csvs+=("$in")
    else
        die "no such file or folder: $in"
    fi
done
((${#csvs[@]})) || die "no .csv files under ${inputs[*]}"
if [[ -z $outdir ]]; then
    if [[ -d ${inputs[0]} ]]; then outdir=${inputs[0]%/}/plots; else outdir=$(dirname "${inputs[0]}")/plots; fi
fi
mkdir -p "$outdir"

if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
    term="pngcairo size $width,$height font 'sans,9' noenhanced"
else
    term="png size $width,$height font 'sans,9' noenhanced"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One pass over the CSV files. Writes
#   $tmp/meta    device<TAB>platform<TAB>driver<TAB>git<TAB>date<TAB>op<TAB>use (sweep|rows):
#                one line per file and use, for the plot titles
#   $tmp/sweep   device<TAB>op<TAB>curve<TAB>T<TAB>tokens_per_s<TAB>B*T<TAB>kind (sweep|fixed)
#   $tmp/bars    device<TAB>op<TAB>label<TAB>percent<TAB>bound (fma|copy)
awk -v tmp="$tmp" '
# Split a CSV line into f[1..n], honouring double quotes (values such as
# "[256, 256] G=256" hold commas); returns n. Plain POSIX awk (mawk, gawk).
function csvsplit(line, f,   n, i, c, q, cur) {
    n = 0; q = 0; cur = ""
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (c == "\"") q = !q
        else if (c == "," && !q) { f[++n] = cur; cur = "" }
        else cur = cur c
    }
    f[++n] = cur
    return n
}
function slug(s,   t) { t = tolower(s); gsub(/[^a-z0-9]+/, "-", t); gsub(/^-|-$/, "", t); return t }
function kv(line, key,   r) {
    if (match(line, key "=\"[^\"]*\"")) { r = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 3); return r }
    if (match(line, key "=[^ ]*")) return substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1)
    return ""
}
function metric(name) {
    return name ~ /^(wall_|device_)/ || name ~ /(^|_)(ms|us)$/ || name ~ /tokens_per_s$/ ||
           name ~ /gflops$/ || name ~ /gbs$/ || name ~ /_frac$/
}
FNR == 1 { dev = ""; op = ""; ncol = 0 }
/^#/ && !/ op=/ { next } # other comment lines
/^#/ {
    dev = kv($0, "device"); op = kv($0, "op")
    meta = dev "\t" kv($0, "platform") "\t" kv($0, "driver") "\t" kv($0, "git") "\t" kv($0, "date") "\t" op
    msweep = 0; mrows = 0
    next
}
/^what,/ { ncol = split($0, col, ","); delete ix; for (i = 1; i <= ncol; i++) ix[col[i]] = i; next }
ncol == 0 || NF == 0 { next }
{
    n = csvsplit($0, f)
    what = f[1]
    if (what == "sweep" && !msweep++) print meta "\tsweep" > (tmp "/meta")
    if (what != "sweep" && !mrows++) print meta "\trows" > (tmp "/meta")
    if (what == "sweep") {
        if ("tokens_per_s" in ix) {
            curve = f[ix["series"]] " " f[ix["pass"]]
            printf "%s\t%s\t%s\t%s\t%s\t%d\tsweep\n", dev, op, curve, f[ix["T"]], f[ix["tokens_per_s"]], f[ix["B"]] * f[ix["T"]] > (tmp "/sweep")
        } else if ("fwd_tokens_per_s" in ix) { # the first gated_delta sweep format
            printf "%s\t%s\t%s %s\t%s\t%s\t%d\tsweep\n", dev, op, op, "fwd", f[ix["T"]], f[ix["fwd_tokens_per_s"]], f[ix["B"]] * f[ix["T"]] > (tmp "/sweep")
            printf "%s\t%s\t%s %s\t%s\t%s\t%d\tsweep\n", dev, op, op, "fwd+bwd", f[ix["T"]], f[ix["fwd_bwd_tokens_per_s"]], f[ix["B"]] * f[ix["T"]] > (tmp "/sweep")
        }
        next
    }
    if (("T" in ix) && ("tokens_per_s" in ix) && !("stage" in ix) && what ~ /^(fwd|fwd\+bwd|recurrent_fwd)$/) {
        # A fixed training shape: kept for the throughput plot when no sweep
        # is there (see END). cfg: its shape without B and T.
        cfg = ""
        for (i = 2; i <= ncol; i++)
            if (!metric(col[i]) && col[i] != "B" && col[i] != "T") cfg = cfg " " col[i] "=" f[i]
        nfx++; fx_dev[nfx] = dev; fx_op[nfx] = op; fx_what[nfx] = what; fx_cfg[nfx] = cfg
        fx_T[nfx] = f[ix["T"]]; fx_tps[nfx] = f[ix["tokens_per_s"]]; fx_bt[nfx] = f[ix["B"]] * f[ix["T"]]
    }
    # Roofline share: the larger of the two fractions present.
    v = -1; bound = ""
    if ("fma_peak_frac" in ix && f[ix["fma_peak_frac"]] + 0 > v) { v = f[ix["fma_peak_frac"]] + 0; bound = "fma" }
    if ("copy_frac" in ix && f[ix["copy_frac"]] + 0 > v) { v = f[ix["copy_frac"]] + 0; bound = "copy" }
    if (v <= 0) next # no model for this row (e.g. element-wise stages of a compute-bound op)
    # The label: what, the shape columns as key=value, the stage or shape
    # text, "|"-separated (the per-op pass below drops the keys whose value
    # is the same on every row of the op).
    label = what
    for (i = 2; i <= ncol; i++) {
        if (metric(col[i]) || f[i] == "") continue
        if (col[i] == "stage") { s = f[i]; sub("^" op "_", "", s); label = label "|[" s "]" }
        else if (col[i] == "shape") label = label "|" f[i]
        else label = label "|" col[i] "=" f[i]
    }
    printf "%s\t%s\t%s\t%.2f\t%s\n", dev, op, label, 100 * v, bound > (tmp "/bars")
}
END {
    # Fixed shapes as curves: rows of one device, op, call and shape at the
    # same tokens per batch (B*T) and at least two values of T, labelled with
    # the shape keys that differ between the op curves.
    for (r = 1; r <= nfx; r++) {
        g = fx_dev[r] SUBSEP fx_op[r] SUBSEP fx_what[r] SUBSEP fx_cfg[r] SUBSEP fx_bt[r]
        if (!((g SUBSEP fx_T[r]) in seenT)) { seenT[g SUBSEP fx_T[r]] = 1; nT[g]++ }
    }
    for (r = 1; r <= nfx; r++) {
        g = fx_dev[r] SUBSEP fx_op[r] SUBSEP fx_what[r] SUBSEP fx_cfg[r] SUBSEP fx_bt[r]
        if (nT[g] < 2) continue
        k = split(fx_cfg[r], t, " ")
        for (i = 1; i <= k; i++) {
            split(t[i], pr, "="); o = fx_dev[r] SUBSEP fx_op[r] SUBSEP pr[1]
            if (!((o SUBSEP t[i]) in seenv)) { seenv[o SUBSEP t[i]] = 1; nvals[o]++ }
        }
    }
    for (r = 1; r <= nfx; r++) {
        g = fx_dev[r] SUBSEP fx_op[r] SUBSEP fx_what[r] SUBSEP fx_cfg[r] SUBSEP fx_bt[r]
        if (nT[g] < 2) continue
        lab = fx_op[r] " " fx_what[r]
        k = split(fx_cfg[r], t, " ")
        for (i = 1; i <= k; i++) {
            split(t[i], pr, "=")
            if (nvals[fx_dev[r] SUBSEP fx_op[r] SUBSEP pr[1]] > 1) lab = lab " " t[i]
        }
        printf "%s\t%s\t%s\t%s\t%s\t%d\tfixed\n", fx_dev[r], fx_op[r], lab, fx_T[r], fx_tps[r], fx_bt[r] > (tmp "/sweep")
    }
}
' "${csvs[@]}"

[[ -s $tmp/meta ]] || die "no bench result files among: ${csvs[*]}"
mapfile -t devices < <(cut -f1 "$tmp/meta" | sort -u)
slugof() { tr '[:upper:]' '[:lower:]' <<<"$1" | sed 's/[^a-z0-9][^a-z0-9]*/-/g; s/^-//; s/-$//'; }
written=()

for dev in "${devices[@]}"; do
    suffix=
    ((${#devices[@]} == 1)) || suffix=-$(slugof "$dev")
    # "platform, driver D, git G, date" over the files of this device (and
    # op, use when given); several values are joined with "/".
    metaof() {
        awk -F'\t' -v d="$dev" -v o="${1:-}" -v u="${2:-}" '
            function add(i, v) { if (!((i SUBSEP v) in seen)) { seen[i SUBSEP v] = 1; val[i] = val[i] (val[i] == "" ? "" : "/") v } }
            $1 == d && (o == "" || $6 == o) && (u == "" || $7 == u) { add(2, $2); add(3, $3); add(4, $4); add(5, substr($5, 1, 10)) }
            END { print val[2] ", driver " val[3] ", git " val[4] ", " val[5] }' "$tmp/meta"
    }

    # (a) throughput against T.
    if [[ -s $tmp/sweep ]]; then
        kind=sweep
        awk -F'\t' -v d="$dev" '$1 == d && $7 == "sweep"' "$tmp/sweep" >"$tmp/sw" || true
        if [[ ! -s $tmp/sw ]]; then
            kind=fixed
            awk -F'\t' -v d="$dev" '$1 == d && $7 == "fixed"' "$tmp/sweep" >"$tmp/sw" || true
        fi
        if [[ -s $tmp/sw ]]; then
            mapfile -t curves < <(cut -f3 "$tmp/sw" | awk '!seen[$0]++')
            mapfile -t series < <(cut -f3 "$tmp/sw" | awk '{ print $1 }' | awk '!seen[$0]++')
            tokens=$(cut -f6 "$tmp/sw" | sort -u | paste -sd/ -)
            plot=
            for i in "${!curves[@]}"; do
                c=${curves[$i]}
                awk -F'\t' -v c="$c" '$3 == c { print $4, $5 }' "$tmp/sw" | sort -n >"$tmp/c$i.dat"
                s=${c%% *}
                p=${c#* }
                p=${p%% *}
                for j in "${!series[@]}"; do [[ ${series[$j]} == "$s" ]] && break; done
                case $p in fwd) dt=1 ;; fwd+bwd) dt=2 ;; *) dt=3 ;; esac
                plot+="${plot:+, }'$tmp/c$i.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 dt $dt lc $((j + 1)) title '$c'"
            done
            use=rows
            [[ $kind == sweep ]] && use=sweep
            if [[ $kind == sweep ]]; then
                title="tokens/s vs sequence length at B*T = $tokens tokens per batch (scaling sweep)"
            else
                title="tokens/s vs T: the fixed shapes at B*T = $tokens (no sweep files here)"
            fi
            png=$outdir/throughput$suffix.png
            gnuplot <<EOF
set terminal $term
set output '$png'
set tmargin 3.5
set label 1 "$title" at screen 0.5, screen 1 - 14.0/$height center font ',10'
set label 2 "$dev ($(metaof "" "$use"))" at screen 0.5, screen 1 - 30.0/$height center
set logscale x 2
set logscale y 10
set autoscale yfix
set format x '%.0f'
set format y '%.0s%c'
set xlabel 'sequence length T (tokens)'
set ylabel 'tokens/s (wall clock, median)'
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key outside right top vertical Left reverse
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot $plot
EOF
            written+=("$png")
        fi
    fi

    # (b) share of the roofline, one chart per op.
    [[ -s $tmp/bars ]] || continue
    mapfile -t ops < <(awk -F'\t' -v d="$dev" '$1 == d { print $2 }' "$tmp/bars" | awk '!seen[$0]++')
    for op in "${ops[@]}"; do
        # Labels without the key=value parts shared by every row of this op.
        awk -F'\t' -v d="$dev" -v o="$op" '
            BEGIN { OFS = "\t" }
            $1 != d || $2 != o { next }
            FNR == NR {
                rows++; k = split($3, t, "|")
                for (i = 2; i <= k; i++) if (t[i] ~ /^[A-Za-z_]+=[^ ]*$/) {
                    split(t[i], kv, "="); cnt[kv[1]]++
                    if (!((t[i]) in seen)) { seen[t[i]] = 1; nv[kv[1]]++ }
                }
                next
            }
            {
                k = split($3, t, "|"); lab = t[1]
                for (i = 2; i <= k; i++) {
                    if (t[i] ~ /^[A-Za-z_]+=[^ ]*$/) { split(t[i], kv, "="); if (nv[kv[1]] == 1 && cnt[kv[1]] == rows) continue }
                    lab = lab " " t[i]
                }
                print n++, $4, lab, ($5 == "fma" ? "0x4477aa" : "0xcc6677")
            }' "$tmp/bars" "$tmp/bars" >"$tmp/bars.dat"
        common=$(awk -F'\t' -v d="$dev" -v o="$op" '$1 == d && $2 == o' "$tmp/bars" | cut -f3 | tr '|' '\n' |
            grep -E '^[A-Za-z_]+=[^ ]*$' | sort | uniq -c | awk -v n="$(awk -F'\t' -v d="$dev" -v o="$op" '$1 == d && $2 == o' "$tmp/bars" | wc -l)" '$1 == n { printf "%s%s", sep, $2; sep = " " }')
        n=$(wc -l <"$tmp/bars.dat")
        max=$(awk -F'\t' 'BEGIN { m = 100 } $2 > m { m = $2 } END { printf "%.0f", m * 1.15 + 5 }' "$tmp/bars.dat")
        h=$((130 + 15 * n))
        ((h >= 300)) || h=300
        png=$outdir/roofline-$op$suffix.png
        gnuplot <<EOF
set terminal ${term/size $width,$height/size $width,$h}
set output '$png'
set datafile separator "\t"
set tmargin 4.5
set label 1 "$op${common:+ ($common)}: percent of the bounding ceiling (roofline)" at screen 0.5, screen 1 - 14.0/$h center font ',10'
set label 2 "blue: of the measured FMA peak (compute-bound); red: of the measured copy bandwidth (memory-bound)" at screen 0.5, screen 1 - 30.0/$h center
set label 3 "$dev ($(metaof "$op" rows))" at screen 0.5, screen 1 - 44.0/$h center
set yrange [$n-0.3:-0.7]
set xrange [0:$max]
set xlabel 'percent of the bounding ceiling'
set ytics scale 0 font ',7'
set xtics nomirror
set grid xtics lc rgb '#dddddd'
set arrow from 100, graph 0 to 100, graph 1 nohead dt 2 lc rgb '#888888'
set style fill solid 0.85 noborder
plot '$tmp/bars.dat' using (\$2/2):1:(\$2/2):(0.38):4:ytic(3) with boxxyerror lc rgb variable notitle, \
     '' using (\$2 + 1):1:(sprintf('%.1f%%', \$2)) with labels left font ',7' notitle
EOF
        written+=("$png")
    done
done

((${#written[@]})) || die "nothing to plot in ${csvs[*]}"
printf 'wrote %s\n' "${written[@]}"
