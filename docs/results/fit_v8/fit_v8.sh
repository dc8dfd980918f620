set -e
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for spec in "glint24_k20 runs/ft_k20_cal/photos ../shared/data/glint24 20" "heldout_k10 runs/ft_heldout_k10/photos runs/heldout_group24 10"; do
  set -- $spec
  O=runs/fit8_$1
  [ -f $O/fit.json ] || .venv/bin/iznet fit $2 --out $O > $O.log 2>&1 || { echo "fit $1 failed"; exit 1; }
  B=$(.venv/bin/python -c "import json,math;d=json.load(open('$O/fit.json'));t=d['threshold'];print(d['embedder']+':'+('shipped' if t is None or (isinstance(t,float) and math.isnan(t)) else str(t)))")
  .venv/bin/python benchmarks/bench_group.py --data $3 --enroll $4 --max-probes 40 --modes detect --latency-threads "" --cli-runs 0 --embedder base=src/iznet/assets/embedder.pt:shipped --embedder fit=$B --out $O/bench.json --md $O/bench.md >> $O.log 2>&1
done
