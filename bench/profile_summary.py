"""Summarises a chrome trace written by LibTorch's RecordProfile (automm_bench_models
with AUTOMM_BENCH_PROFILE=FILE): per op name, the self time (its own duration minus
the ops nested in it on the same thread) and call count, largest first.

  python3 bench/profile_summary.py FILE [--top N]
"""
import argparse
import collections
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with open(args.trace) as f:
        text = f.read().strip()
    if text.endswith(","):
        text = text[:-1]
    if not text.endswith("]"):
        text += "]"
    events = [e for e in json.loads(text) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    self_time = collections.Counter()
    calls = collections.Counter()
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [event, child time]
        for e in thread_events:
            while stack and stack[-1][0]["ts"] + stack[-1][0]["dur"] <= e["ts"]:
                done, child = stack.pop()
                self_time[done["name"]] += done["dur"] - child
            if stack:
                stack[-1][1] += e["dur"]
            stack.append([e, 0.0])
            calls[e["name"]] += 1
        while stack:
            done, child = stack.pop()
            self_time[done["name"]] += done["dur"] - child
    total = sum(self_time.values())
    print(f"{'op':<48} {'self ms':>10} {'share':>7} {'calls':>7}")
    for name, t in self_time.most_common(args.top):
        print(f"{name[:48]:<48} {t / 1e3:10.2f} {100 * t / total:6.1f}% {calls[name]:7d}")
    print(f"{'total':<48} {total / 1e3:10.2f}")


if __name__ == "__main__":
    main()
