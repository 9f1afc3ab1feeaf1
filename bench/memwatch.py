#!/usr/bin/python3
"""Samples a process's memory until it exits, then writes one summary line.

usage: memwatch.py PID OUTFILE [INTERVAL_SECONDS]

Reads VmRSS and VmHWM from /proc/PID/status every INTERVAL_SECONDS (default 0.1). When the
process is gone (or on SIGTERM), writes to OUTFILE:
    peak_rss_kb=N hwm_kb=N samples=N
where peak_rss_kb is the largest VmRSS sampled and hwm_kb the last VmHWM read (the kernel's
own peak of the resident set, which also catches peaks between samples). Standard library only.
"""
import signal
import sys
import time


def read_status(pid):
    values = {}
    with open("/proc/%d/status" % pid, encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "State"):
                values[key] = rest.split()[0]
    return values


def main():
    pid, outfile = int(sys.argv[1]), sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
    peak = hwm = samples = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        try:
            status = read_status(pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        if status.get("State") == "Z" or "VmRSS" not in status:
            break  # exited (a zombie has no memory left to measure)
        peak = max(peak, int(status["VmRSS"]))
        hwm = max(hwm, int(status.get("VmHWM", 0)))
        samples += 1
        time.sleep(interval)
    with open(outfile, "w", encoding="ascii") as f:
        f.write("peak_rss_kb=%d hwm_kb=%d samples=%d\n" % (peak, hwm, samples))


if __name__ == "__main__":
    main()
