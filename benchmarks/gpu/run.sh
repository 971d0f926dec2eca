#!/usr/bin/env bash
# Every GPU number of benchmarks/RESULTS.md in stages, on the device machine (see README.md here).
#
#   benchmarks/gpu/run.sh STAGE...     stages: build pack unpack synth bench engine lookup batched
#                                      server server-per-n synth8b bench8b engine8b
#
# Results go to $OUT/results.md (and the logs beside it). Each stage reuses what an earlier one
# left in $GPU_WORK (default /tmp/gpu), so one machine can run them over several commands.
set -uo pipefail
repo=$(pwd)
work=${GPU_WORK:-/tmp/gpu}
out=${OUT:-$work/out}
mkdir -p "$work/models" "$out"
bin=$work/build/bin
gguf=$work/models/minicpm-2b-shapes-q4_k_m.gguf
gguf8b=$work/models/minicpm41-8b-shapes-q4_k_m.gguf
results=$out/results.md
note() { echo "$*" | tee -a "$results"; }
setup_python() {
    if [[ ! -d $work/pydeps ]]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/pydeps" \
            "$repo"/.whl/*.whl
    fi
    export PYTHONPATH=$work/site:$work/pydeps:$repo PYTHONUNBUFFERED=1
    export LD_LIBRARY_PATH=$work/site/llama_cpp/lib
}
# SERVERS llama-servers (default 1) of $1 slots each on ports 8089..., each with a context of
# 1,024 tokens a slot, SERVER_FLAGS (default --cache-ram 0 -bs; set it empty for llama-server's
# defaults) and SERVER_THREADS (default 4); concurrent_chats.py --raw sends the chats of $2
# (comma-separated counts) to them, then slot_steps.py reads each server's log ($3 names them).
# --cache-ram 0: no host prompt cache, whose state copies (265 MiB a slot for MiniCPM-2B) stall
# every slot at each new request; -bs: sampling on the GPU (see benchmarks/RESULTS.md, "GPU:
# concurrent chats through llama-server").
serve_chats() {
    local slots=$1 chats=$2 label=$3 flags=${SERVER_FLAGS---cache-ram 0 -bs} urls="" pids=() i
    note "${SERVERS:-1} x llama-server -fa on -np $slots -c $((slots * 1024)) -t ${SERVER_THREADS:-4} $flags; chats $chats"
    for ((i = 0; i < ${SERVERS:-1}; i++)); do
        "$bin/llama-server" -m "$gguf" -ngl 99 -fa on -np "$slots" -c $((slots * 1024)) \
            --host 127.0.0.1 --port $((8089 + i)) --no-webui -t "${SERVER_THREADS:-4}" $flags \
            >"$work/server-$label-$i.log" 2>&1 &
        pids+=($!)
        urls+="${urls:+,}http://127.0.0.1:$((8089 + i))/v1"
    done
    for ((i = 0; i < ${SERVERS:-1}; i++)); do
        for _ in $(seq 120); do
            curl -sf "http://127.0.0.1:$((8089 + i))/health" >/dev/null 2>&1 && break
            kill -0 "${pids[i]}" 2>/dev/null || { tail -5 "$work/server-$label-$i.log"; break; }
            sleep 1
        done
    done
    python3 "$repo/benchmarks/gpu/concurrent_chats.py" --url "$urls" --chats "$chats" --raw \
        --repeats "${SERVER_REPEATS:-1}" 2>&1 | grep -v "^ " | tee -a "$results"
    kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
    for ((i = 0; i < ${SERVERS:-1}; i++)); do
        python3 "$repo/benchmarks/gpu/slot_steps.py" "$work/server-$label-$i.log" \
            | tee -a "$results"
    done
}
for stage in "$@"; do
    note ""
    note "## stage $stage ($(date -u +%H:%M:%S))"
    case $stage in
        build)
            time "$repo/benchmarks/gpu/build.sh" "$repo/.gpu/llama-src.tar.xz" "$work" \
                >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
            tail -1 "$out/build.log" ;;
        pack)  # the build as files small enough to come back and be carried again
            XZ_OPT="-T0 -6" tar cJf "$work/built.tar.xz" -C "$work" site build/bin/llama-bench \
                build/bin/llama-batched-bench build/bin/llama-server build/bin/llama-quantize
            split -b 15M "$work/built.tar.xz" "$out/built.tar.xz.part-"
            ls -la "$out" ;;
        unpack)
            if [[ ! -x $bin/llama-server ]]; then cat "$repo"/.gpu/built.tar.xz.part-* \
                | tar xJf - -C "$work"; fi ;;
        synth)
            setup_python
            [[ -f $gguf ]] || time python3 "$repo/benchmarks/engine.py" --synthesize-minicpm-2b \
                --out "$work/models" --build-only
            ls -la "$gguf" ;;
        synth8b)
            setup_python
            [[ -f $gguf8b ]] || time python3 "$repo/benchmarks/engine.py" --synthesize-minicpm4-8b \
                --out "$work/models" --build-only
            ls -la "$gguf8b" ;;
        bench|bench8b)
            model=$gguf; [[ $stage == bench8b ]] && model=$gguf8b
            nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$results"
            "$bin/llama-bench" -m "$model" -ngl 99 -fa 1,0 -p 512 -n 128 -r 5 -o md 2>&1 \
                | grep "^|" | tee -a "$results"
            "$bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p 0 -n 128 -d 512 -r 5 -o md 2>&1 \
                | grep "^|" | tee -a "$results" ;;
        engine|engine8b|engine-lookup)
            setup_python
            model=$gguf; [[ $stage == engine8b ]] && model=$gguf8b
            lookup=off; [[ $stage == engine-lookup ]] && lookup=on
            python3 "$repo/benchmarks/engine.py" --model "$model" --repeats 5 \
                --prompt-lookup $lookup --bandwidth-tbps 4.8 2>&1 | grep -v "^llama\|^load" \
                | tee -a "$results" ;;
        lookup)
            setup_python
            python3 -X faulthandler "$repo/benchmarks/prompt_lookup.py" --model "$gguf" \
                --batch-cost --cases "$repo/.gpu/pdf-clean-cases.json" --questions 8 --sampled --ctx 2048 \
                >"$out/lookup.log" 2>&1
            echo "exit status $?" >>"$out/lookup.log"
            grep -v "^llama\|^load" "$out/lookup.log" | tail -40 | tee -a "$results" ;;
        batched)  # KV cache as llama.cpp's default (one stream per sequence), then unified (-kvu)
            for kv in "" -kvu; do
                note "llama-batched-bench ${kv:-(one KV stream per sequence)}"
                "$bin/llama-batched-bench" -m "$gguf" -ngl 99 -fa on -c 16384 -b 2048 -ub 512 \
                    -npp 512 -ntg 128 -npl 1,4,8,16 $kv 2>&1 | grep "^|" | tee -a "$results"
            done ;;
        server)  # one round of every count in SERVER_CHATS (default 1,4,8,16) on the same servers
            setup_python
            chats=${SERVER_CHATS:-1,4,8,16}
            serve_chats "${SERVER_SLOTS:-16}" "$chats" "${SERVER_LABEL:-default}" ;;
        server-per-n)  # a fresh server (or SERVERS of them) for each count, slots = its chats
            setup_python
            chats=${SERVER_CHATS:-1,4,8,16}
            for n in ${chats//,/ }; do
                serve_chats "$(( (n + ${SERVERS:-1} - 1) / ${SERVERS:-1} ))" "$n" \
                    "${SERVER_LABEL:-default}-n$n"
            done ;;
        *) note "unknown stage $stage"; exit 2 ;;
    esac
done
