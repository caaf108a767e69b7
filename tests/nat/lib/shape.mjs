// Network conditions on the door's uplink in the NAT test bed (tests/nat/lib/netns.mjs), with
// what this kernel has (no sch_netem): a bandwidth cap with `tbf` on the door router's WAN
// egress, random loss with `iptables -m statistic`, delay with the bed's delay line
// (`doorWanDelayMs`). The door's uplink is where its video goes, so that is where a phone on
// mobile data or weak Wi-Fi hurts.

import { nsExec } from "./netns.mjs";

/**
 * Queue of the capped link, as tbf's `latency`: how long a packet may wait before tbf drops
 * it. 150 ms is a home router's buffer at these rates: deep enough that an overshoot shows as
 * growing delay (what GCC reacts to) before it shows as loss.
 */
const QUEUE_MS = 150;
/** tbf's bucket: a few full-size packets, so a keyframe's burst is paced, not passed at once. */
const BURST_BYTES = 6000;

/** Caps the door's uplink at `kbit` kbit/s (replaces an earlier cap); 0 removes the cap. */
export async function capDoorUplink(bed, kbit) {
  const router = bed.ns.doorRouter;
  if (!router) throw new Error("capDoorUplink needs the nat topology");
  if (!kbit) {
    await nsExec(router, "tc", ["qdisc", "del", "dev", "wan", "root"]).catch(() => {});
    return;
  }
  await nsExec(router, "tc", [
    "qdisc", "replace", "dev", "wan", "root", "tbf",
    "rate", `${kbit}kbit`, "burst", String(BURST_BYTES), "latency", `${QUEUE_MS}ms`,
  ]);
}

/**
 * Drops `percent` % of the door's UDP packets towards the public side at random (media, STUN
 * and TURN alike; TCP to the hub is spared so signalling stays up).
 */
export async function loseDoorUplink(bed, percent) {
  const router = bed.ns.doorRouter;
  if (!router) throw new Error("loseDoorUplink needs the nat topology");
  await nsExec(router, "iptables", [
    "-I", "FORWARD", "1", "-i", "lan", "-o", "wan", "-p", "udp",
    "-m", "statistic", "--mode", "random", "--probability", String(percent / 100), "-j", "DROP",
  ]);
}
