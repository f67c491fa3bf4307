#!/usr/bin/env python3
"""Sample a process's VmRSS every 20 ms until STOP_FILE exists (or the process ends); print the
largest value seen, in kB.

    python3 bench/rss_sampler.py PID STOP_FILE
"""

import os
import sys
import time


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    pid, stop = sys.argv[1], sys.argv[2]
    peak = 0
    while True:
        v = rss_kb(pid)
        if v is None:
            break
        peak = max(peak, v)
        if os.path.exists(stop):
            break
        time.sleep(0.02)
    print(peak)


if __name__ == "__main__":
    main()
