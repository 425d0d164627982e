#!/bin/sh
# Session 9 (issue 19): chat and group with users spread over two `mpim serve`
# nodes on shared engines (MariaDB store; Redis cache, routes and bus),
# beside one node on the same engines, back to back in one mpim-bench run
# each (docs/benchmarks.md, "Session 9"). mpim-bench starts its own mariadbd
# (once per run, a fresh database per scenario) and redis-server (fresh per
# scenario).
#
#   bench/nodes_bench.sh                       # both, results in bench/results
#   BIN=build-bench/bin BUS=redis-streams bench/nodes_bench.sh chat
#
# Environment: BIN (dir of mpim and mpim-bench, default build/bin), MPIM
# (the server binary, default $BIN/mpim), OUT
# (results dir), STEM (file name stem), BUS (redis-pubsub or redis-streams),
# NODES (default 1,2), CHAT_RATES (default 2000,5000,10000), GROUP_RATES
# (default 50,110), DURATION (measured s, default 12), WARMUP (default 3).
set -eu
BIN=${BIN:-build/bin}
MPIM=${MPIM:-$BIN/mpim}
OUT=${OUT:-bench/results}
STEM=${STEM:-$(date -u +%F)-nodes}
BUS=${BUS:-redis-pubsub}
NODES=${NODES:-1,2}
DURATION=${DURATION:-12}
WARMUP=${WARMUP:-3}
what=${1:-all}

common="--server-bin $MPIM --nodes $NODES --bus-engine $BUS --duration $DURATION --warmup $WARMUP --out-dir $OUT"
echo "load average before: $(cat /proc/loadavg)"
if [ "$what" = all ] || [ "$what" = chat ]; then
  # 1,000 pairs, both users of a pair sending; the pair's users on different nodes.
  "$BIN/mpim-bench" $common --scenario chat --name chat --users 2000 \
    --rates "${CHAT_RATES:-2000,5000,10000}" --stem "$STEM-chat-$BUS"
fi
if [ "$what" = all ] || [ "$what" = group ]; then
  # One group of 5,000, all online (spread over the nodes), 10 senders.
  "$BIN/mpim-bench" $common --scenario group --name group --members 5000 --online 5000 \
    --senders 10 --rates "${GROUP_RATES:-50,110}" --stem "$STEM-group-$BUS"
fi
echo "load average after: $(cat /proc/loadavg)"
