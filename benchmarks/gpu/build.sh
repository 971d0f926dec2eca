#!/usr/bin/env bash
# Build, on the GPU machine, the llama.cpp that llama-cpp-python 0.3.36 vendors, with CUDA for
# sm_90 (H100/H200): its shared libraries for llama-cpp-python's Python package, and llama.cpp's
# own llama-bench, llama-batched-bench and llama-server, so the app and llama.cpp's tools run the
# very same kernels. One CMake build serves both (a pip build of the sdist would compile it twice).
#
#   benchmarks/gpu/build.sh SOURCE.tar.xz WORKDIR
#
# SOURCE.tar.xz: the llama-cpp-python sdist without vendor/llama.cpp/{models,docs,benches,tests}
# (see benchmarks/gpu/README.md). Afterwards WORKDIR/site holds the llama_cpp package (put it on
# PYTHONPATH) and WORKDIR/build/bin the tools. Re-running reuses what is already built.
set -euo pipefail
source_tar=$1
work=$2
mkdir -p "$work"
if [[ ! -d $work/src ]]; then
    mkdir -p "$work/src"
    tar xJf "$source_tar" -C "$work/src" --strip-components=1
fi
llama="$work/src/vendor/llama.cpp"
if [[ ! -f $work/build/build.ninja ]]; then
    cmake -S "$llama" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log"
fi
cmake --build "$work/build" -j "$(nproc)" \
    --target llama mtmd llama-bench llama-batched-bench llama-server llama-quantize
package="$work/site/llama_cpp"
rm -rf "$package"
mkdir -p "$work/site"
cp -r "$work/src/llama_cpp" "$package"
mkdir -p "$package/lib"
cp -P "$work"/build/bin/*.so* "$package/lib/"
echo "built: $(ls "$work/build/bin" | tr '\n' ' ')"
