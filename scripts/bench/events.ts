// The event log's cost: one emit (what every upload batch, download batch and commit adds to
// its request), and one read of 1000 events (what a stream or a long poll does per answer).
// Run: bun scripts/bench/events.ts
import { EventLog, EVENT_LOG_CAPACITY } from "../../src/node/events.ts";

const log = new EventLog({ nowMs: () => Date.now() });
const emits = 1_000_000;
const emitStart = performance.now();
for (let i = 0; i < emits; i++) log.emit("push", "photos", { objects: 64, bytes: 4_000_000 });
const emitNs = ((performance.now() - emitStart) * 1e6) / emits;

const reads = 2000;
const readStart = performance.now();
let read = 0;
for (let i = 0; i < reads; i++) read += log.since(log.lastId - 1000, 1000).events.length;
const readUs = ((performance.now() - readStart) * 1000) / reads;

console.log(`emit: ${emitNs.toFixed(0)} ns per event (${emits} events, ring of ${EVENT_LOG_CAPACITY})`);
console.log(`since: ${readUs.toFixed(1)} µs per read of 1000 events (${read} read)`);
