"""CPU time and peak memory of a function's process, read from /proc.

MiniStack runs each function environment as a child process of the emulator:
a `provided.*` function as its `bootstrap` binary, a Python function as the
emulator's own interpreter running a worker script, with the handler imported
into that same process. Neither is a child of the benchmark, so getrusage
cannot see them. Instead the benchmark reads, while the process is still
alive, `/proc/PID/stat` (utime and stime: CPU time of the process and of its
threads that already exited, in clock ticks of 10 ms), `/proc/PID/task/*/schedstat`
(CPU time of each live thread in nanoseconds) and `/proc/PID/status` (VmHWM,
the peak resident set size).
"""

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessUsage:
    pid: int
    cpu_seconds: float
    peak_rss_bytes: int


def child_pids(parent_pid):
    """Return the pids whose parent is `parent_pid`."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process exited meanwhile
        # The command name in brackets may contain spaces, so split after it.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent_pid:
            children.append(int(entry.name))
    return children


def command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def function_pids(emulator_pid, marker):
    """Return the emulator's child processes whose command line contains
    `marker`: the code folder of a `provided.*` function or the worker folder
    of a Python one."""
    return {pid for pid in child_pids(emulator_pid) if any(marker in part for part in command_line(pid))}


def usage(pid):
    """Return the CPU time and the peak resident set size of a live process.

    The CPU time is the larger of two readings: utime plus stime, which
    counts threads that exited but only in whole clock ticks, and the sum of
    the live threads' schedstat run times, which is exact to the nanosecond.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
    ticks = int(fields[11]) + int(fields[12])
    thread_nanoseconds = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            thread_nanoseconds += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue
    cpu_seconds = max(ticks / CLOCK_TICKS_PER_SECOND, thread_nanoseconds / 1e9)

    peak_kib = None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kib = int(line.split()[1])
    if peak_kib is None:
        raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
    return ProcessUsage(pid=pid, cpu_seconds=cpu_seconds, peak_rss_bytes=peak_kib * 1024)


def mapped_files(pid):
    """Return the files mapped into a process, from /proc/PID/maps."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            paths.add(parts[5])
    return paths
