#!/usr/bin/env python3
"""A delay line for the NAT test bed, where the kernel has no `tc netem` (sch_netem).

    delayline.py DELAY_MS NS_A IF_A NS_B IF_B

Opens a TAP interface IF_A in network namespace NS_A and IF_B in NS_B and copies every Ethernet
frame from one to the other DELAY_MS later, in both directions: a cable with DELAY_MS of
one-way latency. The caller addresses the interfaces and brings them up. Prints "ready" once
both exist. Exits when its standard input closes (the test that started it is gone) or on
SIGTERM; the TAP interfaces disappear with it.

Standard library only (ctypes for setns: Python 3.11 has no os.setns).
"""

import ctypes
import fcntl
import heapq
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
# Frames waiting in the line; beyond this the newest are dropped, like a full router queue
# (a 1.2 Mbit/s call at 25 ms holds about 10 frames).
MAX_QUEUED = 4096
MAX_FRAME = 65536

libc = ctypes.CDLL(None, use_errno=True)


def open_tap(ns, name):
    """A TAP fd for interface `name`, created inside network namespace `ns`."""
    ns_fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(ns_fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {ns}: {os.strerror(err)}")
    finally:
        os.close(ns_fd)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    delay = float(sys.argv[1]) / 1000.0
    a = open_tap(sys.argv[2], sys.argv[3])
    b = open_tap(sys.argv[4], sys.argv[5])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)

    other = {a: b, b: a}
    line = []  # heap of (due, seq, out_fd, frame)
    seq = 0
    stdin = sys.stdin.fileno()
    while True:
        timeout = max(0.0, line[0][0] - time.monotonic()) if line else None
        readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            if fd == stdin:
                if not os.read(stdin, 4096):
                    return
                continue
            while True:
                try:
                    frame = os.read(fd, MAX_FRAME)
                except BlockingIOError:
                    break
                if len(line) < MAX_QUEUED:
                    heapq.heappush(line, (now + delay, seq, other[fd], frame))
                    seq += 1
        while line and line[0][0] <= now:
            _, _, out, frame = heapq.heappop(line)
            try:
                os.write(out, frame)
            except (BlockingIOError, OSError):
                pass  # the interface is down or full: a lost frame, as on a real link


if __name__ == "__main__":
    main()
