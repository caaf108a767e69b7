// What a benchmark reads about a running process from /proc: CPU time, memory, threads, fds.

import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ on Linux). */
export const TICKS_PER_SECOND = 100;

/** CPU time the process has used so far (user + system), in clock ticks. */
export function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function statusField(pid, field) {
  const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+)`, "m"));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]);
}

/** A `kB` field of /proc/<pid>/status (VmRSS, RssAnon, RssFile, VmHWM) in MiB. */
export const memMiB = (pid, field) => statusField(pid, field) / 1024;
export const rssMiB = (pid) => memMiB(pid, "VmRSS");
export const threadCount = (pid) => statusField(pid, "Threads");
export const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/**
 * Resident memory split into anonymous (heap: growth or fragmentation) and file-backed pages
 * (the shared libraries of the GStreamer plugins a first call loads: not a leak).
 */
export const memory = (pid) =>
  ["VmRSS", "RssAnon", "RssFile"].map((f) => `${f} ${memMiB(pid, f).toFixed(1)}`).join(", ") + " MiB";

/** The process's threads by name (/proc/<pid>/task/<tid>/comm): name -> how many. */
export function threadNames(pid) {
  const names = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      names.set(name, (names.get(name) ?? 0) + 1);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return names;
}

/** How many of the process's threads carry `name`. */
export const threadsNamed = (pid, name) => threadNames(pid).get(name) ?? 0;
